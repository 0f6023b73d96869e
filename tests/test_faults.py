"""Nothing is lost: real relay processes killed, restarted or raced, counting every event by message_id."""
from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from relay.models import RelayedQueue

from . import services
from .processes import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
EVENTS = 30_000


@pytest.fixture
def relayed(source_dsn, pgq_queue, exchange, bind_queue, broker):
    """A configured queue with EVENTS events in one batch, and the durable RabbitMQ queue they go to."""
    queue = RelayedQueue.objects.create(name=pgq_queue.replace("_", "-"), queue_name=pgq_queue,
                                        source_url=source_dsn, connection=broker, retry_delay=0)
    target = bind_queue(exchange)
    services.sql(source_dsn, "SELECT count(pgq.insert_event(%s, 'fault.test', json_build_object('n', n)::text, "
                             "%s, 'application/json', '', '')) FROM generate_series(1, %s) AS n",
                 (pgq_queue, exchange, EVENTS))
    services.tick(source_dsn, pgq_queue)
    return queue, target


def relay_once(queue: RelayedQueue) -> subprocess.Popen:
    import os

    env = {**os.environ, "DATABASE_URL": services.django_database_url()}
    return subprocess.Popen([sys.executable, "manage.py", "relay_once", queue.name], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def count_by_message_id(amqp, target) -> tuple[collections.Counter, set[int]]:
    messages = services.drain(amqp, target)
    ids = collections.Counter(m.properties["message_id"] for m in messages)
    numbers = {json.loads(m.body)["n"] for m in messages}
    return ids, numbers


def queue_depth(amqp, target) -> int:
    channel = amqp.channel()
    try:
        return channel.queue_declare(target, passive=True).message_count
    finally:
        channel.close()


def test_a_relay_killed_mid_batch_loses_nothing(relayed, amqp):
    queue, target = relayed
    victim = relay_once(queue)
    wait_for(lambda: queue_depth(amqp, target) > EVENTS // 4, timeout=60, what="the batch to be half-published")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    published_before_kill = queue_depth(amqp, target)

    survivor = relay_once(queue)
    _, err = survivor.communicate(timeout=120)

    assert survivor.returncode == 0, err
    ids, numbers = count_by_message_id(amqp, target)
    duplicates = sum(ids.values()) - len(ids)
    print(f"killed after {published_before_kill} of {EVENTS} published; {duplicates} duplicates, 0 lost")
    assert numbers == set(range(1, EVENTS + 1))  # nothing lost
    assert len(ids) == EVENTS  # a duplicate carries the same message_id as its original
    assert max(ids.values()) <= 2 and duplicates <= EVENTS  # only the batch in flight came again


def test_two_relays_started_together_never_publish_a_batch_twice(relayed, amqp):
    queue, target = relayed

    first, second = relay_once(queue), relay_once(queue)
    outputs = [p.communicate(timeout=120) for p in (first, second)]

    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    summaries = sorted(out.strip() for out, _ in outputs)
    assert any("busy" in s or "nothing ready" in s for s in summaries), summaries
    ids, numbers = count_by_message_id(amqp, target)
    assert numbers == set(range(1, EVENTS + 1))
    assert sum(ids.values()) == len(ids) == EVENTS  # every event exactly once


def test_a_confirm_that_never_comes_is_given_up_and_the_events_arrive_later(
        source_dsn, pgq_queue, exchange, bind_queue, amqp):
    from relay.amqp.broker import BrokerSettings
    from relay.core.errors import BrokerUnavailable
    from relay.engine.settings import AmqpTargetSettings, QueueSettings
    from relay.engine.targets import engine_for

    from .tcp_proxy import TcpProxy

    target = bind_queue(exchange)
    services.insert_events(source_dsn, pgq_queue, [("k", str(n), exchange, "", "", "") for n in range(500)])
    services.tick(source_dsn, pgq_queue)
    proxy = TcpProxy(("127.0.0.1", 5672))
    try:
        proxy.hold_replies()
        stuck = QueueSettings(name=pgq_queue, queue_name=pgq_queue, source_dsn=source_dsn, retry_delay=0,
                              target=AmqpTargetSettings(BrokerSettings(hosts=(f"127.0.0.1:{proxy.port}",),
                                                                       confirm_timeout=1, heartbeat=0,
                                                                       connect_timeout=1)))
        # The handshake itself never completes: the relay gives up on its timeout instead of hanging.
        with pytest.raises(BrokerUnavailable, match="cannot connect"):
            engine_for(stuck).run()
    finally:
        proxy.close()

    fine = QueueSettings(name=pgq_queue, queue_name=pgq_queue, source_dsn=source_dsn, retry_delay=0,
                         target=AmqpTargetSettings(BrokerSettings(hosts=("127.0.0.1",))))
    result = engine_for(fine).run()
    assert result.published == 500
    assert sorted(int(m.body) for m in services.drain(amqp, target, expected=500)) == list(range(500))


def collect(target: str, ids: collections.Counter, numbers: set[int]) -> None:
    """Record every message waiting in ``target``, acking each only once recorded (nothing lost if cut)."""
    with services.amqp_connection() as connection:
        channel = connection.channel()
        while (message := channel.basic_get(target, no_ack=False)) is not None:
            ids[message.properties["message_id"]] += 1
            numbers.add(json.loads(message.body)["n"])
            channel.basic_ack(message.delivery_info["delivery_tag"])


def collect_until_complete(target: str, timeout: float) -> collections.Counter:
    """Consume ``target`` (reconnecting as needed) until every event number arrived; message_id counts."""
    ids: collections.Counter = collections.Counter()
    numbers: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(numbers) < EVENTS and time.monotonic() < deadline:
        try:
            collect(target, ids, numbers)
        except OSError:
            pass  # RabbitMQ is still coming back
        time.sleep(0.5)
    missing = sorted(set(range(1, EVENTS + 1)) - numbers)
    assert not missing, f"{len(missing)} events never arrived, e.g. {missing[:5]}"
    time.sleep(2)  # late duplicates, if any, are counted too
    collect(target, ids, numbers)
    return ids


@pytest.mark.parametrize("restart", [services.restart_rabbitmq, services.restart_postgresql],
                         ids=["rabbitmq", "postgresql"])
def test_the_worker_recovers_by_itself_when_a_service_restarts_mid_batch(
        restart, relayed, amqp, pgqd, celery_queue, tmp_path):
    from .processes import Worker

    _, target = relayed
    worker = Worker(tmp_path, celery_queue)
    try:
        wait_for(lambda: queue_depth(amqp, target) > EVENTS // 10, timeout=60, what="the batch to be under way")
        restart()
        ids = collect_until_complete(target, timeout=180)
    finally:
        worker.stop()
    duplicates = sum(ids.values()) - len(ids)
    print(f"{restart.__name__}: {EVENTS} events, 0 lost, {duplicates} duplicates")
    assert len(ids) == EVENTS and max(ids.values()) <= 2
