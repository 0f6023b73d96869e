"""Operating the relay: Prometheus metrics, statsd, JSON logs and RabbitMQ failover, on the real services."""
from __future__ import annotations

import dataclasses
import json
import logging
import socket

import pytest
from prometheus_client.parser import text_string_to_metric_families

from relay.amqp.broker import BrokerSettings
from relay.core.errors import RelayError
from relay.engine.targets import engine_for
from relay.models import BrokerConnection, RelayedQueue
from relay.runs.run_queue import relay_queue

from . import services
from .processes import Worker, wait_for


def add_queue(queue_name, source_dsn, connection, **fields):
    return RelayedQueue.objects.create(name=services.unique("oq").replace("_", "-"), queue_name=queue_name,
                                       source_url=source_dsn, connection=connection, retry_delay=0, **fields)


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.content.decode())
            for sample in family.samples}


def write_events(source_dsn, queue, exchange, good: int, poison: int = 0):
    rows = [("ops.event", f"event-{n}", exchange, "", "", "") for n in range(good)]
    rows += [("ops.event", "poison", exchange, "", "{not json", "") for _ in range(poison)]
    services.insert_events(source_dsn, queue, rows)
    services.tick(source_dsn, queue)


@pytest.mark.django_db
def test_metrics_count_what_the_relay_did(client, source_dsn, pgq_queue, broker, exchange, bind_queue):
    bind_queue(exchange)
    queue = add_queue(pgq_queue, source_dsn, broker)
    write_events(source_dsn, pgq_queue, exchange, good=40, poison=2)

    relay_queue(queue)
    write_events(source_dsn, pgq_queue, exchange, good=10)
    relay_queue(queue)

    metrics = scrape(client)
    label = (("queue", queue.name),)
    assert metrics[("mikkoo_relay_events_published_total", label)] == 50
    assert metrics[("mikkoo_relay_events_dead_lettered_total", label)] == 2
    assert metrics[("mikkoo_relay_events_retried_total", label)] == 0
    assert metrics[("mikkoo_relay_batches_total", label)] == 2
    assert metrics[("mikkoo_relay_batch_duration_seconds_count", label)] == 2
    assert metrics[("mikkoo_relay_confirm_wait_seconds_count", label)] == 2
    assert metrics[("mikkoo_relay_confirms_outstanding", label)] == 0
    assert metrics[("mikkoo_relay_connection_up", (("connection", "source"), *label))] == 1
    assert metrics[("mikkoo_relay_connection_up", (("connection", "target"), *label))] == 1
    # PgQ's gauges, asked at scrape time.
    assert metrics[("mikkoo_relay_source_up", label)] == 1
    assert 0 <= metrics[("mikkoo_relay_consumer_lag_seconds", label)] < 60
    assert 0 <= metrics[("mikkoo_relay_last_tick_age_seconds", label)] < 60
    assert ("mikkoo_relay_events_pending", label) in metrics


@pytest.mark.django_db
def test_metrics_show_a_broken_connection(client, source_dsn, pgq_queue):
    down = BrokerConnection.objects.create(name="down", hosts="127.0.0.1:1")
    queue = add_queue(pgq_queue, source_dsn, down)
    unreachable = add_queue("orders", "postgres://relay:pw@127.0.0.1:1/app", down)
    write_events(source_dsn, pgq_queue, "", good=1)
    for broken in (queue, unreachable):
        with pytest.raises(RelayError, match=r"cannot connect|connecting failed"):
            relay_queue(broken)

    metrics = scrape(client)
    assert metrics[("mikkoo_relay_connection_up", (("connection", "target"), ("queue", queue.name)))] == 0
    assert metrics[("mikkoo_relay_connection_up", (("connection", "source"), ("queue", unreachable.name)))] == 0
    assert metrics[("mikkoo_relay_source_up", (("queue", unreachable.name),))] == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_web_app_shows_the_prefork_workers_counters(
        client, settings, tmp_path, celery_queue, broker, source_dsn, exchange, bind_queue, amqp):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    target = bind_queue(exchange)
    name = services.unique("wq")
    queue = RelayedQueue.objects.create(name=name.replace("_", "-"), queue_name=name, source_url=source_dsn,
                                        connection=broker, retry_delay=1)
    worker = Worker(tmp_path, celery_queue, PROMETHEUS_MULTIPROC_DIR=str(directory))
    try:
        wait_for(lambda: services.sql(source_dsn, "SELECT 1 FROM pgq.get_consumer_info() WHERE queue_name = %s",
                                      (name,)), timeout=30, what="the consumer to be registered")
        services.insert_events(source_dsn, name, [("a.b", f"w-{n}", exchange, "", "", "") for n in range(30)])
        got: list = []
        wait_for(lambda: got.extend(services.drain(amqp, target)) or len(got) >= 30, timeout=30, what="30 events")
    finally:
        worker.stop()
    settings.PROMETHEUS_MULTIPROC_DIR = str(directory)

    metrics = scrape(client)

    assert metrics[("mikkoo_relay_events_published_total", (("queue", queue.name),))] == 30
    assert metrics[("mikkoo_relay_batches_total", (("queue", queue.name),))] >= 1


