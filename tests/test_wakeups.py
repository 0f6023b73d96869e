"""Wake-ups that cost the producers nothing: the watcher finds new events without a trigger, one per database.

Real `celery -A mikkoo_project worker -B` processes on the real PostgreSQL
with PgQ and RabbitMQ. Beat's sweep runs once at start and then every ten
minutes, so an event that arrives within seconds was found by the watcher.
"""
from __future__ import annotations

import re

import pytest
from django.test import override_settings

from relay.models import RelayedQueue
from relay.runs.registration import register_consumers

from . import services
from .processes import Worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

NO_SWEEP = {"RELAY_SWEEP_SECONDS": "600"}
WATCHING = "wake-ups: watching"


def add_queue(source_dsn, broker) -> RelayedQueue:
    """A queue configured as the admin does it: saved, its consumer registered at once."""
    name = services.unique("wk")
    queue = RelayedQueue.objects.create(name=name.replace("_", "-"), queue_name=name, source_url=source_dsn,
                                        connection=broker, retry_delay=1)
    [registration] = register_consumers([queue])
    assert registration.error is None, registration.error
    return queue


def notify_triggers(dsn: str, queue_name: str) -> int:
    """How many of the queue's PgQ event tables carry the relay's NOTIFY trigger."""
    return services.sql(dsn, "SELECT count(*) FROM pgq.queue q JOIN pg_inherits i "
                             "ON i.inhparent = q.queue_data_pfx::regclass "
                             "JOIN pg_trigger t ON t.tgrelid = i.inhrelid AND t.tgname = 'mikkoo_relay_notify' "
                             "WHERE q.queue_name = %s", (queue_name,))[0][0]


def install_old_trigger(dsn: str, queue_name: str) -> None:
    """The trigger relays before 2026-12 put on every event table of every queue they registered."""
    services.sql(dsn, """
        DO $$
        DECLARE t record;
        BEGIN
            FOR t IN SELECT i.inhrelid::regclass AS event_table, q.queue_id FROM pgq.queue q
                       JOIN pg_inherits i ON i.inhparent = q.queue_data_pfx::regclass
                      WHERE q.queue_name = %s
            LOOP
                EXECUTE format('CREATE TRIGGER mikkoo_relay_notify AFTER INSERT ON %%s FOR EACH STATEMENT '
                               'EXECUTE FUNCTION mikkoo_relay.notify_relay(%%L)', t.event_table, t.queue_id);
            END LOOP;
        END $$""", (queue_name,))


def watching(worker: Worker) -> bool:
    return WATCHING in worker.log()


def arrive_one_by_one(amqp, source_dsn, queue: RelayedQueue, exchange: str, target: str, count: int) -> list[str]:
    """Write ``count`` events one transaction at a time, each after the last arrived; their bodies as received."""
    got = []
    for n in range(count):
        services.insert_events(source_dsn, queue.queue_name, [("k", f"{queue.name}-{n}", exchange, "", "", "")])
        got += wait_for(lambda: [m.body.decode() for m in services.drain(amqp, target)],
                        timeout=15, interval=0.02, what=f"event {n}")
    return got


def test_events_arrive_from_a_queue_without_any_trigger(
        tmp_path, pgqd, celery_queue, broker, source_dsn, exchange, bind_queue, amqp):
    queue = add_queue(source_dsn, broker)
    target = bind_queue(exchange)
    worker = Worker(tmp_path, celery_queue, **NO_SWEEP)
    try:
        wait_for(lambda: watching(worker), timeout=30, what="the worker to watch the database")
        got = arrive_one_by_one(amqp, source_dsn, queue, exchange, target, 5)
    finally:
        worker.stop()
    assert got == [f"{queue.name}-{n}" for n in range(5)]
    assert notify_triggers(source_dsn, queue.queue_name) == 0
    assert "Traceback" not in worker.log(), worker.log()[-3000:]


