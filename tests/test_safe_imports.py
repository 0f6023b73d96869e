"""Imports refuse what would hurt: huge files, YAML alias and INI interpolation bombs, bad names, values out of range.

Each refusal is one line naming the key by its path in the file, comes in
seconds, and changes nothing.
"""
from __future__ import annotations

import itertools
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from relay.models import BrokerConnection, RelayedQueue

pytestmark = pytest.mark.django_db

WORKER = """\
Application:
  workers:
    orders:
      postgres_url: postgresql://app@db.example.com/shop
      rabbitmq:
        host: rabbit.example.com
"""

SPLITTER = """\
[queue_splitter]
job_name = split
src_db = dbname=source host=db
dst_db = dbname=target host=db
pgq_queue_name = events
"""


def refused(tmp_path, command: str, text: str, name: str = "config") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(CommandError) as error:
        call_command(command, str(path), stdout=StringIO())
    assert time.monotonic() - started < 10, "refusing took too long"
    assert not RelayedQueue.objects.exists() and not BrokerConnection.objects.exists()
    message = str(error.value)
    assert "\n" not in message
    return message


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
Application:
  workers:
    *i : {postgres_url: *i}
"""


def test_a_billion_laughs_is_refused_in_seconds(tmp_path):
    message = refused(tmp_path, "import_mikkoo", BILLION_LAUGHS, "laughs.yml")

    assert message == ("the file's aliases expand to more than 100,000 values (RELAY_IMPORT_MAX_NODES): refused "
                       "(a 'billion laughs'?)")


def test_a_yaml_structure_that_contains_itself_is_refused(tmp_path):
    message = refused(tmp_path, "import_mikkoo", "Application: &app\n  workers: {w: *app}\n", "self.yml")

    assert "refers to the node that contains it" in message


def test_ordinary_aliases_still_import(tmp_path):
    path = tmp_path / "aliases.yml"
    # Only the known top-level keys are accepted: an anchor may sit in Logging, which is not imported.
    path.write_text("""\
Logging: &rabbit {host: rabbit.example.com, username: shop}
Application:
  workers:
    orders: {postgres_url: "dbname=shop", rabbitmq: *rabbit}
    invoices: {postgres_url: "dbname=billing", rabbitmq: {<<: *rabbit, vhost: /billing}}
