"""Secrets at rest: encrypted in Django's database, or not stored at all (``env:NAME``), and never shown back."""
from __future__ import annotations

import subprocess
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection as db
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from relay.models import BrokerConnection, RelayedQueue

from . import services

PASSWORD = "Enc-Rabbit-Pw-7781"
SOURCE_PASSWORD = "Enc-Pg-Pw-4410"


def raw_column(table: str, column: str, pk: int) -> str:
    with db.cursor() as cursor:
        cursor.execute(f'SELECT "{column}" FROM "{table}" WHERE id = %s', [pk])
        return cursor.fetchone()[0]


@pytest.fixture
def rabbit_user():
    name = services.unique("enc_user")
    subprocess.run(["rabbitmqctl", "-q", "add_user", name, PASSWORD], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", name, ".*", ".*", ".*"], check=True, capture_output=True)
    yield name
    subprocess.run(["rabbitmqctl", "-q", "delete_user", name], capture_output=True)


@pytest.mark.django_db
def test_every_secret_is_encrypted_in_the_database_and_reads_back(source_dsn):
    connection = BrokerConnection.objects.create(
        name="enc", url=f"amqp://relay:{PASSWORD}-url@rabbit/%2f", password=PASSWORD, key_password=PASSWORD + "-key")
    source = source_dsn.replace("postgres@", f"postgres:{SOURCE_PASSWORD}@")
    queue = RelayedQueue.objects.create(name="enc", queue_name="q", source_url=source, connection=connection,
                                        target_url=f"dbname=t password={SOURCE_PASSWORD}-t")

    for table, row, fields in (("relay_brokerconnection", connection, BrokerConnection.SECRET_FIELDS),
                               ("relay_relayedqueue", queue, RelayedQueue.SECRET_FIELDS)):
        fresh = type(row).objects.get(pk=row.pk)
        for field in fields:
            stored = raw_column(table, field, row.pk)
            assert stored.startswith("gAAAAA"), field  # a Fernet token
            assert PASSWORD not in stored and SOURCE_PASSWORD not in stored and "relay" not in stored
            assert getattr(fresh, field) == getattr(row, field)
    # Empty stays empty, and filtering on it still works.
    plain = BrokerConnection.objects.create(name="plain", password="")
    assert raw_column("relay_brokerconnection", "url", plain.pk) == ""
    assert BrokerConnection.objects.filter(url="").count() == 1


@pytest.mark.django_db
def test_a_token_no_key_opens_is_reported_not_sent_as_a_password():
    connection = BrokerConnection.objects.create(name="other-key", password=PASSWORD)
    with db.cursor() as cursor:  # as if stored under another SECRET_KEY
        cursor.execute("UPDATE relay_brokerconnection SET password = %s WHERE id = %s", ["gAAAAA" + "x" * 120,
                                                                                          connection.pk])

    problems = BrokerConnection.objects.get(pk=connection.pk).configuration_problems()

    assert problems == ["password: the stored value cannot be decrypted: SECRET_KEY or SALT_KEY is not the one it "
                        "was stored with (set SECRET_KEY_FALLBACKS, or enter it again)"]


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_rows_stored_in_clear_and_back(source_dsn):
    before = [("relay", "0007_settings_bounds")]  # the migration under test, 0008, comes next
    executor = MigrationExecutor(db)
    leaf = executor.loader.graph.leaf_nodes("relay")  # where today's models can read the rows
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    row = old.get_model("relay", "BrokerConnection").objects.create(name="old", password=PASSWORD, url="")
    queue = old.get_model("relay", "RelayedQueue").objects.create(
        name="old", queue_name="q", source_url=f"dbname=a password={SOURCE_PASSWORD}", connection_id=row.pk)
    assert raw_column("relay_brokerconnection", "password", row.pk) == PASSWORD
    try:
        executor = MigrationExecutor(db)
        executor.migrate(leaf)

        assert raw_column("relay_brokerconnection", "password", row.pk).startswith("gAAAAA")
        assert SOURCE_PASSWORD not in raw_column("relay_relayedqueue", "source_url", queue.pk)
        assert BrokerConnection.objects.get(pk=row.pk).password == PASSWORD
        assert RelayedQueue.objects.get(pk=queue.pk).source_url == f"dbname=a password={SOURCE_PASSWORD}"

        executor = MigrationExecutor(db)
        executor.migrate(before)
        assert raw_column("relay_brokerconnection", "password", row.pk) == PASSWORD
    finally:
        executor = MigrationExecutor(db)
        executor.migrate(executor.loader.graph.leaf_nodes("relay"))


@pytest.mark.django_db(transaction=True)
def test_an_env_reference_is_read_when_connecting_and_never_stored(
        rabbit_user, source_dsn, pgq_queue, exchange, bind_queue, amqp, monkeypatch):
    monkeypatch.setenv("RELAY_TEST_RABBIT_PASSWORD", PASSWORD)
    monkeypatch.setenv("RELAY_TEST_SOURCE_URL", source_dsn)
    connection = BrokerConnection.objects.create(name="from-env", hosts="127.0.0.1", username=rabbit_user,
                                                 password="env:RELAY_TEST_RABBIT_PASSWORD")
    queue = RelayedQueue.objects.create(name="from-env", queue_name=pgq_queue, source_url="env:RELAY_TEST_SOURCE_URL",
                                        connection=connection, retry_delay=0)
    target = bind_queue(exchange)
    services.insert_events(source_dsn, pgq_queue, [("k", "x", exchange, "", "", "")] * 2)
    services.tick(source_dsn, pgq_queue)

    call_command("relay_once", queue.name, stdout=StringIO())

    assert len(services.drain(amqp, target, expected=2)) == 2
    connection.refresh_from_db()
    assert connection.password == "env:RELAY_TEST_RABBIT_PASSWORD"  # the reference, never the value
    assert queue.display_source() == "env:RELAY_TEST_SOURCE_URL"

    # In a process of its own too, from the environment it is given.
    process = services.manage("relay_once", queue.name, env={"RELAY_TEST_RABBIT_PASSWORD": PASSWORD,
                                                             "RELAY_TEST_SOURCE_URL": source_dsn})
    assert process.returncode == 0, process.stderr

    monkeypatch.delenv("RELAY_TEST_RABBIT_PASSWORD")
    with pytest.raises(CommandError) as unset:
        call_command("relay_once", queue.name, stdout=StringIO())
    assert str(unset.value) == (
        "from-env: invalid configuration: RabbitMQ connection from-env: password: the environment variable "
        "RELAY_TEST_RABBIT_PASSWORD is not set (the field says env:RELAY_TEST_RABBIT_PASSWORD)")


@pytest.mark.django_db
def test_the_admin_takes_an_env_reference_and_says_which_variable_is_read(admin_client):
    data = {"name": "env-rabbit", "url": "", "hosts": "127.0.0.1", "port": "5672", "vhost": "/",
            "username": "relay", "password": "env:RABBITMQ_PASSWORD", "heartbeat": "300",
            "connect_timeout": "5", "confirm_timeout": "30", "max_message_size": "134217728", "ca_data": ""}

    response = admin_client.post(reverse("admin:relay_brokerconnection_add"), data)

    assert response.status_code == 302, response.content.decode()[:3000]
    connection = BrokerConnection.objects.get(name="env-rabbit")
    assert connection.password == "env:RABBITMQ_PASSWORD"
    page = admin_client.get(reverse("admin:relay_brokerconnection_change", args=[connection.pk])).content.decode()
    assert "Now read from the environment variable RABBITMQ_PASSWORD." in page

    refused = admin_client.post(reverse("admin:relay_brokerconnection_add"),
                                {**data, "name": "steals", "password": "env:SECRET_KEY"})
    assert refused.status_code == 200
    assert "holds one of the relay&#x27;s own secrets" in refused.content.decode()
    assert not BrokerConnection.objects.filter(name="steals").exists()
