"""A logging formatter that writes each record as one JSON object per line (LOG_FORMAT=json)."""
from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# Attributes every LogRecord has; anything else was given with ``extra=`` and is worth keeping.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the ``extra`` fields and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in data:
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def use_settings_format(logger: logging.Logger, **kwargs: object) -> None:
    """Celery's ``after_setup_logger`` receiver: the worker writes in ``LOG_FORMAT`` too, wherever Celery writes.

    Celery replaces the handlers of the root logger with its own (to the
    console or ``--logfile``); with ``LOG_FORMAT=json`` they get this formatter.
    """
    from django.conf import settings

    if settings.LOG_FORMAT == "json":
        for handler in logger.handlers:
            handler.setFormatter(JsonFormatter())
