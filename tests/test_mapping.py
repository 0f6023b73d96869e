"""SPEC §2, event to AMQP message: table-driven unit tests of the pure mapping (no database, no broker).

Every row of the column table, every automatic value, every precedence rule, the
worked example, the stability of ``message_id`` and the events that can never be
published (``PoisonEvent``).
"""
from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from relay.amqp.mapping import event_to_message
from relay.amqp.message import Message, PoisonEvent
from relay.amqp.properties import parse_headers, parse_properties
from relay.core.events import Event
from relay.core.identity import stable_message_id

from .mapping_values import CORRELATION_ID, IDENTITY

pytestmark = pytest.mark.pure  # no service, no process: the fast tier (pytest -m "not slow")

QUEUE = "test"
SEQUENCE = 42
EV_TIME = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
EV_TIME_ISO = "2024-01-02T03:04:05+00:00"
EV_TIME_EPOCH = 1704164645
TXID = 987654
AUTOMATIC_HEADERS = {"origin": IDENTITY.origin, "sequence": SEQUENCE, "timestamp": EV_TIME_ISO, "txid": TXID}
ABSENT = "<absent>"


def make_event(**fields) -> Event:
    """An event as PgQ hands it out; ``fields`` override the defaults (names of :class:`Event`)."""
    defaults = {"id": 1001, "time": EV_TIME, "txid": TXID, "retry": None, "type": "test.routing-key",
                "data": "payload"}
    return Event(**{**defaults, **fields})


def to_message(event: Event | None = None, *, queue: str = QUEUE, persistent: bool = True, **fields) -> Message:
    return event_to_message(event or make_event(**fields), queue=queue, identity=IDENTITY,
                            persistent=persistent, correlation_id=CORRELATION_ID, sequence=SEQUENCE)


def pick(message: Message, path: str):
    """What a consumer sees at ``path``: ``exchange``, ``routing_key``, ``body``, a property or ``headers.<key>``."""
    if path in ("exchange", "routing_key", "body"):
        return getattr(message, path)
    if path.startswith("headers."):
        return message.properties["headers"].get(path.removeprefix("headers."), ABSENT)
    return message.properties.get(path, ABSENT)


def assert_same_value(actual, expected) -> None:
    """Equal and of the same type: 1 is not True and 1 is not 1.0 for a consumer."""
    assert actual == expected
    assert type(actual) is type(expected)


# --- the column table ---------------------------------------------------------------------------

COLUMNS = [
    pytest.param({"type": "test.routing-key"}, "routing_key", "test.routing-key", id="ev_type-is-routing-key"),
    pytest.param({"type": ""}, "routing_key", "", id="ev_type-empty-is-empty-routing-key"),
    pytest.param({"type": None}, "routing_key", "", id="ev_type-null-is-empty-routing-key"),
    pytest.param({"data": '{"foo": "bar"}'}, "body", b'{"foo": "bar"}', id="ev_data-is-body"),
    pytest.param({"data": "grüße €"}, "body", "grüße €".encode(), id="ev_data-body-is-utf8"),
    pytest.param({"data": ""}, "body", b"", id="ev_data-empty-is-empty-body"),
    pytest.param({"data": None}, "body", b"", id="ev_data-null-is-empty-body"),
    pytest.param({"extra1": "postgres"}, "exchange", "postgres", id="ev_extra1-is-exchange"),
    pytest.param({"extra1": ""}, "exchange", "", id="ev_extra1-empty-is-default-exchange"),
    pytest.param({"extra1": None}, "exchange", "", id="ev_extra1-null-is-default-exchange"),
    pytest.param({"extra2": "application/json"}, "content_type", "application/json", id="ev_extra2-is-content_type"),
    pytest.param({"extra2": ""}, "content_type", ABSENT, id="ev_extra2-empty-no-content_type"),
    pytest.param({"extra2": None}, "content_type", ABSENT, id="ev_extra2-null-no-content_type"),
    pytest.param({"extra4": '{"tenant": "acme"}'}, "headers.tenant", "acme", id="ev_extra4-is-headers"),
    pytest.param({}, "headers.timestamp", EV_TIME_ISO, id="ev_time-is-headers.timestamp"),
    pytest.param({}, "timestamp", EV_TIME_EPOCH, id="ev_time-is-timestamp-epoch-seconds"),
    pytest.param({"time": EV_TIME.astimezone(timezone(timedelta(hours=2)))}, "headers.timestamp", EV_TIME_ISO,
                 id="ev_time-other-timezone-headers.timestamp-in-utc"),
    pytest.param({"time": EV_TIME.astimezone(timezone(timedelta(hours=-5, minutes=-30)))}, "timestamp",
                 EV_TIME_EPOCH, id="ev_time-other-timezone-same-epoch"),
    pytest.param({"time": EV_TIME.replace(microsecond=678901)}, "headers.timestamp",
                 "2024-01-02T03:04:05.678901+00:00", id="ev_time-microseconds-kept-in-header"),
    pytest.param({"time": EV_TIME.replace(microsecond=678901)}, "timestamp", EV_TIME_EPOCH,
                 id="ev_time-microseconds-truncated-in-timestamp"),
    pytest.param({"txid": 123}, "headers.txid", 123, id="ev_txid-is-headers.txid"),
]


