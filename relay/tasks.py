"""Thin Celery tasks over relay.schedule: the dispatcher beat runs, and one task per queue lease."""
from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from kombu.exceptions import OperationalError

from . import schedule

logger = logging.getLogger(__name__)


@shared_task(name="relay.dispatch", ignore_result=True)
def dispatch() -> list[str]:
    """Start a holding task for every enabled queue that has none."""
    names = schedule.due_queues()
    for name in names:
        # A task still waiting when the next dispatch runs is stale: that one replaces it.
        hold_queue.apply_async((name,), expires=settings.RELAY_DISPATCH_SECONDS * 2)
    return names


@shared_task(name="relay.hold_queue", ignore_result=True,
             soft_time_limit=settings.RELAY_TASK_SOFT_TIME_LIMIT,
             time_limit=settings.RELAY_TASK_SOFT_TIME_LIMIT + 30)
def hold_queue(name: str) -> None:
    """Relay one queue for a lease, then hand over to a successor so no event waits for the next dispatch."""
    result = schedule.hold_queue(name)
    if result is not None and not result.busy:
        try:
            hold_queue.apply_async((name,), expires=settings.RELAY_LEASE_SECONDS)
        except OperationalError as exc:
            # Celery's broker is down: the dispatcher starts the queue again once it is back.
            logger.warning("queue=%s: could not hand over to a successor task: %s", name, exc)
