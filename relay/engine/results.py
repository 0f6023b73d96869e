"""What a run or a batch did, whatever its target."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RelayResult:
    """What one run (or one batch) did; ``published`` counts the events the target took."""

    queue: str
    busy: bool = False
    batches: int = 0
    events: int = 0
    published: int = 0
    retried: int = 0
    dead_lettered: int = 0
    seconds: float = 0.0
    #: Stopped at ``max_batches`` or at its time limit, with work possibly left.
    cut_short: bool = False
    #: How the summary names ``published``: a target's own word for taking an event.
    delivered_as: str = "published"
    #: Batches a target database had applied in an earlier run that stopped before finishing them.
    already_applied: int = 0
    created_queues: list[str] = field(default_factory=list)

    @property
    def inserted(self) -> int:
        """The splitter's word for ``published``: events inserted into target queues."""
        return self.published

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def add(self, other: RelayResult) -> None:
        self.batches += other.batches
        self.events += other.events
        self.published += other.published
        self.retried += other.retried
        self.dead_lettered += other.dead_lettered
        self.already_applied += other.already_applied
        self.created_queues.extend(other.created_queues)

    def summary(self) -> str:
        if self.busy:
            return f"{self.queue}: busy, another process is relaying it; nothing done"
        if not self.batches:
            return f"{self.queue}: nothing ready"
        text = (f"{self.queue}: {self.batches} batches, {self.published} {self.delivered_as}, "
                f"{self.retried} retried, {self.dead_lettered} dead-lettered "
                f"in {self.seconds:.2f} s ({self.events_per_second:,.0f} events/s)")
        if self.already_applied:
            text += (f"; {self.already_applied} already applied in the target database "
                     "by an earlier run, finished without inserting again")
        if self.created_queues:
            text += f"; created target queues {', '.join(self.created_queues)}"
        return text