@pytest.mark.parametrize(("fields", "path", "expected"), COLUMNS)
def test_pgq_column_maps_to(fields, path, expected):
    assert_same_value(pick(to_message(**fields), path), expected)


EXTRA3_PROPERTIES = [
    pytest.param("app_id", "billing", id="app_id"),
    pytest.param("content_encoding", "gzip", id="content_encoding"),
    pytest.param("content_type", "text/plain", id="content_type"),
    pytest.param("correlation_id", "order-17", id="correlation_id"),
    pytest.param("delivery_mode", 1, id="delivery_mode-1"),
    pytest.param("delivery_mode", 2, id="delivery_mode-2"),
    pytest.param("expiration", "60000", id="expiration-ms-as-text"),
    pytest.param("expiration", "0", id="expiration-zero"),
    pytest.param("message_id", "order-17-created", id="message_id"),
    pytest.param("priority", 0, id="priority-0"),
    pytest.param("priority", 9, id="priority-9"),
    pytest.param("priority", 255, id="priority-255"),
    pytest.param("timestamp", 1700000000, id="timestamp"),
    pytest.param("timestamp", 0, id="timestamp-0"),
    pytest.param("type", "example", id="type"),
    pytest.param("user_id", "guest", id="user_id"),
]


@pytest.mark.parametrize(("name", "value"), EXTRA3_PROPERTIES)
def test_ev_extra3_property_passes_through_with_its_type(name, value):
    message = to_message(extra3=json.dumps({name: value}))
    assert_same_value(message.properties[name], value)
    assert parse_properties(json.dumps({name: value})) == {name: value}


def test_ev_extra3_headers_object_is_the_headers_property():
    message = to_message(extra3='{"headers": {"tenant": "acme", "n": 1}}')
    assert message.properties["headers"] == {"tenant": "acme", "n": 1, **AUTOMATIC_HEADERS}


def test_header_values_keep_their_json_types():
    message = to_message(extra4='{"s": "x", "n": -7, "f": 1.5, "b": true, "z": null, "l": [1, "a"], "o": {"k": 2}}')
    headers = message.properties["headers"]
    for key, expected in {"s": "x", "n": -7, "f": 1.5, "b": True, "z": None, "l": [1, "a"], "o": {"k": 2}}.items():
        assert_same_value(headers[key], expected)


# --- values the relay sets by itself ------------------------------------------------------------

