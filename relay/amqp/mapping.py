"""PgQ event -> AMQP message (SPEC §2): a pure function, no I/O.

``ev_type`` is the routing key, ``ev_data`` the body, ``ev_extra1`` the exchange,
``ev_extra2`` the content type, ``ev_extra3`` a JSON object of AMQP properties
and ``ev_extra4`` a JSON object of headers. The relay adds ``app_id``,
``correlation_id``, ``timestamp``, ``message_id`` and ``delivery_mode`` and the
headers ``origin``, ``sequence``, ``timestamp`` and ``txid``. A property given in
``ev_extra3`` wins over the relay's own; a header given by the producer is never
overwritten by an automatic one.

Every field is untrusted: the result is a message that py-amqp can encode and
RabbitMQ accepts, or a :class:`PoisonEvent` whose text says why not. Checked:

- Nesting: header tables and arrays at most :data:`MAX_DEPTH` levels deep,
  measured on the JSON text before it is parsed; nothing here recurses.
- AMQP field tables: keys are short strings (at most 255 bytes of UTF-8),
  integers fit in signed 64 bits, numbers are finite (``NaN``, ``Infinity`` and
  ``1e400`` are refused: RabbitMQ closes the connection with 541 on a non-finite
  double), ``CC``/``BCC`` headers are arrays (RabbitMQ closes the channel with
  406 on any other type).
- Strings: a lone surrogate (``"\\ud800"`` is valid JSON) cannot be encoded as
  UTF-8, so it is refused wherever it would be encoded: routing key, exchange,
  content type, body, properties, header keys and values. NUL characters pass:
  they are legal in AMQP short and long strings, and RabbitMQ (3.10, tried)
  accepts them in exchange names, routing keys, properties, header keys and
  header values alike, and delivers them intact.
- Properties: types and ranges (``expiration`` at most
  :data:`EXPIRATION_MAX_MS`, the largest RabbitMQ accepts).
- With :class:`MessageLimits` (what one connection accepts): the encoded
  properties fit in one content-header frame of the negotiated ``frame_max``,
  ``user_id`` is the login user, the body is within ``max_message_size``.
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from itertools import accumulate
from typing import Any, NamedTuple, cast

from ..core.events import Event
from ..core.identity import VARIANT_DIGITS, RelayIdentity
from .frames import own_content_header

MESSAGE_ID_NAMESPACE = uuid.UUID("6f1c5d0e-4a44-4f57-9b0e-7d1b6c3a9e21")
SHORTSTR_MAX = 255
INT64 = (-(2**63), 2**63 - 1)
#: How deep header tables and arrays may nest (the headers table itself is level 1).
#: py-amqp encodes a table with two Python frames per level (``_write_item`` ->
#: ``_write_table``/``_write_array`` -> ``_write_item``) and decodes it with one
#: (``_read_item``), all by recursion: 100 levels take some 200 of the 1000 frames
#: Python allows, leaving ample room for the Celery task, relay and kombu frames
#: beneath the publish, and for consumers with recursive decoders. No header
#: needs more; Ruby's JSON parser stops at the same depth by default.
MAX_DEPTH = 100
#: The largest ``expiration`` (milliseconds: ten years) RabbitMQ accepts; above it,
#: it closes the channel with 406 (RabbitMQ 3.10, tried).
EXPIRATION_MAX_MS = 315_360_000_000
#: A content-header frame around the encoded properties: frame type, channel and
#: size (7 bytes) and frame end (1), then class id, weight and body size (12).
HEADER_FRAME_OVERHEAD = 20
#: AMQP's smallest frame_max: every peer must accept frames this large.
FRAME_MIN_SIZE = 4096
#: More than the encoded size of all properties and automatic headers but the
#: strings counted one by one (see :func:`_header_size_bound`): flags, lengths,
#: numbers, the relay's message id, the ISO-8601 time, ev_extra2 (255 bytes at most).
OWN_FIELDS_BOUND = 512
_FLOAT_MAX = sys.float_info.max
#: Strings in JSON text, escapes included; an unterminated one runs to the end.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
#: A \u escape of a surrogate (paired or not): only then can parsed JSON strings hold one.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class PoisonEvent(ValueError):
    """An event that can never be published as it is; the message says why."""


class Message(NamedTuple):
    """An AMQP message ready to publish; ``properties`` use AMQP names, ``headers`` included.

    A named tuple, like :class:`~relay.core.events.Event`: one is made per event.
    ``header`` is the content header already encoded from ``properties`` (the
    relay's own shape of message, packed in one go), or None: the publisher
    then encodes ``properties`` itself.
    """

    exchange: str
    routing_key: str
    body: bytes
    properties: dict[str, Any]
    header: bytes | None = None


@dataclass(frozen=True, slots=True)
class MessageLimits:
    """What one connection to RabbitMQ accepts beyond the rules of AMQP; ``None`` leaves a limit unchecked.

    ``frame_max`` is the connection's negotiated maximum frame size (RabbitMQ's
    default is 131072; 0 is AMQP's "no limit"): the encoded properties, headers
    included, travel in one frame, and a larger one makes RabbitMQ close the
    connection (501). ``user_id`` is the login user: RabbitMQ closes the channel
    (406) on a message whose ``user_id`` property names anyone else, so leave it
    ``None`` for a user with RabbitMQ's ``impersonator`` tag. ``max_message_size``
    is the broker's ``max_message_size`` setting (bytes of body; 406 above it).
    """

    frame_max: int | None = None
    user_id: str | None = None
    max_message_size: int | None = None

    def __post_init__(self) -> None:
        if self.frame_max is not None and self.frame_max != 0 and self.frame_max < FRAME_MIN_SIZE:
            raise ValueError(f"frame_max must be 0 (no limit) or at least {FRAME_MIN_SIZE}, not {self.frame_max}")
        if self.max_message_size is not None and self.max_message_size < 0:
            raise ValueError(f"max_message_size must not be negative, not {self.max_message_size}")


# --- text for reasons --------------------------------------------------------------------------

def _show(value: Any, limit: int = 60) -> str:
    """``value`` for a reason: a string quoted as JSON, anything cut short.

    A reason is stored in PostgreSQL, which takes no NUL and no lone surrogate
    in text, and logged: control characters and surrogates appear escaped
    (``"a\\u0000"``, ``"\\ud800"``), the rest as it is.
    """
    if isinstance(value, str):
        text = json.dumps(value[:limit + 1], ensure_ascii=False).encode("utf-8", "backslashreplace").decode()
        return text if len(value) <= limit and len(text) <= limit + 2 else text[:limit + 1] + "…"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _where(path: tuple[Any, ...]) -> str:
    """Where in a header table a value is: `` at ["a"][0]``, or nothing for the table itself."""
    if not path:
        return ""
    steps = [f"[{_show(step, 30)}]" for step in (path if len(path) <= 10 else path[:4] + path[-4:])]
    if len(path) > 10:
        steps.insert(4, f"…{len(path) - 8} more…")
    return " at " + "".join(steps)


def _name(name: str) -> str:
    """A property name a producer gave, as it reads best: plain, or quoted when it is not plain."""
    return name if _PLAIN_NAME.fullmatch(name) else _show(name, 30)


def _lone_surrogate(text: str) -> str | None:
    """Where ``text`` has a lone surrogate, which UTF-8 cannot encode (``U+D800 at character 3``), or None."""
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        return f"U+{ord(text[exc.start]):04X} at character {exc.start}"
    return None


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


# --- properties --------------------------------------------------------------------------------

def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise PoisonEvent(f"ev_extra3 property {name!r} must be a string, not {type(value).__name__}")
    return value


def _too_long(text: str) -> bool:
    """Longer than an AMQP short string (255 bytes of UTF-8)."""
    # A character is at most 4 bytes in UTF-8: short text needs no encoding to be measured.
    return len(text) * 4 > SHORTSTR_MAX and _utf8_size(text) > SHORTSTR_MAX


def _shortstr(name: str, value: Any) -> str:
    text = _text(name, value)
    if not text.isascii():
        surrogate = _lone_surrogate(text)
        if surrogate:
            raise PoisonEvent(f"ev_extra3 property {name!r} has a lone surrogate ({surrogate}), "
                              "which UTF-8 cannot encode")
    if _too_long(text):
        raise PoisonEvent(f"ev_extra3 property {name!r} is longer than {SHORTSTR_MAX} bytes "
                          f"({_utf8_size(text)} bytes of UTF-8)")
    return text


def _integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PoisonEvent(f"ev_extra3 property {name!r} must be an integer from {low} to {high}")
    return value


def _delivery_mode(name: str, value: Any) -> int:
    if isinstance(value, bool) or value not in (1, 2):
        raise PoisonEvent(f"ev_extra3 property {name!r} must be 1 (transient) or 2 (persistent)")
    return cast(int, value)  # 1 or 2, as JSON gave it


def _expiration(name: str, value: Any) -> str:
    # RabbitMQ closes the channel on an expiration that is not a count of
    # milliseconds, or one above its maximum, which would fail every message in flight with it.
    text = _text(name, value)
    if not text.isascii() or not text.isdigit():
        raise PoisonEvent(f"ev_extra3 property {name!r} must be milliseconds as text, e.g. \"60000\"")
    if len(text) > SHORTSTR_MAX or len(text.lstrip("0")) > 12 or int(text) > EXPIRATION_MAX_MS:
        raise PoisonEvent(f"ev_extra3 property {name!r} must be at most {EXPIRATION_MAX_MS} milliseconds "
                          f"(ten years, RabbitMQ's maximum), not {_show(text)}")
    return text


PROPERTY_CHECKS = {
    "app_id": _shortstr,
    "content_encoding": _shortstr,
    "content_type": _shortstr,
    "correlation_id": _shortstr,
    "delivery_mode": _delivery_mode,
    "expiration": _expiration,
    # the type only: the table is checked by parse_properties, which knows the text it came from
    "headers": lambda name, value: _table_type("ev_extra3 headers", value),
    "message_id": _shortstr,
    "priority": lambda name, value: _integer(name, value, 0, 255),
    "timestamp": lambda name, value: _integer(name, value, 0, 2**63 - 1),
    "type": _shortstr,
    "user_id": _shortstr,
}


# --- JSON text ---------------------------------------------------------------------------------

def _refuse_constant(column: str, name: str) -> None:
    raise PoisonEvent(f"{column} has the number {name}, which AMQP cannot carry: numbers must be finite")


# Python's json reads NaN, Infinity and -Infinity, which are not JSON, as floats: refused as they are read.
_DECODERS = {column: json.JSONDecoder(parse_constant=partial(_refuse_constant, column))
             for column in ("ev_extra3", "ev_extra4")}


def _deeper_than(text: str, limit: int) -> bool:
    """Whether the JSON ``text`` nests arrays and objects more than ``limit`` deep.

    Measured on the text, before parsing, because Python's json parser recurses
    once per level. Brackets inside strings do not count; the scan is done by
    regular expressions and a running sum, with no recursion and no Python loop
    over characters.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    # A run of openers is the usual shape of an attack ("[[[[..."), and found at C speed.
    if re.search(rf"[\[{{]{{{limit + 1}}}", brackets):
        return True
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0) > limit


