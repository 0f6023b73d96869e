"""PgQ access with psycopg2 for one queue and consumer; knows nothing of AMQP."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from importlib.resources import files
from typing import Any

import psycopg2
import psycopg2.extras

from ..core.connection_strings import redact_url
from ..core.errors import SourceUnavailable
from ..core.events import Event, SourceBatch
from .database import Database, describe_failure

SCHEMA_SQL = files("relay") / "sql" / "relay_schema.sql"
CURSOR_NAME = "mikkoo_relay_batch"
EVENT_COLUMNS = "ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4"
# A row has Event's fields in order: tuple.__new__ makes the event from it in C, at
# half the cost of calling the named tuple's own constructor once per event.
event_from_row = partial(tuple.__new__, Event)
# The queue's last tick, joined LATERAL to pgq.queue q.
LAST_TICK_SQL = ("SELECT tick_id, tick_event_seq FROM pgq.tick WHERE tick_queue = q.queue_id "
                 "ORDER BY tick_id DESC LIMIT 1")
# The last object sql/relay_schema.sql creates: missing means the schema is absent or older.
NEWEST_SCHEMA_OBJECT_SQL = "SELECT to_regprocedure('mikkoo_relay.set_wakeup_trigger(text, boolean)')"
# Must match sql/relay_schema.sql finish_empty_batches, which takes the same lock.
LOCK_KEY_SQL = "('x' || substr(md5(%s), 1, 16))::bit(64)::bigint"
AUDIT_API_SQL = ("SELECT to_regprocedure('mikkoo.mark_confirmed(uuid[])') IS NOT NULL "
                 "AND to_regprocedure('mikkoo.mark_dead_lettered(uuid[], text)') IS NOT NULL")
MARK_CONFIRMED_SQL = "SELECT mikkoo.mark_confirmed(%s::uuid[])"
# Dead letters of one window may have several reasons: one call per reason, still one statement.
MARK_BOTH_SQL = (
    "SELECT mikkoo.mark_confirmed(%s::uuid[]), "
    "(SELECT sum(mikkoo.mark_dead_lettered(ids, reason)) FROM "
    "(SELECT reason, array_agg(id) AS ids FROM unnest(%s::uuid[], %s::text[]) AS dead(id, reason) "
    "GROUP BY reason) AS by_reason)"
)


def relay_schema_sql() -> str:
    """The SQL that creates the relay's own tables in the source database."""
    return SCHEMA_SQL.read_text()


def _timestamptz_once() -> Any:
    """A typecaster for timestamptz that parses each distinct text once.

    The events of one producer transaction share their ``ev_time``; psycopg2
    would parse it again for every row, a fifth of what reading a row costs.
    """
    parsed: dict[str | bytes, Any] = {}

    def cast(value: str | bytes | None, cursor: psycopg2.extensions.cursor | None) -> Any:
        if value is None:
            return None
        found = parsed.get(value)
        if found is None:
            if len(parsed) >= 4096:
                parsed.clear()
            found = parsed[value] = psycopg2.extensions.PYDATETIMETZ(value, cursor)
        return found

    return psycopg2.extensions.new_type((1184,), "TIMESTAMPTZ_ONCE", cast)


TIMESTAMPTZ_ONCE = _timestamptz_once()


def install_relay_schema(db: Database) -> None:
    """Install or upgrade the relay's schema (sql/relay_schema.sql) where it is missing or older, uncommitted.

    Raises :class:`SourceUnavailable` when PgQ itself is not installed.
    """
    if not db._run("checking for PgQ", "SELECT 1 FROM pg_namespace WHERE nspname = 'pgq'"):
        raise SourceUnavailable(f"source database {redact_url(db.dsn)}: PgQ is not installed (CREATE EXTENSION pgq)")
    if db._run("checking the relay schema", NEWEST_SCHEMA_OBJECT_SQL)[0][0] is None:
        # Relays of other queues in the same database may install it at the same moment.
        db._run("installing the relay schema", "SELECT pg_advisory_xact_lock(hashtext('mikkoo_relay schema'))")
        db._run("installing the relay schema", relay_schema_sql(), fetch=False)


def source_error(dsn: str, exc: Exception, doing: str) -> SourceUnavailable:
    """A :class:`SourceUnavailable` naming the database without its password."""
    return SourceUnavailable(describe_failure("source database", dsn, exc, doing))


