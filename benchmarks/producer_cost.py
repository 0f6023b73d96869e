"""What the relay costs the application's own writes: producers' commit rate beside a plain PgQ queue's.

    python benchmarks/producer_cost.py                      # 1, 4, 8, 16 producers; worker stopped, then running
    python benchmarks/producer_cost.py --phases stopped running notify   # also with RELAY_NOTIFY on

Two source databases on this PostgreSQL server: in one a queue set up the way
a user's is (imported with ``import_mikkoo``, which registers its consumer and
installs the relay's schema, plus the audit SQL API), in the other a plain
PgQ queue with a registered consumer. pgqd ticks both. pgbench runs
single-event transactions (``SELECT pgq.insert_event(...)``, one commit each,
``synchronous_commit`` on) against both at once, side by side, so that the
machine's other work (pgqd, the worker, RabbitMQ: all on this one 2-core
machine) weighs on both alike, at each number of producers per database; first with no
worker, then with ``celery -A mikkoo_project worker -B`` relaying the queue
(its events go to a RabbitMQ queue that keeps none of them, so RabbitMQ
drops them cheaply), and with ``--phases ... notify`` once more with ``RELAY_NOTIFY`` on. Prints the
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


def pgbench(dsn: str, script: Path, clients: int, seconds: int) -> subprocess.Popen:
    """``clients`` pgbench clients running ``script`` for ``seconds``, started now."""
    return subprocess.Popen([str(PGBENCH), "-n", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds),
                             "-f", str(script), dsn], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def tps(run: subprocess.Popen) -> float:
    out, err = run.communicate()
    if run.returncode:
        raise SystemExit(f"pgbench failed: {err.strip()}")
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


def compare(targets: dict[str, tuple[str, Path]], clients: list[int], rounds: int, seconds: int,
            label: str) -> None:
    """Rounds against both targets at once, so that whatever else the machine does weighs on both alike."""
    print(f"\n{label}")
    print(f"{'producers':>9} | {'relay tps':>10} | {'plain tps':>10} | relay / plain")
    for count in clients:
        measured: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(rounds):
            runs = {name: pgbench(dsn, script, count, seconds) for name, (dsn, script) in targets.items()}
            for name, run in runs.items():
                measured[name].append(tps(run))
        relay, plain = statistics.median(measured["relay"]), statistics.median(measured["plain"])
        print(f"{count:>9} | {relay:>10,.0f} | {plain:>10,.0f} | {relay / plain:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target and number of producers")
    parser.add_argument("--seconds", type=int, default=8, help="length of one pgbench round")
    parser.add_argument("--phases", nargs="+", choices=["stopped", "running", "notify"], default=["stopped", "running"],
                        help="no worker; the worker with its defaults; the worker with RELAY_NOTIFY on")
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
        print(f"pgbench: single-event transactions against both databases at once, {args.rounds} rounds of "
              f"{args.seconds} s each, median tps")
        if "stopped" in args.phases:
            compare(targets, args.clients, args.rounds, args.seconds, "relay installed, no worker running:")
        phases = {"running": ("worker running (celery -A mikkoo_project worker -B, defaults):", {}),
                  "notify": ("worker running with RELAY_NOTIFY=true (the NOTIFY trigger installed):",
                             {"RELAY_NOTIFY": "true"})}
        for label, environment in (phases[name] for name in args.phases if name in phases):
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
