"""A PgQ event and batch as the relay reads them, and an event as a producer writes it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple


class Event(NamedTuple):
    """One row of a PgQ batch (``pgq.get_batch_cursor``).

    A named tuple rather than a frozen dataclass: the relay makes one per event,
    and building a frozen dataclass costs several times as much.
    """

    id: int
    time: datetime
    txid: int | None
    retry: int | None
    type: str | None
    data: str | None
    extra1: str | None = None
    extra2: str | None = None
    extra3: str | None = None
    extra4: str | None = None

    @property
    def failures(self) -> int:
        """How often publishing this event failed before (PgQ counts its retries)."""
        return self.retry or 0


@dataclass(frozen=True, slots=True)
class SourceBatch:
    """Which events a PgQ batch holds, told apart from every other batch of any source over time.

    A batch is the events between two ticks of its queue, for one consumer.
    Batch ids are a global sequence of the source database and tick ids
    restart when a queue is dropped and created again, so the batch is known
    by the source database (cluster system identifier and database name),
    the queue, the consumer and its ticks with their times.
    """

    source: str
    queue: str
    consumer: str
    batch_id: int
    prev_tick_id: int
    prev_tick_time: datetime
    tick_id: int
    tick_time: datetime


class EventColumns(NamedTuple):
    """What a producer writes into a PgQ event: the arguments of ``pgq.insert_event`` after the queue."""

    type: str
    data: str
    extra1: str
    extra2: str | None = None
    extra3: str | None = None
    extra4: str | None = None


@lru_cache(maxsize=256)
def utc_stamp(time: datetime) -> tuple[str, int]:
    """``time`` as UTC ISO-8601 text and as epoch seconds.

    The events of one producer transaction share their ``ev_time``: a batch
    converts a few distinct times, not one per event.
    """
    utc = time.astimezone(UTC)
    return utc.isoformat(), int(utc.timestamp())
