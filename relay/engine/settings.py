"""What the engine needs to relay one queue: its source, its target's settings, its failure rules. Plain values."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..amqp.broker import BrokerSettings
from ..core.connection_strings import secrets_in


@dataclass(frozen=True)
class AmqpTargetSettings:
    """The events become messages on a RabbitMQ broker."""

    broker: BrokerSettings
    confirm: bool = True
    persistent: bool = True

    def secrets(self) -> tuple[str, ...]:
        """What must never be shown of these settings: the broker's passwords."""
        return self.broker.secrets()


@dataclass(frozen=True)
class PgqTargetSettings:
    """The events are split into the PgQ queues of another database, each into the queue its ``ev_extra1`` names."""

    target_dsn: str = field(repr=False)
    create_target_queues: bool = True

    def secrets(self) -> tuple[str, ...]:
        """What must never be shown of these settings: the target database's password."""
        return secrets_in(self.target_dsn)


TargetSettings = AmqpTargetSettings | PgqTargetSettings


@dataclass(frozen=True)
class QueueSettings:
    """Everything the engine needs to relay one queue to its target."""

    name: str
    queue_name: str
    source_dsn: str = field(repr=False)
    target: TargetSettings
    consumer_name: str = "mikkoo"
    max_failures: int = 10
    retry_delay: int = 10
