"""``manage.py import_queue_splitter <file.ini>``: create or update a split queue from Skytools' configuration."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from relay.errors import RelayError
from relay.splitter_config import import_config, load


class Command(BaseCommand):
    """Imports a Skytools queue_splitter configuration file as a relayed queue with the PostgreSQL target."""

    help = ("Read a Skytools queue_splitter configuration file ([queue_splitter] with job_name, src_db, dst_db, "
            "pgq_queue_name ...) and create or update the relayed queue named after job_name, with the "
            "PostgreSQL target. Importing the same file again changes nothing.")

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="FILE.ini", help="queue_splitter's configuration file.")

    def handle(self, *args, path, **options):
        try:
            result = import_config(load(path))
        except RelayError as exc:
            raise CommandError(str(exc)) from None
        for line in result.lines():
            self.stdout.write(line)
        self.stdout.write(result.summary())
