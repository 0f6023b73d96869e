"""Relay throughput and memory beside the raw pipelined kombu publish rate, on this machine's services.

    python benchmarks/relay_throughput.py                     # 20,000 events, 200-byte bodies
    python benchmarks/relay_throughput.py --events 1000000 --skip-raw   # memory for one huge batch
    python benchmarks/relay_throughput.py --audited           # events written with mikkoo.insert_audited_event

Creates a database, a PgQ queue, an exchange and a queue of its own and removes them.
The relay runs in a child process so its peak RSS is its own.
"""
from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kombu import Connection

from benchmarks.common import ADMIN_DSN, AMQP_URL, execute, run_in_child
from relay.audit_sql import install_audit_sql
from relay.mapping import Message
from relay.publisher import BrokerSettings, Publisher
from relay.relay import QueueRelay, QueueSettings


def raw_publish(count: int, body: bytes, exchange: str, window: int) -> float:
    """Events/s of ready messages shaped like the relay's, through the same pipelined publisher.

    Windows overlap as in the relay (send the next, then settle the previous):
    what is left of the difference is the cost of PgQ, the mapping and the bookkeeping.
    """
    message = Message(exchange=exchange, routing_key="bench.raw", body=body, properties={
        "app_id": "mikkoo-relay/0.1.0", "correlation_id": str(uuid.uuid4()), "timestamp": int(time.time()),
        "message_id": str(uuid.uuid4()), "delivery_mode": 2, "content_type": "text/plain",
        "headers": {"origin": "bench.example", "sequence": 2**62, "timestamp": "2026-01-01T00:00:00+00:00",
                    "txid": 123456},
    })
    with Publisher(BrokerSettings(hosts=("127.0.0.1",))) as publisher:
        started = time.perf_counter()
        in_flight = None
        for start in range(0, count, window):
            sent = publisher.send([message] * min(window, count - start))
            if in_flight is not None:
                assert not any(publisher.settle(in_flight))
            in_flight = sent
        assert not any(publisher.settle(in_flight))
        return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--body-bytes", type=int, default=200)
    parser.add_argument("--skip-raw", action="store_true", help="only run the relay (for memory runs)")
    parser.add_argument("--audited", action="store_true",
                        help="install the audit SQL and write every event with an audit record, so the relay "
                             "marks them confirmed as it goes")
    args = parser.parse_args()

    suffix = uuid.uuid4().hex[:8]
    database, queue, exchange, target = (f"mikkoo_bench_{suffix}", f"bench_{suffix}",
                                         f"bench_ex_{suffix}", f"bench_rq_{suffix}")
    execute(ADMIN_DSN, f'CREATE DATABASE "{database}"')
    dsn = ADMIN_DSN.rsplit("/", 1)[0] + "/" + database
    amqp = Connection(AMQP_URL)
    channel = amqp.channel()
    channel.exchange_declare(exchange, "topic", durable=True, auto_delete=False)
    channel.queue_declare(target, durable=True, auto_delete=False)
    channel.queue_bind(target, exchange, "#")
    try:
        execute(dsn, "CREATE EXTENSION pgq")
        execute(dsn, "SELECT pgq.create_queue(%s)", (queue,))
        execute(dsn, "SELECT pgq.register_consumer(%s, 'mikkoo')", (queue,))
        if args.audited:
            install_audit_sql(dsn)
            insert = "mikkoo.insert_audited_event(%(q)s, %(ex)s, 'bench.event', repeat('x', %(n)s), 'text/plain')"
        else:
            insert = "pgq.insert_event(%(q)s, 'bench.event', repeat('x', %(n)s), %(ex)s, 'text/plain', '', '')"
        started = time.perf_counter()
        execute(dsn, f"SELECT count({insert}) FROM generate_series(1, %(events)s)",
                {"q": queue, "n": args.body_bytes, "ex": exchange, "events": args.events}, autocommit=False)
        insert_seconds = time.perf_counter() - started
        execute(dsn, "SELECT pgq.force_tick(%s)", (queue,))
        execute(dsn, "SELECT pgq.ticker(%s)", (queue,))
        print(f"inserted {args.events:,}{' audited' if args.audited else ''} events of {args.body_bytes} bytes "
              "in one transaction "
              f"in {insert_seconds:.1f} s")

        settings = QueueSettings(name=queue, queue_name=queue, source_dsn=dsn,
                                 broker=BrokerSettings(hosts=("127.0.0.1",)))
        result, peak_mb = run_in_child(QueueRelay(settings))
        events, published, batches, seconds = result.events, result.published, result.batches, result.seconds
        relay_rate = events / seconds
        print(f"relay: {published:,}/{events:,} events published in {batches} batch(es), {seconds:.2f} s, "
              f"{relay_rate:,.0f} events/s, peak RSS {peak_mb:.0f} MB")
        channel.queue_purge(target)

        if not args.skip_raw:
            raw_rate = raw_publish(args.events, b"x" * args.body_bytes, exchange, QueueRelay.window_size)
            channel.queue_purge(target)
            print(f"raw pipelined kombu publish: {raw_rate:,.0f} events/s")
            print(f"relay / raw = {relay_rate / raw_rate:.2f} (target >= 0.90)")
    finally:
        channel.queue_delete(target)
        channel.exchange_delete(exchange)
        amqp.release()
        execute(ADMIN_DSN, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
