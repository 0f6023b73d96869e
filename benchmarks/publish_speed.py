"""How fast a producer writes events: relay.producer's publish and publish_many beside raw SQL, on this PostgreSQL.

    .venv/bin/python benchmarks/publish_speed.py                   # 10,000 events a round, 5 rounds
    .venv/bin/python benchmarks/publish_speed.py --events 100000 --rounds 3

Creates a database of its own (PgQ and the audit SQL API) and removes it. Every
way writes the same events (a JSON body of about 50 bytes, an exchange and two
headers) into one PgQ queue, in one transaction a round, timed from the
application's Python values to the commit, through one psycopg2 connection:

- ``publish``: one call per event;
- ``publish_many``: one call, one statement (and with ``audited=True``);
- raw SQL: ``SELECT pgq.insert_event(...)`` per event, from Python, unchecked;
- one statement: ``SELECT pgq.insert_event(...) FROM unnest(...)``, unchecked;
- ``INSERT ... SELECT`` straight into the queue's current event table (what
  ``pgq.current_event_table`` allows for bulk loads), unchecked.

Prints each way's median rate with the slowest and fastest round, and the
time ``publish_many`` took for the round's events in one transaction.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ADMIN_DSN, execute
from relay.pgq.arrays import array_literal
from relay.producer import publish, publish_many

ROOT = Path(__file__).resolve().parent.parent
ROUTING_KEY, EXCHANGE, CONTENT_TYPE = "order.created", "orders", "application/json"


def bodies(count: int) -> list[tuple[dict, dict]]:
    """The round's events as the application has them: a body and headers each."""
    return [({"id": n, "sku": "A-17", "quantity": 2, "total": "12.50"}, {"tenant": "acme", "n": n})
            for n in range(count)]


def with_publish(cursor, queue: str, events: list[tuple[dict, dict]]) -> None:
    for body, headers in events:
        publish(queue, ROUTING_KEY, body, exchange=EXCHANGE, headers=headers, cursor=cursor)


def with_publish_many(cursor, queue: str, events: list[tuple[dict, dict]], audited: bool = False) -> None:
    publish_many(queue, [{"routing_key": ROUTING_KEY, "body": body, "exchange": EXCHANGE, "headers": headers}
                         for body, headers in events], audited=audited, cursor=cursor)


def with_raw_sql(cursor, queue: str, events: list[tuple[dict, dict]]) -> None:
    for body, headers in events:
        cursor.execute("SELECT pgq.insert_event(%s, %s, %s, %s, %s, NULL, %s)",
                       (queue, ROUTING_KEY, json.dumps(body), EXCHANGE, CONTENT_TYPE, json.dumps(headers)))


def _columns(events: list[tuple[dict, dict]]) -> tuple[str, str]:
    return (array_literal([json.dumps(body) for body, _ in events]),
            array_literal([json.dumps(headers) for _, headers in events]))


def with_one_statement(cursor, queue: str, events: list[tuple[dict, dict]]) -> None:
    data, extra4 = _columns(events)
    cursor.execute("SELECT count(pgq.insert_event(%s, %s, d.data, %s, %s, NULL, d.extra4)) "
                   "FROM unnest(%s::text[], %s::text[]) AS d(data, extra4)",
                   (queue, ROUTING_KEY, EXCHANGE, CONTENT_TYPE, data, extra4))


def with_insert_select(cursor, queue: str, events: list[tuple[dict, dict]]) -> None:
    data, extra4 = _columns(events)
    cursor.execute("SELECT pgq.current_event_table(%s)", (queue,))
    (table,) = cursor.fetchone()
    cursor.execute(f"INSERT INTO {table} (ev_time, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra4) "
                   "SELECT now(), %s, d.data, %s, %s, d.extra4 FROM unnest(%s::text[], %s::text[]) AS d(data, extra4)",
                   (ROUTING_KEY, EXCHANGE, CONTENT_TYPE, data, extra4))


WAYS: dict[str, Callable] = {
    "publish, one call per event": with_publish,
    "publish_many, one statement": with_publish_many,
    "publish_many, audited": lambda cursor, queue, events: with_publish_many(cursor, queue, events, audited=True),
    "raw SQL pgq.insert_event per event": with_raw_sql,
    "one statement pgq.insert_event FROM unnest": with_one_statement,
    "INSERT ... SELECT into the event table": with_insert_select,
}


def timed_round(dsn: str, queue: str, way: Callable, count: int) -> float:
    """Seconds from the Python values to the commit of ``count`` events written ``way``."""
    events = bodies(count)
    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor() as cursor:
            started = time.perf_counter()
            way(cursor, queue, events)
            connection.commit()
            return time.perf_counter() - started
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000, help="events a round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    database = f"mikkoo_bench_publish_{uuid.uuid4().hex[:8]}"
    execute(ADMIN_DSN, f'CREATE DATABASE "{database}"')
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + database
    try:
        execute(dsn, "CREATE EXTENSION pgq")
        for script in ("mikkoo.sql", "mikkoo_relay_audit.sql"):
            execute(dsn, (ROOT / "sql" / script).read_text())
        execute(dsn, "SELECT pgq.create_queue('bench')")
        seconds: dict[str, list[float]] = {name: [] for name in WAYS}
        timed_round(dsn, "bench", with_publish_many, 100)  # warm-up: imports, connection, plans
        for round_number in range(args.rounds):
            # The order rotates, so no way always follows the same one.
            names = list(WAYS)[round_number % len(WAYS):] + list(WAYS)[:round_number % len(WAYS)]
            for name in names:
                seconds[name].append(timed_round(dsn, "bench", WAYS[name], args.events))
        print(f"{args.events:,} events a round, {args.rounds} rounds, one transaction a round (median, slowest to "
              "fastest):")
        for name, times in seconds.items():
            rates = sorted(args.events / t for t in times)
            print(f"  {name:45} {statistics.median(rates):>10,.0f} events/s  ({rates[0]:,.0f} - {rates[-1]:,.0f})")
        many = seconds["publish_many, one statement"]
        print(f"publish_many of {args.events:,} events in one transaction: median {statistics.median(many):.3f} s "
              f"({min(many):.3f} - {max(many):.3f} s); audited: "
              f"{statistics.median(seconds['publish_many, audited']):.3f} s")
    finally:
        execute(ADMIN_DSN, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
