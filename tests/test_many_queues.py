"""Many queues under real `celery -A mikkoo_project worker -B` processes, with pgqd: every event arrives.

An idle queue costs no task and no connection; wake-ups come over one
connection per source database; a hot queue is relayed in slices and never
starves the others; of two workers, the one left relays everything.
"""
from __future__ import annotations

import random
import time
from io import StringIO

import pytest
from django.core.management import call_command

from relay.models import QueueStatus, RelayedQueue

from . import services
from .processes import Pgqd, Worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def source_dsns():
    """Three source databases of their own, with PgQ."""
    names = [services.unique("mikkoo_many") for _ in range(3)]
    dsns = [services.create_database(name) for name in names]
    yield dsns
    for name in names:
        services.drop_database(name)


@pytest.fixture
def pgqd_many(tmp_path, source_dsns):
    daemon = Pgqd(tmp_path, [dsn.rsplit("/", 1)[1] for dsn in source_dsns])
    yield daemon
    daemon.stop()


def import_queues(tmp_path, dsns: list[str], count: int) -> list[RelayedQueue]:
    """``count`` queues spread over ``dsns``, imported from a mikkoo YAML file as a user would."""
    names = [services.unique("mq") for _ in range(count)]
    lines = ["Application:", "  workers:"]
    for index, name in enumerate(names):
        lines += [f"    {name}:", f"      postgres_url: {dsns[index % len(dsns)]}", "      retry_delay: 1",
                  "      rabbitmq:", "        host: 127.0.0.1"]
    path = tmp_path / "mikkoo.yml"
    path.write_text("\n".join(lines) + "\n")
    out, err = StringIO(), StringIO()
    call_command("import_mikkoo", str(path), stdout=out, stderr=err)
    assert err.getvalue() == "", err.getvalue()
    return list(RelayedQueue.objects.filter(name__in=names))


def relay_backends(dsns: list[str]) -> int:
    databases = [dsn.rsplit("/", 1)[1] for dsn in dsns]
    return services.sql(services.ADMIN_DSN, "SELECT count(*) FROM pg_stat_activity WHERE datname = ANY(%s) "
                                            "AND application_name LIKE 'mikkoo-relay%%'", (databases,))[0][0]


def received(amqp, rabbit_queue, into: list, count: int) -> bool:
    into.extend(services.drain(amqp, rabbit_queue))
    return len(into) >= count


def test_one_default_worker_relays_every_event_of_60_queues_over_3_databases(
        tmp_path, source_dsns, pgqd_many, celery_queue, exchange, bind_queue, amqp):
    queues = import_queues(tmp_path, source_dsns, 60)
    # Registered at import, before any worker ran: what is written from now on is kept for the relay.
    assert all(status.registered for status in QueueStatus.objects.filter(queue__in=queues))
    target = bind_queue(exchange)
    sent = [(queue, f"{queue.name}-{n}") for queue in queues for n in range(3)]
    random.shuffle(sent)
    for queue, body in sent:
        services.insert_events(queue.source_url, queue.queue_name, [("k", body, exchange, "", "", "")])
    worker = Worker(tmp_path, celery_queue, concurrency=None)  # Celery's default pool
    try:
        got: list = []
        wait_for(lambda: received(amqp, target, got, len(sent)), timeout=60, what=f"{len(sent)} events")
        backends = relay_backends(source_dsns)
        time.sleep(2)  # anything published twice would arrive by now
        got.extend(services.drain(amqp, target))
    finally:
        worker.stop()
    assert sorted(m.body.decode() for m in got) == sorted(body for _, body in sent)
    pool_size = len(worker.processes()) or 2
    print(f"relay backends while relaying: {backends}")
    # One listener per database, and at most one connection per database in each pool process.
    assert backends <= len(source_dsns) * (1 + max(pool_size, 2))
    assert "Traceback" not in worker.log(), worker.log()[-3000:]


