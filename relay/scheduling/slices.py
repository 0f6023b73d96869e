"""One relay task: a queue relayed for a bounded slice on the connections its worker process keeps.

A slice relays batches (ticking the queue itself when events wait) for about
``RELAY_SLICE_SECONDS``, stopping between batches, then gives the pool slot
back; a queue with work left asks for another task, which queues behind the
others. So a queue draining a backlog keeps its pace and never holds up the
rest for longer than a batch.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.utils import timezone

from ..core.errors import RelayError
from ..engine.connections import SourceConnection, process_pool
from ..engine.results import RelayResult
from ..models import QueueStatus, RelayedQueue
from ..pgq.watch import readiness
from ..runs.queue_status import record_failure
from ..runs.run_queue import record_unexpected, relay_queue
from .requests import request_slices

logger = logging.getLogger(__name__)

BUSY_RETRY_SECONDS = 1.0


class LeaseKeeper:
    """Keeps a running slice's lease ahead of the clock while a long batch goes on (an engine observer)."""

    renew_every = 2.0

    def __init__(self, queue_id: int, worker: str = "") -> None:
        self.queue_id = queue_id
        self.worker = worker  # Celery's name@host: the overview says who relays the queue
        self.renewed = time.monotonic()

    def _renew(self) -> None:
        if time.monotonic() - self.renewed >= self.renew_every:
            self.renewed = time.monotonic()
            QueueStatus.objects.filter(queue_id=self.queue_id).update(lease_until=lease_end())

    def queue_locked(self, queue: str) -> None:
        QueueStatus.objects.filter(queue_id=self.queue_id).update(lease_until=lease_end(), relayed_by=self.worker)
        self.renewed = time.monotonic()

    def awaiting_confirms(self, queue: str, outstanding: int) -> None:
        pass

    def window_settled(self, queue: str, seconds: float, events: int) -> None:
        self._renew()

    def batch_finished(self, result: RelayResult) -> None:
        self._renew()


def lease_end() -> datetime:
    """How long a slice counts as running without renewing: a killed worker's queue is free after this."""
    return timezone.now() + timedelta(seconds=settings.RELAY_LEASE_SECONDS)


def run_slice(queue_id: int, worker: str = "") -> RelayResult | None:
    """Relay one queue for a slice; None when it is disabled or gone. Failures are recorded, never raised."""
    QueueStatus.objects.filter(queue_id=queue_id).update(queued_at=None)
    queue = RelayedQueue.objects.select_related("connection").filter(pk=queue_id, enabled=True).first()
    if queue is None:
        return None
    pool = process_pool(settings.RELAY_IDLE_CONNECTION_SECONDS)
    try:
        result = relay_queue(queue, until=time.monotonic() + settings.RELAY_SLICE_SECONDS, tick=True,
                             connections=pool, observers=(LeaseKeeper(queue_id, worker),))
    except RelayError as exc:
        _log_failure(queue, str(exc))
        return None
    except SoftTimeLimitExceeded:
        record_failure(queue, f"stopped after {settings.RELAY_TASK_SOFT_TIME_LIMIT} s (RELAY_TASK_SOFT_TIME_LIMIT); "
                              "the batch in hand comes again")
        raise
    except Exception as exc:
        record_unexpected(queue, exc)
        return None
    if result.busy:
        # A slice holding the queue asks again itself when it is done; relay_once or the sweep's
        # finishing of empty batches do not: look again shortly.
        request_slices([queue_id], countdown=BUSY_RETRY_SECONDS)
        return result
    if result.cut_short or _work_left(queue, pool):
        request_slices([queue_id])
    else:
        QueueStatus.objects.filter(queue_id=queue_id).update(work_waiting_since=None)
    return result


def _log_failure(queue: RelayedQueue, error: str) -> None:
    status = QueueStatus.objects.get(queue=queue)
    # The failure just recorded set a backoff; a success recorded since (elsewhere) has cleared it.
    backoff = status.backoff_until
    wait = (backoff - timezone.now()).total_seconds() if backoff is not None else 0
    logger.error("queue=%s relay failed (%d in a row, next attempt in %d s): %s", queue.name,
                 status.failures_in_a_row, wait, error, extra={"queue": queue.name})


def _work_left(queue: RelayedQueue, pool) -> bool:
    """Whether events or a batch arrived for ``queue`` after its slice let go of it.

    Asked after the lock and the lease are given back: a wake-up that came
    while the slice ran was not queued (the lease said the queue was being
    relayed), so its events must be seen now or by the next task.
    """
    try:
        dsn = queue.source_dsn()
        with pool.source(dsn) as connection:
            ready = readiness(SourceConnection(dsn, connection), [(queue.queue_name, queue.consumer_name)])
    except RelayError:
        return True  # the next task will find out, and record it
    state = ready.get((queue.queue_name, queue.consumer_name))
    return state is not None and state.has_work
