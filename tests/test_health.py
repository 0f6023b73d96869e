"""Health: /health/ and ``manage.py relay_health`` share one engine, checked against the real services."""
from __future__ import annotations

import json

import pytest

from relay.models import BrokerConnection, RelayedQueue

from . import services

pytestmark = pytest.mark.django_db(transaction=True)


def add_queue(queue_name, source_url, connection, **fields):
    return RelayedQueue.objects.create(name=services.unique("hq").replace("_", "-"), queue_name=queue_name,
                                       source_url=source_url, connection=connection, **fields)


def test_a_queue_with_everything_reachable_is_healthy(client, source_dsn, pgq_queue, broker):
    services.tick(source_dsn, pgq_queue)
    queue = add_queue(pgq_queue, source_dsn, broker)

    response = client.get("/health/")

    assert response.status_code == 200
    report = response.json()
    assert report["healthy"] is True
    checks = report["queues"][queue.name]
    assert checks["source"] == "ok" and checks["target"] == "ok" and checks["problems"] == []
    assert 0 <= checks["last_tick_age_seconds"] < 60
    assert 0 <= checks["consumer_lag_seconds"] < 60
    assert checks["pending_events"] >= 0  # PgQ's estimate: forced ticks advance its sequence
    command = services.manage("relay_health")
    assert command.returncode == 0, command.stderr
    assert f"{queue.name}: ok (last tick" in command.stdout
    as_json = services.manage("relay_health", "--json")
    assert json.loads(as_json.stdout)["queues"][queue.name]["healthy"] is True


def test_unreachable_source_and_rabbitmq_make_it_unhealthy_without_passwords(client, source_dsn, pgq_queue, broker):
    services.tick(source_dsn, pgq_queue)
    healthy = add_queue(pgq_queue, source_dsn, broker)
    no_source = add_queue("orders", "postgres://relay:s3cret-pg@127.0.0.1:1/app", broker)
    down = BrokerConnection.objects.create(name="down", hosts="127.0.0.1:1", password="s3cret-mq")
    no_rabbit = add_queue(pgq_queue, source_dsn, down, consumer_name="other")
    services.sql(source_dsn, "SELECT pgq.register_consumer(%s, 'other')", (pgq_queue,))

    response = client.get("/health/")

    assert response.status_code == 503
    body = response.content.decode()
    assert "s3cret" not in body
    report = response.json()
    assert report["healthy"] is False
    assert report["queues"][healthy.name]["healthy"] is True
    [problem] = report["queues"][no_source.name]["problems"]
    assert "postgres://relay:***@127.0.0.1:1/app" in problem and "connecting failed" in problem
    [problem] = report["queues"][no_rabbit.name]["problems"]
    assert "RabbitMQ" in problem and "127.0.0.1:1" in problem and "cannot connect" in problem

    command = services.manage("relay_health")
    assert command.returncode == 1
    assert "s3cret" not in command.stdout + command.stderr
    assert f"{no_source.name}: UNHEALTHY: source database postgres://relay:***@127.0.0.1:1/app" in command.stderr
    assert f"{no_rabbit.name}: UNHEALTHY: RabbitMQ" in command.stderr
    assert f"{healthy.name}: ok" in command.stdout
    assert "2 of 3 queues unhealthy" in command.stderr
    # Only the named queue is checked when one is named.
    assert services.manage("relay_health", healthy.name).returncode == 0


def test_consumer_lag_and_missing_ticks_over_their_bounds(client, settings, source_dsn, pgq_queue, broker):
    services.tick(source_dsn, pgq_queue)
    queue = add_queue(pgq_queue, source_dsn, broker)
    settings.RELAY_HEALTH_MAX_LAG_SECONDS = 0
    settings.RELAY_HEALTH_MAX_TICK_AGE_SECONDS = 0

    response = client.get("/health/")

    assert response.status_code == 503
    problems = response.json()["queues"][queue.name]["problems"]
    assert any(p.startswith("consumer lag") and "over the bound of 0 s" in p for p in problems)
    assert any(p.startswith("no PgQ tick for") and "is pgqd running?" in p for p in problems)
    command = services.manage("relay_health", env={"RELAY_HEALTH_MAX_LAG_SECONDS": "0"})
    assert command.returncode == 1 and "consumer lag" in command.stderr
