"""Where the engine's connections come from: its own for one run, or those a worker process keeps.

A worker serves many queues; pgqd's economy is one connection per database
for all of them. :class:`ConnectionPool` keeps one source-database connection
per database and one RabbitMQ connection per broker in each process, lends
them to one run at a time (a queue still gets a channel of its own), replaces
a broken one and closes those left idle. No Django here.
"""
from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg2

from ..amqp.broker import BrokerLink, BrokerSettings
from ..core.errors import RelayError, SourceUnavailable
from ..pgq.database import Database

logger = logging.getLogger(__name__)


class SourceConnection(Database):
    """A connection to a source database, shared by the relays of its queues."""

    role = "source database"
    error_class = SourceUnavailable

    def connect(self) -> None:
        super().connect()
        # The relay's commits (ticks, batches taken and finished, retries, dead letters) need not wait
        # for the disk: lost in a PostgreSQL crash, they are made again (a finished batch is handed out
        # again and relayed twice), never lost. Producers' commits are theirs and stay durable.
        self._run("setting up the session", "SET synchronous_commit = off", fetch=False)
        self.commit("setting up the session")


class Connections(Protocol):
    """What the engine asks for its connections."""

    def source(self, dsn: str) -> AbstractContextManager[Any]:
        """A context manager lending an open psycopg2 connection to ``dsn``."""

    def broker(self, settings: BrokerSettings) -> AbstractContextManager[BrokerLink]:
        """A context manager lending a :class:`BrokerLink` (connected on first use)."""

    def preparation(self, dsn: str, queue: str, consumer: str) -> bool | None:
        """Whether the source has the audit API, if the queue was prepared recently on this connection."""

    def prepared(self, dsn: str, queue: str, consumer: str, audited: bool) -> None:
        """Remember that the queue was prepared (created, consumer registered, trigger installed)."""


class OwnConnections:
    """Connections opened for one run and closed after it (``relay_once``, the admin, tests)."""

    @contextmanager
    def source(self, dsn: str) -> Iterator[Any]:
        database = SourceConnection(dsn)
        database.connect()
        try:
            yield database.connection
        finally:
            database.close()

    @contextmanager
    def broker(self, settings: BrokerSettings) -> Iterator[BrokerLink]:
        link = BrokerLink(settings)
        try:
            yield link
        finally:
            link.close()

    def preparation(self, dsn: str, queue: str, consumer: str) -> bool | None:
        return None

    def prepared(self, dsn: str, queue: str, consumer: str, audited: bool) -> None:
        pass


@dataclass
class _Kept:
    """A kept connection (a SourceConnection or a BrokerLink), and what is known on it."""

    value: Any
    last_used: float = field(default_factory=time.monotonic)
    in_use: bool = False
    #: (queue, consumer) -> (audited, when it was prepared)
    prepared: dict[tuple[str, str], tuple[bool, float]] = field(default_factory=dict)


