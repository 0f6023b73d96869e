"""Hostile events: every way a producer can write an event that py-amqp or RabbitMQ would refuse.

Table-driven, no services: each poison event with the exact reason it is
dead-lettered with, and the events just inside each limit, which must map.
What RabbitMQ itself does with the accepted ones is tested in
``test_mapping_rabbitmq.py``.
"""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from relay.amqp.mapping import event_to_message
from relay.amqp.message import (
    EXPIRATION_MAX_MS,
    FRAME_MIN_SIZE,
    HEADER_FRAME_OVERHEAD,
    MAX_DEPTH,
    SHORTSTR_MAX,
    Message,
    MessageLimits,
    PoisonEvent,
)
from relay.amqp.properties import _check_table, _deeper_than, parse_headers, parse_properties
from relay.amqp.sizing import OWN_FIELDS_BOUND, content_header_size
from relay.core.events import Event
from relay.core.identity import RelayIdentity

from .mapping_values import CORRELATION_ID, IDENTITY

pytestmark = pytest.mark.pure  # no service, no process: the fast tier (pytest -m "not slow")

FRAME_MAX = 131072
ROOM = FRAME_MAX - HEADER_FRAME_OVERHEAD
LIMITS = MessageLimits(frame_max=FRAME_MAX, user_id="guest")


def make_event(**fields) -> Event:
    defaults = {"id": 1001, "time": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "txid": 987654, "retry": None,
                "type": "test.routing-key", "data": "payload"}
    return Event(**{**defaults, **fields})


def to_message(limits: MessageLimits | None = LIMITS, **fields) -> Message:
    return event_to_message(make_event(**fields), queue="test", identity=IDENTITY, persistent=True,
                            correlation_id=CORRELATION_ID, sequence=42, limits=limits)


def nested_objects(levels: int, leaf: str = "1") -> str:
    """A JSON object ``levels`` deep: ``{"a": {"a": ... 1}}``."""
    return '{"a": ' * levels + leaf + "}" * levels


def nested_arrays(levels: int) -> str:
    """A header table whose value is arrays nested so that the whole is ``levels`` deep."""
    return '{"a": ' + "[" * (levels - 1) + "1" + "]" * (levels - 1) + "}"


def header_of_size(size: int, column: str = "extra4", prefix: str = "", suffix: str = "") -> dict[str, str]:
    """Event fields whose mapped message has properties of exactly ``size`` bytes, padding a header."""
    def fields(pad: int) -> dict[str, str]:
        return {column: prefix + json.dumps({"pad": "x" * pad}) + suffix}

    base = content_header_size(to_message(limits=None, **fields(0)).properties)
    return fields(size - base)


# --- poison: the exact reason -------------------------------------------------------------------

DEEP = f"nested deeper than {MAX_DEPTH} levels"
DEEP_EXTRA3 = f"ev_extra3 is nested deeper than {MAX_DEPTH + 1} levels (its headers may nest {MAX_DEPTH} levels deep)"
NON_FINITE = "which AMQP cannot carry: numbers must be finite"
NOT_UTF8 = "which UTF-8 cannot encode"