def test_registering_removes_an_older_relays_trigger_and_adds_it_only_with_relay_notify(source_dsn, broker):
    queue = add_queue(source_dsn, broker)
    install_old_trigger(source_dsn, queue.queue_name)
    assert notify_triggers(source_dsn, queue.queue_name) == 3  # PgQ's three rotating event tables

    register_consumers([queue])  # saving the queue again in the admin, or importing it again
    assert notify_triggers(source_dsn, queue.queue_name) == 0

    with override_settings(RELAY_NOTIFY=True):
        register_consumers([queue])
    assert notify_triggers(source_dsn, queue.queue_name) == 3


def test_a_worker_removes_the_trigger_an_older_relay_installed(
        tmp_path, pgqd, celery_queue, broker, source_dsn, exchange, bind_queue, amqp):
    queue = add_queue(source_dsn, broker)
    install_old_trigger(source_dsn, queue.queue_name)  # an installation upgraded in place: no save, no import
    target = bind_queue(exchange)
    worker = Worker(tmp_path, celery_queue, **NO_SWEEP)
    try:
        wait_for(lambda: notify_triggers(source_dsn, queue.queue_name) == 0, timeout=30,
                 what="the old trigger to be removed")
        got = arrive_one_by_one(amqp, source_dsn, queue, exchange, target, 2)
    finally:
        worker.stop()
    assert got == [f"{queue.name}-{n}" for n in range(2)]
    assert "NOTIFY trigger removed on 3 event tables" in worker.log()


def test_relay_notify_wakes_the_worker_at_commit(
        tmp_path, pgqd, celery_queue, broker, source_dsn, exchange, bind_queue, amqp):
    queue = add_queue(source_dsn, broker)
    target = bind_queue(exchange)
    # The watcher reads the sequences every ten minutes: only a notification can wake it sooner.
    worker = Worker(tmp_path, celery_queue, RELAY_NOTIFY="true", RELAY_WATCH_SECONDS="600", **NO_SWEEP)
    try:
        wait_for(lambda: "NOTIFY trigger installed on 3 event tables" in worker.log(), timeout=30,
                 what="the trigger to be installed and listened to")
        got = arrive_one_by_one(amqp, source_dsn, queue, exchange, target, 3)
    finally:
        worker.stop()
    assert got == [f"{queue.name}-{n}" for n in range(3)]
    assert notify_triggers(source_dsn, queue.queue_name) == 3


def watchers_of(dsn: str) -> int:
    """Sessions of the relay's watchers in this database that hold a watch (an advisory lock)."""
    return services.sql(dsn, "SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
                             "AND l.locktype = 'advisory' AND l.granted "
                             "WHERE a.datname = current_database() AND a.application_name = 'mikkoo-relay watcher'"
                        )[0][0]


def test_one_watcher_per_database_whatever_the_workers_and_another_takes_over_when_it_dies(
        tmp_path, pgqd, celery_queue, broker, source_dsn, exchange, bind_queue, amqp):
    queue = add_queue(source_dsn, broker)
    target = bind_queue(exchange)
    workers = [Worker(tmp_path, celery_queue, name=f"w{n}", concurrency=1, **NO_SWEEP) for n in range(3)]
    try:
        leader = wait_for(lambda: next((w for w in workers if watching(w)), None), timeout=30,
                          what="a worker to watch the database")
        assert watchers_of(source_dsn) == 1
        got = arrive_one_by_one(amqp, source_dsn, queue, exchange, target, 2)

        leader.kill()
        others = [w for w in workers if w is not leader]
        wait_for(lambda: any(watching(w) for w in others), timeout=15, what="another worker to take over")
        assert watchers_of(source_dsn) == 1
        got += arrive_one_by_one(amqp, source_dsn, queue, exchange, target, 2)
    finally:
        for worker in workers:
            worker.stop()
    assert [re.sub(r"^.*-", "", body) for body in got] == ["0", "1", "0", "1"]
