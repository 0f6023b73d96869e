"""What a setting may hold: numeric bounds, names, hosts, connection strings, file paths and TLS options.

One set of rules for the models (hence the admin) and both importers, so a
value refused in one place is refused in all of them, with the same words.
"""
from __future__ import annotations

import os
import ssl
import unicodedata
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator

from .core.connection_strings import (
    InvalidConnectionString,
    check_amqp_url,
    check_host_port,
    check_postgres_dsn,
    env_reference_name,
    is_url,
)

POSTGRES_DSN_EXPECTED = "expected a libpq connection string (dbname=... host=...) or a postgresql:// URL"


def checked_amqp_url(value: str) -> str:
    """``env:NAME`` as it is, or the AMQP URL checked and rebuilt percent-encoded.

    Raises :class:`InvalidConnectionString` in the words every caller uses,
    never quoting the value (it may hold a password).
    """
    value = value.strip()
    return value if env_reference_name(value) is not None else check_amqp_url(value)


def checked_postgres_dsn(value: str) -> str:
    """``env:NAME`` as it is, a PostgreSQL URL (rebuilt percent-encoded) or a libpq string libpq can read.

    Raises :class:`InvalidConnectionString` as :func:`checked_amqp_url` does.
    """
    value = value.strip()
    if env_reference_name(value) is not None:
        return value
    if not is_url(value) and "=" not in value:
        raise InvalidConnectionString(POSTGRES_DSN_EXPECTED)
    try:
        return check_postgres_dsn(value)
    except InvalidConnectionString as exc:
        raise InvalidConnectionString(f"{POSTGRES_DSN_EXPECTED}: {exc}") from None


@dataclass(frozen=True)
class Bounds:
    """The range a numeric setting must lie in."""

    minimum: float
    maximum: float

    def validators(self) -> list[Any]:
        return [MinValueValidator(self.minimum), MaxValueValidator(self.maximum)]

    def problem(self, value: float) -> str | None:
        """Why ``value`` is out of bounds, or None."""
        if not self.minimum <= value <= self.maximum:
            return f"must be at least {self.minimum:g} and at most {self.maximum:g}, got {value:g}"
        return None


PORT = Bounds(1, 65535)
#: AMQP negotiates the heartbeat as a 16-bit number of seconds; 0 turns it off.
HEARTBEAT = Bounds(0, 65535)
CONNECT_TIMEOUT = Bounds(0.1, 300)
CONFIRM_TIMEOUT = Bounds(0.1, 3600)
MAX_FAILURES = Bounds(1, 10_000)
#: pgq.event_retry takes an int4 of seconds; beyond a day an event is better dead-lettered and replayed.
RETRY_DELAY = Bounds(0, 86_400)
WAIT_DURATION = Bounds(0, 3_600)
#: RabbitMQ's max_message_size may be set up to 512 MiB.
MAX_MESSAGE_SIZE = Bounds(1, 536_870_912)

