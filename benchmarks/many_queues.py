"""Many queues under one default `celery -A mikkoo_project worker -B`: does every event arrive, how soon, at what cost.

    python benchmarks/many_queues.py                                  # 200 queues on 4 databases, 400 events
    python benchmarks/many_queues.py --queues 50 --databases 2 --backlog 300000   # one queue drains a backlog
    python benchmarks/many_queues.py --queues 1000 --databases 10 --events 1000

Creates its own source databases (with PgQ), a Django database (SQLite,
temporary), an exchange and a RabbitMQ queue, imports the queues from a mikkoo
YAML file (which registers their consumers), starts pgqd and the worker with
Celery's defaults, and then writes single events, each in a transaction of
its own, to random queues for ``--seconds``. Each event's body is the time
just before its commit; a consumer notes its arrival. With ``--backlog`` the
first queue is given that many events first (in transactions of 10,000,
ticked by pgqd as a producer's would be) and the trickle starts with it.
Prints events sent and arrived, commit-to-delivery latency, the worker's
memory (every process) and the relay's PostgreSQL backends. Everything is
removed at the end.
"""
from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg2  # noqa: E402
from kombu import Connection  # noqa: E402

from benchmarks.common import (  # noqa: E402
    ADMIN_DSN,
    AMQP_URL,
    QueueConsumer,
    declare_bound_queue,
    execute,
    mikkoo_yaml,
    worker_environment,
)

BACKLOG_KEY = "backlog"
TRICKLE_KEY = "trickle"


class Arrivals(QueueConsumer):
    """Consumes the target queue: latency of each trickle event, count of backlog events."""

    def __init__(self, queue: str) -> None:
        super().__init__(queue)
        self.latencies: list[float] = []
        self.sent_at: list[tuple[float, str]] = []
        self.backlog = 0

    def arrived(self, message) -> None:
        if message.delivery_info["routing_key"] == BACKLOG_KEY:
            self.backlog += 1
        else:
            stamp, queue = message.body.decode().split()
            self.latencies.append(time.time() - float(stamp))
            self.sent_at.append((float(stamp), queue))


