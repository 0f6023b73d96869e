"""mikkoo's YAML configuration read into frozen settings, each bad key reported by its path."""
from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from django.core.validators import slug_re
from django.utils.text import slugify

from .errors import ConfigError
from .mikkoo_environment import environment_notes

# Logging and Daemon configure mikkoo's own process and sentry_dsn, statsd and poll_interval its monitoring:
# this project takes them from the environment, so the import notes which variables to set
# (relay.mikkoo_environment); poll_interval and Daemon have no counterpart.
_TOP_KEYS = ("Application", "Logging", "Daemon")
_APPLICATION_KEYS = ("workers", "sentry_dsn", "statsd", "poll_interval")
_WORKER_KEYS = ("postgres_url", "queue", "consumer_name", "confirm", "max_failures", "retry_delay",
                "retry_interval", "wait_duration", "unregister", "rabbitmq", "rabbitmq_url", "processes")
_RABBITMQ_KEYS = ("host", "port", "vhost", "username", "password", "heartbeat_interval", "ssl_options")
_SSL_KEYS = ("ca_certs", "ca_path", "ca_data", "protocol", "certfile", "keyfile", "password", "ciphers")

# mikkoo passes ssl_options.protocol to ssl.SSLContext as a PROTOCOL_* number; the relay keeps a minimum
# version instead, "" meaning the library's default (PROTOCOL_TLS and TLS_CLIENT negotiate the best one).
_TLS_PROTOCOLS: dict[int | str, str] = {
    2: "", 16: "", 3: "TLSv1", 4: "TLSv1_1", 5: "TLSv1_2",
    "TLS": "", "SSLV23": "", "TLS_CLIENT": "",
    "TLSV1": "TLSv1", "TLSV1_1": "TLSv1_1", "TLSV1_2": "TLSv1_2", "TLSV1_3": "TLSv1_3",
}
_REQUIRED = object()


@dataclass(frozen=True)
class ConnectionConfig:
    """One worker's RabbitMQ settings, named as BrokerConnection's fields."""

    url: str = field(default="", repr=False)
    hosts: str = "localhost"
    port: int = 5672
    vhost: str = "/"
    username: str = "guest"
    password: str = field(default="guest", repr=False)
    heartbeat: int = 300
    use_tls: bool = False
    ca_certs: str = ""
    ca_path: str = ""
    ca_data: str = ""
    tls_protocol: str = ""
    certfile: str = ""
    keyfile: str = ""
    key_password: str = field(default="", repr=False)
    ciphers: str = ""

    def model_fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class QueueConfig:
    """One mikkoo worker, named as RelayedQueue's fields."""

    path: str
    name: str
    queue_name: str
    source_url: str = field(repr=False)
    consumer_name: str
    confirm: bool
    max_failures: int
    retry_delay: int
    wait_duration: float
    unregister: bool
    connection: ConnectionConfig

    def model_fields(self) -> dict[str, Any]:
        """The fields the file decides; enabled and persistent stay as the admin set them."""
        return {name: getattr(self, name) for name in (
            "queue_name", "source_url", "consumer_name", "confirm", "max_failures", "retry_delay",
            "wait_duration", "unregister")}


@dataclass(frozen=True)
class MikkooConfig:
    """The workers of a mikkoo configuration file, and notes on what of it the relay does not use."""

    queues: tuple[QueueConfig, ...]
    notes: tuple[str, ...] = ()


