"""Insert-to-arrival latency under `celery -A mikkoo_project worker -B` with pgqd's defaults.

    python benchmarks/latency.py                   # idle queue, then a steady 1,000 events/s
    python benchmarks/latency.py --rate 1000 --seconds 20 --idle-samples 100

Creates a source database, a Django database (SQLite, temporary), an exchange
and a queue of its own, starts pgqd and the worker with default settings, and
removes everything at the end. Each event's body is the time its transaction
committed; a consumer notes when it arrives.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg2  # noqa: E402
from kombu import Connection  # noqa: E402

from benchmarks.common import ADMIN_DSN, AMQP_URL, QueueConsumer, count_statements, idle_cost, worker_environment  # noqa: E402


class Arrivals(QueueConsumer):
    """Consumes the target queue and records each message's latency."""

    def __init__(self, queue: str) -> None:
        super().__init__(queue)
        self.latencies: list[float] = []

    def arrived(self, message) -> None:
        now = time.time()
        for stamp in message.body.decode().split(","):
            self.latencies.append(now - float(stamp))


def summary(label: str, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"{label}: {len(ordered)} events, p50 {statistics.median(ordered):.3f} s, p99 {p99:.3f} s, "
            f"max {ordered[-1]:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle-samples", type=int, default=50)
    parser.add_argument("--idle-cost-seconds", type=float, default=20.0,
                        help="how long to measure what an idle queue costs the source database")
    parser.add_argument("--rate", type=int, default=1000, help="events/s of the steady phase")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the steady phase")
    args = parser.parse_args()

    suffix = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="mikkoo-latency-"))
    database, queue, target = f"mikkoo_latency_{suffix}", f"lat_{suffix}", f"lat_rq_{suffix}"
    worker_environment(workdir, f"celery_{suffix}")
    from django.core.management import call_command

    from relay.models import BrokerConnection, RelayedQueue
    from tests.processes import Pgqd, Worker, wait_for

    admin = psycopg2.connect(ADMIN_DSN)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{database}"')
    count_statements(admin, database)
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + database
    source = psycopg2.connect(dsn)
    amqp = Connection(AMQP_URL)
    channel = amqp.channel()
    channel.queue_declare(target, durable=True, auto_delete=False)
    pgqd = worker = None
    try:
        with source.cursor() as cur:
            cur.execute("CREATE EXTENSION pgq")
            cur.execute("SELECT pgq.create_queue(%s)", (queue,))
            cur.execute("SELECT pgq.register_consumer(%s, 'mikkoo')", (queue,))
        source.commit()
        call_command("migrate", verbosity=0)
        broker = BrokerConnection.objects.create(name="local", hosts="127.0.0.1")
        RelayedQueue.objects.create(name="latency", queue_name=queue, source_url=dsn, connection=broker)
        pgqd = Pgqd(workdir, [database])
        time.sleep(2)
        baseline = idle_cost(admin, database, args.idle_cost_seconds)
        print(f"idle cost of pgqd alone: {baseline}")
        worker = Worker(workdir, f"celery_{suffix}")
        arrivals = Arrivals(target)
        arrivals.start()

        def insert_stamped(count: int) -> None:
            with source.cursor() as cur:
                stamp = f"{time.time():.6f}"
                cur.execute("SELECT pgq.insert_event(%s, %s, %s, '', 'text/plain', '', '') "
                            "FROM generate_series(1, %s)", (queue, target, stamp, count))
            source.commit()

        insert_stamped(1)  # warm-up: wait until the worker holds the queue and relays
        wait_for(lambda: arrivals.latencies, timeout=60, what="the worker to relay")
        arrivals.latencies.clear()
        both = idle_cost(admin, database, args.idle_cost_seconds)
        print(f"idle cost of pgqd and the worker: {both} (the relay's share: {both - baseline})")

        for _ in range(args.idle_samples):
            time.sleep(random.uniform(0.5, 1.5))  # the queue is idle between events
            insert_stamped(1)
        wait_for(lambda: len(arrivals.latencies) >= args.idle_samples, timeout=30, what="idle events")
        print(summary("idle queue, one event at a time", arrivals.latencies))
        arrivals.latencies.clear()

        per_transaction = 10
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < args.seconds:
            insert_stamped(per_transaction)
            sent += per_transaction
            time.sleep(max(0.0, started + sent / args.rate - time.monotonic()))
        achieved = sent / (time.monotonic() - started)
        wait_for(lambda: len(arrivals.latencies) >= sent, timeout=60, what="the steady-rate events")
        print(summary(f"steady {achieved:,.0f} events/s ({per_transaction} per transaction)", arrivals.latencies))
        print("targets: p50 <= 0.2 s, p99 <= 1 s")
        arrivals.stop.set()
    finally:
        if worker:
            worker.stop()
        if pgqd:
            pgqd.stop()
        source.close()
        channel.queue_delete(target)
        channel.queue_delete(f"celery_{suffix}")
        channel.exchange_delete(f"celery_{suffix}")  # Celery declares an exchange named after its queue
        amqp.release()
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
