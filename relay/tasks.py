"""Thin Celery tasks over relay.scheduling: beat's sweep and queue samples, and one bounded slice of one queue.

Django's own database may go away under any of them (a restart, a failover):
a slice is then sent again with a growing countdown, so that the queue's
"a task is queued" mark stays true and nothing waits for it to go stale; the
sweep and the samples simply run again on beat's next beat. One line each,
no traceback: the worker's log says what happened and that it goes on.
"""
from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import Error as DjangoDatabaseError
from django.db import close_old_connections

from .engine.connections import process_pool
from .scheduling.samples import record_samples as sample_queues
from .scheduling.slices import run_slice
from .scheduling.sweep import sweep as sweep_sources

logger = logging.getLogger(__name__)

#: Countdowns of a slice sent again while Django's database is away: 1, 2, 4, 8, then every 10 s.
MAX_RETRY_COUNTDOWN = 10


def _django_database_lost(what: str, exc: DjangoDatabaseError) -> None:
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    logger.warning("%s: Django's database failed (%s: %s)", what, type(exc).__name__, first_line)
    close_old_connections()  # the broken connection is replaced on the next use


@shared_task(name="relay.sweep", ignore_result=True)
def sweep() -> None:
    """Find the queues with work in every source database (one query each) and queue their relay tasks."""
    try:
        sweep_sources(process_pool(settings.RELAY_IDLE_CONNECTION_SECONDS))
    except DjangoDatabaseError as exc:
        _django_database_lost("sweep skipped, the next one runs as scheduled", exc)


@shared_task(name="relay.relay_slice", ignore_result=True, bind=True,
             soft_time_limit=settings.RELAY_TASK_SOFT_TIME_LIMIT,
             time_limit=settings.RELAY_TASK_SOFT_TIME_LIMIT + 30)
def relay_slice(self, queue_id: int) -> None:
    """Relay one queue for a slice of about ``RELAY_SLICE_SECONDS``; it asks for another when work is left."""
    try:
        run_slice(queue_id, worker=self.request.hostname or "")
    except DjangoDatabaseError as exc:
        countdown = min(MAX_RETRY_COUNTDOWN, 2 ** self.request.retries)
        _django_database_lost(f"queue id {queue_id}: slice sent again in {countdown} s", exc)
        raise self.retry(countdown=countdown, max_retries=None) from None


@shared_task(name="relay.record_samples", ignore_result=True, soft_time_limit=60, time_limit=90)
def record_samples() -> None:
    """Record every enabled queue's lag, pending events and published count (one query per source database)."""
    try:
        sample_queues(process_pool(settings.RELAY_IDLE_CONNECTION_SECONDS),
                      unless_sampled_within=settings.RELAY_SAMPLE_SECONDS / 2)
    except DjangoDatabaseError as exc:
        _django_database_lost("queue samples skipped, the next ones run as scheduled", exc)
