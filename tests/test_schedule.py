"""The schedule's pieces on the real services: who gets a relay task, a slice, the sweep, consumer registration."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from celery import current_app
from django.utils import timezone

from relay.engine.connections import ConnectionPool
from relay.models import BrokerConnection, QueueStatus, RelayedQueue
from relay.runs.queue_status import backoff
from relay.scheduling.requests import request_slices
from relay.scheduling.slices import run_slice
from relay.scheduling.sweep import sweep

from . import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def task_queue(celery_queue):
    """Relay tasks go to a Celery queue of the test's own; returns a reader of the tasks sent there."""
    default = current_app.conf.task_default_queue
    current_app.conf.task_default_queue = celery_queue

    def sent_tasks() -> list[tuple[str, list]]:
        with services.amqp_connection() as connection:
            channel = connection.channel()
            channel.queue_declare(celery_queue, durable=True, auto_delete=False)
            tasks = []
            while (message := channel.basic_get(celery_queue, no_ack=True)) is not None:
                tasks.append((message.headers["task"], json.loads(message.body)[0]))
            return tasks

    yield sent_tasks
    current_app.conf.task_default_queue = default


@pytest.fixture
def local_broker():
    return BrokerConnection.objects.create(name="local", hosts="127.0.0.1")


def make_queue(broker, name, source="postgres://postgres@127.0.0.1:1/nowhere", enabled=True, **status):
    queue = RelayedQueue.objects.create(name=name, queue_name=name, source_url=source, connection=broker,
                                        enabled=enabled)
    QueueStatus.objects.filter(queue=queue).update(**status)
    return queue


def test_a_relay_task_is_queued_only_for_enabled_queues_not_queued_running_or_backing_off(local_broker, task_queue):
    now = timezone.now()
    fresh = make_queue(local_broker, "fresh")
    stale = make_queue(local_broker, "stale", queued_at=now - timedelta(minutes=5))
    lease_over = make_queue(local_broker, "lease-over", lease_until=now - timedelta(seconds=1))
    backoff_over = make_queue(local_broker, "backoff-over", backoff_until=now - timedelta(seconds=1))
    others = [
        make_queue(local_broker, "disabled", enabled=False),
        make_queue(local_broker, "queued", queued_at=now - timedelta(seconds=1)),
        make_queue(local_broker, "running", lease_until=now + timedelta(seconds=5)),
        make_queue(local_broker, "backing-off", backoff_until=now + timedelta(seconds=5)),
    ]
    everything = [fresh, stale, lease_over, backoff_over, *others]

    first = request_slices(q.pk for q in everything)
    again = request_slices(q.pk for q in everything)

    due = {fresh.pk, stale.pk, lease_over.pk, backoff_over.pk}
    assert set(first) == due
    assert again == []  # each has its task waiting now
    assert sorted(task_queue()) == sorted(("relay.relay_slice", [pk]) for pk in due)


def test_a_slice_relays_its_queue_records_it_and_asks_again_when_it_stopped_with_work_left(
        source_dsn, pgq_queue, exchange, bind_queue, amqp, local_broker, task_queue, settings):
    target = bind_queue(exchange)
    queue = RelayedQueue.objects.create(name=pgq_queue.replace("_", "-"), queue_name=pgq_queue,
                                        source_url=source_dsn, connection=local_broker)
    for batch in range(3):
        services.insert_events(source_dsn, pgq_queue, [("k", f"{batch}-{n}", exchange, "", "", "") for n in range(5)])
        services.tick(source_dsn, pgq_queue)
    settings.RELAY_SLICE_SECONDS = 0  # one batch per slice

    first = run_slice(queue.pk)

    assert (first.batches, first.published, first.cut_short) == (1, 5, True)
    status = QueueStatus.objects.get(queue=queue)
    assert (status.published, status.lease_until, status.registered) == (5, None, True)
    assert task_queue() == [("relay.relay_slice", [queue.pk])]
    assert QueueStatus.objects.get(queue=queue).queued_at is not None

    settings.RELAY_SLICE_SECONDS = 60
    second = run_slice(queue.pk)  # as the queued task would

    assert (second.batches, second.published, second.cut_short) == (2, 10, False)
    assert task_queue() == []  # nothing left: no task asked for
    assert QueueStatus.objects.get(queue=queue).queued_at is None
    assert len(services.drain(amqp, target, expected=15)) == 15


def test_a_slice_that_cannot_reach_its_source_records_why_and_backs_off_without_raising(local_broker, task_queue):
    queue = make_queue(local_broker, "unreachable")

    assert run_slice(queue.pk) is None
    assert run_slice(queue.pk) is None

    status = QueueStatus.objects.get(queue=queue)
    assert status.failing and "connecting failed" in status.last_error
    assert status.failures_in_a_row == 2
    assert status.backoff_until > timezone.now() + timedelta(seconds=1)
    assert status.lease_until is None
    assert task_queue() == []
    assert request_slices([queue.pk]) == []  # backing off


