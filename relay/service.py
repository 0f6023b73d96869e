"""Running the engine for a configured queue: what commands, tasks and the admin share."""
from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .errors import RelayError
from .models import DeadLetter, QueueStatus, RelayedQueue
from .pgq import PgqConsumer
from .relay import QueueRelay, RelayResult

logger = logging.getLogger(__name__)


class UnknownQueue(RelayError):
    """No relayed queue of that name is configured."""


def get_queue(name: str) -> RelayedQueue:
    try:
        return RelayedQueue.objects.select_related("connection").get(name=name)
    except RelayedQueue.DoesNotExist:
        known = ", ".join(RelayedQueue.objects.values_list("name", flat=True)) or "none configured"
        raise UnknownQueue(f"no relayed queue named {name!r} (known: {known})") from None


def relay_queue(queue: RelayedQueue, max_batches: int | None = None) -> RelayResult:
    """Relay what is ready for ``queue``, copy new dead letters into the admin, and record how it went."""
    try:
        result = QueueRelay(queue.to_settings()).run(max_batches=max_batches)
        if not result.busy:
            sync_dead_letters(queue)
    except RelayError as exc:
        record_failure(queue, str(exc))
        raise
    if not result.busy:
        record_success(queue, result)
    return result


def record_success(queue: RelayedQueue, result: RelayResult) -> None:
    now = timezone.now()
    changes = {"last_run_at": now, "last_success_at": now, "batches": F("batches") + result.batches,
               "published": F("published") + result.published, "retried": F("retried") + result.retried,
               "dead_lettered": F("dead_lettered") + result.dead_lettered}
    if result.batches:
        changes["last_batch_at"] = now
    QueueStatus.objects.get_or_create(queue=queue)
    QueueStatus.objects.filter(queue=queue).update(**changes)


def record_failure(queue: RelayedQueue, error: str) -> None:
    now = timezone.now()
    QueueStatus.objects.get_or_create(queue=queue)
    QueueStatus.objects.filter(queue=queue).update(last_run_at=now, last_error=error, last_error_at=now)


def sync_dead_letters(queue: RelayedQueue) -> int:
    """Copy dead letters recorded in the source database since the last copy; returns how many.

    The source database holds the truth (written with ``pgq.finish_batch``); a
    copy missed by a crash is picked up by the next run.
    """
    last = queue.dead_letters.order_by("-source_id").values_list("source_id", flat=True).first() or 0
    consumer = PgqConsumer(queue.source_url, queue.queue_name, queue.consumer_name)
    consumer.connect()
    copied = 0
    try:
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
                            dead_lettered_at=row["dead_lettered_at"],
                        )
                        for row in rows
                    ],
                    ignore_conflicts=True,
                )
            copied += len(rows)
            last = rows[-1]["id"]
    finally:
        consumer.close()
    return copied
