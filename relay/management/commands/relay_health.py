"""``manage.py relay_health [--ready] [QUEUE ...]``: every enabled queue's health (and with ``--ready`` the relay's).

Exit status 1 when unhealthy. The same engine as /health/ and /health/ready.
"""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from ...ops.health import check_health
from ...ops.readiness import check_ready


class Command(BaseCommand):
    help = ("Check every enabled queue (or those named): source database reachable, RabbitMQ (or the target "
            "database) reachable, pgqd ticking, consumer lag under RELAY_HEALTH_MAX_LAG_SECONDS. "
            "Exits with status 1 when a check fails.")

    def add_arguments(self, parser):
        parser.add_argument("queues", nargs="*", metavar="QUEUE", help="Relayed queue names (default: all enabled).")
        parser.add_argument("--json", action="store_true", dest="as_json",
                            help="Print the report as JSON, as /health/ (or /health/ready) serves it.")
        parser.add_argument("--ready", action="store_true",
                            help="Also check the relay as a whole, as /health/ready does: Django's database, Celery's "
                                 "broker, a worker seen lately, beat's sweep.")

    def handle(self, *args, queues, as_json: bool = False, ready: bool = False, **options):
        whole = check_ready(deadline=60.0, cached=False) if ready else None
        report = whole.queues if whole else check_health(queues or None)
        if as_json:
            self.stdout.write(json.dumps((whole or report).as_dict(), indent=2))
        else:
            for problem in whole.service.problems if whole else ():
                self.stderr.write(f"relay: UNHEALTHY: {problem}")
            if whole and whole.service.healthy:
                self.stdout.write(f"relay: ok (workers: {', '.join(whole.service.checks['workers'])})")
            for queue in report.queues:
                (self.stdout if queue.healthy else self.stderr).write(queue.line())
        if not report.queues:
            self.stdout.write("no enabled queues")
        if whole and not whole.service.healthy:
            raise CommandError(f"the relay is not ready: {len(whole.service.problems)} problems")
        if not report.healthy:
            raise CommandError(f"{sum(not q.healthy for q in report.queues)} of {len(report.queues)} queues unhealthy")
