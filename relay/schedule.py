"""What the Celery schedule runs: which queues are due, and holding one queue for a lease.

Beat runs :func:`due_queues` every ``RELAY_DISPATCH_SECONDS``; each due queue
gets a task that holds it for ``RELAY_LEASE_SECONDS`` (relaying batches as they
form, woken by the source database) and then hands over to a successor. The
advisory lock in the source database is what guarantees one relay per queue;
the lease recorded here only spares the schedule starting tasks that would
find the queue busy.
"""
from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .errors import RelayError
from .models import QueueStatus, RelayedQueue
from .relay import RelayResult
from .service import relay_queue

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60


def backoff(failures_in_a_row: int) -> timedelta:
    """How long the schedule leaves a failing queue alone: 1, 2, 4 ... up to 60 seconds."""
    return timedelta(seconds=min(MAX_BACKOFF_SECONDS, 2 ** max(failures_in_a_row - 1, 0)))


def due_queues() -> list[str]:
    """Enabled queues that no task holds and that are not waiting out a backoff."""
    now = timezone.now()
    due = []
    for queue in RelayedQueue.objects.filter(enabled=True).select_related("status").order_by("name"):
        status = getattr(queue, "status", None)
        if status is not None:
            if status.lease_until and status.lease_until > now:
                continue
            if status.failing and status.last_error_at + backoff(status.failures_in_a_row) > now:
                continue
        due.append(queue.name)
    return due


class ConfigWatch:
    """Tells a holding task to stop when its queue is disabled, deleted or changed in the admin."""

    check_every = 1.0

    def __init__(self, queue: RelayedQueue) -> None:
        self.pk = queue.pk
        self.settings = queue.to_settings()
        # The queue may have changed since it was read: the first call always looks.
        self.checked = float("-inf")
        self.current = True

    def __call__(self) -> bool:
        if self.current and time.monotonic() - self.checked >= self.check_every:
            self.checked = time.monotonic()
            queue = RelayedQueue.objects.select_related("connection").filter(pk=self.pk, enabled=True).first()
            self.current = queue is not None and queue.to_settings() == self.settings
        return self.current


def hold_queue(name: str) -> RelayResult | None:
    """Relay ``name`` for one lease; None when it is disabled or gone. Errors are logged and recorded."""
    queue = RelayedQueue.objects.select_related("connection").filter(name=name, enabled=True).first()
    if queue is None:
        return None
    lease = settings.RELAY_LEASE_SECONDS
    status, _ = QueueStatus.objects.get_or_create(queue=queue)
    QueueStatus.objects.filter(pk=status.pk).update(lease_until=timezone.now() + timedelta(seconds=lease + 5))
    result = None
    try:
        result = relay_queue(queue, follow=lease, keep_going=ConfigWatch(queue))
    except RelayError as exc:
        failures = QueueStatus.objects.values_list("failures_in_a_row", flat=True).get(pk=status.pk)
        logger.error("queue=%s relay failed (%d in a row, next attempt in %d s): %s",
                     name, failures, backoff(failures).total_seconds(), exc)
    finally:
        QueueStatus.objects.filter(pk=status.pk).update(lease_until=None)
    return result
