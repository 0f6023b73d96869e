"""Property-based tests of the mapping (hypothesis): whatever a producer writes, a publishable message or a poison.

Every event field gets arbitrary text (lone surrogates, NUL, quotes and
brackets included), ev_extra3/ev_extra4 arbitrary JSON text: dumps of
arbitrary values (NaN, huge integers, deep nesting), truncated JSON and raw
strings. ``event_to_message`` must return a :class:`Message` or raise
:class:`PoisonEvent`, nothing else; and a message it returns must be one that
py-amqp encodes, as the publisher hands it over through kombu, into a content
header that fits the connection's ``frame_max`` and decodes back to the same
values. Deterministic (derandomized, no example database), so CI is stable.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from amqp.basic_message import Message as AmqpMessage
from amqp.serialization import dumps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.amqp.frame_check import py_amqp_message
from relay.amqp.mapping import event_to_message
from relay.amqp.message import (
    EXPIRATION_MAX_MS,
    HEADER_FRAME_OVERHEAD,
    INT64,
    MAX_DEPTH,
    SHORTSTR_MAX,
    Message,
    MessageLimits,
    PoisonEvent,
)
from relay.amqp.properties import PROPERTY_CHECKS
from relay.amqp.sizing import _header_size_bound, _header_size_bound_bytes, content_header_size
from relay.core.events import Event

from .mapping_values import CORRELATION_ID, IDENTITY

pytestmark = pytest.mark.pure  # no service, no process: the fast tier (pytest -m "not slow")

BASIC_CLASS_ID = 60

PROPERTY_TESTS = settings(max_examples=400, derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --- strategies -----------------------------------------------------------------------------------

def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of the strategies, each as often as its weight says.

    (``a | b`` flattens the alternatives of ``a`` and ``b`` and picks among all of
    them, so a strategy of many alternatives would crowd out the others.)
    """
    strategies = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(strategies) - 1).flatmap(strategies.__getitem__)


#: JSON's own syntax, NUL, a character of 2 and one of 4 bytes, half a surrogate pair.
SPECIAL = st.sampled_from([*'\x00"\\[]{}:,\'é😀 \n\t', "\ud83d", "\ude00"])
#: Any character: hypothesis leaves lone surrogates out unless asked for them.
CHARACTERS = st.characters(exclude_categories=()) | st.characters(categories=["Cs"]) | SPECIAL
CLEAN_TEXT = st.text(st.characters(exclude_categories=["Cs"]) | SPECIAL.filter(str.isprintable), max_size=20)
LONG_TEXT = st.builds(lambda char, count: char * count, CHARACTERS, st.integers(0, 300))
#: Text that UTF-8 can encode three times out of five (or a surrogate would refuse almost every event).
SOME_TEXT = weighted((3, CLEAN_TEXT), (1, st.text(CHARACTERS, max_size=20)), (1, LONG_TEXT))
INTEGERS = (st.integers(-(2**70), 2**70)
            | st.sampled_from([INT64[0], INT64[1], INT64[0] - 1, INT64[1] + 1, -(2**31), 2**31 - 1, 2**31]))
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | INTEGERS | FLOATS | SOME_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(SOME_TEXT, children, max_size=4),
    max_leaves=25,
)
HEADER_TABLES = st.dictionaries(SOME_TEXT | st.sampled_from(["CC", "BCC"]), JSON_VALUES, max_size=5)


def _nest(levels: int, kind: str) -> str:
    opening, closing = ('{"a": ', "}") if kind == "object" else ("[", "]")
    inner = opening * levels + "1" + closing * levels
    return '{"h": ' + inner + "}"


#: Nesting around the limit, as objects or arrays, closed or not.
DEEP_JSON = st.builds(lambda levels, kind, cut: _nest(levels, kind)[:cut] if cut else _nest(levels, kind),
                      st.integers(MAX_DEPTH - 3, MAX_DEPTH + 3) | st.integers(0, 2000),
                      st.sampled_from(["object", "array"]), st.none() | st.integers(0, 5000))


#: Number literals Python's json reads as floats AMQP cannot carry, or as huge integers, and ones it can.
NUMBER_LITERALS = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 30, "-0.0", "1E5",
                                   "5e-324", "1.7976931348623157e308", "-9223372036854775808"])