AUTOMATIC = [
    pytest.param({}, True, "app_id", IDENTITY.app_id, id="app_id-is-relay"),
    pytest.param({}, True, "correlation_id", CORRELATION_ID, id="correlation_id-as-passed-in"),
    pytest.param({}, True, "timestamp", EV_TIME_EPOCH, id="timestamp-is-ev_time"),
    pytest.param({"extra2": "text/csv"}, True, "content_type", "text/csv", id="content_type-from-ev_extra2"),
    pytest.param({}, True, "delivery_mode", 2, id="delivery_mode-2-by-default"),
    pytest.param({}, False, "delivery_mode", 1, id="delivery_mode-1-when-not-persistent"),
    pytest.param({}, True, "message_id", stable_message_id(QUEUE, make_event()), id="message_id-stable"),
    pytest.param({}, True, "headers.origin", IDENTITY.origin, id="headers.origin-is-relay-host"),
    pytest.param({}, True, "headers.sequence", SEQUENCE, id="headers.sequence-as-passed-in"),
    pytest.param({}, True, "headers.timestamp", EV_TIME_ISO, id="headers.timestamp-is-ev_time"),
    pytest.param({}, True, "headers.txid", TXID, id="headers.txid-is-ev_txid"),
]


@pytest.mark.parametrize(("fields", "persistent", "path", "expected"), AUTOMATIC)
def test_relay_sets(fields, persistent, path, expected):
    assert_same_value(pick(to_message(persistent=persistent, **fields), path), expected)


def test_a_plain_event_carries_exactly_the_automatic_properties_and_headers():
    message = to_message()
    assert message.properties == {
        "app_id": IDENTITY.app_id,
        "correlation_id": CORRELATION_ID,
        "timestamp": EV_TIME_EPOCH,
        "message_id": stable_message_id(QUEUE, make_event()),
        "delivery_mode": 2,
        "headers": AUTOMATIC_HEADERS,
    }


# --- precedence ---------------------------------------------------------------------------------

PRECEDENCE = [
    pytest.param({"extra3": '{"app_id": "billing"}'}, True, "app_id", "billing", id="ev_extra3-app_id-wins"),
    pytest.param({"extra3": '{"correlation_id": "order-17"}'}, True, "correlation_id", "order-17",
                 id="ev_extra3-correlation_id-wins"),
    pytest.param({"extra3": '{"timestamp": 1}'}, True, "timestamp", 1, id="ev_extra3-timestamp-wins"),
    pytest.param({"extra2": "application/json", "extra3": '{"content_type": "text/plain"}'}, True,
                 "content_type", "text/plain", id="ev_extra3-content_type-wins-over-ev_extra2"),
    pytest.param({"extra3": '{"delivery_mode": 1}'}, True, "delivery_mode", 1,
                 id="ev_extra3-delivery_mode-1-wins-over-persistent"),
    pytest.param({"extra3": '{"delivery_mode": 2}'}, False, "delivery_mode", 2,
                 id="ev_extra3-delivery_mode-2-wins-over-not-persistent"),
    pytest.param({"extra3": '{"message_id": "order-17-created"}'}, True, "message_id", "order-17-created",
                 id="ev_extra3-message_id-wins"),
    pytest.param({"extra4": '{"origin": "db-1"}'}, True, "headers.origin", "db-1", id="ev_extra4-origin-kept"),
    pytest.param({"extra4": '{"sequence": "s-1"}'}, True, "headers.sequence", "s-1", id="ev_extra4-sequence-kept"),
    pytest.param({"extra4": '{"timestamp": "yesterday"}'}, True, "headers.timestamp", "yesterday",
                 id="ev_extra4-timestamp-kept"),
    pytest.param({"extra4": '{"txid": 1}'}, True, "headers.txid", 1, id="ev_extra4-txid-kept"),
    pytest.param({"extra4": '{"txid": null}'}, True, "headers.txid", None, id="ev_extra4-null-header-kept"),
    pytest.param({"extra3": '{"headers": {"txid": "mine"}}'}, True, "headers.txid", "mine",
                 id="ev_extra3-headers-txid-kept"),
    pytest.param({"extra3": '{"headers": {"b": 2}}', "extra4": '{"a": 1}'}, True, "headers.a", ABSENT,
                 id="ev_extra3-headers-replace-ev_extra4"),
    pytest.param({"extra3": '{"headers": {}}', "extra4": '{"a": 1}'}, True, "headers.a", ABSENT,
                 id="ev_extra3-empty-headers-replace-ev_extra4"),
    pytest.param({"extra3": '{"headers": {"b": 2}}', "extra4": '{"a": 1}'}, True, "headers.origin", IDENTITY.origin,
                 id="ev_extra3-headers-then-automatic-fill-missing"),
]


