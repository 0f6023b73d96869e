"""One AMQP connection to a RabbitMQ server or cluster, shared by the publishers of every queue that uses it.

Where to connect (:class:`BrokerSettings`, failover over several hosts), TLS,
RabbitMQ's flow control (``connection.blocked``) and the check that an
exchange exists all belong to the connection, not to one queue's channel.
"""
from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from kombu import Connection

from ..core.connection_strings import AMQP_SCHEMES, parse_url, redact_url, scrub, secrets_in
from ..core.errors import BrokerUnavailable
from .tls import TlsTransport

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TlsSettings:
    """mikkoo's ``ssl_options``: certificates, key and ciphers for a TLS connection."""

    ca_certs: str = ""
    ca_path: str = ""
    ca_data: str = ""
    protocol: str = ""
    certfile: str = ""
    keyfile: str = ""
    password: str = field(default="", repr=False)
    ciphers: str = ""

    def context(self) -> ssl.SSLContext:
        """An SSL context that verifies the server against the given CAs."""
        context = ssl.create_default_context(
            cafile=self.ca_certs or None, capath=self.ca_path or None, cadata=self.ca_data or None)
        if self.protocol:
            context.minimum_version = _tls_version(self.protocol)
        if self.certfile:
            context.load_cert_chain(self.certfile, self.keyfile or None, self.password or None)
        if self.ciphers:
            context.set_ciphers(self.ciphers)
        return context


def _tls_version(protocol: str) -> ssl.TLSVersion:
    name = protocol.upper().replace("PROTOCOL_", "").replace(".", "_").replace("V", "v")
    try:
        return ssl.TLSVersion[{"TLSv1_2": "TLSv1_2", "TLSv1_3": "TLSv1_3", "TLSv1_1": "TLSv1_1",
                               "TLSv1": "TLSv1", "TLS": "MINIMUM_SUPPORTED"}.get(name, name)]
    except KeyError:
        raise ValueError(f"unknown TLS protocol {protocol!r}") from None


@dataclass(frozen=True)
class BrokerSettings:
    """Where and how to connect to RabbitMQ."""

    url: str = field(default="", repr=False)
    hosts: tuple[str, ...] = ("localhost",)
    port: int = 5672
    vhost: str = "/"
    username: str = "guest"
    password: str = field(default="guest", repr=False)
    heartbeat: int = 300
    connect_timeout: float = 5.0
    confirm_timeout: float = 30.0
    tls: TlsSettings | None = None
    #: RabbitMQ's max_message_size (bytes of body): it closes the channel on a larger message.
    #: Not negotiated, so configured; RabbitMQ 3.x's default (4.x: 16 MiB).
    max_message_size: int = 134_217_728

    def login_user(self) -> str:
        """The user this connection logs in as (RabbitMQ requires a message's user_id to be it)."""
        if self.url:
            return parse_url(self.url, AMQP_SCHEMES).username or "guest"
        return self.username

    def display(self) -> str:
        """Where this points, without any password."""
        if self.url:
            return redact_url(self.url)
        return f"amqp{'s' if self.tls else ''}://{self.username}@{','.join(self.hosts)}:{self.port}{self.vhost}"

    def candidates(self) -> list[tuple[str, dict[str, Any]]]:
        """A label and the kombu Connection arguments for each host, in the order to try them."""
        common = {"heartbeat": self.heartbeat, "connect_timeout": self.connect_timeout,
                  "transport": "pyamqp"}
        if self.tls:
            # py-amqp ignores an SSLContext given as ``ssl``: this transport applies it (relay.amqp.tls).
            common["ssl"] = self.tls.context()
            common["transport"] = TlsTransport
        if self.url:
            return [(redact_url(self.url), {"hostname": self.url, **common})]
        result = []
        for host in self.hosts:
            name, _, port_text = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
            port = int(port_text) if port_text else self.port
            result.append((f"{name}:{port}", {"hostname": name, "port": port, "userid": self.username,
                                              "password": self.password, "virtual_host": self.vhost,
                                              **common}))
        return result

    def secrets(self) -> tuple[str, ...]:
        found = [self.password, self.tls.password if self.tls else ""]
        found.extend(secrets_in(self.url))
        return tuple(s for s in found if s)