POISON = [
    # nesting: refused before it is parsed, whatever the shape
    pytest.param({"extra4": nested_objects(MAX_DEPTH + 1)}, f"ev_extra4 is {DEEP}", id="ev_extra4-objects-101-deep"),
    pytest.param({"extra4": nested_objects(600)}, f"ev_extra4 is {DEEP}", id="ev_extra4-objects-600-deep"),
    pytest.param({"extra4": nested_arrays(MAX_DEPTH + 1)}, f"ev_extra4 is {DEEP}", id="ev_extra4-arrays-101-deep"),
    pytest.param({"extra4": '{"a": ' + "[" * 100_000}, f"ev_extra4 is {DEEP}", id="ev_extra4-100k-unclosed-arrays"),
    pytest.param({"extra4": "{" * 100_000}, f"ev_extra4 is {DEEP}", id="ev_extra4-100k-unclosed-objects"),
    pytest.param({"extra4": '{"a": [{"b": ' * 51 + "1" + "}]" * 51 + "}"}, f"ev_extra4 is {DEEP}",
                 id="ev_extra4-objects-and-arrays-103-deep"),
    pytest.param({"extra3": '{"headers": ' + nested_objects(MAX_DEPTH + 1) + "}"}, DEEP_EXTRA3,
                 id="ev_extra3-headers-objects-101-deep"),
    pytest.param({"extra3": '{"headers": ' + nested_arrays(MAX_DEPTH + 1) + "}"}, DEEP_EXTRA3,
                 id="ev_extra3-headers-arrays-101-deep"),
    pytest.param({"extra3": '{"headers": ' + nested_objects(600) + "}"}, DEEP_EXTRA3,
                 id="ev_extra3-headers-600-deep"),
    pytest.param({"extra3": '{"type": ' + "[" * 5000 + "]" * 5000 + "}"}, DEEP_EXTRA3,
                 id="ev_extra3-property-5000-deep"),
    # numbers AMQP cannot carry
    pytest.param({"extra4": '{"f": NaN}'}, f"ev_extra4 has the number NaN, {NON_FINITE}", id="ev_extra4-NaN"),
    pytest.param({"extra4": '{"f": Infinity}'}, f"ev_extra4 has the number Infinity, {NON_FINITE}",
                 id="ev_extra4-Infinity"),
    pytest.param({"extra4": '{"l": [1, {"f": -Infinity}]}'}, f"ev_extra4 has the number -Infinity, {NON_FINITE}",
                 id="ev_extra4-minus-Infinity-nested"),
    pytest.param({"extra4": '{"f": 1e400}'},
                 f'ev_extra4 has a number too large for a 64-bit float at ["f"] (it reads as inf), {NON_FINITE}',
                 id="ev_extra4-1e400"),
    pytest.param({"extra4": '{"o": {"l": [0, -1e400]}}'},
                 f'ev_extra4 has a number too large for a 64-bit float at ["o"]["l"][1] (it reads as -inf), '
                 f"{NON_FINITE}", id="ev_extra4-minus-1e400-nested"),
    pytest.param({"extra3": '{"headers": {"f": NaN}}'}, f"ev_extra3 has the number NaN, {NON_FINITE}",
                 id="ev_extra3-headers-NaN"),
    pytest.param({"extra3": '{"headers": {"f": 1e400}}'},
                 f'ev_extra3 headers has a number too large for a 64-bit float at ["f"] (it reads as inf), '
                 f"{NON_FINITE}", id="ev_extra3-headers-1e400"),
    pytest.param({"extra3": '{"priority": NaN}'}, f"ev_extra3 has the number NaN, {NON_FINITE}",
                 id="ev_extra3-priority-NaN"),
    pytest.param({"extra4": '{"n": 9223372036854775808}'},
                 'ev_extra4 has an integer outside the 64-bit range AMQP can carry at ["n"]: 9223372036854775808',
                 id="ev_extra4-int-2**63"),
    pytest.param({"extra4": '{"o": {"l": [-9223372036854775809]}}'},
                 'ev_extra4 has an integer outside the 64-bit range AMQP can carry at ["o"]["l"][0]: '
                 "-9223372036854775809", id="ev_extra4-int-below-int64-nested"),
    pytest.param({"extra4": '{"n": ' + "9" * 5000 + "}"},
                 "ev_extra4 has an integer outside the 64-bit range AMQP can carry (one of more than 4300 digits)",
                 id="ev_extra4-int-5000-digits"),
    pytest.param({"extra4": '{"n": ' + "9" * 100 + "}"},
                 'ev_extra4 has an integer outside the 64-bit range AMQP can carry at ["n"]: ' + "9" * 60 + "…",
                 id="ev_extra4-int-100-digits-shown-cut"),
    # keys that are no AMQP short string
    pytest.param({"extra4": json.dumps({"o": {"k" * 256: 1}})},
                 f'ev_extra4 has a key longer than 255 bytes at ["o"]: "{"k" * 60}… (256 bytes of UTF-8)',
                 id="ev_extra4-nested-key-256-bytes"),
    pytest.param({"extra4": json.dumps({"é" * 128: 1}, ensure_ascii=False)},
                 f'ev_extra4 has a key longer than 255 bytes: "{"é" * 60}… (256 bytes of UTF-8)',
                 id="ev_extra4-key-128-chars-256-utf8-bytes"),
    pytest.param({"extra3": json.dumps({"headers": {"k" * 300: 1}})},
                 f'ev_extra3 headers has a key longer than 255 bytes: "{"k" * 60}… (300 bytes of UTF-8)',
                 id="ev_extra3-headers-key-300-bytes"),
    # lone surrogates, wherever they would be encoded
    pytest.param({"type": "order\ud800"}, f"ev_type (routing key) has a lone surrogate (U+D800 at character 5), "
                 f"{NOT_UTF8}", id="surrogate-ev_type"),
    pytest.param({"extra1": "\udfffex"}, f"ev_extra1 (exchange) has a lone surrogate (U+DFFF at character 0), "
                 f"{NOT_UTF8}", id="surrogate-ev_extra1"),
    pytest.param({"extra2": "text/\udc80"}, f"ev_extra2 (content type) has a lone surrogate (U+DC80 at character 5), "
                 f"{NOT_UTF8}", id="surrogate-ev_extra2"),
    pytest.param({"data": "x" * 1000 + "\ud83d"}, f"ev_data (body) has a lone surrogate (U+D83D at character 1000), "
                 f"{NOT_UTF8}", id="surrogate-ev_data"),
    pytest.param({"data": "\ud83d\ude00"}, f"ev_data (body) has a lone surrogate (U+D83D at character 0), "
                 f"{NOT_UTF8}", id="surrogate-pair-as-two-code-points-ev_data"),
    pytest.param({"extra3": '{"type": "\\ud800"}'},
                 f"ev_extra3 property 'type' has a lone surrogate (U+D800 at character 0), {NOT_UTF8}",
                 id="surrogate-escaped-ev_extra3-type"),
    pytest.param({"extra3": '{"message_id": "m-\\uDC00"}'},
                 f"ev_extra3 property 'message_id' has a lone surrogate (U+DC00 at character 2), {NOT_UTF8}",
                 id="surrogate-escaped-uppercase-ev_extra3-message_id"),
    pytest.param({"extra3": '{"app_id": "\\ude00\\ud83d"}'},
                 f"ev_extra3 property 'app_id' has a lone surrogate (U+DE00 at character 0), {NOT_UTF8}",
                 id="surrogate-pair-reversed-ev_extra3-app_id"),
    pytest.param({"extra3": '{"user_id": "g\ud800"}'},
                 f"ev_extra3 has a lone surrogate (U+D800 at character 14), {NOT_UTF8}",
                 id="surrogate-raw-in-ev_extra3-text"),
    pytest.param({"extra3": '{"\\ud800": 1}'}, 'ev_extra3 has unknown AMQP properties: "\\ud800"',
                 id="surrogate-ev_extra3-property-name"),
    pytest.param({"extra3": '{"headers": {"k": "v\\udbff"}}'},
                 f'ev_extra3 headers has a string with a lone surrogate (U+DBFF at character 1) at ["k"], {NOT_UTF8}',
                 id="surrogate-ev_extra3-header-value"),
    pytest.param({"extra3": '{"headers": {"k\\udbff": 1}}'},
                 f'ev_extra3 headers has a key with a lone surrogate (U+DBFF at character 1), {NOT_UTF8}: '
                 '"k\\udbff"', id="surrogate-ev_extra3-header-key"),
    pytest.param({"extra4": '{"o": {"\\ud800": 1}}'},
                 f'ev_extra4 has a key with a lone surrogate (U+D800 at character 0) at ["o"], {NOT_UTF8}: "\\ud800"',
                 id="surrogate-ev_extra4-nested-key"),
    pytest.param({"extra4": '{"l": ["ok", "\\udfff"]}'},
                 f'ev_extra4 has a string with a lone surrogate (U+DFFF at character 0) at ["l"][1], {NOT_UTF8}',
                 id="surrogate-ev_extra4-value-in-array"),
    pytest.param({"extra4": '{"k": "\ud800"}'}, f"ev_extra4 has a lone surrogate (U+D800 at character 7), {NOT_UTF8}",
                 id="surrogate-raw-in-ev_extra4-text"),
    # properties RabbitMQ refuses
    pytest.param({"extra3": json.dumps({"expiration": str(EXPIRATION_MAX_MS + 1)})},
                 "ev_extra3 property 'expiration' must be at most 315360000000 milliseconds (ten years, RabbitMQ's "
                 'maximum), not "315360000001"', id="expiration-above-rabbitmq-maximum"),
    pytest.param({"extra3": json.dumps({"expiration": "0" * 300 + "1"})},
                 "ev_extra3 property 'expiration' must be at most 315360000000 milliseconds (ten years, RabbitMQ's "
                 f'maximum), not "{"0" * 60}…', id="expiration-longer-than-a-short-string"),
    pytest.param({"extra3": json.dumps({"expiration": "9" * 5000})},
                 "ev_extra3 property 'expiration' must be at most 315360000000 milliseconds (ten years, RabbitMQ's "
                 f'maximum), not "{"9" * 60}…', id="expiration-5000-digits"),
    pytest.param({"extra4": '{"CC": "orders.eu"}'},
                 "ev_extra4 header 'CC' must be an array of routing keys, not str: RabbitMQ refuses any other type",
                 id="CC-string"),
    pytest.param({"extra4": '{"BCC": 5}'},
                 "ev_extra4 header 'BCC' must be an array of routing keys, not int: RabbitMQ refuses any other type",
                 id="BCC-number"),
    pytest.param({"extra4": '{"CC": null}'},
                 "ev_extra4 header 'CC' must be an array of routing keys, not NoneType: RabbitMQ refuses any other "
                 "type", id="CC-null"),
    pytest.param({"extra3": '{"headers": {"BCC": {"a": "b"}}}'},
                 "ev_extra3 headers header 'BCC' must be an array of routing keys, not dict: RabbitMQ refuses any "
                 "other type", id="ev_extra3-BCC-object"),
    # what the connection accepts
    pytest.param({"extra3": '{"user_id": "admin"}'},
                 "ev_extra3 property 'user_id' is \"admin\" but the connection logs in as \"guest\": RabbitMQ refuses "
                 "a user_id other than the login user", id="user_id-not-the-login-user"),
    pytest.param({"extra3": '{"user_id": "Guest"}'},
                 "ev_extra3 property 'user_id' is \"Guest\" but the connection logs in as \"guest\": RabbitMQ refuses "
                 "a user_id other than the login user", id="user_id-other-case"),
    pytest.param(header_of_size(ROOM + 1),
                 f"the properties and headers take {ROOM + 1} bytes encoded, more than the {ROOM} bytes a "
                 "content-header frame holds with the connection's frame_max of 131072",
                 id="ev_extra4-header-one-byte-too-big"),
    pytest.param(header_of_size(ROOM + 1, "extra3", '{"headers": ', "}"),
                 f"the properties and headers take {ROOM + 1} bytes encoded, more than the {ROOM} bytes a "
                 "content-header frame holds with the connection's frame_max of 131072",
                 id="ev_extra3-headers-one-byte-too-big"),
    pytest.param({"extra4": json.dumps({"big": "é" * 200_000}, ensure_ascii=False)},
                 "the properties and headers take over 262104 bytes encoded, more than the 131052 bytes a "
                 "content-header frame holds with the connection's frame_max of 131072", id="ev_extra4-header-400k"),
    pytest.param({"extra4": json.dumps({"big": "x" * (2 * ROOM - 300)})},
                 "the properties and headers take 262016 bytes encoded, more than the 131052 bytes a content-header "
                 "frame holds with the connection's frame_max of 131072", id="ev_extra4-header-under-twice-the-room"),
    pytest.param({"extra4": json.dumps({"n": list(range(30_000))})},
                 "the properties and headers take 150210 bytes encoded, more than the 131052 bytes a content-header "
                 "frame holds with the connection's frame_max of 131072", id="ev_extra4-30k-small-integers"),
]


