"""``ev_extra3`` and ``ev_extra4``: JSON text to checked AMQP properties and header tables; raises :class:`PoisonEvent`.

Nesting is measured on the text before it is parsed and tables are walked
with explicit stacks: nothing here recurses, whatever a producer wrote. A
reason names where in a table the fault is and shows values escaped
(:func:`_show`), for it is stored in PostgreSQL and logged. Names with an
underscore are shared within :mod:`relay.amqp` only.
"""
from __future__ import annotations

import json
import re
import sys
from functools import partial
from itertools import accumulate
from typing import Any, cast

from .message import EXPIRATION_MAX_MS, INT64, MAX_DEPTH, SHORTSTR_MAX, PoisonEvent
from .sizing import _too_long, _utf8_size

_FLOAT_MAX = sys.float_info.max
#: Strings in JSON text, escapes included; an unterminated one runs to the end.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
#: A \u escape of a surrogate (paired or not): only then can parsed JSON strings hold one.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


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


# --- properties --------------------------------------------------------------------------------

def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise PoisonEvent(f"ev_extra3 property {name!r} must be a string, not {type(value).__name__}")
    return value


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
