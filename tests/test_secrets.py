"""Passwords never appear in logs (DEBUG included), admin pages, command output or error messages."""
from __future__ import annotations

import logging
import subprocess

import pytest
from django.core.management import call_command
from django.urls import reverse

from relay.broker import BrokerSettings
from relay.errors import BrokerUnavailable
from relay.models import BrokerConnection, RelayedQueue
from relay.publisher import Publisher

from . import services

pytestmark = pytest.mark.django_db

RABBIT_SECRET = "Rabbit-S3cret-4711"
SOURCE_SECRET = "Pg-S3cret-0815"


@pytest.fixture
def rabbit_user():
    """A RabbitMQ user of the test's own with a real password (guest's is no secret)."""
    name = services.unique("relay_user")
    subprocess.run(["rabbitmqctl", "-q", "add_user", name, RABBIT_SECRET], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", name, ".*", ".*", ".*"], check=True,
                   capture_output=True)
    yield name
    subprocess.run(["rabbitmqctl", "-q", "delete_user", name], capture_output=True)


@pytest.fixture
def configured(rabbit_user, source_dsn, pgq_queue):
    connection = BrokerConnection.objects.create(name="secret-rabbit", hosts="127.0.0.1", username=rabbit_user,
                                                 password=RABBIT_SECRET, key_password="KeyPass-123")
    # PostgreSQL here trusts local connections, so the password is carried but not needed.
    source_url = source_dsn.replace("postgres@", f"postgres:{SOURCE_SECRET}@")
    queue = RelayedQueue.objects.create(name=pgq_queue.replace("_", "-"), queue_name=pgq_queue,
                                        source_url=source_url, connection=connection, retry_delay=0)
    return connection, queue


def assert_no_secret(text: str) -> None:
    for secret in (RABBIT_SECRET, SOURCE_SECRET, "KeyPass-123"):
        assert secret not in text


def test_relaying_with_debug_logging_never_logs_a_password(configured, source_dsn, pgq_queue, exchange,
                                                           bind_queue, amqp, caplog, capsys):
    _, queue = configured
    target = bind_queue(exchange)
    services.insert_events(source_dsn, pgq_queue, [("k", "x", exchange, "", "", "")] * 5)
    services.tick(source_dsn, pgq_queue)
    caplog.set_level(logging.DEBUG)  # every logger: the relay's, kombu's, py-amqp's, Django's

    call_command("relay_once", queue.name)

    assert len(services.drain(amqp, target, expected=5)) == 5  # the credentials did work
    assert caplog.records, "DEBUG logging captured nothing"
    assert_no_secret(caplog.text + capsys.readouterr().out)


def test_admin_list_and_change_pages_never_show_a_password(configured, admin_client):
    connection, queue = configured
    pages = [
        reverse("admin:relay_brokerconnection_changelist"),
        reverse("admin:relay_brokerconnection_change", args=[connection.pk]),
        reverse("admin:relay_relayedqueue_changelist"),
        reverse("admin:relay_relayedqueue_change", args=[queue.pk]),
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200
        assert_no_secret(response.content.decode())


def test_saving_the_change_form_with_blank_secrets_keeps_them(configured, admin_client):
    connection, _ = configured
    url = reverse("admin:relay_brokerconnection_change", args=[connection.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update(password="", url="", key_password="", name=connection.name)

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    connection.refresh_from_db()
    assert connection.password == RABBIT_SECRET and connection.key_password == "KeyPass-123"


def test_a_failed_connection_error_never_contains_the_password(rabbit_user):
    wrong = BrokerSettings(hosts=("127.0.0.1",), username=rabbit_user, password="Wrong-" + RABBIT_SECRET)
    with pytest.raises(BrokerUnavailable) as raised:
        Publisher(wrong).connect()
    assert "ACCESS_REFUSED" in str(raised.value)
    assert RABBIT_SECRET not in str(raised.value) and RABBIT_SECRET not in repr(raised.value)
