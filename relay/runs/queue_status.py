"""A queue's status rows: what its runs did, its failures in a row and the backoff they earn."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..engine.results import RelayResult
from ..models import QueueStatus, RelayedQueue

MAX_BACKOFF_SECONDS = 60


def ensure_status_rows(queues: Iterable[RelayedQueue]) -> None:
    """Give each of these queues its status row where it has none (one statement; safe when another does too)."""
    QueueStatus.objects.bulk_create([QueueStatus(queue=queue) for queue in queues], ignore_conflicts=True)


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
    ensure_status_rows([queue])
    QueueStatus.objects.filter(queue=queue).update(**changes)


def record_failure(queue: RelayedQueue, error: str) -> timedelta:
    """Note a failed run and start or lengthen the queue's backoff; returns the backoff."""
    now = timezone.now()
    ensure_status_rows([queue])
    failures = QueueStatus.objects.values_list("failures_in_a_row", flat=True).get(queue=queue) + 1
    wait = backoff(failures)
    QueueStatus.objects.filter(queue=queue).update(
        last_run_at=now, last_error=error, last_error_at=now, failures_in_a_row=failures,
        backoff_until=now + wait, lease_until=None)
    return wait
