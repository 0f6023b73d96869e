"""The relay's own exceptions: library errors become these at the boundary, with a reason a user can act on."""


class RelayError(Exception):
    """Base of every error the relay reports to its caller."""


class SourceUnavailable(RelayError):
    """The source PostgreSQL cannot be reached or refused us; no batch was finished."""


class BrokerUnavailable(RelayError):
    """RabbitMQ cannot be reached or refused us; no batch was finished."""


class QueueBusy(RelayError):
    """Another process holds the queue: only one may relay it at a time."""
