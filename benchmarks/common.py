"""What the benchmarks share: where the services are, one-statement SQL, an engine run in a child process, a
worker's Django set-up, a mikkoo file of many queues, and a consumer of the messages that arrive."""
from __future__ import annotations

import multiprocessing
import os
import queue
import resource
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
from kombu import Connection

ADMIN_DSN = os.environ.get("BENCH_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def execute(dsn: str, statement: str, params=None, autocommit: bool = True) -> list[tuple]:
    """Run one statement on a connection of its own and return its rows."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = autocommit
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            rows = cur.fetchall() if cur.description else []
        if not autocommit:
            conn.commit()
        return rows
    finally:
        conn.close()


def _run(engine: Any, results: multiprocessing.Queue) -> None:
    result = engine.run()
    results.put((result, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def run_in_child(engine: Any) -> tuple[Any, float]:
    """``engine.run()`` in a forked process, so the peak RSS measured is the engine's own: (result, MB)."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_run, args=(engine, results))
    child.start()
    while True:
        try:
            outcome = results.get(timeout=1)
            break
        except queue.Empty:
            if not child.is_alive():
                raise SystemExit(f"the engine's process died (exit code {child.exitcode})") from None
    child.join()
    return outcome


def worker_environment(workdir: Path, celery_queue: str) -> None:
    """Set up Django as a benchmark's worker will run it: a temporary SQLite database and a Celery queue of its own."""
    os.environ.update(DATABASE_URL=f"sqlite:///{workdir / 'django.sqlite3'}", SECRET_KEY="benchmark-only",
                      DJANGO_SETTINGS_MODULE="mikkoo_project.settings", CELERY_TASK_DEFAULT_QUEUE=celery_queue,
                      CELERY_BEAT_SCHEDULE_FILENAME=str(workdir / "beat"))
    import django

    django.setup()


PG_LOG = Path(os.environ.get("BENCH_POSTGRES_LOG", "/var/log/postgresql/postgresql-15-main.log"))


@dataclass(frozen=True)
class Load:
    """What a database served per second: transactions, new sessions, and statements (None: not counted)."""

    transactions: float
    sessions: float
    statements: float | None

    def __sub__(self, other: Load) -> Load:
        statements = None if self.statements is None or other.statements is None else \
            self.statements - other.statements
        return Load(self.transactions - other.transactions, self.sessions - other.sessions, statements)

    def __str__(self) -> str:
        statements = "statements not counted" if self.statements is None else f"{self.statements:.1f} statements/s"
        return f"{statements}, {self.transactions:.1f} transactions/s, {self.sessions:.2f} new sessions/s"


def count_statements(admin, database: str) -> None:
    """Have PostgreSQL log every statement of ``database``'s new sessions, for :func:`idle_cost` to count."""
    with admin.cursor() as cur:
        cur.execute(f'ALTER DATABASE "{database}" SET log_min_duration_statement = 0')


def idle_cost(admin, database: str, seconds: float) -> Load:
    """What ``database`` served over ``seconds`` of the benchmark doing nothing.

    Transactions and sessions from ``pg_stat_database``; statements from the
    server's log (``BENCH_POSTGRES_LOG``) when :func:`count_statements` was
    called before the sessions opened and the log can be read.
    """
    def read():
        with admin.cursor() as cur:
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute("SELECT xact_commit + xact_rollback, sessions FROM pg_stat_database WHERE datname = %s",
                        (database,))
            return cur.fetchone()

    def log_size() -> int | None:
        try:
            return PG_LOG.stat().st_size if os.access(PG_LOG, os.R_OK) else None
        except OSError:
            return None

    before, log_from = read(), log_size()
    time.sleep(seconds)
    after, log_to = read(), log_size()
    statements = None
    if log_from is not None and log_to is not None:
        with PG_LOG.open("rb") as log:
            log.seek(log_from)
            text = log.read(log_to - log_from).decode(errors="replace")
        statements = text.count(f"@{database} LOG:  duration:") / seconds
    return Load((after[0] - before[0]) / seconds, (after[1] - before[1]) / seconds, statements)


def mikkoo_yaml(names: list[str], dsns: list[str]) -> str:
    """A mikkoo configuration file for these queues, spread over these source databases, as a user would write it."""
    lines = ["Application:", "  workers:"]
    for index, name in enumerate(names):
        lines += [f"    {name}:", f"      postgres_url: {dsns[index % len(dsns)]}", "      retry_delay: 1",
                  "      rabbitmq:", "        host: 127.0.0.1", "        port: 5672"]
    return "\n".join(lines) + "\n"


def declare_bound_queue(channel, exchange: str, queue: str) -> None:
    """A durable topic exchange and a durable queue bound to it for every routing key."""
    channel.exchange_declare(exchange, "topic", durable=True, auto_delete=False)
    channel.queue_declare(queue, durable=True, auto_delete=False)
    channel.queue_bind(queue, exchange, "#")


class QueueConsumer(threading.Thread):
    """Consumes a RabbitMQ queue in a thread of its own until ``stop`` is set, handing each message to ``arrived``."""

    def __init__(self, queue: str) -> None:
        super().__init__(daemon=True)
        self.queue = queue
        self.stop = threading.Event()

    def run(self) -> None:
        with Connection(AMQP_URL) as conn:
            channel = conn.channel()
            # No acks: the benchmark's own consumer should take as little of the machine as it can.
            channel.basic_consume(self.queue, callback=self.arrived, no_ack=True)
            while not self.stop.is_set():
                try:
                    conn.drain_events(timeout=0.2)
                except TimeoutError:
                    pass

    def arrived(self, message) -> None:
        raise NotImplementedError
