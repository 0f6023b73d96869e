"""Whether any relay can publish an event, told before the event is written: the mapping itself, on the widest relay.

A producer knows neither the event's id, time and txid nor the relay's host
name, and has no connection to RabbitMQ. Here the relay's own fields take the
largest values they can have, so an event that passes maps on every relay whose
app id and host name fit in 255 bytes each, over a connection with RabbitMQ's
default ``frame_max``. What only the relay's connection knows is left to the
relay: its login user (a ``user_id`` property must be it), the broker's
``max_message_size``, a ``frame_max`` below the default.
"""
from __future__ import annotations

from datetime import UTC, datetime

from ..core.events import Event, EventColumns
from ..core.identity import RelayIdentity
from .mapping import event_to_message
from .message import SHORTSTR_MAX, MessageLimits

#: RabbitMQ's default ``frame_max``: what a relay's connection negotiates unless the broker is set otherwise.
DEFAULT_FRAME_MAX = 131072
#: A relay whose own strings are as long as they may be: its messages' headers are the largest.
WIDEST_RELAY = RelayIdentity(app_id="a" * SHORTSTR_MAX, origin="o" * SHORTSTR_MAX)
_LIMITS = MessageLimits(frame_max=DEFAULT_FRAME_MAX)
#: Ids, txids and sequences of 64 bits take the most room in a header table.
_INT64_MAX = 2**63 - 1
#: A time with microseconds has the longest ISO-8601 text.
_LONGEST_TIME = datetime(2000, 1, 1, microsecond=1, tzinfo=UTC)
_UUID = "00000000-0000-4000-8000-000000000000"


def check_columns(columns: EventColumns) -> None:
    """Raise :class:`~relay.amqp.message.PoisonEvent` when no relay could publish an event of ``columns``.

    >>> check_columns(EventColumns("order.created", '{"id": 42}', "orders", "application/json", None, '{"n": 1}'))
    >>> check_columns(EventColumns("order.created", "", "", None, '{"priority": 300}'))
    Traceback (most recent call last):
    ...
    relay.amqp.message.PoisonEvent: ev_extra3 property 'priority' must be an integer from 0 to 255
    """
    event = Event(_INT64_MAX, _LONGEST_TIME, _INT64_MAX, None, *columns)
    event_to_message(event, queue="", identity=WIDEST_RELAY, persistent=True, correlation_id=_UUID,
                     sequence=_INT64_MAX, limits=_LIMITS, message_id=_UUID)