#: A header table with one such literal somewhere in it.
NUMBER_TABLES = st.builds(lambda key, literal, nested: (f'{{"{key}": [{literal}]}}' if nested
                                                        else f'{{"{key}": {literal}}}'),
                          st.sampled_from(["n", "x.y"]), NUMBER_LITERALS, st.booleans())


def _json_text(value: object, ensure_ascii: bool) -> str:
    return json.dumps(value, allow_nan=True, ensure_ascii=ensure_ascii)


def json_texts(values: st.SearchStrategy) -> st.SearchStrategy[str]:
    """JSON text of ``values`` (escaped or not; most often), the same cut anywhere, or any text at all."""
    dumped = st.builds(_json_text, values, st.booleans())
    truncated = st.builds(lambda text, cut: text[:cut], dumped, st.integers(0, 200))
    return weighted((5, dumped), (1, truncated), (1, SOME_TEXT), (1, DEEP_JSON))


#: Property values that pass as often as not, and anything else.
PROPERTY_VALUES = {
    "app_id": SOME_TEXT, "content_encoding": SOME_TEXT, "content_type": SOME_TEXT, "correlation_id": SOME_TEXT,
    "message_id": SOME_TEXT, "type": SOME_TEXT,
    "delivery_mode": st.integers(0, 3) | JSON_VALUES,
    "expiration": (st.integers(0, EXPIRATION_MAX_MS + 10).map(str)
                   | st.sampled_from([str(EXPIRATION_MAX_MS), str(EXPIRATION_MAX_MS + 1), "0" * 300 + "1", "-1"])
                   | JSON_VALUES),
    "headers": HEADER_TABLES | JSON_VALUES,
    "priority": st.integers(-1, 256) | JSON_VALUES,
    "timestamp": INTEGERS | JSON_VALUES,
    "user_id": st.sampled_from(["guest", "admin"]) | SOME_TEXT,
}
PROPERTIES = weighted((4, st.fixed_dictionaries({}, optional=PROPERTY_VALUES)), (1, st.dictionaries(
    st.sampled_from(sorted(PROPERTY_CHECKS)) | SOME_TEXT, JSON_VALUES, max_size=4)))
EXTRA3 = weighted((1, st.none()), (5, json_texts(PROPERTIES)),
                  (1, st.builds(lambda table: '{"headers": ' + table + "}", DEEP_JSON | NUMBER_TABLES)))
EXTRA4 = weighted((1, st.none()), (5, json_texts(weighted((3, HEADER_TABLES), (1, JSON_VALUES)))),
                  (1, NUMBER_TABLES))
COLUMN = weighted((1, st.none()), (3, SOME_TEXT))

LIMITS = st.none() | st.builds(
    MessageLimits,
    frame_max=st.none() | st.sampled_from([0, 4096, 131072]) | st.integers(4096, 20_000),
    user_id=st.none() | st.just("guest"),
    max_message_size=st.none() | st.integers(0, 300),
)


def make_event(type_, data, extra1, extra2, extra3, extra4) -> Event:
    return Event(id=1001, time=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), txid=987654, retry=None,
                 type=type_, data=data, extra1=extra1, extra2=extra2, extra3=extra3, extra4=extra4)


EVENTS = st.builds(make_event, COLUMN, COLUMN, COLUMN, COLUMN, EXTRA3, EXTRA4)


def map_event(event: Event, limits: MessageLimits | None = None) -> Message:
    return event_to_message(event, queue="test", identity=IDENTITY, persistent=True,
                            correlation_id=CORRELATION_ID, sequence=2**62, limits=limits)


# --- what py-amqp and RabbitMQ take ---------------------------------------------------------------

def py_amqp_size(properties: dict) -> int:
    """What py-amqp's own encoder makes of ``properties``: the oracle for ``content_header_size``."""
    fields = dict(properties)
    fields["application_headers"] = fields.pop("headers", None)
    return len(AmqpMessage(**fields)._serialize_properties())


def assert_amqp_value(value: object, depth: int = 1) -> None:
    """What a field table may hold: strict UTF-8 strings, int64, finite floats, short keys, bounded depth."""
    if isinstance(value, str):
        value.encode()
    elif isinstance(value, bool) or value is None:
        pass
    elif isinstance(value, int):
        assert INT64[0] <= value <= INT64[1]
    elif isinstance(value, float):
        assert value == value and abs(value) != float("inf")
    elif isinstance(value, (dict, list)):
        assert depth <= MAX_DEPTH
        for key in value if isinstance(value, dict) else ():
            assert len(key.encode()) <= SHORTSTR_MAX
        for item in value.values() if isinstance(value, dict) else value:
            assert_amqp_value(item, depth + 1)
    else:
        raise AssertionError(f"{type(value).__name__} in a field table")


