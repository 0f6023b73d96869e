"""The queue splitter: one PgQ queue split into the queues of another database, each batch exactly once.

Skytools' ``queue_splitter`` on the relay's loop (lock, prepare, next batch):
every event goes into the target queue its ``ev_extra1`` names, with its type,
data, extra fields and time. Per batch, two transactions commit in this order:

1. the target's: target queues created, events inserted, and the batch
   recorded as applied in ``mikkoo_relay.applied_batch`` together with the
   events that were not inserted (``mikkoo_relay.applied_batch_failure``);
2. the source's: those events retried or dead-lettered, and
   ``pgq.finish_batch``.

A crash between the two leaves the batch unfinished, so PgQ hands it out
again; the target recognises it by its ticks, and it is finished with the
same retries and dead letters without inserting anything again.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from ..core.events import Event, SourceBatch
from ..pgq.consumer import PgqConsumer
from ..pgq.target_database import AppliedBatch, Failure, PgqTarget
from .relay import QueueRelay, RelayResult

logger = logging.getLogger(__name__)

NO_TARGET_QUEUE = "ev_extra1 is empty: it must name the target queue"


@dataclass(frozen=True)
class SplitterSettings:
    """Everything the splitter needs to split one queue into a target database."""

    name: str
    queue_name: str
    source_dsn: str = field(repr=False)
    target_dsn: str = field(repr=False)
    consumer_name: str = "mikkoo"
    create_target_queues: bool = True
    max_failures: int = 10
    retry_delay: int = 10


@dataclass
class SplitResult(RelayResult):
    """What one run of the splitter did; ``published`` counts the events inserted into target queues."""

    already_applied: int = 0
    created_queues: list[str] = field(default_factory=list)

    @property
    def inserted(self) -> int:
        return self.published

    def add(self, other: RelayResult) -> None:
        super().add(other)
        if isinstance(other, SplitResult):
            self.already_applied += other.already_applied
            self.created_queues.extend(other.created_queues)

    def summary(self) -> str:
        if self.busy or not self.batches:
            return super().summary()
        text = (f"{self.queue}: {self.batches} batches, {self.inserted} inserted into target queues, "
                f"{self.retried} retried, {self.dead_lettered} dead-lettered "
                f"in {self.seconds:.2f} s ({self.events_per_second:,.0f} events/s)")
        if self.already_applied:
            text += (f"; {self.already_applied} already applied in the target database "
                     "by an earlier run, finished without inserting again")
        if self.created_queues:
            text += f"; created target queues {', '.join(self.created_queues)}"
        return text


class QueueSplitter(QueueRelay):
    """Splits the ready batches of one queue into the target queues named by ``ev_extra1``, each exactly once."""

    target_class = PgqTarget
    result_class = SplitResult
    settings: SplitterSettings

    def open_target(self) -> PgqTarget:
        return self.target_class(self.settings.target_dsn)

    def relay_batch(self, consumer: PgqConsumer, target: PgqTarget, batch_id: int,
                    until: float | None = None) -> SplitResult:
        """Apply one batch to the target database and finish it, or only finish it if it was applied before.

        Always the whole batch, whatever ``until`` says: the target database
        records batches, each applied exactly once.

        Raises :class:`~relay.errors.SourceUnavailable` or
        :class:`~relay.errors.TargetUnavailable`; what was done for the batch
        is then rolled back on both sides that have not committed yet.
        """
        started = time.monotonic()
        result = SplitResult(queue=self.settings.name, batches=1)
        try:
            batch = consumer.batch_info(batch_id)
            applied = target.begin_batch(batch)
            if applied is None:
                for events in consumer.iter_event_windows(batch_id, self.window_size):
                    self._split_window(consumer, target, batch, events, result)
                target.commit_batch(batch, result.inserted, result.retried, result.dead_lettered)
                result.created_queues = list(target.created)
            else:
                self._finish_applied(consumer, target, batch, applied, result)
                target.abandon_batch()  # nothing was written there: just end the transaction
            consumer.finish_batch(batch_id)
        except BaseException:
            target.abandon_batch()
            consumer.abandon_batch()
            raise
        result.seconds = time.monotonic() - started
        logger.info("queue=%s batch=%d events=%d inserted=%d retried=%d dead_lettered=%d already_applied=%d "
                    "ms=%.0f", self.settings.name, batch_id, result.events, result.inserted, result.retried,
                    result.dead_lettered, result.already_applied, result.seconds * 1000)
        return result

    def _split_window(self, consumer: PgqConsumer, target: PgqTarget, batch: SourceBatch, events: list[Event],
                      result: SplitResult) -> None:
        """Insert a window's events into their target queues; retry or dead-letter the rest."""
        by_queue: dict[str, list[Event]] = {}
        failed: list[tuple[Event, str, bool]] = []
        for event in events:
            if event.extra1:
                by_queue.setdefault(event.extra1, []).append(event)
            else:
                failed.append((event, NO_TARGET_QUEUE, True))
        refused = target.refusals(by_queue, create=self.settings.create_target_queues)
        for queue, queue_events in by_queue.items():
            reason = refused.get(queue) or target.insert(queue, queue_events)
            if reason is None:
                result.published += len(queue_events)
            else:
                failed.extend((event, reason, False) for event in queue_events)
        retry: list[tuple[Event, str]] = []
        dead: list[tuple[Event, str, int]] = []
        records: list[Failure] = []
        for event, reason, at_once in failed:
            if at_once or event.failures + 1 >= self.settings.max_failures:
                dead.append((event, reason, event.failures + 1))
                records.append(Failure(event.id, reason, dead=True))
            else:
                retry.append((event, reason))
                records.append(Failure(event.id, reason, dead=False))
        self._log_failures(batch, records)
        consumer.retry_events(batch.batch_id, retry, self.settings.retry_delay)
        consumer.dead_letter(batch.batch_id, dead)
        target.record_failures(batch, records)
        result.events += len(events)
        result.retried += len(retry)
        result.dead_lettered += len(dead)

    def _finish_applied(self, consumer: PgqConsumer, target: PgqTarget, batch: SourceBatch,
                        applied: AppliedBatch, result: SplitResult) -> None:
        """Give the events a batch applied before did not insert the fate recorded for them then."""
        logger.warning("queue=%s batch=%d (ticks %d..%d) was applied to the target database by an earlier run "
                       "that stopped before finishing it; finishing it without inserting again",
                       self.settings.name, batch.batch_id, batch.prev_tick_id, batch.tick_id)
        result.already_applied = 1
        if not applied.retried and not applied.dead_lettered:
            return
        for events in consumer.iter_event_windows(batch.batch_id, self.window_size):
            failures = {f.event_id: f for f in target.failures_of(batch, [event.id for event in events])}
            retry = [(event, failures[event.id].reason)
                     for event in events if event.id in failures and not failures[event.id].dead]
            dead = [(event, failures[event.id].reason, event.failures + 1)
                    for event in events if event.id in failures and failures[event.id].dead]
            consumer.retry_events(batch.batch_id, retry, self.settings.retry_delay)
            consumer.dead_letter(batch.batch_id, dead)
            result.retried += len(retry)
            result.dead_lettered += len(dead)

    def _log_failures(self, batch: SourceBatch, records: list[Failure]) -> None:
        by_reason: dict[tuple[str, bool], list[int]] = {}
        for record in records:
            by_reason.setdefault((record.reason, record.dead), []).append(record.event_id)
        for (reason, dead), ids in by_reason.items():
            # One line per reason, not per event: a missing target queue fails whole windows.
            logger.warning("queue=%s batch=%d %d events %s (event ids %d..%d): %s", self.settings.name,
                           batch.batch_id, len(ids), "dead-lettered" if dead else "retried", ids[0], ids[-1],
                           reason)
