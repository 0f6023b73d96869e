"""One bad value breaks only its own queue: every page, endpoint and command answers and shows the good ones.

Each bad value is stored as it might be by an older version, a shell or a
database edit (bypassing the admin's validation), beside a queue that works
against the real PostgreSQL and RabbitMQ.
"""
from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from relay.models import BrokerConnection, DeadLetter, RelayedQueue

from . import services

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "bad-config-health-token"
SECRET = "Zq7-NeverShown-Pw"


def _queue(name, **fields):
    return RelayedQueue.objects.create(name=name, **fields)


# Each case: a name and what to store: (queue fields, connection fields or None for the good connection).
BAD = {
    "ipv6-url": ({"source_url": f"postgres://relay:{SECRET}@[::1/app"}, None),
    "port-99999": ({}, {"port": 99999, "password": SECRET}),
    "missing-ca-file": ({}, {"use_tls": True, "ca_certs": "/nonexistent/relay-ca.pem", "password": SECRET}),
    "nul-in-name": ({"queue_name": "orders\x00evil"}, None),
    "newline-in-consumer": ({"consumer_name": "mikkoo\nx"}, None),
    "unset-env": ({}, {"password": "env:RELAY_TEST_NEVER_SET_VARIABLE"}),
    "int4-retry-delay": ({"retry_delay": 3_000_000_000}, None),
    "undecodable-amqp-url": ({}, {"url": f"amqp://relay:{SECRET}@rabbit:99999/%2f"}),
    "bad-host-list": ({}, {"hosts": "rabbit-1,,[::1", "password": SECRET}),
}


@pytest.fixture
def queues(source_dsn, pgq_queue, broker):
    """The good queue, and one queue per bad value (each with its own connection when the value is one of it)."""
    services.tick(source_dsn, pgq_queue)
    good = _queue("good-queue", queue_name=pgq_queue, source_url=source_dsn, connection=broker, retry_delay=0)
    bad = {}
    for name, (queue_fields, connection_fields) in BAD.items():
        connection = broker
        if connection_fields is not None:
            connection = BrokerConnection.objects.create(name=f"{name}-rabbit",
                                                         **{"hosts": "127.0.0.1", **connection_fields})
        fields = {"queue_name": pgq_queue, "source_url": source_dsn, "connection": connection,
                  "consumer_name": f"c-{name}", **queue_fields}
        bad[name] = _queue(name, **fields)
    DeadLetter.objects.create(queue=bad["nul-in-name"], source_id=1, event_id=1, reason="x", failures=1,
                              dead_lettered_at="2026-01-01T00:00:00Z")
    cache.clear()
    yield good, bad
    cache.clear()


@pytest.fixture
def health_settings(settings):
    settings.RELAY_HEALTH_TOKEN = TOKEN
    settings.RELAY_HEALTH_DEADLINE_SECONDS = 30  # a loaded test machine must not turn the good queue unhealthy


def test_every_admin_page_answers_and_marks_the_bad_ones(queues, admin_client):
    good, bad = queues
    lists = {
        reverse("admin:relay_relayedqueue_changelist"): good.name,
        reverse("admin:relay_brokerconnection_changelist"): good.connection.name,
        reverse("admin:relay_auditstatus_changelist"): good.name,
        reverse("admin:relay_deadletter_changelist"): "nul-in-name",
    }
    for url, shown in lists.items():
        response = admin_client.get(url)
        page = response.content.decode()
        assert response.status_code == 200, url
        assert shown in page, url
        assert SECRET not in page
    queue_list = admin_client.get(reverse("admin:relay_relayedqueue_changelist")).content.decode()
    assert queue_list.count("invalid: ") >= len(BAD)
    for queue in [good, *bad.values()]:
        for url in (reverse("admin:relay_relayedqueue_change", args=[queue.pk]),
                    reverse("admin:relay_brokerconnection_change", args=[queue.connection.pk]),
                    reverse("admin:relay_auditstatus_outstanding", args=[queue.name])):
            response = admin_client.get(url)
            assert response.status_code == 200, url
            assert SECRET not in response.content.decode()
    audit_page = admin_client.get(reverse("admin:relay_auditstatus_changelist")).content.decode()
    assert "configuration is invalid" in audit_page


