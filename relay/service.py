"""Running the engine for a configured queue: what commands, tasks and the admin share."""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import metrics
from .connections import Connections, OwnConnections
from .errors import RelayError
from .models import DeadLetter, QueueStatus, RelayedQueue
from .pgq import PgqConsumer
from .relay import QueueRelay, RelayObserver, RelayResult
from .splitter import QueueSplitter

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60


class UnknownQueue(RelayError):
    """No relayed queue of that name is configured."""


def get_queue(name: str) -> RelayedQueue:
    try:
        return RelayedQueue.objects.select_related("connection").get(name=name)
    except RelayedQueue.DoesNotExist:
        known = ", ".join(RelayedQueue.objects.values_list("name", flat=True)) or "none configured"
        raise UnknownQueue(f"no relayed queue named {name!r} (known: {known})") from None


def engine_for(queue: RelayedQueue, connections: Connections | None = None,
               observers: Sequence[RelayObserver] = ()) -> QueueRelay:
    """The engine of the queue's target: the RabbitMQ relay, or the queue splitter for a PostgreSQL target."""
    engine_class = QueueSplitter if queue.target == RelayedQueue.Target.POSTGRES else QueueRelay
    return engine_class(queue.to_settings(), connections, (metrics.RelayMetrics(), *observers))


# Queues whose dead letters this process has copied into the admin and not made since: an idle
# run then skips the source query. The first run of a queue in a process always copies, which
# picks up what a crashed process committed but never copied.
_MIRRORED: set[int] = set()


def relay_queue(queue: RelayedQueue, max_batches: int | None = None, *, until: float | None = None,
                tick: bool = False, connections: Connections | None = None,
                observers: Sequence[RelayObserver] = ()) -> RelayResult:
    """Relay what is ready for ``queue``, copy new dead letters into the admin, and record how it went.

    ``max_batches``, ``until`` and ``tick`` are the engine's (:meth:`QueueRelay.run`).
    A failure is recorded in the queue's status, starting or lengthening its backoff, and raised.
    """
    connections = connections or OwnConnections()
    try:
        result = engine_for(queue, connections, observers).run(max_batches=max_batches, until=until, tick=tick)
        if not result.busy and (result.dead_lettered or queue.pk not in _MIRRORED):
            sync_dead_letters(queue, connections)
            _MIRRORED.add(queue.pk)
    except RelayError as exc:
        _MIRRORED.discard(queue.pk)  # batches it finished before failing may hold dead letters
        metrics.record_run(queue.name, exc)
        record_failure(queue, str(exc))
        raise
    if not result.busy:
        metrics.record_run(queue.name)
        record_success(queue, result)
    return result


def retire_queue(queue: RelayedQueue) -> str:
    """Delete ``queue``, first unregistering its PgQ consumer when its ``unregister`` setting is on.

    Raises :class:`RelayError` (and deletes nothing) when the source database
    cannot be reached to unregister. A worker stopping never unregisters: only this does.
    """
    if queue.unregister:
        consumer = PgqConsumer(queue.source_dsn(), queue.queue_name, queue.consumer_name)
        consumer.connect()
        try:
            removed = consumer.unregister()
        finally:
            consumer.close()
        note = (f"consumer {queue.consumer_name} unregistered from PgQ queue {queue.queue_name}"
                if removed else f"consumer {queue.consumer_name} was not registered on {queue.queue_name}")
    else:
        note = f"consumer {queue.consumer_name} kept on PgQ queue {queue.queue_name} (unregister is off)"
    queue.delete()
    return f"{queue.name} retired: {note}"


def replay_dead_letters(letters: Iterable[DeadLetter], user: str) -> int:
    """Put dead-lettered events back into their PgQ queues as they were; returns how many.

    Type, data and extra fields are kept; PgQ gives each a new ev_id, so a
    replayed event also gets a new message_id. Each queue's events are written
    in one transaction, then the rows are marked replayed.
    """
    by_queue: dict[int, list[DeadLetter]] = {}
    for letter in letters:
        if letter.replayed_at is None:
            by_queue.setdefault(letter.queue_id, []).append(letter)
    replayed = 0
    for queue_letters in by_queue.values():
        queue = queue_letters[0].queue
        consumer = PgqConsumer(queue.source_dsn(), queue.queue_name, queue.consumer_name)
        consumer.connect()
        try:
            consumer.insert_events((letter.event_type, letter.event_data, letter.extra1, letter.extra2,
                                    letter.extra3, letter.extra4) for letter in queue_letters)
        finally:
            consumer.close()
        DeadLetter.objects.filter(pk__in=[letter.pk for letter in queue_letters]).update(
            replayed_at=timezone.now(), replayed_by=user)
        replayed += len(queue_letters)
    return replayed