""")
    call_command("import_mikkoo", str(path), stdout=StringIO())

    assert RelayedQueue.objects.count() == 2


def test_yaml_nested_too_deeply_is_refused(tmp_path):
    message = refused(tmp_path, "import_mikkoo", "Application: " + "[" * 5000 + "]" * 5000 + "\n", "deep.yml")

    assert message.startswith("not valid YAML")


@pytest.mark.parametrize(("command", "name", "text"), [
    ("import_mikkoo", "big.yml", WORKER + "# " + "x" * 2_000_000 + "\n"),
    ("import_queue_splitter", "big.ini", SPLITTER + "; " + "x" * 2_000_000 + "\n"),
])
def test_an_oversized_file_is_refused_before_it_is_read(tmp_path, command, name, text):
    message = refused(tmp_path, command, text, name)

    assert message.startswith(f"{tmp_path / name}: too large: 2,000,")
    assert message.endswith(" bytes, the limit is 1,048,576 (RELAY_IMPORT_MAX_BYTES); a configuration file is a "
                            "few kilobytes")


def test_the_size_limit_is_a_setting(tmp_path, settings):
    settings.RELAY_IMPORT_MAX_BYTES = 100

    message = refused(tmp_path, "import_mikkoo", WORKER, "small.yml")

    assert "too large" in message and "the limit is 100 " in message


def test_an_ini_interpolation_bomb_is_refused(tmp_path):
    # Skytools' common keys are accepted (and unused): each refers ten times to the one before.
    levels = ["logfile", "pidfile", "use_skylog", "skylog_locations", "log_count", "log_size", "use_syslog",
              "syslog_ident"]
    lines = [SPLITTER.replace("pgq_queue_name = events", f"pgq_queue_name = %({levels[-1]})s").rstrip(),
             f"{levels[0]} = " + "x" * 1000]
    lines += [f"{key} = " + f"%({below})s" * 10 for below, key in itertools.pairwise(levels)]

    message = refused(tmp_path, "import_queue_splitter", "\n".join(lines) + "\n", "bomb.ini")

    assert message == ("[queue_splitter] pgq_queue_name: its %(name)s references expand to more than 1,048,576 "
                       "characters (RELAY_IMPORT_MAX_BYTES): refused")


@pytest.mark.parametrize(("text", "error"), [
    (SPLITTER.replace("pgq_queue_name = events", "pgq_queue_name = events\n  injected"),
     "[queue_splitter] pgq_queue_name: must be one line without control characters (line breaks, tabs, NUL)"),
    (SPLITTER + "pgq_consumer_id = reader\n  second\n",
     "[queue_splitter] pgq_consumer_id: must be one line without control characters (line breaks, tabs, NUL)"),
    (SPLITTER.replace("pgq_queue_name = events", "pgq_queue_name = ev\x00ents"),
     "[queue_splitter] pgq_queue_name: must be one line without control characters (line breaks, tabs, NUL)"),
    (SPLITTER + "loop_delay = 100000\n", "[queue_splitter] loop_delay: must be at most 3600 seconds, got 100000"),
    (SPLITTER.replace("dbname=target host=db", "dbname=target host=db password=a b"),
     "[queue_splitter] dst_db: expected a libpq connection string (dbname=... host=...) or a postgresql:// URL: "
     "not a libpq connection string: a word without =; quote a value that holds spaces (password='...')"),
    (SPLITTER.replace("dbname=target host=db", "postgresql://app:pw@[::1/target"),
     "[queue_splitter] dst_db: expected a libpq connection string (dbname=... host=...) or a postgresql:// URL: "
     "invalid IPv6 address (written [::1] or [::1]:5672)"),
])
def test_splitter_names_and_values_are_checked(tmp_path, text, error):
    assert refused(tmp_path, "import_queue_splitter", text, "splitter.ini") == error


def test_a_libpq_string_continued_on_the_next_line_is_read_as_libpq_would(tmp_path):
    path = tmp_path / "splitter.ini"
    path.write_text(SPLITTER.replace("dbname=target host=db", "dbname=target\n  host=db port=6432"))

    call_command("import_queue_splitter", str(path), stdout=StringIO())

    assert RelayedQueue.objects.get().target_url == "dbname=target host=db port=6432"


@pytest.mark.parametrize(("extra", "error"), [
    ("      retry_delay: 3000000000\n",
     "Application/workers/orders/retry_delay: must be at least 0 and at most 86400, got 3000000000"),
    ("      max_failures: 100000\n",
     "Application/workers/orders/max_failures: must be at least 1 and at most 10000, got 100000"),
    ("      wait_duration: 86400\n",
     "Application/workers/orders/wait_duration: must be at least 0 and at most 3600 seconds, got 86400"),
    ("      queue: \"orders\\nDROP\"\n",
     "Application/workers/orders/queue: must be one line without control characters (line breaks, tabs, NUL)"),
    ("      consumer_name: \"mik\\0koo\"\n",
     "Application/workers/orders/consumer_name: must be one line without control characters (line breaks, tabs, "
     "NUL)"),
    ("        heartbeat_interval: 70000\n",
     "Application/workers/orders/rabbitmq/heartbeat_interval: must be at least 0 and at most 65535, got 70000"),
    ("        port: 99999\n",
     "Application/workers/orders/rabbitmq/port: must be at least 1 and at most 65535, got 99999"),
    ("        username: \"gu\\r\\nest\"\n",
     "Application/workers/orders/rabbitmq/username: must be one line without control characters (line breaks, "
     "tabs, NUL)"),
    ("        ssl_options: {ca_certs: relative/ca.pem}\n",
     "Application/workers/orders/rabbitmq/ssl_options/ca_certs: must be an absolute path (the worker's working "
     "directory is not the admin's)"),
    ("        password: env:SECRET_KEY\n",
     "Application/workers/orders/rabbitmq/password: the environment variable SECRET_KEY holds one of the relay's "
     "own secrets and cannot be referred to"),
])
def test_mikkoo_values_are_checked_by_their_path(tmp_path, extra, error):
    text = WORKER + extra if extra.startswith("        ") else WORKER.replace(
        "      rabbitmq:\n", extra + "      rabbitmq:\n")

    assert refused(tmp_path, "import_mikkoo", text, "mikkoo.yml") == error


def test_mikkoo_hosts_are_checked(tmp_path):
    message = refused(tmp_path, "import_mikkoo", WORKER.replace("host: rabbit.example.com", "host: '[::1'"),
                      "mikkoo.yml")

    assert message == ("Application/workers/orders/rabbitmq/host: '[::1': invalid IPv6 address (written [::1] or "
                       "[::1]:5672)")


def test_names_are_stripped(tmp_path):
    path = tmp_path / "mikkoo.yml"
    path.write_text(WORKER.replace("      rabbitmq:\n", "      queue: '  shop_orders  '\n      rabbitmq:\n"))

    call_command("import_mikkoo", str(path), stdout=StringIO())

    assert RelayedQueue.objects.get().queue_name == "shop_orders"
