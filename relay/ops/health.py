"""The health check engine shared by the /health/ endpoint and ``manage.py relay_health``.

For each enabled queue: its configuration is usable, the source database
answers, the target (RabbitMQ, or the target database of a split queue)
accepts a connection, pgqd ticks the queue, and the relay's consumer is not
lagging beyond the bound. Every problem is said in words an operator can act
on, without passwords.

The checks of all queues run concurrently, each connection bounded by
``RELAY_HEALTH_TIMEOUT_SECONDS``. The endpoint waits at most
``RELAY_HEALTH_DEADLINE_SECONDS`` and keeps results for
``RELAY_HEALTH_CACHE_SECONDS`` in Django's cache: a load balancer polling it
gets an answer within a second whatever is down, and the sources see one
check per queue per few seconds, never a pile of them. A check still running
at the deadline goes on in the background, and the next request gets its result.
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache

from ..core.connection_strings import redact_url, scrub, secrets_in
from ..core.errors import InvalidConfiguration, RelayError
from ..engine.settings import TargetSettings
from ..engine.targets import probe_target
from ..models import RelayedQueue
from ..pgq.database import first_line
from ..pgq.status import StatusReader

logger = logging.getLogger(__name__)

#: Checks of different queues run at most this many at a time, per process.
MAX_CONCURRENT_CHECKS = 8


@dataclass
class QueueHealth:
    """The checks of one queue: what was measured, and what is wrong."""

    queue: str
    checks: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def line(self) -> str:
        if self.problems:
            return f"{self.queue}: UNHEALTHY: " + "; ".join(self.problems)
        return (f"{self.queue}: ok (last tick {self.checks['last_tick_age_seconds']:.0f} s ago, "
                f"consumer lag {self.checks['consumer_lag_seconds']:.0f} s, "
                f"{self.checks['pending_events']} events pending)")


@dataclass
class HealthReport:
    """Every enabled queue's health; healthy when all are."""

    queues: list[QueueHealth]

    @property
    def healthy(self) -> bool:
        return all(q.healthy for q in self.queues)

    def as_dict(self, details: bool = True) -> dict[str, Any]:
        """The report as JSON; without ``details`` only healthy or not, overall and per queue (no hosts, no errors)."""
        if not details:
            return {"healthy": self.healthy, "queues": {q.queue: {"healthy": q.healthy} for q in self.queues}}
        return {"healthy": self.healthy,
                "queues": {q.queue: {"healthy": q.healthy, **q.checks, "problems": q.problems}
                           for q in self.queues}}


@dataclass(frozen=True)
class HealthCheck:
    """What checking one queue needs, as plain values read from the admin's rows (no ORM in the check's thread)."""

    queue: str
    queue_name: str
    consumer_name: str
    source_dsn: str = field(repr=False)
    #: The engine's settings of the queue's target: what to connect to, as the relay would.
    target: TargetSettings = field(repr=False)
    timeout: float = 2.0
    max_tick_age: float = 120.0
    max_lag: float = 300.0

    def key(self) -> str:
        """A cache key that changes with anything the check depends on (keyed: no secret can be guessed from it)."""
        material = repr(dataclasses.astuple(self)).encode()
        return "relay-health:" + hmac.new(settings.SECRET_KEY.encode(), material, hashlib.sha256).hexdigest()


def check_health(names: list[str] | None = None, *, deadline: float | None = None,
                 cached: bool = False) -> HealthReport:
    """Check every enabled queue (or those named); reads the bounds from the settings now.

    ``deadline``: answer after that many seconds at most, reporting the checks
    not finished by then as not answering (their results are cached when they
    come). ``cached``: use results younger than ``RELAY_HEALTH_CACHE_SECONDS``.
    """
    started = time.monotonic()
    queues = RelayedQueue.objects.filter(enabled=True).select_related("connection").order_by("name")
    if names:
        queues = queues.filter(name__in=names)
    results: dict[str, QueueHealth] = {}
    running: dict[str, tuple[HealthCheck, Future]] = {}
    for queue in queues:
        try:
            check = plan(queue)
        except InvalidConfiguration as exc:
            results[queue.name] = QueueHealth(queue.name, {"configuration": "invalid"},
                                              [f"invalid configuration: {exc}"])
            continue
        hit = cache.get(check.key()) if cached else None
        if hit is not None:
            results[queue.name] = hit
            continue
        future = _start(check)
        last = cache.get(check.key() + ":last") if cached and not future.done() else None
        if last is not None:
            # Stale while it is checked again in the background: only a queue never answered for is waited on.
            results[queue.name] = _stale(last)
        else:
            running[queue.name] = (check, future)
    if running:
        # The deadline counts from the call: reading the queues and their settings is part of the answer's time.
        remaining = None if deadline is None else max(0.0, deadline - (time.monotonic() - started))
        wait([future for _, future in running.values()], timeout=remaining)
    for name, (check, future) in running.items():
        results[name] = future.result() if future.done() else _not_answered(check, deadline)
    return HealthReport([results[name] for name in sorted(results)])