def assert_publishable(message: Message, limits: MessageLimits | None, event: Event | None = None) -> None:
    """py-amqp encodes the method and content-header frames; they fit, and decode to what was meant."""
    assert isinstance(message.body, bytes)
    if event is not None:
        assert message.body == (event.data or "").encode()  # strict UTF-8: a surrogate cannot slip through
    for name in (message.exchange, message.routing_key):
        assert len(name.encode()) <= SHORTSTR_MAX
    dumps("Bssbb", (0, message.exchange, message.routing_key, True, False))  # basic.publish
    published = py_amqp_message(message)
    encoded = published._serialize_properties()
    if limits is not None and limits.frame_max:
        assert len(encoded) + HEADER_FRAME_OVERHEAD <= limits.frame_max
    assert content_header_size(message.properties) == py_amqp_size(message.properties)
    assert len(encoded) <= py_amqp_size(message.properties)  # kombu writes expiration without leading zeros
    decoded = AmqpMessage()
    decoded._load_properties(BASIC_CLASS_ID, encoded, 0)
    assert decoded.properties == published.properties
    properties = message.properties
    for name, value in properties.items():
        if isinstance(value, str):
            assert len(value.encode()) <= SHORTSTR_MAX, name
    assert_amqp_value(properties["headers"])
    for key in ("CC", "BCC"):
        assert type(properties["headers"].get(key, [])) is list
    assert int(properties.get("expiration", 0)) <= EXPIRATION_MAX_MS
    if limits is not None and limits.user_id is not None and "user_id" in properties:
        assert properties["user_id"] == limits.user_id
    if limits is not None and limits.max_message_size is not None:
        assert len(message.body) <= limits.max_message_size


def assert_storable_reason(reason: str) -> None:
    """A dead letter's reason goes to PostgreSQL text and to the log: no NUL, valid UTF-8, bounded."""
    assert reason
    assert "\x00" not in reason
    reason.encode()
    assert len(reason) < 1000


# --- properties -----------------------------------------------------------------------------------

@PROPERTY_TESTS
@given(EVENTS, LIMITS)
def test_any_event_maps_to_a_publishable_message_or_a_poison_event(event, limits):
    try:
        message = map_event(event, limits)
    except PoisonEvent as exc:
        assert_storable_reason(str(exc))
    else:
        assert_publishable(message, limits, event)


@PROPERTY_TESTS
@given(st.builds(make_event, st.just("rk"), st.just("body"), st.just("ex"), st.none(), st.none(), EXTRA4), LIMITS)
def test_any_json_in_ev_extra4(event, limits):
    try:
        message = map_event(event, limits)
    except PoisonEvent as exc:
        assert_storable_reason(str(exc))
    else:
        assert_publishable(message, limits)


@PROPERTY_TESTS
@given(st.builds(make_event, st.just("rk"), st.just("body"), st.just("ex"), st.none(), EXTRA3, EXTRA4), LIMITS)
def test_any_json_in_ev_extra3(event, limits):
    try:
        message = map_event(event, limits)
    except PoisonEvent as exc:
        assert_storable_reason(str(exc))
    else:
        assert_publishable(message, limits)


#: Header values that AMQP carries: they must never be refused, and arrive as they were.
VALID_TEXT = st.text(st.characters(exclude_categories=["Cs"]) | st.sampled_from(list('\x00"\\[]{}😀')), max_size=20)
VALID_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(*INT64) | st.floats(allow_nan=False, allow_infinity=False) | VALID_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(VALID_TEXT, children, max_size=4),
    max_leaves=25,
)
VALID_TABLES = st.dictionaries(VALID_TEXT, VALID_VALUES, max_size=6)


