"""Prometheus metrics of the relay: counters recorded batch by batch, PgQ's gauges read at scrape time.

A Celery prefork worker runs batches in child processes, so the counters use
prometheus_client's multiprocess mode: with ``PROMETHEUS_MULTIPROC_DIR`` set
(the same directory for the worker and the web app, emptied before they
start), every process writes its values there and the web app's ``/metrics``
adds them up. Without it, ``/metrics`` shows the web process's own values.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

from ..core.connection_strings import scrub, secrets_in
from ..core.errors import BrokerUnavailable, RelayError, SourceUnavailable, TargetUnavailable
from ..engine.results import RelayResult
from ..pgq.database import first_line
from ..pgq.status import PgqState, StatusReader

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

EVENTS_PUBLISHED = Counter("mikkoo_relay_events_published", "Events confirmed by the target.", ["queue"])
EVENTS_RETRIED = Counter("mikkoo_relay_events_retried", "Events handed back to PgQ to retry.", ["queue"])
EVENTS_DEAD_LETTERED = Counter("mikkoo_relay_events_dead_lettered", "Events given up on (dead letters).", ["queue"])
BATCHES = Counter("mikkoo_relay_batches", "PgQ batches finished.", ["queue"])
BATCH_SECONDS = Histogram("mikkoo_relay_batch_duration_seconds", "Time to relay and finish one batch.",
                          ["queue"], buckets=LATENCY_BUCKETS)
CONFIRM_SECONDS = Histogram("mikkoo_relay_confirm_wait_seconds",
                            "Time spent waiting for RabbitMQ's confirms of one window.", ["queue"],
                            buckets=LATENCY_BUCKETS)
# One process relays a queue at a time (the advisory lock), so the most recent value is the true one.
CONFIRMS_OUTSTANDING = Gauge("mikkoo_relay_confirms_outstanding", "Messages published and not yet confirmed.",
                             ["queue"], multiprocess_mode="mostrecent")
CONNECTION_UP = Gauge("mikkoo_relay_connection_up",
                      "1 when the last run reached the source database / the target, 0 when it failed to.",
                      ["queue", "connection"], multiprocess_mode="mostrecent")


class RelayMetrics:
    """The engine's observer that records each window and batch in Prometheus' counters; never raises."""

    def queue_locked(self, queue: str) -> None:
        pass

    def awaiting_confirms(self, queue: str, outstanding: int) -> None:
        try:
            CONFIRMS_OUTSTANDING.labels(queue).set(outstanding)
        except Exception:  # metrics must never fail a batch
            logger.exception("recording metrics failed")

    def window_settled(self, queue: str, seconds: float, events: int) -> None:
        try:
            CONFIRMS_OUTSTANDING.labels(queue).set(0)
            CONFIRM_SECONDS.labels(queue).observe(seconds)
        except Exception:  # metrics must never fail a batch
            logger.exception("recording metrics failed")

    def batch_finished(self, result: RelayResult) -> None:
        try:
            EVENTS_PUBLISHED.labels(result.queue).inc(result.published)
            EVENTS_RETRIED.labels(result.queue).inc(result.retried)
            EVENTS_DEAD_LETTERED.labels(result.queue).inc(result.dead_lettered)
            BATCHES.labels(result.queue).inc(result.batches)
            if result.batches:  # not a part of a batch that the next run goes on with
                BATCH_SECONDS.labels(result.queue).observe(result.seconds)
        except Exception:  # metrics must never fail a batch
            logger.exception("recording metrics failed")


def record_run(queue: str, error: RelayError | None = None) -> None:
    """Record whether a run reached its source database and its target (RabbitMQ or a target database)."""
    if isinstance(error, SourceUnavailable):
        # The target was not tried: what is known of it stays as it was.
        CONNECTION_UP.labels(queue, "source").set(0)
        return
    CONNECTION_UP.labels(queue, "source").set(1)
    CONNECTION_UP.labels(queue, "target").set(0 if isinstance(error, BrokerUnavailable | TargetUnavailable) else 1)


class PgqCollector(Collector):
    """PgQ's gauges of every enabled queue, asked at scrape time with short timeouts, the queues in parallel.

    A queue whose configuration cannot be used is not asked: it shows
    ``mikkoo_relay_config_valid`` 0 and ``mikkoo_relay_source_up`` 0, and the others go on.
    """

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from ..models import RelayedQueue

        pending = GaugeMetricFamily("mikkoo_relay_events_pending",
                                    "PgQ's estimate of events not yet relayed (get_consumer_info pending_events; "
                                    "forced ticks inflate it).",
                                    labels=["queue"])
        lag = GaugeMetricFamily("mikkoo_relay_consumer_lag_seconds",
                                "Age of the last batch the relay finished (PgQ's consumer lag).", labels=["queue"])
        tick = GaugeMetricFamily("mikkoo_relay_last_tick_age_seconds", "Seconds since the queue's last PgQ tick.",
                                 labels=["queue"])
        up = GaugeMetricFamily("mikkoo_relay_source_up", "1 when the scrape could read PgQ's state of the queue.",
                               labels=["queue"])
        valid = GaugeMetricFamily("mikkoo_relay_config_valid",
                                  "1 when the queue's configuration (and its connection's) can be used as stored.",
                                  labels=["queue"])
        readable = []
        for queue in RelayedQueue.objects.filter(enabled=True).select_related("connection").order_by("name"):
            problems = queue.configuration_problems()
            valid.add_metric([queue.name], 0 if problems else 1)
            if problems:
                logger.warning("queue=%s metrics: invalid configuration: %s", queue.name, problems[0])
                up.add_metric([queue.name], 0)
            else:
                readable.append((queue.name, queue.source_dsn(), queue.queue_name, queue.consumer_name))
        timeout = settings.RELAY_METRICS_PGQ_TIMEOUT_SECONDS
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(readable)))) as pool:
            states = list(pool.map(lambda q: _read_state(q, timeout), readable))
        for (name, *_), state in zip(readable, states, strict=True):
            up.add_metric([name], 0 if state is None else 1)
            if state is None:
                continue
            if state.registered and state.consumer_lag is not None:
                pending.add_metric([name], state.pending_events)
                lag.add_metric([name], state.consumer_lag.total_seconds())
            if state.ticker_lag is not None:
                tick.add_metric([name], state.ticker_lag.total_seconds())
        yield from (pending, lag, tick, up, valid)


def _read_state(queue: tuple[str, str, str, str], timeout: float) -> PgqState | None:
    name, dsn, queue_name, consumer_name = queue
    try:
        with StatusReader(dsn, timeout) as reader:
            return reader.pgq_state(queue_name, consumer_name)
    except RelayError as exc:
        logger.warning("queue=%s metrics: %s", name, exc)
    except Exception as exc:  # one queue's failure must not cost the others their gauges
        logger.warning("queue=%s metrics: reading PgQ failed: %s: %s", name, type(exc).__name__,
                       scrub(first_line(exc), *secrets_in(dsn)))
    return None


def exposition() -> bytes:
    """The text the /metrics endpoint serves: every process's relay metrics plus PgQ's gauges."""
    directory = settings.PROMETHEUS_MULTIPROC_DIR
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    scrape = CollectorRegistry()
    scrape.register(PgqCollector())
    return text + generate_latest(scrape)