def plan(queue: RelayedQueue) -> HealthCheck:
    """What to check for ``queue``; raises InvalidConfiguration when its settings cannot be used."""
    engine_settings = queue.to_settings()
    return HealthCheck(
        queue=queue.name, queue_name=queue.queue_name, consumer_name=queue.consumer_name,
        source_dsn=engine_settings.source_dsn, target=engine_settings.target,
        timeout=settings.RELAY_HEALTH_TIMEOUT_SECONDS, max_tick_age=settings.RELAY_HEALTH_MAX_TICK_AGE_SECONDS,
        max_lag=settings.RELAY_HEALTH_MAX_LAG_SECONDS)


_executor: ThreadPoolExecutor | None = None
_running: dict[str, Future] = {}
_lock = threading.Lock()


def _start(check: HealthCheck) -> Future:
    """The running check of this queue and settings, started if none is: never two at once per process."""
    global _executor
    key = check.key()
    with _lock:
        future = _running.get(key)
        if future is None:
            if _executor is None:
                _executor = ThreadPoolExecutor(MAX_CONCURRENT_CHECKS, thread_name_prefix="relay-health")
            future = _executor.submit(_check_and_keep, check)
            _running[key] = future
            future.add_done_callback(lambda _: _forget(key))
        return future


def _forget(key: str) -> None:
    with _lock:
        _running.pop(key, None)


def _check_and_keep(check: HealthCheck) -> QueueHealth:
    health = run_check(check)
    try:
        cache.set(check.key(), health, settings.RELAY_HEALTH_CACHE_SECONDS)
        # The last answer, for a request that comes while the next check is still running.
        cache.set(check.key() + ":last", health, max(60.0, 12 * settings.RELAY_HEALTH_CACHE_SECONDS))
    except Exception:  # a cache that fails costs the next request a check, nothing more
        logger.warning("health: caching the check of %s failed", check.queue, exc_info=True)
    return health


def _stale(last: QueueHealth) -> QueueHealth:
    return dataclasses.replace(last, checks={**last.checks, "stale": True})


def _not_answered(check: HealthCheck, deadline: float | None) -> QueueHealth:
    last = cache.get(check.key() + ":last")
    if last is not None:
        return _stale(last)
    return QueueHealth(check.queue, {"source": "checking", "target": "checking"},
                       [f"no answer within {deadline:g} s (still checking)"])


def run_check(check: HealthCheck) -> QueueHealth:
    """Check one queue now; never raises (a failure of the check itself is reported as the queue's problem)."""
    health = QueueHealth(check.queue)
    try:
        _check_source(check, health)
        target = _check_target(check)
    except Exception as exc:  # a bug must cost this queue its check, not the others their answer
        reason = scrub(first_line(exc), *secrets_in(check.source_dsn), *check.target.secrets())
        logger.error("health: checking %s failed: %s: %s", check.queue, type(exc).__name__, reason)
        health.problems.append(f"the check failed: {type(exc).__name__}: {reason}")
        return health
    health.checks["target"] = "ok" if target is None else "unreachable"
    if target:
        health.problems.append(target)
    return health


def _check_source(check: HealthCheck, health: QueueHealth) -> None:
    checks, problems = health.checks, health.problems
    try:
        with StatusReader(check.source_dsn, check.timeout) as reader:
            state = reader.pgq_state(check.queue_name, check.consumer_name)
        checks["source"] = "ok"
    except RelayError as exc:
        checks["source"] = "unreachable"
        problems.append(str(exc))
        return
    tick_age = _seconds(state.ticker_lag)
    consumer_lag = _seconds(state.consumer_lag) if state.registered else None
    checks.update(last_tick_age_seconds=tick_age, consumer_lag_seconds=consumer_lag,
                  pending_events=state.pending_events if state.registered else None)
    if not state.queue_exists:
        problems.append(f"PgQ queue {check.queue_name} does not exist in {redact_url(check.source_dsn)}")
    elif tick_age is not None and tick_age > check.max_tick_age:
        problems.append(f"no PgQ tick for {tick_age:.0f} s (bound {check.max_tick_age:g} s): is pgqd running?")
    if state.queue_exists and not state.registered:
        problems.append(f"consumer {check.consumer_name} is not registered on PgQ queue {check.queue_name}")
    elif consumer_lag is not None and consumer_lag > check.max_lag:
        problems.append(f"consumer lag {consumer_lag:.0f} s is over the bound of {check.max_lag:g} s")


def _check_target(check: HealthCheck) -> str | None:
    """None when the queue's target accepts a connection, else why not."""
    try:
        probe_target(check.target, check.timeout)
    except RelayError as exc:
        return str(exc)
    return None


def _seconds(age: timedelta | None) -> float | None:
    return age.total_seconds() if age is not None else None
