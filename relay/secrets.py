"""Keeping passwords out of what people and logs see."""
from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``.

    >>> redact_url("postgres://app:s3cret@db:5432/main")
    'postgres://app:***@db:5432/main'
    """
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return _redact_libpq_password(url) if "=" in url else url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{netloc}"))


_LIBPQ_PAIR = re.compile(r"(?P<key>\w+)\s*=\s*(?P<value>'(?:[^'\\]|\\.)*'|\S*)")
_QUERY_PAIR = re.compile(r"(?P<key>[^?&=#\s]+)=(?P<value>[^&#\s]*)")


def _redact_libpq_password(dsn: str) -> str:
    r"""Mask the password of a libpq key/value connection string (quoted or not) or of a URL's query.

    >>> _redact_libpq_password("dbname=app password = 'a b\\'c' host=db")
    'dbname=app password=*** host=db'
    >>> _redact_libpq_password("postgres://db/app?sslmode=require&password=s3cret")
    'postgres://db/app?sslmode=require&password=***'
    """
    pattern = _QUERY_PAIR if "://" in dsn else _LIBPQ_PAIR
    return pattern.sub(lambda m: f"{m['key']}={MASK}" if m["key"] == "password" else m[0], dsn)


def scrub(text: str, *secrets: str | None) -> str:
    """Remove every non-empty secret from ``text`` (for library error messages)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text
