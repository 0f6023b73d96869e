"""The queue splitter's target: one PgQ queue split into the queues of another database, each batch exactly once.

Skytools' ``queue_splitter`` on the relay's loop: every event goes into the
target queue its ``ev_extra1`` names, with its type, data, extra fields and
time. Per batch, two transactions commit in this order:

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
from collections.abc import Iterator
from contextlib import contextmanager

from ..core.events import Event, SourceBatch
from ..pgq.consumer import PgqConsumer
from ..pgq.target_database import AppliedBatch, Failure, PgqTarget
from .failure_policy import FailurePolicy, Fates
from .results import RelayResult
from .settings import PgqTargetSettings, QueueSettings

logger = logging.getLogger(__name__)

NO_TARGET_QUEUE = "ev_extra1 is empty: it must name the target queue"


class SplitTarget:
    """Splits a queue's batches into the target queues named by ``ev_extra1``, each batch applied exactly once.

    Always whole batches, whatever a run's time limit says: the target database
    records batches, each applied exactly once. It opens its own connection to
    the target database for each run.
    """

    delivered_as = "inserted into target queues"

    def __init__(self, settings: QueueSettings, *, window_size: int = 2000) -> None:
        if not isinstance(settings.target, PgqTargetSettings):
            raise TypeError(f"SplitTarget splits into PgQ queues: {type(settings.target).__name__} is not for it")
        self.settings = settings
        self.target: PgqTargetSettings = settings.target
        self.policy = FailurePolicy(settings.max_failures, settings.retry_delay)
        self.window_size = window_size
        self.database: PgqTarget | None = None

    @contextmanager
    def opened(self) -> Iterator[None]:
        with PgqTarget(self.target.target_dsn) as database:
            self.database = database
            try:
                yield
            finally:
                self.database = None

    def _database(self) -> PgqTarget:
        """The target database :meth:`opened` connected to: batches are relayed inside it."""
        if self.database is None:
            raise RuntimeError("SplitTarget relays batches only inside opened()")
        return self.database

    def relay_batch(self, consumer: PgqConsumer, batch_id: int, until: float | None = None) -> RelayResult:
        """Apply one batch to the target database and finish it, or only finish it if it was applied before.

        Raises :class:`~relay.core.errors.SourceUnavailable` or
        :class:`~relay.core.errors.TargetUnavailable`; what was done for the batch
        is then rolled back on both sides that have not committed yet.
        """
        started = time.monotonic()
        result = RelayResult(queue=self.settings.name, batches=1, delivered_as=self.delivered_as)
        database = self._database()
        try:
            batch = consumer.batch_info(batch_id)
            applied = database.begin_batch(batch)
            if applied is None:
                for events in consumer.iter_event_windows(batch_id, self.window_size):
                    self._split_window(consumer, batch, events, result)
                database.commit_batch(batch, result.inserted, result.retried, result.dead_lettered)
                result.created_queues = list(database.created)
            else:
                self._finish_applied(consumer, batch, applied, result)
                database.abandon_batch()  # nothing was written there: just end the transaction
            consumer.finish_batch(batch_id)
        except BaseException:
            database.abandon_batch()
            consumer.abandon_batch()
            raise
        result.seconds = time.monotonic() - started
        logger.info("queue=%s batch=%d events=%d inserted=%d retried=%d dead_lettered=%d already_applied=%d "
                    "ms=%.0f", self.settings.name, batch_id, result.events, result.inserted, result.retried,
                    result.dead_lettered, result.already_applied, result.seconds * 1000)
        return result

    def _split_window(self, consumer: PgqConsumer, batch: SourceBatch, events: list[Event],
                      result: RelayResult) -> None:
        """Insert a window's events into their target queues; retry or dead-letter the rest."""
        by_queue: dict[str, list[Event]] = {}
        failed: list[tuple[Event, str, bool]] = []
        for event in events:
            if event.extra1:
                by_queue.setdefault(event.extra1, []).append(event)
            else:
                failed.append((event, NO_TARGET_QUEUE, True))
        database = self._database()
        refused = database.refusals(by_queue, create=self.target.create_target_queues)
        for queue, queue_events in by_queue.items():
            reason = refused.get(queue) or database.insert(queue, queue_events)
            if reason is None:
                result.published += len(queue_events)
            else:
                failed.extend((event, reason, False) for event in queue_events)
        fates = self.policy.sort(failed)
        records = ([Failure(event.id, reason, dead=False) for event, reason in fates.retry]
                   + [Failure(event.id, reason, dead=True) for event, reason, _ in fates.dead])
        self._log_failures(batch, records)
        self.policy.record(consumer, batch.batch_id, fates)
        database.record_failures(batch, records)
        result.events += len(events)
        result.retried += len(fates.retry)
        result.dead_lettered += len(fates.dead)

    def _finish_applied(self, consumer: PgqConsumer, batch: SourceBatch, applied: AppliedBatch,
                        result: RelayResult) -> None:
        """Give the events a batch applied before did not insert the fate recorded for them then."""
        logger.warning("queue=%s batch=%d (ticks %d..%d) was applied to the target database by an earlier run "
                       "that stopped before finishing it; finishing it without inserting again",
                       self.settings.name, batch.batch_id, batch.prev_tick_id, batch.tick_id)
        result.already_applied = 1
        if not applied.retried and not applied.dead_lettered:
            return
        for events in consumer.iter_event_windows(batch.batch_id, self.window_size):
            failures = {f.event_id: f for f in self._database().failures_of(batch, [event.id for event in events])}
            fates = Fates(
                retry=[(event, failures[event.id].reason)
                       for event in events if event.id in failures and not failures[event.id].dead],
                dead=[(event, failures[event.id].reason, event.failures + 1)
                      for event in events if event.id in failures and failures[event.id].dead])
            self.policy.record(consumer, batch.batch_id, fates)
            result.retried += len(fates.retry)
            result.dead_lettered += len(fates.dead)

    def _log_failures(self, batch: SourceBatch, records: list[Failure]) -> None:
        by_reason: dict[tuple[str, bool], list[int]] = {}
        for record in records:
            by_reason.setdefault((record.reason, record.dead), []).append(record.event_id)
        for (reason, dead), ids in by_reason.items():
            # One line per reason, not per event: a missing target queue fails whole windows.
            logger.warning("queue=%s batch=%d %d events %s (event ids %d..%d): %s", self.settings.name,
                           batch.batch_id, len(ids), "dead-lettered" if dead else "retried", ids[0], ids[-1],
                           reason)