@pytest.mark.django_db
def test_statsd_receives_the_counters(settings, source_dsn, pgq_queue, broker, exchange, bind_queue):
    bind_queue(exchange)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as statsd:
        statsd.bind(("127.0.0.1", 0))
        statsd.settimeout(5)
        settings.STATSD_HOST, settings.STATSD_PORT = "127.0.0.1", statsd.getsockname()[1]
        settings.STATSD_PREFIX = "relay"
        queue = add_queue(pgq_queue, source_dsn, broker)
        write_events(source_dsn, pgq_queue, exchange, good=7, poison=1)

        relay_queue(queue)

        lines = statsd.recv(65536).decode().splitlines()
    base = f"relay.{queue.name}"
    assert f"{base}.batches:1|c" in lines
    assert f"{base}.events_published:7|c" in lines
    assert f"{base}.events_retried:0|c" in lines
    assert f"{base}.events_dead_lettered:1|c" in lines
    assert any(line.startswith(f"{base}.batch_duration:") and line.endswith("|ms") for line in lines)


def test_json_logs_are_one_parseable_object_per_line_with_the_batch_fields(
        queue_settings, source_dsn, pgq_queue, exchange, bind_queue, json_log):
    bind_queue(exchange)
    write_events(source_dsn, pgq_queue, exchange, good=3, poison=1)
    lines = json_log("relay.engine.amqp_target")

    engine_for(queue_settings).run()

    records = [json.loads(line) for line in lines]
    assert all("\n" not in line for line in lines)
    [batch] = [r for r in records if "batch" in r and r["level"] == "INFO"]
    assert batch["queue"] == pgq_queue and batch["logger"] == "relay.engine.amqp_target"
    assert (batch["events"], batch["published"], batch["retried"], batch["dead_lettered"]) == (4, 3, 0, 1)
    assert isinstance(batch["ms"], int) and batch["time"].endswith("+00:00")
    [poison] = [r for r in records if r["level"] == "ERROR"]
    assert poison["queue"] == pgq_queue and isinstance(poison["event"], int)


def test_log_format_json_is_taken_from_the_environment():
    command = services.manage("check", env={"LOG_FORMAT": "json", "DEBUG": "0"})
    assert command.returncode == 0
    bad = services.manage("check", env={"LOG_FORMAT": "xml"})
    assert bad.returncode != 0 and "LOG_FORMAT must be plain or json" in bad.stderr


def test_a_down_first_host_fails_over_to_the_next_and_names_it(
        queue_settings, source_dsn, pgq_queue, exchange, bind_queue, amqp, caplog):
    target = bind_queue(exchange)
    write_events(source_dsn, pgq_queue, exchange, good=20)
    failing_over = dataclasses.replace(queue_settings.target, broker=BrokerSettings(hosts=("127.0.0.1:1", "127.0.0.1")))
    settings = dataclasses.replace(queue_settings, target=failing_over)

    with caplog.at_level(logging.WARNING, logger="relay.amqp.publisher"):
        result = engine_for(settings).run()

    assert result.published == 20
    assert len(services.drain(amqp, target, expected=20)) == 20
    [failover] = [r.getMessage() for r in caplog.records if "failover" in r.getMessage()]
    assert "127.0.0.1:1:" in failover and "Connection refused" in failover
    assert "connected to 127.0.0.1:5672 instead" in failover