@pytest.mark.parametrize(("fields", "reason"), POISON)
def test_poison_event_and_its_reason(fields, reason):
    with pytest.raises(PoisonEvent) as caught:
        to_message(**fields)
    assert str(caught.value) == reason


def test_body_larger_than_max_message_size():
    limits = MessageLimits(max_message_size=5 * 2**20)
    assert to_message(limits, data="x" * (5 * 2**20)).body == b"x" * (5 * 2**20)
    with pytest.raises(PoisonEvent) as caught:
        to_message(limits, data="x" * (5 * 2**20 + 1))
    assert str(caught.value) == ("ev_data (body) is 5242881 bytes, more than RabbitMQ's max_message_size of "
                                 "5242880 bytes")


def test_a_frame_max_of_4096_is_checked_as_well():
    limits = MessageLimits(frame_max=4096)
    fields = header_of_size(4096 - HEADER_FRAME_OVERHEAD)
    assert content_header_size(to_message(limits, **fields).properties) == 4076
    with pytest.raises(PoisonEvent, match="take 4077 bytes encoded, more than the 4076 bytes"):
        to_message(limits, **header_of_size(4077))


@pytest.mark.parametrize("text", [
    pytest.param('{"k": "a\\u0000b"}', id="escaped-NUL"),
    pytest.param('{"\\u0000": 1}', id="NUL-key"),
    pytest.param('{"k": "\\ud800", "l": 1e400}', id="surrogate"),
])
def test_a_reason_never_carries_nul_or_a_surrogate_to_the_dead_letter_table(text):
    unknown = '{"x\\u0000\\ud800": 1}'
    for fields in ({"extra4": text}, {"extra3": unknown}, {"extra4": '{"' + "\\u0000" * 300 + '": 1}'}):
        try:
            to_message(**fields)
        except PoisonEvent as exc:
            reason = str(exc)
            assert "\x00" not in reason
            reason.encode()  # PostgreSQL text is UTF-8: no lone surrogate
            assert len(reason) < 400


