"""``manage.py import_mikkoo``: mikkoo configuration files become RabbitMQ connections and relayed queues."""
from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from relay.models import BrokerConnection, RelayedQueue

from . import services

pytestmark = pytest.mark.django_db

PASSWORDS = ("rabbit-Pa55", "pg-Pa55", "key-Pa55", "url-Pa55")

INVOICES = """\
    invoices:
      postgres_url: postgresql://app:pg-Pa55@db.example.com:5432/billing
      consumer_name: billing_relay
      confirm: false
      max_failures: 5
      retry_delay: 30
      wait_duration: 2.5
      unregister: false
      rabbitmq:
        host: rabbit.example.com
        port: 5671
        vhost: /billing
        username: billing
        password: rabbit-Pa55
        heartbeat_interval: 60
        ssl_options:
          ca_certs: /etc/ssl/ca.pem
          ca_path: /etc/ssl/certs
          ca_data: "-----BEGIN CERTIFICATE-----"
          protocol: 5
          certfile: /etc/ssl/client.pem
          keyfile: /etc/ssl/client.key
          password: key-Pa55
          ciphers: ECDHE+AESGCM
"""

ORDERS = """\
    orders:
      queue: shop_orders
      postgres_url: postgresql://shop:pg-Pa55@db.example.com/shop
      rabbitmq_url: amqp://shop:url-Pa55@rabbit.example.com:5672/%2f
      retry_interval: 15
      processes: 4
"""

# What mikkoo 2 documents: the rabbitmq mapping, and the sections the relay does not use.
MIKKOO_2 = """\
Application:
  poll_interval: 10
  sentry_dsn: https://public@sentry.example.com/1
  statsd:
    enabled: true
    host: localhost
    port: 8125
  workers:
""" + INVOICES + """\
Daemon:
  user: mikkoo
  pidfile: /var/run/mikkoo
Logging:
  version: 1
  root:
    level: INFO
"""

# mikkoo 3's example: a rabbitmq_url, retry_interval and processes.
MIKKOO_3 = "Application:\n  workers:\n" + ORDERS + "Logging:\n  version: 1\n"

BOTH = "Application:\n  workers:\n" + INVOICES + ORDERS


