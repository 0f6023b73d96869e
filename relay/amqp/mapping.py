"""PgQ event -> AMQP message (SPEC §2): a pure function, no I/O.

``ev_type`` is the routing key, ``ev_data`` the body, ``ev_extra1`` the exchange,
``ev_extra2`` the content type, ``ev_extra3`` a JSON object of AMQP properties
and ``ev_extra4`` a JSON object of headers. The relay adds ``app_id``,
``correlation_id``, ``timestamp``, ``message_id`` and ``delivery_mode`` and the
headers ``origin``, ``sequence``, ``timestamp`` and ``txid``. A property given in
``ev_extra3`` wins over the relay's own; a header given by the producer is never
overwritten by an automatic one.

Every field is untrusted: the result is a message that py-amqp can encode and
RabbitMQ accepts, or a :class:`PoisonEvent` whose text says why not. Checked:

- Nesting: header tables and arrays at most :data:`MAX_DEPTH` levels deep,
  measured on the JSON text before it is parsed; nothing here recurses.
- AMQP field tables: keys are short strings (at most 255 bytes of UTF-8),
  integers fit in signed 64 bits, numbers are finite (``NaN``, ``Infinity`` and
  ``1e400`` are refused: RabbitMQ closes the connection with 541 on a non-finite
  double), ``CC``/``BCC`` headers are arrays (RabbitMQ closes the channel with
  406 on any other type).
- Strings: a lone surrogate (``"\\ud800"`` is valid JSON) cannot be encoded as
  UTF-8, so it is refused wherever it would be encoded: routing key, exchange,
  content type, body, properties, header keys and values. NUL characters pass:
  they are legal in AMQP short and long strings, and RabbitMQ (3.10, tried)
  accepts them in exchange names, routing keys, properties, header keys and
  header values alike, and delivers them intact.
- Properties: types and ranges (``expiration`` at most
  :data:`EXPIRATION_MAX_MS`, the largest RabbitMQ accepts).
- With :class:`MessageLimits` (what one connection accepts): the encoded
  properties fit in one content-header frame of the negotiated ``frame_max``,
  ``user_id`` is the login user, the body is within ``max_message_size``.

The message type and its limits are in :mod:`relay.amqp.message`, the JSON
and field-table checks in :mod:`relay.amqp.properties`, the header sizes in
:mod:`relay.amqp.sizing` and the stable message ids in :mod:`relay.core.identity`.
"""
from __future__ import annotations

from typing import Any

from ..core.events import Event, utc_stamp
from ..core.identity import RelayIdentity, stable_message_id
from .frames import own_content_header
from .message import HEADER_FRAME_OVERHEAD, SHORTSTR_MAX, Message, MessageLimits, PoisonEvent
from .properties import _lone_surrogate, _show, parse_headers, parse_properties
from .sizing import _check_header_size, _header_size_bound, _too_long, _utf8_size


def _short_column(column: str, value: str) -> str:
    """``value`` unless it is no AMQP short string (the caller tried the common case already)."""
    surrogate = _lone_surrogate(value)
    if surrogate:
        raise PoisonEvent(f"{column} has a lone surrogate ({surrogate}), which UTF-8 cannot encode")
    if _too_long(value):
        raise PoisonEvent(f"{column} is longer than the {SHORTSTR_MAX} bytes AMQP allows "
                          f"({_utf8_size(value)} bytes of UTF-8)")
    return value


def _refuse_user_id(user_id: str, login: str) -> None:
    raise PoisonEvent(f"ev_extra3 property 'user_id' is {_show(user_id)} but the connection logs in as "
                      f"{_show(login)}: RabbitMQ refuses a user_id other than the login user")


