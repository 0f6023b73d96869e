"""The relay beside a C client, pika and kombu publishing the same messages, on this machine's services.

    bash benchmarks/setup.sh                                  # once: builds the C client
    python benchmarks/relay_throughput.py                     # 5 rounds of 50,000 events, 200-byte bodies
    python benchmarks/relay_throughput.py --rounds 15         # the figures in docs/benchmarks.md
    python benchmarks/relay_throughput.py --events 1000000 --rounds 1 --warmup 0 --publishers relay   # memory
    python benchmarks/relay_throughput.py --audited           # events written with mikkoo.insert_audited_event

Creates a database, a PgQ queue, an exchange and a queue of its own and removes
them. Each round writes a fresh batch of events into the queue, then runs each
publisher in turn, in an order that rotates from round to round, each in a
process of its own, timed from connecting to the last confirm:

- ``c``: rabbitmq-c (benchmarks/c_publisher.c), ready messages of the relay's
  shape, mandatory, confirms pipelined in windows of 1,000;
- ``pika`` and ``kombu``: the same in Python (benchmarks/publishers.py);
- ``relay``: the relay's engine relaying the batch (reads PgQ, maps,
  publishes, confirms, finishes the batch).

For each it reads the CPU its process spent (from the kernel's accounting)
and RabbitMQ's in the meantime, and prints them per event. A warm-up round
comes first and is printed but not counted. RabbitMQ's speed drifts from
second to second on a shared machine: quote the medians with their spread.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from kombu import Connection  # noqa: E402

from benchmarks.common import ADMIN_DSN, AMQP_URL, declare_bound_queue, execute  # noqa: E402
from relay.audit.install import install_audit_sql  # noqa: E402

C_PUBLISHER = ROOT / "benchmarks" / ".build" / "c_publisher"
PUBLISHERS = ("c", "pika", "kombu", "relay")


@dataclass(frozen=True)
class Run:
    """One publisher's run: events/s; CPU seconds of its process, of RabbitMQ and of the rest of the machine."""

    rate: float
    cpu: float
    rabbitmq_cpu: float
    rest_cpu: float
    rss_mb: float


