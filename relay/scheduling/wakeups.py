"""Wake-ups: one watcher per source database turns new events into relay tasks, at no cost to the producers.

The worker's main process runs a :class:`Waker` (a Celery bootstep starts
it): one thread per source database reads its queues' event sequences every
``RELAY_WATCH_SECONDS`` (one query for all of them), and one thread turns what
they find into relay tasks and follows the configuration (queues added,
disabled, moved). Of all the workers, one watches each database (an advisory
lock there); the others stand by and take over within
``RELAY_WATCH_STANDBY_SECONDS`` when it goes. Nothing is added to the
producers' transactions unless an operator turns on ``RELAY_NOTIFY``, which
installs a NOTIFY trigger and wakes the watcher at commit.
"""
from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from celery import bootsteps
from django.conf import settings
from django.db import Error as DjangoDatabaseError
from django.db import close_old_connections, connections
from django.utils import timezone

from ..core.connection_strings import redact_url
from ..core.errors import RelayError
from ..pgq.database import first_line
from ..pgq.watch import QueueWatch

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger(__name__)

#: PgQ queue name -> ids of the relayed queues that consume it
Watched = dict[str, list[int]]


def watch_group() -> str:
    """What names this relay installation in a source database: its workers share one watcher there."""
    django_db = settings.DATABASES["default"]
    where = (django_db.get("HOST"), django_db.get("PORT"), django_db.get("NAME"), settings.CELERY_TASK_DEFAULT_QUEUE)
    return hashlib.sha256(repr(where).encode()).hexdigest()[:16]


class DatabaseWatcher(threading.Thread):
    """Watches one source database for its queues' new events, or stands by; reconnects with backoff."""

    #: Listen again now and then: a queue created since (by a registration elsewhere) gets its channel.
    relisten_seconds = 30.0

    def __init__(self, dsn: str, woken: Callable[[list[int]], None]) -> None:
        super().__init__(name=f"relay-watch {redact_url(dsn)}", daemon=True)
        self.dsn = dsn
        self.woken = woken
        self.watch_seconds = settings.RELAY_WATCH_SECONDS
        self.standby_seconds = settings.RELAY_WATCH_STANDBY_SECONDS
        self.notify = settings.RELAY_NOTIFY
        self.watcher = QueueWatch(dsn, watch_group())
        self._watched: Watched = {}
        self._changed = threading.Event()
        self._stopping = threading.Event()

    def watch(self, watched: Watched) -> None:
        """Watch these queues from now on."""
        if watched != self._watched:
            self._watched = watched
            self._changed.set()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                leading = self.watcher.lead()
                if failures:
                    logger.info("wake-ups: %s answers again", redact_url(self.dsn))
                failures = 0
                if leading:
                    self._watch()
                else:
                    self._stopping.wait(self.standby_seconds)  # another worker watches: try again later
            except RelayError as exc:
                failures += 1
                if failures == 1:
                    logger.warning("wake-ups: %s; trying again, and the sweep finds its queues' events meanwhile",
                                   exc)
                self._stopping.wait(min(10, 2 ** (failures - 1)))
        self.watcher.close()

    def _watch(self) -> None:
        """Wake the queues with new events until stopped or the connection fails (a RelayError)."""
        logger.info("wake-ups: watching %s for this relay's workers", redact_url(self.dsn))
        self._changed.set()
        relisten_at = 0.0
        while not self._stopping.is_set():
            watched = self._watched
            if self._changed.is_set() or (self.notify and time.monotonic() >= relisten_at):
                self._changed.clear()
                self._configure(watched)
                relisten_at = time.monotonic() + self.relisten_seconds
            found = self.watcher.poll(list(watched))
            if found.woken:
                self.woken([queue_id for name in found.woken for queue_id in watched.get(name, ())])
            self.watcher.wait(self.watch_seconds)

    def _configure(self, watched: Watched) -> None:
        # Installations of relays before 2026-12 have the trigger on every queue: removed here.
        changed = self.watcher.set_triggers(watched, self.notify)
        self.watcher.listen(watched if self.notify else ())
        if changed:
            logger.info("wake-ups: NOTIFY trigger %s on %d event tables of %s (RELAY_NOTIFY=%s)",
                        "installed" if self.notify else "removed", changed, redact_url(self.dsn), self.notify)


