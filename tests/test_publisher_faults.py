"""The publisher when RabbitMQ stops answering or the connection is cut mid-window."""
from __future__ import annotations

import pytest

from relay.amqp.broker import BrokerSettings
from relay.amqp.message import Message
from relay.amqp.publisher import Publisher

from . import services
from .tcp_proxy import TcpProxy


@pytest.fixture
def proxy():
    proxy = TcpProxy(("127.0.0.1", 5672))
    yield proxy
    proxy.close()


def messages(exchange: str, count: int) -> list[Message]:
    return [Message(exchange=exchange, routing_key="k", body=str(n).encode(),
                    properties={"delivery_mode": 2, "message_id": f"m{n}", "headers": {}})
            for n in range(count)]


def test_unconfirmed_messages_fail_after_the_confirm_timeout_instead_of_hanging(
        proxy, exchange, bind_queue, amqp):
    target = bind_queue(exchange)
    settings = BrokerSettings(hosts=(f"127.0.0.1:{proxy.port}",), confirm_timeout=1.5, heartbeat=0)
    with Publisher(settings) as publisher:
        assert publisher.publish(messages(exchange, 3)) == [None, None, None]
        proxy.hold_replies()

        verdicts = publisher.publish(messages(exchange, 5))

    # It gave up on the confirm timeout: the verdict says so.
    assert verdicts == ["no confirm from RabbitMQ within 1.5 s"] * 5
    # Messages are undelivered as far as the relay knows, so they will be retried: duplicates, not losses.
    assert len(services.drain(amqp, target, expected=8)) == 8


def test_a_cut_connection_fails_the_messages_in_flight_and_the_next_window_reconnects(
        proxy, exchange, bind_queue, amqp):
    target = bind_queue(exchange)
    settings = BrokerSettings(hosts=(f"127.0.0.1:{proxy.port}",), confirm_timeout=5, heartbeat=0)
    with Publisher(settings) as publisher:
        in_flight = publisher.send(messages(exchange, 50))
        proxy.cut()

        lost = publisher.settle(in_flight)
        after = publisher.publish(messages(exchange, 10))

    assert all(v is None or v.startswith("connection lost before confirm") for v in lost)
    assert any(v is not None for v in lost)
    assert after == [None] * 10
    delivered = services.drain(amqp, target, expected=10)
    assert len(delivered) >= 10 + lost.count(None)


def test_a_missing_exchange_fails_its_messages_and_the_rest_of_the_window_flows(exchange, bind_queue, amqp):
    target = bind_queue(exchange)
    missing = services.unique("missing")
    window = messages(exchange, 3) + messages(missing, 2) + messages(exchange, 3)
    with Publisher(BrokerSettings(hosts=("127.0.0.1",))) as publisher:
        verdicts = publisher.publish(window)

    assert verdicts == [None] * 3 + [f"exchange {missing!r} does not exist"] * 2 + [None] * 3
    assert len(services.drain(amqp, target, expected=6)) == 6


def test_returned_messages_get_their_own_verdicts_in_overlapping_windows(exchange, bind_queue, amqp):
    target = bind_queue(exchange, "routed")

    def window(first: int, count: int) -> list[Message]:
        # Every third message is unroutable; two of them in every six share one identity (same message id).
        return [Message(exchange=exchange, routing_key="lost" if n % 3 == 0 else "routed", body=str(n).encode(),
                        properties={"delivery_mode": 2, "message_id": f"m{n // 6}", "headers": {}})
                for n in range(first, first + count)]

    first, second = window(0, 1500), window(1500, 1500)
    with Publisher(BrokerSettings(hosts=("127.0.0.1",))) as publisher:
        first_sent = publisher.send(first)
        second_sent = publisher.send(second)
        verdicts = publisher.settle(first_sent) + publisher.settle(second_sent)

    unroutable = "unroutable: NO_ROUTE"
    assert verdicts == [unroutable if n % 3 == 0 else None for n in range(3000)]
    delivered = services.drain(amqp, target, expected=2000)
    assert sorted(int(m.body) for m in delivered) == [n for n in range(3000) if n % 3]


