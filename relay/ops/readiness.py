"""Liveness and readiness: can this process answer, and can the relay do its job now (one engine for both).

Live: the process answers and reaches Django's database (what a restart
would cure). Ready: live, Celery's broker accepts a connection, a worker was
seen within ``RELAY_WORKER_SEEN_SECONDS``, beat's sweep ran within a few
sweep periods, and every enabled queue is healthy (:mod:`.health`: its source
database and target answer). The broker probe runs beside the queues' checks,
under the same deadline, and its answer is kept like theirs.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import Error as DjangoDatabaseError
from django.db import connection
from django.utils import timezone
from kombu import Connection

from ..core.connection_strings import redact_url, scrub, secrets_in
from ..pgq.database import first_line
from .health import HealthReport, check_health
from .processes import liveness

logger = logging.getLogger(__name__)

BROKER_CACHE_KEY = "relay-health:celery-broker"
_broker_probe = ThreadPoolExecutor(1, thread_name_prefix="relay-health-broker")


@dataclass
class ServiceHealth:
    """The relay as a whole: Django's database, Celery's broker, workers and beat."""

    checks: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


def check_live() -> ServiceHealth:
    """Whether this process reaches Django's database."""
    health = ServiceHealth()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        health.checks["django_database"] = "ok"
    except DjangoDatabaseError as exc:
        health.checks["django_database"] = "unreachable"
        health.problems.append(f"Django's database: {first_line(exc)}")
    return health


def _probe_celery_broker() -> None:
    url = settings.CELERY_BROKER_URL
    try:
        with Connection(url, connect_timeout=settings.RELAY_HEALTH_TIMEOUT_SECONDS) as broker:
            broker.ensure_connection(max_retries=1)
        answer = "ok"
    except Exception as exc:  # any failure to connect is the answer, in words without the password
        answer = f"{redact_url(url)}: {scrub(first_line(exc), *secrets_in(url))}"
    cache.set(BROKER_CACHE_KEY, answer, settings.RELAY_HEALTH_CACHE_SECONDS)


@dataclass
class Readiness:
    """The relay as a whole and each enabled queue."""

    service: ServiceHealth
    queues: HealthReport

    @property
    def healthy(self) -> bool:
        return self.service.healthy and self.queues.healthy

    def as_dict(self, details: bool = True) -> dict[str, Any]:
        """As JSON; without ``details`` only healthy or not, overall, for the service and per queue."""
        service: dict[str, Any] = {"healthy": self.service.healthy}
        if details:
            service.update(self.service.checks, problems=self.service.problems)
        return {**self.queues.as_dict(details), "healthy": self.healthy, "service": service}


def check_ready(deadline: float, cached: bool = True) -> Readiness:
    """The relay and every enabled queue, answering within ``deadline`` seconds whatever is down."""
    started = time.monotonic()

    def remaining() -> float:
        return max(0.0, deadline - (time.monotonic() - started))

    probe = _broker_probe.submit(_probe_celery_broker) if not cached or cache.get(BROKER_CACHE_KEY) is None \
        else None
    service = check_live()
    if not service.healthy:
        return Readiness(service, HealthReport([]))
    alive = liveness(timezone.now())
    service.checks.update(workers=[worker.name for worker in alive.workers],
                          sweep_age_seconds=None if alive.sweep is None else alive.sweep.age.total_seconds())
    service.problems += alive.problems
    queues = check_health(deadline=remaining(), cached=cached)
    if probe is not None:
        try:
            probe.result(timeout=remaining())
        except TimeoutError:
            pass  # still connecting: its answer is kept when it comes
    broker = cache.get(BROKER_CACHE_KEY) or f"no answer within {deadline:g} s (still checking)"
    service.checks["celery_broker"] = "ok" if broker == "ok" else "unreachable"
    if broker != "ok":
        service.problems.append(f"Celery's broker: {broker}")
    return Readiness(service, queues)
