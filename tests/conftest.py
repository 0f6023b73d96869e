"""Fixtures on the real services: a source database with PgQ, queues, exchanges and RabbitMQ queues.

Every name is unique to the test run and everything created is removed.
"""
from __future__ import annotations

import logging

import pytest

from relay.amqp.broker import BrokerSettings
from relay.engine.settings import AmqpTargetSettings, QueueSettings
from relay.models import BrokerConnection
from relay.ops.logformat import JsonFormatter

from . import services
from .processes import Pgqd


def pytest_collection_modifyitems(items):
    """Mark ``slow`` every test of a module not marked ``pure``: ``pytest -m "not slow"`` is the fast tier."""
    for item in items:
        if not item.get_closest_marker("pure"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def browser():
    """Headless Chromium (tests.browser), quit after the test."""
    from .browser import chromium

    driver = chromium()
    yield driver
    driver.quit()


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
    with services.fresh_queue(source_dsn, "q") as name:
        yield name


@pytest.fixture(scope="session")
def audited_dsn():
    """A database of its own with PgQ and the audit SQL API (sql/mikkoo.sql and the relay's additions)."""
    from relay.audit.install import install_audit_sql

    name = services.unique("mikkoo_audited")
    dsn = services.create_database(name)
    install_audit_sql(dsn)
    yield dsn
    services.drop_database(name)


@pytest.fixture
def audited_queue(audited_dsn):
    """A fresh PgQ queue in the audited database with the relay's consumer registered; its audit rows go too."""
    with services.fresh_queue(audited_dsn, "aq") as name:
        yield name
    services.sql(audited_dsn, "DELETE FROM mikkoo.audit WHERE queue = %s", (name,))


@pytest.fixture
def amqp():
    """A connection to the local RabbitMQ for the test's own use (fresh per test: some restart RabbitMQ)."""
    connection = services.amqp_connection()
    connection.connect()
    yield connection
    connection.release()


def _on_fresh_channel(action) -> None:
    # A test may have restarted RabbitMQ, breaking the connections it had.
    with services.amqp_connection() as connection:
        action(connection.channel())


@pytest.fixture
def exchange(amqp):
    """A durable topic exchange of its own."""
    name = services.unique("ex")
    channel = amqp.channel()
    channel.exchange_declare(name, "topic", durable=True, auto_delete=False)
    channel.close()
    yield name
    _on_fresh_channel(lambda channel: channel.exchange_delete(name))


@pytest.fixture
def absent_exchange():
    """The name of an exchange that does not exist yet; removed after the test if the test declared it."""
    name = services.unique("absent")
    yield name
    _on_fresh_channel(lambda channel: channel.exchange_delete(name))


@pytest.fixture
def bind_queue(amqp):
    """Make durable RabbitMQ queues of its own: ``bind_queue(exchange, routing_key) -> queue name``."""
    made = []

    def bind(exchange: str, routing_key: str = "#") -> str:
        name = services.unique("rq")
        channel = amqp.channel()
        channel.queue_declare(name, durable=True, auto_delete=False)
        if exchange:
            channel.queue_bind(name, exchange, routing_key)
        channel.close()
        made.append(name)
        return name

    yield bind
    for name in made:
        _on_fresh_channel(lambda channel, name=name: channel.queue_delete(name))


@pytest.fixture
def broker_settings():
    return BrokerSettings(hosts=("127.0.0.1",), confirm_timeout=10.0)


@pytest.fixture
def queue_settings(source_dsn, pgq_queue, broker_settings):
    return QueueSettings(name=pgq_queue, queue_name=pgq_queue, source_dsn=source_dsn,
                         target=AmqpTargetSettings(broker=broker_settings), max_failures=3, retry_delay=0)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory):
    """A test database of this run's own that other processes (the commands under test) can open too."""
    from django.db import connections

    database = connections["default"].settings_dict
    if database["ENGINE"].endswith("sqlite3"):
        database["TEST"]["NAME"] = str(tmp_path_factory.mktemp("django") / "test.sqlite3")
    else:
        database["TEST"]["NAME"] = services.unique("test_mikkoo_relay")


@pytest.fixture
def pgqd(tmp_path, source_dsn):
    """pgqd with its defaults, ticking the test's source database."""
    daemon = Pgqd(tmp_path, [source_dsn.rsplit("/", 1)[1]])
    yield daemon
    daemon.stop()


@pytest.fixture
def celery_queue():
    """A Celery queue of the test's own, so concurrent runs never take each other's tasks."""
    name = services.unique("celery")
    yield name

    def remove(channel) -> None:
        channel.queue_delete(name)
        channel.exchange_delete(name)  # Celery declares an exchange named after its queue

    _on_fresh_channel(remove)


@pytest.fixture
def broker():
    """A RabbitMQ connection row for the local broker."""
    return BrokerConnection.objects.create(name=services.unique("rabbit").replace("_", "-"), hosts="127.0.0.1")


@pytest.fixture
def json_log():
    """``json_log(name) -> lines``: what the logger ``name`` writes from now on, as LOG_FORMAT=json writes it."""
    attached = []

    def capture(name: str) -> list[str]:
        lines: list[str] = []
        handler = logging.Handler()
        handler.setFormatter(JsonFormatter())
        handler.emit = lambda record: lines.append(handler.format(record))
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        attached.append((logger, handler))
        return lines

    yield capture
    for logger, handler in attached:
        logger.removeHandler(handler)
