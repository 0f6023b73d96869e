"""Events just inside every limit of the mapping, published to the real RabbitMQ: each arrives intact.

The mapping refuses what py-amqp or RabbitMQ would refuse (``test_mapping_hostile.py``);
this shows that what it lets through really goes: a header that fills the
content-header frame of the connection to the byte, a 5 MB body, NUL and emoji
in every field (an exchange name included), integers at the ends of int64,
nesting at the allowed depth. Published with the relay's own publisher
(confirms, mandatory), read back with py-amqp.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime

from relay.amqp.mapping import event_to_message
from relay.amqp.message import EXPIRATION_MAX_MS, HEADER_FRAME_OVERHEAD, MAX_DEPTH, MessageLimits
from relay.amqp.publisher import BrokerSettings, Publisher
from relay.amqp.sizing import content_header_size
from relay.core.events import Event

from . import services
from .mapping_values import IDENTITY


def nested(levels: int) -> object:
    """A header table ``levels`` deep, objects and arrays in turn."""
    value: object = "bottom"
    for level in range(levels - 1):
        value = {"o": value} if level % 2 else [value]
    return {"deep": value}


def edge_events(exchange: str, odd_exchange: str, frame_max: int) -> list[Event]:
    """Events as producers could write them, each just inside a limit; ``id`` tells them apart."""
    time = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    fields = [
        {"extra4": json.dumps({"pad": ""})},  # padded below to fill the frame exactly
        {"extra3": json.dumps({"type": "frame", "headers": {"pad": ""}})},  # the same through ev_extra3 headers
        {"data": ("5 MB: é😀\x00" * (5 * 2**20 // 12))},
        {"type": "route.\x00.😀", "extra2": "text/plain; x=\x00😀",
         "extra3": json.dumps({"type": "t\x00😀", "app_id": "a\x00", "correlation_id": "c\x00😀",
                               "content_encoding": "e\x00", "message_id": "nul-and-emoji\x00😀"},
                              ensure_ascii=False),
         "extra4": json.dumps({"k\x00😀": "v\x00😀", "l": ["\x00", "😀", ""]}, ensure_ascii=False)},
        {"extra4": '{"escaped": "\\ud83d\\ude00\\u0000", "\\ud83c\\udf89": 1}'},
        {"extra4": json.dumps({"min": -(2**63), "max": 2**63 - 1, "i32min": -(2**31), "i32max": 2**31 - 1,
                               "big": 1.7976931348623157e308, "tiny": 5e-324, "zero": -0.0, "t": True, "f": False,
                               "null": None})},
        {"extra4": json.dumps(nested(MAX_DEPTH))},
        {"extra3": json.dumps({"headers": nested(MAX_DEPTH)})},
        {"type": "é" * 127 + "x", "extra3": json.dumps({"message_id": "m" * 255, "type": "é" * 127 + "x"}),
         "extra4": json.dumps({"k" * 255: "key of 255 bytes", "é" * 127 + "x": "and of 255 bytes of UTF-8"})},
        {"extra3": json.dumps({"expiration": str(EXPIRATION_MAX_MS), "priority": 255, "timestamp": 2**63 - 1,
                               "delivery_mode": 1, "user_id": "guest"})},
        {"extra4": json.dumps({"CC": ["elsewhere.no-queue"], "tenant": "acme"})},
        {"extra1": odd_exchange, "type": "odd"},
    ]
    defaults = {"time": time, "txid": 987654, "retry": None, "type": "edge", "data": "body", "extra1": exchange}
    events = [Event(id=index, **{**defaults, **extra}) for index, extra in enumerate(fields, start=1)]
    # Pad the first two so that their properties fill a content-header frame to the byte.
    room = frame_max - HEADER_FRAME_OVERHEAD
    for index in (0, 1):
        size = content_header_size(to_message(events[index]).properties)
        padding = "x" * (room - size)
        events[index] = events[index]._replace(extra3=events[index].extra3.replace('"pad": ""', f'"pad": "{padding}"')
                                               if events[index].extra3 else None,
                                               extra4=events[index].extra4.replace('"pad": ""', f'"pad": "{padding}"')
                                               if events[index].extra4 else None)
    return events


def to_message(event: Event, limits: MessageLimits | None = None):
    return event_to_message(event, queue="edge", identity=IDENTITY, persistent=True,
                            correlation_id=f"corr-{event.id}", sequence=event.id, limits=limits)


def test_just_valid_events_arrive_intact(exchange, bind_queue, amqp):
    queue = bind_queue(exchange)
    odd_exchange = services.unique("ex") + "\x00😀"
    channel = amqp.channel()
    channel.exchange_declare(odd_exchange, "topic", durable=False, auto_delete=False)
    channel.queue_bind(queue, odd_exchange, "#")
    channel.close()
    try:
        # The limits of this connection: what the relay is to pass when it maps for it.
        limits = MessageLimits(frame_max=amqp.connection.frame_max, user_id="guest")
        events = edge_events(exchange, odd_exchange, limits.frame_max)
        messages = [to_message(event, limits) for event in events]
        room = limits.frame_max - HEADER_FRAME_OVERHEAD
        assert [content_header_size(m.properties) for m in messages[:2]] == [room, room]

        with Publisher(BrokerSettings(hosts=("127.0.0.1",))) as publisher:
            verdicts = publisher.publish(messages)

        assert verdicts == [None] * len(messages)
        received = services.drain(amqp, queue, expected=len(messages), timeout=10.0)
        assert len(received) == len(messages)
        by_id = {m.properties["message_id"]: m for m in received}
        for event, sent in zip(events, messages, strict=True):
            got = by_id[sent.properties["message_id"]]
            assert (got.delivery_info["exchange"], got.delivery_info["routing_key"]) == (
                sent.exchange, sent.routing_key), event.id
            assert got.body == sent.body, event.id
            expected = {name: value for name, value in sent.properties.items() if name != "headers"}
            assert {name: got.properties[name] for name in expected} == expected, event.id
            assert got.properties["application_headers"] == sent.properties["headers"], event.id
    finally:
        with services.amqp_connection() as connection:
            connection.channel().exchange_delete(odd_exchange)