def write(tmp_path, text, name="mikkoo.yml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def run(tmp_path, text) -> str:
    """Import ``text`` as a file; return what the command printed.

    The files name hosts that do not exist: the command says, on stderr, that their consumers could not be
    registered yet (tests/test_schedule.py registers real ones), and nothing else.
    """
    out, err = StringIO(), StringIO()
    call_command("import_mikkoo", str(write(tmp_path, text)), stdout=out, stderr=err)
    for line in err.getvalue().splitlines():
        assert line.startswith("PgQ consumer NOT registered for "), line
        assert not any(secret in line for secret in PASSWORDS), line
    return out.getvalue()


def error(tmp_path, text) -> str:
    with pytest.raises(CommandError) as failure:
        run(tmp_path, text)
    return str(failure.value)


def rows():
    return (list(BrokerConnection.objects.order_by("pk").values()),
            list(RelayedQueue.objects.order_by("pk").values()))


def test_a_mikkoo_2_file_with_ssl_options(tmp_path):
    out = run(tmp_path, MIKKOO_2)

    connection = BrokerConnection.objects.get()
    assert connection.name == "invoices-rabbitmq"
    assert (connection.url, connection.hosts, connection.port, connection.vhost) == (
        "", "rabbit.example.com", 5671, "/billing")
    assert (connection.username, connection.password, connection.heartbeat) == ("billing", "rabbit-Pa55", 60)
    assert connection.use_tls
    assert (connection.ca_certs, connection.ca_path, connection.ca_data) == (
        "/etc/ssl/ca.pem", "/etc/ssl/certs", "-----BEGIN CERTIFICATE-----")
    assert connection.tls_protocol == "TLSv1_2"  # ssl.PROTOCOL_TLSv1_2 is 5
    assert (connection.certfile, connection.keyfile, connection.key_password, connection.ciphers) == (
        "/etc/ssl/client.pem", "/etc/ssl/client.key", "key-Pa55", "ECDHE+AESGCM")
    queue = RelayedQueue.objects.get()
    assert (queue.name, queue.queue_name, queue.connection) == ("invoices", "invoices", connection)
    assert queue.source_url == "postgresql://app:pg-Pa55@db.example.com:5432/billing"
    assert (queue.consumer_name, queue.confirm, queue.max_failures, queue.retry_delay, queue.wait_duration,
            queue.unregister) == ("billing_relay", False, 5, 30, 2.5, False)
    assert out.splitlines() == [
        "note: Application/sentry_dsn: set SENTRY_DSN=https://***@sentry.example.com/1 (the key is not shown: "
        "copy the DSN from the file)",
        "note: Application/statsd: set STATSD_HOST=localhost STATSD_PORT=8125",
        "note: Logging: set LOG_LEVEL=INFO (handlers and formatters are not imported; LOG_FORMAT=plain or json)",
        "connection invoices-rabbitmq: created (billing@rabbit.example.com:5671/billing)",
        ("queue invoices: created (PgQ queue invoices on postgresql://app:***@db.example.com:5432/billing, "
        "connection invoices-rabbitmq)"),
        "Imported 1 connection and 1 queue: 2 created, 0 updated, 0 unchanged.",
    ]


def test_a_mikkoo_3_file_with_rabbitmq_url_and_retry_interval(tmp_path):
    out = run(tmp_path, MIKKOO_3)

    connection = BrokerConnection.objects.get()
    assert connection.url == "amqp://shop:url-Pa55@rabbit.example.com:5672/%2f"
    assert not connection.use_tls
    queue = RelayedQueue.objects.get()
    assert (queue.name, queue.queue_name, queue.connection) == ("orders", "shop_orders", connection)
    assert queue.retry_delay == 15
    # Everything the file leaves out takes mikkoo's defaults.
    assert (queue.consumer_name, queue.confirm, queue.max_failures, queue.wait_duration,
            queue.unregister) == ("mikkoo", True, 10, 10.0, True)
    assert out.splitlines() == [
        ("note: Application/workers/orders/processes: 4 ignored: the relay works on a queue in one task "
         "at a time"),
        "note: Logging: not imported (handlers and formatters are not imported; LOG_FORMAT=plain or json)",
        "connection orders-rabbitmq: created (amqp://shop:***@rabbit.example.com:5672/%2f)",
        ("queue orders: created (PgQ queue shop_orders on postgresql://shop:***@db.example.com/shop, "
        "connection orders-rabbitmq)"),
        "Imported 1 connection and 1 queue: 2 created, 0 updated, 0 unchanged.",
    ]


def test_sentry_statsd_and_logging_become_the_environment_lines_to_set(tmp_path):
    out = run(tmp_path, MIKKOO_2)

    assert ("note: Application/sentry_dsn: set SENTRY_DSN=https://***@sentry.example.com/1 "
            "(the key is not shown: copy the DSN from the file)") in out
    assert "public@" not in out
    assert "note: Application/statsd: set STATSD_HOST=localhost STATSD_PORT=8125" in out
    assert "note: Logging: set LOG_LEVEL=INFO (handlers and formatters are not imported" in out
    for word in ("Daemon", "poll_interval"):
        assert word not in out


def test_importing_the_same_file_twice_changes_nothing(tmp_path):
    run(tmp_path, BOTH)
    before = rows()

    out = run(tmp_path, BOTH)

    assert rows() == before
    assert out.splitlines()[1:] == [
        "connection invoices-rabbitmq: unchanged",
        "connection orders-rabbitmq: unchanged",
        "queue invoices: unchanged",
        "queue orders: unchanged",
        "Nothing changed: 2 connections and 2 queues already match the file.",
    ]


def test_a_changed_value_updates_the_row_and_keeps_what_the_admin_set(tmp_path):
    run(tmp_path, MIKKOO_2)
    RelayedQueue.objects.update(enabled=False, persistent=False)
    connection_id = BrokerConnection.objects.get().pk

    changed = (MIKKOO_2.replace("max_failures: 5", "max_failures: 7").replace("rabbit-Pa55", "rabbit-Pa56")
               .replace("heartbeat_interval: 60", "heartbeat_interval: 30"))
    out = run(tmp_path, changed)

    connection = BrokerConnection.objects.get()
    assert (connection.pk, connection.password, connection.heartbeat) == (connection_id, "rabbit-Pa56", 30)
    queue = RelayedQueue.objects.get()
    assert queue.max_failures == 7
    assert (queue.enabled, queue.persistent) == (False, False)
    assert out.splitlines() == [
        "note: Application/sentry_dsn: set SENTRY_DSN=https://***@sentry.example.com/1 (the key is not shown: "
        "copy the DSN from the file)",
        "note: Application/statsd: set STATSD_HOST=localhost STATSD_PORT=8125",
        "note: Logging: set LOG_LEVEL=INFO (handlers and formatters are not imported; LOG_FORMAT=plain or json)",
        "connection invoices-rabbitmq: updated (changed: password, heartbeat)",
        "queue invoices: updated (changed: max_failures)",
        "Imported 1 connection and 1 queue: 0 created, 2 updated, 0 unchanged.",
    ]


def test_leaving_a_key_out_again_restores_mikkoos_default(tmp_path):
    run(tmp_path, MIKKOO_2)

    run(tmp_path, MIKKOO_2.replace("      max_failures: 5\n", ""))

    assert RelayedQueue.objects.get().max_failures == 10


def test_workers_with_the_same_rabbitmq_settings_share_one_connection(tmp_path):
    out = run(tmp_path, """\
Application:
  workers:
    a:
      postgres_url: postgresql://db/app
      rabbitmq: {host: rabbit}
    b:
      postgres_url: postgresql://db/app
      rabbitmq: {host: rabbit}
    c:
      postgres_url: postgresql://db/app
      rabbitmq: {host: other-rabbit}
""")

    assert dict(RelayedQueue.objects.values_list("name", "connection__name")) == {
        "a": "a-rabbitmq", "b": "a-rabbitmq", "c": "c-rabbitmq"}
    assert "Imported 2 connections and 3 queues: 5 created" in out


def test_a_connection_split_off_by_a_change_gets_its_own_row(tmp_path):
    a = """\
    a:
      postgres_url: postgresql://db/app
      rabbitmq: {host: rabbit, password: %s}
"""
    b = """\
    b:
      postgres_url: postgresql://db/app
      rabbitmq: {host: rabbit, password: old}
"""
    run(tmp_path, "Application:\n  workers:\n" + a % "old" + b)

    # b first: its settings are what a-rabbitmq still holds until a's change is saved.
    run(tmp_path, "Application:\n  workers:\n" + b + a % "new")

    by_name = {c.name: c.password for c in BrokerConnection.objects.all()}
    assert by_name == {"a-rabbitmq": "new", "b-rabbitmq": "old"}
    assert dict(RelayedQueue.objects.values_list("name", "connection__name")) == {
        "a": "a-rabbitmq", "b": "b-rabbitmq"}


def test_an_existing_connection_with_the_same_settings_is_reused(tmp_path):
    BrokerConnection.objects.create(name="production", url="amqp://shop:url-Pa55@rabbit.example.com:5672/%2f")

    out = run(tmp_path, MIKKOO_3)

    assert BrokerConnection.objects.get().name == "production"
    assert RelayedQueue.objects.get().connection.name == "production"
    assert "connection production: unchanged (same settings as the file)" in out.splitlines()


def test_a_worker_name_that_is_not_a_slug_is_slugified_and_said_so(tmp_path):
    out = run(tmp_path, MIKKOO_3.replace("    orders:", "    Shop Orders:"))

    assert RelayedQueue.objects.get().name == "shop-orders"
    assert ("note: Application/workers/Shop Orders: not a valid name (letters, digits, - and _ only), "
            "imported as 'shop-orders'") in out.splitlines()


def test_ssl_protocol_2_means_tls_with_the_default_version(tmp_path):
    run(tmp_path, MIKKOO_2.replace("protocol: 5", "protocol: 2"))

    connection = BrokerConnection.objects.get()
    assert connection.use_tls and connection.tls_protocol == ""


WORKER = """\
Application:
  workers:
    test_queue:
      postgres_url: postgresql://postgres@localhost:5432/postgres
      rabbitmq:
        host: localhost
"""


@pytest.mark.parametrize(("text", "message"), [
    ("Application: {workers: [unclosed\n",
     ("not valid YAML: while parsing a flow sequence from line 1: expected ',' or ']', "
      "but got '<stream end>' (line 2, column 1)")),
    ("", "the file is empty"),
    ("just some text\n", "expected a mapping with an Application key at the top, got a string"),
    ("Logging: {version: 1}\n", "Application: required key missing"),
    ("Application: {sentry_dsn: x}\n", "Application/workers: required key missing"),
    ("Application: {workers: {}}\n", "Application/workers: no workers defined"),
    ("Application:\n  workers:\n    test_queue: postgresql://localhost/postgres\n",
     "Application/workers/test_queue: expected a mapping, got a string"),
    (WORKER + "      max_failures: ten\n",
     "Application/workers/test_queue/max_failures: expected an integer, got 'ten'"),
    (WORKER.replace("    test_queue:\n", "    test_queue:\n      max_failure: 5\n"),
     ("Application/workers/test_queue/max_failure: unknown key (known here: confirm, consumer_name, "
     "max_failures, postgres_url, processes, queue, rabbitmq, rabbitmq_url, retry_delay, retry_interval, "
     "unregister, wait_duration)")),
    (WORKER.replace("      postgres_url: postgresql://postgres@localhost:5432/postgres\n", ""),
     "Application/workers/test_queue/postgres_url: required key missing"),
    (WORKER + "        port: '5672'\n",
     "Application/workers/test_queue/rabbitmq/port: expected an integer, got '5672'"),
    (WORKER + "        port: 70000\n",
     "Application/workers/test_queue/rabbitmq/port: must be at least 1 and at most 65535, got 70000"),
    (WORKER + "        heartbeat: 30\n",
     ("Application/workers/test_queue/rabbitmq/heartbeat: unknown key (known here: heartbeat_interval, host, "
     "password, port, ssl_options, username, vhost)")),
    (WORKER + "        ssl_options: {protocol: SSLv3}\n",
     ("Application/workers/test_queue/rabbitmq/ssl_options/protocol: expected an ssl.PROTOCOL_* number "
     "(2, 3, 4, 5 or 16) or TLSv1, TLSv1_1, TLSv1_2 or TLSv1_3, got 'SSLv3'")),
    (WORKER.replace("    test_queue:\n", "    test_queue:\n      confirm: 'yes'\n"),
     "Application/workers/test_queue/confirm: expected true or false, got 'yes'"),
    (WORKER.replace("    test_queue:\n", "    test_queue:\n      max_failures: 0\n"),
     "Application/workers/test_queue/max_failures: must be at least 1, got 0"),
    (WORKER.replace("    test_queue:\n", "    test_queue:\n      retry_delay: 5\n      retry_interval: 5\n"),
     "Application/workers/test_queue: give retry_delay or retry_interval (mikkoo 3's name), not both"),
    (WORKER.replace("    test_queue:\n", "    test_queue:\n      rabbitmq_url: amqp://localhost/\n"),
     "Application/workers/test_queue: give rabbitmq or rabbitmq_url, not both"),
    (WORKER.replace("      rabbitmq:\n        host: localhost\n", ""),
     "Application/workers/test_queue/rabbitmq: required key missing (or give rabbitmq_url)"),
    (WORKER.replace("postgresql://postgres@localhost:5432/postgres", "localhost"),
     ("Application/workers/test_queue/postgres_url: expected a libpq connection string (dbname=... host=...) "
     "or a postgresql:// URL")),
    (WORKER + "    test_queue:\n      postgres_url: postgresql://localhost/other\n",
     "key 'test_queue' given twice (line 7)"),
    (WORKER + WORKER.replace("Application:\n  workers:\n", "").replace("test_queue", "test queue")
     + WORKER.replace("Application:\n  workers:\n", "").replace("test_queue", "test-queue"),
     ("Application/workers/test-queue: imported as 'test-queue', the same name as "
     "Application/workers/test queue")),
])
def test_a_bad_file_is_refused_naming_the_key_and_changes_nothing(tmp_path, text, message):
    assert error(tmp_path, text) == message
    assert rows() == ([], [])


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CommandError, match=r"no-such\.yml: cannot read: No such file or directory"):
        call_command("import_mikkoo", str(tmp_path / "no-such.yml"), stdout=StringIO())


