"""The relay engine: the one place that joins PgQ, the mapping and the publisher.

A batch is finished only after every event in it was confirmed by RabbitMQ,
handed back to PgQ with ``pgq.event_retry``, or stored as a dead letter; the
retries, dead letters and ``pgq.finish_batch`` commit together. Any failure
before that commit rolls them back and PgQ hands the batch out again.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from .events import Event
from .identity import SequenceGenerator, new_correlation_id, relay_identity
from .mapping import Message, PoisonEvent, event_to_message
from .pgq import PgqConsumer
from .publisher import BrokerSettings, ConfirmWindow, Publisher

logger = logging.getLogger(__name__)


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
    events: list[Event]
    poison: list[tuple[Event, str, int]]
    confirms: ConfirmWindow


class QueueRelay:
    """Relays the ready batches of one queue; at most one process per queue at a time."""

    window_size = 2000
    consumer_class = PgqConsumer
    publisher_class = Publisher

    def __init__(self, settings: QueueSettings) -> None:
        self.settings = settings
        self.identity = relay_identity()
        self.sequence = SequenceGenerator()

    def run(self, max_batches: int | None = None) -> RelayResult:
        """Relay every ready batch (or ``max_batches``) and say what was done.

        Raises :class:`~relay.errors.SourceUnavailable` or
        :class:`~relay.errors.BrokerUnavailable`; the batch in hand is then left
        unfinished for PgQ to hand out again.
        """
        started = time.monotonic()
        result = RelayResult(queue=self.settings.name)
        consumer = self.consumer_class(self.settings.source_dsn, self.settings.queue_name,
                                       self.settings.consumer_name)
        consumer.connect()
        try:
            if not consumer.try_lock():
                result.busy = True
                return result
            consumer.prepare()
            with self.publisher_class(self.settings.broker, confirm=self.settings.confirm) as publisher:
                while max_batches is None or result.batches < max_batches:
                    batch_id = consumer.next_batch()
                    if batch_id is None:
                        break
                    result.add(self.relay_batch(consumer, publisher, batch_id))
        finally:
            consumer.close()
            result.seconds = time.monotonic() - started
        return result

    def relay_batch(self, consumer: PgqConsumer, publisher: Publisher, batch_id: int) -> RelayResult:
        """Publish one batch and finish it, start to finish.

        Windows are pipelined: window N+1 is read, mapped and sent before the
        confirms of window N are collected, so RabbitMQ never waits for us.
        """
        started = time.monotonic()
        result = RelayResult(queue=self.settings.name, batches=1)
        try:
            in_flight: SentWindow | None = None
            for events in consumer.iter_event_windows(batch_id, self.window_size):
                sent = self._send_window(publisher, events)
                if in_flight is not None:
                    self._record(consumer, publisher, batch_id, in_flight, result)
                in_flight = sent
            if in_flight is not None:
                self._record(consumer, publisher, batch_id, in_flight, result)
            consumer.finish_batch(batch_id)
        except BaseException:
            consumer.abandon_batch()
            raise
        result.seconds = time.monotonic() - started
        logger.info("queue=%s batch=%d events=%d published=%d retried=%d dead_lettered=%d ms=%.0f",
                    self.settings.name, batch_id, result.events, result.published, result.retried,
                    result.dead_lettered, result.seconds * 1000)
        return result

    def _send_window(self, publisher: Publisher, window: list[Event]) -> SentWindow:
        events: list[Event] = []
        messages: list[Message] = []
        poison: list[tuple[Event, str, int]] = []
        for event in window:
            try:
                messages.append(self.to_message(event))
                events.append(event)
            except PoisonEvent as exc:
                logger.error("queue=%s event=%d cannot be published: %s", self.settings.name, event.id, exc)
                poison.append((event, str(exc), event.failures + 1))
        return SentWindow(size=len(window), events=events, poison=poison, confirms=publisher.send(messages))

    def _record(self, consumer: PgqConsumer, publisher: Publisher, batch_id: int, sent: SentWindow,
                result: RelayResult) -> None:
        """Give every event of a sent window its fate: published, retried or dead-lettered."""
        dead = list(sent.poison)
        retry: list[int] = []
        failed_by_reason: dict[str, list[int]] = {}
        for event, verdict in zip(sent.events, publisher.settle(sent.confirms), strict=True):
            if verdict is None:
                result.published += 1
                continue
            failed_by_reason.setdefault(verdict, []).append(event.id)
            if event.failures + 1 >= self.settings.max_failures:
                dead.append((event, verdict, event.failures + 1))
            else:
                retry.append(event.id)
        for reason, ids in failed_by_reason.items():
            # One line per reason, not per event: a broker outage fails whole windows.
            logger.warning("queue=%s batch=%d %d events failed (event ids %d..%d): %s",
                           self.settings.name, batch_id, len(ids), ids[0], ids[-1], reason)
        consumer.retry_events(batch_id, retry, self.settings.retry_delay)
        consumer.dead_letter(batch_id, dead)
        result.events += sent.size
        result.retried += len(retry)
        result.dead_lettered += len(dead)

    def to_message(self, event: Event) -> Message:
        return event_to_message(
            event,
            queue=self.settings.queue_name,
            identity=self.identity,
            persistent=self.settings.persistent,
            correlation_id=new_correlation_id(),
            sequence=self.sequence.next(),
        )
