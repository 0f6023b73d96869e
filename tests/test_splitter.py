"""The queue splitter end to end: a source and a target database of each test's own, on the real PostgreSQL + PgQ."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest
from django.core.exceptions import ValidationError

from relay.admin.forms import RelayedQueueForm
from relay.core.events import Event
from relay.engine.connections import OwnConnections
from relay.engine.loop import QueueRelay
from relay.engine.settings import PgqTargetSettings, QueueSettings
from relay.engine.split_target import NO_TARGET_QUEUE, SplitTarget
from relay.engine.targets import engine_for
from relay.models import BrokerConnection, QueueStatus, RelayedQueue

from . import services

SECRET = "t4rget-Pa55"
DATA = '{"k": "back\\slash, {braces}, \'quote\', NULL"}'
EVENT_COLUMNS = "ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4"


@pytest.fixture
def databases():
    """A source and a target database, both with PgQ, removed afterwards."""
    names = (services.unique("mikkoo_split_src"), services.unique("mikkoo_split_dst"))
    dsns = tuple(services.create_database(name) for name in names)
    yield dsns
    for name in names:
        services.drop_database(name)


@pytest.fixture
def source_queue(databases):
    """A source queue with the splitter's consumer ("splitter") and an observer registered before any event."""
    source, _ = databases
    name = services.unique("singlequeue")
    services.sql(source, "SELECT pgq.create_queue(%s)", (name,))
    for consumer in ("splitter", "observer"):
        services.sql(source, "SELECT pgq.register_consumer(%s, %s)", (name, consumer))
    return name


def target_queues(dsn: str, *names: str) -> None:
    """Create target queues with a consumer "reader" registered, so it sees every event inserted from now on."""
    for name in names:
        services.sql(dsn, "SELECT pgq.create_queue(%s)", (name,))
        services.sql(dsn, "SELECT pgq.register_consumer(%s, 'reader')", (name,))


def read(dsn: str, queue: str, consumer: str) -> list[Event]:
    """Every event ``consumer`` has not read yet from ``queue``, as PgQ stored it."""
    services.tick(dsn, queue)
    events = []
    while True:
        (batch_id,) = services.sql(dsn, "SELECT pgq.next_batch(%s, %s)", (queue, consumer))[0]
        if batch_id is None:
            return events
        rows = services.sql(dsn, f"SELECT {EVENT_COLUMNS} FROM pgq.get_batch_events(%s) ORDER BY ev_id",
                            (batch_id,))
        events.extend(Event(*row) for row in rows)
        services.sql(dsn, "SELECT pgq.finish_batch(%s)", (batch_id,))


def carried(events: list[Event]) -> list[tuple]:
    """What the splitter must keep of each event: type, data, the four extra fields and the time."""
    return [(e.type, e.data, e.extra1, e.extra2, e.extra3, e.extra4, e.time) for e in events]


def dead_letters(dsn: str, queue: str) -> list[tuple]:
    return services.sql(dsn, "SELECT ev_data, reason, failures FROM mikkoo_relay.dead_letter "
                             "WHERE queue_name = %s ORDER BY ev_id", (queue,))


def settings_for(databases, queue: str, create_target_queues: bool = True, **overrides) -> QueueSettings:
    source, target = databases
    return QueueSettings(name=queue, queue_name=queue, source_dsn=source,
                         target=PgqTargetSettings(target_dsn=target, create_target_queues=create_target_queues),
                         consumer_name="splitter", **{"retry_delay": 0, **overrides})


def configure(databases, queue: str, **fields) -> RelayedQueue:
    source, target = databases
    return RelayedQueue.objects.create(
        name=queue.replace("_", "-"), queue_name=queue, source_url=source, consumer_name="splitter",
        target=RelayedQueue.Target.POSTGRES, target_url=target, **fields)