def event_to_message(
    event: Event,
    *,
    queue: str,
    identity: RelayIdentity,
    persistent: bool,
    correlation_id: str,
    sequence: int,
    limits: MessageLimits | None = None,
    message_id: str | None = None,
) -> Message:
    """Map one PgQ event to the AMQP message to publish.

    ``correlation_id`` (a fresh UUID) and ``sequence`` come from the caller so
    that this function stays pure; so may ``message_id``, the event's
    :func:`stable_message_id`, when the caller made a window's at once.
    ``limits`` are what the connection the message will be published on
    accepts (its ``frame_max`` and login user); without them only the rules
    of AMQP and RabbitMQ that hold for every connection are checked. Raises :class:`PoisonEvent` for an event that can
    never be published as it is, and no other exception.

    >>> from datetime import datetime, timezone
    >>> ev = Event(id=1, time=datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), txid=9,
    ...            retry=None, type="test.routing-key", data='{"foo": "bar"}',
    ...            extra1="postgres", extra2="application/json", extra3='{"type": "example"}')
    >>> msg = event_to_message(ev, queue="test", identity=RelayIdentity("relay/1", "host"),
    ...                        persistent=True, correlation_id="c", sequence=7,
    ...                        limits=MessageLimits(frame_max=131072, user_id="guest"))
    >>> msg.exchange, msg.routing_key, msg.properties["type"], msg.properties["timestamp"]
    ('postgres', 'test.routing-key', 'example', 1704164645)
    """
    # Most events have no ev_extra3 or ev_extra4: no parsing and no function call for them.
    given = parse_properties(event.extra3) if event.extra3 else None
    if given and "headers" in given:
        user_headers = given.pop("headers")
    else:
        user_headers = parse_headers(event.extra4) if event.extra4 else None
    # The common case, plain ASCII short enough, is checked inline; the rest by _short_column.
    exchange = event.extra1 or ""
    if not (exchange.isascii() and len(exchange) <= SHORTSTR_MAX):
        _short_column("ev_extra1 (exchange)", exchange)
    routing_key = event.type or ""
    if not (routing_key.isascii() and len(routing_key) <= SHORTSTR_MAX):
        _short_column("ev_type (routing key)", routing_key)
    if event.data:
        try:
            body = event.data.encode()
        except UnicodeEncodeError as exc:
            raise PoisonEvent(f"ev_data (body) has a lone surrogate (U+{ord(event.data[exc.start]):04X} at "
                              f"character {exc.start}), which UTF-8 cannot encode") from None
    else:
        body = b""
    utc_time, epoch_seconds = utc_stamp(event.time)
    headers = {"origin": identity.origin, "sequence": sequence, "timestamp": utc_time, "txid": event.txid}
    if user_headers:
        # after the automatic ones, so that a header the producer gave is never overwritten
        headers.update(user_headers)
    properties: dict[str, Any] = {
        "app_id": identity.app_id,
        "correlation_id": correlation_id,
        "timestamp": epoch_seconds,
        "message_id": message_id or stable_message_id(queue, event),
        "delivery_mode": 2 if persistent else 1,
    }
    content_type = event.extra2
    if content_type:
        if not (content_type.isascii() and len(content_type) <= SHORTSTR_MAX):
            _short_column("ev_extra2 (content type)", content_type)
        properties["content_type"] = content_type
    if given:
        properties.update(given)
    properties["headers"] = headers
    if limits is not None:
        if given and "user_id" in given and limits.user_id is not None and given["user_id"] != limits.user_id:
            _refuse_user_id(given["user_id"], limits.user_id)
        if limits.max_message_size is not None and len(body) > limits.max_message_size:
            raise PoisonEvent(f"ev_data (body) is {len(body)} bytes, more than RabbitMQ's max_message_size of "
                              f"{limits.max_message_size} bytes")
        # Without JSON from the producer the properties are the relay's own fields and ev_extra2: app_id
        # and correlation_id are short strings (py-amqp sends no other), origin a host name, and
        # OWN_FIELDS_BOUND + 4 bytes a character of three short strings fit in the smallest frame AMQP
        # allows (a test says so): most events need no size check at all.
        if (limits.frame_max and (event.extra3 or event.extra4 or len(identity.origin) > SHORTSTR_MAX)
                and _header_size_bound(event, identity, correlation_id) > limits.frame_max - HEADER_FRAME_OVERHEAD):
            _check_header_size(limits.frame_max, event, identity, correlation_id, properties)
    # Most events have neither: their message has the relay's own shape, and its header is packed now.
    header = (own_content_header(len(body), content_type, correlation_id, properties["message_id"], epoch_seconds,
                                 properties["delivery_mode"], identity.app_id, identity.origin, sequence, utc_time,
                                 event.txid)
              if not given and not user_headers else None)
    # tuple.__new__ builds the named tuple in C, skipping its Python-level constructor.
    return tuple.__new__(Message, (exchange, routing_key, body, properties, header))
