"""The queue overview's figures: each queue's state, lag, rate, pending events and last hour, a page at a time.

Nothing is read from the source databases: the worker's samples
(:mod:`relay.scheduling.samples`) carry PgQ's figures. A page costs the same
few queries however many queues there are: the states counted, the page's
queues with their status (and the paginator's count), and the page's samples
of the last hour.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, NamedTuple

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Case, CharField, Count, F, Q, QuerySet, Value, When
from django.utils.safestring import SafeString

from ..audit.status import format_age
from ..models import QueueSample, QueueState, RelayedQueue, stuck_after
from .charts import Series, line_chart
from .processes import Liveness, liveness

STATES = QueueState.ALL

PAGE_SIZE = 50
#: How far back the charts look.
WINDOW = timedelta(hours=1)


def sample_period() -> timedelta:
    return timedelta(seconds=settings.RELAY_SAMPLE_SECONDS)


def max_gap() -> timedelta:
    """Samples further apart than this have a gap between them: the worker (or its beat) was not running."""
    return sample_period() * 2.5


def state_of(now: datetime) -> Case:
    """``QueueStatus.state()`` in SQL, and *disabled*, so that queues are counted and filtered by state in one query.

    Kept in step with :meth:`relay.models.QueueStatus.state` (a test compares them).
    """
    failing = (Q(status__last_error_at__isnull=False)
               & (Q(status__last_success_at__isnull=True) | Q(status__last_error_at__gt=F("status__last_success_at"))))
    since = now - stuck_after()
    stuck = (Q(status__work_waiting_since__lt=since)
             & (Q(status__last_run_at__isnull=True) | Q(status__last_run_at__lt=since))
             & (Q(status__lease_until__isnull=True) | Q(status__lease_until__lt=now))
             & (Q(status__backoff_until__isnull=True) | Q(status__backoff_until__lt=now)))
    return Case(
        When(enabled=False, then=Value(QueueState.DISABLED)),
        When(Q(status__isnull=True) | Q(status__consumer_registered_at__isnull=True),
             then=Value(QueueState.NOT_REGISTERED)),
        When(stuck, then=Value(QueueState.STUCK)),
        When(failing & Q(status__backoff_until__gt=now), then=Value(QueueState.BACKING_OFF)),
        When(failing, then=Value(QueueState.FAILING)),
        default=Value(QueueState.HEALTHY), output_field=CharField())


def with_state(queues: QuerySet, now: datetime) -> QuerySet:
    return queues.annotate(state=state_of(now))


def state_counts(now: datetime) -> list[tuple[str, int]]:
    """How many queues are in each state (those with any), in the order of :data:`STATES`: one query."""
    counted = dict(with_state(RelayedQueue.objects.all(), now).order_by().values_list("state")
                   .annotate(n=Count("pk")).values_list("state", "n"))
    return [(state, counted[state]) for state in STATES if counted.get(state)]


@dataclass(frozen=True)
class QueueRow:
    """One queue on the overview."""

    pk: int
    name: str
    queue_name: str
    consumer_name: str
    target: str
    enabled: bool
    state: str
    last_error: str
    last_error_at: datetime | None
    failing: bool
    #: From the last sample, when it is recent (else None: see ``sampled_at``).
    consumer_lag: float | None
    pending_events: int | None
    events_per_second: float | None
    sampled_at: datetime | None
    chart: SafeString | None
    #: What the chart shows, in words (its title), and its scales in short.
    chart_label: str
    chart_peaks: str
    #: The worker whose task holds the queue now ("" when none does).
    relayed_by: str = ""

    @property
    def css_class(self) -> str:
        return "state-" + self.state.replace(" ", "-")

    @property
    def lag_text(self) -> str:
        return "-" if self.consumer_lag is None else format_age(timedelta(seconds=self.consumer_lag))

    @property
    def rate_text(self) -> str:
        return _rate_text(self.events_per_second)

    @property
    def pending_text(self) -> str:
        return "-" if self.pending_events is None else f"{self.pending_events:,}"


class Sample(NamedTuple):
    """The figures of a :class:`~relay.models.QueueSample` the page uses."""

    taken_at: datetime
    published: int
    consumer_lag: float | None
    pending_events: int | None


def rates(samples: list[Sample]) -> list[tuple[datetime, float | None]]:
    """Events published per second between each sample and the one before it (None across a gap or a reset).

    >>> t = datetime(2026, 1, 1)
    >>> rates([Sample(t, 0, None, None), Sample(t + timedelta(seconds=60), 600, None, None),
    ...        Sample(t + timedelta(seconds=120), 0, None, None)])
    [(datetime.datetime(2026, 1, 1, 0, 1), 10.0), (datetime.datetime(2026, 1, 1, 0, 2), None)]
    """
    points = []
    for before, after in pairwise(samples):
        seconds = (after.taken_at - before.taken_at).total_seconds()
        # A count that went down was reset (its status row made anew): no rate across it.
        rate = (after.published - before.published) / seconds if seconds > 0 and after.published >= before.published \
            else None
        points.append((after.taken_at, rate))
    return points


def _rate_text(rate: float | None) -> str:
    """Events per second as read at a glance: "-", "0", "2.5", "1,234"."""
    if rate is None:
        return "-"
    return "0" if rate == 0 else f"{rate:,.1f}" if rate < 10 else f"{rate:,.0f}"


def queue_row(queue: Any, samples: list[Sample], now: datetime) -> QueueRow:
    """A queue (annotated with ``state``, its ``status`` selected) and its samples of the window, oldest first."""
    status = getattr(queue, "status", None)
    recent = samples and now - samples[-1].taken_at <= max_gap()
    rate_points = rates(samples)
    last = samples[-1] if recent else None
    rate_now = (rate_points[-1][1] if last is not None and rate_points and rate_points[-1][0] == last.taken_at
                else None)
    chart, label, peaks = None, "no samples in the last hour", ""
    if samples:
        lag_points = [(s.taken_at, s.consumer_lag) for s in samples]
        rate_series = Series(rate_points, "rate", area=True, floor=1.0)
        lag_series = Series(lag_points, "lag", floor=1.0)
        lag_peak = format_age(timedelta(seconds=lag_series.peak))
        if any(rate is not None for _, rate in rate_points):
            rate_peak = _rate_text(rate_series.peak)
            label = f"last hour: up to {rate_peak} events/s published, consumer lag up to {lag_peak}"
            peaks = f"up to {rate_peak}/s, lag up to {lag_peak}"
        else:  # one sample, or none since a reset: a rate needs two
            label = f"last hour: consumer lag up to {lag_peak}; the rate needs a second sample"
            peaks = f"lag up to {lag_peak}; rate after the next sample"
        chart = line_chart([rate_series, lag_series], now - WINDOW, now, max_gap(), label)
    return QueueRow(
        pk=queue.pk, name=queue.name, queue_name=queue.queue_name, consumer_name=queue.consumer_name,
        target=queue.get_target_display(), enabled=queue.enabled, state=queue.state,
        last_error=status.last_error if status else "", last_error_at=status.last_error_at if status else None,
        failing=bool(status and status.failing),
        consumer_lag=last.consumer_lag if last else None, pending_events=last.pending_events if last else None,
        events_per_second=rate_now, sampled_at=samples[-1].taken_at if samples else None,
        chart=chart, chart_label=label, chart_peaks=peaks,
        relayed_by=status.relayed_by if status and status.lease_until and status.lease_until > now else "")


@dataclass(frozen=True)
class Overview:
    """One page of the overview."""

    page: Page
    rows: list[QueueRow]
    counts: list[tuple[str, int]]
    total: int
    state: str | None
    read_at: datetime
    #: The newest sample on the page; None when the page has none in the window.
    sampled_at: datetime | None
    #: The workers seen lately and beat's last sweep.
    alive: Liveness

    @property
    def sample_age(self) -> str:
        return format_age(self.read_at - self.sampled_at) if self.sampled_at else "-"


def overview(now: datetime, page_number: Any = 1, state: str | None = None) -> Overview:
    """The ``page_number``-th page of queues (only those in ``state``, if given), by name."""
    counts = state_counts(now)
    state = state if state in STATES else None
    queues = with_state(RelayedQueue.objects.select_related("status"), now).order_by("name")
    if state:
        queues = queues.filter(state=state)
    page = Paginator(queues, PAGE_SIZE).get_page(page_number)
    listed = list(page.object_list)
    by_queue: dict[int, list[Sample]] = {queue.pk: [] for queue in listed}
    # Tuples, not model instances: a page's hour is 3,000 samples, and building models was most of its time.
    for queue_id, taken_at, published, consumer_lag, pending_events in (
            QueueSample.objects
            .filter(queue_id__in=list(by_queue), taken_at__gte=now - WINDOW - max_gap())
            .order_by("queue_id", "taken_at")
            .values_list("queue_id", "taken_at", "published", "consumer_lag", "pending_events")):
        by_queue[queue_id].append(Sample(taken_at, published, consumer_lag, pending_events))
    rows = [queue_row(queue, by_queue[queue.pk], now) for queue in listed]
    newest = max((row.sampled_at for row in rows if row.sampled_at), default=None)
    return Overview(page=page, rows=rows, counts=counts, total=sum(n for _, n in counts), state=state, read_at=now,
                    sampled_at=newest, alive=liveness(now))
