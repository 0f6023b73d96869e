"""relay.producer on the real PostgreSQL + PgQ and RabbitMQ: what a producer's transaction commits arrives, no more.

Events are written with psycopg2 and psycopg 3 cursors and through Django's
connection in a project without the relay's app, relayed by the engine, and
read back from RabbitMQ. What the relay would refuse is refused before it is
written, and the same columns written by hand are what the relay dead-letters.
"""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import textwrap
import uuid
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import psycopg2
import psycopg2.extensions
import psycopg2.extras
import pytest
from psycopg.rows import dict_row

from relay.amqp.mapping import event_to_message
from relay.amqp.message import EXPIRATION_MAX_MS, MAX_DEPTH, MessageLimits, PoisonEvent
from relay.core.events import Event
from relay.core.identity import RelayIdentity
from relay.engine.settings import AmqpTargetSettings, QueueSettings
from relay.engine.targets import engine_for
from relay.producer import InvalidEvent, publish, publish_many

from . import services

ROOT = Path(__file__).resolve().parent.parent


def relay(settings):
    return engine_for(settings).run()


@pytest.fixture(params=["psycopg2", "psycopg"])
def connect(request):
    """Open connections (not in autocommit) to a database with one driver or the other; all closed afterwards."""
    opened = []

    def open_connection(dsn: str):
        connection = psycopg2.connect(dsn) if request.param == "psycopg2" else psycopg.connect(dsn)
        opened.append(connection)
        return connection

    yield open_connection
    for connection in opened:
        connection.close()


@pytest.fixture
def audited_settings(audited_dsn, audited_queue, broker_settings):
    return QueueSettings(name=audited_queue, queue_name=audited_queue, source_dsn=audited_dsn,
                         target=AmqpTargetSettings(broker=broker_settings), max_failures=3, retry_delay=0)


def stored(dsn: str, queue: str) -> list[Event]:
    with services.connect(dsn) as conn, conn.cursor() as cur:
        return [Event(*row) for row in services.stored_events(cur, queue)]


def tick_and_relay(dsn, queue, settings, amqp, target, expected):
    services.tick(dsn, queue)
    result = relay(settings)
    return result, services.drain(amqp, target, expected=expected)


# --- what a committed transaction writes arrives -----------------------------------------------------------------

def test_a_committed_event_arrives_with_everything_it_was_given(
        connect, source_dsn, pgq_queue, queue_settings, exchange, bind_queue, amqp):
    target = bind_queue(exchange, "order.#")
    order_id = uuid.UUID("5d6e1b3c-8f0a-4c2e-9b7d-1a2b3c4d5e6f")
    conn = connect(source_dsn)
    with conn.cursor() as cursor:
        event_id = publish(
            pgq_queue, "order.created",
            {"id": order_id, "total": Decimal("12.50"), "day": datetime.date(2026, 12, 6), "lines": [1, 2]},
            exchange=exchange, headers={"tenant": "acme", "n": 7, "nested": {"a": [1, 2.5, None, True]}},
            properties={"type": "order", "priority": 5, "expiration": "600000", "correlation_id": "c-1",
                        "app_id": "shop/2", "delivery_mode": 1}, cursor=cursor)
    conn.commit()

    result, [message] = tick_and_relay(source_dsn, pgq_queue, queue_settings, amqp, target, 1)

    assert (result.published, result.dead_lettered) == (1, 0)
    [event] = stored(source_dsn, pgq_queue)
    assert event.id == event_id
    assert message.delivery_info["exchange"] == exchange
    assert message.delivery_info["routing_key"] == "order.created"
    assert json.loads(message.body) == {"id": str(order_id), "total": "12.50", "day": "2026-12-06", "lines": [1, 2]}
    props = message.properties
    assert props["content_type"] == "application/json"
    assert {name: props[name] for name in ("type", "priority", "expiration", "correlation_id", "app_id",
                                           "delivery_mode")} == {
        "type": "order", "priority": 5, "expiration": "600000", "correlation_id": "c-1", "app_id": "shop/2",
        "delivery_mode": 1}
    headers = props["application_headers"]
    assert {key: headers[key] for key in ("tenant", "n", "nested")} == {
        "tenant": "acme", "n": 7, "nested": {"a": [1, 2.5, None, True]}}
    assert set(headers) == {"tenant", "n", "nested", "origin", "sequence", "timestamp", "txid"}


