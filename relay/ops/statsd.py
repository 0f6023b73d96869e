"""The relay's counters sent to statsd (mikkoo's ``Application/statsd``) over UDP, when STATSD_HOST is set."""
from __future__ import annotations

import logging
import re
import socket

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


def send_batch(result: RelayResult) -> None:
    """Send one batch's counters in one datagram; does nothing without STATSD_HOST, never raises."""
    host = settings.STATSD_HOST
    if not host:
        return
    payload = "\n".join(batch_lines(result, settings.STATSD_PREFIX)).encode()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(payload, (host, settings.STATSD_PORT))
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
