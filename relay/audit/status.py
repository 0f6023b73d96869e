"""The audit status page's figures: per queue, what mikkoo.audit, PgQ and the relay say, and a verdict.

Everything is read from each queue's source database on a short, read-only
connection of its own with tight statement and lock timeouts, by bounded
queries: the partial index ``mikkoo.audit_outstanding`` finds outstanding
records, and counting stops at :data:`COUNT_LIMIT` records per queue.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from ..core.connection_strings import redact_url, scrub, secrets_in
from ..core.errors import RelayError, SourceUnavailable
from ..pgq.database import first_line
from ..pgq.status import PgqState, StatusReader
from ..validation import name_problem

logger = logging.getLogger(__name__)

ALL_DELIVERED = "all delivered"
BEHIND = "behind"
STUCK = "stuck"
FAILING = "failing"
VERDICTS = (ALL_DELIVERED, BEHIND, STUCK, FAILING)

#: Audit records counted per queue at most; beyond it the page shows lower bounds.
COUNT_LIMIT = 100_000
#: Outstanding records per page of the drill-down, and how deep it may page.
PAGE_SIZE = 50
MAX_OFFSET = 10_000
#: Characters of each payload the drill-down shows.
PAYLOAD_CHARS = 200

CHECK_SQL = """
SELECT to_regnamespace('pgq') IS NOT NULL,
       to_regclass('mikkoo.audit') IS NOT NULL,
       to_regprocedure('mikkoo.mark_confirmed(uuid[])') IS NOT NULL
"""
# A record is confirmed, or else dead-lettered, or else outstanding: the three add up to the audited.
AUDIT_SQL = """
SELECT counted.audited, counted.confirmed, counted.dead_lettered,
       (SELECT count(*) FROM (SELECT 1 FROM mikkoo.audit
                               WHERE queue = %(queue)s AND confirmed_at IS NULL AND dead_lettered_at IS NULL
                               LIMIT %(limit)s) AS outstanding),
       (SELECT now() - min(published_at) FROM mikkoo.audit
         WHERE queue = %(queue)s AND confirmed_at IS NULL AND dead_lettered_at IS NULL)
  FROM (SELECT count(*) AS audited, count(confirmed_at) AS confirmed,
               count(*) FILTER (WHERE confirmed_at IS NULL AND dead_lettered_at IS NOT NULL) AS dead_lettered
          FROM (SELECT confirmed_at, dead_lettered_at FROM mikkoo.audit
                 WHERE queue = %(queue)s LIMIT %(limit)s) AS records) AS counted
"""
OUTSTANDING_SQL = """
SELECT message_id::text, event_id, exchange, routing_key, left(payload, %(chars)s), published_at,
       now() - published_at
  FROM mikkoo.audit
 WHERE queue = %(queue)s AND confirmed_at IS NULL AND dead_lettered_at IS NULL
 ORDER BY published_at, event_id
 LIMIT %(limit)s OFFSET %(offset)s
"""


def stuck_after() -> timedelta:
    """How long an event may stay outstanding, or events wait for a tick or a batch, before a queue is stuck."""
    return timedelta(seconds=settings.AUDIT_STUCK_AFTER)


def format_age(age: timedelta | None) -> str:
    """A duration for people, to the two largest units.

    >>> format_age(timedelta(seconds=42)), format_age(timedelta(minutes=5)), format_age(timedelta(seconds=3725))
    ('42 s', '5 min', '1 h 2 min')
    """
    if age is None:
        return "-"
    seconds = max(0, int(age.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@dataclass(frozen=True)
class AuditCounts:
    """What ``mikkoo.audit`` says about one PgQ queue's audited events."""

    audited: int
    confirmed: int
    dead_lettered: int
    outstanding: int
    oldest_outstanding_age: timedelta | None = None
    #: More than COUNT_LIMIT records: audited, confirmed and dead-lettered are lower bounds.
    partial: bool = False
    #: More than COUNT_LIMIT outstanding records: outstanding is a lower bound.
    outstanding_partial: bool = False


@dataclass(frozen=True)
class SourceReading:
    """One look at a queue's source database."""

    pgq: PgqState
    #: None when the database has no audit API (then ``audit_note`` says why).
    audit: AuditCounts | None = None
    audit_note: str = ""


@dataclass(frozen=True)
class Verdict:
    """One plain word for a queue's state, and the reason for it."""

    state: str
    reason: str

    @property
    def css_class(self) -> str:
        return "verdict-" + self.state.replace(" ", "-")


def _plural(count: int, word: str, prefix: str = "") -> str:
    return f"{prefix}{count:,} {word}{'' if count == 1 else 's'}"


def _over(partial: bool) -> str:
    return "over " if partial else ""