def test_bytes_and_text_bodies_arrive_as_they_were_and_set_no_content_type(
        connect, source_dsn, pgq_queue, queue_settings, exchange, bind_queue, amqp):
    target = bind_queue(exchange)
    conn = connect(source_dsn)
    with conn.cursor() as cursor:
        publish(pgq_queue, "raw.bytes", "grüße\r\n".encode(), exchange=exchange, cursor=cursor)
        publish(pgq_queue, "raw.text", "😀 {not json", exchange=exchange, cursor=cursor)
        publish(pgq_queue, "raw.typed", b"<a/>", exchange=exchange, content_type="application/xml", cursor=cursor)
        publish(pgq_queue, "raw.empty", b"", exchange=exchange, cursor=cursor)
    conn.commit()

    _, messages = tick_and_relay(source_dsn, pgq_queue, queue_settings, amqp, target, 4)

    # py-amqp hands an empty body over as ""
    assert [(m.delivery_info["routing_key"], m.body or b"", m.properties.get("content_type")) for m in messages] == [
        ("raw.bytes", "grüße\r\n".encode(), None), ("raw.text", "😀 {not json".encode(), None),
        ("raw.typed", b"<a/>", "application/xml"), ("raw.empty", b"", None)]


def test_a_rolled_back_event_never_arrives(connect, source_dsn, pgq_queue, queue_settings, exchange, bind_queue,
                                           amqp):
    target = bind_queue(exchange)
    conn = connect(source_dsn)
    with conn.cursor() as cursor:
        publish(pgq_queue, "rolled.back", {"n": 1}, exchange=exchange, cursor=cursor)
        publish_many(pgq_queue, [{"routing_key": "rolled.back", "body": {"n": n}, "exchange": exchange}
                                 for n in range(2, 5)], cursor=cursor)
    conn.rollback()
    with conn.cursor() as cursor:
        publish(pgq_queue, "committed", {"n": 5}, exchange=exchange, cursor=cursor)
    conn.commit()

    result, messages = tick_and_relay(source_dsn, pgq_queue, queue_settings, amqp, target, 1)

    assert result.published == 1
    assert [(m.delivery_info["routing_key"], json.loads(m.body)) for m in messages] == [("committed", {"n": 5})]
    assert services.drain(amqp, target, timeout=0.5) == []


def test_dict_rows_give_the_event_ids_too(source_dsn, pgq_queue):
    with psycopg.connect(source_dsn, row_factory=dict_row) as conn, conn.cursor() as cursor:
        first = publish(pgq_queue, "a", "x", cursor=cursor)
        rest = publish_many(pgq_queue, [{"routing_key": "b", "body": "y"}] * 2, cursor=cursor)
    with services.connect(source_dsn) as conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
        last = publish(pgq_queue, "c", "z", cursor=cursor)
    assert [first, *rest, last] == [event.id for event in stored(source_dsn, pgq_queue)]


class CountingCursor(psycopg2.extensions.cursor):
    """A psycopg2 cursor that counts the statements it runs."""

    statements = 0

    def execute(self, query, vars=None):
        self.statements += 1
        return super().execute(query, vars)


def test_ten_thousand_events_go_in_one_statement_and_arrive_in_order(
        source_dsn, pgq_queue, queue_settings, exchange, bind_queue, amqp):
    target = bind_queue(exchange, "bulk.#")
    count = 10_000
    with services.connect(source_dsn, autocommit=False) as conn:
        with conn.cursor(cursor_factory=CountingCursor) as cursor:
            ids = publish_many(pgq_queue, ({"routing_key": "bulk.made", "body": {"n": n}, "exchange": exchange,
                                            "headers": {"n": n}} for n in range(count)), cursor=cursor)
        conn.commit()
    assert cursor.statements == 1

    services.tick(source_dsn, pgq_queue)
    result = relay(queue_settings)
    messages = services.consume(amqp, target, count)

    assert (result.published, result.dead_lettered) == (count, 0)
    assert ids == sorted(ids) and len(set(ids)) == count
    assert [json.loads(m.body)["n"] for m in messages] == list(range(count))
    assert [m.properties["application_headers"]["n"] for m in messages] == list(range(count))


def test_no_events_write_nothing(source_dsn, pgq_queue):
    with services.connect(source_dsn, autocommit=False) as conn, conn.cursor(cursor_factory=CountingCursor) as cursor:
        assert publish_many(pgq_queue, [], cursor=cursor) == []
    assert cursor.statements == 0


# --- audited ---------------------------------------------------------------------------------------------------

