"""Beat's queue samples: every minute, each enabled queue's PgQ lag and pending events and its published count.

The queue overview draws a queue's last hour from them. One query per source
database reads PgQ's figures for all of its queues, one insert stores the
samples, and one delete drops those older than ``RELAY_SAMPLE_KEEP_HOURS``.
A source database that cannot be read gets samples without PgQ's figures (a
gap in its charts); the relay tasks already report why, so this says nothing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from ..core.errors import RelayError
from ..engine.connections import Connections, SourceConnection
from ..models import QueueSample, RelayedQueue
from ..pgq.status import PgqState, read_states

logger = logging.getLogger(__name__)


@dataclass
class SampleResult:
    """What one round of sampling did."""

    samples: int = 0
    sources: int = 0
    unreadable: int = 0
    pruned: int = 0
    skipped: bool = False


def record_samples(connections: Connections, now: datetime | None = None,
                   unless_sampled_within: float = 0.0) -> SampleResult:
    """Take a sample of every enabled queue, and delete the samples past their keeping time.

    With ``unless_sampled_within`` (seconds) nothing is taken when a sample
    that recent exists: two beats running (harmless otherwise) do not double
    the samples.
    """
    now = now or timezone.now()
    if unless_sampled_within and QueueSample.objects.filter(
            taken_at__gt=now - timedelta(seconds=unless_sampled_within)).exists():
        return SampleResult(skipped=True)
    queues = list(RelayedQueue.objects.filter(enabled=True).select_related("status").order_by("pk"))
    by_source: dict[str, list[RelayedQueue]] = {}
    for queue in queues:
        try:
            by_source.setdefault(queue.source_dsn(), []).append(queue)
        except RelayError:
            pass  # an unusable configuration: sampled without PgQ's figures, its own task says why
    result = SampleResult(sources=len(by_source))
    states: dict[int, PgqState] = {}
    for dsn, group in by_source.items():
        try:
            with connections.source(dsn) as connection:
                found = read_states(SourceConnection(dsn, connection),
                                    [(queue.queue_name, queue.consumer_name) for queue in group])
        except RelayError as exc:
            result.unreadable += 1
            logger.debug("queue samples: %s", exc)
            continue
        for queue in group:
            state = found.get((queue.queue_name, queue.consumer_name))
            if state is not None and state.registered:
                states[queue.pk] = state
    samples = []
    for queue in queues:
        status = getattr(queue, "status", None)
        state = states.get(queue.pk)
        samples.append(QueueSample(
            queue=queue, taken_at=now, published=status.published if status else 0,
            consumer_lag=state.consumer_lag.total_seconds() if state and state.consumer_lag is not None else None,
            pending_events=state.pending_events if state else None))
    QueueSample.objects.bulk_create(samples)
    result.samples = len(samples)
    result.pruned = prune_samples(now)
    logger.debug("queue samples: %d taken, %d of %d source databases unreadable, %d pruned", result.samples,
                 result.unreadable, result.sources, result.pruned)
    return result


def prune_samples(now: datetime) -> int:
    """Delete the samples older than ``RELAY_SAMPLE_KEEP_HOURS``; how many."""
    cutoff = now - timedelta(hours=settings.RELAY_SAMPLE_KEEP_HOURS)
    deleted, _ = QueueSample.objects.filter(taken_at__lt=cutoff).delete()
    return deleted
