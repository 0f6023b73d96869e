"""The target database of a split queue: its PgQ queues and its record of applied source batches; no Django."""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import psycopg2
from psycopg2.sql import SQL, Identifier

from ..core.connection_strings import redact_url, scrub, secrets_in
from ..core.errors import TargetUnavailable
from ..core.events import Event, SourceBatch
from .arrays import array_literal
from .database import Database, describe_failure, first_line

logger = logging.getLogger(__name__)

SCHEMA_SQL = files("relay") / "sql" / "splitter_target_schema.sql"

# One statement per target queue and window, into the queue's current event table (pgq.current_event_table
# documents it for bulk loads, and Skytools' queue_splitter does the same through pgq.bulk_insert_events): half
# the cost of pgq.insert_event_raw row by row. ev_id and ev_txid come from the table's defaults; ev_time is kept.
INSERT_SQL = (
    "INSERT INTO {table} (ev_time, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4) "
    "SELECT * FROM unnest(%s::timestamptz[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::text[])"
)
# Sent with the statement, so that a refused one costs no more round trips than an accepted one.
SAVEPOINT_SQL = "SAVEPOINT mikkoo_relay_statement; {sql}; RELEASE SAVEPOINT mikkoo_relay_statement"
BATCH_KEY = "source = %s AND queue_name = %s AND consumer_name = %s"


def target_schema_sql() -> str:
    """The SQL that creates the splitter's tables in the target database."""
    return SCHEMA_SQL.read_text()


def target_error(dsn: str, exc: Exception, doing: str) -> TargetUnavailable:
    """A :class:`TargetUnavailable` naming the database without its password."""
    return TargetUnavailable(describe_failure("target database", dsn, exc, doing))


def _key(batch: SourceBatch) -> tuple[str, str, str]:
    return (batch.source, batch.queue, batch.consumer)


@dataclass(frozen=True)
class AppliedBatch:
    """What the target database recorded of a source batch it applied."""

    inserted: int
    retried: int
    dead_lettered: int


@dataclass(frozen=True)
class Failure:
    """A source event that was not inserted, and what became of it: retried, or dead-lettered."""

    event_id: int
    reason: str
    dead: bool


