"""One PostgreSQL connection whose library errors become the relay's own, naming the database without its password."""
from __future__ import annotations

from typing import Any, Self

import psycopg2

from ..core.connection_strings import redact_url, scrub, secrets_in
from ..core.errors import RelayError


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def describe_failure(role: str, dsn: str, exc: BaseException, doing: str) -> str:
    """``<role> <url without password>: <doing> failed: <first line of the error, scrubbed>``."""
    return f"{role} {redact_url(dsn)}: {doing} failed: {scrub(first_line(exc), *secrets_in(dsn))}"


class Database:
    """A psycopg2 connection to one database; subclasses name their role and their error class.

    With ``connection`` it works on a connection someone else opened and will
    close (a worker process keeps one per database for every queue it relays):
    :meth:`close` then only lets go of it.
    """

    role = "database"
    error_class: type[RelayError] = RelayError
    application_name = "mikkoo-relay"
    connect_timeout = 5

    def __init__(self, dsn: str, connection: Any = None) -> None:
        self.dsn = dsn
        self._conn: Any = connection
        self._borrowed = connection is not None

    def __enter__(self) -> Self:
        self.connect()
        try:
            self.opened()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def opened(self) -> None:
        """What a subclass does on a fresh connection before it is used (as a context manager)."""

    def error(self, exc: BaseException, doing: str) -> RelayError:
        return self.error_class(describe_failure(self.role, self.dsn, exc, doing))

    def connect(self) -> None:
        try:
            self._conn = psycopg2.connect(
                self.dsn, connect_timeout=self.connect_timeout, application_name=self.application_name,
                keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3,
            )
        except psycopg2.Error as exc:
            raise self.error(exc, "connecting") from None

    def close(self) -> None:
        if self._conn is not None and not self._borrowed and not self._conn.closed:
            self._conn.close()
        self._conn = None

    @property
    def connection(self) -> Any:
        """The psycopg2 connection, for others to work on (``Database(dsn, connection=...)``)."""
        return self._conn

    @property
    def broken(self) -> bool:
        """Whether the connection is gone: closed, or lost by the server or the network."""
        return self._conn is None or bool(self._conn.closed)

    def _run(self, doing: str, sql: str, params: Any = None, fetch: bool = True) -> list[tuple[Any, ...]]:
        try:
            with self._conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if fetch and cur.description else []
        except psycopg2.Error as exc:
            self._rollback_quietly()
            raise self.error(exc, doing) from None

    def _rollback_quietly(self) -> None:
        try:
            self._conn.rollback()
        except psycopg2.Error:
            pass

    def commit(self, doing: str) -> None:
        try:
            self._conn.commit()
        except psycopg2.Error as exc:
            raise self.error(exc, doing) from None
