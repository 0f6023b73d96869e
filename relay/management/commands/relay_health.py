"""``manage.py relay_health [QUEUE ...]``: the health of every enabled queue; exit status 1 when unhealthy."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from ...ops.health import check_health


class Command(BaseCommand):
    help = ("Check every enabled queue (or those named): source database reachable, RabbitMQ (or the target "
            "database) reachable, pgqd ticking, consumer lag under RELAY_HEALTH_MAX_LAG_SECONDS. "
            "Exits with status 1 when a check fails.")

    def add_arguments(self, parser):
        parser.add_argument("queues", nargs="*", metavar="QUEUE", help="Relayed queue names (default: all enabled).")
        parser.add_argument("--json", action="store_true", dest="as_json",
                            help="Print the report as JSON, as /health/ serves it.")

    def handle(self, *args, queues, as_json: bool = False, **options):
        report = check_health(queues or None)
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            for queue in report.queues:
                (self.stdout if queue.healthy else self.stderr).write(queue.line())
        if not report.queues:
            self.stdout.write("no enabled queues")
        if not report.healthy:
            raise CommandError(f"{sum(not q.healthy for q in report.queues)} of {len(report.queues)} queues unhealthy")