@pytest.mark.parametrize(("fields", "persistent", "path", "expected"), PRECEDENCE)
def test_precedence(fields, persistent, path, expected):
    assert_same_value(pick(to_message(persistent=persistent, **fields), path), expected)


def test_ev_extra3_headers_replace_ev_extra4_then_automatic_headers_fill_missing_keys():
    message = to_message(extra3='{"headers": {"b": 2, "origin": "db-1"}}', extra4='{"a": 1, "txid": "x"}')
    assert message.properties["headers"] == {"b": 2, "origin": "db-1", "sequence": SEQUENCE,
                                             "timestamp": EV_TIME_ISO, "txid": TXID}


# --- the worked example -------------------------------------------------------------------------

def test_worked_example_from_spec():
    correlation_id = str(uuid.uuid4())
    event = make_event(type="test.routing-key", data='{"foo": "bar"}', extra1="postgres",
                       extra2="application/json", extra3='{"type": "example"}', extra4="")
    message = event_to_message(event, queue="test", identity=IDENTITY, persistent=True,
                               correlation_id=correlation_id, sequence=SEQUENCE)
    assert message == Message(
        exchange="postgres",
        routing_key="test.routing-key",
        body=b'{"foo": "bar"}',
        properties={
            "app_id": "mikkoo-relay/0.1.0",
            "content_type": "application/json",
            "type": "example",
            "correlation_id": correlation_id,
            "timestamp": EV_TIME_EPOCH,
            "message_id": stable_message_id("test", event),
            "delivery_mode": 2,
            "headers": {"origin": "relay-1.example.com", "sequence": SEQUENCE, "timestamp": EV_TIME_ISO,
                        "txid": TXID},
        },
    )
    assert uuid.UUID(message.properties["message_id"])


# --- message_id stability -----------------------------------------------------------------------

ORIGINAL = make_event(id=7, retry=None, txid=100)
MESSAGE_IDS = [
    pytest.param(ORIGINAL, QUEUE, True, id="same-event-redelivered"),
    pytest.param(ORIGINAL._replace(txid=250, retry=3), QUEUE, True, id="pgq-retry-new-txid-and-retry-count"),
    pytest.param(ORIGINAL._replace(data="changed", extra1="elsewhere"), QUEUE, True, id="ids-ignore-payload"),
    pytest.param(ORIGINAL._replace(time=ORIGINAL.time.astimezone(timezone(timedelta(hours=9)))), QUEUE, True,
                 id="same-ev_time-read-in-another-session-timezone"),
    pytest.param(ORIGINAL._replace(id=8), QUEUE, False, id="different-ev_id"),
    pytest.param(ORIGINAL, "other", False, id="different-queue"),
    pytest.param(ORIGINAL._replace(time=ORIGINAL.time + timedelta(days=1)), QUEUE, False,
                 id="same-ev_id-new-ev_time-queue-recreated"),
    pytest.param(ORIGINAL._replace(time=ORIGINAL.time + timedelta(microseconds=1)), QUEUE, False,
                 id="same-ev_id-ev_time-1us-later"),
]


@pytest.mark.parametrize(("other", "other_queue", "same"), MESSAGE_IDS)
def test_message_id(other, other_queue, same):
    first = to_message(ORIGINAL).properties["message_id"]
    second = to_message(other, queue=other_queue).properties["message_id"]
    assert (first == second) is same
    assert first == stable_message_id(QUEUE, ORIGINAL)
    assert str(uuid.UUID(first)) == first


def test_mapping_is_pure_same_event_same_message():
    event = make_event(extra3='{"headers": {"a": [1]}}', extra4='{"b": 2}')
    assert to_message(event) == to_message(event)


# --- empty ev_extra3 / ev_extra4 ----------------------------------------------------------------

BLANK = [pytest.param(text, id=name) for name, text in
         [("null", None), ("empty", ""), ("spaces", "   "), ("newline-tab", "\n\t ")]]


