"""The worker's start and stop, one line each: what it relays and how, and that it stopped.

Celery's own lines say that a worker process is up; these say what the relay
will do in it, so that an operator reading a quiet log knows it is quiet
because nothing happens, not because nothing runs.
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def worker_ready(sender=None, **kwargs) -> None:
    """Connected to Celery's ``worker_ready``: one line with the queues and the schedule."""
    from ..models import RelayedQueue

    try:
        sources = list(RelayedQueue.objects.filter(enabled=True).values_list("source_url", flat=True))
        queues = f"{_plural(len(sources), 'enabled queue')} on {_plural(len(set(sources)), 'source database')}"
    except Exception as exc:  # a line about the start must never stop the start
        queues = f"the queues could not be read yet ({type(exc).__name__})"
    finally:
        # The main process's connection is not kept: a pool child forked later must not share it.
        connections.close_all()
    if not settings.RELAY_WAKEUPS:
        wakeups = "wake-ups off (RELAY_WAKEUPS)"
    else:
        wakeups = (f"queues watched every {settings.RELAY_WATCH_SECONDS:g} s"
                   f"{' and woken by NOTIFY (RELAY_NOTIFY)' if settings.RELAY_NOTIFY else ''}")
    logger.info("relay worker ready: %s; %s, sweep every %g s, slices of %g s, queue samples every %g s "
                "(Celery queue %s)", queues, wakeups, settings.RELAY_SWEEP_SECONDS, settings.RELAY_SLICE_SECONDS,
                settings.RELAY_SAMPLE_SECONDS, settings.CELERY_TASK_DEFAULT_QUEUE)


def worker_shutdown(sender=None, **kwargs) -> None:
    """Connected to Celery's ``worker_shutdown``: the running slices are done and the worker is gone."""
    logger.info("relay worker stopped; the PgQ consumers stay registered: events written from now on wait in PgQ "
                "for the next worker")