def test_an_exchange_deleted_mid_flight_fails_only_what_was_unconfirmed_on_a_fresh_channel(
        exchange, bind_queue, amqp):
    doomed = services.unique("doomed")
    channel = amqp.channel()
    channel.exchange_declare(doomed, "topic", durable=False, auto_delete=False)
    bind_queue(doomed)
    target = bind_queue(exchange)
    with Publisher(BrokerSettings(hosts=("127.0.0.1",))) as publisher:
        assert publisher.publish(messages(doomed, 2)) == [None, None]  # the exchange check is now cached
        channel.exchange_delete(doomed)

        verdicts = publisher.publish(messages(doomed, 2) + messages(exchange, 2))
        after = publisher.publish(messages(exchange, 3))
    channel.close()

    # The doomed messages fail. The channel close also fails whatever was unconfirmed on it; a good
    # message sent after the close was seen goes out on the fresh channel and is confirmed.
    assert all(v is not None and "NOT_FOUND" in v for v in verdicts[:2]), verdicts
    assert all(v is None or "NOT_FOUND" in v for v in verdicts[2:]), verdicts
    assert after == [None] * 3
    confirmed = verdicts[2:].count(None) + 3
    assert len(services.drain(amqp, target, expected=confirmed)) == confirmed  # exactly the confirmed ones


def test_after_an_exchange_was_found_deleted_the_next_window_asks_instead_of_closing_the_channel(
        exchange, absent_exchange, bind_queue, amqp):
    channel = amqp.channel()
    channel.exchange_declare(absent_exchange, "topic", durable=False, auto_delete=False)
    bind_queue(absent_exchange)
    target = bind_queue(exchange)
    with Publisher(BrokerSettings(hosts=("127.0.0.1",))) as publisher:
        assert publisher.publish(messages(absent_exchange, 1)) == [None]  # it exists: that is remembered
        channel.exchange_delete(absent_exchange)
        assert "NOT_FOUND" in publisher.publish(messages(absent_exchange, 1))[0]  # RabbitMQ closed the channel

        verdicts = publisher.publish(messages(absent_exchange, 2) + messages(exchange, 2))
    channel.close()

    assert verdicts == [f"exchange {absent_exchange!r} does not exist"] * 2 + [None, None]
    assert len(services.drain(amqp, target, expected=2)) == 2


@pytest.fixture
def disk_alarm():
    """Raise RabbitMQ's disk alarm on demand; the limit this machine had is always put back."""
    import subprocess

    def limit(value: str) -> None:
        subprocess.run(["rabbitmqctl", "-q", "set_disk_free_limit", value], check=True, capture_output=True)

    original = subprocess.run(["rabbitmqctl", "-q", "eval", "rabbit_disk_monitor:get_disk_free_limit()."],
                              check=True, capture_output=True, text=True).stdout.strip()
    yield lambda on: limit("100000GB" if on else original)
    limit(original)


def test_a_blocked_connection_waits_without_failing_and_resumes_when_unblocked(
        disk_alarm, exchange, bind_queue, amqp):
    import threading

    target = bind_queue(exchange)
    verdicts: list = []
    settings = BrokerSettings(hosts=("127.0.0.1",), confirm_timeout=1.0)
    with Publisher(settings) as publisher:
        disk_alarm(True)
        worker = threading.Thread(target=lambda: verdicts.extend(publisher.publish(messages(exchange, 200))))
        worker.start()
        worker.join(timeout=4)  # four times the confirm timeout: it would have failed by now if it could
        assert worker.is_alive() and verdicts == []
        assert services.drain(amqp, target) == []
        disk_alarm(False)
        worker.join(timeout=30)

    assert verdicts == [None] * 200
    assert len(services.drain(amqp, target, expected=200)) == 200