def load(path: str | Path) -> MikkooConfig:
    """Read and check the mikkoo configuration file at ``path``; raises ConfigError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "not a text file (UTF-8 expected)") from None
    return parse(text)


def parse(text: str) -> MikkooConfig:
    """Check a mikkoo configuration given as YAML text; raises ConfigError naming the first bad key."""
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError("", f"not valid YAML: {_yaml_problem(exc)}") from None
    except yaml.YAMLError:
        raise ConfigError("", "not valid YAML") from None
    if data is None:
        raise ConfigError("", "the file is empty")
    application = _Mapping(data, "", _TOP_KEYS).mapping("Application", _APPLICATION_KEYS)
    workers = application.mapping("workers", keys=None)
    if not workers.value:
        raise ConfigError(workers.path, "no workers defined")
    queues, notes, seen = [], [], {}
    for worker_name, value in workers.value.items():
        path = workers.at(worker_name)
        if not isinstance(worker_name, str):
            raise ConfigError(path, "a worker name must be a string (put it in quotes)")
        name = worker_name if slug_re.match(worker_name) else slugify(worker_name)
        if not name:
            raise ConfigError(path, "no name can be made of this worker name (use letters, digits, - and _)")
        if name != worker_name:
            notes.append(f"{path}: not a valid name (letters, digits, - and _ only), imported as {name!r}")
        if name in seen:
            raise ConfigError(path, f"imported as {name!r}, the same name as {seen[name]}")
        seen[name] = path
        queue, worker_notes = _worker(name, worker_name, _Mapping(value, path, _WORKER_KEYS))
        queues.append(queue)
        notes.extend(worker_notes)
    # Monitoring and logging come from the environment here: the notes say what to set.
    notes.extend(environment_notes(application.value, data.get("Logging") if isinstance(data, dict) else None))
    return MikkooConfig(tuple(queues), tuple(notes))


def _worker(name: str, worker_name: str, worker: _Mapping) -> tuple[QueueConfig, list[str]]:
    notes = []
    if "retry_delay" in worker.value and "retry_interval" in worker.value:
        raise ConfigError(worker.path, "give retry_delay or retry_interval (mikkoo 3's name), not both")
    if "processes" in worker.value:
        processes = worker.integer("processes", minimum=1)
        notes.append(f"{worker.at('processes')}: {processes} ignored: the relay works on a queue "
                     "in one task at a time")
    source_url = worker.string("postgres_url", secret=True)
    if not _is_postgres_dsn(source_url):
        raise ConfigError(worker.at("postgres_url"),
                          "expected a postgresql:// URL or a libpq connection string (key=value ...)")
    connection, connection_notes = _connection(worker)
    queue = QueueConfig(
        path=worker.path,
        name=name,
        queue_name=worker.string("queue", worker_name),
        source_url=source_url,
        consumer_name=worker.string("consumer_name", "mikkoo"),
        confirm=worker.boolean("confirm", True),
        max_failures=worker.integer("max_failures", 10, minimum=1),
        retry_delay=worker.integer("retry_interval" if "retry_interval" in worker.value else "retry_delay",
                                   10),
        wait_duration=worker.number("wait_duration", 10.0),
        unregister=worker.boolean("unregister", True),
        connection=connection,
    )
    return queue, notes + connection_notes


def _connection(worker: _Mapping) -> tuple[ConnectionConfig, list[str]]:
    if "rabbitmq_url" in worker.value:
        if "rabbitmq" in worker.value:
            raise ConfigError(worker.path, "give rabbitmq or rabbitmq_url, not both")
        url = worker.string("rabbitmq_url", secret=True)
        # The URL is not echoed: without a scheme, its password cannot be told apart to be masked.
        if _scheme(url) not in ("amqp", "amqps"):
            raise ConfigError(worker.at("rabbitmq_url"), "expected an amqp:// or amqps:// URL")
        return ConnectionConfig(url=url), []
    if "rabbitmq" not in worker.value:
        raise ConfigError(worker.at("rabbitmq"), "required key missing (or give rabbitmq_url)")
    rabbitmq = worker.mapping("rabbitmq", _RABBITMQ_KEYS)
    settings: dict[str, Any] = {
        "hosts": rabbitmq.string("host", "localhost"),
        "port": rabbitmq.integer("port", 5672, minimum=1, maximum=65535),
        "vhost": rabbitmq.string("vhost", "/"),
        "username": rabbitmq.string("username", "guest"),
        "password": rabbitmq.string("password", "guest", secret=True, blank=True),
        "heartbeat": rabbitmq.integer("heartbeat_interval", 300),
    }
    ssl_options = rabbitmq.mapping("ssl_options", _SSL_KEYS, required=False)
    if ssl_options is None:
        return ConnectionConfig(**settings), []
    if not ssl_options.value:
        # mikkoo connects without TLS when ssl_options is empty; the import must not change that.
        return ConnectionConfig(**settings), [
            f"{ssl_options.path}: empty, so no TLS (as with mikkoo); give at least protocol: 2 for TLS"]
    return ConnectionConfig(
        **settings,
        use_tls=True,
        ca_certs=ssl_options.string("ca_certs", "", blank=True),
        ca_path=ssl_options.string("ca_path", "", blank=True),
        ca_data=ssl_options.string("ca_data", "", blank=True),
        tls_protocol=_tls_protocol(ssl_options),
        certfile=ssl_options.string("certfile", "", blank=True),
        keyfile=ssl_options.string("keyfile", "", blank=True),
        key_password=ssl_options.string("password", "", secret=True, blank=True),
        ciphers=ssl_options.string("ciphers", "", blank=True),
    ), []


def _tls_protocol(ssl_options: _Mapping) -> str:
    value = original = ssl_options.value.get("protocol", 2)
    if isinstance(value, str):
        value = value.strip().upper().removeprefix("PROTOCOL_").replace(".", "_")
        value = int(value) if value.isdigit() else value
    if isinstance(value, (int, str)) and not isinstance(value, bool) and value in _TLS_PROTOCOLS:
        return _TLS_PROTOCOLS[value]
    raise ConfigError(ssl_options.at("protocol"), "expected an ssl.PROTOCOL_* number (2, 3, 4, 5 or 16) or "
                      f"TLSv1, TLSv1_1, TLSv1_2 or TLSv1_3, got {_shown(original)}")


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:
        return ""


def _is_postgres_dsn(dsn: str) -> bool:
    return _scheme(dsn) in ("postgres", "postgresql") or ("=" in dsn and "://" not in dsn)


class _Mapping:
    """One mapping of the file, with its path; a key it does not know is an error, not silently ignored."""

    def __init__(self, value: Any, path: str, keys: Iterable[str] | None):
        if not isinstance(value, dict):
            expected = "a mapping" if path else "a mapping with an Application key at the top"
            # Only the kind of value: a worker given as a bare URL would show its password.
            raise ConfigError(path, f"expected {expected}, got {_shown(value, secret=True)}")
        known = tuple(keys) if keys is not None else tuple(value)
        for key in value:
            if key not in known:
                raise ConfigError(f"{path}/{key}" if path else str(key),
                                  f"unknown key (known here: {', '.join(sorted(known))})")
        self.value: dict[Any, Any] = value
        self.path = path

    def at(self, key: Any) -> str:
        return f"{self.path}/{key}" if self.path else str(key)

    def mapping(self, key: str, keys: Iterable[str] | None, required: bool = True) -> _Mapping | None:
        """The mapping under ``key`` knowing ``keys`` (None: any); None if it is optional and empty."""
        value = self.value.get(key)
        if value is None and not required:
            return None
        if key not in self.value:
            raise ConfigError(self.at(key), "required key missing")
        return _Mapping(value, self.at(key), keys)

    def string(self, key: str, default: Any = _REQUIRED, *, secret: bool = False, blank: bool = False) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            hint = " (put it in quotes)" if isinstance(value, (int, float)) else ""
            raise ConfigError(self.at(key), f"expected a string, got {_shown(value, secret)}{hint}")
        if not blank and key in self.value and not value.strip():
            raise ConfigError(self.at(key), "must not be empty")
        return value

    def integer(self, key: str, default: Any = _REQUIRED, *, minimum: int = 0,
                maximum: int | None = None) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.at(key), f"expected an integer, got {_shown(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise ConfigError(self.at(key), f"must be at least {minimum}{upper}, got {value}")
        return value

    def number(self, key: str, default: Any = _REQUIRED) -> float:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(self.at(key), f"expected a number of seconds, got {_shown(value)}")
        if not 0 <= value < math.inf:
            raise ConfigError(self.at(key), f"must be a finite number, at least 0, got {value}")
        return float(value)

    def boolean(self, key: str, default: Any = _REQUIRED) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(self.at(key), f"expected true or false, got {_shown(value)}")
        return value

    def _get(self, key: str, default: Any) -> Any:
        if key in self.value:
            return self.value[key]
        if default is _REQUIRED:
            raise ConfigError(self.at(key), "required key missing")
        return default


def _shown(value: Any, secret: bool = False) -> str:
    """How a wrong value is shown in an error: a secret (or a whole file) only by its kind."""
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if secret:
        if isinstance(value, bool):
            return "true or false"
        if isinstance(value, (int, float)):
            return "a number"
        return "a string" if isinstance(value, str) else f"a {type(value).__name__}"
    return repr(value)


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    # Only the problem and where it is: PyYAML's own message quotes the line, which may hold a password.
    where = ""
    if exc.problem_mark is not None:
        where = f" (line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1})"
    context = ""
    if exc.context:
        started = f" from line {exc.context_mark.line + 1}" if exc.context_mark is not None else ""
        context = f"{exc.context}{started}: "
    return f"{context}{exc.problem or 'cannot be parsed'}{where}"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in a mapping instead of keeping the last."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable):
                if key in seen:
                    raise ConfigError("", f"key {key!r} given twice (line {key_node.start_mark.line + 1})")
                seen.add(key)
        return super().construct_mapping(node, deep)