def test_an_error_found_while_saving_rolls_everything_back(tmp_path):
    run(tmp_path, MIKKOO_2)
    before = rows()
    too_long = "postgresql://db/" + "x" * 1000

    message = error(tmp_path, BOTH.replace("max_failures: 5", "max_failures: 6")
                    .replace("postgresql://shop:pg-Pa55@db.example.com/shop", too_long))

    assert message.startswith("Application/workers/orders: source_url: Ensure this value has at most 1000 "
                              "characters")
    assert rows() == before


@pytest.mark.parametrize("text", [
    MIKKOO_2.replace("password: rabbit-Pa55", "password: 12345"),
    MIKKOO_2.replace("password: key-Pa55", "password: [key-Pa55]"),
    MIKKOO_2.replace("password: rabbit-Pa55", 'password: "rabbit-Pa55'),
    MIKKOO_2.replace("password: rabbit-Pa55", "password: rabbit-Pa55: x"),
    MIKKOO_3.replace("amqp://", ""),
    MIKKOO_3.replace("postgresql://", "http://"),
    MIKKOO_3.replace("rabbitmq_url: amqp://", "rabbitmq_url: [amqp://").replace("%2f", "%2f]"),
    "postgresql://app:pg-Pa55@db.example.com/billing\n",
])
def test_no_password_appears_in_an_error(tmp_path, text):
    message = error(tmp_path, text)

    assert message.startswith(("Application/", "not valid YAML", "expected a mapping"))
    for secret in (*PASSWORDS, "12345"):
        assert secret not in message


def test_no_password_appears_in_the_output(tmp_path):
    out = run(tmp_path, MIKKOO_2) + run(tmp_path, MIKKOO_3) + run(tmp_path, MIKKOO_2.replace("5671", "5672"))

    assert "***" in out
    for secret in PASSWORDS:
        assert secret not in out


def test_the_command_exits_non_zero_with_one_line_and_no_traceback(tmp_path):
    path = write(tmp_path, MIKKOO_2.replace("max_failures: 5", "max_failures: ten"))

    process = services.manage("import_mikkoo", str(path),
                              env={"DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}"})

    assert process.returncode == 1
    assert process.stdout == ""
    assert process.stderr == (
        "CommandError: Application/workers/invoices/max_failures: expected an integer, got 'ten'\n")
