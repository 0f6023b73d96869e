"""``manage.py relay_once``: what an operator sees, run as a real process."""
from __future__ import annotations

import re

import pytest

from relay.models import BrokerConnection, QueueStatus, RelayedQueue

from . import services

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "s3cret-Pa55"


def configure(source_url, pgq_queue, **connection):
    broker = BrokerConnection.objects.create(name=services.unique("rabbit").replace("_", "-"),
                                             hosts="127.0.0.1", **connection)
    return RelayedQueue.objects.create(name=pgq_queue.replace("_", "-"), queue_name=pgq_queue,
                                       source_url=source_url, connection=broker, retry_delay=0)


def assert_one_clean_error_line(process, *fragments):
    assert process.returncode != 0
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    assert "Traceback" not in process.stderr
    assert SECRET not in process.stderr + process.stdout
    for fragment in fragments:
        assert fragment in lines[0]


def test_relays_what_is_ready_and_prints_a_summary(source_dsn, pgq_queue, exchange, bind_queue, amqp):
    queue = configure(source_dsn, pgq_queue)
    target = bind_queue(exchange)
    services.insert_events(source_dsn, pgq_queue, [("k", str(n), exchange, "", "", "") for n in range(300)])
    services.tick(source_dsn, pgq_queue)

    process = services.manage("relay_once", queue.name)

    assert process.returncode == 0, process.stderr
    assert re.fullmatch(rf"{queue.name}: 1 batches, 300 published, 0 retried, 0 dead-lettered "
                        r"in \d+\.\d\d s \([\d,]+ events/s\)\n", process.stdout)
    assert len(services.drain(amqp, target, expected=300)) == 300
    status = QueueStatus.objects.get(queue=queue)
    assert (status.batches, status.published, status.retried, status.dead_lettered) == (1, 300, 0, 0)
    assert status.last_batch_at and status.last_success_at and not status.failing


def test_an_idle_queue_says_nothing_was_ready(source_dsn, pgq_queue):
    queue = configure(source_dsn, pgq_queue)

    process = services.manage("relay_once", queue.name, timeout=10)

    assert process.returncode == 0, process.stderr
    assert process.stdout == f"{queue.name}: nothing ready\n"


def test_a_busy_queue_says_so_and_exits_0(source_dsn, pgq_queue):
    from relay.pgq import PgqConsumer

    queue = configure(source_dsn, pgq_queue)
    holder = PgqConsumer(source_dsn, pgq_queue, "mikkoo")
    holder.connect()
    try:
        assert holder.try_lock()
        process = services.manage("relay_once", queue.name)
    finally:
        holder.close()

    assert process.returncode == 0, process.stderr
    assert process.stdout == f"{queue.name}: busy, another process is relaying it; nothing done\n"


def test_an_unknown_queue_is_named(source_dsn, pgq_queue):
    configure(source_dsn, pgq_queue)

    process = services.manage("relay_once", "no-such-queue")

    assert_one_clean_error_line(process, "no relayed queue named 'no-such-queue'")


def test_an_unreachable_postgresql_is_named_without_its_password(pgq_queue):
    queue = configure(f"postgres://app:{SECRET}@127.0.0.1:1/nowhere", pgq_queue)

    process = services.manage("relay_once", queue.name)

    assert_one_clean_error_line(process, "source database postgres://app:***@127.0.0.1:1/nowhere",
                                "connecting failed")
    status = QueueStatus.objects.get(queue=queue)
    assert status.failing and "connecting failed" in status.last_error and SECRET not in status.last_error


def test_an_unreachable_rabbitmq_is_named_without_its_password(source_dsn, pgq_queue):
    queue = configure(source_dsn, pgq_queue, port=1, password=SECRET, connect_timeout=2)

    process = services.manage("relay_once", queue.name)

    assert_one_clean_error_line(process, "RabbitMQ amqp://guest@127.0.0.1:1/", "cannot connect")


def test_bad_rabbitmq_credentials_are_reported_without_the_password(source_dsn, pgq_queue):
    queue = configure(source_dsn, pgq_queue, username="nobody", password=SECRET)

    process = services.manage("relay_once", queue.name)

    assert_one_clean_error_line(process, "RabbitMQ amqp://nobody@127.0.0.1:5672/", "ACCESS_REFUSED")


def test_a_bad_postgresql_role_is_reported(source_dsn, pgq_queue):
    queue = configure(source_dsn.replace("postgres@", f"no_such_role:{SECRET}@"), pgq_queue)

    process = services.manage("relay_once", queue.name)

    assert_one_clean_error_line(process, "no_such_role:***@", 'role "no_such_role" does not exist')


def test_a_url_with_a_password_in_it_never_reaches_the_error(source_dsn, pgq_queue):
    queue = configure(source_dsn, pgq_queue, url=f"amqp://guest:{SECRET}@127.0.0.1:1/%2F", connect_timeout=2)

    process = services.manage("relay_once", queue.name)

    assert_one_clean_error_line(process, "amqp://guest:***@127.0.0.1:1/%2F", "cannot connect")