class Observer(threading.Thread):
    """Samples the worker's memory, the relay's PostgreSQL backends and beat's sweeps; keeps the peaks."""

    def __init__(self, worker, databases: list[str]) -> None:
        super().__init__(daemon=True)
        self.worker, self.databases = worker, databases
        self.rss = self.pss = 0.0
        self.backends = 0
        self.processes = 0
        self.sweeps: set = set()  # when each sweep ran, as the sweep row says
        self.stop = threading.Event()

    def longest_between_sweeps(self) -> float:
        times = sorted(self.sweeps)
        return max(((b - a).total_seconds() for a, b in itertools.pairwise(times)), default=float("nan"))

    def run(self) -> None:
        from relay.models import RelayProcess

        admin = psycopg2.connect(ADMIN_DSN)
        admin.autocommit = True
        while not self.stop.wait(1.0):
            self.sweeps.update(RelayProcess.objects.filter(name=RelayProcess.SWEEP).values_list("seen_at", flat=True))
            processes = self.worker.processes()
            rss = pss = 0
            for process in processes:
                try:
                    memory = process.memory_full_info()
                except Exception:  # a pool process may end while it is read
                    continue
                rss, pss = rss + memory.rss, pss + memory.pss
            self.rss, self.pss = max(self.rss, rss / 2**20), max(self.pss, pss / 2**20)
            self.processes = max(self.processes, len(processes))
            with admin.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = ANY(%s) "
                            "AND application_name LIKE 'mikkoo-relay%%'", (self.databases,))
                self.backends = max(self.backends, cur.fetchone()[0])
        admin.close()


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queues", type=int, default=200)
    parser.add_argument("--databases", type=int, default=4)
    parser.add_argument("--events", type=int, default=400, help="single events written to random queues")
    parser.add_argument("--seconds", type=float, default=60.0, help="over how long the events are written")
    parser.add_argument("--backlog", type=int, default=0, help="events the first queue holds before the trickle")
    parser.add_argument("--concurrency", type=int, default=None, help="worker pool size (default: Celery's)")
    parser.add_argument("--show-slow", type=float, default=None, metavar="SECONDS",
                        help="list the events slower than this, with when they were written")
    args = parser.parse_args()

    suffix = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="mikkoo-many-"))
    databases = [f"mikkoo_many_{suffix}_{n}" for n in range(args.databases)]
    dsns = [ADMIN_DSN.rsplit("/", 1)[0] + "/" + name for name in databases]
    exchange, target, celery_queue = f"many_ex_{suffix}", f"many_rq_{suffix}", f"celery_{suffix}"
    worker_environment(workdir, celery_queue)
    from django.core.management import call_command

    from tests.processes import Pgqd, Worker, wait_for

    amqp = Connection(AMQP_URL)
    channel = amqp.channel()
    declare_bound_queue(channel, exchange, target)
    pgqd = worker = arrivals = observer = None
    names = [f"q{n:04d}_{suffix}" for n in range(args.queues)]
    try:
        for name, dsn in zip(databases, dsns, strict=True):
            execute(ADMIN_DSN, f'CREATE DATABASE "{name}"')
            execute(dsn, "CREATE EXTENSION pgq")
        call_command("migrate", verbosity=0)
        config = workdir / "mikkoo.yml"
        config.write_text(mikkoo_yaml(names, dsns))
        started = time.monotonic()
        call_command("import_mikkoo", str(config), stdout=open(os.devnull, "w"))
        print(f"imported {args.queues} queues over {args.databases} databases, consumers registered, "
              f"in {time.monotonic() - started:.1f} s")
        pgqd = Pgqd(workdir, databases)
        by_queue = {name: dsns[index % len(dsns)] for index, name in enumerate(names)}
        if args.backlog:
            hot = names[0]
            for start in range(0, args.backlog, 10_000):
                execute(by_queue[hot], "SELECT pgq.insert_event(%s, %s, 'x', %s, 'text/plain', '', '') "
                                       "FROM generate_series(1, %s)",
                        (hot, BACKLOG_KEY, exchange, min(10_000, args.backlog - start)), autocommit=False)
            print(f"backlog: {args.backlog} events in queue {hot}")
        arrivals = Arrivals(target)
        arrivals.start()
        worker = Worker(workdir, celery_queue, concurrency=args.concurrency)
        observer = Observer(worker, databases)
        observer.start()
        time.sleep(3)  # the worker starts
        connections = {dsn: psycopg2.connect(dsn) for dsn in dsns}
        trickle_started, trickle_wall = time.monotonic(), time.time()
        for n in range(args.events):
            time.sleep(max(0.0, trickle_started + n * args.seconds / args.events - time.monotonic()))
            name = random.choice(names[1:] if args.backlog else names)
            conn = connections[by_queue[name]]
            with conn.cursor() as cur:
                cur.execute("SELECT pgq.insert_event(%s, %s, %s, %s, 'text/plain', '', '')",
                            (name, TRICKLE_KEY, f"{time.time():.6f} {name}", exchange))
            conn.commit()
        for conn in connections.values():
            conn.close()
        try:
            wait_for(lambda: len(arrivals.latencies) >= args.events, timeout=120, what="every trickle event")
        except AssertionError as exc:
            print(exc)
        ordered = sorted(arrivals.latencies)
        print(f"trickle: {args.events} sent, {len(ordered)} arrived", end="")
        if ordered:
            print(f"; latency p50 {statistics.median(ordered):.3f} s, p99 {percentile(ordered, 0.99):.3f} s, "
                  f"max {ordered[-1]:.3f} s")
        else:
            print()
        if args.show_slow is not None:
            for (sent, queue), latency in zip(arrivals.sent_at, arrivals.latencies, strict=True):
                if latency > args.show_slow:
                    print(f"  slow: {queue} written {sent - trickle_wall:.1f} s into the trickle "
                          f"({time.strftime('%H:%M:%S', time.localtime(sent))}), took {latency:.2f} s")
        if args.backlog:
            print(f"backlog: {arrivals.backlog} of {args.backlog} arrived by the end of the trickle "
                  f"({time.monotonic() - trickle_started:.0f} s after it began)")
        print(f"worker: {observer.processes} processes, peak RSS {observer.rss:.0f} MB in all "
              f"(PSS {observer.pss:.0f} MB); relay PostgreSQL backends at most {observer.backends}")
        print(f"beat's sweep: {len(observer.sweeps)} sweeps, at most {observer.longest_between_sweeps():.1f} s apart "
              f"(RELAY_SWEEP_SECONDS {os.environ.get('RELAY_SWEEP_SECONDS', 2)})")
    finally:
        for thread in (arrivals, observer):
            if thread:
                thread.stop.set()
        if worker:
            worker.stop()
        if pgqd:
            pgqd.stop()
        channel.queue_delete(target)
        channel.exchange_delete(exchange)
        channel.queue_delete(celery_queue)
        channel.exchange_delete(celery_queue)  # Celery declares an exchange named after its queue
        amqp.release()
        for name in databases:
            execute(ADMIN_DSN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