def audit_row(cursor, queue: str, event_id: int) -> tuple:
    cursor.execute("SELECT message_id::text, queue, exchange, routing_key, payload, content_type, properties, "
                   "headers FROM mikkoo.audit WHERE queue = %s AND event_id = %s", (queue, event_id))
    return cursor.fetchone()


def test_audited_writes_what_mikkoo_insert_audited_event_writes(connect, audited_dsn, audited_queue):
    conn = connect(audited_dsn)
    with conn.cursor() as cursor:
        cursor.execute("SELECT mikkoo.insert_audited_event(%s, 'events', 'order.created', %s, 'application/json')",
                       (audited_queue, '{"id": 42}'))
        (by_sql,) = cursor.fetchone()
        by_publish = publish(audited_queue, "order.created", '{"id": 42}', exchange="events",
                             content_type="application/json", audited=True, cursor=cursor)
        rows = {event[0]: event for event in services.stored_events(cursor, audited_queue)}
        audits = {event_id: audit_row(cursor, audited_queue, event_id) for event_id in (by_sql, by_publish)}
    conn.commit()

    sql_event, published = Event(*rows[by_sql]), Event(*rows[by_publish])
    sql_audit, publish_audit = audits[by_sql], audits[by_publish]
    message_id = publish_audit[0]
    # the same JSON text, each with its own message id
    assert sql_event.extra3 == f'{{"message_id": "{sql_audit[0]}"}}'
    assert published.extra3 == f'{{"message_id": "{message_id}"}}'
    assert (published.type, published.data, published.extra1, published.extra2, published.extra4) == (
        sql_event.type, sql_event.data, sql_event.extra1, sql_event.extra2, sql_event.extra4)
    assert publish_audit[1:6] == sql_audit[1:6] == (audited_queue, "events", "order.created", '{"id": 42}',
                                                    "application/json")
    assert publish_audit[6:] == (published.extra3, published.extra4)
    assert sql_audit[6:] == (sql_event.extra3, sql_event.extra4)
    assert uuid.UUID(message_id).version == 4


def test_an_audited_event_arrives_with_its_audit_message_id_and_is_marked_confirmed(
        audited_dsn, audited_queue, audited_settings, exchange, bind_queue, amqp):
    target = bind_queue(exchange)
    with services.connect(audited_dsn, autocommit=False) as conn, conn.cursor() as cursor:
        single = publish(audited_queue, "order.created", {"id": 1}, exchange=exchange, headers={"tenant": "acme"},
                         properties={"type": "order"}, audited=True, cursor=cursor)
        many = publish_many(audited_queue, [{"routing_key": "order.paid", "body": {"id": n}, "exchange": exchange}
                                            for n in (2, 3)], audited=True, cursor=cursor)
        audits = [audit_row(cursor, audited_queue, event_id) for event_id in (single, *many)]
        conn.commit()

    result, messages = tick_and_relay(audited_dsn, audited_queue, audited_settings, amqp, target, 3)

    assert (result.published, result.dead_lettered) == (3, 0)
    assert [m.properties["message_id"] for m in messages] == [audit[0] for audit in audits]
    assert [m.properties["application_headers"]["pgq_queue"] for m in messages] == [audited_queue] * 3
    assert messages[0].properties["application_headers"]["tenant"] == "acme"
    assert messages[0].properties["type"] == "order"
    assert json.loads(audits[0][6]) == {"type": "order", "message_id": audits[0][0]}
    assert json.loads(audits[0][7]) == {"tenant": "acme", "pgq_queue": audited_queue}
    rows = services.audit_rows(audited_dsn, audited_queue)
    assert [row[0] for row in rows] == [audit[0] for audit in audits]
    assert all(confirmed and not dead for _, confirmed, dead, _ in rows)


@pytest.mark.parametrize(("given", "field"), [
    ({"properties": {"message_id": str(uuid.uuid4())}}, "properties"),
    ({"headers": {"pgq_queue": "other"}}, "headers"),
])
def test_audited_refuses_what_it_sets_itself(audited_dsn, audited_queue, given, field):
    with services.connect(audited_dsn, autocommit=False) as conn, conn.cursor() as cursor:
        with pytest.raises(InvalidEvent, match="set by audited=True") as refused:
            publish(audited_queue, "r", "b", audited=True, cursor=cursor, **given)
        assert refused.value.field == field
        assert services.stored_events(cursor, audited_queue) == []
        cursor.execute("SELECT count(*) FROM mikkoo.audit WHERE queue = %s", (audited_queue,))
        assert cursor.fetchone() == (0,)


