"""PgQ access with psycopg2 for one queue and consumer; knows nothing of AMQP."""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras

from .errors import SourceUnavailable
from .events import Event
from .secrets import redact_url, scrub

logger = logging.getLogger(__name__)

SCHEMA_SQL = Path(__file__).resolve().parent.parent / "sql" / "relay_schema.sql"
CURSOR_NAME = "mikkoo_relay_batch"
EVENT_COLUMNS = "ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4"


def relay_schema_sql() -> str:
    """The SQL that creates the relay's own tables in the source database."""
    return SCHEMA_SQL.read_text()


def _password_of(dsn: str) -> str | None:
    try:
        return psycopg2.extensions.parse_dsn(dsn).get("password")
    except psycopg2.ProgrammingError:
        return None


def source_error(dsn: str, exc: Exception, doing: str) -> SourceUnavailable:
    """A :class:`SourceUnavailable` naming the database without its password."""
    reason = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                   _password_of(dsn))
    return SourceUnavailable(f"source database {redact_url(dsn)}: {doing} failed: {reason}")


class PgqConsumer:
    """A registered PgQ consumer of one queue, on its own connection.

    Methods that read or change PgQ run inside the connection's current
    transaction; :meth:`finish_batch` commits everything done for a batch at
    once, so a crash before it leaves PgQ to hand the batch out again.
    """

    connect_timeout = 5

    def __init__(self, dsn: str, queue: str, consumer: str) -> None:
        self.dsn = dsn
        self.queue = queue
        self.consumer = consumer
        self._conn: Any = None

    def connect(self) -> None:
        try:
            self._conn = psycopg2.connect(
                self.dsn, connect_timeout=self.connect_timeout, application_name="mikkoo-relay",
                keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3,
            )
        except psycopg2.Error as exc:
            raise source_error(self.dsn, exc, "connecting") from None

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None

    def _run(self, doing: str, sql: str, params: Any = None, fetch: bool = True) -> list[tuple]:
        try:
            with self._conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if fetch and cur.description else []
        except psycopg2.Error as exc:
            self._rollback_quietly()
            raise source_error(self.dsn, exc, doing) from None

    def _rollback_quietly(self) -> None:
        try:
            self._conn.rollback()
        except psycopg2.Error:
            pass

    def commit(self, doing: str) -> None:
        try:
            self._conn.commit()
        except psycopg2.Error as exc:
            raise source_error(self.dsn, exc, doing) from None

    def try_lock(self) -> bool:
        """Take the session lock that makes this process the queue's only relay."""
        (locked,) = self._run(
            "locking the queue",
            "SELECT pg_try_advisory_lock(('x' || substr(md5(%s), 1, 16))::bit(64)::bigint)",
            (f"mikkoo-relay/{self.queue}/{self.consumer}",),
        )[0]
        self.commit("locking the queue")
        return bool(locked)

    def prepare(self) -> None:
        """Create the PgQ queue, the consumer and the relay's tables where missing, as mikkoo does."""
        if not self._run("checking for PgQ", "SELECT 1 FROM pg_namespace WHERE nspname = 'pgq'"):
            raise SourceUnavailable(
                f"source database {redact_url(self.dsn)}: PgQ is not installed (CREATE EXTENSION pgq)")
        self._run("creating the PgQ queue", "SELECT pgq.create_queue(%s)", (self.queue,))
        self._run("registering the PgQ consumer", "SELECT pgq.register_consumer(%s, %s)",
                  (self.queue, self.consumer))
        if self._run("checking the relay schema",
                     "SELECT to_regclass('mikkoo_relay.dead_letter')")[0][0] is None:
            # Relays of other queues in the same database may install it at the same moment.
            self._run("installing the relay schema",
                      "SELECT pg_advisory_xact_lock(hashtext('mikkoo_relay schema'))")
            self._run("installing the relay schema", relay_schema_sql(), fetch=False)
        self.commit("preparing the queue")

    def next_batch(self) -> int | None:
        """The id of the next batch ready for this consumer, or None."""
        (batch_id,) = self._run("asking for the next batch", "SELECT pgq.next_batch(%s, %s)",
                                (self.queue, self.consumer))[0]
        self.commit("asking for the next batch")
        return batch_id

    def iter_event_windows(self, batch_id: int, size: int) -> Iterator[list[Event]]:
        """The batch's events in ``ev_id`` order, ``size`` at a time, through a server-side cursor."""
        rows = self._run("reading the batch",
                         f"SELECT {EVENT_COLUMNS} FROM pgq.get_batch_cursor(%s, %s, %s)",
                         (batch_id, CURSOR_NAME, size))
        while rows:
            yield [Event(*row) for row in rows]
            if len(rows) < size:
                break
            rows = self._run("reading the batch", f"FETCH {int(size)} FROM {CURSOR_NAME}")
        self._run("reading the batch", f"CLOSE {CURSOR_NAME}", fetch=False)

    def retry_events(self, batch_id: int, event_ids: Iterable[int], seconds: int) -> None:
        """Hand events back to PgQ, to come again after ``seconds`` (``pgq.event_retry``)."""
        ids = list(event_ids)
        if ids:
            self._run("retrying events",
                      "SELECT pgq.event_retry(%s, ev_id, %s::int4) FROM unnest(%s::bigint[]) AS ev_id",
                      (batch_id, seconds, ids))

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
        except psycopg2.Error as exc:
            self._rollback_quietly()
            raise source_error(self.dsn, exc, "storing dead letters") from None

    def finish_batch(self, batch_id: int) -> None:
        """Finish the batch and commit it with every retry and dead letter recorded for it."""
        self._run("finishing the batch", "SELECT pgq.finish_batch(%s)", (batch_id,))
        self.commit("finishing the batch")

    def abandon_batch(self) -> None:
        """Roll back what was recorded for the current batch; PgQ hands it out again."""
        if self._conn is not None and not self._conn.closed:
            self._rollback_quietly()

    def dead_letters_since(self, last_id: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Dead-letter rows of this queue and consumer with an id above ``last_id``."""
        try:
            with self._conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                cur.execute(
                    "SELECT id, ev_id, ev_time, ev_txid, ev_type, ev_data, ev_extra1, ev_extra2, "
                    "ev_extra3, ev_extra4, reason, failures, dead_lettered_at "
                    "FROM mikkoo_relay.dead_letter WHERE queue_name = %s AND consumer_name = %s "
                    "AND id > %s ORDER BY id LIMIT %s",
                    (self.queue, self.consumer, last_id, limit),
                )
                rows = cur.fetchall()
            self._conn.commit()
            return rows
        except psycopg2.Error as exc:
            self._rollback_quietly()
            raise source_error(self.dsn, exc, "reading dead letters") from None