def judge(reading: SourceReading | None, *, read_error: str = "", failing: bool = False,
          last_error: str = "", stuck_after: timedelta, invalid: str = "") -> Verdict:
    """The verdict on one queue: the first of these rules that applies.

    1. **failing**: the queue's configuration cannot be used, the source
       database cannot be read, or the relay's last run ended in an error.
    2. **stuck**: an audited event has been outstanding (neither confirmed nor
       dead-lettered) for longer than ``stuck_after``; or events have waited for
       a PgQ tick that long (is pgqd running?); or events have been pending for
       the relay's consumer and it has not finished a batch for that long (is
       the relay running?).
    3. **behind**: something is on its way and moving: outstanding audited
       events, events pending for the consumer or waiting for a tick; or the
       relay has not yet created the PgQ queue or registered its consumer.
    4. **all delivered**: nothing outstanding and nothing pending.
    """
    if invalid:
        return Verdict(FAILING, f"the queue's configuration is invalid: {invalid}")
    if read_error:
        return Verdict(FAILING, f"the source database cannot be read: {read_error}")
    if failing:
        return Verdict(FAILING, f"the relay's last run ended in an error: {last_error}")
    if reading is None:
        return Verdict(FAILING, "the source database was not read")
    audit, pgq = reading.audit, reading.pgq
    limit = format_age(stuck_after)
    outstanding = audit.outstanding if audit else 0
    if audit and outstanding and audit.oldest_outstanding_age and audit.oldest_outstanding_age > stuck_after:
        return Verdict(STUCK, f"{_plural(outstanding, 'audited event', _over(audit.outstanding_partial))} "
                              f"outstanding, the oldest for {format_age(audit.oldest_outstanding_age)} "
                              f"(limit {limit})")
    if pgq.new_events and pgq.ticker_lag and pgq.ticker_lag > stuck_after:
        return Verdict(STUCK, f"no PgQ tick for {format_age(pgq.ticker_lag)} with "
                              f"{_plural(pgq.new_events, 'event')} waiting for one: is pgqd running?")
    if pgq.registered and pgq.pending_events and pgq.consumer_lag and pgq.consumer_lag > stuck_after:
        return Verdict(STUCK, f"the relay has not finished a batch for {format_age(pgq.consumer_lag)} with "
                              f"{_plural(pgq.pending_events, 'event')} pending: is the relay running?")
    if not pgq.queue_exists:
        return Verdict(BEHIND, "the PgQ queue does not exist yet: the relay creates it on its first run")
    if not pgq.registered:
        return Verdict(BEHIND, "the relay's PgQ consumer is not registered yet: it registers on its first run")
    moving = []
    if audit and outstanding:
        moving.append(f"{_plural(outstanding, 'audited event', _over(audit.outstanding_partial))} outstanding "
                      f"(the oldest {format_age(audit.oldest_outstanding_age)} old)")
    if pgq.pending_events:
        moving.append(f"{_plural(pgq.pending_events, 'event')} pending in PgQ")
    if pgq.new_events:
        moving.append(f"{_plural(pgq.new_events, 'event')} waiting for a tick")
    if moving:
        return Verdict(BEHIND, "; ".join(moving))
    if audit is None:
        return Verdict(ALL_DELIVERED, "nothing pending in PgQ (no audit SQL: single events are not tracked)")
    if audit.dead_lettered:
        # Counted over the first COUNT_LIMIT records only when partial: a lower bound.
        dead = _plural(audit.dead_lettered, "audited event", "at least " if audit.partial else "")
        return Verdict(ALL_DELIVERED, f"nothing outstanding; {dead} dead-lettered (see Dead letters)")
    return Verdict(ALL_DELIVERED, "nothing outstanding: every audited event was confirmed by RabbitMQ")


