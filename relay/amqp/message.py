"""The AMQP message the mapping makes, the limits it is made within, and the error for an event that has none.

Imports nothing else of :mod:`relay.amqp`: the mapping, the frames and the
publisher all import it (as py-amqp's framing imports its ``basic_message``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

SHORTSTR_MAX = 255
INT64 = (-(2**63), 2**63 - 1)
#: How deep header tables and arrays may nest (the headers table itself is level 1).
#: py-amqp encodes a table with two Python frames per level (``_write_item`` ->
#: ``_write_table``/``_write_array`` -> ``_write_item``) and decodes it with one
#: (``_read_item``), all by recursion: 100 levels take some 200 of the 1000 frames
#: Python allows, leaving ample room for the Celery task, relay and kombu frames
#: beneath the publish, and for consumers with recursive decoders. No header
#: needs more; Ruby's JSON parser stops at the same depth by default.
MAX_DEPTH = 100
#: The largest ``expiration`` (milliseconds: ten years) RabbitMQ accepts; above it,
#: it closes the channel with 406 (RabbitMQ 3.10, tried).
EXPIRATION_MAX_MS = 315_360_000_000
#: A content-header frame around the encoded properties: frame type, channel and
#: size (7 bytes) and frame end (1), then class id, weight and body size (12).
HEADER_FRAME_OVERHEAD = 20
#: AMQP's smallest frame_max: every peer must accept frames this large.
FRAME_MIN_SIZE = 4096


class PoisonEvent(ValueError):
    """An event that can never be published as it is; the message says why."""


class Message(NamedTuple):
    """An AMQP message ready to publish; ``properties`` use AMQP names, ``headers`` included.

    A named tuple, like :class:`~relay.core.events.Event`: one is made per event.
    ``header`` is the content header already encoded from ``properties`` (the
    relay's own shape of message, packed in one go), or None: the publisher
    then encodes ``properties`` itself.
    """

    exchange: str
    routing_key: str
    body: bytes
    properties: dict[str, Any]
    header: bytes | None = None


@dataclass(frozen=True, slots=True)
class MessageLimits:
    """What one connection to RabbitMQ accepts beyond the rules of AMQP; ``None`` leaves a limit unchecked.

    ``frame_max`` is the connection's negotiated maximum frame size (RabbitMQ's
    default is 131072; 0 is AMQP's "no limit"): the encoded properties, headers
    included, travel in one frame, and a larger one makes RabbitMQ close the
    connection (501). ``user_id`` is the login user: RabbitMQ closes the channel
    (406) on a message whose ``user_id`` property names anyone else, so leave it
    ``None`` for a user with RabbitMQ's ``impersonator`` tag. ``max_message_size``
    is the broker's ``max_message_size`` setting (bytes of body; 406 above it).
    """

    frame_max: int | None = None
    user_id: str | None = None
    max_message_size: int | None = None

    def __post_init__(self) -> None:
        if self.frame_max is not None and self.frame_max != 0 and self.frame_max < FRAME_MIN_SIZE:
            raise ValueError(f"frame_max must be 0 (no limit) or at least {FRAME_MIN_SIZE}, not {self.frame_max}")
        if self.max_message_size is not None and self.max_message_size < 0:
            raise ValueError(f"max_message_size must not be negative, not {self.max_message_size}")
