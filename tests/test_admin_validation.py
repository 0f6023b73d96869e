"""The admin refuses, at save, what could not work: hosts, ports, URLs, TLS options, file paths, names, bounds."""
from __future__ import annotations

import pytest
from django.urls import reverse

from relay.models import BrokerConnection, RelayedQueue

pytestmark = pytest.mark.django_db

CONNECTION = {"name": "checked", "url": "", "hosts": "127.0.0.1", "port": "5672", "vhost": "/", "username": "relay",
              "password": "pw", "heartbeat": "300", "connect_timeout": "5", "confirm_timeout": "30",
              "max_message_size": "134217728", "ca_data": ""}
QUEUE = {"name": "checked", "queue_name": "orders", "source_url": "dbname=app", "consumer_name": "mikkoo",
         "target": "rabbitmq", "enabled": "on", "confirm": "on", "persistent": "on", "max_failures": "10",
         "retry_delay": "10", "wait_duration": "1", "unregister": "on", "target_url": ""}


def errors(admin_client, model, data):
    response = admin_client.post(reverse(f"admin:relay_{model}_add"), data)
    assert response.status_code == 200, "saved although invalid"
    form = response.context["adminform"].form
    return {field: " ".join(messages) for field, messages in form.errors.items()}


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"hosts": "rabbit-1,,rabbit-2"}, "hosts", "an empty host between commas"),
    ({"hosts": "[::1"}, "hosts", "invalid IPv6 address"),
    ({"hosts": "rabbit:99999"}, "hosts", "port out of range (1-65535)"),
    ({"port": "99999"}, "port", "less than or equal to 65535"),
    ({"port": "0"}, "port", "greater than or equal to 1"),
    ({"heartbeat": "70000"}, "heartbeat", "less than or equal to 65535"),
    ({"connect_timeout": "0"}, "connect_timeout", "greater than or equal to 0.1"),
    ({"confirm_timeout": "100000"}, "confirm_timeout", "less than or equal to 3600"),
    ({"url": "http://rabbit/"}, "url", "expected a URL starting with amqp:// or amqps://"),
    ({"url": "amqp://u:p@[::1/"}, "url", "invalid IPv6 address"),
    ({"url": "amqp://u:ab@cd/ef@rabbit/"}, "url", "cannot tell where the password ends"),
    ({"vhost": "a\nb"}, "vhost", "must be one line"),
    ({"username": "re\x00lay"}, "username", "Null characters are not allowed"),  # Django's form says so first
    ({"password": "env:DATABASE_URL"}, "password", "holds one of the relay's own secrets"),
    ({"password": "env:no-such name"}, "password", "env: must be followed by an environment variable name"),
    ({"use_tls": "on", "ca_certs": "/nonexistent/ca.pem"}, "ca_certs", "no such file on this host"),
    ({"use_tls": "on", "ca_certs": "relative/ca.pem"}, "ca_certs", "must be an absolute path"),
    ({"use_tls": "on", "ca_path": "/nonexistent/dir"}, "ca_path", "no such directory on this host"),
    ({"use_tls": "on", "ca_data": "-----BEGIN CERTIFICATE-----"}, "ca_data", "not PEM-encoded CA certificates"),
    ({"use_tls": "on", "tls_protocol": "SSLv2"}, "tls_protocol", "unknown TLS version"),
    ({"use_tls": "on", "ciphers": "NO-SUCH-CIPHER"}, "ciphers", "no cipher can be selected"),
    ({"use_tls": "on", "keyfile": "/etc/hostname"}, "keyfile", "a client key needs its client certificate file"),
    ({"use_tls": "on", "certfile": "/etc/hostname"}, "certfile", "the client certificate and key cannot be loaded"),
])
def test_a_connection_with_an_unusable_value_is_not_saved(admin_client, change, field, message):
    found = errors(admin_client, "brokerconnection", {**CONNECTION, **change})

    assert message in found.get(field, ""), found
    assert not BrokerConnection.objects.exists()


def test_an_unencoded_amqp_url_is_stored_percent_encoded(admin_client):
    response = admin_client.post(reverse("admin:relay_brokerconnection_add"),
                                 {**CONNECTION, "url": "amqp://relay:Rabbit7#Xq?Zeta9/Mu@rabbit:5672/%2f"})

    assert response.status_code == 302
    assert BrokerConnection.objects.get().url == "amqp://relay:Rabbit7%23Xq%3FZeta9%2FMu@rabbit:5672/%2f"


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"queue_name": "orders\nDROP"}, "queue_name", "must be one line"),
    ({"consumer_name": "mik\tkoo"}, "consumer_name", "must be one line"),
    ({"source_url": "postgres://u:p@[::1/db"}, "source_url", "invalid IPv6 address"),
    ({"source_url": "postgres://u:p@db:99999/app"}, "source_url", "port out of range"),
    ({"source_url": "dbname=app password=a b"}, "source_url", "quote a value that holds spaces"),
    ({"source_url": "amqp://guest@rabbit/"}, "source_url", "expected a URL starting with postgres://"),
    ({"retry_delay": "3000000000"}, "retry_delay", "less than or equal to 86400"),
    ({"max_failures": "0"}, "max_failures", "greater than or equal to 1"),
    ({"wait_duration": "-1"}, "wait_duration", "greater than or equal to 0"),
    ({"target": "postgres", "target_url": "dbname=x foo=bar"}, "target_url", "an unknown option"),
])
def test_a_queue_with_an_unusable_value_is_not_saved(admin_client, change, field, message):
    connection = BrokerConnection.objects.create(name="rabbit")
    found = errors(admin_client, "relayedqueue", {**QUEUE, "connection": str(connection.pk), **change})

    assert message in found.get(field, ""), found
    assert not RelayedQueue.objects.exists()


def test_names_are_stripped(admin_client):
    connection = BrokerConnection.objects.create(name="rabbit")
    response = admin_client.post(reverse("admin:relay_relayedqueue_add"), {
        **QUEUE, "connection": str(connection.pk), "queue_name": "  orders  ", "consumer_name": " reader "})

    assert response.status_code == 302
    queue = RelayedQueue.objects.get()
    assert (queue.queue_name, queue.consumer_name) == ("orders", "reader")
