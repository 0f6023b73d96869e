"""The statement that writes events into a PgQ queue in the caller's transaction: one event or many, audited or not.

Pure: it makes the SQL and its parameters (pyformat, which psycopg2, psycopg 3
and Django's cursors all take); the caller runs it on its own cursor. Every
form returns one row per event, its id, in the order given.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.events import EventColumns
from .arrays import array_literal

_NAMES = (*EventColumns._fields, "message_id")
#: How the statement reads each column: one event's parameters, or a row of the unnested arrays of many.
_ONE = {name: f"%({name})s" for name in _NAMES}
_MANY = {name: f"e.{name}" for name in _NAMES}
_INSERT_EVENT = "pgq.insert_event(%(queue)s, {type}, {data}, {extra1}, {extra2}, {extra3}, {extra4})"
# What mikkoo.insert_audited_event does after inserting the event, through the same SECURITY DEFINER function:
# producers need no rights on mikkoo.audit.
_NEW_AUDIT_RECORD = ("mikkoo.new_audit_record({message_id}::uuid, e.event_id, %(queue)s, {extra1}, {type}, {data}, "
                     "{extra2}, {extra3}, {extra4})")
# Many events come as one array per column and are inserted in their order (unnest keeps it), so their ids
# ascend in that order: the order the relay publishes them in. Unaudited, the message ids are a NULL array,
# which unnest pads with NULLs beside the others.
_EVENTS = ("unnest(%(type)s::text[], %(data)s::text[], %(extra1)s::text[], %(extra2)s::text[], %(extra3)s::text[], "
           "%(extra4)s::text[], %(message_id)s::text[]) "
           "WITH ORDINALITY AS e(type, data, extra1, extra2, extra3, extra4, message_id, n)")

#: By (many events, audited). One event takes the plainest statement: a third of the time of the unnest form.
STATEMENTS = {
    (False, False): f"SELECT {_INSERT_EVENT.format(**_ONE)} AS event_id",
    (False, True): f"WITH e AS MATERIALIZED (SELECT {_INSERT_EVENT.format(**_ONE)} AS event_id) "
                   f"SELECT ({_NEW_AUDIT_RECORD.format(**_ONE)}).event_id FROM e",
    (True, False): f"SELECT {_INSERT_EVENT.format(**_MANY)} AS event_id FROM {_EVENTS} ORDER BY e.n",
    (True, True): f"WITH e AS MATERIALIZED (SELECT e.*, {_INSERT_EVENT.format(**_MANY)} AS event_id FROM {_EVENTS}) "
                  f"SELECT ({_NEW_AUDIT_RECORD.format(**_MANY)}).event_id FROM e ORDER BY e.n",
}


def insert_events(queue: str, events: Sequence[EventColumns],
                  message_ids: Sequence[str] | None = None) -> tuple[str, dict[str, Any]]:
    """The statement inserting ``events`` into ``queue``, and its parameters.

    With ``message_ids`` (one UUID an event, already in each event's
    ``extra3``), each event also gets its audit record, as
    ``mikkoo.insert_audited_event`` writes it.
    """
    audited = message_ids is not None
    if len(events) == 1:
        params = {**events[0]._asdict(), "message_id": message_ids[0] if message_ids is not None else None}
    else:
        params = dict(zip(EventColumns._fields, map(array_literal, zip(*events, strict=True)), strict=True),
                      message_id=array_literal(message_ids) if message_ids is not None else None)
    params["queue"] = queue
    return STATEMENTS[len(events) > 1, audited], params
