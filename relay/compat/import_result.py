"""What a configuration import did, row by row, in the words both import commands print."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Change:
    """What an import did to one row."""

    kind: str
    name: str
    outcome: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.outcome}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class ImportResult:
    """Every connection and queue an import created, updated or found unchanged, and its notes."""

    changes: tuple[Change, ...]
    notes: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        return [f"note: {note}" for note in self.notes] + [str(change) for change in self.changes]

    def queue_names(self) -> list[str]:
        return [change.name for change in self.changes if change.kind == "queue"]

    def summary(self) -> str:
        if len(self.changes) == 1 and self.changes[0].kind == "queue":
            # One queue: say how to try it rather than count to one.
            queue = self.changes[0]
            if queue.outcome == "unchanged":
                return f"Nothing changed: queue {queue.name} already matches the file."
            return f"Imported 1 queue: {queue.outcome} (run it with: manage.py relay_once {queue.name})."
        count = {outcome: sum(c.outcome == outcome for c in self.changes)
                 for outcome in ("created", "updated", "unchanged")}
        rows = " and ".join(_plural(sum(c.kind == kind for c in self.changes), kind)
                            for kind in ("connection", "queue"))
        if not count["created"] and not count["updated"]:
            return f"Nothing changed: {rows} already match the file."
        return (f"Imported {rows}: {count['created']} created, {count['updated']} updated, "
                f"{count['unchanged']} unchanged.")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
