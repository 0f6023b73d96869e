"""The Python publishers benchmarks/relay_throughput.py compares, each run as a process of its own.

    python benchmarks/publishers.py kombu --exchange EX --count 50000
    python benchmarks/publishers.py pika --exchange EX --count 50000
    python benchmarks/publishers.py relay --exchange EX --count 50000 --dsn DSN --queue Q

``kombu`` and ``pika`` publish ready messages shaped like the relay's (a
200-byte body, mikkoo-like properties, four headers), mandatory, with
publisher confirms pipelined in windows of ``--window``: window N+1 goes out
before the confirms of window N are awaited. ``relay`` relays the PgQ batch
waiting in ``--queue``. Each prints one line: ``rate <events/s> cpu <seconds>
rss <MB>``, timed and measured from connecting to the last confirm (the
interpreter's start and imports are left out).
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Imported before the clock starts: a publisher's figures are its publishing, not its imports.
import pika
from kombu import Connection, Producer

from relay.amqp.broker import BrokerSettings
from relay.engine.settings import AmqpTargetSettings, QueueSettings
from relay.engine.targets import engine_for

HEADERS = {"origin": "bench.example", "sequence": 2**62, "timestamp": "2026-01-01T00:00:00.123456+00:00",
           "txid": 123456}
PROPERTIES = {"content_type": "text/plain", "delivery_mode": 2,
              "correlation_id": "6f1c5d0e-4a44-4f57-9b0e-7d1b6c3a9e21",
              "message_id": "0b9f3c7e-5a1d-5e2f-8c3b-2d4e6f8a0b1c", "timestamp": int(time.time()),
              "app_id": "mikkoo-relay/0.1.0"}


def publish_kombu(args: argparse.Namespace) -> None:
    """kombu's Producer on a py-amqp confirm channel: how the relay published before it wrote frames itself."""
    confirmed = 0

    def on_ack(tag: int, multiple: bool) -> None:
        nonlocal confirmed
        confirmed = max(confirmed, tag)

    with Connection("amqp://guest:guest@127.0.0.1//") as connection:
        channel = connection.channel()
        channel.confirm_select()
        channel.events["basic_ack"].add(on_ack)
        producer = Producer(channel, auto_declare=False)
        body = b"x" * args.body_bytes
        sent = 0
        for start in range(0, args.count, args.window):
            previous = sent
            for _ in range(min(args.window, args.count - start)):
                producer.publish(body, exchange=args.exchange, routing_key=args.routing_key, mandatory=True,
                                 headers=HEADERS, serializer=None, **PROPERTIES)
                sent += 1
            while confirmed < previous:
                connection.drain_events(timeout=30)
        while confirmed < sent:
            connection.drain_events(timeout=30)


def publish_pika(args: argparse.Namespace) -> None:
    """pika's asynchronous connection, with confirms counted as they come."""
    properties = pika.BasicProperties(headers=HEADERS, **PROPERTIES)
    body = b"x" * args.body_bytes
    state = {"sent": 0, "confirmed": 0, "awaited": 0}

    def publish_window(channel) -> None:
        state["awaited"] = state["sent"]  # the window before this one
        for _ in range(min(args.window, args.count - state["sent"])):
            channel.basic_publish(args.exchange, args.routing_key, body, properties, mandatory=True)
            state["sent"] += 1

    def on_confirm(frame) -> None:
        if not isinstance(frame.method, pika.spec.Basic.Ack):
            raise SystemExit("pika: a message was refused")
        state["confirmed"] = max(state["confirmed"], frame.method.delivery_tag)
        if state["confirmed"] >= args.count:
            connection.close()
        elif state["confirmed"] >= state["awaited"] and state["sent"] < args.count:
            publish_window(channel_holder[0])

    channel_holder: list = []

    def on_channel(channel) -> None:
        channel_holder.append(channel)
        channel.confirm_delivery(on_confirm)
        publish_window(channel)
        publish_window(channel)

    connection = pika.SelectConnection(pika.ConnectionParameters("127.0.0.1"),
                                       on_open_callback=lambda conn: conn.channel(on_open_callback=on_channel),
                                       on_close_callback=lambda conn, reason: conn.ioloop.stop())
    connection.ioloop.start()
    if state["confirmed"] < args.count:
        raise SystemExit(f"pika: {state['confirmed']} of {args.count} confirmed")


def relay(args: argparse.Namespace) -> None:
    """The relay's engine on the batch waiting in the queue: reads PgQ, maps, publishes, confirms, finishes."""
    settings = QueueSettings(name=args.queue, queue_name=args.queue, source_dsn=args.dsn,
                             target=AmqpTargetSettings(BrokerSettings(hosts=("127.0.0.1",))))
    result = engine_for(settings).run()
    if result.published != args.count:
        raise SystemExit(f"relay: published {result.published} of {args.count} events")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["kombu", "pika", "relay"])
    parser.add_argument("--exchange", required=True)
    parser.add_argument("--routing-key", default="bench.event")
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--body-bytes", type=int, default=200)
    parser.add_argument("--dsn")
    parser.add_argument("--queue")
    args = parser.parse_args()
    run = {"kombu": publish_kombu, "pika": publish_pika, "relay": relay}[args.kind]
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    run(args)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"rate {args.count / seconds:.1f} cpu {cpu:.4f} rss {after.ru_maxrss / 1024:.1f}")


if __name__ == "__main__":
    main()