# --- refused at the source -------------------------------------------------------------------------------------

def nested(levels: int) -> dict:
    table: dict = {"leaf": 1}
    for _ in range(levels - 1):
        table = {"a": table}
    return table


#: Events any relay dead-letters as invalid: (publish's arguments, the argument named, words of the rule).
RELAY_REFUSES = {
    "headers nested too deep": ({"headers": nested(MAX_DEPTH + 1)}, "headers", "nested deeper than 100 levels"),
    "NaN": ({"headers": {"x": float("nan")}}, "headers", "NaN"),
    "Infinity": ({"headers": {"x": [float("inf")]}}, "headers", "Infinity"),
    "integer beyond 64 bits": ({"headers": {"x": 2**63}}, "headers", "64-bit range"),
    "header key over 255 bytes": ({"headers": {"é" * 128: 1}}, "headers", "key longer than 255 bytes"),
    "CC not an array": ({"headers": {"CC": "a.b"}}, "headers", "must be an array of routing keys"),
    "headers over the default frame size": ({"headers": {"pad": "x" * 131_072}}, "headers and properties",
                                            "more than the 131052 bytes a content-header frame holds"),
    "routing key over 255 bytes": ({"routing_key": "r" * 256}, "routing_key", "longer than the 255 bytes"),
    "exchange over 255 bytes": ({"exchange": "e" * 256}, "exchange", "longer than the 255 bytes"),
    "content type over 255 bytes": ({"content_type": "t" * 256}, "content_type", "longer than the 255 bytes"),
    "short-string property over 255 bytes": ({"properties": {"type": "t" * 256}}, "properties",
                                             "'type' is longer than 255 bytes"),
    "priority over 255": ({"properties": {"priority": 256}}, "properties", "'priority' must be an integer from 0"),
    "expiration over ten years": ({"properties": {"expiration": str(EXPIRATION_MAX_MS + 1)}}, "properties",
                                  "'expiration' must be at most"),
    "expiration not milliseconds": ({"properties": {"expiration": "1h"}}, "properties",
                                    "'expiration' must be milliseconds"),
    "delivery mode 3": ({"properties": {"delivery_mode": 3}}, "properties", "1 (transient) or 2 (persistent)"),
    "unknown property": ({"properties": {"reply_too": "x"}}, "properties", "unknown AMQP properties: reply_too"),
    "timestamp as text": ({"properties": {"timestamp": "2026-12-06"}}, "properties", "'timestamp' must be an integer"),
}
#: Events PostgreSQL or the producer's arguments cannot carry as they are.
SOURCE_REFUSES = {
    "body bytes not UTF-8": ({"body": b"\xff\xfe"}, "body", "bytes that are not UTF-8 (byte 0)"),
    "NUL in the body": ({"body": b"a\x00b"}, "body", "NUL character (at 1), which PostgreSQL text cannot hold"),
    "NUL in the routing key": ({"routing_key": "a\x00"}, "routing_key", "NUL character"),
    # a relay's rule too, but neither driver sends such text to PostgreSQL
    "lone surrogate in the body": ({"body": "\udc00"}, "body", "lone surrogate"),
    "lone surrogate in a header": ({"headers": {"x": "\ud800"}}, "headers", "lone surrogate"),
    "NaN in a JSON body": ({"body": {"x": float("nan")}}, "body", "not JSON compliant"),
    "headers as a property": ({"properties": {"headers": {"a": 1}}}, "properties",
                              "'headers' are given by the headers argument"),
    "a value JSON cannot encode": ({"headers": {"x": object()}}, "headers", "is not JSON serializable"),
}


def columns_written_by_hand(given: dict) -> tuple:
    """The columns ``publish`` would write for ``given``, JSON made by json.dumps: what a producer wrote before."""
    values = {"routing_key": "refused", "body": "body", "exchange": "", "content_type": None, "headers": None,
              "properties": None, **given}
    extras = [json.dumps(values[name], ensure_ascii=False) if values[name] else None
              for name in ("properties", "headers")]
    return values["routing_key"], values["body"], values["exchange"], values["content_type"], *extras


