"""Installing mikkoo's audit SQL API and the relay's additions to it into a source database."""
from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import psycopg2
import psycopg2.extensions

from ..core.connection_strings import redact_url
from ..pgq.consumer import source_error

SQL_DIR = files("relay") / "sql"
MIKKOO_SQL = SQL_DIR / "mikkoo.sql"
RELAY_AUDIT_SQL = SQL_DIR / "mikkoo_relay_audit.sql"
#: Run in this order, in one transaction.
AUDIT_SQL_FILES = (MIKKOO_SQL, RELAY_AUDIT_SQL)

#: The key of the transaction-level advisory lock; the SQL files take the same one.
LOCK_NAME = "mikkoo-relay/audit-sql"
LOCK_SQL = "SELECT pg_advisory_xact_lock(('x' || substr(md5(%s), 1, 16))::bit(64)::bigint)"

INSTALLED = "installed"
UPGRADED = "upgraded"
CURRENT = "already current"

# Everything the files define, as text: equal before and after means the run changed nothing.
FINGERPRINT_SQL = """
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = 'mikkoo'),
     tbl AS (SELECT to_regclass('mikkoo.audit') AS oid)
SELECT md5(coalesce(string_agg(item, E'\\n' ORDER BY item), '')) FROM (
    SELECT 'schema ' || coalesce(obj_description(ns.oid, 'pg_namespace'), '') AS item FROM ns
    UNION ALL
    SELECT 'table ' || coalesce(obj_description(tbl.oid, 'pg_class'), '') FROM tbl WHERE tbl.oid IS NOT NULL
    UNION ALL
    SELECT 'function ' || pg_get_functiondef(p.oid) || coalesce(obj_description(p.oid, 'pg_proc'), '')
      FROM pg_proc p JOIN ns ON p.pronamespace = ns.oid
    UNION ALL
    SELECT concat_ws(' ', 'column', a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                     pg_get_expr(d.adbin, d.adrelid), col_description(a.attrelid, a.attnum))
      FROM tbl JOIN pg_attribute a ON a.attrelid = tbl.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
           || coalesce(obj_description(i.indexrelid, 'pg_class'), '')
      FROM tbl JOIN pg_index i ON i.indrelid = tbl.oid
) AS items
"""


@dataclass(frozen=True)
class InstallResult:
    """What :func:`install_audit_sql` did in one database."""

    #: ``"installed"`` (mikkoo.audit did not exist), ``"upgraded"`` or ``"already current"``.
    action: str
    #: Rows in mikkoo.audit after the run: every existing row is kept.
    audit_rows: int
    #: The database, without its password.
    source: str

    def summary(self) -> str:
        rows = f"{self.audit_rows} audit row{'' if self.audit_rows == 1 else 's'}"
        if self.action == INSTALLED:
            return f"installed the mikkoo audit SQL API in {self.source} ({rows})"
        if self.action == UPGRADED:
            return f"upgraded the mikkoo audit SQL API in {self.source} ({rows} kept)"
        return f"the mikkoo audit SQL API in {self.source} is already current ({rows})"


def audit_sql_files() -> list[tuple[str, str]]:
    """``(file name, SQL)`` of each file to run, in order."""
    return [(path.name, path.read_text()) for path in AUDIT_SQL_FILES]


def install_audit_sql(dsn: str, connect_timeout: int = 10) -> InstallResult:
    """Install or upgrade mikkoo's audit API and the relay's additions in the database at ``dsn``.

    Runs ``sql/mikkoo.sql`` then ``sql/mikkoo_relay_audit.sql`` in one
    transaction, under a transaction-level advisory lock so that two
    installers cannot race; either everything is installed or nothing is.
    Existing rows of ``mikkoo.audit``, privileges and producers keep working.
    Needs the ``pgq`` extension in that database.

    Raises :class:`relay.core.errors.SourceUnavailable` (without the password) when
    the database cannot be reached or the SQL fails.

    Example::

        install_audit_sql("postgres://relay@db/app").summary()
        # 'installed the mikkoo audit SQL API in postgres://relay@db/app (0 audit rows)'
    """
    files = audit_sql_files()
    try:
        conn = psycopg2.connect(dsn, connect_timeout=connect_timeout, application_name="mikkoo-relay")
    except psycopg2.Error as exc:
        raise source_error(dsn, exc, "connecting") from None
    doing = "installing the audit SQL"
    try:
        with conn, conn.cursor() as cur:  # one transaction: committed on success, rolled back on error
            cur.execute(LOCK_SQL, (LOCK_NAME,))
            cur.execute("SELECT to_regclass('mikkoo.audit') IS NOT NULL")
            existed = _value(cur)
            cur.execute(FINGERPRINT_SQL)
            before = _value(cur)
            for name, sql in files:
                doing = f"running {name}"
                cur.execute(sql)
            doing = "installing the audit SQL"
            cur.execute(FINGERPRINT_SQL)
            after = _value(cur)
            cur.execute("SELECT count(*) FROM mikkoo.audit")
            rows = _value(cur)
    except psycopg2.Error as exc:
        raise source_error(dsn, exc, doing) from None
    finally:
        conn.close()
    action = CURRENT if existed and before == after else UPGRADED if existed else INSTALLED
    return InstallResult(action=action, audit_rows=rows, source=redact_url(dsn))


def _value(cur: psycopg2.extensions.cursor) -> Any:
    """The one value of a query that returns one row of one column (an aggregate, or no FROM)."""
    row = cur.fetchone()
    if row is None:  # not with these queries; were it so, the install fails as on any SQL error
        raise psycopg2.ProgrammingError("no row to fetch")
    (value,) = row
    return value
