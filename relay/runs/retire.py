"""Retiring a queue: its PgQ consumer unregistered when its settings say so, then the queue deleted."""
from __future__ import annotations

from ..models import RelayedQueue
from ..pgq.consumer import PgqConsumer


def retire_queue(queue: RelayedQueue) -> str:
    """Delete ``queue``, first unregistering its PgQ consumer when its ``unregister`` setting is on.

    Raises :class:`RelayError` (and deletes nothing) when the source database
    cannot be reached to unregister. A worker stopping never unregisters: only this does.
    """
    if queue.unregister:
        consumer = PgqConsumer(queue.source_dsn(), queue.queue_name, queue.consumer_name)
        consumer.connect()
        try:
            removed = consumer.unregister()
        finally:
            consumer.close()
        note = (f"consumer {queue.consumer_name} unregistered from PgQ queue {queue.queue_name}"
                if removed else f"consumer {queue.consumer_name} was not registered on {queue.queue_name}")
    else:
        note = f"consumer {queue.consumer_name} kept on PgQ queue {queue.queue_name} (unregister is off)"
    queue.delete()
    return f"{queue.name} retired: {note}"
