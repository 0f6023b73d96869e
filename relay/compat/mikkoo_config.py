"""mikkoo's YAML configuration read into frozen settings, each bad key reported by its path."""
from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import yaml
from django.conf import settings
from django.core.validators import slug_re
from django.utils.text import slugify

from ..core.connection_strings import InvalidConnectionString
from ..core.errors import ConfigError
from ..secret_refs import check_reference
from ..validation import (
    HEARTBEAT,
    MAX_FAILURES,
    PORT,
    RETRY_DELAY,
    WAIT_DURATION,
    Bounds,
    checked_amqp_url,
    hosts_problem,
    name_problem,
    path_problem,
)
from .config_files import BoundedYamlLoader, read_text, yaml_problem
from .mikkoo_environment import environment_notes
from .postgres_dsn import postgres_dsn

# Logging and Daemon configure mikkoo's own process and sentry_dsn, statsd and poll_interval its monitoring:
# this project takes them from the environment, so the import notes which variables to set
# (relay.compat.mikkoo_environment); poll_interval and Daemon have no counterpart.
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
    """Read and check the mikkoo configuration file at ``path``; raises ConfigError.

    A file over ``RELAY_IMPORT_MAX_BYTES`` is refused before it is read.
    """
    return parse(read_text(path))


def parse(text: str) -> MikkooConfig:
    """Check a mikkoo configuration given as YAML text; raises ConfigError naming the first bad key.

    YAML whose aliases would expand to more than ``RELAY_IMPORT_MAX_NODES``
    values (a "billion laughs") is refused before anything is built from it.
    """
    if len(text) > settings.RELAY_IMPORT_MAX_BYTES:
        raise ConfigError("", f"too large: over {settings.RELAY_IMPORT_MAX_BYTES:,} characters "
                              "(RELAY_IMPORT_MAX_BYTES)")
    try:
        data = yaml.load(text, Loader=BoundedYamlLoader)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError("", f"not valid YAML: {yaml_problem(exc)}") from None
    except yaml.YAMLError:
        raise ConfigError("", "not valid YAML") from None
    except RecursionError:
        raise ConfigError("", "not valid YAML: nested too deeply") from None
    if data is None:
        raise ConfigError("", "the file is empty")
    application = _Mapping(data, "", _TOP_KEYS).mapping("Application", _APPLICATION_KEYS)
    workers = application.mapping("workers", keys=None)
    if not workers.value:
        raise ConfigError(workers.path, "no workers defined")
    queues: list[QueueConfig] = []
    notes: list[str] = []
    seen: dict[str, str] = {}
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
    source_url = worker.postgres_dsn("postgres_url")
    connection, connection_notes = _connection(worker)
    queue = QueueConfig(
        path=worker.path,
        name=name,
        queue_name=worker.name("queue", worker_name),
        source_url=source_url,
        consumer_name=worker.name("consumer_name", "mikkoo"),
        confirm=worker.boolean("confirm", True),
        max_failures=worker.integer("max_failures", 10, bounds=MAX_FAILURES),
        retry_delay=worker.integer("retry_interval" if "retry_interval" in worker.value else "retry_delay",
                                   10, bounds=RETRY_DELAY),
        wait_duration=worker.number("wait_duration", 10.0, bounds=WAIT_DURATION),
        unregister=worker.boolean("unregister", True),
        connection=connection,
    )
    return queue, notes + connection_notes


