"""The shape of the configuration import commands: read a file, import it, say row by row what changed."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ..core.errors import RelayError
from ..models import RelayedQueue
from ..runs.registration import register_consumers, summary_lines


class ImportCommand(BaseCommand):
    """Reads ``path`` with :attr:`read`, imports it with :attr:`apply`, registers the queues' PgQ consumers.

    Errors become one line and exit 1.
    """

    file_metavar = "FILE"
    file_help = "the configuration file"
    read: Callable[[str], Any]
    apply: Callable[[Any], Any]

    def add_arguments(self, parser):
        parser.add_argument("path", metavar=self.file_metavar, help=self.file_help)

    def handle(self, *args, path, **options):
        try:
            result = self.apply(self.read(path))
        except RelayError as exc:
            raise CommandError(str(exc)) from None
        for line in result.lines():
            self.stdout.write(line)
        self.stdout.write(result.summary())
        # Registered now, not at the worker's first run: PgQ keeps every event written from here on.
        queues = RelayedQueue.objects.filter(name__in=result.queue_names(), enabled=True)
        for registered, line in summary_lines(register_consumers(queues)):
            (self.stdout if registered else self.stderr).write(line)
