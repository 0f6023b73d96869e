"""Beat's periodic sweep: one query per source database finds the queues with work, whatever wake-up was missed.

Wake-ups make the relay fast; the sweep makes it certain. A notification
lost while a listener reconnects or a worker restarts, a queue whose trigger
this role may not install, a batch pgqd made on its own, a dead worker's
queues: each is found by the next sweep. It also registers consumers that
are not registered yet, and starts a relay task for the queues of a source
database it cannot reach, so that their status says why.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.utils import timezone

from ..core.errors import InvalidConfiguration, RelayError
from ..engine.connections import Connections, SourceConnection
from ..models import QueueStatus, RelayedQueue
from ..ops.processes import claim_sweep
from ..pgq.watch import finish_empty_batches, readiness
from ..runs.queue_status import ensure_status_rows, record_failure
from ..runs.registration import register_consumers
from .requests import request_slices

logger = logging.getLogger(__name__)


@dataclass
class SweepResult:
    """What one sweep found and did."""

    ran: bool = True  # False: another beat swept within half a period
    sources: int = 0
    unreachable: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    requested: list[int] = field(default_factory=list)


def sweep(connections: Connections) -> SweepResult:
    """Ask every source database which of its enabled queues have work, and queue a relay task for each."""
    now = timezone.now()
    if not claim_sweep(now):
        return SweepResult(ran=False)
    enabled = RelayedQueue.objects.filter(enabled=True).select_related("status").order_by("pk")
    queues = list(enabled)
    without_status = [q for q in queues if not hasattr(q, "status")]
    if without_status:  # saved bypassing the ORM's signals (a bulk insert, raw SQL): given their rows now
        ensure_status_rows(without_status)
        queues = list(enabled)
    by_source: dict[str, list[RelayedQueue]] = {}
    wanted: list[int] = []
    for queue in queues:
        try:
            by_source.setdefault(queue.source_dsn(), []).append(queue)
        except InvalidConfiguration:
            # Its own task fails at once, records why and backs off: the others are not held up.
            wanted.append(queue.pk)
    result = SweepResult(sources=len(by_source))
    for dsn, group in by_source.items():
        try:
            with connections.source(dsn) as connection:
                source = SourceConnection(dsn, connection)
                found = readiness(source, [(q.queue_name, q.consumer_name) for q in group])
                with_batches = [key for key, state in found.items() if state.registered and state.batch_ready]
                batches_left = finish_empty_batches(source, with_batches)
        except RelayError as exc:
            # Its queues' own tasks fail fast (the pool does not retry at once) and record why, with backoff.
            result.unreachable.append(str(exc))
            wanted.extend(q.pk for q in group)
            continue
        unregistered, seen_registered, with_work = [], [], []
        for queue in group:
            key = (queue.queue_name, queue.consumer_name)
            state = found.get(key)
            if state is None or not state.registered:
                unregistered.append(queue)
                continue
            if not queue.status.registered:
                seen_registered.append(queue.pk)  # by the admin, an import or another worker
            if state.events_waiting or key in batches_left:
                wanted.append(queue.pk)
                with_work.append(queue.pk)
        QueueStatus.objects.filter(queue_id__in=seen_registered).update(consumer_registered_at=now,
                                                                        registration_error="")
        # A queue whose work waits far longer than this with no slice run is stuck (QueueStatus.stuck).
        QueueStatus.objects.filter(queue_id__in=with_work, work_waiting_since__isnull=True).update(
            work_waiting_since=now)
        result.registered += _register(unregistered, connections, now)
    result.requested = request_slices(wanted)
    return result


def _register(queues: list[RelayedQueue], connections: Connections, now) -> list[str]:
    due = [q for q in queues if q.status.backoff_until is None or q.status.backoff_until <= now]
    registered = []
    for registration in register_consumers(due, connections):
        queue = registration.queue
        if registration.error is None:
            registered.append(queue.name)
            if queue.status.registered:
                logger.warning("queue=%s: consumer %s was missing from PgQ queue %s and is registered again; "
                               "events written meanwhile are not relayed", queue.name, queue.consumer_name,
                               queue.queue_name, extra={"queue": queue.name})
            else:
                logger.info("queue=%s: consumer %s registered on PgQ queue %s", queue.name, queue.consumer_name,
                            queue.queue_name, extra={"queue": queue.name})
        else:
            wait = record_failure(queue, f"registering the PgQ consumer: {registration.error}")
            logger.error("queue=%s: PgQ consumer not registered (next attempt in %d s): %s", queue.name,
                         wait.total_seconds(), registration.error, extra={"queue": queue.name})
    return registered
