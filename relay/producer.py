"""Publishing in the application's own transaction: events written to PgQ, refused there if the relay would refuse them.

Needs neither the relay's Django app nor configured settings: Django is
imported only when a call uses a Django connection, or a body or header value
that only Django's JSON encoder can write (dates, decimals, UUIDs).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from .amqp.admission import check_columns
from .amqp.message import PoisonEvent
from .core.errors import InvalidEvent
from .core.events import EventColumns
from .core.identity import new_correlation_ids
from .pgq.event_insert import insert_events

__all__ = ["InvalidEvent", "publish", "publish_many"]

JSON_CONTENT_TYPE = "application/json"

#: The argument each PgQ column is written from: a refusal names the argument.
_ARGUMENTS = {"ev_type": "routing_key", "ev_data": "body", "ev_extra1": "exchange", "ev_extra2": "content_type",
              "ev_extra3": "properties", "ev_extra4": "headers"}


def publish(queue: str, routing_key: str, body: Any, *, exchange: str = "", headers: Mapping[str, Any] | None = None,
            properties: Mapping[str, Any] | None = None, content_type: str | None = None, audited: bool = False,
            using: str | None = None, cursor: Any = None) -> int:
    """Write one event into the PgQ queue ``queue``, in the caller's transaction; return its PgQ event id.

    The relay publishes it to RabbitMQ once the transaction commits, and
    never if it rolls back. The event is checked first by the rules the
    relay maps events by: one it would refuse raises :class:`InvalidEvent`
    (a ``ValueError``) naming the argument and the rule, and nothing is
    written.

    Args:
        queue: The PgQ queue (``pgq.create_queue``) the relay consumes.
        routing_key: The message's routing key (``ev_type``); at most 255 bytes of UTF-8.
        body: ``bytes`` are sent as they are and must be UTF-8 (PgQ keeps the
            body as text); a ``str`` is sent as UTF-8; anything else is
            encoded as JSON by Django's encoder (dates, times, decimals and
            UUIDs as text; ``NaN`` and infinities refused) and
            ``content_type`` defaults to ``application/json``.
        exchange: The exchange (``ev_extra1``); ``""`` is RabbitMQ's default exchange.
        headers: The message's headers (``ev_extra4``), a mapping of JSON
            values; the relay adds ``origin``, ``sequence``, ``timestamp``
            and ``txid`` where not given.
        properties: AMQP properties (``ev_extra3``): ``app_id``,
            ``content_encoding``, ``content_type``, ``correlation_id``,
            ``delivery_mode``, ``expiration``, ``message_id``, ``priority``,
            ``timestamp``, ``type``, ``user_id``. Each wins over the relay's
            own value; headers go in ``headers``.
        content_type: The ``content_type`` property (``ev_extra2``).
        audited: Also write the event's record into ``mikkoo.audit``, as
            ``mikkoo.insert_audited_event`` does: a new random UUID as the
            ``message_id`` property, the queue's name as the ``pgq_queue``
            header (so neither may be given) and the audit row with the
            same values. Needs the audit SQL API in the database.
        using: The alias of the Django database connection to write with
            (default ``"default"``): the event joins the current
            ``transaction.atomic()`` block, or commits at once in autocommit.
        cursor: A psycopg2 or psycopg 3 cursor to write with instead: the
            event joins that cursor's transaction.

    Returns:
        The event's PgQ id (``ev_id``).

    Raises:
        InvalidEvent: The relay could never publish the event; nothing was written.
        TypeError: An argument of the wrong type, or both ``using`` and ``cursor``.

    Example, in a Django view (the order and its event commit together, or neither does)::

        with transaction.atomic():
            order.save()
            publish("orders", "order.created", {"id": order.id}, exchange="events")
    """
    message_ids = new_correlation_ids(1) if audited else None
    columns = _event_columns(queue, message_ids[0] if message_ids else None, routing_key, body, exchange=exchange,
                             headers=headers, properties=properties, content_type=content_type)
    return _write(queue, [columns], message_ids, using, cursor)[0]


def publish_many(queue: str, events: Iterable[Mapping[str, Any]], *, audited: bool = False, using: str | None = None,
                 cursor: Any = None) -> list[int]:
    """Write many events into the PgQ queue ``queue`` in one statement, in the caller's transaction.

    Each event is a mapping of :func:`publish`'s per-event arguments:
    ``routing_key`` and ``body``, and optionally ``exchange``, ``headers``,
    ``properties`` and ``content_type``. Every event is checked before any is
    written: one the relay would refuse raises :class:`InvalidEvent` naming
    it by its position (``events[3].headers: …``), and none is written. The
    relay publishes them in the order given.

    Args:
        queue: The PgQ queue the relay consumes.
        events: The events, as mappings of ``publish``'s per-event arguments.
        audited: Also write each event's record into ``mikkoo.audit`` (see :func:`publish`).
        using: The alias of the Django database connection to write with (see :func:`publish`).
        cursor: A psycopg2 or psycopg 3 cursor to write with instead (see :func:`publish`).

    Returns:
        The events' PgQ ids, in the order of ``events``.

    Raises:
        InvalidEvent: The relay could never publish one of the events; nothing was written.
        TypeError: An event with a missing, unknown or wrongly typed argument, or both ``using`` and ``cursor``.

    Example, with a psycopg cursor (the connection's context commits)::

        with psycopg.connect("dbname=shop") as conn, conn.cursor() as cursor:
            publish_many("orders", [{"routing_key": "order.shipped", "body": {"id": id}, "exchange": "events"}
                                    for id in shipped], cursor=cursor)
    """
    events = list(events)
    message_ids = new_correlation_ids(len(events)) if audited else None
    columns = []
    for index, event in enumerate(events):
        try:
            columns.append(_event_columns(queue, message_ids[index] if message_ids else None, **event))
        except InvalidEvent as exc:
            raise InvalidEvent(f"events[{index}].{exc.field}", exc.rule) from None
    return _write(queue, columns, message_ids, using, cursor) if columns else []


def _event_columns(queue: str, message_id: str | None, /, routing_key: str, body: Any, *, exchange: str = "",
                   headers: Mapping[str, Any] | None = None, properties: Mapping[str, Any] | None = None,
                   content_type: str | None = None) -> EventColumns:
    """The PgQ columns of one event, checked as the relay will map them; ``message_id`` only for an audited one."""
    _text("queue", queue)
    data, is_json = _body(body)
    if content_type is None and is_json:
        content_type = JSON_CONTENT_TYPE
    properties = dict(_mapping("properties", properties))
    headers = dict(_mapping("headers", headers))
    if "headers" in properties:
        raise InvalidEvent("properties", "'headers' are given by the headers argument (ev_extra4): in ev_extra3 "
                                         "they would replace them")
    if message_id is not None:
        for given, name in ((properties, "message_id"), (headers, "pgq_queue")):
            if name in given:
                raise InvalidEvent("properties" if given is properties else "headers",
                                   f"{name!r} is set by audited=True, as mikkoo.insert_audited_event sets it")
        properties["message_id"] = message_id
        headers["pgq_queue"] = queue
    columns = EventColumns(_text("routing_key", routing_key), data, _text("exchange", exchange),
                           _optional_text("content_type", content_type),
                           _json("properties", properties, allow_nan=True) if properties else None,
                           _json("headers", headers, allow_nan=True) if headers else None)
    try:
        check_columns(columns)
    except PoisonEvent as exc:
        reason = str(exc)
        raise InvalidEvent(_ARGUMENTS.get(reason.split(" ", 1)[0], "headers and properties"), reason) from None
    return columns


def _optional_text(field: str, value: Any) -> str | None:
    """``value``, None or a ``str`` that a PostgreSQL text column can hold."""
    return None if value is None else _text(field, value)


def _text(field: str, value: Any) -> str:
    """``value``, a ``str`` that a PostgreSQL text column can hold."""
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str, not {type(value).__name__}")
    if "\x00" in value:
        raise InvalidEvent(field, f"has a NUL character (at {value.index(chr(0))}), which PostgreSQL text cannot hold")
    return value


def _mapping(field: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{field} must be a mapping, not {type(value).__name__}")
    return value


def _body(body: Any) -> tuple[str, bool]:
    """``ev_data`` for ``body``, and whether it is JSON made here."""
    if isinstance(body, bytes | bytearray | memoryview):
        try:
            text = bytes(body).decode()
        except UnicodeDecodeError as exc:
            # ev_data is text and the relay sends it as UTF-8: other bytes could not arrive as they were.
            raise InvalidEvent("body", f"bytes that are not UTF-8 (byte {exc.start}) cannot be carried: PgQ keeps "
                                       "the body as text, which the relay sends as UTF-8 (encode them, e.g. "
                                       "base64)") from None
        return _text("body", text), False
    if isinstance(body, str):
        return _text("body", body), False
    # NaN and infinities are not JSON: a consumer's parser would refuse the body.
    return _json("body", body, allow_nan=False), True


@cache
def _django_encoder() -> json.JSONEncoder:
    # Imported on first use: a producer without such values needs no Django (settings need not be configured).
    from django.core.serializers.json import DjangoJSONEncoder

    return DjangoJSONEncoder()


def _django_json(value: Any) -> Any:
    """What Django's JSON encoder makes of a value plain JSON cannot encode (a date, a decimal, a UUID)."""
    return _django_encoder().default(value)


# Characters beyond ASCII as they are, not escaped, as jsonb writes them for mikkoo.insert_audited_event. Non-finite
# numbers in headers and properties are written as Python writes them, for the mapping to refuse in its own words.
_ENCODERS = {allow_nan: json.JSONEncoder(ensure_ascii=False, allow_nan=allow_nan, default=_django_json)
             for allow_nan in (False, True)}


def _json(field: str, value: Any, allow_nan: bool) -> str:
    """``value`` as JSON text."""
    try:
        return _ENCODERS[allow_nan].encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidEvent(field, f"cannot be encoded as JSON: {exc}") from None


def _write(queue: str, columns: list[EventColumns], message_ids: list[str] | None, using: str | None,
           cursor: Any) -> list[int]:
    """Insert the events (and their audit records, given their message ids) in one statement; their ids."""
    statement, params = insert_events(queue, columns, message_ids)
    if cursor is not None:
        if using is not None:
            raise TypeError("give either cursor or using, not both")
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    else:
        from django.db import DEFAULT_DB_ALIAS, connections

        with connections[using or DEFAULT_DB_ALIAS].cursor() as django_cursor:
            django_cursor.execute(statement, params)
            rows = django_cursor.fetchall()
    # A dict-row cursor (psycopg2's RealDictCursor, psycopg's dict_row) names the column; others give tuples.
    return [row["event_id"] if isinstance(row, Mapping) else row[0] for row in rows]
