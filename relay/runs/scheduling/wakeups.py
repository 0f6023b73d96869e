"""Wake-ups: in each worker, one LISTEN connection per source database turns commits into relay tasks.

The worker's main process runs a :class:`Waker` (a Celery bootstep starts
it): one thread per source database listens for the notifications that the
queues' wake-up triggers send at commit, and one thread turns them into relay
tasks and follows the configuration (queues added, disabled, moved). An idle
queue thus costs no task, no pool slot and no connection of its own.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from celery import bootsteps
from django.conf import settings
from django.db import close_old_connections, connections

from ...core.errors import RelayError
from ...core.secrets import redact_url
from ...pgq.watch import WakeupListener

logger = logging.getLogger(__name__)

#: PgQ queue name -> ids of the relayed queues that consume it
Watched = dict[str, list[int]]


class DatabaseWatcher(threading.Thread):
    """Listens on one source database for the wake-ups of its queues; reconnects with backoff."""

    #: Listen again now and then: a queue created since (by a registration elsewhere) gets its channel.
    relisten_seconds = 30.0

    def __init__(self, dsn: str, woken: Callable[[list[int]], None]) -> None:
        super().__init__(name=f"relay-wakeups {redact_url(dsn)}", daemon=True)
        self.dsn = dsn
        self.woken = woken
        self.listener = WakeupListener(dsn)
        self._watched: Watched = {}
        self._changed = threading.Event()
        self._stopping = threading.Event()

    def watch(self, watched: Watched) -> None:
        """Listen for these queues from now on."""
        if watched != self._watched:
            self._watched = watched
            self._changed.set()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        failures = 0
        relisten_at = 0.0
        while not self._stopping.is_set():
            try:
                watched = self._watched
                if self.listener.broken or self._changed.is_set() or time.monotonic() >= relisten_at:
                    self._changed.clear()
                    self.listener.listen(watched)
                    relisten_at = time.monotonic() + self.relisten_seconds
                    if failures:
                        logger.info("wake-ups from %s: listening again", redact_url(self.dsn))
                    failures = 0
                names = self.listener.wait(1.0)
                if names:
                    self.woken([queue_id for name in names for queue_id in watched.get(name, ())])
            except RelayError as exc:
                failures += 1
                if failures == 1:
                    logger.warning("wake-ups: %s; trying again, and the sweep finds its queues' events meanwhile",
                                   exc)
                self._stopping.wait(min(30, 2 ** failures))
        self.listener.close()


class Waker:
    """Follows the enabled queues, keeps a :class:`DatabaseWatcher` per source database, requests their slices."""

    def __init__(self, request: Callable[[list[int]], object] | None = None) -> None:
        self.request = request
        self.watchers: dict[str, DatabaseWatcher] = {}
        self._woken: queue.SimpleQueue[list[int]] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relay-wakeups", daemon=True)
        # This thread's Django connection, held here too: were the pool to fork a new child, the
        # child must not close it (thread-local storage of threads that are gone is freed in a child).
        self._database = None

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
        while not self._stopping.is_set():
            try:
                if time.monotonic() >= refresh_at:
                    self._follow_configuration()
                    refresh_at = time.monotonic() + refresh_every
                self._request_woken(timeout=max(0.0, refresh_at - time.monotonic()))
            except Exception:
                # The Django database may be restarting: log, reconnect next time, carry on.
                logger.exception("wake-ups: following the configuration failed; trying again")
                close_old_connections()
                self._stopping.wait(refresh_every)
        for watcher in self.watchers.values():
            watcher.join(timeout=2)

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
        from ...models import RelayedQueue

        close_old_connections()
        wanted: dict[str, Watched] = {}
        for relayed in RelayedQueue.objects.filter(enabled=True).only("pk", "source_url", "queue_name"):
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
    """The worker bootstep that runs a :class:`Waker` in the worker's main process (``RELAY_WAKEUPS``)."""

    label = "relay wake-ups"
    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker, **kwargs) -> None:
        super().__init__(worker, **kwargs)
        self.enabled = settings.RELAY_WAKEUPS

    def create(self, worker) -> Waker:
        return Waker()
