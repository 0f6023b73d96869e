"""PgQ's own view of a queue (ticks, the consumer's lag, pending events), read on a short read-only connection."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..core.errors import SourceUnavailable
from .database import Database

PGQ_STATE_SQL = """
SELECT q.ticker_lag, q.ev_new, c.consumer_name IS NOT NULL, c.lag, c.pending_events
  FROM pgq.get_queue_info(%(queue)s) AS q
  LEFT JOIN pgq.get_consumer_info(%(queue)s, %(consumer)s) AS c ON true
"""
# The same for any number of (queue, consumer) of one database, in one round trip: PgQ's functions
# without arguments list every queue and consumer (a few rows of PgQ's own tables each).
PGQ_STATES_SQL = """
SELECT w.queue_name, w.consumer_name, q.queue_name IS NOT NULL, c.consumer_name IS NOT NULL,
       q.ticker_lag, q.ev_new, c.lag, c.pending_events
  FROM unnest(%s::text[], %s::text[]) AS w(queue_name, consumer_name)
  LEFT JOIN pgq.get_queue_info() AS q ON q.queue_name = w.queue_name
  LEFT JOIN pgq.get_consumer_info() AS c ON c.queue_name = w.queue_name AND c.consumer_name = w.consumer_name
"""


@dataclass(frozen=True)
class PgqState:
    """What PgQ says about the queue and the relay's consumer of it."""

    queue_exists: bool = True
    registered: bool = True
    #: Age of the last tick the consumer finished (pgq.get_consumer_info lag).
    consumer_lag: timedelta | None = None
    #: Events in ticks the consumer has not finished yet (pgq.get_consumer_info pending_events).
    pending_events: int = 0
    #: Events written since the queue's last tick, in no batch yet (pgq.get_queue_info ev_new).
    new_events: int = 0
    #: Time since the queue's last tick (pgq.get_queue_info ticker_lag): pgqd makes ticks.
    ticker_lag: timedelta | None = None


class StatusReader(Database):
    """A short, read-only connection to a source database with tight time limits.

    Status pages, health checks and metric scrapes read through it on every
    request: a database that does not answer, or a lock held by an installer,
    costs them a few seconds at most and never blocks the relay.
    """

    role = "source database"
    error_class = SourceUnavailable
    application_name = "mikkoo-relay status"
    connect_timeout = 3
    statement_timeout_ms = 2000
    # A reader queued behind an ACCESS EXCLUSIVE lock (install_sql's ALTER TABLE) gives up quickly.
    lock_timeout_ms = 500

    def __init__(self, dsn: str, timeout: float | None = None) -> None:
        super().__init__(dsn)
        if timeout is not None:
            self.connect_timeout = max(1, round(timeout))
            self.statement_timeout_ms = int(timeout * 1000)

    def opened(self) -> None:
        self._conn.set_session(readonly=True, autocommit=True)
        self._run("setting time limits", "SET statement_timeout = %s; SET lock_timeout = %s",
                  (self.statement_timeout_ms, self.lock_timeout_ms), fetch=False)

    def query(self, doing: str, sql: str, params: object = None) -> list[tuple[Any, ...]]:
        return self._run(doing, sql, params)

    def pgq_state(self, queue: str, consumer: str) -> PgqState:
        """What PgQ says of ``queue`` and ``consumer``; a missing queue or consumer is said so, not raised."""
        rows = self.query("reading PgQ", PGQ_STATE_SQL, {"queue": queue, "consumer": consumer})
        if not rows:
            return PgqState(queue_exists=False, registered=False)
        ticker_lag, new_events, registered, lag, pending = rows[0]
        return PgqState(queue_exists=True, registered=registered, consumer_lag=lag,
                        pending_events=max(0, pending or 0), new_events=max(0, new_events or 0),
                        ticker_lag=ticker_lag)


def read_states(db: Database, queues: Sequence[tuple[str, str]], timeout_ms: int = 5000,
                doing: str = "reading PgQ's queues") -> dict[tuple[str, str], PgqState]:
    """What PgQ says of each ``(queue, consumer)`` of ``db``'s database, in one query on its connection.

    The query may take ``timeout_ms`` at most: the connection may be one a
    worker process keeps for relaying, which must not wait on a stuck read.
    """
    if not queues:
        return {}
    names, consumers = zip(*queues, strict=True)
    db._run(doing, "SET LOCAL statement_timeout = %s", (timeout_ms,), fetch=False)
    rows = db._run(doing, PGQ_STATES_SQL, (list(names), list(consumers)))
    db.commit(doing)
    return {(queue, consumer): PgqState(queue_exists=exists, registered=registered, consumer_lag=lag,
                                        pending_events=max(0, pending or 0), new_events=max(0, new or 0),
                                        ticker_lag=ticker_lag)
            for queue, consumer, exists, registered, ticker_lag, new, lag, pending in rows}
