"""Who is relaying (the app_id, the origin host) and the ids it gives: sequences, correlation and message ids."""
from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from .. import __version__
from .events import Event, utc_stamp

RELAY_NAME = "mikkoo-relay"
#: The namespace of the relay's stable message ids (:func:`stable_message_id`); changing it changes every id.
MESSAGE_ID_NAMESPACE = uuid.UUID("6f1c5d0e-4a44-4f57-9b0e-7d1b6c3a9e21")


@dataclass(frozen=True)
class RelayIdentity:
    """The values the relay stamps on every message as itself."""

    app_id: str
    origin: str


@lru_cache(maxsize=1)
def relay_identity() -> RelayIdentity:
    """This process's identity; the FQDN lookup can be slow, so it is made once."""
    return RelayIdentity(app_id=f"{RELAY_NAME}/{__version__}", origin=socket.getfqdn())


#: A hex digit turned into the RFC 4122 variant digit (8, 9, a or b), keeping its two low bits.
VARIANT_DIGITS = bytes.maketrans(b"0123456789abcdef", b"89ab89ab89ab89ab")


def new_correlation_ids(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs as text, like ``str(uuid.uuid4())`` at a small part of its cost.

    One call per window, and no Python work per id: random hex digits for all
    of them in one buffer, 37 characters apiece, whose dashes, version and
    variant digits and separators are set a column at a time (slice
    assignment with a step), then split.
    """
    if count == 0:
        return []
    layout = bytearray(os.urandom((37 * count + 1) // 2).hex()[:37 * count].encode())
    layout[8::37] = layout[13::37] = layout[18::37] = layout[23::37] = b"-" * count
    layout[14::37] = b"4" * count
    layout[19::37] = layout[19::37].translate(VARIANT_DIGITS)
    layout[36::37] = b" " * count
    return layout.decode().split()


class SequenceGenerator:
    """Unique, roughly time-ordered 63-bit ids: milliseconds, process, counter.

    41 bits of milliseconds since 2020, 10 bits of the process id and 12 bits of
    a counter; when the counter runs out within a millisecond the clock part is
    advanced, so ids never repeat within a process and stay increasing.
    """

    EPOCH_MS = 1_577_836_800_000
    COUNTER_SIZE = 0x1000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process = os.getpid() & 0x3FF
        self._last_ms = 0
        self._next_in_ms = 0

    def take(self, count: int) -> list[int]:
        """``count`` new ids in increasing order (taken together: a window costs one clock read)."""
        ids: list[int] = []
        with self._lock:
            now_ms = int(time.time() * 1000) - self.EPOCH_MS
            if now_ms > self._last_ms:
                self._last_ms, self._next_in_ms = now_ms, 0
            while len(ids) < count:
                if self._next_in_ms == self.COUNTER_SIZE:
                    self._last_ms, self._next_in_ms = self._last_ms + 1, 0
                first = (self._last_ms << 22) | (self._process << 12) | self._next_in_ms
                taken = min(count - len(ids), self.COUNTER_SIZE - self._next_in_ms)
                ids.extend(range(first, first + taken))
                self._next_in_ms += taken
        return ids


def stable_message_id(queue: str, event: Event) -> str:
    """A message id that is the same for every delivery of one event: a name-based UUID (version 5).

    PgQ keeps ``ev_id`` and ``ev_time`` when it hands a retried event back but
    gives it a new txid, so the id is derived from the queue, ``ev_id`` and
    ``ev_time`` in UTC: redeliveries and retries carry the same id, and a queue
    that is dropped and created again (restarting ``ev_id``) does not reuse one.
    """
    return stable_message_ids(queue, [event])[0]


#: Where each hex digit of a SHA-1 digest goes in a version 5 UUID's text, 37 characters apiece.
_UUID_DIGITS = tuple(zip((*range(0, 8), *range(9, 13), *range(15, 18), *range(20, 23), *range(24, 36)),
                         (*range(0, 8), *range(8, 12), *range(13, 16), *range(17, 20), *range(20, 32)),
                         strict=True))


def stable_message_ids(queue: str, events: Sequence[Event]) -> list[str]:
    """:func:`stable_message_id` of each event, for a window at a time.

    The same values as ``uuid.uuid5(MESSAGE_ID_NAMESPACE, name)``: each event
    hashes only its own part after a SHA-1 fed once with the namespace and the
    queue, and the digests become UUID text a column at a time, with no
    Python work per character.
    """
    queue_hasher = _queue_hasher(queue)
    digests = []
    for event in events:
        hasher = queue_hasher.copy()
        hasher.update(b"%d\x00%s" % (event.id, utc_stamp(event.time)[0].encode()))
        digests.append(hasher.digest())
    count = len(digests)
    digits = b"".join(digests).hex().encode()
    text = bytearray(37 * count)
    for to, from_ in _UUID_DIGITS:
        text[to::37] = digits[from_::40]
    text[8::37] = text[13::37] = text[18::37] = text[23::37] = b"-" * count
    text[14::37] = b"5" * count
    text[19::37] = digits[16::40].translate(VARIANT_DIGITS)
    text[36::37] = b" " * count
    return text.decode().split()


@lru_cache(maxsize=64)
def _queue_hasher(queue: str) -> hashlib._Hash:
    """SHA-1 fed with the namespace and the queue: each event's id hashes only its own part."""
    return hashlib.sha1(MESSAGE_ID_NAMESPACE.bytes + f"{queue}\x00".encode())
