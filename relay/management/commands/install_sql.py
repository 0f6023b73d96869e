"""``manage.py install_sql <queue>``: install or upgrade the audit SQL API in a queue's source database."""
from django.core.management.base import BaseCommand, CommandError

from ...audit.install import install_audit_sql
from ...core.errors import RelayError
from ...runs.run_queue import get_queue


class Command(BaseCommand):
    help = ("Install or upgrade mikkoo's audit SQL API (schema mikkoo) and the relay's additions in the "
            "source database of one queue, in one transaction; existing audit rows are kept.")

    def add_arguments(self, parser):
        parser.add_argument("queue", help="Name of the relayed queue, as configured in the admin.")

    def handle(self, *args, queue, **options):
        try:
            result = install_audit_sql(get_queue(queue).source_dsn())
        except RelayError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(result.summary())