class BrokerLink:
    """A kombu connection to the first reachable host of :class:`BrokerSettings`, opened on demand.

    Example::

        link = BrokerLink(BrokerSettings(hosts=("rabbit-1", "rabbit-2")))
        with Publisher(link) as orders, Publisher(link) as invoices:  # one connection, two channels
            ...
        link.close()
    """

    #: How long an exchange RabbitMQ said exists is believed to exist without asking again.
    exchange_check_seconds = 5.0

    def __init__(self, settings: BrokerSettings) -> None:
        self.settings = settings
        self.connection: Connection | None = None
        self.blocked = False
        #: When the connection was last used (time.monotonic()); an idle one is closed by its owner.
        self.last_used = time.monotonic()
        self._probe: Any = None
        #: exchange -> when RabbitMQ last said it exists (time.monotonic())
        self._existing: dict[str, float] = {}
        # The same for every py-amqp connection: known before one exists.
        template = Connection(transport="pyamqp")
        self.connection_errors: tuple[type[BaseException], ...] = tuple(template.connection_errors)
        self.channel_errors: tuple[type[BaseException], ...] = tuple(template.channel_errors)
        self.errors: tuple[type[BaseException], ...] = (*self.connection_errors, *self.channel_errors)
        #: What connecting or opening a channel raises when RabbitMQ cannot be reached: those and the OS's.
        self.connect_errors: tuple[type[BaseException], ...] = (*self.errors, OSError)

    @property
    def connected(self) -> bool:
        return self.connection is not None and self.connection.connected

    def require_connection(self) -> Connection:
        """The open connection, for a caller that connected first; RuntimeError if :meth:`connect` opened none."""
        if self.connection is None:
            raise RuntimeError(f"RabbitMQ {self.settings.display()}: not connected")
        return self.connection

    def connect(self) -> None:
        """Connect to the first reachable host; raise :class:`BrokerUnavailable` if none is."""
        if self.connection is not None:
            return
        errors = []
        for label, arguments in self.settings.candidates():
            connection = Connection(**arguments, transport_options={
                "on_blocked": self._on_blocked, "on_unblocked": self._on_unblocked})
            try:
                connection.connect()
            except self.connect_errors as exc:
                errors.append(f"{label}: {self.describe(exc)}")
                _drop(connection)
                continue
            self.connection = connection
            self.blocked = False
            self.last_used = time.monotonic()
            if errors:
                # Failing over is worth knowing: the hosts before this one are down or refusing us.
                logger.warning("RabbitMQ failover: %s; connected to %s instead", "; ".join(errors), label)
            return
        raise BrokerUnavailable(f"RabbitMQ {self.settings.display()}: cannot connect: {'; '.join(errors)}")

    def close(self) -> None:
        """Close the connection (and every channel on it); :meth:`connect` opens a new one."""
        self._probe = None
        self.forget_exchanges()
        if self.connection is not None:
            _drop(self.connection)
        self.connection = None

    def idle_too_long(self, now: float, limit: float) -> bool:
        """Whether the connection sat unused long enough to be closed, or to have missed its heartbeats."""
        idle = now - self.last_used
        heartbeat = self.settings.heartbeat
        return idle > limit or (heartbeat > 0 and idle > heartbeat / 2)

    def describe(self, exc: BaseException) -> str:
        """A library error's first line, without any password."""
        text = str(exc).strip() or type(exc).__name__
        return scrub(text.splitlines()[0], *self.settings.secrets())

    # flow control

    def _on_blocked(self, reason: str) -> None:
        self.blocked = True
        logger.warning("RabbitMQ %s blocked publishing (%s): waiting until it is unblocked",
                       self.settings.display(), reason)

    def _on_unblocked(self) -> None:
        self.blocked = False
        logger.info("RabbitMQ %s unblocked publishing: resuming", self.settings.display())

    # exchange checks

    def missing_exchanges(self, names: set[str]) -> dict[str, str]:
        """Exchanges that do not exist, with the reason; checked on a separate probe channel.

        Publishing to a missing exchange makes RabbitMQ close the channel, which
        fails every unconfirmed message on it: so each distinct exchange of a
        window is checked first, on a channel of its own, once for the whole window.
        """
        now = time.monotonic()
        missing = {}
        for name in names:
            if not name:
                continue
            seen = self._existing.get(name)
            if seen is not None and now - seen <= self.exchange_check_seconds:
                continue
            # Only "it exists" is kept, so that windows to a live exchange skip the round trip. "It is
            # missing" charges each event that meets it a failure, so it is asked afresh for every window:
            # an operator who declares the exchange and replays at once is believed at once. Handing events
            # back uncharged on a kept answer would not do: PgQ counts every retry (ev_retry) as a failure,
            # and while other windows kept the answer fresh those events could come round forever.
            # One probe per window still keeps the channel-closing 404 off the publishing channel.
            if self._exchange_exists(name):
                self._existing[name] = now
            else:
                missing[name] = f"exchange {name!r} does not exist"
        return missing

    def forget_exchanges(self) -> None:
        """Ask RabbitMQ again about every exchange before the next publish to it."""
        self._existing.clear()

    def _exchange_exists(self, name: str) -> bool:
        if self._probe is None:
            self._probe = self.require_connection().channel()
        try:
            self._probe.exchange_declare(exchange=name, type="direct", passive=True)
            return True
        except self.channel_errors as exc:
            if getattr(exc, "reply_code", None) != 404:
                raise
            close_quietly(self._probe)
            self._probe = None
            return False


def close_quietly(channel: Any) -> None:
    """Close a channel that may already be dead."""
    try:
        channel.close()
    except Exception:  # a channel the broker already closed may fail to close again
        logger.debug("closing a dead channel failed", exc_info=True)


def _drop(connection: Connection) -> None:
    try:
        connection.collect()
    except Exception:  # nothing to save on a connection being thrown away
        logger.debug("releasing a connection failed", exc_info=True)
