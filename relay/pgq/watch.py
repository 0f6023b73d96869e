"""Watching the PgQ queues of one source database together: which have work, which got new events (one query each).

pgqd serves every queue of a database over one connection; so does this.
"""
from __future__ import annotations

import logging
import select
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import psycopg2

from ..core.errors import SourceUnavailable
from .consumer import LAST_TICK_SQL, LOCK_KEY_SQL, install_relay_schema
from .database import Database, first_line

logger = logging.getLogger(__name__)

# For each (queue, consumer) asked about: is the consumer registered, is a batch ready for it (an
# unfinished one, or a tick after its last), and were events written since the queue's last tick
# (ticking would make a batch of them). One round trip for any number of queues.
READINESS_SQL = f"""
SELECT w.queue_name, w.consumer_name,
       s.sub_id IS NOT NULL,
       coalesce(s.sub_batch IS NOT NULL OR s.sub_last_tick < t.tick_id, false),
       mikkoo_relay.events_since_tick(w.queue_name)
  FROM unnest(%s::text[], %s::text[]) AS w(queue_name, consumer_name)
  LEFT JOIN pgq.queue q ON q.queue_name = w.queue_name
  LEFT JOIN LATERAL ({LAST_TICK_SQL}) t ON true
  LEFT JOIN pgq.consumer c ON c.co_name = w.consumer_name
  LEFT JOIN pgq.subscription s ON s.sub_queue = q.queue_id AND s.sub_consumer = c.co_id
"""
# Which of these queues had events written since their last tick (the sequence moved past the tick's):
# a read of each queue's sequence and last tick, no table scanned, however many queues. A queue's
# first event ever has the id its fresh sequence showed the ticks (1), so only its table tells. With
# them the snapshot's bounds (to tell when transactions in flight now have ended) and, for the queues
# named second, whether events committed since their last tick that the tick's snapshot missed.
POLL_SQL = f"""
SELECT txid_snapshot_xmin(s.now), txid_snapshot_xmax(s.now),
       ARRAY(SELECT q.queue_name
               FROM unnest(%s::text[]) AS w(queue_name)
               JOIN pgq.queue q USING (queue_name)
               JOIN LATERAL ({LAST_TICK_SQL}) t ON true
              WHERE CASE pg_sequence_last_value(q.queue_event_seq::regclass)
                    WHEN 1 THEN mikkoo_relay.events_since_tick(q.queue_name)
                    ELSE pg_sequence_last_value(q.queue_event_seq::regclass) > t.tick_event_seq END),
       ARRAY(SELECT w.queue_name FROM unnest(%s::text[]) AS w(queue_name)
              WHERE mikkoo_relay.events_since_tick(w.queue_name))
  FROM txid_current_snapshot() AS s(now)
"""
CHANNEL_PREFIX = "mikkoo_relay_q"  # + the PgQ queue id; the optional trigger of sql/relay_schema.sql notifies it


@dataclass(frozen=True)
class Readiness:
    """What PgQ has for one consumer of one queue."""

    registered: bool
    batch_ready: bool
    events_waiting: bool

    @property
    def has_work(self) -> bool:
        return self.registered and (self.batch_ready or self.events_waiting)


def readiness(db: Database, queues: Sequence[tuple[str, str]], doing: str = "checking queues for work"
              ) -> dict[tuple[str, str], Readiness]:
    """Readiness of each ``(queue, consumer)``, in one query on ``db``'s connection."""
    if not queues:
        return {}
    names, consumers = zip(*queues, strict=True)
    install_relay_schema(db)  # a database whose queues are not registered yet may lack it
    rows = db._run(doing, READINESS_SQL, (list(names), list(consumers)))
    db.commit(doing)
    return {(queue, consumer): Readiness(*flags) for queue, consumer, *flags in rows}