def test_a_queue_with_a_backlog_is_relayed_in_slices_and_never_starves_the_others(
        tmp_path, source_dsns, celery_queue, exchange, bind_queue, amqp):
    dsn = source_dsns[0]
    hot, *others = import_queues(tmp_path, [dsn], 6)
    hot_target, other_target = bind_queue(exchange, "hot"), bind_queue(exchange, "other")
    backlog = 60_000
    services.sql(dsn, "SELECT pgq.insert_event(%s, 'hot', n::text, %s, '', '', '') "
                      "FROM generate_series(1, %s) AS n", (hot.queue_name, exchange, backlog))
    # One pool process: only slicing lets the other queues in while the backlog drains.
    worker = Worker(tmp_path, celery_queue, concurrency=1)
    try:
        wait_for(lambda: services.message_count(amqp, hot_target), timeout=60, what="the backlog to start")
        for queue in others:
            services.insert_events(dsn, queue.queue_name, [("other", queue.name, exchange, "", "", "")])
        other_got: list = []
        wait_for(lambda: received(amqp, other_target, other_got, len(others)), timeout=60,
                 what="the other queues' events")
        drained_meanwhile = services.message_count(amqp, hot_target)
        wait_for(lambda: services.message_count(amqp, hot_target) >= backlog, timeout=180,
                 what="the whole backlog")
        time.sleep(2)  # anything published twice would arrive by now
        hot_got = services.consume(amqp, hot_target, backlog)
        left = services.message_count(amqp, hot_target)
    finally:
        worker.stop()
    print(f"the other queues' events arrived when {drained_meanwhile} of {backlog} backlog events had")
    assert sorted(m.body.decode() for m in other_got) == sorted(queue.name for queue in others)
    assert drained_meanwhile < backlog
    ids = [m.properties["message_id"] for m in hot_got]
    assert len(ids) == backlog and len(set(ids)) == backlog and left == 0  # stopping mid-batch repeats nothing
    assert "(to be continued)" in worker.log()


def test_a_queue_saved_in_the_admin_has_its_consumer_before_any_worker_runs(
        tmp_path, admin_client, source_dsn, pgqd, celery_queue, broker, exchange, bind_queue, amqp):
    name = services.unique("admin")
    form = {"name": name.replace("_", "-"), "queue_name": name, "source_url": source_dsn, "consumer_name": "mikkoo",
            "target": "rabbitmq", "connection": broker.pk, "enabled": "on", "confirm": "on", "persistent": "on",
            "max_failures": "10", "retry_delay": "10", "wait_duration": "10", "unregister": "on"}
    try:
        response = admin_client.post("/admin/relay/relayedqueue/add/", form, follow=True)

        assert response.status_code == 200
        assert "PgQ consumers registered in" in response.content.decode()
        assert services.sql(source_dsn, "SELECT count(*) FROM pgq.get_consumer_info(%s, 'mikkoo')",
                            (name,))[0][0] == 1
        target = bind_queue(exchange)
        services.insert_events(source_dsn, name, [("k", "written before any worker", exchange, "", "", "")])
        worker = Worker(tmp_path, celery_queue)
        try:
            got: list = []
            wait_for(lambda: received(amqp, target, got, 1), timeout=30, what="the event")
        finally:
            worker.stop()
        assert [m.body for m in got] == [b"written before any worker"]
    finally:
        services.sql(source_dsn, "SELECT pgq.drop_queue(queue_name, true) FROM pgq.queue WHERE queue_name = %s",
                     (name,))


def test_a_queue_whose_database_is_down_is_saved_and_says_its_consumer_is_not_registered(admin_client, broker):
    name = services.unique("down").replace("_", "-")
    form = {"name": name, "queue_name": "orders", "source_url": "postgres://postgres@127.0.0.1:1/gone",
            "consumer_name": "mikkoo", "target": "rabbitmq", "connection": broker.pk, "enabled": "on",
            "confirm": "on", "persistent": "on", "max_failures": "10", "retry_delay": "10", "wait_duration": "10",
            "unregister": "on"}

    page = admin_client.post("/admin/relay/relayedqueue/add/", form, follow=True).content.decode()

    assert "PgQ consumer NOT registered for" in page and "connecting failed" in page
    queue = RelayedQueue.objects.get(name=name)
    assert not queue.status.registered and "connecting failed" in queue.status.registration_error
    listing = admin_client.get("/admin/relay/relayedqueue/").content.decode()
    assert "consumer not registered" in listing


def test_of_two_workers_the_one_left_relays_everything_when_the_other_is_killed(
        tmp_path, source_dsns, pgqd_many, celery_queue, exchange, bind_queue, amqp):
    queues = import_queues(tmp_path, source_dsns[:2], 10)
    target = bind_queue(exchange)
    workers = [Worker(tmp_path, celery_queue, name=f"w{n}") for n in (1, 2)]
    count = 0
    try:
        time.sleep(3)  # both are up and sharing the work
        for round_ in range(60):
            if round_ == 20:
                workers[0].kill()
                killed_at = time.monotonic()
            queue = queues[round_ % len(queues)]
            services.insert_events(queue.source_url, queue.queue_name,
                                   [("k", f"{round_}-{n}", exchange, "", "", "") for n in range(20)])
            count += 20
            time.sleep(0.1)
        got: list = []
        wait_for(lambda: received(amqp, target, got, count), timeout=60, what=f"{count} events")
        print(f"every event arrived {time.monotonic() - killed_at:.1f} s after the first worker was killed")
        time.sleep(2)
        got.extend(services.drain(amqp, target))
    finally:
        for worker in workers:
            worker.stop()
    bodies = {m.body.decode() for m in got}
    assert bodies == {f"{round_}-{n}" for round_ in range(60) for n in range(20)}
    assert "Traceback" not in workers[1].log(), workers[1].log()[-3000:]