class SourceReader(StatusReader):
    """The status reader of the audit page: PgQ's state of a queue and its audit records."""

    application_name = "mikkoo-relay audit page"

    def check(self) -> tuple[bool, str]:
        """Whether the audit API is there and, if not, why; raises when PgQ is missing."""
        has_pgq, has_table, has_api = self.query("checking for PgQ and the audit API", CHECK_SQL)[0]
        if not has_pgq:
            raise SourceUnavailable(f"source database {redact_url(self.dsn)}: PgQ is not installed")
        if has_api:
            return True, ""
        if has_table:
            return False, "mikkoo's audit table without the relay's additions: run install_sql to upgrade it"
        return False, "no audit SQL in this database: run install_sql to install it"

    def read(self, queue: str, consumer: str) -> SourceReading:
        """The PgQ state of ``queue`` and ``consumer`` and, when installed, the audit counts."""
        audited, note = self.check()
        pgq = self.pgq_state(queue, consumer)
        if not audited:
            return SourceReading(pgq=pgq, audit_note=note)
        total, confirmed, dead, outstanding, oldest = self.query(
            "reading mikkoo.audit", AUDIT_SQL, {"queue": queue, "limit": COUNT_LIMIT + 1})[0]
        audit = AuditCounts(
            audited=min(total, COUNT_LIMIT), confirmed=confirmed, dead_lettered=dead,
            outstanding=min(outstanding, COUNT_LIMIT), oldest_outstanding_age=oldest,
            partial=total > COUNT_LIMIT, outstanding_partial=outstanding > COUNT_LIMIT)
        return SourceReading(pgq=pgq, audit=audit)

    def outstanding(self, queue: str, offset: int, limit: int) -> list[OutstandingRecord]:
        """Outstanding audit records of ``queue``, oldest first."""
        audited, note = self.check()
        if not audited:
            raise SourceUnavailable(f"source database {redact_url(self.dsn)}: {note}")
        rows = self.query("reading mikkoo.audit", OUTSTANDING_SQL,
                          {"queue": queue, "chars": PAYLOAD_CHARS, "limit": limit, "offset": offset})
        return [OutstandingRecord(*row) for row in rows]


@dataclass(frozen=True)
class OutstandingRecord:
    """An audited event neither confirmed by RabbitMQ nor dead-lettered yet."""

    message_id: str
    event_id: int
    exchange: str
    routing_key: str
    payload: str
    published_at: datetime
    age: timedelta


@dataclass(frozen=True)
class QueueAudit:
    """Everything the audit status page shows for one relayed queue."""

    name: str
    queue_name: str
    consumer_name: str
    #: The source database's URL without its password.
    source: str
    verdict: Verdict
    reading: SourceReading | None = None
    #: Why the source database could not be read; empty when it could.
    error: str = ""
    last_run_at: datetime | None = None
    last_batch_at: datetime | None = None
    last_error: str = ""
    last_error_at: datetime | None = None
    #: Whether the relay's last run ended in that error.
    failing: bool = False


def read_queue(dsn: str, queue: str, consumer: str) -> tuple[SourceReading | None, str]:
    """The reading of one queue's source database, or None and the reason it failed (without a password)."""
    try:
        with SourceReader(dsn) as reader:
            return reader.read(queue, consumer), ""
    except RelayError as exc:
        return None, str(exc)
    except Exception as exc:  # one queue's failure must not cost the page the others
        reason = scrub(first_line(exc), *secrets_in(dsn))
        logger.error("audit status: reading %s failed: %s: %s", queue, type(exc).__name__, reason)
        return None, f"reading failed: {type(exc).__name__}: {reason}"


def readable_source(queue: Any) -> tuple[str | None, str]:
    """The source database to read for ``queue``, or None and why its configuration cannot be used."""
    problems = queue.configuration_problems()
    try:
        dsn = queue.source_dsn()
    except RelayError:
        return None, "; ".join(problems)
    # Figures can be read whenever the source database and the names can be used, even if the target cannot.
    names_ok = name_problem(queue.queue_name) is None and name_problem(queue.consumer_name) is None
    return (dsn if names_ok else None), "; ".join(problems)


def queue_audits(queues: Iterable[Any]) -> list[QueueAudit]:
    """The audit status of each relayed queue (``RelayedQueue`` rows, their ``status`` selected).

    The source databases are read in parallel, so one that does not answer
    costs the page its connect timeout once, not once per queue.
    """
    queues = list(queues)
    if not queues:
        return []
    limit = stuck_after()
    plans = [readable_source(queue) for queue in queues]

    def read(queue: Any, dsn: str | None) -> tuple[SourceReading | None, str]:
        return read_queue(dsn, queue.queue_name, queue.consumer_name) if dsn else (None, "")

    with ThreadPoolExecutor(max_workers=min(8, len(queues))) as pool:
        readings = list(pool.map(read, queues, [dsn for dsn, _ in plans]))
    audits = []
    for queue, (reading, error), (_, invalid) in zip(queues, readings, plans, strict=True):
        status = getattr(queue, "status", None)
        failing = bool(status and status.failing)
        audits.append(QueueAudit(
            name=queue.name, queue_name=queue.queue_name, consumer_name=queue.consumer_name,
            source=queue.display_source(), reading=reading, error=error,
            last_run_at=status.last_run_at if status else None,
            last_batch_at=status.last_batch_at if status else None,
            last_error=status.last_error if status else "",
            last_error_at=status.last_error_at if status else None,
            failing=failing,
            verdict=judge(reading, read_error=error, failing=failing, invalid=invalid,
                          last_error=status.last_error if status else "", stuck_after=limit),
        ))
    return audits
