"""basic.publish frames, encoded byte for byte as py-amqp encodes them, a whole window into one buffer. Pure, no I/O.

py-amqp builds and writes each message's frames on its own, through several
layers of generic code, with a system call per message; the relay publishes
thousands of messages of a few shapes. Here the frames of a window go into
one buffer that the publisher writes through the connection's transport at
once; the fixed parts are built once, and the relay's own shape of message
(that of an event without ev_extra3 and ev_extra4) has its content header
packed by one ``struct`` call (:func:`own_content_header`, which the mapping
calls). Everything else takes the general way; both write the bytes py-amqp
writes, which :mod:`relay.amqp.frame_check` confirms once per process before
the publisher uses them.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from io import BytesIO
from struct import Struct
from typing import Any

from .message import Message

try:
    from amqp.serialization import _write_table
except ImportError:  # a py-amqp without it fails the frame check (relay.amqp.frame_check): basic_publish then
    _write_table = None


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

#: The content header's properties in AMQP order, with their flag bit, as the mapping names them, and how
#: each is encoded: short string, octet, long long, table.
_PROPERTIES = {name: (1 << (15 - position), kind) for position, (name, kind) in enumerate((
    ("content_type", "s"), ("content_encoding", "s"), ("headers", "F"), ("delivery_mode", "o"),
    ("priority", "o"), ("correlation_id", "s"), ("reply_to", "s"), ("expiration", "s"), ("message_id", "s"),
    ("timestamp", "L"), ("type", "s"), ("user_id", "s"), ("app_id", "s"), ("cluster_id", "s")))}


@lru_cache(maxsize=1024)
def _shortstr(text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    return _U8(len(data)) + data


#: (channel, exchange, routing key, mandatory) -> the method frame
_METHOD_FRAMES: dict[tuple[int, str, str, bool], bytes] = {}


def _method_frame(channel: int, exchange: str, routing_key: str, mandatory: bool) -> bytes:
    """The basic.publish method frame: the same for every message to one exchange and routing key."""
    payload = (b"".join((Struct(">HHH").pack(BASIC_CLASS, PUBLISH_METHOD, 0), _shortstr(exchange),
                         _shortstr(routing_key))) + _U8(1 if mandatory else 0))
    frame = _FRAME_HEAD.pack(1, channel, len(payload)) + payload + FRAME_END
    if len(_METHOD_FRAMES) >= 4096:
        _METHOD_FRAMES.clear()
    _METHOD_FRAMES[(channel, exchange, routing_key, mandatory)] = frame
    return frame


def encode_table(table: dict[str, Any]) -> bytes:
    """A field table with its length, as py-amqp's ``_write_table`` writes it."""
    parts: list[bytes] = []
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
            out = BytesIO()
            _write_table(table, out.write, [])
            return out.getvalue()
    data = b"".join(parts)
    return _U32(len(data)) + data


def encode_properties(properties: dict[str, Any]) -> tuple[int, bytes]:
    """The property flags and the encoded property list of a content header, whatever properties it has."""
    flags = 0
    parts = []
    for name, (bit, kind) in _PROPERTIES.items():
        value = properties.get(name)
        if value is None:
            continue
        flags |= bit
        if kind == "s":
            data = value.encode("utf-8", "surrogatepass")
            parts.append(_U8(len(data)) + data)
        elif kind == "o":
            parts.append(_U8(value))
        elif kind == "L":
            parts.append(_U64(value))
        else:
            parts.append(encode_table(value))
    return flags, b"".join(parts)


def publish_frames(channel: int, message: Message, mandatory: bool, frame_max: int) -> bytes:
    """The method, content header and body frames that publish ``message`` on ``channel``."""
    exchange, routing_key, body = message.exchange, message.routing_key, message.body
    method = (_METHOD_FRAMES.get((channel, exchange, routing_key, mandatory))
              or _method_frame(channel, exchange, routing_key, mandatory))
    header = message.header
    if header is None:
        flags, encoded = encode_properties(message.properties)
        header = _HEADER_HEAD.pack(BASIC_CLASS, 0, len(body), flags) + encoded
    frames = [method, _FRAME_HEAD.pack(2, channel, len(header)), header, FRAME_END]
    chunk = (frame_max or 131072) - 8
    if len(body) <= chunk:
        if body:
            frames += (_FRAME_HEAD.pack(3, channel, len(body)), body, FRAME_END)
        return b"".join(frames)
    for start in range(0, len(body), chunk):
        part = body[start:start + chunk]
        frames += (_FRAME_HEAD.pack(3, channel, len(part)), part, FRAME_END)
    return b"".join(frames)