class Waker:
    """Says the worker is alive, follows the enabled queues, keeps a watcher per source database, requests slices.

    With ``watch`` false (``RELAY_WAKEUPS`` off) it only says the worker is alive: the sweep finds the work.
    """

    def __init__(self, name: str = "", request: Callable[[list[int]], object] | None = None,
                 watch: bool = True) -> None:
        self.name = name  # Celery's name@host, for the heartbeat
        self.request = request
        self.watch = watch
        self.watchers: dict[str, DatabaseWatcher] = {}
        self._woken: queue.SimpleQueue[list[int]] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relay-wakeups", daemon=True)
        # This thread's Django connection, held here too: were the pool to fork a new child, the
        # child must not close it (thread-local storage of threads that are gone is freed in a child).
        self._database: BaseDatabaseWrapper | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for watcher in self.watchers.values():
            watcher.stop()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        refresh_every = settings.RELAY_WAKEUP_REFRESH_SECONDS
        refresh_at = 0.0
        failing = False
        while not self._stopping.is_set():
            try:
                if time.monotonic() >= refresh_at:
                    self._follow_configuration()
                    refresh_at = time.monotonic() + refresh_every
                self._request_woken(timeout=max(0.0, refresh_at - time.monotonic()))
                if failing:
                    logger.info("wake-ups: Django's database answers again")
                failing = False
            except DjangoDatabaseError as exc:
                # Restarting, failing over: the watchers keep finding the events; their requests wait for it.
                if not failing:
                    logger.warning("wake-ups: Django's database failed (%s); trying again every %g s",
                                   first_line(exc), refresh_every)
                failing = True
                close_old_connections()
                self._stopping.wait(refresh_every)
            except Exception:
                logger.exception("wake-ups: following the configuration failed; trying again")
                close_old_connections()
                self._stopping.wait(refresh_every)
        for watcher in self.watchers.values():
            watcher.join(timeout=2)
        if self.name:
            from ..ops.processes import worker_stopped

            try:
                worker_stopped(self.name)
            except DjangoDatabaseError:
                pass  # its heartbeat grows old instead

    def _request_woken(self, timeout: float) -> None:
        try:
            ids = self._woken.get(timeout=timeout)
        except queue.Empty:
            return
        # Everything woken meanwhile goes in one request.
        while not self._woken.empty():
            ids = ids + self._woken.get_nowait()
        self._request(ids)

    def _request(self, ids: list[int]) -> None:
        from .requests import request_slices

        (self.request or request_slices)(ids)
        self._database = connections["default"]

    def _follow_configuration(self) -> None:
        from ..models import RelayedQueue
        from ..ops.processes import worker_heartbeat

        close_old_connections()
        if self.name:
            worker_heartbeat(self.name, timezone.now(),
                             watching=sum(watcher.watcher.leading for watcher in self.watchers.values()))
        wanted: dict[str, Watched] = {}
        enabled = RelayedQueue.objects.filter(enabled=True) if self.watch else RelayedQueue.objects.none()
        for relayed in enabled.only("pk", "source_url", "queue_name"):
            try:
                dsn = relayed.source_dsn()  # env:NAME read now; an unusable source has no wake-ups to wait for
            except RelayError:
                continue
            wanted.setdefault(dsn, {}).setdefault(relayed.queue_name, []).append(relayed.pk)
        self._database = connections["default"]
        for dsn in self.watchers.keys() - wanted.keys():
            self.watchers.pop(dsn).stop()
        for dsn, watched in wanted.items():
            watcher = self.watchers.get(dsn)
            if watcher is None:
                watcher = self.watchers[dsn] = DatabaseWatcher(dsn, self._woken.put)
                watcher.watch(watched)
                watcher.start()
            else:
                watcher.watch(watched)


class WakeupStep(bootsteps.StartStopStep):
    """The worker bootstep that runs a :class:`Waker` in the worker's main process (watching: ``RELAY_WAKEUPS``)."""

    label = "relay wake-ups"
    requires = ("celery.worker.components:Pool",)

    def create(self, worker) -> Waker:
        return Waker(name=worker.hostname, watch=settings.RELAY_WAKEUPS)
