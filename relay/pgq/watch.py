"""Watching the PgQ queues of one source database together: which have work (one query), wake-ups (one LISTEN).

pgqd serves every queue of a database over one connection; so does this.
"""
from __future__ import annotations

import select
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import psycopg2

from ..core.errors import SourceUnavailable
from .consumer import LAST_TICK_SQL, install_relay_schema
from .database import Database

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
CHANNEL_PREFIX = "mikkoo_relay_q"  # + the PgQ queue id; sql/relay_schema.sql notifies it


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


class WakeupListener(Database):
    """One LISTEN connection to a source database, for the wake-ups of all its queues.

    A statement-level trigger on each queue's PgQ event tables (installed when
    the queue's consumer is registered) notifies ``mikkoo_relay_q<queue id>`` at
    commit, so a wake-up means the events are visible. Between wake-ups an idle
    database costs nothing.
    """

    role = "source database"
    error_class = SourceUnavailable
    application_name = "mikkoo-relay listener"

    def __init__(self, dsn: str) -> None:
        super().__init__(dsn)
        self._channels: dict[str, str] = {}  # channel -> PgQ queue name

    def listen(self, queues: Iterable[str]) -> None:
        """Listen for exactly these PgQ queues (those that exist); connects first if needed."""
        if self.broken:
            self.connect()
            self._conn.autocommit = True
            self._channels = {}
        wanted = sorted(set(queues))
        try:
            with self._conn.cursor() as cur:
                cur.execute("SELECT queue_id, queue_name FROM pgq.queue WHERE queue_name = ANY(%s)", (wanted,))
                channels = {f"{CHANNEL_PREFIX}{queue_id}": name for queue_id, name in cur.fetchall()}
                for channel in self._channels.keys() - channels.keys():
                    cur.execute(f"UNLISTEN {channel}")
                for channel in channels.keys() - self._channels.keys():
                    cur.execute(f"LISTEN {channel}")
        except psycopg2.Error as exc:
            self.close()
            raise self.error(exc, "listening for events") from None
        self._channels = channels

    def wait(self, timeout: float) -> set[str]:
        """Wait up to ``timeout`` seconds for events to commit; the PgQ queues that had some."""
        try:
            if not self._conn.notifies:
                if select.select([self._conn], [], [], max(timeout, 0))[0]:
                    self._conn.poll()
            woken = {self._channels.get(note.channel) for note in self._conn.notifies}
            self._conn.notifies.clear()
        except (psycopg2.Error, OSError, ValueError) as exc:
            self.close()
            raise self.error(exc, "listening for events") from None
        woken.discard(None)
        return woken
