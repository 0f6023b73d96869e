"""Publishing with kombu over py-amqp and pipelined publisher confirms; knows nothing of PgQ.

A window of messages is published ``mandatory`` on a confirm channel without
waiting, then acks, nacks and returns are collected until every message is
settled or the confirm timeout passes. Each message gets its own verdict:
``None`` when RabbitMQ confirmed it, or the reason it was not delivered.
"""
from __future__ import annotations

import logging
import ssl
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import takewhile
from typing import Any

from kombu import Connection, Producer

from .amqp_tls import TlsTransport
from .errors import BrokerUnavailable
from .mapping import Message
from .secrets import redact_url, scrub, secrets_in

logger = logging.getLogger(__name__)

Verdict = str | None


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
            # py-amqp ignores an SSLContext given as ``ssl``: this transport applies it (relay.amqp_tls).
            common["ssl"] = self.tls.context()
            common["transport"] = TlsTransport
        if self.url:
            return [(redact_url(self.url), {"hostname": self.url, **common})]
        result = []
        for host in self.hosts:
            name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
            port = int(port) if port else self.port
            result.append((f"{name}:{port}", {"hostname": name, "port": port, "userid": self.username,
                                              "password": self.password, "virtual_host": self.vhost,
                                              **common}))
        return result

    def secrets(self) -> tuple[str, ...]:
        found = [self.password, self.tls.password if self.tls else ""]
        found.extend(secrets_in(self.url))
        return tuple(s for s in found if s)


class RawProducer(Producer):
    """A kombu Producer that sends bodies exactly as given.

    kombu serialises a body published without a content type; an event's
    ``ev_data`` is already the body, whatever its type, so it passes through.
    """

    def _prepare(self, body, serializer=None, content_type=None, content_encoding=None,
                 compression=None, headers=None):
        return body, content_type, content_encoding


