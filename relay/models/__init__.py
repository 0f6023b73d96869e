"""What the admin configures, by kind, and the one conversion of a row into the engine's settings.

- :mod:`.connections`: RabbitMQ connections (:class:`BrokerConnection`).
- :mod:`.queues`: relayed queues (:class:`RelayedQueue`).
- :mod:`.dead_letters`: events given up on (:class:`DeadLetter`).
- :mod:`.status`: what the relay did and sees (:class:`QueueStatus`, :class:`QueueState`,
  :func:`stuck_after`, :class:`QueueSample`, :class:`RelayProcess`).
- :mod:`.pages`: no tables, the admin pages' places and permissions (:class:`AuditStatus`,
  :class:`QueueOverview`).
- :mod:`.engine_settings`: ``to_settings()`` of a connection and a queue, ``env:NAME`` read when
  used, and a stored value's problem as :class:`~relay.core.errors.InvalidConfiguration`.

Everything is importable from here, as Django and ``from relay.models import X`` expect.
"""
from .connections import BrokerConnection
from .dead_letters import DeadLetter
from .engine_settings import ChecksItsSettings
from .pages import AuditStatus, QueueOverview
from .queues import RelayedQueue
from .status import QueueSample, QueueState, QueueStatus, RelayProcess, stuck_after

__all__ = [
    "AuditStatus",
    "BrokerConnection",
    "ChecksItsSettings",
    "DeadLetter",
    "QueueOverview",
    "QueueSample",
    "QueueState",
    "QueueStatus",
    "RelayProcess",
    "RelayedQueue",
    "stuck_after",
]
