"""All the relay's throughput at once: many queues with a backlog each under the default worker, beside the C client.

    bash benchmarks/setup.sh                              # once: builds the C client
    python benchmarks/aggregate.py                        # 20 queues of 50,000 events each
    python benchmarks/aggregate.py --queues 4 --events 100000

Creates a source database of its own with the queues (registered as the admin
would, from a mikkoo YAML import), writes the backlog into each, starts the
default ``celery -A mikkoo_project worker -B`` and times how long RabbitMQ
takes to hold every event, from the first to arrive (the worker's start is
left out); the C client (benchmarks/c_publisher.c) publishes as many messages
of the same shape in the same round, before or after in turn. It prints both
rates and their ratio, per round and the medians. Everything is removed at
the end.
"""
from __future__ import annotations

import argparse
import os
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

from benchmarks.common import ADMIN_DSN, AMQP_URL, declare_bound_queue, execute, worker_environment  # noqa: E402

C_PUBLISHER = ROOT / "benchmarks" / ".build" / "c_publisher"


def c_rate(exchange: str, count: int) -> float:
    out = subprocess.run([str(C_PUBLISHER), "127.0.0.1", "5672", exchange, "bench.c", str(count), "1000", "200"],
                         check=True, capture_output=True, text=True).stdout
    return float(out.split()[1])


def wait_until(channel, queue: str, count: int, timeout: float) -> tuple[float, float]:
    """Poll RabbitMQ's count of ``queue``: when the first message arrived and when the ``count``-th had."""
    first = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = channel.queue_declare(queue, passive=True).message_count
        if held and first is None:
            first = time.monotonic()
        if held >= count:
            return first, time.monotonic()
        time.sleep(0.05)
    raise SystemExit(f"only {held:,} of {count:,} events arrived within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--events", type=int, default=50_000, help="events each queue holds")
    parser.add_argument("--concurrency", type=int, default=None, help="worker pool size (default: Celery's)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not C_PUBLISHER.exists():
        raise SystemExit("the C publisher is not built: run bash benchmarks/setup.sh first")
    total = args.queues * args.events

    suffix = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="mikkoo-aggregate-"))
    database, exchange, target, celery_queue = (f"mikkoo_agg_{suffix}", f"agg_ex_{suffix}", f"agg_rq_{suffix}",
                                                f"celery_{suffix}")
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + database
    worker_environment(workdir, celery_queue)
    from django.core.management import call_command

    from tests.processes import Worker

    amqp = Connection(AMQP_URL)
    channel = amqp.channel()
    declare_bound_queue(channel, exchange, target)
    worker = None
    names = [f"agg{n:02d}_{suffix}" for n in range(args.queues)]
    try:
        execute(ADMIN_DSN, f'CREATE DATABASE "{database}"')
        execute(dsn, "CREATE EXTENSION pgq")
        call_command("migrate", verbosity=0)
        config = workdir / "mikkoo.yml"
        config.write_text("Application:\n  workers:\n" + "".join(
            f"    {name}:\n      postgres_url: {dsn}\n      rabbitmq:\n        host: 127.0.0.1\n" for name in names))
        call_command("import_mikkoo", str(config), stdout=open(os.devnull, "w"))
        relay_rates, c_rates = [], []
        for round_number in range(1, args.rounds + 1):
            for name in names:
                execute(dsn, "SELECT count(pgq.insert_event(%s, 'bench.event', repeat('x', 200), %s, 'text/plain', "
                             "'', '')) FROM generate_series(1, %s)", (name, exchange, args.events), autocommit=False)
            # Alternating which goes first keeps a drift of RabbitMQ's speed from favouring either.
            for side in (("c", "relay") if round_number % 2 else ("relay", "c")):
                if side == "c":
                    c_rates.append(c_rate(exchange, total))
                else:
                    worker = Worker(workdir, celery_queue, name=f"w{round_number}", concurrency=args.concurrency,
                                    loglevel="WARNING")
                    first, last = wait_until(channel, target, total, timeout=max(600, total / 500))
                    worker.stop()
                    worker = None
                    relay_rates.append(total / (last - first))
                channel.queue_purge(target)
            print(f"round {round_number}: {args.queues} queues of {args.events:,} events: relay under the default "
                  f"worker {relay_rates[-1]:,.0f} events/s in all; C client {c_rates[-1]:,.0f} events/s; "
                  f"ratio {relay_rates[-1] / c_rates[-1]:.2f}", flush=True)
        ratios = [relay / c for relay, c in zip(relay_rates, c_rates, strict=True)]
        print(f"relay: median {statistics.median(relay_rates):,.0f} events/s; C client: median "
              f"{statistics.median(c_rates):,.0f}; relay / C client: median {statistics.median(ratios):.2f} "
              f"({min(ratios):.2f}-{max(ratios):.2f}) (target >= 0.90)")
    finally:
        if worker:
            worker.stop()
        channel.queue_delete(target)
        channel.exchange_delete(exchange)
        channel.queue_delete(celery_queue)
        channel.exchange_delete(celery_queue)  # Celery declares an exchange named after its queue
        amqp.release()
        execute(ADMIN_DSN, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
