"""The RabbitMQ target: a batch's events mapped, published in pipelined windows, confirmed, then finished.

A batch is finished only after every event in it was confirmed by RabbitMQ,
handed back to PgQ with ``pgq.event_retry``, or stored as a dead letter; the
retries, dead letters and ``pgq.finish_batch`` commit together. Any failure
before that commit rolls them back and PgQ hands the batch out again. When the
source database has the audit API, the audit records of the window's events are
marked confirmed or dead-lettered in that same transaction.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from ..amqp.audit_ids import producer_message_id
from ..amqp.confirms import BrokerClosed, ConfirmWindow, Verdict
from ..amqp.mapping import event_to_message
from ..amqp.message import Message, PoisonEvent
from ..amqp.publisher import Publisher
from ..core.events import Event
from ..core.identity import SequenceGenerator, new_correlation_ids, relay_identity, stable_message_ids
from ..pgq.consumer import PgqConsumer
from .connections import Connections
from .failure_policy import FailurePolicy
from .loop import RelayObserver
from .results import RelayResult
from .settings import AmqpTargetSettings, QueueSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SentWindow:
    """A window of events on its way to RabbitMQ, and those that could not even be mapped."""

    size: int
    #: The id of the window's last event (windows are in ev_id order), mapped or not.
    last_event_id: int
    events: list[Event]
    #: Events that can never be published, with the reason: dead-lettered at once.
    poison: list[tuple[Event, str]]
    #: Events whose mapping failed unexpectedly, with the reason: failures like a nack, retried.
    unmapped: list[tuple[Event, str]]
    confirms: ConfirmWindow
    #: The producer's message id of each of ``events`` (or None); None when the source has no audit.
    audit_ids: list[str | None] | None = None


class AmqpTarget:
    """Publishes a queue's batches to RabbitMQ as the relay's identity, in windows with pipelined confirms.

    ``connections`` lends the broker connection; ``observers`` are told when a
    window waits for its confirms and when they are in.
    """

    delivered_as = "published"

    def __init__(self, settings: QueueSettings, connections: Connections, observers: Sequence[RelayObserver] = (),
                 *, window_size: int = 2000, first_window_size: int = 250, max_isolation_rounds: int = 64) -> None:
        if not isinstance(settings.target, AmqpTargetSettings):
            raise TypeError(f"AmqpTarget publishes to RabbitMQ: {type(settings.target).__name__} is not for it")
        self.settings = settings
        self.target: AmqpTargetSettings = settings.target
        self.connections = connections
        self.observers = tuple(observers)
        self.policy = FailurePolicy(settings.max_failures, settings.retry_delay)
        self.window_size = window_size
        #: RabbitMQ idles until the first window is out: a short one starts it sooner.
        self.first_window_size = first_window_size
        #: Publishes one window may spend finding the messages that made RabbitMQ close the channel; the
        #: suspects left then are retried like any failure, and looked at again next time.
        self.max_isolation_rounds = max_isolation_rounds
        self.identity = relay_identity()
        self.sequence = SequenceGenerator()
        self.publisher: Publisher | None = None

    @contextmanager
    def opened(self) -> Iterator[None]:
        with (self.connections.broker(self.target.broker) as link,
              Publisher(link, confirm=self.target.confirm) as publisher):
            self.publisher = publisher
            try:
                yield
            finally:
                self.publisher = None

    def _publisher(self) -> Publisher:
        """The publisher :meth:`opened` holds: batches are relayed inside it."""
        if self.publisher is None:
            raise RuntimeError("AmqpTarget relays batches only inside opened()")
        return self.publisher

    def relay_batch(self, consumer: PgqConsumer, batch_id: int, until: float | None = None) -> RelayResult:
        """Publish one batch and finish it, or stop after a window once ``until`` has passed.

        Windows are pipelined: window N+1 is read, mapped and sent before the
        confirms of window N are collected, so RabbitMQ never waits for us. A
        batch left in the middle has what was recorded for it committed with its
        progress (``result.cut_short``): the next run goes on after its last
        confirmed event, so a large batch never holds the queue's worker for long.
        """
        started = time.monotonic()
        result = RelayResult(queue=self.settings.name, batches=1)
        try:
            in_flight: SentWindow | None = None
            full_window = self.first_window_size
            for events in consumer.iter_event_windows(batch_id, self.window_size, self.first_window_size):
                sent = self._send_window(events, audited=consumer.audited)
                if in_flight is not None:
                    self._record(consumer, batch_id, in_flight, result)
                in_flight = sent
                # A short window is the batch's last: nothing would be left to go on with.
                if until is not None and time.monotonic() >= until and len(events) >= full_window:
                    result.cut_short = True
                    break
                full_window = self.window_size
            if in_flight is not None:
                self._record(consumer, batch_id, in_flight, result)
            if result.cut_short:
                assert in_flight is not None  # the loop cuts a batch short only after sending a window
                consumer.save_progress(batch_id, in_flight.last_event_id)
                result.batches = 0
            else:
                consumer.finish_batch(batch_id)
        except BaseException:
            consumer.abandon_batch()
            raise
        result.seconds = time.monotonic() - started
        logger.info("queue=%s batch=%d %sevents=%d published=%d retried=%d dead_lettered=%d ms=%.0f",
                    self.settings.name, batch_id, "(to be continued) " if result.cut_short else "", result.events,
                    result.published, result.retried, result.dead_lettered, result.seconds * 1000,
                    # The same fields as attributes of the record, for LOG_FORMAT=json (relay.ops.logformat).
                    extra={"queue": self.settings.name, "batch": batch_id, "events": result.events,
                           "published": result.published, "retried": result.retried,
                           "dead_lettered": result.dead_lettered, "ms": round(result.seconds * 1000),
                           "continued": result.cut_short})
        return result

    def _send_window(self, window: list[Event], audited: bool = False) -> SentWindow:
        events: list[Event] = []
        messages: list[Message] = []
        poison: list[tuple[Event, str]] = []
        unmapped: list[tuple[Event, str]] = []
        queue, identity, persistent = self.settings.queue_name, self.identity, self.target.persistent
        ids = zip(window, new_correlation_ids(len(window)), self.sequence.take(len(window)),
                  stable_message_ids(queue, window), strict=True)
        publisher = self._publisher()
        limits = publisher.limits()
        for event, correlation_id, sequence, message_id in ids:
            try:
                messages.append(event_to_message(event, queue=queue, identity=identity, persistent=persistent,
                                                 correlation_id=correlation_id, sequence=sequence, limits=limits,
                                                 message_id=message_id))
                events.append(event)
            except PoisonEvent as exc:
                logger.error("queue=%s event=%d cannot be published: %s", self.settings.name, event.id, exc,
                             extra={"queue": self.settings.name, "event": event.id})
                poison.append((event, str(exc)))
            except Exception as exc:
                # A bug met by one event is that event's failure (retried, then dead-lettered), not its batch's.
                logger.exception("queue=%s event=%d: mapping failed unexpectedly", self.settings.name, event.id)
                unmapped.append((event, f"could not be mapped: {type(exc).__name__}: {exc}"))
        audit_ids = ([producer_message_id(event, message) for event, message in zip(events, messages, strict=True)]
                     if audited else None)
        return SentWindow(size=len(window), last_event_id=window[-1].id, events=events, poison=poison,
                          unmapped=unmapped, confirms=publisher.send(messages), audit_ids=audit_ids)

    def _isolate(self, messages: Sequence[Message], verdicts: list[Verdict]) -> list[Verdict]:
        """Find which messages made RabbitMQ close the channel or connection: they alone are charged a failure.

        RabbitMQ confirms nothing unconfirmed when it closes, so every message
        then in flight comes back as :class:`~relay.amqp.confirms.BrokerClosed`.
        They are published again in halves, down to one message: those
        confirmed now are delivered (a second copy is possible, with the same
        message_id), and a message that closes the channel on its own keeps
        RabbitMQ's reason as its verdict.
        """
        verdicts = list(verdicts)
        groups = [[index for index, verdict in enumerate(verdicts) if isinstance(verdict, BrokerClosed)]]
        rounds = 0
        publisher = self._publisher()
        while groups and rounds < self.max_isolation_rounds:
            group = groups.pop()
            rounds += 1
            closed = []
            for index, verdict in zip(group, publisher.publish([messages[i] for i in group]), strict=True):
                verdicts[index] = verdict
                if isinstance(verdict, BrokerClosed):
                    closed.append(index)
            if len(group) == 1 and closed:
                verdicts[group[0]] = str(verdicts[group[0]])  # the culprit, with its own reason
            elif closed:
                half = (len(closed) + 1) // 2
                groups += [closed[half:], closed[:half]] if len(closed) > 1 else [closed]
        return verdicts

    def _record(self, consumer: PgqConsumer, batch_id: int, sent: SentWindow, result: RelayResult) -> None:
        """Give every event of a sent window its fate: published, retried or dead-lettered."""
        failed: list[tuple[Event, str, bool]] = [(event, reason, True) for event, reason in sent.poison]
        recovered: list[int] = []
        failed_by_reason: dict[str, list[int]] = {}
        waited = time.monotonic()
        for observer in self.observers:
            observer.awaiting_confirms(self.settings.name, len(sent.confirms.unsettled))
        verdicts = self._publisher().settle(sent.confirms)
        if any(isinstance(verdict, BrokerClosed) for verdict in verdicts):
            verdicts = self._isolate(sent.confirms.messages, verdicts)
        for observer in self.observers:
            observer.window_settled(self.settings.name, time.monotonic() - waited, sent.size)
        for event, verdict in (*zip(sent.events, verdicts, strict=True), *sent.unmapped):
            if verdict is None:
                result.published += 1
                if event.failures:
                    recovered.append(event.id)
                continue
            failed_by_reason.setdefault(verdict, []).append(event.id)
            failed.append((event, verdict, False))
        for reason, ids in failed_by_reason.items():
            # One line per reason, not per event: a broker outage fails whole windows.
            logger.warning("queue=%s batch=%d %d events failed (event ids %d..%d): %s",
                           self.settings.name, batch_id, len(ids), ids[0], ids[-1], reason)
        fates = self.policy.sort(failed)
        self.policy.record(consumer, batch_id, fates)
        consumer.forget_failures(recovered)
        if sent.audit_ids is not None:
            self._mark_audit(consumer, sent, sent.audit_ids, verdicts, fates.dead)
        result.events += sent.size
        result.retried += len(fates.retry)
        result.dead_lettered += len(fates.dead)

    @staticmethod
    def _mark_audit(consumer: PgqConsumer, sent: SentWindow, audit_ids: list[str | None], verdicts: list[str | None],
                    dead: list[tuple[Event, str, int]]) -> None:
        """Mark the window's audited events (``audit_ids``, its own): confirmed, or dead-lettered with the reason."""
        # With confirms off a message counts as published once sent: the audit says what the relay's books say.
        confirmed = [mid for mid, verdict in zip(audit_ids, verdicts, strict=True) if mid and verdict is None]
        dead_marks = []
        if dead:
            by_event = {event.id: mid for event, mid in zip(sent.events, audit_ids, strict=True) if mid}
            for event, reason, _ in dead:
                # Poison events were never mapped: their id comes from ev_extra3 itself.
                mid = by_event.get(event.id) or producer_message_id(event)
                if mid:
                    dead_marks.append((mid, reason))
        consumer.mark_audit(confirmed, dead_marks)
