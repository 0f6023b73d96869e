"""The one check of a PostgreSQL connection string given in an imported file (mikkoo's YAML, queue_splitter's INI)."""
from __future__ import annotations

from ..core.connection_strings import InvalidConnectionString
from ..core.errors import ConfigError
from ..validation import checked_postgres_dsn


def postgres_dsn(value: str, at: str) -> str:
    """A libpq string (continuation lines joined by spaces, as libpq reads them), a PostgreSQL URL or env:NAME.

    A URL comes back rebuilt percent-encoded. Raises :class:`ConfigError` at
    ``at`` in the words the admin uses too, never quoting the value (it may hold a password).
    """
    try:
        return checked_postgres_dsn(" ".join(value.strip().split("\n")))
    except InvalidConnectionString as exc:
        raise ConfigError(at, str(exc)) from None