class PgqConsumer(Database):
    """A registered PgQ consumer of one queue, on its own connection.

    Methods that read or change PgQ run inside the connection's current
    transaction; :meth:`finish_batch` commits everything done for a batch at
    once, so a crash before it leaves PgQ to hand the batch out again.
    """

    role = "source database"
    error_class = SourceUnavailable
    #: ``work_mem`` for reading a batch, in its transaction only. PostgreSQL's default (4MB) sends
    #: the ``ev_id`` sort of a 20,000-event batch to disk; a larger batch spills past this anyway.
    sort_memory = "64MB"

    def __init__(self, dsn: str, queue: str, consumer: str, connection: Any = None) -> None:
        super().__init__(dsn, connection)
        self.queue = queue
        self.consumer = consumer
        #: Whether the source database has the audit API (``mikkoo.mark_confirmed``); set by :meth:`prepare`.
        self.audited = False

    def try_lock(self) -> bool:
        """Take the session lock that makes this process the queue's only relay; :meth:`unlock` gives it back."""
        (locked,) = self._run("locking the queue", f"SELECT pg_try_advisory_lock({LOCK_KEY_SQL})",
                              (self._lock_name(),))[0]
        self.commit("locking the queue")
        return bool(locked)

    def unlock(self) -> None:
        """Give the queue's lock back while the connection stays open for other queues."""
        self._run("unlocking the queue", f"SELECT pg_advisory_unlock({LOCK_KEY_SQL})", (self._lock_name(),))
        self.commit("unlocking the queue")

    def _lock_name(self) -> str:
        return f"mikkoo-relay/{self.queue}/{self.consumer}"

    def prepare(self) -> None:
        """Create the PgQ queue, the consumer and the relay's tables where missing.

        mikkoo creates a missing queue and consumer too. Done when a queue is
        configured, so that no event written afterwards is missed, and again by
        the relay now and then in case someone dropped them.
        """
        install_relay_schema(self)
        self._run("creating the PgQ queue", "SELECT pgq.create_queue(%s)", (self.queue,))
        self._run("registering the PgQ consumer", "SELECT pgq.register_consumer(%s, %s)",
                  (self.queue, self.consumer))
        self.audited = bool(self._run("checking for the audit API", AUDIT_API_SQL)[0][0])
        self.commit("preparing the queue")

    def next_batch(self) -> int | None:
        """The id of the next batch ready for this consumer, or None."""
        batch_id: int | None
        (batch_id,) = self._run("asking for the next batch", "SELECT pgq.next_batch(%s, %s)",
                                (self.queue, self.consumer))[0]
        self.commit("asking for the next batch")
        return batch_id

    def unregister(self) -> bool:
        """Unregister the consumer: PgQ stops keeping events for it. False if it was not registered."""
        removed = self._run("unregistering the PgQ consumer",
                            "SELECT pgq.unregister_consumer(queue_name, consumer_name) "
                            "FROM pgq.get_consumer_info(%s, %s)", (self.queue, self.consumer))
        self.commit("unregistering the PgQ consumer")
        return bool(removed)

    def events_waiting(self) -> bool:
        """Whether events were written since the queue's last tick (a rolled-back one may count too)."""
        (waiting,) = self._run("checking for new events", "SELECT mikkoo_relay.events_since_tick(%s)",
                               (self.queue,))[0]
        self.commit("checking for new events")
        return bool(waiting)

    def tick(self, force: bool) -> None:
        """Close the events written so far into a batch.

        ``pgq.ticker`` alone ticks only after ``ticker_max_lag`` (3 s) or
        ``ticker_max_count`` events; when the relay knows events are waiting it
        forces the tick (``pgq.force_tick`` advances the queue's event sequence,
        which PgQ documents for exactly this).
        """
        if force:
            self._run("ticking the queue", "SELECT pgq.force_tick(%s)", (self.queue,))
        self._run("ticking the queue", "SELECT pgq.ticker(%s)", (self.queue,))
        self.commit("ticking the queue")

    def iter_event_windows(self, batch_id: int, size: int, first: int | None = None) -> Iterator[list[Event]]:
        """The batch's events in ``ev_id`` order through a server-side cursor: ``first``, then ``size`` at a time.

        PostgreSQL sorts the whole batch by ``ev_id`` before it returns the
        first row: :attr:`sort_memory` keeps an ordinary batch's sort in memory,
        and a small ``first`` window gets the caller going as soon as it is done.
        """
        wanted = first or size
        psycopg2.extensions.register_type(TIMESTAMPTZ_ONCE, self._conn)
        # A batch partly relayed by an earlier run (see save_progress) goes on after its last event.
        rows = self._run("reading the batch",
                         "SELECT set_config('work_mem', %s, true); "
                         f"SELECT {EVENT_COLUMNS} FROM pgq.get_batch_cursor(%s, %s, %s, "
                         "(SELECT 'ev_id > ' || last_ev_id FROM mikkoo_relay.batch_progress "
                         "WHERE queue_name = %s AND consumer_name = %s AND batch_id = %s))",
                         (self.sort_memory, batch_id, CURSOR_NAME, wanted, self.queue, self.consumer, batch_id))
        while rows:
            yield list(map(event_from_row, rows))
            if len(rows) < wanted:
                break
            wanted = size
            rows = self._run("reading the batch", f"FETCH {int(size)} FROM {CURSOR_NAME}")
        self._run("reading the batch", f"CLOSE {CURSOR_NAME}", fetch=False)

    def retry_events(self, batch_id: int, failed: Sequence[tuple[Event, str]], seconds: int) -> None:
        """Hand events back to PgQ, to come again after ``seconds`` (``pgq.event_retry``), noting why."""
        if not failed:
            return
        ids = [event.id for event, _ in failed]
        self._run("retrying events",
                  "SELECT pgq.event_retry(%s, ev_id, %s::int4) FROM unnest(%s::bigint[]) AS ev_id",
                  (batch_id, seconds, ids))
        self._run("noting failures",
                  "INSERT INTO mikkoo_relay.event_failure AS f (queue_name, consumer_name, ev_id, last_reason) "
                  "SELECT %s, %s, ev_id, reason FROM unnest(%s::bigint[], %s::text[]) AS u(ev_id, reason) "
                  "ON CONFLICT (queue_name, consumer_name, ev_id) "
                  "DO UPDATE SET last_failed_at = now(), last_reason = excluded.last_reason",
                  (self.queue, self.consumer, ids, [reason for _, reason in failed]), fetch=False)

    def forget_failures(self, event_ids: Sequence[int]) -> None:
        """Drop the failure history of events that were delivered after all."""
        if event_ids:
            self._run("forgetting failures",
                      "DELETE FROM mikkoo_relay.event_failure WHERE queue_name = %s AND consumer_name = %s "
                      "AND ev_id = ANY(%s::bigint[])", (self.queue, self.consumer, list(event_ids)), fetch=False)

    def dead_letter(self, batch_id: int, failed: Iterable[tuple[Event, str, int]]) -> None:
        """Store events with the reason and failure count in ``mikkoo_relay.dead_letter``."""
        rows = [
            (self.queue, self.consumer, batch_id, ev.id, ev.time, ev.txid, ev.retry, ev.type, ev.data,
             ev.extra1, ev.extra2, ev.extra3, ev.extra4, reason, failures)
            for ev, reason, failures in failed
        ]
        if not rows:
            return
        try:
            with self._conn.cursor() as cur:
                psycopg2.extras.execute_values(
                    cur,
                    "INSERT INTO mikkoo_relay.dead_letter (queue_name, consumer_name, batch_id, ev_id, "
                    "ev_time, ev_txid, ev_retry, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, "
                    "ev_extra4, reason, failures) VALUES %s",
                    rows,
                )
                # The first failure time moves from the history to the dead letter.
                cur.execute(
                    "WITH gone AS (DELETE FROM mikkoo_relay.event_failure f WHERE f.queue_name = %s "
                    "AND f.consumer_name = %s AND f.ev_id = ANY(%s::bigint[]) RETURNING f.ev_id, f.first_failed_at) "
                    "UPDATE mikkoo_relay.dead_letter d SET first_failed_at = gone.first_failed_at FROM gone "
                    "WHERE d.queue_name = %s AND d.consumer_name = %s AND d.batch_id = %s AND d.ev_id = gone.ev_id",
                    (self.queue, self.consumer, [row[3] for row in rows], self.queue, self.consumer, batch_id))
        except psycopg2.Error as exc:
            self._rollback_quietly()
            raise self.error(exc, "storing dead letters") from None

    def mark_audit(self, confirmed: Sequence[str], dead_lettered: Sequence[tuple[str, str]]) -> None:
        """Mark audit records (``mikkoo.audit``) confirmed, or dead-lettered with a reason, by message id.

        One statement, in the batch's transaction: the marks commit with
        :meth:`finish_batch` or not at all. Every id must be a UUID; ids without
        an audit record are ignored. Call it only when :attr:`audited`.
        """
        if dead_lettered:
            ids, reasons = zip(*dead_lettered, strict=True)
            self._run("marking audit records", MARK_BOTH_SQL, (list(confirmed), list(ids), list(reasons)))
        elif confirmed:
            self._run("marking audit records", MARK_CONFIRMED_SQL, (list(confirmed),))

    def finish_batch(self, batch_id: int) -> None:
        """Finish the batch and commit it with every retry, dead letter and audit mark recorded for it."""
        self._run("finishing the batch", "SELECT pgq.finish_batch(%s); DELETE FROM mikkoo_relay.batch_progress "
                  "WHERE queue_name = %s AND consumer_name = %s", (batch_id, self.queue, self.consumer), fetch=False)
        self.commit("finishing the batch")

    def save_progress(self, batch_id: int, last_event_id: int) -> None:
        """Commit what was recorded for the batch so far, unfinished: the next run goes on after ``last_event_id``.

        Lets a run stop in the middle of a large batch (its time is up) without
        publishing again what RabbitMQ already confirmed.
        """
        self._run("noting the batch's progress",
                  "INSERT INTO mikkoo_relay.batch_progress (queue_name, consumer_name, batch_id, last_ev_id) "
                  "VALUES (%s, %s, %s, %s) ON CONFLICT (queue_name, consumer_name) "
                  "DO UPDATE SET batch_id = excluded.batch_id, last_ev_id = excluded.last_ev_id",
                  (self.queue, self.consumer, batch_id, last_event_id), fetch=False)
        self.commit("noting the batch's progress")

    def batch_info(self, batch_id: int) -> SourceBatch:
        """Which source, ticks and tick times the batch spans (``pgq.get_batch_info``)."""
        row = self._run(
            "reading the batch's ticks",
            "SELECT s.system_identifier::text || '/' || current_database(), b.queue_name, b.consumer_name, "
            "b.prev_tick_id, b.batch_start, b.tick_id, b.batch_end "
            "FROM pgq.get_batch_info(%s) AS b, pg_control_system() AS s", (batch_id,))[0]
        source, queue, consumer, prev_tick_id, prev_tick_time, tick_id, tick_time = row
        return SourceBatch(source, queue, consumer, batch_id, prev_tick_id, prev_tick_time, tick_id, tick_time)

    def abandon_batch(self) -> None:
        """Roll back what was recorded for the current batch; PgQ hands it out again."""
        if self._conn is not None and not self._conn.closed:
            self._rollback_quietly()

    def insert_events(self, events: Iterable[tuple[str, str, str, str, str, str]]) -> int:
        """Write events (type, data, extra1..extra4) into the queue in one transaction, as producers do."""
        rows = list(events)
        try:
            with self._conn.cursor() as cur:
                psycopg2.extras.execute_batch(
                    cur, "SELECT pgq.insert_event(%s, %s, %s, %s, %s, %s, %s)",
                    [(self.queue, *row) for row in rows])
        except psycopg2.Error as exc:
            self._rollback_quietly()
            raise self.error(exc, "writing events") from None
        self.commit("writing events")
        return len(rows)

    def dead_letters_since(self, last_id: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Dead-letter rows of this queue and consumer with an id above ``last_id``."""
        try:
            with self._conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                cur.execute(
                    "SELECT id, ev_id, ev_time, ev_txid, ev_type, ev_data, ev_extra1, ev_extra2, "
                    "ev_extra3, ev_extra4, reason, failures, dead_lettered_at, "
                    "coalesce(first_failed_at, dead_lettered_at) AS first_failed_at "
                    "FROM mikkoo_relay.dead_letter WHERE queue_name = %s AND consumer_name = %s "
                    "AND id > %s ORDER BY id LIMIT %s",
                    (self.queue, self.consumer, last_id, limit),
                )
                rows: list[dict[str, Any]] = cur.fetchall()
            self._conn.commit()
            return rows
        except psycopg2.Error as exc:
            self._rollback_quietly()
            raise self.error(exc, "reading dead letters") from None
