"""The health check engine shared by the /health/ endpoint and ``manage.py relay_health``.

For each enabled queue: the source database answers, the target (RabbitMQ, or
the target database of a split queue) accepts a connection, pgqd ticks the
queue, and the relay's consumer is not lagging beyond the bound. Every
problem is said in words an operator can act on, without passwords.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg2
from django.conf import settings

from .errors import RelayError
from .models import RelayedQueue
from .pgq_status import StatusReader
from .publisher import Publisher
from .secrets import redact_url


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

    def as_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy,
                "queues": {q.queue: {"healthy": q.healthy, **q.checks, "problems": q.problems}
                           for q in self.queues}}


def check_health(names: list[str] | None = None) -> HealthReport:
    """Check every enabled queue (or those named); reads the bounds from the settings now."""
    queues = RelayedQueue.objects.filter(enabled=True).select_related("connection").order_by("name")
    if names:
        queues = queues.filter(name__in=names)
    return HealthReport([check_queue(queue) for queue in queues])


def check_queue(queue: RelayedQueue) -> QueueHealth:
    timeout = settings.RELAY_HEALTH_TIMEOUT_SECONDS
    health = QueueHealth(queue.name)
    checks, problems = health.checks, health.problems
    try:
        with StatusReader(queue.source_url, timeout) as reader:
            state = reader.pgq_state(queue.queue_name, queue.consumer_name)
        checks["source"] = "ok"
    except RelayError as exc:
        checks["source"] = "unreachable"
        problems.append(str(exc))
        state = None
    if state is not None:
        tick_age = _seconds(state.ticker_lag)
        consumer_lag = _seconds(state.consumer_lag) if state.registered else None
        checks.update(last_tick_age_seconds=tick_age, consumer_lag_seconds=consumer_lag,
                      pending_events=state.pending_events if state.registered else None)
        max_tick_age, max_lag = settings.RELAY_HEALTH_MAX_TICK_AGE_SECONDS, settings.RELAY_HEALTH_MAX_LAG_SECONDS
        if not state.queue_exists:
            problems.append(f"PgQ queue {queue.queue_name} does not exist in {redact_url(queue.source_url)}")
        elif tick_age is not None and tick_age > max_tick_age:
            problems.append(f"no PgQ tick for {tick_age:.0f} s (bound {max_tick_age:g} s): is pgqd running?")
        if state.queue_exists and not state.registered:
            problems.append(f"consumer {queue.consumer_name} is not registered on PgQ queue {queue.queue_name}")
        elif consumer_lag is not None and consumer_lag > max_lag:
            problems.append(f"consumer lag {consumer_lag:.0f} s is over the bound of {max_lag:g} s")
    target = _check_target(queue, timeout)
    checks["target"] = "ok" if target is None else "unreachable"
    if target:
        problems.append(target)
    return health


def _check_target(queue: RelayedQueue, timeout: float) -> str | None:
    """None when the queue's target accepts a connection, else why not."""
    if queue.target == RelayedQueue.Target.POSTGRES:
        try:
            psycopg2.connect(queue.target_url, connect_timeout=max(1, round(timeout))).close()
        except psycopg2.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return f"target database {redact_url(queue.target_url)}: connecting failed: {first}"
        return None
    broker = queue.connection.to_settings()
    broker = dataclasses.replace(broker, connect_timeout=min(broker.connect_timeout, timeout))
    publisher = Publisher(broker, confirm=False)
    try:
        publisher.connect()
    except RelayError as exc:
        return str(exc)
    finally:
        publisher.close()
    return None


def _seconds(age: timedelta | None) -> float | None:
    return age.total_seconds() if age is not None else None
