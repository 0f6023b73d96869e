"""What a mikkoo file's monitoring and logging settings become here: the environment variables to set.

mikkoo kept ``Application/sentry_dsn``, ``Application/statsd`` and ``Logging``
in its file; this project reads them from the environment (settings.py), so
``import_mikkoo`` says which lines to set instead of storing them.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..core.connection_strings import MASK

_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def redact_dsn(dsn: str) -> str:
    """A Sentry DSN with its key hidden.

    >>> redact_dsn("https://0123abcd@o1.ingest.sentry.io/42")
    'https://***@o1.ingest.sentry.io/42'
    """
    parts = urlsplit(dsn)
    if "@" not in parts.netloc:
        return dsn
    return urlunsplit(parts._replace(netloc=f"{MASK}@{parts.netloc.rsplit('@', 1)[1]}"))


def environment_notes(application: dict[str, Any], logging: Any) -> list[str]:
    """One note per setting of the file that maps to the environment, naming the variables to set.

    >>> environment_notes({"statsd": {"enabled": True, "host": "stats", "port": 8126}}, {"root": {"level": "debug"}})
    ['Application/statsd: set STATSD_HOST=stats STATSD_PORT=8126', 'Logging: set LOG_LEVEL=DEBUG \
(handlers and formatters are not imported; LOG_FORMAT=plain or json)']
    """
    notes = []
    dsn = application.get("sentry_dsn")
    if dsn:
        notes.append(f"Application/sentry_dsn: set SENTRY_DSN={redact_dsn(str(dsn))} "
                     "(the key is not shown: copy the DSN from the file)")
    statsd = application.get("statsd")
    if isinstance(statsd, dict):
        if statsd.get("enabled", True) is False:
            notes.append("Application/statsd: disabled in the file; leave STATSD_HOST unset")
        else:
            notes.append(f"Application/statsd: set STATSD_HOST={statsd.get('host', 'localhost')} "
                         f"STATSD_PORT={statsd.get('port', 8125)}")
    if isinstance(logging, dict):
        level = _level(logging)
        where = "handlers and formatters are not imported; LOG_FORMAT=plain or json"
        notes.append(f"Logging: set LOG_LEVEL={level} ({where})" if level else f"Logging: not imported ({where})")
    return notes


def _level(config: dict[str, Any]) -> str | None:
    """The root level of a dictConfig, else that of mikkoo's own logger."""
    loggers = config.get("loggers")
    if not isinstance(loggers, dict):
        loggers = {}
    for candidate in (config.get("root"), loggers.get(""), loggers.get("mikkoo")):
        if isinstance(candidate, dict) and str(candidate.get("level", "")).upper() in _LEVELS:
            return str(candidate["level"]).upper()
    return None