@pytest.mark.parametrize("text", BLANK)
def test_blank_ev_extra3_and_ev_extra4_mean_no_properties_and_no_headers(text):
    assert parse_properties(text) == {}
    assert parse_headers(text) == {}
    assert to_message(extra3=text, extra4=text) == to_message()
    assert to_message(extra3=text, extra4=text).properties["headers"] == AUTOMATIC_HEADERS


# --- poison events ------------------------------------------------------------------------------

LONG = "x" * 256
POISON = [
    # not JSON, or JSON that is not an object
    pytest.param({"extra3": '{"type": '}, "ev_extra3 is not valid JSON", id="ev_extra3-invalid-json"),
    pytest.param({"extra3": "type=example"}, "ev_extra3 is not valid JSON", id="ev_extra3-not-json"),
    pytest.param({"extra4": "{'a': 1}"}, "ev_extra4 is not valid JSON", id="ev_extra4-invalid-json"),
    pytest.param({"extra3": '["type"]'}, "ev_extra3 must be a JSON object, not list", id="ev_extra3-list"),
    pytest.param({"extra3": '"example"'}, "ev_extra3 must be a JSON object, not str", id="ev_extra3-string"),
    pytest.param({"extra3": "42"}, "ev_extra3 must be a JSON object, not int", id="ev_extra3-number"),
    pytest.param({"extra4": "[1, 2]"}, "ev_extra4 must be a JSON object, not list", id="ev_extra4-list"),
    pytest.param({"extra4": '"acme"'}, "ev_extra4 must be a JSON object, not str", id="ev_extra4-string"),
    pytest.param({"extra4": "1.5"}, "ev_extra4 must be a JSON object, not float", id="ev_extra4-number"),
    # unknown property names
    pytest.param({"extra3": '{"typ": "example"}'}, "ev_extra3 has unknown AMQP properties: typ",
                 id="ev_extra3-unknown-property"),
    pytest.param({"extra3": '{"reply_to": "q", "cluster_id": "c", "type": "t"}'},
                 "ev_extra3 has unknown AMQP properties: cluster_id, reply_to", id="ev_extra3-unknown-properties"),
    # wrong types or values
    pytest.param({"extra3": '{"priority": "high"}'}, "'priority' must be an integer from 0 to 255",
                 id="priority-string"),
    pytest.param({"extra3": '{"priority": true}'}, "'priority' must be an integer from 0 to 255", id="priority-bool"),
    pytest.param({"extra3": '{"priority": 300}'}, "'priority' must be an integer from 0 to 255", id="priority-300"),
    pytest.param({"extra3": '{"priority": -1}'}, "'priority' must be an integer from 0 to 255", id="priority-negative"),
    pytest.param({"extra3": '{"priority": 5.0}'}, "'priority' must be an integer from 0 to 255", id="priority-float"),
    pytest.param({"extra3": '{"delivery_mode": 3}'}, "'delivery_mode' must be 1 (transient) or 2 (persistent)",
                 id="delivery_mode-3"),
    pytest.param({"extra3": '{"delivery_mode": "2"}'}, "'delivery_mode' must be 1 (transient) or 2 (persistent)",
                 id="delivery_mode-string"),
    pytest.param({"extra3": '{"delivery_mode": true}'}, "'delivery_mode' must be 1 (transient) or 2 (persistent)",
                 id="delivery_mode-bool"),
    pytest.param({"extra3": '{"timestamp": "x"}'}, "'timestamp' must be an integer", id="timestamp-string"),
    pytest.param({"extra3": '{"timestamp": -1}'}, "'timestamp' must be an integer", id="timestamp-negative"),
    pytest.param({"extra3": '{"timestamp": 1.5}'}, "'timestamp' must be an integer", id="timestamp-float"),
    pytest.param({"extra3": '{"app_id": 5}'}, "ev_extra3 property 'app_id' must be a string, not int",
                 id="app_id-number"),
    pytest.param({"extra3": '{"type": null}'}, "ev_extra3 property 'type' must be a string, not NoneType",
                 id="type-null"),
    pytest.param({"extra3": '{"correlation_id": ["a"]}'}, "'correlation_id' must be a string, not list",
                 id="correlation_id-list"),
    pytest.param({"extra3": '{"headers": [1]}'}, "ev_extra3 headers must be a JSON object, not list",
                 id="headers-list"),
    pytest.param({"extra3": '{"headers": "a=1"}'}, "ev_extra3 headers must be a JSON object, not str",
                 id="headers-string"),
    pytest.param({"extra3": '{"expiration": "abc"}'}, "'expiration' must be milliseconds as text",
                 id="expiration-abc"),
    pytest.param({"extra3": '{"expiration": "-1"}'}, "'expiration' must be milliseconds as text",
                 id="expiration-negative"),
    pytest.param({"extra3": '{"expiration": ""}'}, "'expiration' must be milliseconds as text",
                 id="expiration-empty"),
    pytest.param({"extra3": '{"expiration": "١٢٣"}'}, "'expiration' must be milliseconds as text",
                 id="expiration-non-ascii-digits"),
    pytest.param({"extra3": '{"expiration": 60000}'}, "'expiration' must be a string, not int",
                 id="expiration-number"),
    # longer than an AMQP short string
    pytest.param({"extra1": LONG}, "ev_extra1 (exchange) is longer than the 255 bytes", id="exchange-256-bytes"),
    pytest.param({"type": LONG}, "ev_type (routing key) is longer than the 255 bytes", id="routing-key-256-bytes"),
    pytest.param({"type": "é" * 128}, "ev_type (routing key) is longer than the 255 bytes",
                 id="routing-key-128-chars-256-utf8-bytes"),
    pytest.param({"extra2": LONG}, "ev_extra2 (content type) is longer than the 255 bytes",
                 id="ev_extra2-256-bytes"),
    pytest.param({"extra3": f'{{"message_id": "{LONG}"}}'}, "'message_id' is longer than 255 bytes",
                 id="message_id-256-bytes"),
    pytest.param({"extra4": f'{{"{LONG}": 1}}'}, "ev_extra4 has a key longer than 255 bytes",
                 id="header-key-256-bytes"),
    # integers AMQP cannot carry
    pytest.param({"extra4": '{"n": 9223372036854775808}'}, "ev_extra4 has an integer outside the 64-bit range",
                 id="header-int-2**63"),
    pytest.param({"extra4": '{"n": -9223372036854775809}'}, "ev_extra4 has an integer outside the 64-bit range",
                 id="header-int-below-minus-2**63"),
    pytest.param({"extra4": '{"l": [1, 9223372036854775808]}'}, "ev_extra4 has an integer outside the 64-bit range",
                 id="header-int-in-array"),
    pytest.param({"extra4": '{"o": {"n": 9223372036854775808}}'},
                 "ev_extra4 has an integer outside the 64-bit range", id="header-int-in-nested-table"),
    pytest.param({"extra3": '{"headers": {"n": 9223372036854775808}}'},
                 "ev_extra3 headers has an integer outside the 64-bit range", id="ev_extra3-header-int"),
]


