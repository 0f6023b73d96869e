"""Property-based tests of relay.producer (hypothesis): whatever a producer passes, a deliverable event or no event.

Arbitrary JSON goes into headers, properties and body, arbitrary text into
the routing key, exchange and content type. ``publish`` either writes an event
that the relay's mapping turns into a message carrying exactly what was given,
or raises before writing anything; never an event the relay then dead-letters
as invalid. The first test writes every example to the real PostgreSQL (rolled
back) and maps what PgQ stored with the relay's own mapping; the second relays
lists of events to the real RabbitMQ and compares what arrives. Deterministic
(derandomized, no example database).
"""
from __future__ import annotations

import json
import uuid
from collections import Counter

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.amqp.mapping import event_to_message
from relay.amqp.message import EXPIRATION_MAX_MS, INT64, MAX_DEPTH, MessageLimits
from relay.core.events import Event
from relay.core.identity import relay_identity
from relay.engine.targets import engine_for
from relay.producer import InvalidEvent, publish

from . import services
from .test_mapping_properties import (
    HEADER_TABLES,
    JSON_VALUES,
    PROPERTY_VALUES,
    SHORT_TEXT,
    SOME_TEXT,
    VALID_TABLES,
    VALID_TEXT,
    VALID_VALUES,
    assert_publishable,
    assert_storable_reason,
    weighted,
)

