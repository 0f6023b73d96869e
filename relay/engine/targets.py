"""Which target a queue's settings call for, from a table: the one place that asks which kind it is."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from .amqp_target import AmqpTarget
from .connections import Connections, OwnConnections
from .loop import QueueRelay, RelayObserver, Target
from .settings import AmqpTargetSettings, PgqTargetSettings, QueueSettings
from .split_target import SplitTarget

TargetFactory = Callable[[QueueSettings, Connections, Sequence[RelayObserver]], Target]

TARGETS: dict[type, TargetFactory] = {
    AmqpTargetSettings: AmqpTarget,
    # Batches go whole to the target database: no broker connection to lend, no windows to report.
    PgqTargetSettings: lambda settings, connections, observers: SplitTarget(settings),
}


def engine_for(settings: QueueSettings, connections: Connections | None = None,
               observers: Sequence[RelayObserver] = ()) -> QueueRelay:
    """The loop for ``settings``, with the target its target settings call for.

    ``connections`` defaults to connections of the run's own, closed after it.
    """
    connections = connections or OwnConnections()
    target = TARGETS[type(settings.target)](settings, connections, observers)
    return QueueRelay(settings, target, connections, observers)