# Control and format characters, line and paragraph separators, lone surrogates (which no database stores).
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot be a name (of a queue, consumer, connection, virtual host, user), or None.

    >>> name_problem("orders"), name_problem("ord\\x00ers"), name_problem("a\\nb")
    (None, 'must be one line without control characters (line breaks, tabs, NUL)', \
'must be one line without control characters (line breaks, tabs, NUL)')
    """
    if any(unicodedata.category(char) in _REFUSED_CATEGORIES for char in value):
        return "must be one line without control characters (line breaks, tabs, NUL)"
    if value != value.strip():
        return "must not start or end with a space"
    return None


def validate_name(value: str) -> None:
    problem = name_problem(value)
    if problem:
        raise ValidationError(problem, code="invalid_name")


def validate_secret_text(value: str) -> None:
    """A password or URL: anything printable, never a control character (and the message never shows it)."""
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in value):
        raise ValidationError("must not contain line breaks, tabs, NUL or other control characters",
                              code="invalid_secret")


def hosts_problem(value: str) -> str | None:
    """Why a comma-separated list of ``host``/``host:port``/``[v6]:port`` is not valid, or None."""
    hosts = [host.strip() for host in value.split(",")]
    if not any(hosts):
        return "give at least one host"
    for host in hosts:
        if not host:
            return "an empty host between commas"
        try:
            check_host_port(host)
        except InvalidConnectionString as exc:
            return f"{host!r}: {exc}" if name_problem(host) is None else str(exc)
    return None


def validate_hosts(value: str) -> None:
    problem = hosts_problem(value)
    if problem:
        raise ValidationError(problem, code="invalid_hosts")


def path_problem(value: str) -> str | None:
    """Why a file or directory path is not usable as written (it is not looked up), or None."""
    if not value:
        return None
    problem = name_problem(value)
    if problem:
        return problem
    if not os.path.isabs(value):
        return "must be an absolute path (the worker's working directory is not the admin's)"
    return None


def validate_path(value: str) -> None:
    problem = path_problem(value)
    if problem:
        raise ValidationError(problem, code="invalid_path")


def tls_protocol_problem(value: str) -> str | None:
    from .amqp.broker import _tls_version

    if not value:
        return None
    try:
        _tls_version(value)
    except ValueError:
        return "unknown TLS version: TLSv1_2 or TLSv1_3 (blank: the library's secure default)"
    return None


def validate_tls_protocol(value: str) -> None:
    problem = tls_protocol_problem(value)
    if problem:
        raise ValidationError(problem, code="invalid_tls_protocol")


def tls_problems(*, ca_certs: str = "", ca_path: str = "", ca_data: str = "", protocol: str = "",
                 certfile: str = "", keyfile: str = "", password: str = "", ciphers: str = "") -> dict[str, str]:
    """What is wrong with TLS options, by option, found by loading them as the relay will (files on this host).

    Cheap: no system CAs are loaded. A client key that needs a password and has
    none is reported here, instead of OpenSSL prompting on the terminal later.
    """
    problems: dict[str, str] = {}
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for option, path, want_dir in (("ca_certs", ca_certs, False), ("ca_path", ca_path, True),
                                   ("certfile", certfile, False), ("keyfile", keyfile, False)):
        problem = path_problem(path) or (_missing(path, want_dir) if path else None)
        if problem:
            problems[option] = problem
    if ca_certs and "ca_certs" not in problems:
        try:
            context.load_verify_locations(cafile=ca_certs)
        except (ssl.SSLError, OSError, ValueError):
            problems["ca_certs"] = "not a PEM file of CA certificates"
    if ca_data:
        try:
            context.load_verify_locations(cadata=ca_data)
        except (ssl.SSLError, ValueError, TypeError):
            problems["ca_data"] = "not PEM-encoded CA certificates"
    problem = tls_protocol_problem(protocol)
    if problem:
        problems["protocol"] = problem
    if ciphers:
        try:
            context.set_ciphers(ciphers)
        except ssl.SSLError:
            problems["ciphers"] = "no cipher can be selected with this OpenSSL cipher list"
    if keyfile and not certfile:
        problems["keyfile"] = "a client key needs its client certificate file"
    if certfile and "certfile" not in problems and "keyfile" not in problems:
        try:
            # A callable: OpenSSL asks it for the password instead of prompting on a terminal.
            context.load_cert_chain(certfile, keyfile or None, lambda: password.encode())
        except ssl.SSLError:
            problems["certfile"] = ("the client certificate and key cannot be loaded: not PEM, not a pair, or the "
                                    "key is encrypted and its password is missing or wrong")
        except OSError:
            problems["certfile"] = "cannot be read"
    return problems


def _missing(path: str, want_dir: bool) -> str | None:
    if want_dir:
        return None if os.path.isdir(path) else "no such directory on this host"
    if not os.path.isfile(path):
        return "no such file on this host"
    if not os.access(path, os.R_OK):
        return "cannot be read by this process"
    return None
