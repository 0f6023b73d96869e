"""PgQ event -> AMQP message (SPEC §2): a pure function, no I/O.

``ev_type`` is the routing key, ``ev_data`` the body, ``ev_extra1`` the exchange,
``ev_extra2`` the content type, ``ev_extra3`` a JSON object of AMQP properties
and ``ev_extra4`` a JSON object of headers. The relay adds ``app_id``,
``correlation_id``, ``timestamp``, ``message_id`` and ``delivery_mode`` and the
headers ``origin``, ``sequence``, ``timestamp`` and ``txid``. A property given in
``ev_extra3`` wins over the relay's own; a header given by the producer is never
overwritten by an automatic one.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from .events import Event
from .identity import UUID_VARIANT, RelayIdentity

MESSAGE_ID_NAMESPACE = uuid.UUID("6f1c5d0e-4a44-4f57-9b0e-7d1b6c3a9e21")
SHORTSTR_MAX = 255
INT64 = (-(2**63), 2**63 - 1)


class PoisonEvent(ValueError):
    """An event that can never be published as it is; the message says why."""


class Message(NamedTuple):
    """An AMQP message ready to publish; ``properties`` use AMQP names, ``headers`` included.

    A named tuple, like :class:`~relay.events.Event`: one is made per event.
    """

    exchange: str
    routing_key: str
    body: bytes
    properties: dict[str, Any]


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise PoisonEvent(f"ev_extra3 property {name!r} must be a string, not {type(value).__name__}")
    return value


def _too_long(text: str) -> bool:
    """Longer than an AMQP short string (255 bytes of UTF-8)."""
    # A character is at most 4 bytes in UTF-8: short text needs no encoding to be measured.
    return len(text) * 4 > SHORTSTR_MAX and len(text.encode()) > SHORTSTR_MAX


def _shortstr(name: str, value: Any) -> str:
    value = _text(name, value)
    if _too_long(value):
        raise PoisonEvent(f"ev_extra3 property {name!r} is longer than {SHORTSTR_MAX} bytes")
    return value


def _integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PoisonEvent(f"ev_extra3 property {name!r} must be an integer from {low} to {high}")
    return value


def _delivery_mode(name: str, value: Any) -> int:
    if isinstance(value, bool) or value not in (1, 2):
        raise PoisonEvent(f"ev_extra3 property {name!r} must be 1 (transient) or 2 (persistent)")
    return value


def _expiration(name: str, value: Any) -> str:
    # RabbitMQ closes the channel on an expiration that is not a count of
    # milliseconds, which would fail every message in flight with it.
    value = _text(name, value)
    if not value.isascii() or not value.isdigit():
        raise PoisonEvent(f"ev_extra3 property {name!r} must be milliseconds as text, e.g. \"60000\"")
    return value


def _headers(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PoisonEvent(f"{name} must be a JSON object, not {type(value).__name__}")
    _check_table(name, value)
    return value


def _check_table(name: str, table: dict[str, Any]) -> None:
    for key, item in table.items():
        if _too_long(key):
            raise PoisonEvent(f"{name} has a key longer than {SHORTSTR_MAX} bytes")
        _check_field_value(name, item)


def _check_field_value(name: str, value: Any) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return
    if isinstance(value, int):
        if not INT64[0] <= value <= INT64[1]:
            raise PoisonEvent(f"{name} has an integer outside the 64-bit range AMQP can carry")
    elif isinstance(value, dict):
        _check_table(name, value)
    elif isinstance(value, list):
        for item in value:
            _check_field_value(name, item)


PROPERTY_CHECKS = {
    "app_id": _shortstr,
    "content_encoding": _shortstr,
    "content_type": _shortstr,
    "correlation_id": _shortstr,
    "delivery_mode": _delivery_mode,
    "expiration": _expiration,
    "headers": lambda name, value: _headers("ev_extra3 headers", value),
    "message_id": _shortstr,
    "priority": lambda name, value: _integer(name, value, 0, 255),
    "timestamp": lambda name, value: _integer(name, value, 0, 2**63 - 1),
    "type": _shortstr,
    "user_id": _shortstr,
}


def _json_object(column: str, text: str | None) -> dict[str, Any]:
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise PoisonEvent(f"{column} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise PoisonEvent(f"{column} must be a JSON object, not {type(value).__name__}")
    return value


def parse_properties(text: str | None) -> dict[str, Any]:
    """The AMQP properties of ``ev_extra3``, type-checked; raises :class:`PoisonEvent`."""
    if not text or text.isspace():
        return {}
    given = _json_object("ev_extra3", text)
    unknown = sorted(set(given) - PROPERTY_CHECKS.keys())
    if unknown:
        raise PoisonEvent(f"ev_extra3 has unknown AMQP properties: {', '.join(unknown)}")
    return {name: PROPERTY_CHECKS[name](name, value) for name, value in given.items()}


def parse_headers(text: str | None) -> dict[str, Any]:
    """The headers of ``ev_extra4``; raises :class:`PoisonEvent`."""
    if not text or text.isspace():
        return {}
    return _headers("ev_extra4", _json_object("ev_extra4", text))


@lru_cache(maxsize=256)
def utc_stamp(time: datetime) -> tuple[str, int]:
    """``time`` as UTC ISO-8601 text and as epoch seconds.

    The events of one producer transaction share their ``ev_time``: a batch
    converts a few distinct times, not one per event.
    """
    utc = time.astimezone(UTC)
    return utc.isoformat(), int(utc.timestamp())


def stable_message_id(queue: str, event: Event, utc_time: str | None = None) -> str:
    """A message id that is the same for every delivery of one event: a name-based UUID (version 5).

    PgQ keeps ``ev_id`` and ``ev_time`` when it hands a retried event back but
    gives it a new txid, so the id is derived from the queue, ``ev_id`` and
    ``ev_time`` in UTC: redeliveries and retries carry the same id, and a queue
    that is dropped and created again (restarting ``ev_id``) does not reuse one.
    ``utc_time`` is ``ev_time`` as UTC ISO-8601, when the caller has it already.
    """
    if utc_time is None:
        utc_time = utc_stamp(event.time)[0]
    hasher = _queue_hasher(queue).copy()
    hasher.update(f"{event.id}\x00{utc_time}".encode())
    # The same value as uuid.uuid5(MESSAGE_ID_NAMESPACE, name), without the slow UUID object.
    digest = hasher.hexdigest()
    return (f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-{UUID_VARIANT[digest[16]]}{digest[17:20]}-"
            f"{digest[20:32]}")


@lru_cache(maxsize=64)
def _queue_hasher(queue: str):
    """SHA-1 fed with the namespace and the queue: each event's id hashes only its own part."""
    return hashlib.sha1(MESSAGE_ID_NAMESPACE.bytes + f"{queue}\x00".encode())