@pytest.mark.parametrize("case", [*RELAY_REFUSES, *SOURCE_REFUSES])
def test_what_cannot_be_relayed_is_refused_before_anything_is_written(case, connect, source_dsn, pgq_queue):
    given, field, rule = {**RELAY_REFUSES, **SOURCE_REFUSES}[case]
    conn = connect(source_dsn)
    with conn.cursor() as cursor:
        before = publish(pgq_queue, "good", "before", cursor=cursor)
        arguments = {"routing_key": "refused", "body": "body", **given}
        with pytest.raises(InvalidEvent) as refused:
            publish(pgq_queue, arguments.pop("routing_key"), arguments.pop("body"), cursor=cursor, **arguments)
        with pytest.raises(InvalidEvent) as refused_in_many:
            publish_many(pgq_queue, [{"routing_key": "good", "body": "x"}, {"routing_key": "refused", "body": "body",
                                                                           **given}], cursor=cursor)
        # The transaction is unharmed: the next event is written and commits with the first.
        after = publish(pgq_queue, "good", "after", cursor=cursor)
    conn.commit()

    assert isinstance(refused.value, ValueError)
    assert refused.value.field == field
    assert rule in refused.value.rule
    assert str(refused.value).startswith(f"{field}: ")
    assert str(refused_in_many.value) == f"events[1].{refused.value}"
    assert [(event.id, event.data) for event in stored(source_dsn, pgq_queue)] == [(before, "before"),
                                                                                  (after, "after")]


def test_the_relay_dead_letters_each_refused_event_written_by_hand_for_the_same_reason(
        connect, source_dsn, pgq_queue, queue_settings, bind_queue, amqp):
    """The other half: what publish refuses by the relay's rules, the relay refuses too, in the same words."""
    target = bind_queue("")
    conn = connect(source_dsn)
    with conn.cursor() as cursor:
        rules = []
        for given, _, _ in RELAY_REFUSES.values():
            arguments = {"routing_key": "refused", "body": "body", **given}
            with pytest.raises(InvalidEvent) as refused:
                publish(pgq_queue, arguments.pop("routing_key"), arguments.pop("body"), cursor=cursor, **arguments)
            rules.append(refused.value.rule)
    conn.rollback()
    rows = [columns_written_by_hand(given) for given, _, _ in RELAY_REFUSES.values()]
    # and a valid event, through the default exchange to the test's queue: the run relayed what it could
    services.insert_events(source_dsn, pgq_queue, [*rows, (target, "valid", "", None, None, None)])
    services.tick(source_dsn, pgq_queue)

    result = relay(queue_settings)

    assert (result.published, result.dead_lettered) == (1, len(RELAY_REFUSES))
    assert [m.body for m in services.drain(amqp, target, expected=1)] == [b"valid"]
    reasons = [reason for (reason,) in services.sql(
        source_dsn, "SELECT reason FROM mikkoo_relay.dead_letter WHERE queue_name = %s ORDER BY ev_id", (pgq_queue,))]
    # The header size alone depends on the relay: publish counts the widest relay's own fields.
    size = "the properties and headers take "
    assert [reason[:len(size)] if reason.startswith(size) else reason for reason in reasons] == [
        rule[:len(size)] if rule.startswith(size) else rule for rule in rules]


def test_headers_are_refused_when_a_relay_on_a_long_host_name_could_not_send_them(source_dsn, pgq_queue):
    """The relay's own fields count at their largest: its host name, in the origin header, may be 253 bytes."""
    def fits(pad: int, origin: str) -> bool:
        event = Event(id=1, time=datetime.datetime.now(datetime.UTC), txid=2**40, retry=None, type="r", data="b",
                      extra1="", extra4=json.dumps({"pad": "x" * pad}))
        try:
            event_to_message(event, queue=pgq_queue, identity=RelayIdentity("mikkoo-relay/0.1.0", origin),
                             persistent=True, correlation_id=str(uuid.uuid4()), sequence=2**62,
                             limits=MessageLimits(frame_max=131072))
        except PoisonEvent:
            return False
        return True

    low, high = 130_000, 131_072  # the largest pad a relay on a short host name sends
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle, "relay-1") else (low, middle - 1)
    assert not fits(low, "h" * 253)
    with services.connect(source_dsn, autocommit=False) as conn, conn.cursor() as cursor:
        with pytest.raises(InvalidEvent, match="more than the 131052 bytes"):
            publish(pgq_queue, "r", "b", headers={"pad": "x" * low}, cursor=cursor)
        publish(pgq_queue, "r", "b", headers={"pad": "x" * (low - 1000)}, cursor=cursor)


