"""Asking for relay tasks: at most one waits in Celery's queue per relayed queue, whoever asks."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError

from ..models import QueueStatus

logger = logging.getLogger(__name__)

SLICE_TASK = "relay.relay_slice"


def request_slices(queue_ids: Iterable[int], countdown: float | None = None) -> list[int]:
    """Queue a relay task for each of these queues that has none waiting, none running and no backoff.

    Wake-ups of several workers, the sweeps of several beats and a slice that
    left work all ask; the conditional update lets one of them win per queue.
    A task queued long ago and never started (its message lost) no longer
    counts after ``RELAY_QUEUED_TASK_STALE_SECONDS``. With ``countdown`` the tasks
    start no sooner than that many seconds from now. Returns the queues asked for.
    """
    ids = list(set(queue_ids))
    if not ids:
        return []
    now = timezone.now()
    stale = now - timedelta(seconds=settings.RELAY_QUEUED_TASK_STALE_SECONDS)
    # One transaction: were Django's database to go away between marking and reading the marks back,
    # a mark with no task behind it would hold the queue until it went stale.
    with transaction.atomic():
        QueueStatus.objects.filter(
            Q(queued_at__isnull=True) | Q(queued_at__lt=stale),
            Q(lease_until__isnull=True) | Q(lease_until__lt=now),
            Q(backoff_until__isnull=True) | Q(backoff_until__lte=now),
            queue_id__in=ids, queue__enabled=True,
        ).update(queued_at=now)
        # The rows this call marked carry its exact time (to the microsecond): a concurrent call marks
        # others, or finds these taken.
        won = list(QueueStatus.objects.filter(queue_id__in=ids, queued_at=now).values_list("queue_id", flat=True))
    sent = []
    for queue_id in won:
        try:
            current_app.send_task(SLICE_TASK, (queue_id,), queue=current_app.conf.task_default_queue,
                                  countdown=countdown)
            sent.append(queue_id)
        except OperationalError as exc:
            # Celery's broker is down: the next wake-up or sweep asks again.
            QueueStatus.objects.filter(queue_id=queue_id, queued_at=now).update(queued_at=None)
            logger.warning("could not queue a relay task (queue id %d): %s", queue_id, exc)
    return sent