def _connection(worker: _Mapping) -> tuple[ConnectionConfig, list[str]]:
    if "rabbitmq_url" in worker.value:
        if "rabbitmq" in worker.value:
            raise ConfigError(worker.path, "give rabbitmq or rabbitmq_url, not both")
        try:
            # The URL is never echoed: without a scheme, its password cannot be told apart to be masked.
            url = checked_amqp_url(worker.secret("rabbitmq_url"))
        except InvalidConnectionString as exc:
            raise ConfigError(worker.at("rabbitmq_url"), str(exc)) from None
        return ConnectionConfig(url=url), []
    if "rabbitmq" not in worker.value:
        raise ConfigError(worker.at("rabbitmq"), "required key missing (or give rabbitmq_url)")
    rabbitmq = worker.mapping("rabbitmq", _RABBITMQ_KEYS)
    hosts = rabbitmq.name("host", "localhost")
    problem = hosts_problem(hosts)
    if problem:
        raise ConfigError(rabbitmq.at("host"), problem)
    options: dict[str, Any] = {
        "hosts": hosts,
        "port": rabbitmq.integer("port", 5672, bounds=PORT),
        "vhost": rabbitmq.name("vhost", "/"),
        "username": rabbitmq.name("username", "guest"),
        "password": rabbitmq.secret("password", "guest", blank=True),
        "heartbeat": rabbitmq.integer("heartbeat_interval", 300, bounds=HEARTBEAT),
    }
    ssl_options = rabbitmq.mapping("ssl_options", _SSL_KEYS, required=False)
    if ssl_options is None:
        return ConnectionConfig(**options), []
    if not ssl_options.value:
        # mikkoo connects without TLS when ssl_options is empty; the import must not change that.
        return ConnectionConfig(**options), [
            f"{ssl_options.path}: empty, so no TLS (as with mikkoo); give at least protocol: 2 for TLS"]
    return ConnectionConfig(
        **options,
        use_tls=True,
        ca_certs=ssl_options.file_path("ca_certs"),
        ca_path=ssl_options.file_path("ca_path"),
        ca_data=ssl_options.string("ca_data", "", blank=True),
        tls_protocol=_tls_protocol(ssl_options),
        certfile=ssl_options.file_path("certfile"),
        keyfile=ssl_options.file_path("keyfile"),
        key_password=ssl_options.secret("password", "", blank=True),
        ciphers=ssl_options.name("ciphers", "", blank=True),
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


class _Mapping:
    """One mapping of the file, with its path; a key it does not know is an error, not silently ignored."""

    def __init__(self, value: Any, path: str, keys: Iterable[str] | None):
        if not isinstance(value, dict):
            expected = "a mapping" if path else "a mapping with an Application key at the top"
            # Only the kind of value: a worker given as a bare URL would show its password.
            raise ConfigError(path, f"expected {expected}, got {_shown(value, secret=True)}")
        known = tuple(keys) if keys is not None else tuple(value)
        self.value: dict[Any, Any] = value
        self.path = path
        for key in value:
            if key not in known:
                raise ConfigError(self.at(key), f"unknown key (known here: {', '.join(sorted(known))})")

    def at(self, key: Any) -> str:
        # A key holding a line break or NUL is shown escaped: an error stays one line.
        text = str(key)
        if name_problem(text.strip()) is not None:
            text = text.encode("unicode_escape").decode("ascii")
        return f"{self.path}/{text}" if self.path else text

    @overload
    def mapping(self, key: str, keys: Iterable[str] | None, required: Literal[True] = ...) -> _Mapping: ...
    @overload
    def mapping(self, key: str, keys: Iterable[str] | None, required: bool) -> _Mapping | None: ...

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

    def name(self, key: str, default: Any = _REQUIRED, *, blank: bool = False) -> str:
        """A name (of a queue, consumer, host, user ...): stripped, one line, no control characters."""
        value = self.string(key, default, blank=blank).strip()
        problem = name_problem(value)
        if problem:
            raise ConfigError(self.at(key), problem)
        return value

    def secret(self, key: str, default: Any = _REQUIRED, *, blank: bool = False) -> str:
        """A password or URL, or env:NAME; described in errors only by its kind."""
        value = self.string(key, default, secret=True, blank=blank)
        problem = check_reference(value) if value.startswith("env:") else None
        if problem:
            raise ConfigError(self.at(key), problem)
        if any(unicodedata.category(char) in ("Cc", "Cs") for char in value):
            raise ConfigError(self.at(key), "must not contain line breaks, tabs, NUL or other control characters")
        return value

    def file_path(self, key: str) -> str:
        """An absolute file or directory path, or empty."""
        value = self.string(key, "", blank=True).strip()
        problem = path_problem(value)
        if problem:
            raise ConfigError(self.at(key), problem)
        return value

    def postgres_dsn(self, key: str) -> str:
        return postgres_dsn(self.secret(key), self.at(key))

    def integer(self, key: str, default: Any = _REQUIRED, *, minimum: int = 0,
                maximum: int | None = None, bounds: Bounds | None = None) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.at(key), f"expected an integer, got {_shown(value)}")
        if bounds is not None:
            minimum, maximum = int(bounds.minimum), int(bounds.maximum)
        if value < minimum:
            raise ConfigError(self.at(key), f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(self.at(key), f"must be at least {minimum} and at most {maximum}, got {value}")
        return value

    def number(self, key: str, default: Any = _REQUIRED, *, bounds: Bounds | None = None) -> float:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(self.at(key), f"expected a number of seconds, got {_shown(value)}")
        if not 0 <= value < math.inf:
            raise ConfigError(self.at(key), f"must be a finite number, at least 0, got {value}")
        if bounds is not None and not bounds.minimum <= value <= bounds.maximum:
            raise ConfigError(self.at(key), f"must be at least {bounds.minimum:g} and at most {bounds.maximum:g} "
                                            f"seconds, got {value:g}")
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
