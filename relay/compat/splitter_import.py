"""Importing a read queue_splitter configuration as a relayed queue with the PostgreSQL target, idempotently."""
from __future__ import annotations

from typing import Any

from django.db import transaction

from ..core.connection_strings import redact_url
from ..core.errors import ConfigError
from ..models import RelayedQueue
from .import_result import Change, ImportResult
from .splitter_config import SplitterConfig
from .upsert import upsert_by_name

# What the import output calls each field: the key of the file that decides it.
FIELD_KEYS = {"name": "job_name", "queue_name": "pgq_queue_name", "source_url": "src_db", "target_url": "dst_db",
              "consumer_name": "pgq_consumer_id", "wait_duration": "loop_delay", "target": "target",
              "connection": "connection"}


def model_fields(config: SplitterConfig) -> dict[str, Any]:
    """The fields the file decides; enabled, max failures, retry delay and target queue creation stay as set."""
    return {"target": RelayedQueue.Target.POSTGRES, "connection": None, "queue_name": config.queue_name,
            "source_url": config.source_url, "target_url": config.target_url,
            "consumer_name": config.consumer_name, "wait_duration": config.wait_duration}


def import_config(config: SplitterConfig) -> ImportResult:
    """Create or update the relayed queue of a queue_splitter job, with the PostgreSQL target.

    Importing the same configuration again changes nothing. A queue of the same
    name that publishes to RabbitMQ is left alone (ConfigError).
    """
    with transaction.atomic():
        row = RelayedQueue.objects.select_for_update().filter(name=config.name).first()
        if row is not None and row.target != RelayedQueue.Target.POSTGRES:
            raise ConfigError(f"[{config.section}] job_name", f"a relayed queue named {config.name!r} already "
                              "exists and publishes to RabbitMQ: give the job another name, or delete that queue")
        row, outcome, changed = upsert_by_name(RelayedQueue, config.name, model_fields(config),
                                               f"[{config.section}]", FIELD_KEYS)
    if outcome == "created":
        detail = (f"PgQ queue {row.queue_name} on {redact_url(row.source_url)}, consumer {row.consumer_name}, "
                  f"split into the queues of {redact_url(row.target_url)}")
    elif outcome == "updated":
        detail = "changed: " + ", ".join(FIELD_KEYS[key] for key in changed)
    else:
        detail = ""
    return ImportResult((Change("queue", row.name, outcome, detail),), config.notes)