class ConfirmWindow:
    """Bookkeeping of one published window: which delivery tag is which message, and its verdict."""

    def __init__(self, messages: Sequence[Message], confirm_timeout: float) -> None:
        self.messages = messages
        self.verdicts: list[Verdict] = [None] * len(messages)
        self.deadline = time.monotonic() + confirm_timeout
        #: delivery tag -> index of the message, in publishing order
        self.unsettled: OrderedDict[int, int] = OrderedDict()
        self.returned: dict[int, str] = {}
        # Returns are rare: unsettled messages are indexed by identity only when one
        # comes, each message once, instead of for every message published.
        self._by_identity: defaultdict[tuple, deque[int]] = defaultdict(deque)
        self._last_indexed = 0

    def sent(self, tag: int, index: int) -> None:
        self.unsettled[tag] = index

    def on_return(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> bool:
        """Note a returned message; False if it was not published in this window."""
        # A return comes before the ack of the same message, in publishing order,
        # so the oldest unsettled, unreturned message with the same identity is the one returned.
        self._index_new_messages()
        tags = self._by_identity.get(_identity(exchange, routing_key, message.properties))
        while tags and tags[0] not in self.unsettled:
            tags.popleft()
        if not tags:
            return False
        self.returned[tags.popleft()] = f"unroutable: {getattr(exc, 'reply_text', exc)}"
        return True

    def _index_new_messages(self) -> None:
        new_tags = list(takewhile(lambda tag: tag > self._last_indexed, reversed(self.unsettled)))
        for tag in reversed(new_tags):
            message = self.messages[self.unsettled[tag]]
            self._by_identity[_identity(message.exchange, message.routing_key, message.properties)].append(tag)
        if new_tags:
            self._last_indexed = new_tags[0]

    def on_ack(self, tag: int, multiple: bool) -> None:
        for settled in self._settle(tag, multiple):
            self.verdicts[self.unsettled.pop(settled)] = self.returned.pop(settled, None)

    def on_nack(self, tag: int, multiple: bool) -> None:
        for settled in self._settle(tag, multiple):
            self.verdicts[self.unsettled.pop(settled)] = "nacked by RabbitMQ"

    def _settle(self, tag: int, multiple: bool) -> list[int]:
        if not multiple:
            return [tag] if tag in self.unsettled else []
        settled = []
        for pending in self.unsettled:
            if pending > tag:
                break
            settled.append(pending)
        return settled

    def fail_unsettled(self, reason: str) -> None:
        for index in self.unsettled.values():
            self.verdicts[index] = reason
        self.unsettled.clear()
        # Delivery tags start again at 1 on the new channel that follows.
        self._by_identity.clear()
        self._last_indexed = 0


def _identity(exchange: str, routing_key: str, properties: dict[str, Any]) -> tuple:
    return exchange, routing_key, properties.get("message_id"), properties.get("correlation_id")


class Publisher:
    """Publishes windows of messages to one RabbitMQ connection.

    Example::

        with Publisher(BrokerSettings(hosts=("rabbit-1", "rabbit-2"))) as publisher:
            verdicts = publisher.publish(messages)
            failed = [(m, why) for m, why in zip(messages, verdicts) if why]

    Raises :class:`BrokerUnavailable` when RabbitMQ cannot be reached; a
    connection lost in the middle of a window fails the messages in flight
    and is reopened once before the rest of the window is published.
    """

    exchange_check_seconds = 5.0
    producer_class = RawProducer

    def __init__(self, settings: BrokerSettings, *, confirm: bool = True) -> None:
        self.settings = settings
        self.confirm = confirm
        self._connection: Connection | None = None
        self._channel: Any = None
        self._probe: Any = None
        self._producer: Producer | None = None
        self._tag = 0
        self._in_flight: list[ConfirmWindow] = []
        self._blocked = False
        self._exchanges: dict[str, tuple[bool, float]] = {}

    def __enter__(self) -> Publisher:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # connection management

    def connect(self) -> None:
        """Connect to the first reachable host; raise :class:`BrokerUnavailable` if none is."""
        if self._connection is not None:
            return
        errors = []
        for label, arguments in self.settings.candidates():
            connection = Connection(**arguments, transport_options={
                "on_blocked": self._on_blocked, "on_unblocked": self._on_unblocked})
            try:
                connection.connect()
                self._connection = connection
                self._open_channel()
                if errors:
                    # Failing over is worth knowing: the hosts before this one are down or refusing us.
                    logger.warning("RabbitMQ failover: %s; connected to %s instead", "; ".join(errors), label)
                return
            except (*connection.connection_errors, *connection.channel_errors, OSError) as exc:
                errors.append(f"{label}: {self._describe(exc)}")
                self._drop(connection)
                self._connection = None
        raise BrokerUnavailable(f"RabbitMQ {self.settings.display()}: cannot connect: {'; '.join(errors)}")

    def _describe(self, exc: BaseException) -> str:
        text = str(exc).strip() or type(exc).__name__
        return scrub(text.splitlines()[0], *self.settings.secrets())

    def _open_channel(self) -> None:
        # After a broker-side close py-amqp revives a channel in place, and a
        # revived confirm channel never confirms again (py-amqp #285, #445):
        # every replacement is a brand new channel put in confirm mode.
        self._close_channel("_channel")
        channel = self._connection.channel()
        if self.confirm:
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
        self._producer = self.producer_class(channel, auto_declare=False, on_return=self._on_return)
        self._channel = channel
        self._tag = 0

    def _close_channel(self, attribute: str) -> None:
        channel = getattr(self, attribute)
        setattr(self, attribute, None)
        if channel is not None:
            try:
                channel.close()
            except Exception:  # a channel the broker already closed may fail to close again
                logger.debug("closing a dead channel failed", exc_info=True)

    def close(self) -> None:
        """Close the connection."""
        self._channel = self._probe = self._producer = None
        if self._connection is not None:
            self._drop(self._connection)
        self._connection = None

    @staticmethod
    def _drop(connection: Connection) -> None:
        try:
            connection.collect()
        except Exception:  # nothing to save on a connection being thrown away
            logger.debug("releasing a connection failed", exc_info=True)

    # flow control

    def _on_blocked(self, reason: str) -> None:
        self._blocked = True
        logger.warning("RabbitMQ %s blocked publishing (%s): waiting until it is unblocked",
                       self.settings.display(), reason)

    def _on_unblocked(self) -> None:
        self._blocked = False
        logger.info("RabbitMQ %s unblocked publishing: resuming", self.settings.display())

    def _wait_while_blocked(self) -> None:
        """During a memory or disk alarm, wait for RabbitMQ's word instead of publishing into a full pipe."""
        while self._blocked and self._connection is not None:
            for window in self._in_flight:
                # Confirms are held back by the alarm, not lost: no window times out meanwhile.
                window.deadline = time.monotonic() + self.settings.confirm_timeout
            try:
                self._connection.drain_events(timeout=1.0)
            except TimeoutError:
                self._connection.heartbeat_check()

    # confirm callbacks

    def _on_ack(self, tag: int, multiple: bool) -> None:
        for window in self._in_flight:
            window.on_ack(tag, multiple)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        for window in self._in_flight:
            window.on_nack(tag, multiple)

    def _on_return(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
        for window in self._in_flight:
            if window.on_return(exc, exchange, routing_key, message):
                return

    # exchange checks

    def _missing_exchanges(self, names: set[str]) -> dict[str, str]:
        """Exchanges that do not exist, with the reason; checked on a separate probe channel.

        Publishing to a missing exchange makes RabbitMQ close the channel, which
        fails every unconfirmed message on it: so each distinct exchange is
        checked first (the answer is kept briefly), on a channel of its own.
        """
        now = time.monotonic()
        missing = {}
        for name in names:
            if not name:
                continue
            cached = self._exchanges.get(name)
            if cached is None or now - cached[1] > self.exchange_check_seconds:
                cached = (self._exchange_exists(name), now)
                self._exchanges[name] = cached
            if not cached[0]:
                missing[name] = f"exchange {name!r} does not exist"
        return missing

    def _exchange_exists(self, name: str) -> bool:
        if self._probe is None:
            self._probe = self._connection.channel()
        try:
            self._probe.exchange_declare(exchange=name, type="direct", passive=True)
            return True
        except self._connection.channel_errors as exc:
            if getattr(exc, "reply_code", None) != 404:
                raise
            self._close_channel("_probe")
            return False

    # publishing

    def publish(self, messages: Sequence[Message]) -> list[Verdict]:
        """Publish a window of messages and return one verdict per message, in order."""
        return self.settle(self.send(messages))

    def send(self, messages: Sequence[Message]) -> ConfirmWindow:
        """Publish a window without waiting; :meth:`settle` it later for the verdicts.

        Sending the next window before settling the previous one keeps RabbitMQ
        busy while its confirms are on the way: the wait for confirms, a fifth
        of the time with one window at a time, overlaps with useful work.
        """
        window = ConfirmWindow(messages, self.settings.confirm_timeout)
        self._in_flight.append(window)
        self.connect()
        self._wait_while_blocked()
        try:
            missing = self._missing_exchanges({m.exchange for m in messages})
        except (*self._connection.connection_errors, *self._connection.channel_errors) as exc:
            self._lost(exc)
            self.connect()
            missing = self._missing_exchanges({m.exchange for m in messages})
        for index, message in enumerate(messages):
            reason = missing.get(message.exchange)
            if reason:
                window.verdicts[index] = reason
            else:
                self._send(window, index, message)
        if not self.confirm:
            self._in_flight.remove(window)
        return window

    def settle(self, window: ConfirmWindow) -> list[Verdict]:
        """Wait until every message of ``window`` is confirmed, refused or timed out; its verdicts."""
        try:
            while window.unsettled:
                self._wait_while_blocked()
                remaining = window.deadline - time.monotonic()
                if remaining <= 0:
                    self._time_out()
                    break
                try:
                    self._connection.drain_events(timeout=min(remaining, 1.0))
                except TimeoutError:
                    self._connection.heartbeat_check()
                except (*self._connection.connection_errors, *self._connection.channel_errors) as exc:
                    self._lost(exc)
        finally:
            if window in self._in_flight:
                self._in_flight.remove(window)
        return window.verdicts

    def _send(self, window: ConfirmWindow, index: int, message: Message) -> None:
        for attempt in (1, 2):
            try:
                self._publish_one(message)
                break
            except (*self._connection.connection_errors, *self._connection.channel_errors) as exc:
                self._lost(exc)
                if attempt == 2:
                    raise BrokerUnavailable(
                        f"RabbitMQ {self.settings.display()}: publishing failed: {self._describe(exc)}"
                    ) from None
                self.connect()
        if self.confirm:
            self._tag += 1
            window.sent(self._tag, index)

    def _publish_one(self, message: Message) -> None:
        properties = dict(message.properties)
        expiration = properties.pop("expiration", None)
        self._producer.publish(
            message.body,
            exchange=message.exchange,
            routing_key=message.routing_key,
            mandatory=self.confirm,
            delivery_mode=properties.pop("delivery_mode", None),
            priority=properties.pop("priority", None),
            content_type=properties.pop("content_type", None),
            content_encoding=properties.pop("content_encoding", None),
            headers=properties.pop("headers", None),
            # kombu takes seconds and sends str(int(seconds * 1000)): Decimal keeps it exact.
            expiration=Decimal(expiration) / 1000 if expiration is not None else None,
            **properties,
        )

    def _lost(self, exc: BaseException) -> None:
        """The connection or channel failed: every message in flight on it is undelivered."""
        reason = self._describe(exc)
        logger.warning("RabbitMQ %s: %s; %d unconfirmed messages will be retried", self.settings.display(), reason,
                       sum(len(w.unsettled) for w in self._in_flight))
        for window in self._in_flight:
            window.fail_unsettled(f"connection lost before confirm: {reason}")
        if isinstance(exc, self._connection.channel_errors) and self._connection.connected:
            self._open_channel()
        else:
            self.close()

    def _time_out(self) -> None:
        for window in self._in_flight:
            window.fail_unsettled(f"no confirm from RabbitMQ within {self.settings.confirm_timeout:g} s")
        # Late confirms would be counted against the wrong messages on a new channel.
        self.close()
