"""No fault leaves a queue stuck, and the operator sees it: real workers, a real PostgreSQL restart, a browser.

Django's own database is on the same PostgreSQL as the source here, as in
production: a restart takes both away at once.
"""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from relay.models import QueueStatus, RelayedQueue
from relay.runs.registration import register_consumers

from . import services
from .browser import ARTIFACTS, log_in
from .processes import Worker, wait_for
from .trickle import Trickle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def django_on_postgresql():
    """A Django database of its own on the PostgreSQL server, migrated: its URL."""
    name = services.unique("mikkoo_django")
    url = services.create_database(name)
    done = services.manage("migrate", "--verbosity", "0", env={"DATABASE_URL": url})
    assert done.returncode == 0, done.stderr
    yield url
    services.drop_database(name)


def test_every_queue_relays_again_soon_after_postgresql_restarts_under_it_and_djangos_database(
        tmp_path, django_on_postgresql, pgqd, celery_queue, source_dsn, exchange, bind_queue, amqp):
    names = [services.unique("rq") for _ in range(6)]
    config = tmp_path / "mikkoo.yml"
    workers = [f"    {name}:\n      postgres_url: {source_dsn}\n      rabbitmq:\n        host: 127.0.0.1\n"
               for name in names]
    config.write_text("Application:\n  workers:\n" + "".join(workers))
    imported = services.manage("import_mikkoo", str(config), env={"DATABASE_URL": django_on_postgresql})
    assert imported.returncode == 0, imported.stderr
    target = bind_queue(exchange)
    worker = Worker(tmp_path, celery_queue, DATABASE_URL=django_on_postgresql)
    trickle = Trickle({name: source_dsn for name in names}, exchange)
    arrived: dict[str, float] = {}

    def collect() -> None:
        for message in services.drain(amqp, target):
            arrived.setdefault(message.body.decode(), time.time())

    try:
        wait_for(lambda: "wake-ups: watching" in worker.log(), timeout=60, what="the worker to watch")
        trickle.start()
        time.sleep(3)
        for _ in range(2):
            services.restart_postgresql()
            restarted = time.time()
            time.sleep(8)
        trickle.stop.set()
        trickle.join()
        wait_for(lambda: collect() or set(trickle.committed) <= set(arrived), timeout=30,
                 what="every committed event, with no queue left stuck")
    finally:
        worker.stop()
    assert set(arrived) <= set(trickle.committed) | trickle.uncertain  # nothing made up
    after = {body: arrived[body] - at for body, at in trickle.committed.items() if at > restarted}
    assert {body.split("/")[0] for body in after} == set(names)  # every queue written to after the restart...
    print(f"{len(trickle.committed)} committed, {len(trickle.uncertain)} uncertain, {len(arrived)} arrived; "
          f"after the last restart the slowest took {max(after.values()):.2f} s")
    log = worker.log()
    assert "raised unexpected" not in log, log[-4000:]  # a task that failed on Django's database is sent again


def test_the_overview_shows_the_workers_and_a_stuck_queue_and_then_its_recovery(
        browser, live_server, django_user_model, tmp_path, pgqd, celery_queue, broker, source_dsn,
        exchange, bind_queue, amqp):
    django_user_model.objects.create_superuser("operator", "operator@example.com", "correct horse")
    name = services.unique("stuck")
    queue = RelayedQueue.objects.create(name=name.replace("_", "-"), queue_name=name, source_url=source_dsn,
                                        connection=broker, retry_delay=1)
    assert register_consumers([queue])[0].error is None
    target = bind_queue(exchange)
    # The fault: a "task queued" mark with no task behind it, as a process killed between marking and
    # sending leaves it. Nothing may be queued for the queue until the mark goes stale.
    worker = Worker(tmp_path, celery_queue, RELAY_QUEUED_TASK_STALE_SECONDS="25")
    try:
        wait_for(lambda: "wake-ups: watching" in worker.log(), timeout=60, what="the worker to watch")
        QueueStatus.objects.filter(queue=queue).update(queued_at=timezone.now() + timedelta(seconds=5))
        services.insert_events(source_dsn, name, [("k", "waited", exchange, "", "", "")])

        log_in(browser, live_server, "operator", "correct horse")
        WebDriverWait(browser, 10).until(expected_conditions.title_contains("Site administration"))

        def row_state() -> str:
            browser.get(f"{live_server.url}/admin/relay/queueoverview/")
            rows = browser.find_elements(By.ID, f"queue-{queue.name}")
            return rows[0].get_attribute("data-state") if rows else "not shown"

        wait_for(lambda: row_state() == "stuck", timeout=30, interval=1, what="the queue to show as stuck")
        workers = browser.find_element(By.ID, "relay-workers").text
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "overview-stuck-queue.png"))
        assert f"w1-{celery_queue}@" in browser.find_element(By.CSS_SELECTOR, ".relay-worker").get_attribute("title")
        assert "seen" in workers and "watching 1 source database" in workers
        assert "last ran" in browser.find_element(By.ID, "relay-sweep").text

        got = wait_for(lambda: services.drain(amqp, target), timeout=60, what="the event once the mark went stale")
        wait_for(lambda: row_state() == "healthy", timeout=15, interval=1, what="the queue to recover")
        browser.save_screenshot(str(ARTIFACTS / "overview-recovered.png"))
    finally:
        worker.stop()
    assert [m.body for m in got] == [b"waited"]
