"""The JSON log line (LOG_FORMAT=json): python-json-logger's formatter, with the fields this project documents."""
from __future__ import annotations

import logging
from datetime import UTC, datetime

from pythonjsonlogger.json import JsonFormatter as LibraryJsonFormatter


class JsonFormatter(LibraryJsonFormatter):
    """One JSON object per record: time, level, logger, message, the ``extra`` fields, any traceback and stack.

    The traceback is under ``exception`` and the stack (``stack_info=True``) under ``stack_info``.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger",
                                        "exc_info": "exception"})

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # ISO 8601 in UTC to the millisecond, as these lines always had it: logging's own time has no zone.
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def use_settings_format(logger: logging.Logger, **kwargs: object) -> None:
    """Celery's ``after_setup_logger`` receiver: the worker writes in ``LOG_FORMAT`` too, wherever Celery writes.

    Celery replaces the handlers of the root logger with its own (to the
    console or ``--logfile``); with ``LOG_FORMAT=json`` they get this formatter.
    """
    from django.conf import settings

    if settings.LOG_FORMAT == "json":
        for handler in logger.handlers:
            handler.setFormatter(JsonFormatter())