def start_manage(*args: str) -> subprocess.Popen:
    """``manage.py`` in a process of its own against the test database, left running."""
    root = Path(__file__).resolve().parent.parent
    environment = {**os.environ, "DATABASE_URL": services.django_database_url()}
    return subprocess.Popen([sys.executable, str(root / "manage.py"), *args], cwd=root, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_the_manual_use_case_puts_each_table_insert_into_its_target_queue_once(databases):
    """queue_splitter(1), USECASE: inserts into queue.event1 and queue.event2 become events in those queues."""
    source, target = databases
    queue = services.unique("singlequeue")
    services.sql(source, "SELECT pgq.create_queue(%s)", (queue,))
    services.sql(source, "SELECT pgq.register_consumer(%s, 'observer')", (queue,))
    services.sql(source, "CREATE SCHEMA queue")
    for table in ("event1", "event2"):
        services.sql(source, f"CREATE TABLE queue.{table} (id int4 PRIMARY KEY, name text)")
        services.sql(source, f"CREATE TRIGGER redirect_{table}_trg BEFORE INSERT ON queue.{table} "
                             "FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga(%s, 'SKIP')", (queue,))
    target_queues(target, "queue.event1", "queue.event2")
    relayed = configure(databases, queue)
    # The first run registers the splitter's consumer, as an operator would start it before the producers.
    first = services.manage("relay_once", relayed.name)
    assert first.returncode == 0, first.stderr
    assert re.match(rf"{relayed.name}: (nothing ready|\d+ batches, 0 inserted)", first.stdout), first.stdout

    services.sql(source, "INSERT INTO queue.event1 (id, name) VALUES (1, 'user'), (2, 'a & b=c')")
    services.sql(source, "INSERT INTO queue.event2 (id, name) VALUES (1, 'other')")
    services.sql(source, "INSERT INTO queue.event1 (id, name) VALUES (3, 'later')")
    # Producers may also write events by hand: every extra field travels.
    services.insert_events(source, queue, [("custom", DATA, "queue.event2", "x2", '{"h": "é"}', "")])
    services.tick(source, queue)

    process = services.manage("relay_once", relayed.name)

    assert process.returncode == 0, process.stderr
    # (\d+ batches: pgqd, when it runs on this machine, may have made an empty one too.)
    assert re.fullmatch(rf"{relayed.name}: \d+ batches, 5 inserted into target queues, 0 retried, "
                        r"0 dead-lettered in \d+\.\d\d s \([\d,]+ events/s\)\n", process.stdout)
    stored = read(source, queue, "observer")
    assert [e.extra1 for e in stored] == ["queue.event1"] * 2 + ["queue.event2", "queue.event1", "queue.event2"]
    event1, event2 = read(target, "queue.event1", "reader"), read(target, "queue.event2", "reader")
    assert carried(event1) == carried([e for e in stored if e.extra1 == "queue.event1"])
    assert carried(event2) == carried([e for e in stored if e.extra1 == "queue.event2"])
    assert [e.data for e in event1] == ["id=1&name=user", "id=2&name=a+%26+b%3dc", "id=3&name=later"]
    assert [(e.type, e.data) for e in event2] == [("I:id", "id=1&name=other"), ("custom", DATA)]
    assert services.sql(source, "SELECT (SELECT count(*) FROM queue.event1) + (SELECT count(*) FROM queue.event2)"
                        ) == [(0,)]  # 'SKIP': the rows themselves are never stored
    status = QueueStatus.objects.get(queue=relayed)
    assert (status.published, status.dead_lettered) == (5, 0) and status.batches >= 1

    services.tick(source, queue)
    again = services.manage("relay_once", relayed.name)

    assert re.match(rf"{relayed.name}: \d+ batches, 0 inserted into target queues", again.stdout), again.stdout
    assert read(target, "queue.event1", "reader") == read(target, "queue.event2", "reader") == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_relay_killed_after_the_target_commit_leaves_no_duplicate_and_loses_no_retry(databases, source_queue):
    """A real ``relay_once`` is SIGKILLed between the target commit and the source commit.

    The test holds the consumer's row of ``pgq.subscription``, so the relay's
    ``pgq.finish_batch`` (its last step) waits; once the target has committed
    and the relay waits, the process is killed. No hook in the relay's code.
    """
    source, target = databases
    target_queues(target, "queue.event1")
    relayed = configure(databases, source_queue, create_target_queues=False, retry_delay=3600)
    services.insert_events(source, source_queue, [
        ("I:id", "id=1", "queue.event1", None, None, None),
        ("I:id", "id=2", "queue.event1", None, None, None),
        ("I:id", "no target", "", None, None, None),
        ("I:id", "to a missing queue", "queue.missing", None, None, None),
        ("I:id", "id=3", "queue.event1", None, None, None),
    ])
    services.tick(source, source_queue)
    # Hold the consumer's subscription row: pgq.finish_batch, the last step, has to wait for it.
    while True:
        (batch_id,) = services.sql(source, "SELECT pgq.next_batch(%s, 'splitter')", (source_queue,))[0]
        if services.sql(source, "SELECT count(*) FROM pgq.get_batch_events(%s)", (batch_id,))[0][0]:
            break
        services.sql(source, "SELECT pgq.finish_batch(%s)", (batch_id,))  # an empty batch pgqd made
    blocker = psycopg2.connect(source)
    try:
        with blocker.cursor() as cur:
            cur.execute("SELECT 1 FROM pgq.subscription WHERE sub_batch = %s FOR UPDATE", (batch_id,))
        process = start_manage("relay_once", relayed.name)
        try:
            wait_for(lambda: services.sql(target, "SELECT to_regclass('mikkoo_relay.applied_batch')")[0][0]
                     and services.sql(target, "SELECT count(*) FROM mikkoo_relay.applied_batch")[0][0] == 1,
                     what="the target commit")
            wait_for(lambda: services.sql(source, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                                  "current_database() AND application_name = 'mikkoo-relay' "
                                                  "AND wait_event_type = 'Lock'")[0][0] == 1,
                     what="pgq.finish_batch to wait")
        finally:
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=10)
        assert process.returncode == -signal.SIGKILL
    finally:
        blocker.rollback()
        blocker.close()
    # The dead process's session goes once PostgreSQL notices; its transaction is rolled back.
    wait_for(lambda: services.sql(source, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                          " AND application_name = 'mikkoo-relay'")[0][0] == 0,
             what="the killed relay's session to end")
    assert services.sql(source, "SELECT current_batch FROM pgq.get_consumer_info(%s, 'splitter')",
                        (source_queue,)) == [(batch_id,)]
    assert dead_letters(source, source_queue) == []

    process = services.manage("relay_once", relayed.name)

    assert process.returncode == 0, process.stderr
    assert re.match(rf"{relayed.name}: \d+ batches, 0 inserted into target queues, 1 retried, 1 dead-lettered in ",
                    process.stdout), process.stdout
    assert process.stdout.endswith("; 1 already applied in the target database by an earlier run, "
                                   "finished without inserting again\n")
    assert [e.data for e in read(target, "queue.event1", "reader")] == ["id=1", "id=2", "id=3"]
    assert dead_letters(source, source_queue) == [("no target", NO_TARGET_QUEUE, 1)]
    assert services.sql(source, "SELECT ev_data, ev_retry FROM pgq.retry_queue") == [("to a missing queue", 1)]
    assert services.sql(source, "SELECT current_batch FROM pgq.get_consumer_info(%s, 'splitter')",
                        (source_queue,)) == [(None,)]
    services.tick(source, source_queue)
    assert re.match(rf"{relayed.name}: \d+ batches, 0 inserted into target queues, 0 retried, 0 dead-lettered",
                    services.manage("relay_once", relayed.name).stdout)