def _json_object(column: str, text: str, depth: int) -> tuple[dict[str, Any], bool]:
    """``text`` parsed as a JSON object nested at most ``depth`` deep; and whether its strings may hold surrogates."""
    if not text.isascii():
        surrogate = _lone_surrogate(text)
        if surrogate:
            raise PoisonEvent(f"{column} has a lone surrogate ({surrogate}), which UTF-8 cannot encode")
    if len(text) > depth and _deeper_than(text, depth):
        raise PoisonEvent(f"{column} is nested deeper than {depth} levels"
                          + (f" (its headers may nest {MAX_DEPTH} levels deep)" if column == "ev_extra3" else ""))
    try:
        value = _DECODERS[column].decode(text)
    except PoisonEvent:
        raise
    except json.JSONDecodeError as exc:
        raise PoisonEvent(f"{column} is not valid JSON: {exc}") from None
    except ValueError:
        # The only other error of the parser: an integer of thousands of digits.
        raise PoisonEvent(f"{column} has an integer outside the 64-bit range AMQP can carry "
                          f"(one of more than {sys.get_int_max_str_digits()} digits)") from None
    if not isinstance(value, dict):
        raise PoisonEvent(f"{column} must be a JSON object, not {type(value).__name__}")
    # Text with no \uD800-\uDFFF escape (and no surrogate as such, refused above) parses to strings without one.
    return value, "\\u" in text and _ESCAPED_SURROGATE.search(text) is not None