def test_unknown_property_names_are_listed_at_most_ten():
    names = {f"p{i:02}": 1 for i in range(25)}
    with pytest.raises(PoisonEvent) as caught:
        to_message(extra3=json.dumps(names))
    assert str(caught.value) == ("ev_extra3 has unknown AMQP properties: p00, p01, p02, p03, p04, p05, p06, p07, p08, "
                                 "p09 and 15 more")


# --- just valid: these map, exactly as written ---------------------------------------------------

ACCEPTED = [
    pytest.param({"extra4": nested_objects(MAX_DEPTH)}, id="ev_extra4-objects-100-deep"),
    pytest.param({"extra4": nested_arrays(MAX_DEPTH)}, id="ev_extra4-arrays-100-deep"),
    pytest.param({"extra3": '{"headers": ' + nested_objects(MAX_DEPTH) + "}"}, id="ev_extra3-headers-100-deep"),
    pytest.param({"extra3": '{"headers": ' + nested_arrays(MAX_DEPTH) + "}"}, id="ev_extra3-headers-arrays-100-deep"),
    pytest.param({"extra4": json.dumps({"s": "[{" * 5000, "t": '\\"[' * 500})}, id="brackets-in-strings-do-not-nest"),
    pytest.param({"extra4": json.dumps({"l": [[]] * 5000})}, id="wide-not-deep"),
    pytest.param({"extra4": '{"big": 1.7976931348623157e308, "tiny": 5e-324, "neg": -0.0, "e": 1E5}'},
                 id="finite-float-extremes"),
    pytest.param({"extra4": '{"min": -9223372036854775808, "max": 9223372036854775807, "i32": -2147483648}'},
                 id="int64-extremes"),
    pytest.param({"extra4": '{"emoji": "\\ud83d\\ude00", "\\ud83c\\udf89": "escaped pairs"}'},
                 id="escaped-surrogate-pairs-are-characters"),
    pytest.param({"extra4": '{"k\\u0000": "v\\u0000", "l": ["\\u0000"]}'}, id="NUL-in-header-key-and-values"),
    pytest.param({"type": "a\x00b", "extra1": "ex\x00", "extra2": "text/\x00", "data": "\x00"}, id="NUL-in-columns"),
    pytest.param({"extra3": '{"type": "t\\u0000", "app_id": "\\u0000", "message_id": "m\\u0000"}'},
                 id="NUL-in-properties"),
    pytest.param({"type": "🎉.créé", "extra1": "ex-😀", "extra2": "text/😀", "data": "😀" * 1000,
                  "extra3": '{"type": "😀", "headers": {"😀": "🎉"}}'}, id="emoji-everywhere"),
    pytest.param({"extra4": json.dumps({"k" * 255: 1, "é" * 127 + "x": 2}, ensure_ascii=False)},
                 id="keys-of-255-bytes"),
    pytest.param({"extra3": json.dumps({"expiration": str(EXPIRATION_MAX_MS)})}, id="expiration-maximum"),
    pytest.param({"extra3": '{"user_id": "guest"}'}, id="user_id-is-the-login-user"),
    pytest.param({"extra4": '{"CC": ["orders.eu", 1, null], "BCC": []}'}, id="CC-and-BCC-arrays"),
    pytest.param(header_of_size(ROOM), id="ev_extra4-header-exactly-fills-the-frame"),
    pytest.param(header_of_size(ROOM, "extra3", '{"headers": ', "}"), id="ev_extra3-headers-exactly-fill-the-frame"),
    pytest.param({"data": "é" * (5 * 2**20 // 2)}, id="body-5MB"),
]


@pytest.mark.parametrize("fields", ACCEPTED)
def test_just_valid_event_maps(fields):
    message = to_message(**fields)
    if fields.get("data"):
        assert message.body == fields["data"].encode()
    if fields.get("extra4"):
        headers = parse_headers(fields["extra4"])
        assert {key: message.properties["headers"][key] for key in headers} == headers
    assert content_header_size(message.properties) <= ROOM


def test_an_event_without_json_fits_in_the_smallest_frame_unchecked():
    """event_to_message skips the size check for them: the relay's own fields, at their largest, fit."""
    assert OWN_FIELDS_BOUND + 4 * 3 * SHORTSTR_MAX <= FRAME_MIN_SIZE - HEADER_FRAME_OVERHEAD
    longest = RelayIdentity(app_id="a" * 255, origin="o" * 255)
    message = event_to_message(make_event(extra2="é" * 127), queue="q", identity=longest, persistent=True,
                               correlation_id="c" * 255, sequence=2**62, limits=MessageLimits(frame_max=4096))
    assert content_header_size(message.properties) + HEADER_FRAME_OVERHEAD <= 4096


def test_header_exactly_at_the_limit_is_measured_exactly():
    message = to_message(**header_of_size(ROOM))
    assert content_header_size(message.properties) == ROOM


def test_without_limits_there_is_no_connection_check():
    """Existing callers pass no limits: a big header or another user_id is theirs to send."""
    message = to_message(None, extra3='{"user_id": "admin"}', **header_of_size(ROOM + 1))
    assert message.properties["user_id"] == "admin"
    assert to_message(MessageLimits(frame_max=0), **header_of_size(ROOM + 1))


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"frame_max": 4095}, "frame_max must be 0 (no limit) or at least 4096, not 4095"),
    ({"max_message_size": -1}, "max_message_size must not be negative, not -1"),
])
def test_message_limits_refuse_nonsense(kwargs, error):
    with pytest.raises(ValueError, match=re.escape(error)):
        MessageLimits(**kwargs)