def test_a_source_queue_created_again_is_not_mistaken_for_the_batches_it_had(databases, source_queue):
    """Tick ids start again with a new queue; the tick's time tells its batches from the old ones."""
    source, target = databases
    target_queues(target, "queue.event1")
    settings = settings_for(databases, source_queue)
    services.insert_events(source, source_queue, [("t", "before", "queue.event1", None, None, None)])
    services.tick(source, source_queue)
    assert engine_for(settings).run().inserted == 1
    applied_ticks = services.sql(target, "SELECT prev_tick_id, tick_id FROM mikkoo_relay.applied_batch")
    services.sql(source, "SELECT pgq.drop_queue(%s, true)", (source_queue,))
    services.sql(source, "SELECT pgq.create_queue(%s)", (source_queue,))
    services.sql(source, "SELECT pgq.register_consumer(%s, 'splitter')", (source_queue,))
    services.insert_events(source, source_queue, [("t", "after", "queue.event1", None, None, None)])
    services.tick(source, source_queue)

    result = engine_for(settings).run()

    assert services.sql(target, "SELECT prev_tick_id, tick_id FROM mikkoo_relay.applied_batch") == applied_ticks
    assert (result.inserted, result.already_applied) == (1, 0)
    assert [e.data for e in read(target, "queue.event1", "reader")] == ["before", "after"]


