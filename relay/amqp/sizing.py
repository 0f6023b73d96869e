"""Bytes of encoded AMQP properties and headers: counted exactly, or bounded from lengths of text alone.

The mapping checks that an event's properties fit in one content-header frame
of the connection's ``frame_max``: bounds first (:func:`_header_size_bound`,
:func:`_header_size_bound_bytes`), the exact count (:func:`content_header_size`)
only when they cannot rule a large header out. Names with an underscore are
shared within :mod:`relay.amqp` only.
"""
from __future__ import annotations

import sys
from typing import Any

from ..core.events import Event
from ..core.identity import RelayIdentity
from .message import HEADER_FRAME_OVERHEAD, SHORTSTR_MAX, PoisonEvent

#: More than the encoded size of all properties and automatic headers but the
#: strings counted one by one (see :func:`_header_size_bound`): flags, lengths,
#: numbers, the relay's message id, the ISO-8601 time, ev_extra2 (255 bytes at most).
OWN_FIELDS_BOUND = 512


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _too_long(text: str) -> bool:
    """Longer than an AMQP short string (255 bytes of UTF-8)."""
    # A character is at most 4 bytes in UTF-8: short text needs no encoding to be measured.
    return len(text) * 4 > SHORTSTR_MAX and _utf8_size(text) > SHORTSTR_MAX


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
