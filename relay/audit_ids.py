"""Which audit record an event belongs to: the UUID message_id a producer put in ev_extra3. Pure, no I/O."""
from __future__ import annotations

import json
import re
import uuid

from .events import Event
from .mapping import Message

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
    try:
        given = json.loads(event.extra3)
    except ValueError:
        return None
    return as_uuid(given.get("message_id")) if isinstance(given, dict) else None
