"""A PgQ event as the relay reads it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Event:
    """One row of a PgQ batch (``pgq.get_batch_cursor``)."""

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
