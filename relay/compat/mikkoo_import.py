"""Importing a read mikkoo configuration as RabbitMQ connections and relayed queues, idempotently."""
from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from ..models import BrokerConnection, RelayedQueue
from .import_result import Change, ImportResult
from .mikkoo_config import ConnectionConfig, MikkooConfig, QueueConfig
from .upsert import upsert_by_name

_CONNECTION_SUFFIX = "-rabbitmq"

def import_config(config: MikkooConfig) -> ImportResult:
    """Create or update a BrokerConnection per distinct RabbitMQ settings and a RelayedQueue per worker.

    Importing the same configuration again changes nothing. Everything happens in
    one transaction, so an error leaves the database as it was. Raises ConfigError.
    """
    with transaction.atomic():
        connections, changes = _import_connections(config.queues)
        for queue in config.queues:
            connection = connections[queue.connection]
            fields = {**queue.model_fields(), "connection": connection}
            row, outcome, changed = upsert_by_name(RelayedQueue, queue.name, fields, queue.path)
            changes.append(Change("queue", row.name, outcome, _detail(outcome, changed, (
                f"PgQ queue {row.queue_name} on {row.display_source()}, connection {connection.name}"))))
    return ImportResult(tuple(changes), config.notes)


def _import_connections(
        queues: Iterable[QueueConfig]) -> tuple[dict[ConnectionConfig, BrokerConnection], list[Change]]:
    # Distinct settings get one connection, named after the first worker using them.
    first_user: dict[ConnectionConfig, QueueConfig] = {}
    for queue in queues:
        first_user.setdefault(queue.connection, queue)
    names = {settings: _connection_name(queue.name) for settings, queue in first_user.items()}
    rows: dict[ConnectionConfig, BrokerConnection] = {}
    changes: list[Change] = []
    for settings, queue in first_user.items():
        name, fields = names[settings], settings.model_fields()
        row = _same_connection(fields, name, exclude=set(names.values()) - {name})
        if row is not None:
            detail = "" if row.name == name else "same settings as the file"
            changes.append(Change("connection", row.name, "unchanged", detail))
        else:
            path = f"{queue.path}/rabbitmq_url" if settings.url else f"{queue.path}/rabbitmq"
            row, outcome, changed = upsert_by_name(BrokerConnection, name, fields, path)
            detail = _detail(outcome, changed, row.display_address())
            changes.append(Change("connection", name, outcome, detail))
        rows[settings] = row
    return rows, changes


def _same_connection(fields: dict, name: str, exclude: set[str]) -> BrokerConnection | None:
    """The connection with exactly these settings, preferably the one called ``name``; else the first by name.

    Secrets are encrypted with a fresh nonce each time, so the database cannot
    compare them: the other fields are matched there, the secrets here. A row
    named for other settings of this file may be about to change, so it is never a match.
    """
    secret = {key: fields[key] for key in BrokerConnection.SECRET_FIELDS}
    plain = {key: value for key, value in fields.items() if key not in secret}
    candidates = BrokerConnection.objects.filter(**plain).exclude(name__in=exclude).order_by("name")
    same = [row for row in candidates if all(getattr(row, key) == value for key, value in secret.items())]
    return next((row for row in same if row.name == name), None) or next(iter(same), None)


def _connection_name(queue_name: str) -> str:
    return queue_name[:100 - len(_CONNECTION_SUFFIX)] + _CONNECTION_SUFFIX


def _detail(outcome: str, changed: list[str], address: str) -> str:
    if outcome == "created":
        return address
    if outcome == "updated":
        return "changed: " + ", ".join(changed)
    return ""
