"""What the benchmarks share: where the services are, one-statement SQL, and an engine run in a child process."""
from __future__ import annotations

import multiprocessing
import os
import queue
import resource
from typing import Any

import psycopg2

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