class PgqTarget(Database):
    """PgQ queues in a target database, written on a connection of its own.

    Everything done for one source batch (target queues created, events
    inserted, the batch recorded as applied) happens in one transaction that
    :meth:`commit_batch` commits and :meth:`abandon_batch` rolls back. Use it as
    a context manager: it connects, checks PgQ and creates its tables on entry.
    """

    role = "target database"
    error_class = TargetUnavailable
    application_name = "mikkoo-relay splitter"

    def __init__(self, dsn: str) -> None:
        super().__init__(dsn)
        self.created: list[str] = []
        # Per batch: target queue -> why its events cannot be inserted (None: they can), and its event table.
        self._queues: dict[str, str | None] = {}
        self._tables: dict[str, str] = {}

    def opened(self) -> None:
        self.prepare()

    def prepare(self) -> None:
        """Check that PgQ is installed, and create the splitter's tables where missing."""
        if not self._run("checking for PgQ", "SELECT 1 FROM pg_namespace WHERE nspname = 'pgq'"):
            raise TargetUnavailable(
                f"target database {redact_url(self.dsn)}: PgQ is not installed (CREATE EXTENSION pgq)")
        if self._run("checking the splitter's tables",
                     "SELECT to_regclass('mikkoo_relay.applied_batch_failure')")[0][0] is None:
            # Splitters of other queues into the same database may install them at the same moment.
            self._run("installing the splitter's tables",
                      "SELECT pg_advisory_xact_lock(hashtext('mikkoo_relay target schema'))")
            self._run("installing the splitter's tables", target_schema_sql(), fetch=False)
        self.commit("installing the splitter's tables")

    def begin_batch(self, batch: SourceBatch) -> AppliedBatch | None:
        """Start the transaction of ``batch``; what was recorded of it if it was applied before, else None.

        The batch's record stays locked until the transaction ends, so no two
        processes can apply the same batch.
        """
        self.created = []
        self._queues = {}
        self._tables = {}
        # txid_current(): the transaction's id is taken before any event table is looked up, so it is older
        # than the end of a table rotation (pgq.maint_rotate_tables_step2) that starts meanwhile, and
        # consumers keep reading the table the events go into for as long as they can be in it.
        self._run("locking the applied batches",
                  "SELECT pg_advisory_xact_lock(('x' || substr(md5(%s), 1, 16))::bit(64)::bigint), txid_current()",
                  ("mikkoo-relay/applied-batch/" + "/".join(_key(batch)),))
        rows = self._run("reading the applied batches",
                         "SELECT tick_id, tick_time, inserted, retried, dead_lettered "
                         f"FROM mikkoo_relay.applied_batch WHERE {BATCH_KEY}", _key(batch))
        if rows:
            tick_id, tick_time, inserted, retried, dead_lettered = rows[0]
            if (tick_id, tick_time) == (batch.tick_id, batch.tick_time):
                return AppliedBatch(inserted, retried, dead_lettered)
            if (tick_id, tick_time) != (batch.prev_tick_id, batch.prev_tick_time):
                # Not an error: the consumer was registered anew or moved (pgq.register_consumer_at),
                # or the queue created again. Worth a line, because a restored target database looks the same.
                logger.warning("queue=%s consumer=%s: the target database last applied the batch ending at tick "
                               "%d, this batch spans ticks %d..%d; applying it",
                               batch.queue, batch.consumer, tick_id, batch.prev_tick_id, batch.tick_id)
        self._run("clearing the previous batch's failures",
                  f"DELETE FROM mikkoo_relay.applied_batch_failure WHERE {BATCH_KEY}", _key(batch), fetch=False)
        return None

    def refusals(self, queues: Iterable[str], create: bool) -> dict[str, str]:
        """Why events cannot go into some of ``queues``, by queue; missing queues are created when ``create``."""
        names = list(dict.fromkeys(queues))
        unknown = [name for name in names if name not in self._queues]
        if unknown:
            # PgQ documents the current event table as valid for the rest of the transaction (see begin_batch).
            found = {name: table for name, table in self._run(
                "looking up the target queues",
                "SELECT queue_name, CASE WHEN NOT queue_disable_insert THEN pgq.current_event_table(queue_name) END "
                "FROM pgq.queue WHERE queue_name = ANY(%s)", (unknown,))}
            for name in unknown:
                if name in found:
                    self._queues[name] = (None if found[name] else
                                          f"target queue {name!r} does not take inserts (queue_disable_insert)")
                    if found[name]:
                        self._tables[name] = found[name]
                elif create:
                    self._queues[name] = self._create_queue(name)
                else:
                    self._queues[name] = (f"target queue {name!r} does not exist in the target database "
                                          "(creating target queues is off)")
        return {name: reason for name in names if (reason := self._queues[name])}

    def _create_queue(self, name: str) -> str | None:
        reason = self._in_savepoint("creating a target queue", "SELECT pgq.create_queue(%s)", (name,))
        if reason is None:
            self.created.append(name)
            logger.info("created target queue %s in %s", name, redact_url(self.dsn))
            self._tables[name] = self._run("looking up the target queues", "SELECT pgq.current_event_table(%s)",
                                           (name,))[0][0]
            return None
        return f"cannot create target queue {name!r}: {reason}"

    def insert(self, queue: str, events: Sequence[Event]) -> str | None:
        """Insert ``events`` into ``queue`` in one statement, keeping their time; why not, if they could not be.

        ``queue`` must have passed :meth:`refusals` in this batch.
        """
        columns = (array_literal([ev.time.isoformat() for ev in events]), array_literal([ev.type for ev in events]),
                   array_literal([ev.data for ev in events]), array_literal([ev.extra1 for ev in events]),
                   array_literal([ev.extra2 for ev in events]), array_literal([ev.extra3 for ev in events]),
                   array_literal([ev.extra4 for ev in events]))
        schema, table = self._tables[queue].split(".", 1)
        statement = SQL(INSERT_SQL).format(table=Identifier(schema, table)).as_string(self._conn)
        reason = self._in_savepoint("inserting events", statement, columns)
        return None if reason is None else f"cannot insert into target queue {queue!r}: {reason}"

    def _in_savepoint(self, doing: str, sql: str, params: Any) -> str | None:
        """Run ``sql``; a failure of that statement alone is returned as its reason and undone.

        A refused statement (a privilege, a queue's own limits) concerns the
        events of one target queue; losing the connection concerns them all and
        is raised.
        """
        try:
            with self._conn.cursor() as cur:
                cur.execute(SAVEPOINT_SQL.format(sql=sql), params)
            return None
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            self._rollback_quietly()
            raise target_error(self.dsn, exc, doing) from None
        except psycopg2.Error as exc:
            reason = scrub(first_line(exc), *secrets_in(self.dsn))
        self._run(doing, "ROLLBACK TO SAVEPOINT mikkoo_relay_statement", fetch=False)
        return reason

    def record_failures(self, batch: SourceBatch, failures: Sequence[Failure]) -> None:
        """Remember the events of ``batch`` not inserted, for a rerun of the batch after a crash."""
        if failures:
            self._run("recording the events not inserted",
                      "INSERT INTO mikkoo_relay.applied_batch_failure "
                      "(source, queue_name, consumer_name, ev_id, dead, reason) "
                      "SELECT %s, %s, %s, f.ev_id, f.dead, f.reason "
                      "FROM unnest(%s::bigint[], %s::boolean[], %s::text[]) AS f(ev_id, dead, reason) "
                      "ON CONFLICT DO NOTHING",
                      (*_key(batch), [f.event_id for f in failures], [f.dead for f in failures],
                       [f.reason for f in failures]), fetch=False)

    def failures_of(self, batch: SourceBatch, event_ids: Sequence[int]) -> list[Failure]:
        """The recorded failures among ``event_ids`` of the applied ``batch``."""
        rows = self._run("reading the events not inserted",
                         "SELECT ev_id, reason, dead FROM mikkoo_relay.applied_batch_failure "
                         f"WHERE {BATCH_KEY} AND ev_id = ANY(%s) ORDER BY ev_id",
                         (*_key(batch), list(event_ids)))
        return [Failure(ev_id, reason, dead) for ev_id, reason, dead in rows]

    def commit_batch(self, batch: SourceBatch, inserted: int, retried: int, dead_lettered: int) -> None:
        """Record ``batch`` as applied and commit it with everything inserted for it."""
        self._run("recording the applied batch",
                  "INSERT INTO mikkoo_relay.applied_batch (source, queue_name, consumer_name, batch_id, "
                  "prev_tick_id, tick_id, tick_time, inserted, retried, dead_lettered) "
                  "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                  "ON CONFLICT (source, queue_name, consumer_name) DO UPDATE SET batch_id = EXCLUDED.batch_id, "
                  "prev_tick_id = EXCLUDED.prev_tick_id, tick_id = EXCLUDED.tick_id, "
                  "tick_time = EXCLUDED.tick_time, inserted = EXCLUDED.inserted, retried = EXCLUDED.retried, "
                  "dead_lettered = EXCLUDED.dead_lettered, applied_at = now()",
                  (*_key(batch), batch.batch_id, batch.prev_tick_id, batch.tick_id, batch.tick_time, inserted,
                   retried, dead_lettered), fetch=False)
        self.commit("committing the batch")

    def abandon_batch(self) -> None:
        """Roll back everything done for the current batch."""
        if self._conn is not None and not self._conn.closed:
            self._rollback_quietly()