@PROPERTY_TESTS
@given(VALID_TABLES, st.booleans(), st.booleans(), VALID_TEXT, VALID_TEXT)
def test_valid_headers_and_strings_always_map_exactly(table, ensure_ascii, in_extra3, routing_key, body):
    text = json.dumps(table, ensure_ascii=ensure_ascii)
    extra3, extra4 = (json.dumps({"headers": table}, ensure_ascii=ensure_ascii), None) if in_extra3 else (None, text)
    event = make_event(routing_key, body, "ex", "text/plain", extra3, extra4)
    message = map_event(event, MessageLimits(frame_max=131072, user_id="guest"))
    assert {key: message.properties["headers"][key] for key in table} == table
    assert (message.routing_key, message.body) == (routing_key, body.encode())
    assert_publishable(message, None)


#: Headers dense in small values, which grow most when encoded (a digit and a comma become 5 bytes).
DENSE_HEADERS = st.builds(lambda item, count: json.dumps({"n": [item] * count}, separators=(",", ":")),
                          st.sampled_from([0, -1, 2**31, 1.5, 1e5, "", [], {}, None, True, [0], {"": 0}]),
                          st.integers(0, 3000))
DENSE_EVENTS = st.builds(lambda extra4: make_event("rk", "body", "ex", None, None, extra4), DENSE_HEADERS)


@PROPERTY_TESTS
@given(EVENTS | DENSE_EVENTS)
def test_the_cheap_size_bounds_are_upper_bounds(event):
    """The bounds that spare most events the exact measure never under-estimate it."""
    try:
        message = map_event(event)
    except PoisonEvent:
        return
    exact = content_header_size(message.properties)
    assert exact == py_amqp_size(message.properties)
    assert exact <= _header_size_bound_bytes(event, IDENTITY, CORRELATION_ID) <= _header_size_bound(
        event, IDENTITY, CORRELATION_ID)


@PROPERTY_TESTS
@given(st.integers(3500, 4200), st.sampled_from(["x", "é", "😀", "\x00"]), st.integers(0, 50), st.booleans(),
       st.sampled_from([4096, 8192]))
def test_headers_near_the_frame_limit_go_exactly_when_they_fit(pad, char, count, in_extra3, frame_max):
    """Headers of every size around a small frame_max (padding and integers, in ev_extra4 or ev_extra3)."""
    table = {"p": char * pad, "n": list(range(count))}
    extras = (json.dumps({"headers": table}), None) if in_extra3 else (None, json.dumps(table))
    event = make_event("rk", "body", "ex", None, *extras)
    exact = content_header_size(map_event(event).properties)
    room = frame_max - HEADER_FRAME_OVERHEAD
    try:
        message = map_event(event, MessageLimits(frame_max=frame_max))
    except PoisonEvent as exc:
        assert exact > room
        told = f"over {2 * room}" if exact > 2 * room else str(exact)
        assert str(exc).startswith(f"the properties and headers take {told} bytes encoded, more than the {room}")
    else:
        assert exact <= room
        assert_publishable(message, MessageLimits(frame_max=frame_max))


#: One thing py-amqp or RabbitMQ cannot take, as JSON text of a value.
DEFECTS = st.sampled_from([
    '"\\ud800"', '"x\\udc00"', '"\\ude00\\ud83d"', '"\\uDBFF"',  # lone surrogates, escaped
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400",  # numbers that are not finite
    "9223372036854775808", "-9223372036854775809", "1" + "0" * 30, "9" * 5000,  # integers beyond 64 bits
    '{"' + "k" * 256 + '": 1}', '{"' + "é" * 128 + '": 1}', '{"\\udfff": 1}',  # keys that are no short string
    "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "[" * 5000 + "]" * 5000,  # too deep wherever it is
    '{"a": ' * 3000 + "1" + "}" * 3000, "[" * 100_000,
])
MARK = "\x01defect\x01"


def put(table: dict, path: list[int], value: object) -> None:
    """``value`` into ``table``: down the containers ``path`` picks (as far as there are any), then added there."""
    node: dict | list = table
    for step in path:
        children = [child for child in (node.values() if isinstance(node, dict) else node)
                    if isinstance(child, (dict, list))]
        if not children:
            break
        node = children[step % len(children)]
    if isinstance(node, dict):
        node["defect"] = value
    else:
        node.insert(len(path) % (len(node) + 1), value)