def test_wrong_types_and_both_connections_are_type_errors(source_dsn, pgq_queue):
    with services.connect(source_dsn, autocommit=False) as conn, conn.cursor() as cursor:
        with pytest.raises(TypeError, match="routing_key must be a str, not int"):
            publish(pgq_queue, 42, "b", cursor=cursor)
        with pytest.raises(TypeError, match="headers must be a mapping, not list"):
            publish(pgq_queue, "r", "b", headers=[("a", 1)], cursor=cursor)
        with pytest.raises(TypeError, match="unexpected keyword argument 'exchang'"):
            publish_many(pgq_queue, [{"routing_key": "r", "body": "b", "exchang": "x"}], cursor=cursor)
        with pytest.raises(TypeError, match="either cursor or using"):
            publish(pgq_queue, "r", "b", using="default", cursor=cursor)
        assert services.stored_events(cursor, pgq_queue) == []


# --- without the relay's Django app ----------------------------------------------------------------------------

def run_python(*args: str, cwd: Path = ROOT, path: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess:
    """``python *args`` with the project importable and none of its settings in the environment."""
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("DJANGO_", "DATABASE_URL", "CELERY_"))}
    environment.update(env, PYTHONPATH=os.pathsep.join([*path, str(ROOT)]))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=120)


def test_the_producer_imports_no_django_and_writes_without_it(source_dsn, pgq_queue):
    result = run_python("-c", textwrap.dedent(f"""
        import sys
        import psycopg
        from relay.producer import publish
        with psycopg.connect({source_dsn!r}) as conn, conn.cursor() as cursor:
            publish({pgq_queue!r}, "plain", {{"n": 1}}, headers={{"a": [1]}}, cursor=cursor)
        print(sorted({{name.split(".")[0] for name in sys.modules}} & {{"django", "celery", "kombu"}}))
    """))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert [event.type for event in stored(source_dsn, pgq_queue)] == ["plain"]


DJANGO_SETTINGS = """\
SECRET_KEY = "producer-test"
INSTALLED_APPS = ["django.contrib.contenttypes"]
USE_TZ = True
_DATABASE = {{"ENGINE": "django.db.backends.postgresql", "NAME": {name!r}, "USER": {user!r},
             "HOST": {host!r}, "PORT": {port!r}}}
DATABASES = {{"default": _DATABASE, "events": dict(_DATABASE)}}
"""

DJANGO_PRODUCER = """\
import datetime, sys
import django
django.setup()
from django.db import connection, transaction
from relay.producer import publish, publish_many

queue, exchange = sys.argv[1], sys.argv[2]
with transaction.atomic():
    publish(queue, "django.kept", {"day": datetime.date(2026, 12, 6)}, exchange=exchange)
try:
    with transaction.atomic():
        publish(queue, "django.rolled-back", {"n": 1}, exchange=exchange)
        raise RuntimeError("the order could not be saved")
except RuntimeError:
    pass
try:
    with transaction.atomic(using="events"):
        publish_many(queue, [{"routing_key": "django.rolled-back", "body": "x", "exchange": exchange}], using="events")
        raise RuntimeError("the order could not be saved")
except RuntimeError:
    pass
with transaction.atomic(using="events"):
    publish_many(queue, [{"routing_key": "django.kept-too", "body": "y", "exchange": exchange}], using="events")
assert not {"relay.apps", "relay.models"} & set(sys.modules), "the relay's app was imported"
print(connection.Database.__name__)
"""


def test_a_django_project_without_the_relay_app_publishes_in_its_atomic_blocks(
        tmp_path, source_dsn, pgq_queue, queue_settings, exchange, bind_queue, amqp):
    target = bind_queue(exchange, "django.#")
    url = urlsplit(source_dsn)
    (tmp_path / "shop_settings.py").write_text(DJANGO_SETTINGS.format(
        name=url.path.lstrip("/"), user=url.username, host=url.hostname, port=str(url.port or 5432)))
    result = run_python("-c", DJANGO_PRODUCER, pgq_queue, exchange, cwd=tmp_path, path=(str(tmp_path),),
                        DJANGO_SETTINGS_MODULE="shop_settings")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "psycopg"  # Django's backend, on psycopg 3 when it is installed

    relayed, messages = tick_and_relay(source_dsn, pgq_queue, queue_settings, amqp, target, 2)

    assert relayed.published == 2
    assert [(m.delivery_info["routing_key"], m.body, m.properties.get("content_type")) for m in messages] == [
        ("django.kept", b'{"day": "2026-12-06"}', "application/json"), ("django.kept-too", b"y", None)]
