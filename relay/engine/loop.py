"""The batch loop: one queue's ready batches, each taken from PgQ, delivered by a target, finished.

The loop is the same for every target: lock the queue (one process at a time),
prepare the consumer, open the target, drain the ready batches (or force ticks
and follow the queue while events keep coming), unlock. What a batch becomes,
and when it is finished, is the target's: :class:`~relay.engine.amqp_target.AmqpTarget`
publishes it to RabbitMQ, :class:`~relay.engine.split_target.SplitTarget` applies it
to another database's queues.
"""
from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from ..core.errors import SourceUnavailable
from ..pgq.consumer import PgqConsumer
from .connections import Connections
from .results import RelayResult
from .settings import QueueSettings

logger = logging.getLogger(__name__)


class RelayObserver(Protocol):
    """Told what the engine does, batch by batch (metrics, statsd, progress, leases); must not raise."""

    def queue_locked(self, queue: str) -> None: ...

    def awaiting_confirms(self, queue: str, outstanding: int) -> None: ...

    def window_settled(self, queue: str, seconds: float, events: int) -> None: ...

    def batch_finished(self, result: RelayResult) -> None: ...


class Target(Protocol):
    """Where a queue's batches go. Opened once per run; every batch of the run goes through it."""

    #: How a run's summary names the events the target took.
    delivered_as: str

    def opened(self) -> AbstractContextManager[None]:
        """Connected to the target for the run, and closed (or its connection given back) after."""

    def relay_batch(self, consumer: PgqConsumer, batch_id: int, until: float | None) -> RelayResult:
        """Deliver batch ``batch_id`` and finish it in PgQ (or save where it stopped, once ``until`` has passed).

        A failure leaves the batch unfinished, for PgQ to hand out again.
        """


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


class QueueRelay:
    """Relays the ready batches of one queue to its target; at most one process per queue at a time.

    ``connections`` lends the source database connection (and the target its
    own): a worker process passes the connections it keeps for every queue
    (:class:`~relay.engine.connections.ConnectionPool`). ``observers`` are told
    of every batch (the target tells them of its windows).
    """

    def __init__(self, settings: QueueSettings, target: Target, connections: Connections,
                 observers: Sequence[RelayObserver] = (), *, consumer_class: type[PgqConsumer] = PgqConsumer,
                 min_tick_interval: float = 0.05) -> None:
        self.settings = settings
        self.target = target
        self.connections = connections
        self.observers = tuple(observers)
        self.consumer_class = consumer_class
        #: Many small producer transactions wake the relay often: a floor on forced ticks keeps
        #: batches from shrinking to one event each.
        self.min_tick_interval = min_tick_interval

    def run(self, max_batches: int | None = None, until: float | None = None, tick: bool = False) -> RelayResult:
        """Relay every ready batch (or ``max_batches``, or until ``time.monotonic()`` passes ``until``).

        With ``tick``, events written since the queue's last tick are closed
        into a batch first (``pgq.force_tick``) and relayed too, again and
        again while more come, so that they need not wait for pgqd. The run
        stops between batches: ``result.cut_short`` says it stopped with work
        possibly left.

        Raises :class:`~relay.core.errors.SourceUnavailable`, or the target's
        error (:class:`~relay.core.errors.BrokerUnavailable`,
        :class:`~relay.core.errors.TargetUnavailable`); the batch in hand is
        then left unfinished for PgQ to hand out again.
        """
        started = time.monotonic()
        result = RelayResult(queue=self.settings.name, delivered_as=self.target.delivered_as)
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
                with self.target.opened():
                    self._relay_ready(consumer, result, max_batches, until, tick)
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

    def _relay_ready(self, consumer: PgqConsumer, result: RelayResult, max_batches: int | None,
                     until: float | None, tick: bool) -> None:
        last_forced = float("-inf")
        while True:
            if tick and consumer.events_waiting():
                time.sleep(max(0.0, last_forced + self.min_tick_interval - time.monotonic()))
                consumer.tick(force=True)
                last_forced = time.monotonic()
            before = result.batches
            self._drain(consumer, result, max_batches, until)
            if result.cut_short or not tick or result.batches == before:
                return

    def _drain(self, consumer: PgqConsumer, result: RelayResult, max_batches: int | None,
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
                batch = self.target.relay_batch(consumer, batch_id, until)
            result.add(batch)
            for observer in self.observers:
                observer.batch_finished(batch)
            if batch.cut_short:
                result.cut_short = True
                return
