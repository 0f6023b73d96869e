"""What the relay costs the application's own writes: producers' commit rate beside a plain PgQ queue's.

    python benchmarks/producer_cost.py                      # 1, 4, 8, 16 producers; worker stopped, then running
    python benchmarks/producer_cost.py --seconds 10 --rounds 5 --notify   # also with RELAY_NOTIFY on

Two source databases on this PostgreSQL server: in one a queue set up the way
a user's is (imported with ``import_mikkoo``, which registers its consumer and
installs the relay's schema, plus the audit SQL API), in the other a plain
PgQ queue with a registered consumer. pgqd ticks both. pgbench runs
single-event transactions (``SELECT pgq.insert_event(...)``, one commit each,
``synchronous_commit`` on) against one and then the other, the order
alternating round by round, at each number of producers; first with no
worker, then with ``celery -A mikkoo_project worker -B`` relaying the queue
(its events go to a RabbitMQ queue that keeps none of them, so RabbitMQ
drops them cheaply), and with ``--notify`` once more with ``RELAY_NOTIFY`` on. Prints the
median tps of each and their ratio. Everything is removed at the end.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kombu import Connection  # noqa: E402

from benchmarks.common import ADMIN_DSN, AMQP_URL, execute, mikkoo_yaml, worker_environment  # noqa: E402

PGBENCH = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                              check=True).stdout.strip()) / "pgbench"


def pgbench(dsn: str, script: Path, clients: int, seconds: int) -> float:
    """Transactions per second of ``clients`` pgbench clients running ``script`` for ``seconds``."""
    out = subprocess.run([str(PGBENCH), "-n", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds),
                          "-f", str(script), dsn], capture_output=True, text=True, check=True).stdout
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


def compare(targets: dict[str, tuple[str, Path]], clients: list[int], rounds: int, seconds: int,
            label: str) -> None:
    """Interleaved rounds against each target; prints a line per number of producers."""
    print(f"\n{label}")
    print(f"{'producers':>9} | {'relay tps':>10} | {'plain tps':>10} | relay / plain")
    for count in clients:
        tps: dict[str, list[float]] = {name: [] for name in targets}
        for round_ in range(rounds):
            order = list(targets) if round_ % 2 == 0 else list(reversed(targets))
            for name in order:
                dsn, script = targets[name]
                tps[name].append(pgbench(dsn, script, count, seconds))
        relay, plain = statistics.median(tps["relay"]), statistics.median(tps["plain"])
        print(f"{count:>9} | {relay:>10,.0f} | {plain:>10,.0f} | {relay / plain:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target and number of producers")
    parser.add_argument("--seconds", type=int, default=8, help="length of one pgbench round")
    parser.add_argument("--notify", action="store_true", help="also measure with RELAY_NOTIFY on")
    args = parser.parse_args()

    suffix = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="mikkoo-producer-"))
    relay_db, plain_db = f"mikkoo_prod_relay_{suffix}", f"mikkoo_prod_plain_{suffix}"
    relay_dsn, plain_dsn = (ADMIN_DSN.rsplit("/", 1)[0] + "/" + name for name in (relay_db, plain_db))
    queue, exchange, celery_queue = f"orders_{suffix}", f"producer_ex_{suffix}", f"celery_{suffix}"
    worker_environment(workdir, celery_queue)
    from django.core.management import call_command

    from relay.audit.install import install_audit_sql
    from tests.processes import Pgqd, Worker, wait_for

    amqp = Connection(AMQP_URL)
    channel = amqp.channel()
    channel.exchange_declare(exchange, "topic", auto_delete=False)
    channel.queue_declare(exchange, auto_delete=False, arguments={"x-max-length": 0})
    channel.queue_bind(exchange, exchange, "#")
    pgqd = worker = None
    try:
        for name, dsn in ((relay_db, relay_dsn), (plain_db, plain_dsn)):
            execute(ADMIN_DSN, f'CREATE DATABASE "{name}"')
            execute(dsn, "CREATE EXTENSION pgq")
        call_command("migrate", verbosity=0)
        config = workdir / "mikkoo.yml"
        config.write_text(mikkoo_yaml([queue], [relay_dsn]))
        call_command("import_mikkoo", str(config), stdout=open(os.devnull, "w"))
        install_audit_sql(relay_dsn)
        execute(plain_dsn, "SELECT pgq.create_queue(%s), pgq.register_consumer(%s, 'mikkoo')", (queue, queue))
        script = workdir / "insert_event.sql"
        script.write_text(f"SELECT pgq.insert_event('{queue}', 'order.created', '{{\"id\": 1}}', "
                          f"'{exchange}', 'application/json', '', '');\n")
        targets = {"relay": (relay_dsn, script), "plain": (plain_dsn, script)}
        pgqd = Pgqd(workdir, [relay_db, plain_db])
        print(f"pgbench: single-event transactions, {args.rounds} interleaved rounds of {args.seconds:g} s each, "
              "median tps")
        compare(targets, args.clients, args.rounds, args.seconds, "relay installed, no worker running:")
        phases = [("worker running (celery -A mikkoo_project worker -B, defaults):", {})]
        if args.notify:
            phases.append(("worker running with RELAY_NOTIFY=true (the NOTIFY trigger installed):",
                           {"RELAY_NOTIFY": "true"}))
        for label, environment in phases:
            worker = Worker(workdir, celery_queue, name=f"w{len(environment)}", **environment)
            wait_for(lambda w=worker: "wake-ups: watching" in w.log(), timeout=60, what="the worker to watch")
            time.sleep(1)
            compare(targets, args.clients, args.rounds, args.seconds, label)
            worker.stop()
            worker = None
    finally:
        if worker:
            worker.stop()
        if pgqd:
            pgqd.stop()
        for name in (relay_db, plain_db):
            execute(ADMIN_DSN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for name in (exchange, celery_queue):
            channel.queue_delete(name)
            channel.exchange_delete(name)  # Celery declares an exchange named after its queue
        amqp.release()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