def test_health_metrics_and_relay_health_report_the_bad_ones_and_check_the_good_one(
        queues, client, health_settings):
    good, _ = queues

    anonymous = client.get("/health/")
    detailed = client.get("/health/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    metrics = client.get("/metrics")

    assert anonymous.status_code == detailed.status_code == 503
    assert anonymous.json()["queues"][good.name] == {"healthy": True}
    report = detailed.json()["queues"]
    assert report[good.name]["healthy"] is True and report[good.name]["source"] == "ok"
    for name in BAD:
        assert report[name]["healthy"] is False, name
        assert report[name]["problems"], name
    assert report["unset-env"]["problems"] == [
        "invalid configuration: RabbitMQ connection unset-env-rabbit: password: the environment variable "
        "RELAY_TEST_NEVER_SET_VARIABLE is not set (the field says env:RELAY_TEST_NEVER_SET_VARIABLE)"]
    assert "port" in report["port-99999"]["problems"][0]
    assert "no such file on this host" in report["missing-ca-file"]["problems"][0]
    assert "IPv6" in report["ipv6-url"]["problems"][0]
    assert "control characters" in report["nul-in-name"]["problems"][0]
    assert metrics.status_code == 200
    text = metrics.content.decode()
    assert f'mikkoo_relay_source_up{{queue="{good.name}"}} 1.0' in text
    assert f'mikkoo_relay_config_valid{{queue="{good.name}"}} 1.0' in text
    assert 'mikkoo_relay_config_valid{queue="port-99999"} 0.0' in text
    for body in (anonymous.content, detailed.content, metrics.content):
        assert SECRET not in body.decode()

    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match=f"{len(BAD)} of {len(BAD) + 1} queues unhealthy"):
        call_command("relay_health", stdout=out, stderr=err)
    assert f"{good.name}: ok" in out.getvalue()
    assert "ipv6-url: UNHEALTHY: invalid configuration" in err.getvalue()
    assert SECRET not in out.getvalue() + err.getvalue()


@pytest.mark.parametrize("name", sorted(BAD))
def test_relay_once_gives_one_line_naming_what_is_wrong(queues, name):
    with pytest.raises(CommandError) as failed:
        call_command("relay_once", name, stdout=StringIO())

    message = str(failed.value)
    assert "\n" not in message and SECRET not in message
    assert message.startswith(f"{name}: invalid configuration: "), message


def test_the_good_queue_still_relays(queues, source_dsn, exchange, bind_queue, amqp):
    good, _ = queues
    target = bind_queue(exchange)
    services.insert_events(source_dsn, good.queue_name, [("k", "x", exchange, "", "", "")] * 3)
    services.tick(source_dsn, good.queue_name)

    call_command("relay_once", good.name, stdout=StringIO())

    assert len(services.drain(amqp, target, expected=3)) == 3


@pytest.fixture
def viewer(django_user_model, client):
    """A staff user who may only view the relay's pages."""
    user = django_user_model.objects.create_user("viewer", password="viewer-pass-123", is_staff=True)
    codenames = ["view_brokerconnection", "view_relayedqueue", "view_deadletter", "view_audit_status"]
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="relay", codename__in=codenames))
    client.force_login(user)
    return client


def test_view_only_staff_opens_every_page_and_sees_no_secret(queues, viewer, source_dsn):
    good, bad = queues
    secret_connection = BrokerConnection.objects.create(
        name="with-secrets", url=f"amqp://relay:{SECRET}@rabbit.example.com/%2f", key_password=SECRET + "-key")
    good.connection = secret_connection
    good.save()
    letter = DeadLetter.objects.create(queue=good, source_id=2, event_id=2, reason="nacked", failures=1,
                                       event_data="d" * 50_000, dead_lettered_at="2026-01-01T00:00:00Z")
    pages = [reverse("admin:index"), reverse("admin:app_list", args=["relay"])]
    for model in ("relayedqueue", "brokerconnection", "deadletter"):
        pages.append(reverse(f"admin:relay_{model}_changelist"))
    pages += [reverse("admin:relay_relayedqueue_change", args=[q.pk]) for q in [good, *bad.values()]]
    pages += [reverse("admin:relay_brokerconnection_change", args=[c.pk]) for c in BrokerConnection.objects.all()]
    pages += [reverse("admin:relay_deadletter_change", args=[letter.pk]),
              reverse("admin:relay_deadletter_download", args=[letter.pk, "event_data"]),
              reverse("admin:relay_auditstatus_changelist"),
              reverse("admin:relay_auditstatus_outstanding", args=[good.name]),
              reverse("admin:relay_relayedqueue_history", args=[good.pk])]
    for url in pages:
        response = viewer.get(url)
        assert response.status_code == 200, url
        body = response.content.decode(errors="replace")
        assert SECRET not in body, url
    page = viewer.get(reverse("admin:relay_brokerconnection_change", args=[secret_connection.pk])).content.decode()
    assert "a value is stored (encrypted, not shown)" in page
    assert "amqp://relay:***@rabbit.example.com/%2f" in page
    # Viewing is not changing.
    assert viewer.post(reverse("admin:relay_brokerconnection_change", args=[secret_connection.pk]),
                       {"name": "renamed"}).status_code == 403
