"""``manage.py import_mikkoo <file.yml>``: create or update connections and queues from mikkoo's YAML."""
from __future__ import annotations

from relay.management.import_command import ImportCommand

from ...compat.mikkoo_config import load
from ...compat.mikkoo_import import import_config


class Command(ImportCommand):
    help = ("Read a mikkoo YAML configuration file and create or update a RabbitMQ connection per "
            "distinct RabbitMQ settings and a relayed queue per worker. Importing the same file again "
            "changes nothing.")
    file_metavar = "FILE.yml"
    file_help = "mikkoo's configuration file (Application/workers/<queue>/...)."
    read = staticmethod(load)
    apply = staticmethod(import_config)
