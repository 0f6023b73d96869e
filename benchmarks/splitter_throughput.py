"""Queue splitter throughput and memory beside the raw PgQ insert rate, on this machine's PostgreSQL.

    python benchmarks/splitter_throughput.py                    # 100,000 events of 200 bytes into 4 target queues
    python benchmarks/splitter_throughput.py --events 1000000   # memory for one huge batch

Creates a source and a target database of its own and removes them. The raw
rate is that of writing the same events with ``pgq.insert_event`` into the
source queue in one statement, measured in the same run. The splitter runs in a
child process so its peak RSS is its own.
"""
from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ADMIN_DSN, execute, run_in_child
from relay.engine.settings import PgqTargetSettings, QueueSettings
from relay.engine.targets import engine_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--targets", type=int, default=4, help="target queues the events are spread over")
    parser.add_argument("--body-bytes", type=int, default=200)
    args = parser.parse_args()

    suffix = uuid.uuid4().hex[:8]
    queue = f"bench_{suffix}"
    databases = (f"mikkoo_bench_src_{suffix}", f"mikkoo_bench_dst_{suffix}")
    for database in databases:
        execute(ADMIN_DSN, f'CREATE DATABASE "{database}"')
    source, target = (ADMIN_DSN.rsplit("/", 1)[0] + "/" + database for database in databases)
    targets = [f"bench.target{n}" for n in range(args.targets)]
    try:
        for dsn in (source, target):
            execute(dsn, "CREATE EXTENSION pgq")
        execute(source, "SELECT pgq.create_queue(%s)", (queue,))
        execute(source, "SELECT pgq.register_consumer(%s, 'splitter')", (queue,))
        for name in targets:
            execute(target, "SELECT pgq.create_queue(%s)", (name,))

        started = time.perf_counter()
        execute(source, "SELECT count(pgq.insert_event(%s, 'bench.event', repeat('x', %s), "
                        "(%s::text[])[1 + i %% %s], 'text/plain', NULL, NULL)) FROM generate_series(1, %s) AS i",
                (queue, args.body_bytes, targets, args.targets, args.events), autocommit=False)
        insert_seconds = time.perf_counter() - started
        raw_rate = args.events / insert_seconds
        execute(source, "SELECT pgq.force_tick(%s)", (queue,))
        execute(source, "SELECT pgq.ticker(%s)", (queue,))
        print(f"raw PgQ insert: {args.events:,} events of {args.body_bytes} bytes with pgq.insert_event in one "
              f"transaction in {insert_seconds:.2f} s, {raw_rate:,.0f} events/s")

        settings = QueueSettings(name=queue, queue_name=queue, source_dsn=source,
                                 target=PgqTargetSettings(target_dsn=target), consumer_name="splitter")
        result, peak_mb = run_in_child(engine_for(settings))
        events, inserted, batches, seconds = result.events, result.inserted, result.batches, result.seconds

        landed = sum(execute(target, f"SELECT count(*) FROM {prefix}")[0][0] for (prefix,) in execute(
            target, "SELECT queue_data_pfx FROM pgq.queue WHERE queue_name = ANY(%s)", (targets,)))
        if landed != args.events or inserted != args.events:
            raise SystemExit(f"expected {args.events:,} events in the target queues, found {landed:,}")
        split_rate = events / seconds
        print(f"splitter: {inserted:,}/{events:,} events into {args.targets} target queues in {batches} batch(es), "
              f"{seconds:.2f} s, {split_rate:,.0f} events/s, peak RSS {peak_mb:.0f} MB")
        print(f"splitter / raw insert = {split_rate / raw_rate:.2f}")
    finally:
        for database in databases:
            execute(ADMIN_DSN, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
