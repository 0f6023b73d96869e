"""``manage.py relay_once <queue>``: relay what is ready for one queue and exit."""
from django.core.management.base import BaseCommand, CommandError

from relay.errors import InvalidConfiguration, RelayError
from relay.service import get_queue, record_unexpected, relay_queue


class Command(BaseCommand):
    help = ("Relay every batch ready for one queue to RabbitMQ (or split it into the target database's "
            "queues), print a one-line summary and exit.")

    def add_arguments(self, parser):
        parser.add_argument("queue", help="Name of the relayed queue, as configured in the admin.")
        parser.add_argument("--max-batches", type=int, default=None,
                            help="Stop after this many batches (default: all that are ready).")

    def handle(self, *args, queue, max_batches, **options):
        configured = None
        try:
            configured = get_queue(queue)
            result = relay_queue(configured, max_batches=max_batches)
        except InvalidConfiguration as exc:
            raise CommandError(f"{queue}: invalid configuration: {exc}") from None
        except RelayError as exc:
            raise CommandError(str(exc)) from None
        except Exception as exc:
            error = (record_unexpected(configured, exc) if configured is not None
                     else f"internal error: {type(exc).__name__}: {exc}")
            raise CommandError(f"{queue}: {error}") from None
        self.stdout.write(result.summary())
