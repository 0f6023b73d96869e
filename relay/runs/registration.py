"""Registering PgQ consumers as soon as queues are configured: PgQ keeps every event written afterwards for them.

A consumer registered after an event was written never sees that event, so
the admin and the importers register at once instead of leaving it to the
worker's first run. A source database that cannot be reached then is said so
plainly; the queue is saved all the same, its status says "consumer not
registered", and the sweep keeps trying.

It lives in :mod:`relay.runs`, beside the status rows it creates, because its
callers are the admin, the importers (:mod:`relay.management.import_command`)
and beat's sweep (:mod:`relay.scheduling.sweep`): all of them import
``relay.runs`` already, and none needs the Celery scheduling to register.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from ..core.connection_strings import redact_url
from ..core.errors import InvalidConfiguration, RelayError
from ..engine.connections import Connections, OwnConnections
from ..models import QueueStatus, RelayedQueue
from ..pgq.consumer import PgqConsumer
from ..pgq.watch import set_wakeup_triggers
from .queue_status import ensure_status_rows


@dataclass(frozen=True)
class Registration:
    """How registering one queue's consumer went: ``error`` is None when it is registered."""

    queue: RelayedQueue
    error: str | None = None


def register_consumers(queues: Iterable[RelayedQueue], connections: Connections | None = None) -> list[Registration]:
    """Create each queue's PgQ queue, consumer and relay tables where missing, and note it.

    The optional NOTIFY trigger is installed with ``RELAY_NOTIFY`` and removed
    without it (relays before 2026-12 installed it on every queue).

    One connection per source database. Raises nothing: each queue's outcome
    is returned and recorded in its status.
    """
    connections = connections or OwnConnections()
    by_source: dict[str, list[RelayedQueue]] = {}
    results: list[Registration] = []
    for queue in queues:
        try:
            # env:NAME read now; a source that cannot be used is that queue's registration error.
            by_source.setdefault(queue.source_dsn(), []).append(queue)
        except InvalidConfiguration as exc:
            results.append(Registration(queue, f"invalid configuration: {exc}"))
    for dsn, group in by_source.items():
        done: list[Registration] = []
        try:
            with connections.source(dsn) as connection:
                for queue in group:
                    done.append(_register(connections, connection, dsn, queue))
        except RelayError as exc:
            done.extend(Registration(queue, str(exc)) for queue in group[len(done):])
        results.extend(done)
    _record(results)
    return results


def _register(connections: Connections, connection: object, dsn: str, queue: RelayedQueue) -> Registration:
    consumer = PgqConsumer(dsn, queue.queue_name, queue.consumer_name, connection)
    try:
        consumer.prepare()
        set_wakeup_triggers(consumer, [queue.queue_name], settings.RELAY_NOTIFY)
        consumer.commit("setting the wake-up trigger")
    except RelayError as exc:
        return Registration(queue, str(exc))
    connections.prepared(dsn, queue.queue_name, queue.consumer_name, consumer.audited)
    return Registration(queue)


def _record(results: list[Registration]) -> None:
    now = timezone.now()
    registered = [r.queue.pk for r in results if r.error is None]
    ensure_status_rows(r.queue for r in results)
    QueueStatus.objects.filter(queue_id__in=registered).update(consumer_registered_at=now, registration_error="")
    for result in results:
        if result.error is not None:
            QueueStatus.objects.filter(queue=result.queue).update(registration_error=result.error)


def summary_lines(results: list[Registration]) -> list[tuple[bool, str]]:
    """What an operator reads after saving or importing, per source database: (all well?, line)."""
    lines = []
    by_source: dict[str, list[Registration]] = {}
    for result in results:
        by_source.setdefault(result.queue.source_url, []).append(result)
    for dsn, group in by_source.items():
        ok = [r.queue.name for r in group if r.error is None]
        if ok:
            lines.append((True, f"PgQ consumers registered in {redact_url(dsn)} for {_names(ok)}"))
        failed: dict[str, list[str]] = {}
        for r in group:
            if r.error is not None:
                failed.setdefault(r.error, []).append(r.queue.name)
        for error, names in failed.items():
            lines.append((False, f"PgQ consumer NOT registered for {_names(names)}: {error} (saved; the worker "
                                 "keeps trying, and events written before it succeeds are not relayed)"))
    return lines


def _names(names: list[str]) -> str:
    if len(names) <= 5:
        return ", ".join(names)
    return f"{len(names)} queues ({', '.join(names[:3])}, ...)"
