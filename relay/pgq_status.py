"""PgQ's own view of a queue (last tick, consumer lag, pending events), read with bounded, read-only queries."""
from __future__ import annotations

from dataclasses import dataclass

import psycopg2

from .pgq import source_error


@dataclass(frozen=True)
class QueueLag:
    """What PgQ says of one queue and consumer; None where the queue or the consumer does not exist."""

    last_tick_age: float | None
    consumer_lag: float | None
    pending_events: int | None

    @property
    def queue_exists(self) -> bool:
        return self.last_tick_age is not None

    @property
    def consumer_registered(self) -> bool:
        return self.consumer_lag is not None


def queue_lag(dsn: str, queue: str, consumer: str, timeout: float = 3.0) -> QueueLag:
    """Ask PgQ how far behind ``consumer`` of ``queue`` is; raises :class:`~relay.errors.SourceUnavailable`.

    Health checks and metric scrapes call this on every request: the connect
    and statement timeouts keep a stuck database from stalling them.
    """
    try:
        conn = psycopg2.connect(dsn, connect_timeout=max(1, round(timeout)), application_name="mikkoo-relay status",
                                options=f"-c statement_timeout={int(timeout * 1000)}")
    except psycopg2.Error as exc:
        raise source_error(dsn, exc, "connecting") from None
    try:
        conn.set_session(readonly=True, autocommit=True)
        with conn.cursor() as cur:
            cur.execute("SELECT extract(epoch FROM ticker_lag)::float8 FROM pgq.get_queue_info(%s)", (queue,))
            row = cur.fetchone()
            last_tick_age = row[0] if row else None
            lag = pending = None
            if row:
                cur.execute("SELECT extract(epoch FROM lag)::float8, pending_events "
                            "FROM pgq.get_consumer_info(%s, %s)", (queue, consumer))
                info = cur.fetchone()
                if info:
                    lag, pending = info
    except psycopg2.Error as exc:
        raise source_error(dsn, exc, "reading the PgQ queue state") from None
    finally:
        conn.close()
    return QueueLag(last_tick_age=last_tick_age, consumer_lag=lag, pending_events=pending)