def test_a_missing_target_queue_is_created_when_allowed(databases, source_queue):
    source, target = databases
    services.insert_events(source, source_queue, [("t", "first", "queue.new", None, None, None),
                                                  ("t", "second", "queue.new", None, None, None)])
    services.tick(source, source_queue)

    result = engine_for(settings_for(databases, source_queue)).run()

    assert (result.inserted, result.retried, result.dead_lettered) == (2, 0, 0)
    assert result.summary().endswith("; created target queues queue.new")
    # A consumer registered now starts at the latest tick (pgqd may have ticked since): read from the first.
    services.sql(target, "SELECT pgq.register_consumer_at('queue.new', 'reader', min(tick_id)) FROM pgq.tick "
                         "WHERE tick_queue = (SELECT queue_id FROM pgq.queue WHERE queue_name = 'queue.new')")
    assert [e.data for e in read(target, "queue.new", "reader")] == ["first", "second"]


def test_without_auto_create_events_for_a_missing_queue_are_retried_then_dead_lettered(databases, source_queue):
    source, target = databases
    target_queues(target, "queue.here")
    services.insert_events(source, source_queue, [("t", "lost?", "queue.absent", None, None, None),
                                                  ("t", "fine", "queue.here", None, None, None)])
    services.tick(source, source_queue)
    settings = settings_for(databases, source_queue, create_target_queues=False, max_failures=3)

    results = [engine_for(settings).run()]
    for _ in range(settings.max_failures - 1):
        assert services.release_retries(source, source_queue) == 1
        results.append(engine_for(settings).run())

    assert [(r.inserted, r.retried, r.dead_lettered) for r in results] == [(1, 1, 0), (0, 1, 0), (0, 0, 1)]
    assert dead_letters(source, source_queue) == [
        ("lost?", "target queue 'queue.absent' does not exist in the target database "
                  "(creating target queues is off)", 3)]
    assert services.sql(target, "SELECT queue_name FROM pgq.queue ORDER BY 1") == [("queue.here",)]
    assert [e.data for e in read(target, "queue.here", "reader")] == ["fine"]


def test_an_event_without_a_target_queue_is_dead_lettered_at_once(databases, source_queue):
    source, target = databases
    target_queues(target, "queue.event1")
    services.insert_events(source, source_queue, [("t", "empty", "", None, None, None),
                                                  ("t", "null", None, None, None, None),
                                                  ("t", "fine", "queue.event1", None, None, None)])
    services.tick(source, source_queue)

    result = engine_for(settings_for(databases, source_queue)).run()

    assert (result.inserted, result.retried, result.dead_lettered) == (1, 0, 2)
    assert dead_letters(source, source_queue) == [("empty", NO_TARGET_QUEUE, 1), ("null", NO_TARGET_QUEUE, 1)]
    assert NO_TARGET_QUEUE == "ev_extra1 is empty: it must name the target queue"
    assert [e.data for e in read(target, "queue.event1", "reader")] == ["fine"]


