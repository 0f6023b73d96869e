"""basic.publish frames, encoded byte for byte as py-amqp encodes them, a whole window into one buffer. Pure, no I/O.

py-amqp builds and writes each message's frames on its own, through several
layers of generic code, with a system call per message; the relay publishes
thousands of messages of a few shapes. Here the frames of a window go into
one buffer that the publisher writes through the connection's transport at
once: the method frame's fixed part is built once per exchange, routing key
and channel, header keys are encoded once, and the common value types are
packed without py-amqp's generic dispatch. Anything unusual in a header
table is handed to py-amqp's own encoder, so the bytes are always what
py-amqp itself would send.
"""
from __future__ import annotations

from functools import lru_cache
from io import BytesIO
from struct import Struct
from typing import Any

from amqp.serialization import _write_table

from .mapping import Message

BASIC_CLASS = 60
PUBLISH_METHOD = 40
FRAME_END = b"\xce"
#: type, channel, payload size
_FRAME_HEAD = Struct(">BHI")
#: class, weight, body size; then one word of property flags (basic has 14 properties)
_HEADER_HEAD = Struct(">HHQH")
_U8 = Struct(">B").pack
_U32 = Struct(">I").pack
_U64 = Struct(">Q").pack
_INT32_ITEM = Struct(">ci").pack
_INT64_ITEM = Struct(">cq").pack
_FLOAT_ITEM = Struct(">cd").pack

#: The content header's properties in AMQP order, with their flag bit, as the mapping names them.
_PROPERTY_BITS = {name: 1 << (15 - position) for position, name in enumerate((
    "content_type", "content_encoding", "headers", "delivery_mode", "priority", "correlation_id", "reply_to",
    "expiration", "message_id", "timestamp", "type", "user_id", "app_id", "cluster_id"))}
_SHORT_STRINGS = ("content_type", "content_encoding")
_AFTER_PRIORITY = ("correlation_id", "reply_to", "expiration", "message_id")
_LAST = ("type", "user_id", "app_id", "cluster_id")


@lru_cache(maxsize=1024)
def _shortstr(text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    return _U8(len(data)) + data


@lru_cache(maxsize=256)
def _method_frame(channel: int, exchange: str, routing_key: str, mandatory: bool) -> bytes:
    """The basic.publish method frame: the same for every message to one exchange and routing key."""
    payload = (b"".join((Struct(">HHH").pack(BASIC_CLASS, PUBLISH_METHOD, 0), _shortstr(exchange),
                         _shortstr(routing_key))) + _U8(1 if mandatory else 0))
    return _FRAME_HEAD.pack(1, channel, len(payload)) + payload + FRAME_END


def encode_table(table: dict[str, Any]) -> bytes:
    """A field table with its length, as py-amqp's ``_write_table`` writes it."""
    parts = []
    append = parts.append
    for key, value in table.items():
        append(_shortstr(key))
        kind = type(value)
        if kind is str:
            data = value.encode("utf-8", "surrogatepass")
            append(b"S" + _U32(len(data)) + data)
        elif kind is int:
            append(_INT64_ITEM(b"L", value) if value > 2147483647 or value < -2147483647
                   else _INT32_ITEM(b"I", value))
        elif kind is bool:
            append(b"t\x01" if value else b"t\x00")
        elif kind is float:
            append(_FLOAT_ITEM(b"d", value))
        elif value is None:
            append(b"V")
        else:
            return _generic_table(table)
    data = b"".join(parts)
    return _U32(len(data)) + data


def _generic_table(table: dict[str, Any]) -> bytes:
    out = BytesIO()
    _write_table(table, out.write, [])
    return out.getvalue()


def encode_properties(properties: dict[str, Any]) -> tuple[int, bytes]:
    """The property flags and the encoded property list of a content header."""
    flags = 0
    parts = []
    append = parts.append
    get = properties.get
    for name in _SHORT_STRINGS:
        value = get(name)
        if value is not None:
            flags |= _PROPERTY_BITS[name]
            append(_shortstr(value))
    headers = get("headers")
    if headers is not None:
        flags |= _PROPERTY_BITS["headers"]
        append(encode_table(headers))
    for name in ("delivery_mode", "priority"):
        value = get(name)
        if value is not None:
            flags |= _PROPERTY_BITS[name]
            append(_U8(value))
    for name in _AFTER_PRIORITY:
        value = get(name)
        if value is not None:
            flags |= _PROPERTY_BITS[name]
            data = value.encode("utf-8", "surrogatepass")
            append(_U8(len(data)) + data)
    timestamp = get("timestamp")
    if timestamp is not None:
        flags |= _PROPERTY_BITS["timestamp"]
        append(_U64(timestamp))
    for name in _LAST:
        value = get(name)
        if value is not None:
            flags |= _PROPERTY_BITS[name]
            append(_shortstr(value))
    return flags, b"".join(parts)


def publish_frames(channel: int, message: Message, mandatory: bool, frame_max: int) -> bytes:
    """The method, content header and body frames that publish ``message`` on ``channel``."""
    flags, properties = encode_properties(message.properties)
    body = message.body
    header = _HEADER_HEAD.pack(BASIC_CLASS, 0, len(body), flags) + properties
    frames = [_method_frame(channel, message.exchange, message.routing_key, mandatory),
              _FRAME_HEAD.pack(2, channel, len(header)), header, FRAME_END]
    chunk = (frame_max or 131072) - 8
    for start in range(0, len(body), chunk):
        part = body[start:start + chunk]
        frames += (_FRAME_HEAD.pack(3, channel, len(part)), part, FRAME_END)
    return b"".join(frames)
