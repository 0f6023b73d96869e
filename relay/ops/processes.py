"""Who is alive: each worker's heartbeat and beat's last sweep, as the overview and /health/ready read them.

A worker's main process says it is alive every couple of seconds (its
wake-ups thread does it); beat's sweep notes when it ran, and several beats
share one sweep per period through the same row.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from ..audit.status import format_age
from ..models import RelayProcess

#: A killed worker's row is kept this long after its last heartbeat (the overview says it is gone), then removed.
FORGET_AFTER = timedelta(hours=1)


def worker_heartbeat(name: str, now: datetime, watching: int) -> None:
    """Note that the worker ``name`` (Celery's ``name@host``) is alive and how many databases it watches."""
    RelayProcess.objects.update_or_create(name=name, defaults={"kind": RelayProcess.WORKER, "seen_at": now,
                                                              "watching": watching})
    RelayProcess.objects.filter(kind=RelayProcess.WORKER, seen_at__lt=now - FORGET_AFTER).delete()


def worker_stopped(name: str) -> None:
    """A worker that stopped cleanly leaves the list at once (a killed one when its heartbeat is old)."""
    RelayProcess.objects.filter(name=name, kind=RelayProcess.WORKER).delete()


def claim_sweep(now: datetime) -> bool:
    """Whether this sweep should run: none ran within half a sweep period (every ``worker -B`` runs a beat)."""
    earlier = now - timedelta(seconds=settings.RELAY_SWEEP_SECONDS / 2)
    RelayProcess.objects.get_or_create(name=RelayProcess.SWEEP,
                                       defaults={"kind": RelayProcess.SWEEP, "seen_at": earlier})
    return RelayProcess.objects.filter(name=RelayProcess.SWEEP, seen_at__lte=earlier).update(seen_at=now) == 1


def worker_seen_within() -> timedelta:
    """A worker whose last heartbeat is older than this is taken for gone (``RELAY_WORKER_SEEN_SECONDS``)."""
    return timedelta(seconds=settings.RELAY_WORKER_SEEN_SECONDS)


def sweep_seen_within() -> timedelta:
    """Beat is taken for gone when no sweep ran for this long: five sweep periods, 10 s at least."""
    return timedelta(seconds=max(10.0, 5 * settings.RELAY_SWEEP_SECONDS))


@dataclass(frozen=True)
class ProcessSeen:
    """A worker (or the sweep) and how long ago it was seen."""

    name: str
    seen_at: datetime
    age: timedelta
    watching: int = 0

    @property
    def host(self) -> str:
        return self.name.rpartition("@")[2]

    @property
    def age_text(self) -> str:
        return format_age(self.age)


@dataclass(frozen=True)
class Liveness:
    """The workers seen lately, the last sweep, and in words what is missing."""

    workers: list[ProcessSeen]
    sweep: ProcessSeen | None

    @property
    def problems(self) -> list[str]:
        found = []
        if not self.workers:
            found.append(f"no worker seen within {format_age(worker_seen_within())}: is "
                         "`celery -A mikkoo_project worker` running?")
        if self.sweep is None or self.sweep.age > sweep_seen_within():
            when = "never" if self.sweep is None else f"{self.sweep.age_text} ago"
            found.append(f"beat's sweep last ran {when} (expected every {settings.RELAY_SWEEP_SECONDS:g} s): is beat "
                         "running (`worker -B` or `celery -A mikkoo_project beat`)?")
        return found


def liveness(now: datetime) -> Liveness:
    """Who is alive now, in one query."""
    workers, sweep = [], None
    for row in RelayProcess.objects.order_by("name"):
        seen = ProcessSeen(row.name, row.seen_at, now - row.seen_at, row.watching)
        if row.kind == RelayProcess.SWEEP:
            sweep = seen
        elif seen.age <= worker_seen_within():
            workers.append(seen)
    return Liveness(workers, sweep)
