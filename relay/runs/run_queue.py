"""One run of a configured queue, as commands, tasks and the admin start it: the engine, then its bookkeeping."""
from __future__ import annotations

import logging
from collections.abc import Sequence

from ..core.errors import RelayError
from ..engine.connections import Connections, OwnConnections
from ..engine.loop import RelayObserver
from ..engine.results import RelayResult
from ..engine.targets import engine_for
from ..models import RelayedQueue
from ..ops import metrics
from ..ops.statsd import StatsdBatches
from .dead_letters import sync_dead_letters
from .queue_status import record_failure, record_success

logger = logging.getLogger(__name__)


class UnknownQueue(RelayError):
    """No relayed queue of that name is configured."""


def get_queue(name: str) -> RelayedQueue:
    try:
        return RelayedQueue.objects.select_related("connection").get(name=name)
    except RelayedQueue.DoesNotExist:
        known = ", ".join(RelayedQueue.objects.values_list("name", flat=True)) or "none configured"
        raise UnknownQueue(f"no relayed queue named {name!r} (known: {known})") from None


# Queues whose dead letters this process has copied into the admin and not made since: an idle
# run then skips the source query. The first run of a queue in a process always copies, which
# picks up what a crashed process committed but never copied.
_MIRRORED: set[int] = set()


def relay_queue(queue: RelayedQueue, max_batches: int | None = None, *, until: float | None = None,
                tick: bool = False, connections: Connections | None = None,
                observers: Sequence[RelayObserver] = ()) -> RelayResult:
    """Relay what is ready for ``queue``, copy new dead letters into the admin, and record how it went.

    ``max_batches``, ``until`` and ``tick`` are the engine's (:meth:`~relay.engine.loop.QueueRelay.run`);
    Prometheus' counters and statsd observe the run beside ``observers``.
    A failure is recorded in the queue's status, starting or lengthening its backoff, and raised.
    """
    connections = connections or OwnConnections()
    try:
        engine = engine_for(queue.to_settings(), connections,
                            (metrics.RelayMetrics(), StatsdBatches(), *observers))
        result = engine.run(max_batches=max_batches, until=until, tick=tick)
        if not result.busy and (result.dead_lettered or queue.pk not in _MIRRORED):
            sync_dead_letters(queue, connections)
            _MIRRORED.add(queue.pk)
    except RelayError as exc:
        _MIRRORED.discard(queue.pk)  # batches it finished before failing may hold dead letters
        metrics.record_run(queue.name, exc)
        record_failure(queue, str(exc))
        raise
    if not result.busy:
        metrics.record_run(queue.name)
        record_success(queue, result)
    return result


def record_unexpected(queue: RelayedQueue, exc: Exception) -> str:
    """A run that failed with no relay error (a bug, or input nobody foresaw): record it, log it, say it.

    It costs the queue a backoff like any failure, never the process or the other queues.
    """
    error = f"internal error: {type(exc).__name__}: {exc}"
    wait = record_failure(queue, error)
    logger.error("queue=%s relay failed (next attempt in %d s): %s", queue.name, wait.total_seconds(), error,
                 extra={"queue": queue.name})
    logger.debug("queue=%s: where the internal error happened", queue.name, exc_info=exc)
    return error
