"""The shape of the configuration import commands: read a file, import it, say row by row what changed."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from relay.errors import RelayError


class ImportCommand(BaseCommand):
    """Reads ``path`` with :attr:`read`, imports it with :attr:`apply`; errors become one line and exit 1."""

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
