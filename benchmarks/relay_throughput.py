"""Relay throughput and memory beside the raw pipelined kombu publish rate, on this machine's services.

    python benchmarks/relay_throughput.py                     # 5 rounds of 20,000 events, 200-byte bodies
    python benchmarks/relay_throughput.py --events 1000000 --rounds 1 --warmup 0 --skip-raw   # memory, one huge batch
    python benchmarks/relay_throughput.py --audited           # events written with mikkoo.insert_audited_event

Creates a database, a PgQ queue, an exchange and a queue of its own and removes them.
Each round relays a fresh batch and publishes as many ready messages raw, in
alternating order, each in a child process of its own (so a peak RSS is the
engine's own) and each timed from connecting to the last confirm, after a
warm-up round that is printed but not counted. RabbitMQ's
speed drifts from second to second on a shared machine: the medians over the
rounds are the figures to quote, the spread says how far to trust them.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kombu import Connection

from benchmarks.common import ADMIN_DSN, AMQP_URL, execute, run_in_child
from relay.audit_sql import install_audit_sql
from relay.broker import BrokerSettings
from relay.mapping import Message
from relay.publisher import Publisher
from relay.relay import QueueRelay, QueueSettings


@dataclass(frozen=True)
class RawPublish:
    """Ready messages shaped like the relay's, through the same pipelined publisher: ``run()`` gives events/s.

    Windows overlap as in the relay (send the next, then settle the previous),
    and the clock starts before connecting, as the relay's does: what is left
    of the difference is the cost of PgQ, the mapping and the bookkeeping.
    """

    count: int
    body: bytes
    exchange: str
    window: int

    def run(self) -> float:
        message = Message(exchange=self.exchange, routing_key="bench.raw", body=self.body, properties={
            "app_id": "mikkoo-relay/0.1.0", "correlation_id": str(uuid.uuid4()), "timestamp": int(time.time()),
            "message_id": str(uuid.uuid4()), "delivery_mode": 2, "content_type": "text/plain",
            "headers": {"origin": "bench.example", "sequence": 2**62, "timestamp": "2026-01-01T00:00:00+00:00",
                        "txid": 123456},
        })
        started = time.perf_counter()
        with Publisher(BrokerSettings(hosts=("127.0.0.1",))) as publisher:
            in_flight = None
            for start in range(0, self.count, self.window):
                sent = publisher.send([message] * min(self.window, self.count - start))
                if in_flight is not None:
                    assert not any(publisher.settle(in_flight))
                in_flight = sent
            assert not any(publisher.settle(in_flight))
        return self.count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--body-bytes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="relay and raw runs, alternating (default 5)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="rounds run first and left out of the medians (default 1): the first relay run "
                             "meets a cold database, exchange and queue")
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
        settings = QueueSettings(name=queue, queue_name=queue, source_dsn=dsn,
                                 broker=BrokerSettings(hosts=("127.0.0.1",)))
        raw = RawPublish(args.events, b"x" * args.body_bytes, exchange, QueueRelay.window_size)
        relay_rates, raw_rates, peaks = [], [], []
        rounds = [("warm-up", n) for n in range(1, args.warmup + 1)] + [("round", n) for n in range(1, args.rounds + 1)]
        for kind, round_number in rounds:
            started = time.perf_counter()
            execute(dsn, f"SELECT count({insert}) FROM generate_series(1, %(events)s)",
                    {"q": queue, "n": args.body_bytes, "ex": exchange, "events": args.events}, autocommit=False)
            insert_seconds = time.perf_counter() - started
            execute(dsn, "SELECT pgq.force_tick(%s)", (queue,))
            execute(dsn, "SELECT pgq.ticker(%s)", (queue,))
            # Alternating which goes first keeps a drift of RabbitMQ's speed from favouring either side.
            order = ["relay", "raw"] if round_number % 2 else ["raw", "relay"]
            line = [f"{kind} {round_number}: inserted {args.events:,}{' audited' if args.audited else ''} events "
                    f"of {args.body_bytes} bytes in {insert_seconds:.1f} s"]
            for side in order:
                if side == "relay":
                    result, peak_mb = run_in_child(QueueRelay(settings))
                    if result.published != args.events or result.batches != 1:
                        raise SystemExit(f"the relay published {result.published:,} of {args.events:,} events "
                                         f"in {result.batches} batches")
                    relay_rates.append(result.events / result.seconds)
                    peaks.append(peak_mb)
                    line.append(f"relay {relay_rates[-1]:,.0f} events/s (peak RSS {peak_mb:.0f} MB)")
                elif not args.skip_raw:
                    raw_rates.append(run_in_child(raw)[0])
                    line.append(f"raw {raw_rates[-1]:,.0f} events/s")
                channel.queue_purge(target)
            if raw_rates:
                line.append(f"ratio {relay_rates[-1] / raw_rates[-1]:.2f}")
            print("; ".join(line), flush=True)
            if kind == "warm-up":
                relay_rates.clear()
                raw_rates.clear()
                peaks.clear()

        print(f"relay: median {statistics.median(relay_rates):,.0f} events/s over {args.rounds} round(s) "
              f"({min(relay_rates):,.0f}-{max(relay_rates):,.0f}), peak RSS {max(peaks):.0f} MB")
        if raw_rates:
            ratios = [relay / raw for relay, raw in zip(relay_rates, raw_rates, strict=True)]
            print(f"raw pipelined kombu publish: median {statistics.median(raw_rates):,.0f} events/s "
                  f"({min(raw_rates):,.0f}-{max(raw_rates):,.0f})")
            print(f"relay / raw: median {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) "
                  "(target >= 0.90)")
    finally:
        channel.queue_delete(target)
        channel.exchange_delete(exchange)
        amqp.release()
        execute(ADMIN_DSN, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
