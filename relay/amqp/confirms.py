"""A published window's confirm bookkeeping: which delivery tag is which message, and each one's verdict. No I/O.

The publisher feeds it RabbitMQ's acks, nacks and returns as they come;
returns name no delivery tag, so a returned message is found by its
exchange, routing key, message_id and correlation_id.
"""
from __future__ import annotations

import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Sequence
from itertools import takewhile
from typing import Any

from .message import Message

Verdict = str | None
#: What tells a returned message apart: exchange, routing key, message_id and correlation_id.
Identity = tuple[str, str, Any, Any]


class BrokerClosed(str):
    """A verdict: RabbitMQ closed the channel or connection before confirming the message.

    One of the messages unconfirmed then caused it, perhaps this one: the
    engine publishes them again in smaller groups to find out which
    (``relay.engine.amqp_target.AmqpTarget``), so that the culprit alone is charged.
    """


class ConfirmWindow:
    """Bookkeeping of one published window: which delivery tag is which message, and its verdict."""

    def __init__(self, messages: Sequence[Message], confirm_timeout: float) -> None:
        self.messages = messages
        self.verdicts: list[Verdict] = [None] * len(messages)
        self.deadline = time.monotonic() + confirm_timeout
        #: delivery tag -> index of the message, in publishing order
        self.unsettled: OrderedDict[int, int] = OrderedDict()
        self.returned: dict[int, str] = {}
        # Returns are rare: unsettled messages are indexed by identity only when one
        # comes, each message once, instead of for every message published.
        self._by_identity: defaultdict[Identity, deque[int]] = defaultdict(deque)
        self._last_indexed = 0

    def sent(self, first_tag: int, indices: list[int]) -> None:
        """The messages at ``indices`` went out with delivery tags ``first_tag``, ``first_tag + 1``, ..."""
        self.unsettled.update(zip(range(first_tag, first_tag + len(indices)), indices, strict=True))

    def on_return(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> bool:
        """Note a returned message; False if it was not published in this window."""
        # A return comes before the ack of the same message, in publishing order,
        # so the oldest unsettled, unreturned message with the same identity is the one returned.
        self._index_new_messages()
        tags = self._by_identity.get(_identity(exchange, routing_key, message.properties))
        while tags and tags[0] not in self.unsettled:
            tags.popleft()
        if not tags:
            return False
        self.returned[tags.popleft()] = f"unroutable: {getattr(exc, 'reply_text', exc)}"
        return True

    def _index_new_messages(self) -> None:
        new_tags = list(takewhile(lambda tag: tag > self._last_indexed, reversed(self.unsettled)))
        for tag in reversed(new_tags):
            message = self.messages[self.unsettled[tag]]
            self._by_identity[_identity(message.exchange, message.routing_key, message.properties)].append(tag)
        if new_tags:
            self._last_indexed = new_tags[0]

    def on_ack(self, tag: int, multiple: bool) -> None:
        for settled in self._settle(tag, multiple):
            self.verdicts[self.unsettled.pop(settled)] = self.returned.pop(settled, None)

    def on_nack(self, tag: int, multiple: bool) -> None:
        for settled in self._settle(tag, multiple):
            self.verdicts[self.unsettled.pop(settled)] = "nacked by RabbitMQ"

    def _settle(self, tag: int, multiple: bool) -> list[int]:
        if not multiple:
            return [tag] if tag in self.unsettled else []
        settled = []
        for pending in self.unsettled:
            if pending > tag:
                break
            settled.append(pending)
        return settled

    def fail_unsettled(self, reason: str) -> None:
        for index in self.unsettled.values():
            self.verdicts[index] = reason
        self.unsettled.clear()
        # Delivery tags start again at 1 on the new channel that follows.
        self._by_identity.clear()
        self._last_indexed = 0


def _identity(exchange: str, routing_key: str, properties: dict[str, Any]) -> Identity:
    return exchange, routing_key, properties.get("message_id"), properties.get("correlation_id")