class ConnectionPool:
    """The connections one worker process keeps across tasks: one per source database, one per broker.

    Lent to one run at a time. A source connection that has something to say
    while idle was closed by the server (a restart, an idle timeout) and is
    replaced; one that breaks while lent is dropped when it comes back. A
    database or broker that refused a connection is not tried again for
    ``retry_seconds``: the queues behind it fail at once instead of each
    waiting out a connect timeout.
    """

    #: A queue is prepared again after this long, in case someone dropped its queue or consumer.
    prepare_again_seconds = 60.0

    def __init__(self, idle_seconds: float = 60.0, retry_seconds: float = 5.0) -> None:
        self.idle_seconds = idle_seconds
        self.retry_seconds = retry_seconds
        self._sources: dict[str, _Kept] = {}
        self._brokers: dict[BrokerSettings, _Kept] = {}
        self._refused: dict[Any, tuple[float, RelayError]] = {}
        # Reentrant: a refused connection is remembered while the pool is being changed.
        self._lock = threading.RLock()

    @contextmanager
    def source(self, dsn: str) -> Iterator[Any]:
        kept = self._checkout(self._sources, dsn, self._open_source, _source_is_sound)
        try:
            yield kept.value.connection
        finally:
            self._give_back_source(dsn, kept)

    @contextmanager
    def broker(self, settings: BrokerSettings) -> Iterator[BrokerLink]:
        kept = self._checkout(self._brokers, settings, BrokerLink, lambda link: True)
        link: BrokerLink = kept.value
        if link.connection is not None and link.idle_too_long(time.monotonic(), self.idle_seconds):
            link.close()  # it may have missed heartbeats: connect afresh rather than fail a window
        try:
            yield link
        except RelayError as exc:
            if link.connection is None:
                self._remember_refusal(settings, exc)
            raise
        finally:
            with self._lock:
                kept.in_use = False
                kept.last_used = time.monotonic()

    def preparation(self, dsn: str, queue: str, consumer: str) -> bool | None:
        kept = self._sources.get(dsn)
        known = kept.prepared.get((queue, consumer)) if kept else None
        if known is None or time.monotonic() - known[1] > self.prepare_again_seconds:
            return None
        return known[0]

    def prepared(self, dsn: str, queue: str, consumer: str, audited: bool) -> None:
        kept = self._sources.get(dsn)
        if kept is not None:
            kept.prepared[(queue, consumer)] = (audited, time.monotonic())

    def close_idle(self) -> int:
        """Close connections nobody used for ``idle_seconds``; how many were closed."""
        now = time.monotonic()
        closed = 0
        pools: tuple[dict[Any, _Kept], ...] = (self._sources, self._brokers)  # by dsn, by BrokerSettings
        with self._lock:
            for kept_by_key in pools:
                for key, kept in list(kept_by_key.items()):
                    if not kept.in_use and now - kept.last_used > self.idle_seconds:
                        del kept_by_key[key]
                        kept.value.close()
                        closed += 1
        return closed

    def close(self) -> None:
        with self._lock:
            for kept in (*self._sources.values(), *self._brokers.values()):
                kept.value.close()
            self._sources.clear()
            self._brokers.clear()

    def counts(self) -> tuple[int, int]:
        """How many source and broker connections are kept (open or not)."""
        return len(self._sources), len(self._brokers)

    def _checkout(self, kept_by_key: dict[Any, _Kept], key: Any, make: Any, sound: Any) -> _Kept:
        with self._lock:
            kept = kept_by_key.get(key)
            if kept is not None and kept.in_use:
                raise RuntimeError("a pooled connection is lent to one run at a time")
            if kept is not None and not sound(kept.value):
                kept.value.close()
                kept = None
            if kept is None:
                refused = self._refused.get(key)
                if refused is not None and time.monotonic() < refused[0]:
                    raise type(refused[1])(f"{refused[1]} (not tried again yet)")
                kept = kept_by_key[key] = _Kept(make(key))
            kept.in_use = True
            return kept

    def _open_source(self, dsn: str) -> SourceConnection:
        database = SourceConnection(dsn)
        try:
            database.connect()
        except RelayError as exc:
            self._remember_refusal(dsn, exc)
            raise
        return database

    def _remember_refusal(self, key: Any, exc: RelayError) -> None:
        with self._lock:
            self._refused[key] = (time.monotonic() + self.retry_seconds, exc)

    def _give_back_source(self, dsn: str, kept: _Kept) -> None:
        database: SourceConnection = kept.value
        if not database.broken and database.connection.status != psycopg2.extensions.STATUS_READY:
            try:
                database.connection.rollback()  # a run that failed may leave its transaction open
            except psycopg2.Error:
                database.close()
        with self._lock:
            kept.in_use = False
            kept.last_used = time.monotonic()
            if database.broken:
                self._sources.pop(dsn, None)
            else:
                self._refused.pop(dsn, None)



def _source_is_sound(database: SourceConnection) -> bool:
    # An idle connection has nothing to read: anything there is the server's goodbye.
    return not database.broken and not select.select([database.connection], [], [], 0)[0]


_pool: tuple[int, ConnectionPool] | None = None


def process_pool(idle_seconds: float = 60.0) -> ConnectionPool:
    """This process's pool, closing idle connections in the background.

    A forked child makes its own: its parent's connections share their sockets with it.
    """
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        pool = ConnectionPool(idle_seconds=idle_seconds)
        threading.Thread(target=_reap, args=(pool,), name="relay-connection-reaper", daemon=True).start()
        _pool = (os.getpid(), pool)
    return _pool[1]


def _reap(pool: ConnectionPool) -> None:
    while True:
        time.sleep(max(1.0, pool.idle_seconds / 4))
        try:
            pool.close_idle()
        except Exception:  # the reaper must outlive whatever one close does
            logger.exception("closing idle connections failed")