def test_a_target_queue_that_refuses_its_events_fails_only_those(databases, source_queue):
    source, target = databases
    target_queues(target, "queue.open", "queue.closed", "queue.disabled")
    services.sql(target, "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                         "$$BEGIN RAISE EXCEPTION 'closed for maintenance'; END$$")
    for (table,) in services.sql(target, "SELECT c.oid::regclass::text FROM pg_inherits i JOIN pg_class c "
                                         "ON c.oid = i.inhrelid WHERE i.inhparent = (SELECT queue_data_pfx FROM "
                                         "pgq.queue WHERE queue_name = 'queue.closed')::regclass"):
        services.sql(target, f"CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse()")
    services.sql(target, "UPDATE pgq.queue SET queue_disable_insert = true WHERE queue_name = 'queue.disabled'")
    services.insert_events(source, source_queue, [("t", "in", "queue.open", None, None, None),
                                                  ("t", "refused", "queue.closed", None, None, None),
                                                  ("t", "disabled", "queue.disabled", None, None, None)])
    services.tick(source, source_queue)

    result = engine_for(settings_for(databases, source_queue, max_failures=1)).run()

    assert (result.inserted, result.retried, result.dead_lettered) == (1, 0, 2)
    assert dead_letters(source, source_queue) == [
        ("refused", "cannot insert into target queue 'queue.closed': closed for maintenance", 1),
        ("disabled", "target queue 'queue.disabled' does not take inserts (queue_disable_insert)", 1)]
    assert [e.data for e in read(target, "queue.open", "reader")] == ["in"]


def test_batches_larger_than_a_window_keep_each_target_queues_order(databases, source_queue):
    source, target = databases
    names = ("queue.a", "queue.b", "queue.c")
    target_queues(target, *names)
    services.insert_events(source, source_queue,
                           [("t", str(n), names[n % 3], None, None, None) for n in range(50)])
    services.tick(source, source_queue)
    settings = settings_for(databases, source_queue)
    splitter = QueueRelay(settings, SplitTarget(settings, window_size=7), OwnConnections())

    result = splitter.run()

    assert (result.events, result.inserted) == (50, 50)
    for index, name in enumerate(names):
        assert [e.data for e in read(target, name, "reader")] == [str(n) for n in range(index, 50, 3)]


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_target_is_named_without_its_password_and_nothing_is_lost(databases, source_queue):
    source, target = databases
    target_queues(target, "queue.event1")
    relayed = configure(databases, source_queue)
    RelayedQueue.objects.filter(pk=relayed.pk).update(target_url=f"postgres://app:{SECRET}@127.0.0.1:1/nowhere")
    services.insert_events(source, source_queue, [("t", "kept", "queue.event1", None, None, None)])
    services.tick(source, source_queue)

    failed = services.manage("relay_once", relayed.name)

    assert failed.returncode == 1
    # The error is the last line (the relay's own log lines may come before it).
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("CommandError: target database postgres://app:***@127.0.0.1:1/nowhere: connecting failed")
    assert "Traceback" not in failed.stderr
    assert SECRET not in failed.stdout + failed.stderr
    status = QueueStatus.objects.get(queue=relayed)
    assert status.failing and SECRET not in status.last_error

    RelayedQueue.objects.filter(pk=relayed.pk).update(target_url=target)
    fixed = services.manage("relay_once", relayed.name)

    assert fixed.returncode == 0, fixed.stderr
    assert [e.data for e in read(target, "queue.event1", "reader")] == ["kept"]


@pytest.mark.django_db
def test_the_schedule_relays_a_split_queue_like_any_other(databases, source_queue):
    from relay.scheduling.slices import run_slice

    source, target = databases
    target_queues(target, "queue.event1")
    relayed = configure(databases, source_queue)
    services.insert_events(source, source_queue, [("t", "scheduled", "queue.event1", None, None, None)])

    result = run_slice(relayed.pk)  # it ticks the queue itself

    assert (result.inserted, result.dead_lettered) == (1, 0)
    assert [e.data for e in read(target, "queue.event1", "reader")] == ["scheduled"]
    assert QueueStatus.objects.get(queue=relayed).published == 1


@pytest.mark.django_db
def test_each_target_needs_its_own_settings():
    queue = RelayedQueue(name="orders", queue_name="orders", source_url="dbname=app")
    with pytest.raises(ValidationError) as rabbitmq:
        queue.full_clean()
    assert set(rabbitmq.value.message_dict) == {"connection"}

    queue.target = RelayedQueue.Target.POSTGRES
    with pytest.raises(ValidationError) as postgres:
        queue.full_clean()
    assert set(postgres.value.message_dict) == {"target_url"}

    queue.target_url = "dbname=batch host=db.example.com"
    queue.full_clean()


@pytest.mark.django_db
def test_the_admin_configures_a_split_queue_and_never_shows_the_target_password(admin_client):
    BrokerConnection.objects.create(name="rabbit")
    response = admin_client.post("/admin/relay/relayedqueue/add/", {
        "name": "orders-split", "queue_name": "orders", "source_url": "dbname=oltp", "consumer_name": "splitter",
        "target": "postgres", "connection": "", "target_url": f"dbname=batch user=app password={SECRET}",
        "create_target_queues": "on", "enabled": "on", "confirm": "on", "persistent": "on",
        "max_failures": "10", "retry_delay": "10", "wait_duration": "1", "unregister": "on",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    queue = RelayedQueue.objects.get(name="orders-split")
    assert (queue.target, queue.connection, queue.target_url) == (
        "postgres", None, f"dbname=batch user=app password={SECRET}")

    page = admin_client.get(f"/admin/relay/relayedqueue/{queue.pk}/change/").content.decode()

    assert SECRET not in page
    assert "dbname=batch user=app password=***" in page
    form = RelayedQueueForm(instance=queue, data={
        **{k: v for k, v in RelayedQueueForm(instance=queue).initial.items() if v is not None},
        "target_url": "", "connection": "", "max_failures": "5"})
    assert form.is_valid(), form.errors
    assert form.save().target_url == f"dbname=batch user=app password={SECRET}"  # blank keeps the stored one
