"""Health: /health/ and ``manage.py relay_health`` share one engine, checked against the real services."""
from __future__ import annotations

import json
import time

import pytest
from django.core.cache import cache
from django.utils import timezone

from relay.models import BrokerConnection, RelayedQueue
from relay.ops.processes import claim_sweep, worker_heartbeat

from . import services

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "health-token-for-tests"
AUTHORISED = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def health_settings(settings):
    """Details need the token; the checks may take their time here, and no answer is kept from another test."""
    settings.RELAY_HEALTH_TOKEN = TOKEN
    settings.RELAY_HEALTH_DEADLINE_SECONDS = 30
    cache.clear()
    yield
    cache.clear()


def add_queue(queue_name, source_url, connection, **fields):
    return RelayedQueue.objects.create(name=services.unique("hq").replace("_", "-"), queue_name=queue_name,
                                       source_url=source_url, connection=connection, **fields)


def test_a_queue_with_everything_reachable_is_healthy(client, source_dsn, pgq_queue, broker):
    services.tick(source_dsn, pgq_queue)
    queue = add_queue(pgq_queue, source_dsn, broker)

    response = client.get("/health/", **AUTHORISED)

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

    response = client.get("/health/", **AUTHORISED)

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

    response = client.get("/health/", **AUTHORISED)

    assert response.status_code == 503
    problems = response.json()["queues"][queue.name]["problems"]
    assert any(p.startswith("consumer lag") and "over the bound of 0 s" in p for p in problems)
    assert any(p.startswith("no PgQ tick for") and "is pgqd running?" in p for p in problems)
    command = services.manage("relay_health", env={"RELAY_HEALTH_MAX_LAG_SECONDS": "0"})
    assert command.returncode == 1 and "consumer lag" in command.stderr


def test_anonymous_callers_learn_only_healthy_or_not(client, admin_client, source_dsn, pgq_queue, broker):
    services.tick(source_dsn, pgq_queue)
    healthy = add_queue(pgq_queue, source_dsn, broker)
    down = add_queue("orders", "postgres://relay:s3cret-pg@127.0.0.1:1/app", broker)

    anonymous = client.get("/health/")
    staff = admin_client.get("/health/")
    wrong_token = client.get("/health/", HTTP_AUTHORIZATION="Bearer not-the-token")

    assert anonymous.status_code == staff.status_code == 503
    assert anonymous.json() == {"healthy": False, "queues": {healthy.name: {"healthy": True},
                                                             down.name: {"healthy": False}}}
    assert wrong_token.json() == anonymous.json()
    body = anonymous.content.decode()
    assert "127.0.0.1" not in body and "relay" not in body and "postgres" not in body
    assert staff.json()["queues"][down.name]["problems"][0].startswith("source database postgres://relay:***@")


def test_metrics_need_the_token_when_one_is_set(client, admin_client, settings):
    settings.RELAY_METRICS_TOKEN = "metrics-token"

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token").status_code == 200
    assert admin_client.get("/metrics").status_code == 200


def test_a_source_that_never_answers_costs_the_endpoint_its_deadline_not_its_timeout(
        client, settings, source_dsn, pgq_queue, broker):
    settings.RELAY_HEALTH_DEADLINE_SECONDS = 0.5
    settings.RELAY_HEALTH_TIMEOUT_SECONDS = 2
    services.tick(source_dsn, pgq_queue)
    with services.silent_listener() as port:
        hung = add_queue("orders", f"postgres://relay@127.0.0.1:{port}/app", broker)

        first = client.get("/health/", **AUTHORISED)

        assert first.status_code == 503
        assert first.json()["queues"][hung.name]["problems"] == ["no answer within 0.5 s (still checking)"]
        time.sleep(2.5)  # the check finishes in the background, within its own timeout
        later = client.get("/health/", **AUTHORISED).json()["queues"][hung.name]
        assert later["source"] == "unreachable" and "connecting failed" in later["problems"][0]


def test_answers_are_kept_a_few_seconds(client, settings, source_dsn, pgq_queue, broker):
    services.tick(source_dsn, pgq_queue)
    queue = add_queue(pgq_queue, source_dsn, broker)
    assert client.get("/health/").status_code == 200
    services.sql(source_dsn, "SELECT pgq.unregister_consumer(%s, 'mikkoo')", (pgq_queue,))

    assert client.get("/health/").status_code == 200  # from the cache: the sources are not asked again
    cache.clear()
    assert client.get("/health/").json()["queues"][queue.name] == {"healthy": False}
    services.sql(source_dsn, "SELECT pgq.register_consumer(%s, 'mikkoo')", (pgq_queue,))


def test_live_says_the_process_answers_and_reaches_djangos_database(client):
    response = client.get("/health/live")

    assert response.status_code == 200 and response.json() == {"live": True}


def test_ready_needs_a_worker_seen_lately_beats_sweep_and_celerys_broker(client, source_dsn, pgq_queue, broker):
    services.tick(source_dsn, pgq_queue)
    queue = add_queue(pgq_queue, source_dsn, broker)

    nobody = client.get("/health/ready", **AUTHORISED)
    anonymous = client.get("/health/ready")

    assert nobody.status_code == anonymous.status_code == 503
    service = nobody.json()["service"]
    assert service["django_database"] == "ok" and service["celery_broker"] == "ok" and service["workers"] == []
    assert service["problems"][0].startswith("no worker seen within 10 s")
    assert service["problems"][1].startswith("beat's sweep last ran never")
    assert nobody.json()["queues"][queue.name]["healthy"] is True
    assert anonymous.json() == {"healthy": False, "service": {"healthy": False},
                                "queues": {queue.name: {"healthy": True}}}

    worker_heartbeat("w1@relay-host", timezone.now(), watching=1)
    assert claim_sweep(timezone.now())
    ready = client.get("/health/ready", **AUTHORISED)

    assert ready.status_code == 200, ready.json()
    assert ready.json()["service"]["workers"] == ["w1@relay-host"]
    assert services.manage("relay_health", "--ready").returncode == 0


def test_ready_answers_within_its_deadline_when_celerys_broker_never_does(client, settings):
    settings.RELAY_HEALTH_DEADLINE_SECONDS = 0.5
    with services.silent_listener() as port:
        settings.CELERY_BROKER_URL = f"amqp://relay:s3cret-celery@127.0.0.1:{port}//"
        started = time.monotonic()
        response = client.get("/health/ready", **AUTHORISED)
        took = time.monotonic() - started

    assert response.status_code == 503
    assert "Celery's broker: no answer within 0.5 s (still checking)" in response.json()["service"]["problems"]
    assert "s3cret-celery" not in response.content.decode()
    print(f"/health/ready with a silent broker answered in {took:.2f} s")