def lag_ticks(dsn: str, queue: str) -> int:
    """Ticks of ``queue`` the relay's consumer has not finished yet."""
    return services.sql(dsn, "SELECT count(*) FROM pgq.tick t JOIN pgq.queue q ON q.queue_id = t.tick_queue "
                             "JOIN pgq.subscription s ON s.sub_queue = q.queue_id "
                             "WHERE q.queue_name = %s AND t.tick_id > s.sub_last_tick", (queue,))[0][0]


def test_the_sweep_registers_consumers_finishes_empty_batches_and_queues_tasks_for_queues_with_work(
        source_dsn, exchange, local_broker, task_queue):
    names = {prefix: services.unique(prefix) for prefix in ("waiting", "ticked", "idle", "ticked_idle", "new")}
    queues = {}
    try:
        for prefix, name in names.items():
            if prefix != "new":
                services.sql(source_dsn, "SELECT pgq.create_queue(%s)", (name,))
                services.sql(source_dsn, "SELECT pgq.register_consumer(%s, 'mikkoo')", (name,))
            queues[prefix] = RelayedQueue.objects.create(name=name.replace("_", "-"), queue_name=name,
                                                         source_url=source_dsn, connection=local_broker)
        services.insert_events(source_dsn, names["waiting"], [("k", "not ticked yet", exchange, "", "", "")])
        services.insert_events(source_dsn, names["ticked"], [("k", "in a batch", exchange, "", "", "")])
        services.tick(source_dsn, names["ticked"])
        for _ in range(3):  # pgqd ticks idle queues now and then: empty batches
            services.tick(source_dsn, names["ticked_idle"])
        pool = ConnectionPool()

        found = sweep(pool)

        assert found.registered == [queues["new"].name]
        assert services.sql(source_dsn, "SELECT count(*) FROM pgq.get_consumer_info(%s, 'mikkoo')",
                            (names["new"],))[0][0] == 1
        busy = sorted((queues["waiting"].pk, queues["ticked"].pk))
        assert sorted(found.requested) == busy
        assert sorted(task_queue()) == [("relay.relay_slice", [pk]) for pk in busy]
        # The empty batches were finished by the sweep itself; the one with an event is left for its task.
        assert lag_ticks(source_dsn, names["ticked_idle"]) == 0
        assert lag_ticks(source_dsn, names["ticked"]) == 1
        statuses = QueueStatus.objects.filter(queue__in=queues.values())
        assert all(status.registered for status in statuses)
        assert pool.counts() == (1, 0)  # one connection for the whole database
        pool.close()
    finally:
        for name in names.values():
            services.sql(source_dsn, "SELECT pgq.drop_queue(queue_name, true) FROM pgq.queue WHERE queue_name = %s",
                         (name,))


@pytest.mark.parametrize(("failures", "seconds"), [(0, 1), (1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (50, 60)])
def test_backoff_doubles_up_to_a_minute(failures, seconds):
    assert backoff(failures) == timedelta(seconds=seconds)


def test_an_event_committed_after_a_forced_tick_that_its_id_predates_is_still_seen_waiting(source_dsn, pgq_queue):
    from relay.engine.connections import SourceConnection
    from relay.pgq.watch import readiness

    with services.connect(source_dsn, autocommit=False) as producer:
        with producer.cursor() as cur:
            cur.execute("SELECT pgq.insert_event(%s, 'k', 'late')", (pgq_queue,))  # draws its ev_id now
        services.tick(source_dsn, pgq_queue)  # the relay forces a tick meanwhile: the sequence moves on
        producer.commit()
    source = SourceConnection(source_dsn)
    source.connect()
    try:
        state = readiness(source, [(pgq_queue, "mikkoo")])[(pgq_queue, "mikkoo")]
        (batch_id,) = services.sql(source_dsn, "SELECT pgq.next_batch(%s, 'mikkoo')", (pgq_queue,))[0]
        services.sql(source_dsn, "SELECT pgq.finish_batch(%s)", (batch_id,))  # the tick's batch: without it
        assert state.events_waiting
        services.tick(source_dsn, pgq_queue)
        (batch_id,) = services.sql(source_dsn, "SELECT pgq.next_batch(%s, 'mikkoo')", (pgq_queue,))[0]
        assert [row[0] for row in services.sql(source_dsn, "SELECT ev_data FROM pgq.get_batch_events(%s)",
                                               (batch_id,))] == ["late"]
    finally:
        source.close()