@pytest.mark.parametrize(("fields", "message"), POISON)
def test_poison_event(fields, message):
    with pytest.raises(PoisonEvent, match=re.escape(message)):
        to_message(**fields)


AT_THE_LIMIT = [
    pytest.param({"extra1": "x" * 255}, "exchange", "x" * 255, id="exchange-255-bytes"),
    pytest.param({"type": "é" * 127 + "x"}, "routing_key", "é" * 127 + "x", id="routing-key-255-utf8-bytes"),
    pytest.param({"extra4": '{"n": 9223372036854775807}'}, "headers.n", 2**63 - 1, id="header-int-max"),
    pytest.param({"extra4": '{"n": -9223372036854775808}'}, "headers.n", -(2**63), id="header-int-min"),
    pytest.param({"extra4": '{"' + "k" * 255 + '": 1}'}, "headers." + "k" * 255, 1, id="header-key-255-bytes"),
    pytest.param({"extra4": '{"s": "' + "x" * 1000 + '"}'}, "headers.s", "x" * 1000, id="header-value-long-string"),
]


@pytest.mark.parametrize(("fields", "path", "expected"), AT_THE_LIMIT)
def test_accepted_at_the_limit(fields, path, expected):
    assert_same_value(pick(to_message(**fields), path), expected)
