"""The relay's counters sent to statsd (mikkoo's ``Application/statsd``) over UDP, when STATSD_HOST is set."""
from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from typing import Any

from django.conf import settings

from ..engine.results import RelayResult

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def batch_lines(result: RelayResult, prefix: str) -> list[str]:
    """The statsd lines of one finished batch.

    >>> batch_lines(RelayResult(queue="orders.eu", batches=1, published=3, seconds=0.25), "relay")
    ['relay.orders_eu.batches:1|c', 'relay.orders_eu.events_published:3|c', 'relay.orders_eu.events_retried:0|c', \
'relay.orders_eu.events_dead_lettered:0|c', 'relay.orders_eu.batch_duration:250|ms']
    """
    # A dot in a queue name would split it into two levels of the statsd hierarchy.
    base = f"{prefix}.{_UNSAFE.sub('_', result.queue)}" if prefix else _UNSAFE.sub("_", result.queue)
    return [f"{base}.batches:{result.batches}|c", f"{base}.events_published:{result.published}|c",
            f"{base}.events_retried:{result.retried}|c", f"{base}.events_dead_lettered:{result.dead_lettered}|c",
            f"{base}.batch_duration:{round(result.seconds * 1000)}|ms"]


class StatsdSocket:
    """A UDP socket and the daemon's resolved address, kept from one batch to the next.

    The name is resolved again after :attr:`resolve_seconds` (the daemon may
    move) and after any error, which also replaces the socket. IPv4, as the
    relay always sent: a name with an IPv6 address too still reaches a daemon
    listening on 127.0.0.1. Thread-safe; :meth:`after_fork` gives a forked
    child a socket of its own.
    """

    #: How long a resolved address is used before the name is asked again.
    resolve_seconds = 60.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._target: tuple[str, int] | None = None
        #: Where the datagrams go, as getaddrinfo() gave it.
        self._address: tuple[Any, ...] | None = None
        self._resolved_at = 0.0

    def send(self, host: str, port: int, payload: bytes) -> None:
        """Send one datagram to ``host:port``; raises OSError, after which the next send starts afresh."""
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                now = time.monotonic()
                address = self._address
                # No address means no target either (_forget() drops both): it was to be resolved anyway.
                if address is None or self._target != (host, port) or now - self._resolved_at > self.resolve_seconds:
                    address = self._address = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4]
                    self._target, self._resolved_at = (host, port), now
                self._sock.sendto(payload, address)
            except OSError:
                self._forget()
                raise

    def after_fork(self) -> None:
        """In a forked child: a free lock and no socket, so that parent and child never share one."""
        self._lock = threading.Lock()
        self._forget()

    def _forget(self) -> None:
        if self._sock is not None:
            self._sock.close()  # in a forked child this closes the child's descriptor only
        self._sock, self._target, self._address = None, None, None


_socket = StatsdSocket()
# Celery's prefork pool forks its children from a parent that may have sent already (or hold the lock in
# another thread): each child starts with its own socket and lock.
os.register_at_fork(after_in_child=_socket.after_fork)


def send_batch(result: RelayResult) -> None:
    """Send one batch's counters in one datagram; does nothing without STATSD_HOST, never raises."""
    host = settings.STATSD_HOST
    if not host:
        return
    payload = "\n".join(batch_lines(result, settings.STATSD_PREFIX)).encode()
    try:
        _socket.send(host, settings.STATSD_PORT, payload)
    except OSError as exc:
        # statsd is fire and forget: an unreachable daemon must not stop the relay.
        logger.warning("statsd %s:%s: sending failed: %s", host, settings.STATSD_PORT, exc)


class StatsdBatches:
    """The engine's observer that sends each finished batch's counters to statsd."""

    def queue_locked(self, queue: str) -> None:
        pass

    def awaiting_confirms(self, queue: str, outstanding: int) -> None:
        pass

    def window_settled(self, queue: str, seconds: float, events: int) -> None:
        pass

    def batch_finished(self, result: RelayResult) -> None:
        send_batch(result)
