"""The relay engine: the one place that joins PgQ, the mapping and the publisher.

A batch is finished only after every event in it was confirmed by RabbitMQ,
handed back to PgQ with ``pgq.event_retry``, or stored as a dead letter; the
retries, dead letters and ``pgq.finish_batch`` commit together. Any failure
before that commit rolls them back and PgQ hands the batch out again. When the
source database has the audit API, the audit records of the window's events are
marked confirmed or dead-lettered in that same transaction.
"""
from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..amqp.audit_ids import producer_message_id
from ..amqp.broker import BrokerSettings
from ..amqp.mapping import Message, PoisonEvent, event_to_message, stable_message_ids
from ..amqp.publisher import BrokerClosed, ConfirmWindow, Publisher, Verdict
from ..core.errors import SourceUnavailable
from ..core.events import Event
from ..core.identity import SequenceGenerator, new_correlation_ids, relay_identity
from ..pgq.consumer import PgqConsumer
from .connections import Connections, OwnConnections

logger = logging.getLogger(__name__)

@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Keep Python's cycle collector out of a batch; it runs again as usual afterwards.

    A window makes thousands of objects (events, messages, their dicts) that
    live until its confirms are in and form no cycles: reference counting
    frees them, while the collector would scan the windows in flight over and
    over for nothing (about 3 % of a batch's time). A batch leaves no cycles
    behind in proportion to its size (a million-event batch ends with the same
    few hundred as a small one), so memory stays flat.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass(frozen=True)
class QueueSettings:
    """Everything the engine needs to relay one queue."""

    name: str
    queue_name: str
    source_dsn: str = field(repr=False)
    broker: BrokerSettings
    consumer_name: str = "mikkoo"
    confirm: bool = True
    persistent: bool = True
    max_failures: int = 10
    retry_delay: int = 10


@dataclass
class RelayResult:
    """What one run did."""

    queue: str
    busy: bool = False
    batches: int = 0
    events: int = 0
    published: int = 0
    retried: int = 0
    dead_lettered: int = 0
    seconds: float = 0.0
    #: Stopped at ``max_batches`` or at its time limit, with work possibly left.
    cut_short: bool = False

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def add(self, other: RelayResult) -> None:
        self.batches += other.batches
        self.events += other.events
        self.published += other.published
        self.retried += other.retried
        self.dead_lettered += other.dead_lettered

    def summary(self) -> str:
        if self.busy:
            return f"{self.queue}: busy, another process is relaying it; nothing done"
        if not self.batches:
            return f"{self.queue}: nothing ready"
        return (f"{self.queue}: {self.batches} batches, {self.published} published, "
                f"{self.retried} retried, {self.dead_lettered} dead-lettered "
                f"in {self.seconds:.2f} s ({self.events_per_second:,.0f} events/s)")


@dataclass(frozen=True)
class SentWindow:
    """A window of events on its way to RabbitMQ, and those that could not even be mapped."""

    size: int
    #: The id of the window's last event (windows are in ev_id order), mapped or not.
    last_event_id: int
    events: list[Event]
    poison: list[tuple[Event, str, int]]
    #: Events whose mapping failed unexpectedly, with the reason: failures like a nack, retried.
    unmapped: list[tuple[Event, str]]
    confirms: ConfirmWindow
    #: The producer's message id of each of ``events`` (or None); None when the source has no audit.
    audit_ids: list[str | None] | None = None



class RelayObserver(Protocol):
    """Told what the engine does, batch by batch (relay.metrics records it); must not raise."""

    def queue_locked(self, queue: str) -> None: ...

    def awaiting_confirms(self, queue: str, outstanding: int) -> None: ...

    def window_settled(self, queue: str, seconds: float, events: int) -> None: ...

    def batch_finished(self, result: RelayResult) -> None: ...


class QueueRelay:
    """Relays the ready batches of one queue; at most one process per queue at a time.

    ``connections`` lends the source database and RabbitMQ connections: by
    default the run opens its own and closes them; a worker process passes the
    connections it keeps for every queue (:class:`~relay.connections.ConnectionPool`).
    ``observers`` are told of every window and batch.
    """

    window_size = 2000
    #: RabbitMQ idles until the first window is out: a short one starts it sooner.
    first_window_size = 250
    #: Many small producer transactions wake the relay often: a floor on forced ticks keeps
    #: batches from shrinking to one event each.
    min_tick_interval = 0.05
    consumer_class = PgqConsumer
    result_class = RelayResult
    #: Publishes one window may spend finding the messages that made RabbitMQ close the channel; the
    #: suspects left then are retried like any failure, and looked at again next time.
    max_isolation_rounds = 64

    def __init__(self, settings: QueueSettings, connections: Connections | None = None,
                 observers: Sequence[RelayObserver] = ()) -> None:
        self.settings = settings
        self.connections = connections or OwnConnections()
        self.observers = tuple(observers)
        self.identity = relay_identity()
        self.sequence = SequenceGenerator()

    @contextmanager
    def open_target(self) -> Iterator[Publisher]:
        """Where batches go; the loop of :meth:`run` hands it to :meth:`relay_batch`.

        The queue splitter (``relay.splitter``) shares the loop and overrides
        this, :meth:`relay_batch` and ``result_class``.
        """
        with (self.connections.broker(self.settings.broker) as link,
              Publisher(link, confirm=self.settings.confirm) as publisher):
            yield publisher

    def run(self, max_batches: int | None = None, until: float | None = None, tick: bool = False) -> RelayResult:
        """Relay every ready batch (or ``max_batches``, or until ``time.monotonic()`` passes ``until``).

        With ``tick``, events written since the queue's last tick are closed
        into a batch first (``pgq.force_tick``) and relayed too, again and
        again while more come, so that they need not wait for pgqd. The run
        stops between batches: ``result.cut_short`` says it stopped with work
        possibly left.

        Raises :class:`~relay.errors.SourceUnavailable` or
        :class:`~relay.errors.BrokerUnavailable`; the batch in hand is then left
        unfinished for PgQ to hand out again.
        """
        started = time.monotonic()
        result = self.result_class(queue=self.settings.name)
        dsn, queue, consumer_name = self.settings.source_dsn, self.settings.queue_name, self.settings.consumer_name
        with self.connections.source(dsn) as connection:
            consumer = self.consumer_class(dsn, queue, consumer_name, connection=connection)
            if not consumer.try_lock():
                result.busy = True
                return result
            for observer in self.observers:
                observer.queue_locked(self.settings.name)
            try:
                self._prepare(consumer)
                with self.open_target() as target:
                    self._relay_ready(consumer, target, result, max_batches, until, tick)
            finally:
                self._unlock(consumer)
                result.seconds = time.monotonic() - started
        return result

    def _unlock(self, consumer: PgqConsumer) -> None:
        if consumer.broken:
            return  # the lost connection took the lock with it
        try:
            consumer.unlock()
        except SourceUnavailable as exc:
            # The connection broke just now: that ends its session, and with it the lock.
            logger.warning("queue=%s: %s", self.settings.name, exc)

    def _prepare(self, consumer: PgqConsumer) -> None:
        key = (self.settings.source_dsn, self.settings.queue_name, self.settings.consumer_name)
        audited = self.connections.preparation(*key)
        if audited is None:
            consumer.prepare()
            self.connections.prepared(*key, consumer.audited)
        else:
            consumer.audited = audited

    def _relay_ready(self, consumer: PgqConsumer, target: Any, result: RelayResult, max_batches: int | None,
                     until: float | None, tick: bool) -> None:
        last_forced = float("-inf")
        while True:
            if tick and consumer.events_waiting():
                time.sleep(max(0.0, last_forced + self.min_tick_interval - time.monotonic()))
                consumer.tick(force=True)
                last_forced = time.monotonic()
            before = result.batches
            self._drain(consumer, target, result, max_batches, until)
            if result.cut_short or not tick or result.batches == before:
                return

    def _drain(self, consumer: PgqConsumer, target: Any, result: RelayResult, max_batches: int | None,
               until: float | None) -> None:
        while True:
            # A run always gets something done, however short its time.
            if ((max_batches is not None and result.batches >= max_batches)
                    or (until is not None and (result.batches or result.events) and time.monotonic() >= until)):
                result.cut_short = True
                return
            batch_id = consumer.next_batch()
            if batch_id is None:
                return
            with cyclic_gc_paused():
                batch = self.relay_batch(consumer, target, batch_id, until)
            result.add(batch)
            for observer in self.observers:
                observer.batch_finished(batch)
            if batch.cut_short:
                result.cut_short = True
                return

    def relay_batch(self, consumer: PgqConsumer, publisher: Publisher, batch_id: int,
                    until: float | None = None) -> RelayResult:
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
                sent = self._send_window(publisher, events, audited=consumer.audited)
                if in_flight is not None:
                    self._record(consumer, publisher, batch_id, in_flight, result)
                in_flight = sent
                # A short window is the batch's last: nothing would be left to go on with.
                if until is not None and time.monotonic() >= until and len(events) >= full_window:
                    result.cut_short = True
                    break
                full_window = self.window_size
            if in_flight is not None:
                self._record(consumer, publisher, batch_id, in_flight, result)
            if result.cut_short:
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
                    # The same fields as attributes of the record, for LOG_FORMAT=json (relay.logformat).
                    extra={"queue": self.settings.name, "batch": batch_id, "events": result.events,
                           "published": result.published, "retried": result.retried,
                           "dead_lettered": result.dead_lettered, "ms": round(result.seconds * 1000),
                           "continued": result.cut_short})
        return result

    def _send_window(self, publisher: Publisher, window: list[Event], audited: bool = False) -> SentWindow:
        events: list[Event] = []
        messages: list[Message] = []
        poison: list[tuple[Event, str, int]] = []
        unmapped: list[tuple[Event, str]] = []
        queue, identity, persistent = self.settings.queue_name, self.identity, self.settings.persistent
        ids = zip(window, new_correlation_ids(len(window)), self.sequence.take(len(window)),
                  stable_message_ids(queue, window), strict=True)
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
                poison.append((event, str(exc), event.failures + 1))
            except Exception as exc:
                # A bug met by one event is that event's failure (retried, then dead-lettered), not its batch's.
                logger.exception("queue=%s event=%d: mapping failed unexpectedly", self.settings.name, event.id)
                unmapped.append((event, f"could not be mapped: {type(exc).__name__}: {exc}"))
        audit_ids = ([producer_message_id(event, message) for event, message in zip(events, messages, strict=True)]
                     if audited else None)
        return SentWindow(size=len(window), last_event_id=window[-1].id, events=events, poison=poison,
                          unmapped=unmapped, confirms=publisher.send(messages), audit_ids=audit_ids)

    def _isolate(self, publisher: Publisher, messages: Sequence[Message], verdicts: list[Verdict]) -> list[Verdict]:
        """Find which messages made RabbitMQ close the channel or connection: they alone are charged a failure.

        RabbitMQ confirms nothing unconfirmed when it closes, so every message
        then in flight comes back as :class:`~relay.publisher.BrokerClosed`.
        They are published again in halves, down to one message: those
        confirmed now are delivered (a second copy is possible, with the same
        message_id), and a message that closes the channel on its own keeps
        RabbitMQ's reason as its verdict.
        """
        verdicts = list(verdicts)
        groups = [[index for index, verdict in enumerate(verdicts) if isinstance(verdict, BrokerClosed)]]
        rounds = 0
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

    def _record(self, consumer: PgqConsumer, publisher: Publisher, batch_id: int, sent: SentWindow,
                result: RelayResult) -> None:
        """Give every event of a sent window its fate: published, retried or dead-lettered."""
        dead = list(sent.poison)
        retry: list[tuple[Event, str]] = []
        recovered: list[int] = []
        failed_by_reason: dict[str, list[int]] = {}
        waited = time.monotonic()
        for observer in self.observers:
            observer.awaiting_confirms(self.settings.name, len(sent.confirms.unsettled))
        verdicts = publisher.settle(sent.confirms)
        if any(isinstance(verdict, BrokerClosed) for verdict in verdicts):
            verdicts = self._isolate(publisher, sent.confirms.messages, verdicts)
        for observer in self.observers:
            observer.window_settled(self.settings.name, time.monotonic() - waited, sent.size)
        for event, verdict in (*zip(sent.events, verdicts, strict=True), *sent.unmapped):
            if verdict is None:
                result.published += 1
                if event.failures:
                    recovered.append(event.id)
                continue
            failed_by_reason.setdefault(verdict, []).append(event.id)
            if event.failures + 1 >= self.settings.max_failures:
                dead.append((event, verdict, event.failures + 1))
            else:
                retry.append((event, verdict))
        for reason, ids in failed_by_reason.items():
            # One line per reason, not per event: a broker outage fails whole windows.
            logger.warning("queue=%s batch=%d %d events failed (event ids %d..%d): %s",
                           self.settings.name, batch_id, len(ids), ids[0], ids[-1], reason)
        consumer.retry_events(batch_id, retry, self.settings.retry_delay)
        consumer.forget_failures(recovered)
        consumer.dead_letter(batch_id, dead)
        if sent.audit_ids is not None:
            self._mark_audit(consumer, sent, verdicts, dead)
        result.events += sent.size
        result.retried += len(retry)
        result.dead_lettered += len(dead)

    @staticmethod
    def _mark_audit(consumer: PgqConsumer, sent: SentWindow, verdicts: list[str | None],
                    dead: list[tuple[Event, str, int]]) -> None:
        """Mark the window's audited events: confirmed, or dead-lettered with the reason."""
        # With confirms off a message counts as published once sent: the audit says what the relay's books say.
        confirmed = [mid for mid, verdict in zip(sent.audit_ids, verdicts, strict=True) if mid and verdict is None]
        dead_marks = []
        if dead:
            by_event = {event.id: mid for event, mid in zip(sent.events, sent.audit_ids, strict=True) if mid}
            for event, reason, _ in dead:
                # Poison events were never mapped: their id comes from ev_extra3 itself.
                mid = by_event.get(event.id) or producer_message_id(event)
                if mid:
                    dead_marks.append((mid, reason))
        consumer.mark_audit(confirmed, dead_marks)
