"""Helpers for tests that talk to the real PostgreSQL + PgQ and RabbitMQ on this machine."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager

import psycopg2
from kombu import Connection

ADMIN_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def dsn_for(database: str) -> str:
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + database


@contextmanager
def connect(dsn: str, autocommit: bool = True):
    conn = psycopg2.connect(dsn)
    conn.autocommit = autocommit
    try:
        yield conn
    finally:
        conn.close()


def sql(dsn: str, statement: str, params=None) -> list[tuple]:
    """Run one statement in its own committed transaction and return its rows."""
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else []


def create_database(name: str) -> str:
    with connect(ADMIN_DSN) as conn, conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    dsn = dsn_for(name)
    sql(dsn, "CREATE EXTENSION IF NOT EXISTS pgq")
    return dsn


def drop_database(name: str) -> None:
    with connect(ADMIN_DSN) as conn, conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_queue(dsn: str, prefix: str):
    """A PgQ queue of its own with the relay's consumer registered before any event; dropped afterwards."""
    name = unique(prefix)
    sql(dsn, "SELECT pgq.create_queue(%s)", (name,))
    sql(dsn, "SELECT pgq.register_consumer(%s, 'mikkoo')", (name,))
    try:
        yield name
    finally:
        sql(dsn, "SELECT pgq.drop_queue(%s, true)", (name,))


def insert_events(dsn: str, queue: str, rows) -> None:
    """Insert events, each a tuple (type, data, extra1, extra2, extra3, extra4), in one transaction."""
    with connect(dsn, autocommit=False) as conn, conn.cursor() as cur:
        cur.executemany("SELECT pgq.insert_event(%s, %s, %s, %s, %s, %s, %s)",
                        [(queue, *row) for row in rows])
        conn.commit()


def insert_audited_events(dsn: str, queue: str, exchange: str, routing_key: str, payloads) -> list[str]:
    """Write events with ``mikkoo.insert_audited_event`` in one transaction; their message ids, in order."""
    with connect(dsn, autocommit=False) as conn, conn.cursor() as cur:
        ids = []
        for payload in payloads:
            cur.execute("SELECT mikkoo.insert_audited_event(%s, %s, %s, %s, 'application/json')",
                        (queue, exchange, routing_key, payload))
            (event_id,) = cur.fetchone()
            cur.execute("SELECT message_id::text FROM mikkoo.audit WHERE queue = %s AND event_id = %s",
                        (queue, event_id))
            ids.append(cur.fetchone()[0])
        conn.commit()
    return ids


def audit_rows(dsn: str, queue: str) -> list[tuple]:
    """``(message_id, confirmed_at, dead_lettered_at, dead_letter_reason)`` of a queue's audit records."""
    return sql(dsn, "SELECT message_id::text, confirmed_at, dead_lettered_at, dead_letter_reason "
                    "FROM mikkoo.audit WHERE queue = %s ORDER BY event_id", (queue,))


def tick(dsn: str, queue: str) -> None:
    """Close the current batch of ``queue`` so a consumer can read it."""
    sql(dsn, "SELECT pgq.force_tick(%s)", (queue,))
    sql(dsn, "SELECT pgq.ticker(%s)", (queue,))


def release_retries(dsn: str, queue: str) -> int:
    """Move retried events whose time has come back into the queue (pgqd does this every 30 s)."""
    sql(dsn, "UPDATE pgq.retry_queue SET ev_retry_after = now() - interval '1 second' "
             "WHERE ev_queue = (SELECT queue_id FROM pgq.queue WHERE queue_name = %s)", (queue,))
    (moved,) = sql(dsn, "SELECT pgq.maint_retry_events()")[0]
    tick(dsn, queue)
    return moved


def amqp_connection() -> Connection:
    return Connection(AMQP_URL, transport="pyamqp")


def drain(connection: Connection, queue: str, expected: int | None = None, timeout: float = 2.0):
    """Every message waiting in ``queue`` (a py-amqp Message each), acked as read."""
    channel = connection.channel()
    try:
        messages = []
        while True:
            message = channel.basic_get(queue, no_ack=True)
            if message is None:
                if expected is not None and len(messages) < expected and timeout > 0:
                    import time

                    time.sleep(0.05)
                    timeout -= 0.05
                    continue
                return messages
            messages.append(message)
    finally:
        channel.close()


def message_count(connection: Connection, queue: str) -> int:
    """Messages waiting in ``queue`` now, as RabbitMQ counts them."""
    channel = connection.channel()
    try:
        return channel.queue_declare(queue, passive=True).message_count
    finally:
        channel.close()


def consume(connection: Connection, queue: str, expected: int, timeout: float = 60.0) -> list:
    """Take ``expected`` messages from ``queue`` (fewer if ``timeout`` passes first), fast: pushed, not polled."""
    import time

    messages: list = []
    channel = connection.channel()
    try:
        channel.basic_qos(0, 1000, False)
        channel.basic_consume(queue, no_ack=True, callback=messages.append)
        deadline = time.monotonic() + timeout
        while len(messages) < expected and time.monotonic() < deadline:
            try:
                connection.drain_events(timeout=0.5)
            except TimeoutError:
                pass
    finally:
        channel.close()
    return messages


def django_database_url() -> str:
    """The URL of the database Django uses now (the test database, inside a test)."""
    from django.db import connection

    params = connection.settings_dict
    if params["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{params['NAME']}"
    auth = params["USER"] + (f":{params['PASSWORD']}" if params["PASSWORD"] else "")
    return f"postgres://{auth}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{params['NAME']}"


def manage(*args: str, timeout: float = 60, env: dict | None = None):
    """Run ``manage.py`` in a process of its own against the test database; returns the CompletedProcess."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    environment = {**os.environ, "DATABASE_URL": django_database_url(), **(env or {})}
    return subprocess.run([sys.executable, str(root / "manage.py"), *args], cwd=root, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def restart_rabbitmq() -> None:
    """Restart the RabbitMQ application (every connection drops); always leaves it running."""
    import subprocess

    try:
        subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, capture_output=True, timeout=120)
    finally:
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, capture_output=True, timeout=120)
        subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=True, capture_output=True, timeout=120)


def restart_postgresql() -> None:
    """Restart the PostgreSQL cluster (every session ends); always leaves it running."""
    import subprocess

    cluster = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True,
                             check=True).stdout.split()
    version, name = cluster[0], cluster[1]
    try:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart", "-m", "fast"],
                       check=True, capture_output=True, timeout=120)
    finally:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "start"],
                       capture_output=True, timeout=120)


@contextmanager
def silent_listener():
    """A loopback port that accepts TCP connections (the kernel's backlog) and never answers: a hung server.

    Yields the port; a client waits for its own timeout, as with a host behind a dropping firewall.
    """
    import socket

    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def stored_events(cursor, queue: str) -> list[tuple]:
    """Every event of ``queue`` in its PgQ tables, as ``cursor`` sees them (its own uncommitted ones too), by ev_id.

    Rows of the ten columns of :class:`relay.core.events.Event`, batched or not.
    """
    cursor.execute("SELECT queue_data_pfx FROM pgq.queue WHERE queue_name = %s", (queue,))
    (table,) = cursor.fetchone()
    cursor.execute(f"SELECT ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, "
                   f"ev_extra4 FROM {table} ORDER BY ev_id")
    return cursor.fetchall()
