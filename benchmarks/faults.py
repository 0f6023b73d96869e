"""Faults one after another under the default worker: events lost, duplicated, and how soon every queue relays again.

    python benchmarks/faults.py                                   # 20 queues on 2 databases, 40 events/s, 3 rounds
    python benchmarks/faults.py --queues 20 --databases 2 --rate 40 --repeat 5 --after 20

Creates its own source databases (with PgQ) and a Django database on the same
PostgreSQL (as in production: a restart takes both away), imports the queues
with ``import_mikkoo``, starts pgqd and ``celery -A mikkoo_project worker -B``,
and writes single events to random queues at ``--rate`` (each in its own
transaction, persistent, to a durable RabbitMQ queue read by a consumer that
reconnects by itself). Then, ``--repeat`` times, each fault in turn, ``--after``
seconds apart:

- the worker SIGKILLed and started again 3 s later;
- RabbitMQ's application stopped for 10 s (``rabbitmqctl stop_app``, ``start_app``);
- PostgreSQL restarted (``pg_ctlcluster ... restart -m fast``);
- pgqd SIGKILLed and started again 5 s later;
- a second worker (also with ``-B``) started, then the first SIGKILLed for good:
  the second carries on alone.

For each fault: the events committed while it lasted and in the ``--after``
seconds after, lost (committed, never arrived), duplicates (arrived twice),
and the catch-up: the worst commit-to-delivery latency of the events committed
in the ``--after`` seconds after the fault ended. An event whose commit failed
with the server going away may or may not be in PgQ; it is not counted lost.
Everything is removed at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kombu import Connection  # noqa: E402

from benchmarks.common import ADMIN_DSN, AMQP_URL, declare_bound_queue, execute, mikkoo_yaml  # noqa: E402


class Arrivals(threading.Thread):
    """Consumes the target queue, reconnecting by itself; when each event first arrived, and how often."""

    def __init__(self, queue: str) -> None:
        super().__init__(daemon=True)
        self.queue = queue
        self.first: dict[str, float] = {}
        self.count: Counter[str] = Counter()
        self.stop = threading.Event()

    def arrived(self, message) -> None:
        event = message.body.decode()
        self.first.setdefault(event, time.time())
        self.count[event] += 1

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with Connection(AMQP_URL, connect_timeout=2) as conn:
                    # Acked on delivery: the benchmark's own consumer should cost the machine little.
                    conn.channel().basic_consume(self.queue, callback=self.arrived, no_ack=True)
                    while not self.stop.is_set():
                        try:
                            conn.drain_events(timeout=0.2)
                        except TimeoutError:
                            pass
            except Exception:  # RabbitMQ away: connect again
                self.stop.wait(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--databases", type=int, default=2)
    parser.add_argument("--rate", type=float, default=40.0, help="events per second, each its own transaction")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every fault")
    parser.add_argument("--after", type=float, default=20.0, help="seconds between faults (catch-up window)")
    parser.add_argument("--faults", nargs="+", default=["worker", "rabbitmq", "postgresql", "pgqd", "worker-for-good"])
    args = parser.parse_args()

    suffix = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="mikkoo-faults-"))
    databases = [f"mikkoo_faults_{suffix}_{n}" for n in range(args.databases)]
    django_db = f"mikkoo_faults_django_{suffix}"
    dsn_of = {name: ADMIN_DSN.rsplit("/", 1)[0] + "/" + name for name in [*databases, django_db]}
    exchange, target, celery_queue = f"faults_ex_{suffix}", f"faults_rq_{suffix}", f"celery_{suffix}"
    for name in dsn_of:
        execute(ADMIN_DSN, f'CREATE DATABASE "{name}"')
    os.environ.update(DATABASE_URL=dsn_of[django_db], SECRET_KEY="benchmark-only",
                      DJANGO_SETTINGS_MODULE="mikkoo_project.settings", CELERY_TASK_DEFAULT_QUEUE=celery_queue,
                      CELERY_BEAT_SCHEDULE_FILENAME=str(workdir / "beat"))
    import django

    django.setup()
    from django.core.management import call_command

    from tests import services
    from tests.processes import Pgqd, Worker, wait_for
    from tests.trickle import Trickle

    amqp = Connection(AMQP_URL)
    channel = amqp.channel()
    declare_bound_queue(channel, exchange, target)
    names = [f"f{n:03d}_{suffix}" for n in range(args.queues)]
    by_queue = {name: dsn_of[databases[index % len(databases)]] for index, name in enumerate(names)}
    pgqd = worker = spare = trickle = arrivals = None
    generation = 0
    results: dict[str, list[tuple[list[str], list[str]]]] = defaultdict(list)

    def new_worker() -> Worker:
        nonlocal generation
        generation += 1
        return Worker(workdir, celery_queue, name=f"w{generation}")

    try:
        for name in databases:
            execute(dsn_of[name], "CREATE EXTENSION pgq")
        call_command("migrate", verbosity=0)
        config = workdir / "mikkoo.yml"
        config.write_text(mikkoo_yaml(names, [dsn_of[name] for name in databases]))
        call_command("import_mikkoo", str(config), stdout=open(os.devnull, "w"))
        pgqd = Pgqd(workdir, databases)
        worker = new_worker()
        wait_for(lambda: "wake-ups: watching" in worker.log(), timeout=60, what="the worker to watch")
        arrivals = Arrivals(target)
        arrivals.start()
        trickle = Trickle(by_queue, exchange, args.rate)
        trickle.start()
        time.sleep(args.after)
        print(f"{args.queues} queues on {args.databases} databases, Django's database on PostgreSQL, "
              f"{args.rate:g} events/s; each fault {args.repeat} times, {args.after:g} s apart", flush=True)
        for round_ in range(args.repeat):
            for fault in args.faults:
                began = time.time()
                if fault == "worker":
                    worker.kill()
                    time.sleep(3)
                    worker = new_worker()
                elif fault == "rabbitmq":
                    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, capture_output=True)
                    time.sleep(10)
                    subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, capture_output=True)
                    subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=True, capture_output=True)
                elif fault == "postgresql":
                    services.restart_postgresql()
                elif fault == "pgqd":
                    kill_pgqd = pgqd.process
                    kill_pgqd.kill()
                    kill_pgqd.wait()
                    time.sleep(5)
                    pgqd = Pgqd(workdir, databases)
                elif fault == "worker-for-good":
                    spare = new_worker()
                    wait_for(lambda s=spare: "relay worker ready" in s.log(), timeout=60, what="a second worker")
                    time.sleep(5)
                    began = time.time()
                    worker.kill()
                    worker, spare = spare, None
                ended = time.time()
                time.sleep(args.after)
                window = [event for event, at in trickle.committed.items() if began <= at <= ended + args.after]
                after = [event for event in window if trickle.committed[event] >= ended]
                results[fault].append((window, after))
                print(f"  round {round_ + 1}: {fault} ({ended - began:.1f} s)", flush=True)
        trickle.stop.set()
        trickle.join()
        committed = set(trickle.committed)
        try:
            wait_for(lambda: committed <= set(arrivals.first), timeout=120, what="every committed event")
        except AssertionError as exc:
            print(exc)
        time.sleep(3)  # duplicates arriving late are counted too
        print(f"\n{len(committed)} events committed, {len(trickle.uncertain)} uncertain (the server went away "
              f"during their commit), {len(arrivals.first)} arrived\n")
        print("| fault | runs | events in the windows | lost | duplicates | catch-up (s), each run |")
        print("|---|---|---|---|---|---|")
        for fault, runs in results.items():
            events = sum(len(window) for window, _ in runs)
            lost = duplicates = 0
            catch_ups = []
            for window, after in runs:
                lost += sum(e not in arrivals.first for e in window)
                duplicates += sum(arrivals.count[e] > 1 for e in window)
                latencies = [arrivals.first[e] - trickle.committed[e] for e in after if e in arrivals.first]
                catch_ups.append(max(latencies, default=float("nan")))
            print(f"| {fault} | {len(runs)} | {events} | {lost} | {duplicates} | "
                  f"{', '.join(f'{c:.1f}' for c in catch_ups)} (median {statistics.median(catch_ups):.1f}) |")
        print(f"\nlost overall: {len(committed - set(arrivals.first))}; "
              f"made up: {len(set(arrivals.first) - committed - trickle.uncertain)}")
    finally:
        for thread in (trickle, arrivals):
            if thread:
                thread.stop.set()
        for process in (worker, spare):
            if process:
                process.stop()
        if pgqd:
            pgqd.stop()
        for name in dsn_of:
            execute(ADMIN_DSN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        amqp.release()
        with Connection(AMQP_URL) as cleanup:  # the first connection died with RabbitMQ's restarts
            channel = cleanup.channel()
            for name in (target, celery_queue):
                channel.queue_delete(name)
            for name in (exchange, celery_queue):
                channel.exchange_delete(name)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
