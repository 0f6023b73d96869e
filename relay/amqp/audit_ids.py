"""Which audit record an event belongs to: the UUID message_id a producer put in ev_extra3. Pure, no I/O."""
from __future__ import annotations

import json
import re
import uuid

from ..core.events import Event
from .message import Message
from .properties import json_object_or_none

CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def as_uuid(value: object) -> str | None:
    """``value`` as a canonical UUID string, or None when it is not a UUID.

    A producer may set any text as ``message_id``; one that PostgreSQL could not
    cast to ``uuid`` would fail the whole statement, and with it the batch.

    >>> as_uuid("{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}"), as_uuid("order-42")
    ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', None)
    """
    if not isinstance(value, str):
        return None
    if CANONICAL_UUID.fullmatch(value):
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def producer_message_id(event: Event, message: Message | None = None) -> str | None:
    """The UUID ``message_id`` the producer put in ``ev_extra3``, or None.

    Only such ids can have an audit record (``mikkoo.insert_audited_event``
    sets one); the relay's own derived ids never do. ``message`` is the event's
    mapped message when there is one, to save parsing ``ev_extra3`` again.
    """
    if not event.extra3 or "message_id" not in event.extra3:
        return None
    if message is not None:
        return as_uuid(message.properties.get("message_id"))
    # A refused event may be hostile in any way: read through the mapping's bounded parser, or token by
    # token when even that refuses it (nested too deep, say), so that its audit record is still marked.
    given = json_object_or_none(event.extra3)
    if given is not None:
        return as_uuid(given.get("message_id"))
    return as_uuid(top_level_string(event.extra3, "message_id"))


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:,]')


def top_level_string(text: str, key: str) -> str | None:
    """The string under ``key`` at the top level of the JSON object ``text``, read without parsing the rest.

    Token by token, with no recursion: ``text`` may nest thousands of levels
    deep, or not be JSON at all, and then the answer is None or what a JSON
    parser would have said.

    >>> top_level_string('{"headers": {"message_id": "inner"}, "message_id": "outer", "x": [[[', "message_id")
    'outer'
    """
    depth, name, after_colon = 0, None, False
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in "{[":
            depth, name, after_colon = depth + 1, None, False
        elif token in "}]":
            depth, name, after_colon = depth - 1, None, False
        elif token == ":":
            after_colon = name is not None
        elif token == ",":
            name, after_colon = None, False
        elif depth == 1:
            try:
                value: str = json.loads(token)  # a quoted string: _TOKEN matches no other value
            except ValueError:
                return None
            if after_colon and name == key:
                return value
            name, after_colon = (None, False) if after_colon else (value, False)
    return None