def finish_empty_batches(db: Database, queues: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Finish the empty batches of these ``(queue, consumer)`` that nobody is relaying, in one statement.

    pgqd ticks idle queues now and then: without this each would cost a relay
    task for an empty batch. Returns those with events in a batch still, or
    that another session is relaying.
    """
    if not queues:
        return set()
    names, consumers = zip(*queues, strict=True)
    doing = "finishing empty batches"
    rows = db._run(doing, "SELECT queue_name, consumer_name, work_left "
                          "FROM mikkoo_relay.finish_empty_batches(%s::text[], %s::text[])",
                   (list(names), list(consumers)))
    db.commit(doing)
    return {(queue, consumer) for queue, consumer, work_left in rows if work_left}




def set_wakeup_triggers(db: Database, queues: Iterable[str], notify: bool) -> int:
    """Install (``notify``) or remove the optional NOTIFY trigger of these PgQ queues; how many tables changed.

    Uncommitted. A role that may not change the event tables is told in one
    warning: with ``notify`` the watcher's reads still find the events; without,
    the trigger it could not remove goes on costing the producers.
    """
    changed = 0
    for queue in sorted(set(queues)):
        try:
            with db.connection.cursor() as cur:
                cur.execute("SAVEPOINT mikkoo_relay_trigger")
                cur.execute("SELECT mikkoo_relay.set_wakeup_trigger(%s, %s)", (queue, notify))
                changed += cur.fetchone()[0]
                cur.execute("RELEASE SAVEPOINT mikkoo_relay_trigger")
        except psycopg2.errors.InsufficientPrivilege as exc:
            db._run("setting the wake-up trigger", "ROLLBACK TO SAVEPOINT mikkoo_relay_trigger", fetch=False)
            logger.warning("queue=%s: cannot %s the wake-up trigger (%s)%s", queue,
                           "install" if notify else "remove", first_line(exc),
                           "" if notify else "; it goes on adding a NOTIFY to every producer's commit")
        except psycopg2.Error as exc:
            db._rollback_quietly()
            raise db.error(exc, "setting the wake-up trigger") from None
    return changed


@dataclass
class Poll:
    """What one read of a database's queues found: which to wake, and the snapshot it was read in."""

    xmin: int
    xmax: int
    woken: set[str] = field(default_factory=set)

    @property
    def in_flight(self) -> bool:
        """Whether any transaction of the server was running: one of them may hold an event not yet visible."""
        return self.xmin < self.xmax


class QueueWatch(Database):
    """One connection to a source database that finds the queues with new events, for all of its queues.

    Nothing runs in the producers' transactions: the watcher reads each
    queue's event sequence against its last tick every few tens of
    milliseconds. One watcher per database serves every worker: the others
    wait on an advisory lock (:meth:`lead`), so the database's load does not
    grow with workers. A queue woken while transactions were in flight is read
    once more when they have ended (an event drawn then may commit after the
    tick its relay makes), so that its events need not wait for the sweep.
    """

    role = "source database"
    error_class = SourceUnavailable
    application_name = "mikkoo-relay watcher"
    #: How long after a queue was woken its events are checked on every read (see :meth:`poll`).
    recent_seconds = 0.5

    def __init__(self, dsn: str, group: str) -> None:
        super().__init__(dsn)
        self.group = group  # the lock's name: one watcher per relay installation and database
        self.leading = False
        self._channels: dict[str, str] = {}  # channel -> PgQ queue name
        self._unsettled: dict[str, int] = {}  # PgQ queue -> the txid every transaction below must end
        self._ended_below = 0  # the oldest transaction running at the last poll
        self._woken_at: dict[str, float] = {}  # PgQ queue -> when it was last woken (time.monotonic())

    def lead(self) -> bool:
        """Whether this watcher watches the database: it holds the lock, or takes it now (connecting first)."""
        if self.broken:
            self.connect()
            self._conn.autocommit = True
            self.leading = False
            self._channels = {}
            self._unsettled = {}
            self._ended_below = 0
            self._woken_at = {}
        if not self.leading:
            (self.leading,) = self._run("taking the watch", f"SELECT pg_try_advisory_lock({LOCK_KEY_SQL})",
                                        (f"mikkoo-relay watcher/{self.group}",))[0]
            if self.leading:
                install_relay_schema(self)
        return self.leading

    def set_triggers(self, queues: Iterable[str], notify: bool) -> int:
        """Install or remove the optional NOTIFY trigger of these queues (see :func:`set_wakeup_triggers`)."""
        self._conn.autocommit = False
        try:
            changed = set_wakeup_triggers(self, queues, notify)
            self.commit("setting the wake-up trigger")
        finally:
            if not self.broken:
                self._conn.autocommit = True
        return changed

    def listen(self, queues: Iterable[str]) -> None:
        """Listen for the optional trigger's notifications of exactly these PgQ queues (none: listen to none)."""
        wanted = sorted(set(queues))
        rows = self._run("listening for events", "SELECT queue_id, queue_name FROM pgq.queue "
                                                 "WHERE queue_name = ANY(%s)", (wanted,)) if wanted else []
        channels = {f"{CHANNEL_PREFIX}{queue_id}": name for queue_id, name in rows}
        for channel in self._channels.keys() - channels.keys():
            self._run("listening for events", f"UNLISTEN {channel}", fetch=False)
        for channel in channels.keys() - self._channels.keys():
            self._run("listening for events", f"LISTEN {channel}", fetch=False)
        self._channels = channels

    def poll(self, queues: Sequence[str]) -> Poll:
        """The queues with events waiting for a tick (or missed by their last tick), in one query.

        Besides the unsettled queues, those woken within :attr:`recent_seconds`
        are checked on every read: their relay's forced tick may
        have been taken while an event's transaction was still running, and
        such an event would otherwise wait for the sweep.
        """
        now = time.monotonic()
        settling = {queue for queue, bound in self._unsettled.items() if self._ended_below >= bound}
        for queue in settling:
            del self._unsettled[queue]
        for queue, woken_at in list(self._woken_at.items()):
            if now - woken_at > self.recent_seconds:
                del self._woken_at[queue]
            else:
                settling.add(queue)
        xmin, xmax, waiting, missed = self._run("reading the queues' event sequences", POLL_SQL,
                                                (list(queues), sorted(settling)))[0]
        self._ended_below = xmin
        result = Poll(xmin, xmax, set(waiting) | set(missed))
        for queue in waiting:
            self._woken_at[queue] = now
            if result.in_flight:
                self._unsettled[queue] = xmax
        return result

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds, less when a notification comes; whether one came."""
        try:
            if not self._conn.notifies and select.select([self._conn], [], [], max(timeout, 0))[0]:
                self._conn.poll()
            notified = bool(self._conn.notifies)
            self._conn.notifies.clear()
        except (psycopg2.Error, OSError, ValueError) as exc:
            self.close()
            raise self.error(exc, "waiting for events") from None
        return notified
