"""How a long ``relay_once`` run goes while it goes: a bar on a terminal, a line every few seconds elsewhere.

:class:`Progress` is an engine observer: it counts the events of every window
RabbitMQ settled, so a batch of a million events moves the bar 2,000 events
at a time rather than once at its end. The displays write to standard error,
so that standard output keeps the one summary (or JSON) that scripts read.
Only ``relay_once`` shows it, so it lives beside the command (outside
``commands/``, where Django would take it for a command of its own).
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import IO, Protocol

from ..engine.results import RelayResult


class Display(Protocol):
    """Where progress is shown."""

    def update(self, progress: Progress) -> None: ...

    def close(self, progress: Progress) -> None: ...


class Progress:
    """Counts a run's events window by window and its batches, and tells a :class:`Display` (an engine observer)."""

    def __init__(self, display: Display, expected: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.display = display
        #: PgQ's estimate of the events ready when the run started, if known: the bar's end.
        self.expected = expected
        self.clock = clock
        self.started = clock()
        self.events = 0
        self.batches = 0
        self._batch_events = 0

    @property
    def seconds(self) -> float:
        return self.clock() - self.started

    @property
    def events_per_second(self) -> float:
        seconds = self.seconds
        return self.events / seconds if seconds > 0 else 0.0

    def queue_locked(self, queue: str) -> None:
        pass

    def awaiting_confirms(self, queue: str, outstanding: int) -> None:
        pass

    def window_settled(self, queue: str, seconds: float, events: int) -> None:
        self.events += events
        self._batch_events += events
        self._tell()

    def batch_finished(self, result: RelayResult) -> None:
        # The splitter tells only of whole batches: what no window reported is counted now.
        self.events += max(0, result.events - self._batch_events)
        self._batch_events = 0
        self.batches += result.batches
        self._tell()

    def close(self) -> None:
        self.display.close(self)

    def _tell(self) -> None:
        try:
            self.display.update(self)
        except Exception:  # showing progress must never cost a batch; the summary still tells the outcome
            pass


class LineDisplay:
    """A line every ``every`` seconds: for logs and pipes, where a bar would be a mess of carriage returns."""

    def __init__(self, queue: str, stream: IO[str], every: float = 5.0) -> None:
        self.queue = queue
        self.stream = stream
        self.every = every
        self._next: float | None = None

    def update(self, progress: Progress) -> None:
        now = progress.clock()
        if self._next is None:
            self._next = progress.started + self.every
        if now < self._next:
            return
        self._next = now + self.every
        of = f" of about {progress.expected:,}" if progress.expected else ""
        self.stream.write(f"{self.queue}: {progress.events:,}{of} events relayed, {progress.batches:,} batches "
                          f"finished, {progress.events_per_second:,.0f} events/s, {progress.seconds:.0f} s\n")
        self.stream.flush()

    def close(self, progress: Progress) -> None:
        pass


class BarDisplay:
    """A tqdm bar on a terminal: events relayed (of PgQ's estimate, when known), rate, batches, time left."""

    def __init__(self, queue: str, stream: IO[str], expected: int | None = None) -> None:
        from tqdm import tqdm  # only for terminals

        try:
            columns = os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            columns = 0
        # A terminal that does not say its width (some ptys say 0) gets a bar of 100 columns, not one of none.
        width = {"dynamic_ncols": True} if columns else {"ncols": 100}
        self.bar = tqdm(total=expected or None, desc=queue, unit=" events", unit_scale=True, file=stream,
                        mininterval=0.2, leave=True, postfix={"batches": 0}, **width)

    def update(self, progress: Progress) -> None:
        self.bar.postfix = f"batches={progress.batches:,}"
        self.bar.update(progress.events - self.bar.n)

    def close(self, progress: Progress) -> None:
        if self.bar.total is not None and self.bar.n != self.bar.total:
            # PgQ's figure was an estimate: the bar ends where the run did.
            self.bar.total = self.bar.n
        self.bar.postfix = f"batches={progress.batches:,}"
        self.bar.refresh()
        self.bar.close()


class NoDisplay:
    """Nothing shown."""

    def update(self, progress: Progress) -> None:
        pass

    def close(self, progress: Progress) -> None:
        pass
