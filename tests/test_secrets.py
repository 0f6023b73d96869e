"""Passwords never appear in logs (DEBUG included), admin pages, command output or error messages."""
from __future__ import annotations

import html
import json
import logging
import re
import subprocess
from io import StringIO
from urllib.parse import quote, quote_plus

import psycopg2.extensions
import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from relay.amqp.broker import BrokerSettings
from relay.amqp.publisher import Publisher
from relay.core.connection_strings import InvalidConnectionString, parse_url, redact_url, scrub
from relay.core.errors import BrokerUnavailable
from relay.models import BrokerConnection, RelayedQueue

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


# The corpus: passwords with every character that means something in a URL (or a libpq string, or HTML, or
# JSON), each tried pasted as it is and percent-encoded. Their alphanumeric runs are distinctive, so a piece of
# one shown anywhere is found too.
CORPUS = {
    "issue": "Rabbit7#Xq?Zeta9/Mu",
    # ($ is left out: rabbitmqctl add_user stores a password with $ differently from what PLAIN sends.)
    "everything": "Ev3ry@!Ch4rQ#Q7?S8/ Co9:l\"Qu0'Bk\\Sl%25;=&+,()*[]",
    "ambiguous": "Kx9Lm2@Pq4Rs/Tu6Vw",
    "lone-percent": "Wv8zz%zz!Tq5Yh",
    "looks-encoded": "Hn4Jk%41Jk7Lp",
    "quotes-spaces": "Tb6Sp4ce \"Qt'Bk\\Sl9",
    "unicode": "Üñï6Cødé€Pw9",
    "brackets": "Gx2Hy4[Iz6{Ja8}|Kb0^`<Lc>]$Md1",
}
#: Passwords for which a RabbitMQ user of that password exists: the relay must connect with them.
CONNECTING = ("issue", "everything")


def hidden_forms(password: str) -> set[str]:
    """Every way the password could appear: as it is, encoded, escaped, and its distinctive pieces."""
    forms = {password, quote(password, safe=""), quote(password), quote_plus(password),
             password.replace("\\", "\\\\").replace("'", "\\'")}
    forms.update(piece for piece in re.split(r"[^0-9A-Za-zÀ-ÿ€]+", password) if len(piece) >= 5)
    return forms


def assert_hidden(text: str, password: str, where: str) -> None:
    for shown in (text, html.unescape(text)):
        for form in hidden_forms(password):
            assert form not in shown, f"{where} shows {form!r}"


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def corpus_users():
    """RabbitMQ users whose passwords are corpus entries: proof that a pasted URL was understood."""
    users = {key: services.unique(f"corpus_{key}") for key in CONNECTING}
    try:
        for key, user in users.items():
            rabbitmqctl("add_user", user, CORPUS[key])
            rabbitmqctl("set_permissions", user, ".*", ".*", ".*")
        yield users
    finally:
        for user in users.values():
            subprocess.run(["rabbitmqctl", "-q", "delete_user", user], capture_output=True)


def _yaml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a YAML double-quoted scalar