def record_unexpected(queue: RelayedQueue, exc: Exception) -> str:
    """A run that failed with no relay error (a bug, or input nobody foresaw): record it, log it, say it.

    It costs the queue a backoff like any failure, never the process or the other queues.
    """
    error = f"internal error: {type(exc).__name__}: {exc}"
    wait = record_failure(queue, error)
    logger.error("queue=%s relay failed (next attempt in %d s): %s", queue.name, wait.total_seconds(), error,
                 extra={"queue": queue.name})
    logger.debug("queue=%s: where the internal error happened", queue.name, exc_info=exc)
    return error


def backoff(failures_in_a_row: int) -> timedelta:
    """How long the schedule leaves a failing queue alone: 1, 2, 4 ... up to 60 seconds."""
    return timedelta(seconds=min(MAX_BACKOFF_SECONDS, 2 ** max(failures_in_a_row - 1, 0)))


def record_success(queue: RelayedQueue, result: RelayResult) -> None:
    """Count what a run did; it ends any backoff, and a run that got this far has its consumer registered."""
    now = timezone.now()
    changes = {"last_run_at": now, "last_success_at": now, "batches": F("batches") + result.batches,
               "published": F("published") + result.published, "retried": F("retried") + result.retried,
               "dead_lettered": F("dead_lettered") + result.dead_lettered, "failures_in_a_row": 0,
               "backoff_until": None, "lease_until": None, "registration_error": "",
               "consumer_registered_at": Coalesce("consumer_registered_at", Value(now))}
    if result.batches:
        changes["last_batch_at"] = now
    QueueStatus.objects.get_or_create(queue=queue)
    QueueStatus.objects.filter(queue=queue).update(**changes)


def record_failure(queue: RelayedQueue, error: str) -> timedelta:
    """Note a failed run and start or lengthen the queue's backoff; returns the backoff."""
    now = timezone.now()
    status, _ = QueueStatus.objects.get_or_create(queue=queue)
    failures = QueueStatus.objects.values_list("failures_in_a_row", flat=True).get(pk=status.pk) + 1
    wait = backoff(failures)
    QueueStatus.objects.filter(pk=status.pk).update(
        last_run_at=now, last_error=error, last_error_at=now, failures_in_a_row=failures,
        backoff_until=now + wait, lease_until=None)
    return wait


def sync_dead_letters(queue: RelayedQueue, connections: Connections | None = None) -> int:
    """Copy dead letters recorded in the source database since the last copy; returns how many.

    The source database holds the truth (written with ``pgq.finish_batch``); a
    copy missed by a crash is picked up by the next run.
    """
    last = queue.dead_letters.order_by("-source_id").values_list("source_id", flat=True).first() or 0
    copied = 0
    dsn = queue.source_dsn()
    with (connections or OwnConnections()).source(dsn) as connection:
        consumer = PgqConsumer(dsn, queue.queue_name, queue.consumer_name, connection)
        while rows := consumer.dead_letters_since(last):
            with transaction.atomic():
                DeadLetter.objects.bulk_create(
                    [
                        DeadLetter(
                            queue=queue, source_id=row["id"], event_id=row["ev_id"],
                            event_txid=row["ev_txid"], event_time=row["ev_time"],
                            event_type=row["ev_type"] or "", event_data=row["ev_data"] or "",
                            extra1=row["ev_extra1"] or "", extra2=row["ev_extra2"] or "",
                            extra3=row["ev_extra3"] or "", extra4=row["ev_extra4"] or "",
                            reason=row["reason"], failures=row["failures"],
                            dead_lettered_at=row["dead_lettered_at"], first_failed_at=row["first_failed_at"],
                        )
                        for row in rows
                    ],
                    ignore_conflicts=True,
                )
            copied += len(rows)
            last = rows[-1]["id"]
    return copied
