"""Fixtures on the real services: a source database with PgQ, queues, exchanges and RabbitMQ queues.

Every name is unique to the test run and everything created is removed.
"""
from __future__ import annotations

import pytest

from relay.publisher import BrokerSettings
from relay.relay import QueueSettings

from . import services


@pytest.fixture(scope="session")
def source_dsn():
    """A database of its own with the PgQ extension."""
    name = services.unique("mikkoo_src")
    dsn = services.create_database(name)
    yield dsn
    services.drop_database(name)


@pytest.fixture
def pgq_queue(source_dsn):
    """A fresh PgQ queue with the relay's consumer registered, so it sees every event from now on."""
    name = services.unique("q")
    services.sql(source_dsn, "SELECT pgq.create_queue(%s)", (name,))
    services.sql(source_dsn, "SELECT pgq.register_consumer(%s, 'mikkoo')", (name,))
    yield name
    services.sql(source_dsn, "SELECT pgq.drop_queue(%s, true)", (name,))


@pytest.fixture(scope="session")
def amqp():
    connection = services.amqp_connection()
    connection.connect()
    yield connection
    connection.release()


@pytest.fixture
def exchange(amqp):
    """A durable topic exchange of its own."""
    name = services.unique("ex")
    channel = amqp.channel()
    channel.exchange_declare(name, "topic", durable=True, auto_delete=False)
    yield name
    channel.exchange_delete(name)
    channel.close()


@pytest.fixture
def bind_queue(amqp):
    """Make durable RabbitMQ queues of its own: ``bind_queue(exchange, routing_key) -> queue name``."""
    channel = amqp.channel()
    made = []

    def bind(exchange: str, routing_key: str = "#") -> str:
        name = services.unique("rq")
        channel.queue_declare(name, durable=True, auto_delete=False)
        if exchange:
            channel.queue_bind(name, exchange, routing_key)
        made.append(name)
        return name

    yield bind
    for name in made:
        channel.queue_delete(name)
    channel.close()


@pytest.fixture
def broker_settings():
    return BrokerSettings(hosts=("127.0.0.1",), confirm_timeout=10.0)


@pytest.fixture
def queue_settings(source_dsn, pgq_queue, broker_settings):
    return QueueSettings(name=pgq_queue, queue_name=pgq_queue, source_dsn=source_dsn,
                         broker=broker_settings, max_failures=3, retry_delay=0)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory):
    """A test database of this run's own that other processes (the commands under test) can open too."""
    from django.db import connections

    database = connections["default"].settings_dict
    if database["ENGINE"].endswith("sqlite3"):
        database["TEST"]["NAME"] = str(tmp_path_factory.mktemp("django") / "test.sqlite3")
    else:
        database["TEST"]["NAME"] = services.unique("test_mikkoo_relay")
