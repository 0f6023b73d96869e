"""``manage.py import_mikkoo <file.yml>``: create or update connections and queues from mikkoo's YAML."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from relay.errors import RelayError
from relay.mikkoo_config import load
from relay.mikkoo_import import import_config


class Command(BaseCommand):
    help = ("Read a mikkoo YAML configuration file and create or update a RabbitMQ connection per "
            "distinct RabbitMQ settings and a relayed queue per worker. Importing the same file again "
            "changes nothing.")

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="FILE.yml",
                            help="mikkoo's configuration file (Application/workers/<queue>/...).")

    def handle(self, *args, path, **options):
        try:
            result = import_config(load(path))
        except RelayError as exc:
            raise CommandError(str(exc)) from None
        for line in result.lines():
            self.stdout.write(line)
        self.stdout.write(result.summary())