def processes_named(name: str) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"]) if p.info["name"] == name]


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def machine_cpu_seconds() -> float:
    """CPU time the whole machine spent, from /proc/stat: where PostgreSQL's short-lived backends show up."""
    user, nice, system = (int(field) for field in Path("/proc/stat").read_text().split()[1:4])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def run_publisher(kind: str, args: argparse.Namespace, exchange: str, dsn: str, queue: str) -> Run:
    rabbitmq = processes_named("beam.smp")
    rabbitmq_before, machine_before = cpu_seconds(rabbitmq), machine_cpu_seconds()
    if kind == "c":
        command = [str(C_PUBLISHER), "127.0.0.1", "5672", exchange, "bench.event", str(args.events), "1000",
                   str(args.body_bytes)]
    else:
        command = [sys.executable, str(ROOT / "benchmarks" / "publishers.py"), kind, "--exchange", exchange,
                   "--count", str(args.events), "--body-bytes", str(args.body_bytes), "--dsn", dsn, "--queue", queue]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    out, err = process.stdout.read(), process.stderr.read()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{kind} failed: {err.strip() or out.strip()}")
    rabbitmq_cpu, machine_cpu = cpu_seconds(rabbitmq) - rabbitmq_before, machine_cpu_seconds() - machine_before
    fields = dict(zip(*[iter(out.split())] * 2, strict=True))
    # The Python publishers measure themselves, leaving out the interpreter's start; the C one starts in no time.
    process_cpu = usage.ru_utime + usage.ru_stime
    cpu = float(fields["cpu"]) if "cpu" in fields else process_cpu
    rss = float(fields["rss"]) if "rss" in fields else usage.ru_maxrss / 1024
    return Run(float(fields["rate"]), cpu, rabbitmq_cpu, max(0.0, machine_cpu - rabbitmq_cpu - process_cpu), rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--body-bytes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1,
                        help="rounds run first and left out of the medians (default 1): the first runs meet a cold "
                             "database, exchange and queue")
    parser.add_argument("--publishers", default=",".join(PUBLISHERS),
                        help=f"which to run, comma-separated (default: {','.join(PUBLISHERS)})")
    parser.add_argument("--audited", action="store_true",
                        help="install the audit SQL and write every event with an audit record, so the relay "
                             "marks them confirmed as it goes")
    args = parser.parse_args()
    kinds = [kind for kind in args.publishers.split(",") if kind]
    if "c" in kinds and not C_PUBLISHER.exists():
        raise SystemExit("the C publisher is not built: run bash benchmarks/setup.sh first")

    suffix = uuid.uuid4().hex[:8]
    database, queue, exchange, target = (f"mikkoo_bench_{suffix}", f"bench_{suffix}",
                                         f"bench_ex_{suffix}", f"bench_rq_{suffix}")
    execute(ADMIN_DSN, f'CREATE DATABASE "{database}"')
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + database
    amqp = Connection(AMQP_URL)
    channel = amqp.channel()
    declare_bound_queue(channel, exchange, target)
    try:
        execute(dsn, "CREATE EXTENSION pgq")
        execute(dsn, "SELECT pgq.create_queue(%s)", (queue,))
        execute(dsn, "SELECT pgq.register_consumer(%s, 'mikkoo')", (queue,))
        if args.audited:
            install_audit_sql(dsn)
            insert = "mikkoo.insert_audited_event(%(q)s, %(ex)s, 'bench.event', repeat('x', %(n)s), 'text/plain')"
        else:
            insert = "pgq.insert_event(%(q)s, 'bench.event', repeat('x', %(n)s), %(ex)s, 'text/plain', '', '')"
        runs: dict[str, list[Run]] = defaultdict(list)
        rounds = [("warm-up", n) for n in range(1, args.warmup + 1)] + [("round", n) for n in range(1, args.rounds + 1)]
        for kind_of_round, number in rounds:
            if "relay" in kinds:
                execute(dsn, f"SELECT count({insert}) FROM generate_series(1, %(events)s)",
                        {"q": queue, "n": args.body_bytes, "ex": exchange, "events": args.events}, autocommit=False)
                execute(dsn, "SELECT pgq.force_tick(%s)", (queue,))
                execute(dsn, "SELECT pgq.ticker(%s)", (queue,))
            # A rotating order keeps a drift of RabbitMQ's speed from favouring any one of them.
            order = kinds[number % len(kinds):] + kinds[:number % len(kinds)]
            line = [f"{kind_of_round} {number}:"]
            for kind in order:
                run = run_publisher(kind, args, exchange, dsn, queue)
                channel.queue_purge(target)
                if kind_of_round == "round":
                    runs[kind].append(run)
                line.append(f"{kind} {run.rate:,.0f}/s ({run.cpu / args.events * 1e6:.1f} us/event, "
                            f"RabbitMQ {run.rabbitmq_cpu / args.events * 1e6:.0f} us)")
            print(" ".join(line), flush=True)
            time.sleep(1)
        report(runs, kinds, args.events)
    finally:
        channel.queue_delete(target)
        channel.exchange_delete(exchange)
        amqp.release()
        execute(ADMIN_DSN, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def report(runs: dict[str, list[Run]], kinds: list[str], events: int) -> None:
    print(f"medians over {len(runs[kinds[0]])} rounds of {events:,} events:")
    for kind in kinds:
        rates = [run.rate for run in runs[kind]]
        per_event = {what: statistics.median(getattr(run, what) for run in runs[kind]) / events * 1e6
                     for what in ("cpu", "rabbitmq_cpu", "rest_cpu")}
        print(f"  {kind:6} {statistics.median(rates):>8,.0f} events/s ({min(rates):,.0f}-{max(rates):,.0f}); CPU per "
              f"event: its process {per_event['cpu']:.1f} us, RabbitMQ {per_event['rabbitmq_cpu']:.1f} us, "
              f"the rest of the machine (PostgreSQL among it) {per_event['rest_cpu']:.1f} us; peak RSS "
              f"{max(run.rss_mb for run in runs[kind]):.0f} MB")
    if "relay" in kinds:
        for other in (kind for kind in kinds if kind != "relay"):
            ratios = [relay.rate / base.rate for relay, base in zip(runs["relay"], runs[other], strict=True)]
            target = " (target >= 0.95)" if other == "c" else ""
            print(f"  relay / {other}: median {statistics.median(ratios):.2f} "
                  f"({min(ratios):.2f}-{max(ratios):.2f}){target}")


if __name__ == "__main__":
    main()