@PROPERTY_TESTS
@given(VALID_TABLES, st.lists(st.integers(0, 10), max_size=6), DEFECTS, st.booleans(), st.booleans())
def test_one_defect_anywhere_in_valid_headers_is_refused(table, path, defect, ensure_ascii, in_extra3):
    """The same headers that map exactly (test above) are refused once one value, at any depth, cannot be sent."""
    put(table, path, MARK)
    text = json.dumps({"headers": table} if in_extra3 else table, ensure_ascii=ensure_ascii)
    text = text.replace(json.dumps(MARK, ensure_ascii=ensure_ascii), defect)
    event = make_event("rk", "body", "ex", None, *((text, None) if in_extra3 else (None, text)))
    try:
        message = map_event(event)
    except PoisonEvent as exc:
        assert_storable_reason(str(exc))
    else:
        raise AssertionError(f"published {message.properties['headers']!r}"[:300])


SHORT_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
VALID_PROPERTIES = st.fixed_dictionaries({}, optional={
    **{name: SHORT_TEXT for name in ("app_id", "content_encoding", "content_type", "correlation_id",
                                     "message_id", "type")},
    "delivery_mode": st.sampled_from([1, 2]),
    "expiration": st.integers(0, EXPIRATION_MAX_MS + 1000).map(str) | st.sampled_from(
        [str(EXPIRATION_MAX_MS), str(EXPIRATION_MAX_MS + 1), "0" * 20 + "1"]),
    "priority": st.integers(0, 255),
    "timestamp": st.integers(0, INT64[1]),
    "user_id": st.sampled_from(["guest", "admin"]),
    "headers": VALID_TABLES | st.builds(lambda n: {"pad": "x" * n}, st.integers(3800, 4100)),
})
CONNECTION_LIMITS = st.builds(MessageLimits, frame_max=st.sampled_from([None, 4096, 131072]),
                              user_id=st.sampled_from([None, "guest"]),
                              max_message_size=st.none() | st.integers(0, 10))


@PROPERTY_TESTS
@given(VALID_PROPERTIES, CONNECTION_LIMITS, SHORT_TEXT)
def test_valid_properties_are_refused_exactly_when_rabbitmq_would_refuse_them(given_properties, limits, body):
    event = make_event("rk", body, "ex", None, json.dumps(given_properties), None)
    headers = given_properties.get("headers", {})
    refused_by_any_broker = (int(given_properties.get("expiration", 0)) > EXPIRATION_MAX_MS
                             or any(type(headers.get(key, [])) is not list for key in ("CC", "BCC")))
    try:
        unlimited = map_event(event)
    except PoisonEvent as exc:
        assert refused_by_any_broker, str(exc)
        return
    assert not refused_by_any_broker
    refused_by_connection = (
        (limits.user_id is not None and given_properties.get("user_id", limits.user_id) != limits.user_id)
        or (limits.max_message_size is not None and len(body.encode()) > limits.max_message_size)
        or (bool(limits.frame_max)
            and content_header_size(unlimited.properties) + HEADER_FRAME_OVERHEAD > limits.frame_max)
    )
    try:
        message = map_event(event, limits)
    except PoisonEvent as exc:
        assert refused_by_connection, str(exc)
    else:
        assert not refused_by_connection
        assert message == unlimited
        assert_publishable(message, limits, event)
        assert {name: message.properties[name] for name in given_properties if name != "headers"} == {
            name: value for name, value in given_properties.items() if name != "headers"}


def _encodable(text: str | None, limit: int | None = None) -> bool:
    try:
        size = len((text or "").encode())
    except UnicodeEncodeError:
        return False
    return limit is None or size <= limit


@PROPERTY_TESTS
@given(COLUMN, COLUMN, COLUMN, COLUMN)
def test_any_text_in_the_columns_maps_exactly_when_utf8_and_amqp_take_it(routing_key, body, exchange, content_type):
    event = make_event(routing_key, body, exchange, content_type, None, None)
    fits = (_encodable(routing_key, SHORTSTR_MAX) and _encodable(exchange, SHORTSTR_MAX)
            and _encodable(content_type, SHORTSTR_MAX) and _encodable(body))
    try:
        message = map_event(event, MessageLimits(frame_max=131072, user_id="guest"))
    except PoisonEvent as exc:
        assert not fits
        assert_storable_reason(str(exc))
    else:
        assert fits
        assert (message.routing_key, message.exchange, message.body) == (
            routing_key or "", exchange or "", (body or "").encode())
        assert message.properties.get("content_type") == (content_type or None)
        assert_publishable(message, None, event)