# --- the parts ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "limit", "deeper"), [
    ("[]", 0, True),
    ("[]", 1, False),
    ("[[1], [2], {}]", 1, True),
    ("[[1], [2], {}]", 2, False),
    ('["[[[[[[", "{{{{{{"]', 1, False),
    ('["\\"[[[[", "\\\\", [[]]]', 2, True),
    ('["\\"[[[[", "\\\\", [[]]]', 3, False),
    ('["unterminated [[[[[[[[', 1, False),
    ("]]]]]][[", 2, False),
    ("[" * 1000, 999, True),
])
def test_nesting_is_measured_on_the_text(text, limit, deeper):
    assert _deeper_than(text, limit) is deeper


def test_the_table_check_refuses_a_deep_structure_without_recursion():
    """Parsed tables are never recursed into: a structure deeper than the interpreter's stack is refused."""
    table: dict = {}
    inner = table
    for _ in range(100_000):
        inner["a"] = {}
        inner = inner["a"]
    with pytest.raises(PoisonEvent, match=f"ev_extra4 is nested deeper than {MAX_DEPTH} levels at "):
        _check_table("ev_extra4", table)


def test_parse_functions_keep_their_contract():
    assert parse_properties('{"priority": 1, "headers": {"a": [1]}}') == {"priority": 1, "headers": {"a": [1]}}
    assert parse_headers('{"a": {"b": null}}') == {"a": {"b": None}}
    with pytest.raises(PoisonEvent, match="ev_extra4 has the number NaN"):
        parse_headers('{"a": NaN}')