def _short_column(column: str, value: str | None) -> str:
    if not value:
        return ""
    if _too_long(value):
        raise PoisonEvent(f"{column} is longer than the {SHORTSTR_MAX} bytes AMQP allows")
    return value


def event_to_message(
    event: Event,
    *,
    queue: str,
    identity: RelayIdentity,
    persistent: bool,
    correlation_id: str,
    sequence: int,
) -> Message:
    """Map one PgQ event to the AMQP message to publish.

    ``correlation_id`` (a fresh UUID) and ``sequence`` come from the caller so
    that this function stays pure. Raises :class:`PoisonEvent` for an event
    that can never be published as it is.

    >>> from datetime import datetime, timezone
    >>> ev = Event(id=1, time=datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), txid=9,
    ...            retry=None, type="test.routing-key", data='{"foo": "bar"}',
    ...            extra1="postgres", extra2="application/json", extra3='{"type": "example"}')
    >>> msg = event_to_message(ev, queue="test", identity=RelayIdentity("relay/1", "host"),
    ...                        persistent=True, correlation_id="c", sequence=7)
    >>> msg.exchange, msg.routing_key, msg.properties["type"], msg.properties["timestamp"]
    ('postgres', 'test.routing-key', 'example', 1704164645)
    """
    # Most events have no ev_extra3 or ev_extra4: no parsing and no function call for them.
    given = parse_properties(event.extra3) if event.extra3 else None
    if given and "headers" in given:
        user_headers = given.pop("headers")
    else:
        user_headers = parse_headers(event.extra4) if event.extra4 else None
    utc_time, epoch_seconds = utc_stamp(event.time)
    headers = {"origin": identity.origin, "sequence": sequence, "timestamp": utc_time, "txid": event.txid}
    if user_headers:
        # after the automatic ones, so that a header the producer gave is never overwritten
        headers.update(user_headers)
    properties: dict[str, Any] = {
        "app_id": identity.app_id,
        "correlation_id": correlation_id,
        "timestamp": epoch_seconds,
        "message_id": stable_message_id(queue, event, utc_time),
        "delivery_mode": 2 if persistent else 1,
    }
    if event.extra2:
        properties["content_type"] = _short_column("ev_extra2 (content type)", event.extra2)
    if given:
        properties.update(given)
    properties["headers"] = headers
    # tuple.__new__ builds the named tuple in C, skipping its Python-level constructor.
    return tuple.__new__(Message, (
        _short_column("ev_extra1 (exchange)", event.extra1),
        _short_column("ev_type (routing key)", event.type),
        event.data.encode() if event.data else b"",
        properties,
    ))
