"""``manage.py relay_once``: what an operator sees, run as a real process."""
from __future__ import annotations

import re

import pytest

from relay import __version__
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


def test_version_is_the_relays_own():
    process = services.manage("relay_once", "--version", timeout=30)

    assert (process.returncode, process.stdout) == (0, f"{__version__}\n"), process.stderr


def test_an_idle_queue_says_nothing_was_ready(source_dsn, pgq_queue):
    queue = configure(source_dsn, pgq_queue)

    process = services.manage("relay_once", queue.name, timeout=10)

    assert process.returncode == 0, process.stderr
    assert process.stdout == f"{queue.name}: nothing ready\n"


def test_a_busy_queue_says_so_and_exits_0(source_dsn, pgq_queue):
    from relay.pgq.consumer import PgqConsumer

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


def insert_many(dsn: str, queue: str, exchange: str, count: int) -> None:
    """``count`` events in one statement and one transaction, as one batch after a tick."""
    services.sql(dsn, "SELECT count(pgq.insert_event(%s, 'k', n::text, %s, '', '', '')) "
                      "FROM generate_series(1, %s) AS n", (queue, exchange, count))
    services.tick(dsn, queue)


class Recorder:
    """A progress display that keeps what it was shown."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def update(self, progress) -> None:
        self.seen.append((progress.events, progress.batches))

    def close(self, progress) -> None:
        pass


def test_progress_moves_window_by_window_inside_one_large_batch(source_dsn, pgq_queue, exchange, bind_queue, amqp):
    from relay.management.progress import Progress
    from relay.runs.run_queue import relay_queue

    queue = configure(source_dsn, pgq_queue)
    target = bind_queue(exchange)
    insert_many(source_dsn, pgq_queue, exchange, 20_000)
    recorder = Recorder()

    result = relay_queue(queue, observers=(Progress(recorder),))

    assert (result.batches, result.published) == (1, 20_000)
    during = [events for events, batches in recorder.seen if batches == 0]
    # A first window of 250, then windows of 2,000: the bar moves before the batch is done, every window.
    assert during == [250, *range(2250, 20_000, 2000), 20_000]
    assert recorder.seen[-1] == (20_000, 1)
    assert services.message_count(amqp, target) == 20_000


def test_off_a_terminal_a_line_every_few_seconds_and_the_summary_on_stdout(source_dsn, pgq_queue, exchange,
                                                                           bind_queue):
    queue = configure(source_dsn, pgq_queue)
    bind_queue(exchange)
    insert_many(source_dsn, pgq_queue, exchange, 20_000)

    process = services.manage("relay_once", queue.name, "--progress-every", "0.1", timeout=120)

    assert process.returncode == 0, process.stderr
    assert re.fullmatch(rf"{queue.name}: 1 batches, 20000 published, .*\n", process.stdout)
    lines = [line for line in process.stderr.splitlines() if "events relayed" in line]
    counts = [int(re.match(rf"{queue.name}: ([\d,]+) events relayed, 0 batches finished, [\d,]+ events/s, \d+ s$",
                           line).group(1).replace(",", "")) for line in lines if "0 batches finished" in line]
    # Within the one batch, window by window (its last window settles before the batch is finished).
    assert len([count for count in counts if count < 20_000]) >= 2, process.stderr
    assert counts == sorted(counts) and counts[-1] <= 20_000


def test_on_a_terminal_a_bar_with_events_rate_and_batches(source_dsn, pgq_queue, exchange, bind_queue):
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    queue = configure(source_dsn, pgq_queue)
    bind_queue(exchange)
    insert_many(source_dsn, pgq_queue, exchange, 5_000)
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))  # a terminal 120 wide
    env = {**os.environ, "DATABASE_URL": services.django_database_url(), "COLUMNS": "120"}
    process = subprocess.run([sys.executable, "manage.py", "relay_once", queue.name], cwd=services_root(),
                             env=env, stdout=subprocess.PIPE, stderr=terminal, text=True, timeout=120)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)

    assert process.returncode == 0
    assert process.stdout.startswith(f"{queue.name}: 1 batches, 5000 published")
    bar = shown.decode(errors="replace").rstrip().split("\r")[-1]
    # PgQ's estimate was the bar's end; the bar ends where the run did: all of it, at a rate, with the batch.
    assert re.search(r"100%\|.*\| 5\.00k/5\.00k \[.*events/s, batches=1\]", bar), shown


def services_root():
    from .processes import ROOT

    return ROOT


def test_json_for_scripts(source_dsn, pgq_queue, exchange, bind_queue):
    import json

    queue = configure(source_dsn, pgq_queue)
    bind_queue(exchange)
    insert_many(source_dsn, pgq_queue, exchange, 10)

    relayed = services.manage("relay_once", queue.name, "--json")
    idle = services.manage("relay_once", queue.name, "--json")
    unknown = services.manage("relay_once", "no-such-queue", "--json")

    assert relayed.returncode == 0, relayed.stderr
    summary = json.loads(relayed.stdout)
    assert summary["outcome"] == "relayed" and summary["error"] is None
    assert (summary["queue"], summary["batches"], summary["published"], summary["events"]) == (queue.name, 1, 10, 10)
    assert {"retried", "dead_lettered", "seconds", "events_per_second", "busy", "cut_short"} <= set(summary)
    assert json.loads(idle.stdout)["outcome"] == "nothing ready" and idle.returncode == 0
    assert unknown.returncode == 1
    error = json.loads(unknown.stdout)
    assert error["outcome"] == "error" and "no relayed queue named 'no-such-queue'" in error["error"]
    assert_one_clean_error_line(unknown, "no relayed queue named 'no-such-queue'")
