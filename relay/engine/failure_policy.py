"""Retry or dead letter: one rule for every target's failed events."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..core.events import Event
from ..pgq.consumer import PgqConsumer


@dataclass
class Fates:
    """A window's failed events sorted: handed back to PgQ to retry, or given up on with their failure count."""

    retry: list[tuple[Event, str]] = field(default_factory=list)
    dead: list[tuple[Event, str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class FailurePolicy:
    """An event is retried after ``retry_delay`` seconds until its ``max_failures``-th failure, then dead-lettered.

    An event that can never succeed (it cannot be mapped, or it names no
    target queue) is dead-lettered at its first failure.
    """

    max_failures: int
    retry_delay: int

    def sort(self, failed: Iterable[tuple[Event, str, bool]]) -> Fates:
        """The fate of each ``(event, reason, hopeless)``."""
        fates = Fates()
        for event, reason, hopeless in failed:
            if hopeless or event.failures + 1 >= self.max_failures:
                fates.dead.append((event, reason, event.failures + 1))
            else:
                fates.retry.append((event, reason))
        return fates

    def record(self, consumer: PgqConsumer, batch_id: int, fates: Fates) -> None:
        """Write the fates into the batch's transaction: they commit with ``pgq.finish_batch`` or not at all."""
        consumer.retry_events(batch_id, fates.retry, self.retry_delay)
        consumer.dead_letter(batch_id, fates.dead)