SETTINGS = dict(derandomize=True, database=None, deadline=None,
                # One database connection (or queue) serves every example: each rolls back (or drains) its own.
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
#: What every relay connection to a RabbitMQ with default settings accepts; the login user is the relay's
#: to know, so ``user_id`` is not checked at the source (docs/publishing.md).
DEFAULT_CONNECTION = MessageLimits(frame_max=131072)


def nest(levels: int, value: object) -> dict:
    for _ in range(levels):
        value = {"a": value}
    return value


#: Header tables of any JSON, nested around the limit, or around the default frame size.
HEADERS = weighted((1, st.none()), (6, HEADER_TABLES),
                   (1, st.builds(nest, st.integers(MAX_DEPTH - 3, MAX_DEPTH + 1), JSON_VALUES)),
                   (1, st.builds(lambda count, char: {"pad": char * count}, st.integers(130_000, 131_100),
                                 st.sampled_from(["x", "é"]))))
PROPERTIES = weighted((1, st.none()), (4, st.fixed_dictionaries({}, optional=PROPERTY_VALUES)),
                      (1, st.dictionaries(SOME_TEXT, JSON_VALUES, max_size=3)))
#: JSON values, text, and bytes: any, or text's UTF-8 (lone surrogates make it invalid UTF-8).
BODIES = weighted((3, JSON_VALUES), (2, SOME_TEXT), (1, st.binary(max_size=30)),
                  (1, SOME_TEXT.map(lambda text: text.encode("utf-8", "surrogatepass"))))


def body_arrived_intact(body: object, arrived: bytes) -> bool:
    if isinstance(body, bytes):
        return arrived == body
    if isinstance(body, str):
        return arrived == body.encode()
    return json.loads(arrived) == body


def expected_content_type(body: object, content_type: str | None, properties: dict) -> str | None:
    """The ``content_type`` a message should carry: the property given, else the argument, else JSON's."""
    if "content_type" in properties:
        return properties["content_type"]
    if content_type is None and not isinstance(body, bytes | str):
        return "application/json"
    return content_type or None


def test_publish_writes_what_the_relay_maps_intact_or_writes_nothing(audited_dsn, audited_queue):
    outcomes: Counter = Counter()
    identity = relay_identity()

    @settings(max_examples=200, **SETTINGS)
    @given(routing_key=SOME_TEXT, body=BODIES, exchange=SOME_TEXT, headers=HEADERS, properties=PROPERTIES,
           content_type=st.none() | SOME_TEXT, audited=st.booleans())
    def example(routing_key, body, exchange, headers, properties, content_type, audited):
        with services.connect(audited_dsn, autocommit=False) as conn, conn.cursor() as cursor:
            try:
                event_id = publish(audited_queue, routing_key, body, exchange=exchange, headers=headers,
                                   properties=properties, content_type=content_type, audited=audited, cursor=cursor)
            except InvalidEvent as exc:
                outcomes["refused"] += 1
                assert_storable_reason(str(exc))
                # nothing written, and the transaction is still usable
                assert services.stored_events(cursor, audited_queue) == []
                return
            outcomes["written"] += 1
            [row] = services.stored_events(cursor, audited_queue)
            event = Event(*row)
            message = event_to_message(event, queue=audited_queue, identity=identity, persistent=True,
                                       correlation_id=str(uuid.uuid4()), sequence=2**62, limits=DEFAULT_CONNECTION)
            if audited:
                cursor.execute("SELECT message_id::text, properties, headers FROM mikkoo.audit "
                               "WHERE queue = %s AND event_id = %s", (audited_queue, event_id))
                assert cursor.fetchone() == (message.properties["message_id"], event.extra3, event.extra4)
        assert event.id == event_id
        assert_publishable(message, DEFAULT_CONNECTION, event)
        assert (message.exchange, message.routing_key) == (exchange, routing_key)
        assert body_arrived_intact(body, message.body)
        given_properties = {**(properties or {}), **({"message_id": message.properties["message_id"]}
                                                     if audited else {})}
        assert {name: message.properties[name] for name in given_properties} == given_properties
        given_headers = {**(headers or {}), **({"pgq_queue": audited_queue} if audited else {})}
        assert {key: message.properties["headers"][key] for key in given_headers} == given_headers
        assert message.properties.get("content_type") == expected_content_type(body, content_type, given_properties)

    example()
    # Both sides of the property were exercised, each often.
    assert outcomes["written"] >= 40 and outcomes["refused"] >= 40, outcomes


#: Events that mostly pass, delivered intact. BCC is left out (RabbitMQ removes it on delivery, by design) and CC
#: too (it routes copies); an expiration is long enough for the message to wait in its queue; ``user_id`` is the
#: relay's login user, as it must be.
DELIVERABLE_PROPERTIES = st.fixed_dictionaries({}, optional={
    **{name: SHORT_TEXT for name in ("app_id", "content_encoding", "content_type", "correlation_id",
                                     "message_id", "type")},
    "delivery_mode": st.sampled_from([1, 2]),
    "expiration": st.integers(600_000, EXPIRATION_MAX_MS).map(str),
    "priority": st.integers(0, 255),
    "timestamp": st.integers(0, INT64[1]),
    "user_id": st.just("guest"),
})
DELIVERABLE_HEADERS = weighted((4, VALID_TABLES.filter(lambda table: not {"CC", "BCC"} & set(table))),
                               (1, HEADER_TABLES.filter(lambda table: not {"CC", "BCC"} & set(table))))
DELIVERABLE_EVENTS = st.lists(st.fixed_dictionaries({
    "routing_key": VALID_TEXT, "body": VALID_VALUES | VALID_TEXT | st.binary(max_size=20),
    "headers": st.none() | DELIVERABLE_HEADERS, "properties": st.none() | DELIVERABLE_PROPERTIES,
    "content_type": st.none() | VALID_TEXT}), min_size=1, max_size=6)


def test_what_publish_writes_arrives_intact_through_the_relay(
        source_dsn, pgq_queue, queue_settings, exchange, bind_queue, amqp):
    target = bind_queue(exchange, "#")
    outcomes: Counter = Counter()

    @settings(max_examples=12, **SETTINGS)
    @given(DELIVERABLE_EVENTS)
    def example(events):
        services.drain(amqp, target)  # what a failed example (shrinking) left behind
        written = []
        with psycopg.connect(source_dsn) as conn, conn.cursor() as cursor:
            for event in events:
                try:
                    publish(pgq_queue, exchange=exchange, cursor=cursor, **event)
                except InvalidEvent:
                    outcomes["refused"] += 1
                    continue
                written.append(event)
        outcomes["written"] += len(written)
        services.tick(source_dsn, pgq_queue)

        result = engine_for(queue_settings).run()
        messages = services.drain(amqp, target, expected=len(written), timeout=5)

        assert (result.published, result.retried, result.dead_lettered) == (len(written), 0, 0)
        assert len(messages) == len(written)
        for event, message in zip(written, messages, strict=True):
            properties = message.properties
            assert message.delivery_info["routing_key"] == event["routing_key"]
            assert body_arrived_intact(event["body"], message.body or b"")  # py-amqp: an empty body is ""
            given_properties = event["properties"] or {}
            assert {name: properties[name] for name in given_properties} == given_properties
            given_headers = event["headers"] or {}
            assert {key: properties["application_headers"][key] for key in given_headers} == given_headers
            assert properties.get("content_type") == expected_content_type(event["body"], event["content_type"],
                                                                          given_properties)

    example()
    assert outcomes["written"] >= 20 and outcomes["refused"] >= 1, outcomes
