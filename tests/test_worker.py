"""`celery -A mikkoo_project worker -B` end to end, with pgqd, on the real services."""
from __future__ import annotations

import time

import pytest

from relay.models import QueueStatus, RelayedQueue

from . import services
from .processes import Worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def add_queue(source_dsn, broker, **fields):
    name = services.unique("wq")
    return RelayedQueue.objects.create(name=name.replace("_", "-"), queue_name=name, source_url=source_dsn,
                                       connection=broker, retry_delay=1, **fields)


def released_for(queue, seconds: float) -> bool:
    """No task has held ``queue`` for ``seconds`` in a row."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if QueueStatus.objects.filter(queue=queue, lease_until__isnull=False).exists():
            return False
        time.sleep(0.1)
    return True


def received(amqp, rabbit_queue, into: list, count: int):
    into.extend(services.drain(amqp, rabbit_queue))
    return len(into) >= count


def test_the_worker_relays_enabled_queues_and_follows_admin_changes(
        tmp_path, pgqd, celery_queue, broker, source_dsn, exchange, bind_queue, amqp):
    first = add_queue(source_dsn, broker)
    target = bind_queue(exchange)
    worker = Worker(tmp_path, celery_queue)
    try:
        # The worker creates the PgQ queue and registers its consumer when it first holds the queue.
        wait_for(lambda: services.sql(source_dsn, "SELECT 1 FROM pgq.get_consumer_info() "
                                                  "WHERE queue_name = %s", (first.queue_name,)),
                 timeout=30, what="the consumer to be registered")
        services.insert_events(source_dsn, first.queue_name,
                               [("a.b", f"first-{n}", exchange, "", "", "") for n in range(20)])
        got: list = []
        wait_for(lambda: received(amqp, target, got, 20), timeout=15, what="20 events")
        assert sorted(m.body for m in got) == sorted(f"first-{n}".encode() for n in range(20))

        # A queue added while the worker runs starts relaying without a restart.
        second = add_queue(source_dsn, broker)
        wait_for(lambda: services.sql(source_dsn, "SELECT 1 FROM pgq.get_consumer_info() "
                                                  "WHERE queue_name = %s", (second.queue_name,)),
                 timeout=30, what="the new queue to be picked up")
        services.insert_events(source_dsn, second.queue_name, [("a.b", "second", exchange, "", "", "")])
        got = []
        wait_for(lambda: received(amqp, target, got, 1), timeout=15, what="the new queue's event")
        assert [m.body for m in got] == [b"second"]

        # A disabled queue stops: what is written afterwards stays in PgQ.
        RelayedQueue.objects.filter(pk=first.pk).update(enabled=False)
        # A successor task may have read the queue just before it was disabled: it lets go within a second.
        wait_for(lambda: released_for(first, seconds=2), timeout=30, what="the disabled queue's task to let go")
        services.insert_events(source_dsn, first.queue_name, [("a.b", "while disabled", exchange, "", "", "")])
        services.insert_events(source_dsn, second.queue_name, [("a.b", "still relayed", exchange, "", "", "")])
        got = []
        wait_for(lambda: received(amqp, target, got, 1), timeout=15, what="the enabled queue's event")
        assert [m.body for m in got] == [b"still relayed"]

        # Enabled again, it relays what waited.
        RelayedQueue.objects.filter(pk=first.pk).update(enabled=True)
        got = []
        wait_for(lambda: received(amqp, target, got, 1), timeout=30, what="the event written while disabled")
        assert [m.body for m in got] == [b"while disabled"]
    finally:
        shutdown_seconds = worker.stop()
    print(f"warm shutdown took {shutdown_seconds:.1f} s")
    assert "Traceback" not in worker.log(), worker.log()[-3000:]
    # Stopping the worker never unregisters the consumer: events written now are kept for it.
    assert services.sql(source_dsn, "SELECT count(*) FROM pgq.get_consumer_info(%s, 'mikkoo')",
                        (first.queue_name,))[0][0] == 1


def test_two_workers_with_beat_publish_every_event_once(
        tmp_path, pgqd, celery_queue, broker, source_dsn, exchange, bind_queue, amqp):
    queues = [add_queue(source_dsn, broker) for _ in range(2)]
    for queue in queues:  # register the consumers before any event is written
        services.sql(source_dsn, "SELECT pgq.create_queue(%s)", (queue.queue_name,))
        services.sql(source_dsn, "SELECT pgq.register_consumer(%s, 'mikkoo')", (queue.queue_name,))
    target = bind_queue(exchange)
    workers = [Worker(tmp_path, celery_queue, name=f"w{n}") for n in (1, 2)]
    try:
        count = 0
        for round_ in range(10):
            for queue in queues:
                services.insert_events(source_dsn, queue.queue_name,
                                       [("a.b", f"{queue.name}-{round_}-{n}", exchange, "", "", "")
                                        for n in range(50)])
                count += 50
            time.sleep(0.3)
        got: list = []
        wait_for(lambda: received(amqp, target, got, count), timeout=60, what=f"{count} events")
        time.sleep(2)  # anything published twice would arrive by now
        got.extend(services.drain(amqp, target))
    finally:
        for worker in workers:
            worker.stop()
    ids = [m.properties["message_id"] for m in got]
    assert len(ids) == count and len(set(ids)) == count
