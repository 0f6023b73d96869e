"""An operator in headless Chromium: configure a queue in the admin, relay it, read its audit verdict."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from relay.models import RelayedQueue
from relay.runs.run_queue import relay_queue

from . import services
from .browser import ARTIFACTS, fill, log_in


def save(browser) -> None:
    """Submit an admin form and wait for the changelist's success message."""
    browser.find_element(By.NAME, "_save").click()
    WebDriverWait(browser, 10).until(expected_conditions.presence_of_element_located(
        (By.CSS_SELECTOR, ".messagelist .success")))


@pytest.mark.django_db(transaction=True)
def test_an_operator_configures_a_queue_relays_it_and_reads_all_delivered(
        browser, live_server, django_user_model, audited_dsn, audited_queue, exchange, bind_queue):
    django_user_model.objects.create_superuser("operator", "operator@example.com", "correct horse")
    bind_queue(exchange)
    name = audited_queue.replace("_", "-")
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        browser.get(f"{live_server.url}/admin/login/")
        fill(browser, {"username": "operator", "password": "correct horse"})
        browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        WebDriverWait(browser, 10).until(expected_conditions.title_contains("Site administration"))

        browser.get(f"{live_server.url}/admin/relay/brokerconnection/add/")
        fill(browser, {"name": f"{name}-rabbit", "hosts": "127.0.0.1", "password": "guest"})
        save(browser)

        browser.get(f"{live_server.url}/admin/relay/relayedqueue/add/")
        fill(browser, {"name": name, "queue_name": audited_queue, "source_url": audited_dsn, "retry_delay": "0"})
        Select(browser.find_element(By.NAME, "connection")).select_by_visible_text(f"{name}-rabbit")
        save(browser)

        services.insert_audited_events(audited_dsn, audited_queue, exchange, "order.created", ["1", "2", "3"])
        services.tick(audited_dsn, audited_queue)
        assert relay_queue(RelayedQueue.objects.get(name=name)).published == 3

        browser.get(f"{live_server.url}/admin/")
        browser.find_element(By.LINK_TEXT, "Audit status").click()
        row = WebDriverWait(browser, 10).until(expected_conditions.presence_of_element_located(
            (By.ID, f"queue-{name}")))
        verdict = row.find_element(By.CSS_SELECTOR, ".verdict").text
        reason = row.find_element(By.CSS_SELECTOR, ".reason").text
        confirmed = row.find_element(By.CSS_SELECTOR, ".confirmed").text
    finally:
        browser.save_screenshot(str(ARTIFACTS / "audit_status.png"))

    assert verdict == "all delivered"
    assert reason == "nothing outstanding: every audited event was confirmed by RabbitMQ"
    assert confirmed == "3"


@pytest.mark.django_db(transaction=True)
def test_an_operator_logs_in_and_reads_each_queue_on_the_overview(
        browser, live_server, django_user_model, source_dsn, pgq_queue, exchange, bind_queue):
    from django.utils import timezone

    from relay.engine.connections import OwnConnections
    from relay.models import BrokerConnection
    from relay.runs.registration import register_consumers
    from relay.scheduling.samples import record_samples

    django_user_model.objects.create_superuser("operator", "operator@example.com", "correct horse")
    bind_queue(exchange)
    name = pgq_queue.replace("_", "-")
    broker = BrokerConnection.objects.create(name=f"{name}-rabbit", hosts="127.0.0.1")
    queue = RelayedQueue.objects.create(name=name, queue_name=pgq_queue, source_url=source_dsn, connection=broker)
    register_consumers([queue])
    minute_ago = timezone.now() - timezone.timedelta(minutes=1)
    record_samples(OwnConnections(), now=minute_ago - timezone.timedelta(minutes=1))
    services.insert_events(source_dsn, pgq_queue, [("k", str(n), exchange, "", "", "") for n in range(30)])
    services.tick(source_dsn, pgq_queue)
    assert relay_queue(queue).published == 30
    record_samples(OwnConnections(), now=minute_ago)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        log_in(browser, live_server, "operator", "not the password")
        error = WebDriverWait(browser, 10).until(expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, ".errornote"))).text
        log_in(browser, live_server, "operator", "correct horse")
        WebDriverWait(browser, 10).until(expected_conditions.title_contains("Site administration"))

        browser.find_element(By.LINK_TEXT, "Queue overview").click()
        row = WebDriverWait(browser, 10).until(expected_conditions.presence_of_element_located(
            (By.ID, f"queue-{name}")))
        state = row.find_element(By.CSS_SELECTOR, ".queue-state").text
        rate = row.find_element(By.CSS_SELECTOR, ".rate").text
        pending = row.find_element(By.CSS_SELECTOR, ".pending").text
        chart = row.find_element(By.CSS_SELECTOR, "svg.relay-chart")
        chart_size = chart.size
        lines = row.find_elements(By.CSS_SELECTOR, "svg.relay-chart path")
        summary = browser.find_element(By.ID, "overview-summary").text
    finally:
        browser.save_screenshot(str(ARTIFACTS / "queue_overview.png"))

    assert "Please enter the correct username and password" in error
    assert state == "healthy"
    assert rate == "0.5"  # 30 events in the minute between the two samples
    assert pending == "0"
    assert chart_size["width"] > 100 and chart_size["height"] > 20
    assert [line.get_attribute("class") for line in lines] == ["rate area", "lag line"]
    assert "1 healthy" in summary