# The relay's own shape of message, as the mapping makes it for an event with no ev_extra3 or ev_extra4:
# content_type, app_id, a UUID correlation_id and message_id, timestamp, delivery_mode, and the headers
# origin, sequence (63 bits), timestamp and txid. Its content header is packed in one call, by a Struct
# chosen by the few lengths that vary (a handful in all).
_OWN_FLAGS = sum(_PROPERTIES[name][0] for name in (
    "content_type", "headers", "delivery_mode", "correlation_id", "message_id", "timestamp", "app_id"))
_SEQUENCE_ITEM = _shortstr("sequence") + b"L"
_TIMESTAMP_ITEM = _shortstr("timestamp") + b"S"
_TXID_ITEMS = {False: _shortstr("txid") + b"I", True: _shortstr("txid") + b"L"}
_UUID_LENGTH = 36
_OWN_CONSTANTS: dict[tuple[str, str], tuple[bytes, bytes]] = {}
#: The lengths that vary and the constants: (content type, time text, a 64-bit txid, (app_id, origin item)).
_OwnKey = tuple[int, int, bool, tuple[bytes, bytes]]
#: -> the Struct's pack and the length of the headers table it packs
_OWN_STRUCTS: dict[_OwnKey, tuple[Callable[..., bytes], int]] = {}


def own_content_header(body_length: int, content_type: str | None, correlation_id: str, message_id: str,
                       timestamp: int, delivery_mode: int, app_id: str, origin: str, sequence: int,
                       utc_time: str, txid: int | None) -> bytes | None:
    """The content header of a message of the relay's own shape, as py-amqp would encode its properties.

    None for one that is not quite of that shape (no content type, no txid,
    a short sequence): the publisher then encodes its properties in general.
    """
    if not content_type or txid is None or len(correlation_id) != _UUID_LENGTH or len(message_id) != _UUID_LENGTH \
            or sequence <= 2147483647:
        return None
    constants = _OWN_CONSTANTS.get((app_id, origin)) or _own_constants(app_id, origin)
    content = content_type.encode("utf-8", "surrogatepass")
    time_text = utc_time.encode()
    wide = txid > 2147483647 or txid < -2147483647
    key: _OwnKey = (len(content), len(time_text), wide, constants)
    pack, table_length = _OWN_STRUCTS.get(key) or _own_struct(key)
    return pack(BASIC_CLASS, 0, body_length, _OWN_FLAGS, len(content), content, table_length, constants[1],
                _SEQUENCE_ITEM, sequence, _TIMESTAMP_ITEM, len(time_text), time_text, _TXID_ITEMS[wide], txid,
                delivery_mode, _UUID_LENGTH, correlation_id.encode(), _UUID_LENGTH, message_id.encode(), timestamp,
                constants[0])


def _own_constants(app_id: str, origin: str) -> tuple[bytes, bytes]:
    """The app_id short string and the origin header item: the same on every message of a process."""
    encoded = origin.encode("utf-8", "surrogatepass")
    made = _OWN_CONSTANTS[(app_id, origin)] = (_shortstr(app_id),
                                               _shortstr("origin") + b"S" + _U32(len(encoded)) + encoded)
    return made


def _own_struct(key: _OwnKey) -> tuple[Callable[..., bytes], int]:
    content, time_text, wide, (app, origin_item) = key
    table = (f"{len(origin_item)}s{len(_SEQUENCE_ITEM)}sq{len(_TIMESTAMP_ITEM)}sI{time_text}s"
             f"{len(_TXID_ITEMS[wide])}s{'q' if wide else 'i'}")
    fmt = f">HHQHB{content}sI{table}BB{_UUID_LENGTH}sB{_UUID_LENGTH}sQ{len(app)}s"
    made = _OWN_STRUCTS[key] = (Struct(fmt).pack, Struct(">" + table).size)
    return made
