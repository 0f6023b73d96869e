"""What is worth a line at INFO: routine lines of the relay's own work are kept for DEBUG (settings.LOGGING).

An idle worker runs the sweep every two seconds; Celery would say so in three
lines each time (beat's "Sending due task", the worker's "received" and
"succeeded"), 90 lines a minute in which the lines that matter drown. These
filters sit on the loggers that write such lines and pass them on only when
that logger is enabled for DEBUG, marked DEBUG: ``--loglevel DEBUG`` (or
``LOG_LEVEL=DEBUG``) shows them again. Everything else, warnings and errors
of these tasks included, passes untouched.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable


def _demoted(record: logging.LogRecord) -> bool:
    """Mark ``record`` DEBUG; whether its logger still wants it."""
    record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


class RoutineTaskLines(logging.Filter):
    """Celery's INFO lines about the named tasks (sent by beat, received, succeeded) become DEBUG lines."""

    def __init__(self, tasks: Iterable[str] = ()) -> None:
        super().__init__()
        self.tasks = frozenset(tasks)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not self._names_routine_task(record):
            return True
        return _demoted(record)

    def _names_routine_task(self, record: logging.LogRecord) -> bool:
        # celery.app.trace and celery.worker.strategy pass the task's request as ``extra={"data": ...}``;
        # celery.beat passes the entry's name and task as the message's arguments.
        data = getattr(record, "data", None)
        if isinstance(data, dict):
            return data.get("name") in self.tasks
        args = record.args if isinstance(record.args, tuple) else ()
        return any(isinstance(arg, str) and arg in self.tasks for arg in args)


class EmptyBatchLines(logging.Filter):
    """The engine's line for a batch without events (pgqd ticks idle queues) becomes a DEBUG line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or getattr(record, "events", None) != 0:
            return True
        return _demoted(record)
