"""The one check of a PostgreSQL connection string given in an imported file (mikkoo's YAML, queue_splitter's INI)."""
from __future__ import annotations

from ..core.errors import ConfigError
from ..core.secrets import POSTGRES_SCHEMES, InvalidConnectionString, check_postgres_dsn, is_url, url_scheme
from ..secret_refs import reference_name

EXPECTED = "expected a libpq connection string (dbname=... host=...) or a postgresql:// URL"


def postgres_dsn(value: str, at: str) -> str:
    """A libpq string (continuation lines joined by spaces, as libpq reads them), a PostgreSQL URL or env:NAME.

    A URL comes back rebuilt percent-encoded. Raises :class:`ConfigError` at
    ``at``, never quoting the value (it may hold a password).
    """
    value = value.strip()
    if reference_name(value) is not None:
        return value
    if is_url(value):
        if url_scheme(value) not in POSTGRES_SCHEMES:
            raise ConfigError(at, EXPECTED)
    elif "=" not in value:
        raise ConfigError(at, EXPECTED)
    else:
        value = " ".join(value.split("\n"))
    try:
        return check_postgres_dsn(value)
    except InvalidConnectionString as exc:
        raise ConfigError(at, f"{EXPECTED}: {exc}") from None