def json_object_or_none(text: str) -> dict[str, Any] | None:
    """``ev_extra3`` text as the JSON object it holds, or None: what parsing allows, with no way to make it recurse.

    For readers of a single field of an event the mapping may have refused
    (its audit ``message_id``).
    """
    try:
        return _json_object("ev_extra3", text, MAX_DEPTH + 1)[0]
    except PoisonEvent:
        return None


# --- header tables -----------------------------------------------------------------------------

def _table_type(column: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PoisonEvent(f"{column} must be a JSON object, not {type(value).__name__}")
    return value


def _check_table(column: str, table: dict[str, Any], surrogates: bool = True) -> None:
    """Raise :class:`PoisonEvent` unless ``table`` (parsed JSON) is a field table py-amqp and RabbitMQ take.

    Iterative, with an explicit stack of containers and one of their depths: a
    table nested deeper than :data:`MAX_DEPTH` is refused, never recursed into.
    Where a fault is is worked out only for its reason (:func:`_path`), so the
    walk builds nothing per container. ``surrogates`` False skips the surrogate
    check of every string, for a table parsed from text known to hold none.
    """
    low, high = INT64
    stack: list[Any] = [table]
    depths = [1]
    pop, push, pop_depth, push_depth = stack.pop, stack.append, depths.pop, depths.append
    key: Any  # a table's key (str) or a list's index (int); annotations cost nothing at run time
    while stack:
        node = pop()
        depth = pop_depth()
        is_table = type(node) is dict
        for key, value in node.items() if is_table else enumerate(node):
            if is_table and (surrogates or len(key) * 4 > SHORTSTR_MAX):
                _check_key(column, key, table, node)
            kind = type(value)
            if kind is str:
                if surrogates and not value.isascii():
                    surrogate = _lone_surrogate(value)
                    if surrogate:
                        raise PoisonEvent(f"{column} has a string with a lone surrogate ({surrogate})"
                                          f"{_where(_path(table, node, key))}, which UTF-8 cannot encode")
            elif kind is int:
                if not low <= value <= high:
                    raise PoisonEvent(f"{column} has an integer outside the 64-bit range AMQP can carry"
                                      f"{_where(_path(table, node, key))}: {_show(value)}")
            elif kind is float:
                if not -_FLOAT_MAX <= value <= _FLOAT_MAX:
                    # NaN and Infinity were refused as they were read: this is a number like 1e400
                    raise PoisonEvent(f"{column} has a number too large for a 64-bit float"
                                      f"{_where(_path(table, node, key))} (it reads as {value!r}), which AMQP "
                                      "cannot carry: numbers must be finite")
            elif kind is dict or kind is list:
                if depth >= MAX_DEPTH:
                    raise PoisonEvent(f"{column} is nested deeper than {MAX_DEPTH} levels"
                                      f"{_where(_path(table, node, key))}")
                push(value)
                push_depth(depth + 1)
            elif value is not None and kind is not bool:
                raise PoisonEvent(f"{column} has a {kind.__name__}{_where(_path(table, node, key))}, "
                                  "which is not JSON")


def _path(table: dict[str, Any], node: Any, key: Any) -> tuple[Any, ...]:
    """The keys and indexes from ``table`` down to ``key`` in its container ``node``, for a reason.

    A search of its own, iterative, made only when there is a fault to report.
    """
    parents: dict[int, tuple[Any, Any] | None] = {id(table): None}
    stack: list[Any] = [table]
    while stack:
        current = stack.pop()
        if current is node:
            break
        for step, value in current.items() if type(current) is dict else enumerate(current):
            if type(value) in (dict, list) and id(value) not in parents:
                parents[id(value)] = (current, step)
                stack.append(value)
    steps: list[Any] = [key]
    link = parents.get(id(node))
    while link is not None:
        parent, step = link
        steps.append(step)
        link = parents[id(parent)]
    return tuple(reversed(steps))


def _check_key(column: str, key: str, table: dict[str, Any], node: dict[str, Any]) -> None:
    if not key.isascii():
        surrogate = _lone_surrogate(key)
        if surrogate:
            where = _where(_path(table, node, key)[:-1])
            raise PoisonEvent(f"{column} has a key with a lone surrogate ({surrogate}){where}, "
                              f"which UTF-8 cannot encode: {_show(key)}")
    if _too_long(key):
        where = _where(_path(table, node, key)[:-1])
        raise PoisonEvent(f"{column} has a key longer than {SHORTSTR_MAX} bytes{where}: {_show(key)} "
                          f"({_utf8_size(key)} bytes of UTF-8)")


def _headers(column: str, table: dict[str, Any], surrogates: bool = True) -> dict[str, Any]:
    if table:
        _check_table(column, table, surrogates)
        for key in ("CC", "BCC"):
            # RabbitMQ routes a copy to each routing key of these arrays (sender-selected
            # distribution) and closes the channel when one is not an array.
            if key in table and type(table[key]) is not list:
                raise PoisonEvent(f"{column} header {key!r} must be an array of routing keys, not "
                                  f"{type(table[key]).__name__}: RabbitMQ refuses any other type")
    return table


def parse_properties(text: str | None) -> dict[str, Any]:
    """The AMQP properties of ``ev_extra3``, type-checked; raises :class:`PoisonEvent`."""
    if not text or text.isspace():
        return {}
    # the headers object is one level down in the text
    given, surrogates = _json_object("ev_extra3", text, MAX_DEPTH + 1)
    unknown = sorted(set(given) - PROPERTY_CHECKS.keys())
    if unknown:
        names = ", ".join(_name(name) for name in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise PoisonEvent(f"ev_extra3 has unknown AMQP properties: {names}{more}")
    properties: dict[str, Any] = {name: PROPERTY_CHECKS[name](name, value) for name, value in given.items()}
    if "headers" in properties:
        _headers("ev_extra3 headers", properties["headers"], surrogates)
    return properties


def parse_headers(text: str | None) -> dict[str, Any]:
    """The headers of ``ev_extra4``; raises :class:`PoisonEvent`."""
    if not text or text.isspace():
        return {}
    return _headers("ev_extra4", *_json_object("ev_extra4", text, MAX_DEPTH))


# --- message ids and times ---------------------------------------------------------------------

@lru_cache(maxsize=256)
def utc_stamp(time: datetime) -> tuple[str, int]:
    """``time`` as UTC ISO-8601 text and as epoch seconds.

    The events of one producer transaction share their ``ev_time``: a batch
    converts a few distinct times, not one per event.
    """
    utc = time.astimezone(UTC)
    return utc.isoformat(), int(utc.timestamp())


def stable_message_id(queue: str, event: Event) -> str:
    """A message id that is the same for every delivery of one event: a name-based UUID (version 5).

    PgQ keeps ``ev_id`` and ``ev_time`` when it hands a retried event back but
    gives it a new txid, so the id is derived from the queue, ``ev_id`` and
    ``ev_time`` in UTC: redeliveries and retries carry the same id, and a queue
    that is dropped and created again (restarting ``ev_id``) does not reuse one.
    """
    return stable_message_ids(queue, [event])[0]


#: Where each hex digit of a SHA-1 digest goes in a version 5 UUID's text, 37 characters apiece.
_UUID_DIGITS = tuple(zip((*range(0, 8), *range(9, 13), *range(15, 18), *range(20, 23), *range(24, 36)),
                         (*range(0, 8), *range(8, 12), *range(13, 16), *range(17, 20), *range(20, 32)),
                         strict=True))


def stable_message_ids(queue: str, events: Sequence[Event]) -> list[str]:
    """:func:`stable_message_id` of each event, for a window at a time.

    The same values as ``uuid.uuid5(MESSAGE_ID_NAMESPACE, name)``: each event
    hashes only its own part after a SHA-1 fed once with the namespace and the
    queue, and the digests become UUID text a column at a time, with no
    Python work per character.
    """
    queue_hasher = _queue_hasher(queue)
    digests = []
    for event in events:
        hasher = queue_hasher.copy()
        hasher.update(b"%d\x00%s" % (event.id, utc_stamp(event.time)[0].encode()))
        digests.append(hasher.digest())
    count = len(digests)
    digits = b"".join(digests).hex().encode()
    text = bytearray(37 * count)
    for to, from_ in _UUID_DIGITS:
        text[to::37] = digits[from_::40]
    text[8::37] = text[13::37] = text[18::37] = text[23::37] = b"-" * count
    text[14::37] = b"5" * count
    text[19::37] = digits[16::40].translate(VARIANT_DIGITS)
    text[36::37] = b" " * count
    return text.decode().split()


@lru_cache(maxsize=64)
def _queue_hasher(queue: str) -> hashlib._Hash:
    """SHA-1 fed with the namespace and the queue: each event's id hashes only its own part."""
    return hashlib.sha1(MESSAGE_ID_NAMESPACE.bytes + f"{queue}\x00".encode())


# --- the message -------------------------------------------------------------------------------

def _short_column(column: str, value: str) -> str:
    """``value`` unless it is no AMQP short string (the caller tried the common case already)."""
    surrogate = _lone_surrogate(value)
    if surrogate:
        raise PoisonEvent(f"{column} has a lone surrogate ({surrogate}), which UTF-8 cannot encode")
    if _too_long(value):
        raise PoisonEvent(f"{column} is longer than the {SHORTSTR_MAX} bytes AMQP allows "
                          f"({_utf8_size(value)} bytes of UTF-8)")
    return value


#: Bytes py-amqp writes for a property, beyond text: octets and the 64-bit timestamp (text takes 1 + its bytes).
_PROPERTY_SIZES = {"delivery_mode": 1, "priority": 1, "timestamp": 8}


def content_header_size(properties: dict[str, Any], stop_after: int | None = None) -> int:
    """Bytes of the encoded ``properties`` (``headers`` included), exactly as py-amqp writes them for kombu.

    The rules of py-amqp's encoder (``amqp/serialization.py``: ``dumps``,
    ``_write_table``, ``_write_item``), counted without encoding and without
    recursion: 2 bytes of property flags; a short string 1 + its bytes, an
    octet 1, the timestamp 8; the headers table 4 + for each key 1 + its bytes
    and its value: a string 5 + its bytes, an integer 5 (9 beyond
    ±2147483647), a float 9, a boolean 2, null 1, an array or table 5 + its
    contents. The content-header frame adds :data:`HEADER_FRAME_OVERHEAD`. With
    ``stop_after``, counting stops as soon as the size exceeds it (the result is
    then only a lower bound), so a huge header costs no more than a big one.
    """
    size = 2
    for name, value in properties.items():
        if value is not None and name != "headers":
            size += _PROPERTY_SIZES.get(name) or 1 + _utf8_size(value)
    headers = properties.get("headers")
    if headers is None:
        return size
    size += 4
    stop = stop_after if stop_after is not None else sys.maxsize
    stack = [headers]
    key: Any  # a table's key (str) or a list's index (int)
    while stack:
        node = stack.pop()
        is_table = type(node) is dict
        for key, value in node.items() if is_table else enumerate(node):
            if is_table:
                size += 1 + _utf8_size(key)
            kind = type(value)
            if kind is str:
                size += 5 + _utf8_size(value)
            elif kind is int:
                size += 5 if -2147483647 <= value <= 2147483647 else 9
            elif kind is float:
                size += 9
            elif kind is bool:
                size += 2
            elif value is None:
                size += 1
            else:
                size += 5
                stack.append(value)
            if size > stop:
                return size
    return size


def _header_size_bound(event: Event, identity: RelayIdentity, correlation_id: str) -> int:
    """An upper bound of :func:`content_header_size` from lengths of text alone, no encoding.

    A JSON value of n bytes of text encodes to at most 2.5 (n + 1) bytes in an
    AMQP table (a digit and its comma, 2 bytes, become a 5-byte integer; nothing
    grows more), and a character is at most 4 bytes of UTF-8: a JSON column of c
    characters takes at most 10 c + 3 bytes. ``ev_extra4`` counts even when
    ``ev_extra3`` headers replace it. The strings the relay sets count 4 bytes a
    character; ``ev_extra2`` (a checked short string of 255 bytes at most) and
    the rest of the relay's own fields fit in :data:`OWN_FIELDS_BOUND`.
    """
    return (OWN_FIELDS_BOUND + 10 * (len(event.extra3 or "") + len(event.extra4 or ""))
            + 4 * (len(identity.origin) + len(identity.app_id) + len(correlation_id)))


def _header_size_bound_bytes(event: Event, identity: RelayIdentity, correlation_id: str) -> int:
    """A tighter bound than :func:`_header_size_bound`, from bytes of UTF-8: 2.5 (n + 1) a JSON column of n bytes."""
    return (OWN_FIELDS_BOUND + 4 * (len(identity.origin) + len(identity.app_id) + len(correlation_id))
            + sum(5 * (_utf8_size(text) + 1) // 2 + 1 for text in (event.extra3, event.extra4) if text))


def _check_header_size(frame_max: int, event: Event, identity: RelayIdentity, correlation_id: str,
                       properties: dict[str, Any]) -> None:
    """Raise :class:`PoisonEvent` when ``properties`` do not fit in a content-header frame.

    Called when :func:`_header_size_bound` could not rule it out: the bound
    from bytes first, the exact size only when that fails too.
    """
    room = frame_max - HEADER_FRAME_OVERHEAD
    if _header_size_bound_bytes(event, identity, correlation_id) <= room:
        return
    # Counted exactly up to twice the room: a near miss is told to the byte, a huge header costs little.
    size = content_header_size(properties, stop_after=2 * room)
    if size > room:
        raise PoisonEvent(f"the properties and headers take {'over ' if size > 2 * room else ''}"
                          f"{min(size, 2 * room)} bytes encoded, more than the {room} bytes a content-header frame "
                          f"holds with the connection's frame_max of {frame_max}")


def _refuse_user_id(user_id: str, login: str) -> None:
    raise PoisonEvent(f"ev_extra3 property 'user_id' is {_show(user_id)} but the connection logs in as "
                      f"{_show(login)}: RabbitMQ refuses a user_id other than the login user")


def event_to_message(
    event: Event,
    *,
    queue: str,
    identity: RelayIdentity,
    persistent: bool,
    correlation_id: str,
    sequence: int,
    limits: MessageLimits | None = None,
    message_id: str | None = None,
) -> Message:
    """Map one PgQ event to the AMQP message to publish.

    ``correlation_id`` (a fresh UUID) and ``sequence`` come from the caller so
    that this function stays pure; so may ``message_id``, the event's
    :func:`stable_message_id`, when the caller made a window's at once.
    ``limits`` are what the connection the message will be published on
    accepts (its ``frame_max`` and login user); without them only the rules
    of AMQP and RabbitMQ that hold for every connection are checked. Raises :class:`PoisonEvent` for an event that can
    never be published as it is, and no other exception.

    >>> from datetime import datetime, timezone
    >>> ev = Event(id=1, time=datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), txid=9,
    ...            retry=None, type="test.routing-key", data='{"foo": "bar"}',
    ...            extra1="postgres", extra2="application/json", extra3='{"type": "example"}')
    >>> msg = event_to_message(ev, queue="test", identity=RelayIdentity("relay/1", "host"),
    ...                        persistent=True, correlation_id="c", sequence=7,
    ...                        limits=MessageLimits(frame_max=131072, user_id="guest"))
    >>> msg.exchange, msg.routing_key, msg.properties["type"], msg.properties["timestamp"]
    ('postgres', 'test.routing-key', 'example', 1704164645)
    """
    # Most events have no ev_extra3 or ev_extra4: no parsing and no function call for them.
    given = parse_properties(event.extra3) if event.extra3 else None
    if given and "headers" in given:
        user_headers = given.pop("headers")
    else:
        user_headers = parse_headers(event.extra4) if event.extra4 else None
    # The common case, plain ASCII short enough, is checked inline; the rest by _short_column.
    exchange = event.extra1 or ""
    if not (exchange.isascii() and len(exchange) <= SHORTSTR_MAX):
        _short_column("ev_extra1 (exchange)", exchange)
    routing_key = event.type or ""
    if not (routing_key.isascii() and len(routing_key) <= SHORTSTR_MAX):
        _short_column("ev_type (routing key)", routing_key)
    if event.data:
        try:
            body = event.data.encode()
        except UnicodeEncodeError as exc:
            raise PoisonEvent(f"ev_data (body) has a lone surrogate (U+{ord(event.data[exc.start]):04X} at "
                              f"character {exc.start}), which UTF-8 cannot encode") from None
    else:
        body = b""
    utc_time, epoch_seconds = utc_stamp(event.time)
    headers = {"origin": identity.origin, "sequence": sequence, "timestamp": utc_time, "txid": event.txid}
    if user_headers:
        # after the automatic ones, so that a header the producer gave is never overwritten
        headers.update(user_headers)
    properties: dict[str, Any] = {
        "app_id": identity.app_id,
        "correlation_id": correlation_id,
        "timestamp": epoch_seconds,
        "message_id": message_id or stable_message_id(queue, event),
        "delivery_mode": 2 if persistent else 1,
    }
    content_type = event.extra2
    if content_type:
        if not (content_type.isascii() and len(content_type) <= SHORTSTR_MAX):
            _short_column("ev_extra2 (content type)", content_type)
        properties["content_type"] = content_type
    if given:
        properties.update(given)
    properties["headers"] = headers
    if limits is not None:
        if given and "user_id" in given and limits.user_id is not None and given["user_id"] != limits.user_id:
            _refuse_user_id(given["user_id"], limits.user_id)
        if limits.max_message_size is not None and len(body) > limits.max_message_size:
            raise PoisonEvent(f"ev_data (body) is {len(body)} bytes, more than RabbitMQ's max_message_size of "
                              f"{limits.max_message_size} bytes")
        # Without JSON from the producer the properties are the relay's own fields and ev_extra2: app_id
        # and correlation_id are short strings (py-amqp sends no other), origin a host name, and
        # OWN_FIELDS_BOUND + 4 bytes a character of three short strings fit in the smallest frame AMQP
        # allows (a test says so): most events need no size check at all.
        if (limits.frame_max and (event.extra3 or event.extra4 or len(identity.origin) > SHORTSTR_MAX)
                and _header_size_bound(event, identity, correlation_id) > limits.frame_max - HEADER_FRAME_OVERHEAD):
            _check_header_size(limits.frame_max, event, identity, correlation_id, properties)
    # Most events have neither: their message has the relay's own shape, and its header is packed now.
    header = (own_content_header(len(body), content_type, correlation_id, properties["message_id"], epoch_seconds,
                                 properties["delivery_mode"], identity.app_id, identity.origin, sequence, utc_time,
                                 event.txid)
              if not given and not user_headers else None)
    # tuple.__new__ builds the named tuple in C, skipping its Python-level constructor.
    return tuple.__new__(Message, (exchange, routing_key, body, properties, header))