def _libpq_quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("key", sorted(CORPUS))
def test_no_password_of_the_corpus_appears_anywhere(key, corpus_users, source_dsn, pgq_queue, admin_client,
                                                    client, settings, caplog, tmp_path):
    password = CORPUS[key]
    user = corpus_users.get(key, "nobody-" + key)
    settings.RELAY_HEALTH_TOKEN = "corpus-token"
    settings.RELAY_HEALTH_DEADLINE_SECONDS = 30
    cache.clear()
    caplog.set_level(logging.DEBUG)
    database = source_dsn.rsplit("/", 1)[1]
    encoded = quote(password, safe="")
    workers = {
        "raw": (f"postgresql://postgres:{password}@127.0.0.1:5432/{database}",
                f"rabbitmq_url: {_yaml(f'amqp://{user}:{password}@127.0.0.1:5672/%2f')}"),
        "encoded": (f"postgresql://postgres:{encoded}@127.0.0.1:5432/{database}",
                    f"rabbitmq_url: {_yaml(f'amqp://{user}:{encoded}@127.0.0.1:5672/%2f')}"),
        "mapping": (f"host=127.0.0.1 dbname={database} user=postgres password={_libpq_quoted(password)}",
                    f"rabbitmq: {{host: 127.0.0.1, username: {user}, password: {_yaml(password)}}}"),
    }

    def config(names):
        lines = ["Application:", "  workers:"]
        for name in names:
            postgres_url, rabbitmq = workers[name]
            lines += [f"    {key}-{name}:", f"      queue: {pgq_queue}", f"      consumer_name: c_{name}",
                      f"      postgres_url: {_yaml(postgres_url)}", "      retry_delay: 0", f"      {rabbitmq}"]
        path = tmp_path / "mikkoo.yml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return str(path)

    outputs = []
    out = StringIO()
    try:
        call_command("import_mikkoo", config(workers), stdout=out)
    except CommandError as refused:  # a password that cannot be told apart is refused, without showing it
        outputs.append(("import error", str(refused)))
        assert "percent-encode" in str(refused)
        call_command("import_mikkoo", config(["encoded", "mapping"]), stdout=out)
    outputs.append(("import output", out.getvalue()))
    queues = list(RelayedQueue.objects.select_related("connection").order_by("name"))
    assert len(queues) >= 2

    for queue in queues:
        # Understood means stored percent-encoded, as libpq and kombu read it: the very password. (Only a % before
        # two hex digits, pasted as it is, reads as percent-encoding, as URLs say: that one is not understood.)
        if not (key == "looks-encoded" and queue.name.endswith("-raw")):
            assert psycopg2.extensions.parse_dsn(queue.source_url)["password"] == password
            stored = queue.connection.to_settings()
            assert password in (stored.password, parse_url(stored.url).password if stored.url else None)
        out = StringIO()
        try:
            call_command("relay_once", queue.name, stdout=out)
            outputs.append((f"relay_once {queue.name}", out.getvalue()))
            assert key in CONNECTING, "connected with a user that does not exist?"
        except CommandError as failed:
            outputs.append((f"relay_once {queue.name} error", str(failed)))
            assert key not in CONNECTING, f"{queue.name}: {failed}"
            assert "ACCESS_REFUSED" in str(failed), str(failed)

    out, err = StringIO(), StringIO()
    try:
        call_command("relay_health", stdout=out, stderr=err)
    except CommandError as unhealthy:
        outputs.append(("relay_health error", str(unhealthy)))
    outputs.append(("relay_health", out.getvalue() + err.getvalue()))
    detailed = client.get("/health/", HTTP_AUTHORIZATION="Bearer corpus-token")
    assert all("problems" in q for q in detailed.json()["queues"].values())
    for name, response in [("/health/", detailed), ("anonymous /health/", client.get("/health/")),
                           ("/metrics", client.get("/metrics"))]:
        body = response.content.decode()
        if response["Content-Type"].startswith("application/json"):
            body += json.dumps(response.json(), ensure_ascii=False)
        outputs.append((name, body))

    pages = [reverse(f"admin:relay_{model}_changelist") for model in ("relayedqueue", "brokerconnection",
                                                                       "deadletter", "auditstatus")]
    for queue in queues:
        pages += [reverse("admin:relay_relayedqueue_change", args=[queue.pk]),
                  reverse("admin:relay_brokerconnection_change", args=[queue.connection.pk]),
                  reverse("admin:relay_relayedqueue_history", args=[queue.pk]),
                  reverse("admin:relay_auditstatus_outstanding", args=[queue.name])]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        outputs.append((page, response.content.decode()))

    outputs.append(("logs", caplog.text))
    outputs += [(f"log record {r.name}", str(r.args)) for r in caplog.records if r.args]
    for where, text in outputs:
        assert_hidden(text, password, where)


def test_the_url_module_understands_or_refuses_every_corpus_password():
    for key, password in CORPUS.items():
        for scheme, host in (("amqp", "rabbit:5672"), ("postgresql", "db1:5432,db2:5433")):
            encoded = f"{scheme}://relay:{quote(password, safe='')}@{host}/x"
            assert parse_url(encoded).password == password
            assert redact_url(encoded) == f"{scheme}://relay:***@{host}/x"
            raw = f"{scheme}://relay:{password}@{host}/x"
            try:
                url = parse_url(raw)
            except InvalidConnectionString as refused:
                assert_hidden(str(refused), password, f"{key}: the refusal")
                assert_hidden(redact_url(raw), password, f"{key}: the redacted refused URL")
                continue
            if key != "looks-encoded":  # a % before two hex digits reads as percent-encoding, as URLs say
                assert url.password == password, key
                assert parse_url(url.rebuild()).password == password
            assert redact_url(raw) == f"{scheme}://relay:***@{host}/x", key
        conninfo = f"host=db password={_libpq_quoted(password)} dbname=app"
        assert redact_url(conninfo) == "host=db password=*** dbname=app"
        assert psycopg2.extensions.parse_dsn(conninfo)["password"] == password


def test_a_library_message_is_scrubbed_of_the_password_in_every_form():
    password = CORPUS["everything"]
    message = f"could not connect to {quote(password, safe='')} or {password} or {quote_plus(password)}"
    assert_hidden(scrub(message, password), password, "scrubbed message")
