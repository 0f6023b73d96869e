"""Which target a queue's settings call for, from a table: the one place that asks which kind it is.

For each kind: how the engine relays to it, and how a health check reaches it
as the relay would (so that a failure reads the same).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..amqp.broker import BrokerLink
from ..pgq.target_database import PgqTarget
from .amqp_target import AmqpTarget
from .connections import Connections, OwnConnections
from .loop import QueueRelay, RelayObserver, Target
from .settings import AmqpTargetSettings, PgqTargetSettings, QueueSettings, TargetSettings
from .split_target import SplitTarget

TargetFactory = Callable[[QueueSettings, Connections, Sequence[RelayObserver]], Target]


class TargetProbe(PgqTarget):
    """A split queue's target database, only connected to: the relay's own connection class, nothing written."""

    application_name = "mikkoo-relay health"


def _probe_database(target: PgqTargetSettings, timeout: float) -> None:
    probe = TargetProbe(target.target_dsn)
    probe.connect_timeout = max(1, round(timeout))
    try:
        probe.connect()
    finally:
        probe.close()


def _probe_broker(target: AmqpTargetSettings, timeout: float) -> None:
    broker = dataclasses.replace(target.broker, connect_timeout=min(target.broker.connect_timeout, timeout))
    link = BrokerLink(broker)
    try:
        link.connect()
    finally:
        link.close()


@dataclass(frozen=True)
class TargetKind:
    """One kind of target: the engine's target for a queue, and a connection to it that checks it answers."""

    make: TargetFactory
    probe: Callable[[Any, float], None]


TARGETS: dict[type, TargetKind] = {
    AmqpTargetSettings: TargetKind(AmqpTarget, _probe_broker),
    # Batches go whole to the target database: no broker connection to lend, no windows to report.
    PgqTargetSettings: TargetKind(lambda settings, connections, observers: SplitTarget(settings), _probe_database),
}


def probe_target(target: TargetSettings, timeout: float) -> None:
    """Connect to ``target`` as the relay would, within about ``timeout`` seconds; raises the relay's error."""
    TARGETS[type(target)].probe(target, timeout)


def engine_for(settings: QueueSettings, connections: Connections | None = None,
               observers: Sequence[RelayObserver] = ()) -> QueueRelay:
    """The loop for ``settings``, with the target its target settings call for.

    ``connections`` defaults to connections of the run's own, closed after it.
    """
    connections = connections or OwnConnections()
    target = TARGETS[type(settings.target)].make(settings, connections, observers)
    return QueueRelay(settings, target, connections, observers)
