"""Who is relaying: the app_id, the origin host and the sequence of published messages."""
from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from .. import __version__

RELAY_NAME = "mikkoo-relay"


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
