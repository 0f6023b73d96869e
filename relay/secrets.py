"""Keeping passwords out of what people and logs see."""
from __future__ import annotations

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


def _redact_libpq_password(dsn: str) -> str:
    """Mask ``password=...`` in a libpq key/value connection string."""
    words = []
    for word in dsn.split():
        key, sep, _ = word.partition("=")
        words.append(f"{key}={MASK}" if sep and key.strip() == "password" else word)
    return " ".join(words)


def scrub(text: str, *secrets: str | None) -> str:
    """Remove every non-empty secret from ``text`` (for library error messages)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text
