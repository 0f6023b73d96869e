"""Whether the relay may write its own frames: py-amqp still encodes as it did when they were verified.

The publisher writes basic.publish frames itself (:mod:`relay.amqp.frames`), byte for byte as py-amqp
writes them (``tests/test_amqp_frames.py`` holds them to py-amqp's), and borrows py-amqp's private
``_write_table`` for nested tables. A py-amqp release that encodes otherwise, or drops that function,
would make those frames silently differ. So once per process two sample messages, every kind of property
and header value among them, are encoded by py-amqp's own frame writer and by the relay's: both must give
the bytes recorded here. Otherwise the publisher takes py-amqp's ``basic_publish`` (slower, and py-amqp's
bytes whatever they are) and logs why, once.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from functools import cache
from types import SimpleNamespace
from typing import TypedDict

import amqp
from amqp.method_framing import frame_writer
from amqp.serialization import dumps

from .frames import own_content_header, publish_frames
from .message import Message

logger = logging.getLogger(__name__)

#: ``(channel, message, mandatory, frame_max)`` to the bytes of the frames that publish the message.
Encoder = Callable[[int, Message, bool, int], bytes]

#: The py-amqp release the samples' frames were recorded with, and their SHA-256.
VERIFIED_WITH = "5.4.2"
VERIFIED_SHA256 = "833953facd067a6fc0c745ed48fb916a739fa2eab1e6f7e4c990d20882c83a56"

SAMPLE_CHANNEL = 7
#: Small enough that the second sample's body takes two frames.
SAMPLE_FRAME_MAX = 4096


class _OwnShape(TypedDict):
    """The properties of a message of the relay's own shape (but its headers)."""

    content_type: str
    correlation_id: str
    message_id: str
    timestamp: int
    delivery_mode: int
    app_id: str


class _OwnHeaders(TypedDict):
    """The headers of a message of the relay's own shape."""

    origin: str
    sequence: int
    timestamp: str
    txid: int


_OWN_SHAPE: _OwnShape = {
    "content_type": "application/json", "correlation_id": "3f2b8c4e-5d6a-4b7c-8d9e-0a1b2c3d4e5f",
    "message_id": "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", "timestamp": 1_764_979_200, "delivery_mode": 2,
    "app_id": "mikkoo-relay/check"}
_OWN_HEADERS: _OwnHeaders = {
    "origin": "relay-1.example.com", "sequence": 2**40 + 5, "timestamp": "2025-12-06T00:00:00+00:00",
    "txid": 2**33 + 7}

SAMPLES = (
    # The relay's own shape: its content header is packed by own_content_header.
    Message("orders", "order.created", b'{"id": 1}', {**_OWN_SHAPE, "headers": _OWN_HEADERS},
            own_content_header(9, _OWN_SHAPE["content_type"], _OWN_SHAPE["correlation_id"],
                               _OWN_SHAPE["message_id"], _OWN_SHAPE["timestamp"], _OWN_SHAPE["delivery_mode"],
                               _OWN_SHAPE["app_id"], _OWN_HEADERS["origin"], _OWN_HEADERS["sequence"],
                               _OWN_HEADERS["timestamp"], _OWN_HEADERS["txid"])),
    # Every property the mapping may set; a flat table of every type of value, encoded by encode_table.
    Message("exchange.é", "key.😀", b"", {
        "content_type": "text/plain", "content_encoding": "utf-8", "delivery_mode": 1, "priority": 9,
        "correlation_id": "c", "expiration": "60000", "message_id": "m", "timestamp": 2**40, "type": "t",
        "user_id": "guest", "app_id": "a",
        "headers": {"s": "é\x00😀", "i": -2147483647, "l": -2147483648, "n": -(2**63), "t": True, "f": False,
                    "d": 0.5, "none": None}}),
    # Nested tables and arrays, which go through py-amqp's _write_table; a body of two frames.
    Message("", "rk", bytes(range(256)) * 20, {
        "headers": {"table": {"k": ["v", 1, 2**40, 1.5, None, True, {"deep": []}]}, "list": [{"a": "b"}, [], ""]}}),
)

def py_amqp_message(message: Message) -> amqp.Message:
    """The py-amqp message that publishes ``message``, as kombu would hand it over."""
    properties = dict(message.properties)
    headers = properties.pop("headers", None)
    return amqp.Message(message.body, application_headers=headers, **properties)


def py_amqp_frames(channel: int, message: Message, mandatory: bool, frame_max: int) -> bytes:
    """The frames py-amqp's own frame writer writes to publish ``message``."""
    written = bytearray()
    write_frame = frame_writer(SimpleNamespace(frame_max=frame_max, bytes_sent=0),
                               SimpleNamespace(write=written.extend))
    write_frame(1, channel, (60, 40), dumps("Bssbb", (0, message.exchange, message.routing_key, mandatory, False)),
                py_amqp_message(message))
    return bytes(written)


def frames_problem(encode: Encoder = py_amqp_frames) -> str | None:
    """Why the relay's own frames may not be used (``encode`` being py-amqp's encoder), or None if they may."""
    try:
        theirs = b"".join(encode(SAMPLE_CHANNEL, sample, True, SAMPLE_FRAME_MAX) for sample in SAMPLES)
        ours = b"".join(publish_frames(SAMPLE_CHANNEL, sample, True, SAMPLE_FRAME_MAX) for sample in SAMPLES)
    except Exception as exc:  # whatever a changed py-amqp raises, the answer is the same: use basic_publish
        return f"encoding the sample messages failed: {type(exc).__name__}: {exc}"
    if hashlib.sha256(theirs).hexdigest() != VERIFIED_SHA256:
        return (f"py-amqp {amqp.__version__} encodes the sample messages into other bytes than py-amqp "
                f"{VERIFIED_WITH} did when the relay's frame writer was verified against it")
    if ours != theirs:
        return f"the relay's frame writer no longer writes py-amqp {amqp.__version__}'s bytes for the sample messages"
    return None


@cache
def own_frames_usable(encode: Encoder = py_amqp_frames) -> bool:
    """Whether the publisher may write its own frames: checked once per process, and said once when not."""
    problem = frames_problem(encode)
    if problem:
        logger.warning("publishing through py-amqp's basic_publish instead of the relay's own frame writer: %s",
                       problem)
    return problem is None
