"""A quiet log: routine lines of the relay's own work wait for DEBUG; batches, errors, start and stop stay at INFO."""
from __future__ import annotations

import json
import logging
import re
import time

import pytest

from relay.models import RelayedQueue
from relay.ops.logfilters import EmptyBatchLines, RoutineTaskLines
from relay.runs.registration import register_consumers

from . import services
from .processes import Worker, wait_for

ROUTINE = ["relay.sweep", "relay.relay_slice"]


def record(logger: str, message: str, *args, **extra) -> logging.LogRecord:
    return logging.getLogger(logger).makeRecord(logger, logging.INFO, __file__, 1, message, args, None, extra=extra)


@pytest.fixture
def debug_off():
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    yield root
    root.setLevel(level)


def test_celery_lines_about_routine_tasks_wait_for_debug(debug_off):
    quiet = RoutineTaskLines(ROUTINE)
    received = record("celery.worker.strategy", "Task %(name)s[%(id)s] received",
                      data={"name": "relay.sweep", "id": "x"})
    succeeded = record("celery.app.trace", "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
                       data={"name": "relay.relay_slice", "id": "x", "runtime": 0.1, "return_value": None})
    sent = record("celery.beat", "Scheduler: Sending due task %s (%s)", "relay-sweep", "relay.sweep")
    other = record("celery.app.trace", "Task %(name)s[%(id)s] succeeded", data={"name": "shop.send_mail", "id": "y"})

    assert not quiet.filter(received) and not quiet.filter(succeeded) and not quiet.filter(sent)
    assert quiet.filter(other)  # someone else's task keeps Celery's line

    debug_off.setLevel(logging.DEBUG)
    again = record("celery.beat", "Scheduler: Sending due task %s (%s)", "relay-sweep", "relay.sweep")
    assert quiet.filter(again) and again.levelname == "DEBUG"


def test_errors_of_routine_tasks_and_batches_with_events_stay(debug_off):
    failed = record("celery.app.trace", "Task %(name)s[%(id)s] raised unexpected: %(exc)s",
                    data={"name": "relay.sweep", "id": "x", "exc": "boom"})
    failed.levelno, failed.levelname = logging.ERROR, "ERROR"
    assert RoutineTaskLines(ROUTINE).filter(failed)

    empty = record("relay.engine.amqp_target", "queue=%s batch=%d events=%d", "orders", 7, 0, events=0)
    full = record("relay.engine.amqp_target", "queue=%s batch=%d events=%d", "orders", 8, 5, events=5)
    assert not EmptyBatchLines().filter(empty)
    assert EmptyBatchLines().filter(full) and full.levelname == "INFO"


def test_settings_put_the_filters_on_the_loggers_that_write_those_lines():
    for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace"):
        assert any(isinstance(f, RoutineTaskLines) and "relay.sweep" in f.tasks
                   for f in logging.getLogger(name).filters), name
    assert any(isinstance(f, EmptyBatchLines) for f in logging.getLogger("relay.engine.amqp_target").filters)


LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d ")


def log_lines(text: str) -> list[str]:
    """The worker's log records (Celery's format), not the banner it prints at start."""
    return [line for line in text.splitlines() if LOG_LINE.match(line)]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_idle_worker_writes_a_few_lines_a_minute_and_a_batch_still_its_line(
        tmp_path, pgqd, celery_queue, broker, source_dsn, exchange, bind_queue, amqp):
    names = [services.unique("idle") for _ in range(3)]
    queues = [RelayedQueue.objects.create(name=name.replace("_", "-"), queue_name=name, source_url=source_dsn,
                                          connection=broker) for name in names]
    assert all(r.error is None for r in register_consumers(queues))  # as the admin does on save
    target = bind_queue(exchange)
    worker = Worker(tmp_path, celery_queue)
    try:
        wait_for(lambda: "relay worker ready: 3 enabled queues on 1 source database" in worker.log(), timeout=60,
                 what="the worker's start line")
        time.sleep(5)  # the start's own lines (mingle, the first sweeps) are behind us
        before = len(log_lines(worker.log()))
        time.sleep(60)  # pgqd ticks each idle queue once in it; the sweep runs 30 times, the sampler once
        idle = log_lines(worker.log())[before:]
        print(f"{len(idle)} log lines in an idle minute:", *idle, sep="\n  ")
        assert len(idle) <= 5, idle

        services.insert_events(source_dsn, names[0], [("k", str(n), exchange, "", "", "") for n in range(3)])
        assert len(services.consume(amqp, target, 3, timeout=30)) == 3
        batch_line = wait_for(lambda: [line for line in log_lines(worker.log())
                                       if f"queue={queues[0].name} batch=" in line], timeout=10,
                              what="the batch's log line")
        assert len(batch_line) == 1 and "events=3 published=3" in batch_line[0], batch_line
    finally:
        worker.stop()
    assert "relay worker stopped" in worker.log()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_with_log_format_json_the_worker_writes_one_json_object_per_line(tmp_path, celery_queue):
    worker = Worker(tmp_path, celery_queue, LOG_FORMAT="json")
    try:
        wait_for(lambda: "relay worker ready" in worker.log(), timeout=60, what="the worker's start line")
    finally:
        worker.stop()
    # Celery prints a banner at start, not through logging; every log record is a JSON object.
    records = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    assert not log_lines(worker.log())
    assert {"relay.scheduling.lifecycle"} <= {record["logger"] for record in records}
    assert any(record["message"].startswith("relay worker ready") for record in records)
    assert any(record["message"].startswith("relay worker stopped") for record in records)
