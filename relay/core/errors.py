"""The relay's own exceptions: library errors become these at the boundary, with a reason a user can act on."""


class RelayError(Exception):
    """Base of every error the relay reports to its caller."""


class SourceUnavailable(RelayError):
    """The source PostgreSQL cannot be reached or refused us; no batch was finished."""


class TargetUnavailable(RelayError):
    """The target PostgreSQL of a split queue cannot be reached or refused us; no batch was finished."""


class BrokerUnavailable(RelayError):
    """RabbitMQ cannot be reached or refused us; no batch was finished."""


class ConfigError(RelayError):
    """A configuration file that cannot be imported, naming the key at fault by its path in the file."""

    def __init__(self, path: str, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class InvalidConfiguration(RelayError):
    """A queue or connection whose stored settings cannot be used as they are; names the field, never a secret."""


class InvalidEvent(RelayError, ValueError):
    """An event refused where it is written, because the relay could never publish it; names the field and the rule."""

    def __init__(self, field: str, rule: str):
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")
