"""``manage.py import_queue_splitter <file.ini>``: create or update a split queue from Skytools' configuration."""
from __future__ import annotations

from relay.management.import_command import ImportCommand

from ...compat.splitter_config import load
from ...compat.splitter_import import import_config


class Command(ImportCommand):
    """Imports a Skytools queue_splitter configuration file as a relayed queue with the PostgreSQL target."""

    help = ("Read a Skytools queue_splitter configuration file ([queue_splitter] with job_name, src_db, dst_db, "
            "pgq_queue_name ...) and create or update the relayed queue named after job_name, with the "
            "PostgreSQL target. Importing the same file again changes nothing.")
    file_metavar = "FILE.ini"
    file_help = "queue_splitter's configuration file."
    read = staticmethod(load)
    apply = staticmethod(import_config)
