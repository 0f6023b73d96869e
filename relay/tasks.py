"""Thin Celery tasks over relay.runs.scheduling: beat's sweep and queue samples, and one bounded slice of one queue."""
from __future__ import annotations

from celery import shared_task
from django.conf import settings

from .engine.connections import process_pool
from .runs.scheduling.samples import record_samples as sample_queues
from .runs.scheduling.slices import run_slice
from .runs.scheduling.sweep import sweep as sweep_sources


@shared_task(name="relay.sweep", ignore_result=True)
def sweep() -> None:
    """Find the queues with work in every source database (one query each) and queue their relay tasks."""
    sweep_sources(process_pool(settings.RELAY_IDLE_CONNECTION_SECONDS))


@shared_task(name="relay.relay_slice", ignore_result=True,
             soft_time_limit=settings.RELAY_TASK_SOFT_TIME_LIMIT,
             time_limit=settings.RELAY_TASK_SOFT_TIME_LIMIT + 30)
def relay_slice(queue_id: int) -> None:
    """Relay one queue for a slice of about ``RELAY_SLICE_SECONDS``; it asks for another when work is left."""
    run_slice(queue_id)


@shared_task(name="relay.record_samples", ignore_result=True, soft_time_limit=60, time_limit=90)
def record_samples() -> None:
    """Record every enabled queue's lag, pending events and published count (one query per source database)."""
    sample_queues(process_pool(settings.RELAY_IDLE_CONNECTION_SECONDS),
                  unless_sampled_within=settings.RELAY_SAMPLE_SECONDS / 2)
