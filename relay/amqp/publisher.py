"""Publishing with kombu over py-amqp and pipelined publisher confirms; knows nothing of PgQ.

A window of messages is published ``mandatory`` on a confirm channel without
waiting, then acks, nacks and returns are collected until every message is
settled or the confirm timeout passes. Each message gets its own verdict:
``None`` when RabbitMQ confirmed it, or the reason it was not delivered.
The frames are the relay's own (:mod:`relay.amqp.frames`) while py-amqp
encodes as they were verified against (:mod:`relay.amqp.frame_check`), and
go through py-amqp's ``basic_publish`` otherwise.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from ..core.errors import BrokerUnavailable
from .broker import BrokerLink, BrokerSettings, close_quietly
from .confirms import BrokerClosed, ConfirmWindow, Verdict
from .frame_check import own_frames_usable, py_amqp_message
from .frames import publish_frames
from .message import Message, MessageLimits

logger = logging.getLogger(__name__)

#: Reply codes with which RabbitMQ closes a channel or connection because of something a message
#: carried (a property or header it refuses, a frame it cannot take): not a restart (320) or a network loss.
REFUSAL_CODES = frozenset({403, 404, 406, 501, 502, 503, 504, 505, 506, 530, 540, 541})


class Publisher:
    """Publishes windows of messages on a confirm channel of its own, over a (possibly shared) broker link.

    Example::

        with Publisher(BrokerSettings(hosts=("rabbit-1", "rabbit-2"))) as publisher:
            verdicts = publisher.publish(messages)
            failed = [(m, why) for m, why in zip(messages, verdicts) if why]

    Given :class:`BrokerSettings` it owns its connection and closes it when
    done; given a :class:`~relay.amqp.broker.BrokerLink` it opens only a channel,
    and the link's owner keeps the connection for the next queue.

    Raises :class:`BrokerUnavailable` when RabbitMQ cannot be reached; a
    connection lost in the middle of a window fails the messages in flight
    and is reopened once before the rest of the window is published.
    """

    #: Bytes of frames encoded before they are written: a window goes out in a few system calls, not one per
    #: message, and a large body is not copied into one huge buffer.
    write_chunk = 256 * 1024
    #: Whether to write the relay's own frames or publish through py-amqp's basic_publish (checked once per
    #: process); a subclass may decide otherwise.
    own_frames_usable = staticmethod(own_frames_usable)

    def __init__(self, broker: BrokerSettings | BrokerLink, *, confirm: bool = True) -> None:
        self._owns_link = isinstance(broker, BrokerSettings)
        self.link = BrokerLink(broker) if isinstance(broker, BrokerSettings) else broker
        self.settings = self.link.settings
        self.confirm = confirm
        self._channel: Any = None
        self._channel_connection: Any = None  # the connection the channel is on: a shared link may reconnect
        self._tag = 0
        self._in_flight: list[ConfirmWindow] = []
        self._write_window = self._write_frames if self.own_frames_usable() else self._publish_each

    def __enter__(self) -> Publisher:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # connection management

    def connect(self) -> None:
        """Connect (to the first reachable host) and open the channel; raise :class:`BrokerUnavailable` if none is."""
        self.link.connect()
        if self._channel is None or self._channel_connection is not self.link.connection:
            try:
                self._open_channel()
            except self.link.connect_errors as exc:
                self.link.close()
                raise BrokerUnavailable(f"RabbitMQ {self.settings.display()}: opening a channel failed: "
                                        f"{self.link.describe(exc)}") from None

    def _open_channel(self) -> None:
        # After a broker-side close py-amqp revives a channel in place, and a
        # revived confirm channel never confirms again (py-amqp #285, #445):
        # every replacement is a brand new channel put in confirm mode.
        if self._channel is not None:
            close_quietly(self._channel)
            self._channel = None
        connection = self.link.require_connection()
        channel = connection.channel()
        if self.confirm:
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
        channel.events["basic_return"].add(self._on_return)
        self._channel = channel
        self._channel_connection = connection
        self._tag = 0

    def close(self) -> None:
        """Close the channel, and the connection when this publisher owns it."""
        channel, self._channel = self._channel, None
        if self._owns_link:
            self.link.close()
        elif channel is not None and self.link.connected:
            close_quietly(channel)
        self.link.last_used = time.monotonic()

    def _drop_connection(self) -> None:
        self._channel = None
        self.link.close()

    def limits(self) -> MessageLimits:
        """What a message must respect on this connection: its frame size, login user and message size."""
        self.connect()
        return MessageLimits(frame_max=self.link.require_connection().connection.frame_max,
                             user_id=self.settings.login_user(), max_message_size=self.settings.max_message_size)

    # flow control

    def _wait_while_blocked(self) -> None:
        """During a memory or disk alarm, wait for RabbitMQ's word instead of publishing into a full pipe."""
        while self.link.blocked and self.link.connection is not None:
            for window in self._in_flight:
                # Confirms are held back by the alarm, not lost: no window times out meanwhile.
                window.deadline = time.monotonic() + self.settings.confirm_timeout
            try:
                self.link.connection.drain_events(timeout=1.0)
            except TimeoutError:
                self.link.connection.heartbeat_check()

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
        self._read_waiting_frames()
        self._wait_while_blocked()
        exchanges = {m.exchange for m in messages}
        try:
            missing = self.link.missing_exchanges(exchanges)
        except self.link.errors as exc:
            self._lost(exc)
            self.connect()
            missing = self.link.missing_exchanges(exchanges)
        self._write_window(window, missing)
        if not self.confirm:
            self._in_flight.remove(window)
        self.link.last_used = time.monotonic()
        return window

    def _read_waiting_frames(self) -> None:
        """Take in what RabbitMQ sent meanwhile (acks, returns, a connection.blocked), without waiting.

        py-amqp does this before every message it publishes; once per window is enough to notice a block.
        """
        try:
            connection = self.link.require_connection()
            for _ in range(1000):
                connection.drain_events(timeout=0)
        except TimeoutError:
            pass
        except self.link.errors as exc:
            self._lost(exc)
            self.connect()

    def _write_frames(self, window: ConfirmWindow, missing: dict[str, str]) -> None:
        """Encode the window's frames a chunk at a time and write each chunk through the transport.

        A connection lost while writing fails the messages in flight and is
        reopened once for the rest of the window; lost again, the window fails.
        """
        messages, verdicts = window.messages, window.verdicts
        index, reconnected = 0, False
        while index < len(messages):
            frames, sent, size = [], [], 0
            connection = self.link.require_connection().connection
            channel_id, frame_max, mandatory = self._channel.channel_id, connection.frame_max, self.confirm
            while index < len(messages) and size < self.write_chunk:
                message = messages[index]
                if missing and message.exchange in missing:
                    verdicts[index] = missing[message.exchange]
                else:
                    try:
                        data = publish_frames(channel_id, message, mandatory, frame_max)
                    except (ValueError, TypeError, OverflowError) as exc:
                        # Built before any byte is written: this message's own failure, not the window's.
                        verdicts[index] = f"could not be sent: {type(exc).__name__}: {self.link.describe(exc)}"
                    else:
                        frames.append(data)
                        sent.append(index)
                        size += len(data)
                index += 1
            self._sent(window, sent)
            chunk = b"".join(frames)
            try:
                connection.transport.write(chunk)
                connection.bytes_sent += 1  # py-amqp's heartbeats count writes
            except self.link.errors as exc:
                self._lost_while_writing(exc, reconnected)
                reconnected = True

    def _publish_each(self, window: ConfirmWindow, missing: dict[str, str]) -> None:
        """Publish the window message by message through py-amqp's basic_publish, as py-amqp encodes them.

        A connection lost meanwhile fails the messages in flight and is reopened
        once for the rest of the window; lost again, the window fails.
        """
        messages, verdicts = window.messages, window.verdicts
        reconnected = False
        for index, message in enumerate(messages):
            if missing and message.exchange in missing:
                verdicts[index] = missing[message.exchange]
                continue
            try:
                self._channel.basic_publish(py_amqp_message(message), exchange=message.exchange,
                                            routing_key=message.routing_key, mandatory=self.confirm)
            except self.link.errors as exc:
                self._sent(window, [index])  # it may have gone out in part: it fails with the others in flight
                self._lost_while_writing(exc, reconnected)
                reconnected = True
            except (ValueError, TypeError, OverflowError) as exc:
                # Raised while encoding, before any byte is written: this message's own failure.
                verdicts[index] = f"could not be sent: {type(exc).__name__}: {self.link.describe(exc)}"
            else:
                # Recorded once written: its confirm is read at the next publish or settle, never before.
                self._sent(window, [index])

    def _sent(self, window: ConfirmWindow, indices: list[int]) -> None:
        """The messages at ``indices`` go out next, in order: they take the channel's next delivery tags."""
        if self.confirm:
            window.sent(self._tag + 1, indices)
            self._tag += len(indices)

    def _lost_while_writing(self, exc: BaseException, reconnected: bool) -> None:
        """Fail the messages in flight and reconnect, unless the connection was already reopened for this window."""
        self._lost(exc)
        if reconnected:
            raise BrokerUnavailable(
                f"RabbitMQ {self.settings.display()}: publishing failed: {self.link.describe(exc)}") from None
        self.connect()

    def settle(self, window: ConfirmWindow) -> list[Verdict]:
        """Wait until every message of ``window`` is confirmed, refused or timed out; its verdicts."""
        try:
            while window.unsettled:
                self._wait_while_blocked()
                remaining = window.deadline - time.monotonic()
                if remaining <= 0:
                    self._time_out()
                    break
                connection = self.link.require_connection()
                try:
                    connection.drain_events(timeout=min(remaining, 1.0))
                except TimeoutError:
                    connection.heartbeat_check()
                except self.link.errors as exc:
                    self._lost(exc)
        finally:
            if window in self._in_flight:
                self._in_flight.remove(window)
            self.link.last_used = time.monotonic()
        return window.verdicts

    def _lost(self, exc: BaseException) -> None:
        """The connection or channel failed: every message in flight on it is undelivered."""
        reason = self.link.describe(exc)
        channel = isinstance(exc, self.link.channel_errors)
        if getattr(exc, "reply_code", None) == 404:
            # An exchange believed to exist was deleted since it was checked: ask again before the next
            # window (and each round of isolating the culprits) publishes to it and closes the channel again.
            self.link.forget_exchanges()
        if getattr(exc, "reply_code", None) in REFUSAL_CODES:
            closed = "channel" if channel else "connection"
            verdict: str = BrokerClosed(f"refused by RabbitMQ, which closed the {closed}: {reason}")
        else:
            verdict = f"connection lost before confirm: {reason}"
        logger.warning("RabbitMQ %s: %s; %d unconfirmed messages will be retried", self.settings.display(), reason,
                       sum(len(w.unsettled) for w in self._in_flight))
        for window in self._in_flight:
            window.fail_unsettled(verdict)
        if channel and self.link.connected:
            self._open_channel()
        else:
            self._drop_connection()

    def _time_out(self) -> None:
        for window in self._in_flight:
            window.fail_unsettled(f"no confirm from RabbitMQ within {self.settings.confirm_timeout:g} s")
        # Late confirms would be counted against the wrong messages on a new channel, and a
        # connection that let confirms go missing is not one to keep.
        self._drop_connection()
