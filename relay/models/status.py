"""What the relay did and sees, per queue and per process: status rows, their states, samples, who is alive."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models

from .queues import RelayedQueue


class QueueState:
    """A queue's state in a word or three, as the queue list, the overview and its filters say it (one place)."""

    HEALTHY = "healthy"
    STUCK = "stuck"
    FAILING = "failing"
    BACKING_OFF = "backing off"
    NOT_REGISTERED = "consumer not registered"
    DISABLED = "disabled"
    #: In the order of the overview's summary: what needs a look first.
    ALL = (STUCK, FAILING, BACKING_OFF, NOT_REGISTERED, DISABLED, HEALTHY)


class QueueStatus(models.Model):
    """What the relay last did for a queue: when, how much, and its last error."""

    queue = models.OneToOneField(RelayedQueue, on_delete=models.CASCADE, related_name="status",
                                 verbose_name="queue", help_text="The relayed queue.")
    last_run_at = models.DateTimeField("last run", null=True, blank=True,
                                       help_text="When the relay last looked at the queue.")
    last_success_at = models.DateTimeField("last success", null=True, blank=True,
                                           help_text="When a run last ended without an error.")
    last_batch_at = models.DateTimeField("last batch", null=True, blank=True,
                                         help_text="When the relay last finished a batch of this queue.")
    last_error = models.TextField("last error", blank=True,
                                  help_text="The last error that stopped a run (never contains a password).")
    last_error_at = models.DateTimeField("last error at", null=True, blank=True,
                                         help_text="When the last error happened.")
    failures_in_a_row = models.PositiveIntegerField(
        "failures in a row", default=0,
        help_text="Runs that ended in an error since the last success; the schedule waits longer after each.")
    lease_until = models.DateTimeField(
        "held until", null=True, blank=True,
        help_text="A worker task is relaying the queue until then, unless it finishes sooner "
        "(the schedule does not start another meanwhile).")
    queued_at = models.DateTimeField(
        "task queued at", null=True, blank=True,
        help_text="A relay task for the queue has waited in Celery's queue since then; "
        "no other is queued until it starts.")
    backoff_until = models.DateTimeField(
        "backing off until", null=True, blank=True,
        help_text="After a failed run the schedule leaves the queue alone until then (1, 2, 4 ... 60 s).")
    consumer_registered_at = models.DateTimeField(
        "consumer registered at", null=True, blank=True,
        help_text="When the relay's PgQ consumer was registered (or found registered) in the source database. "
        "Empty: not registered yet; events written before it is are never seen by it.")
    registration_error = models.TextField(
        "registration error", blank=True,
        help_text="Why the PgQ consumer could not be registered the last time it was tried "
        "(never contains a password). The schedule keeps trying.")
    batches = models.PositiveBigIntegerField("batches", default=0, help_text="Batches finished, in total.")
    published = models.PositiveBigIntegerField("published", default=0,
                                               help_text="Events confirmed by RabbitMQ (or inserted into "
                                               "target queues), in total.")
    retried = models.PositiveBigIntegerField("retried", default=0,
                                             help_text="Events handed back to PgQ for a retry, in total.")
    dead_lettered = models.PositiveBigIntegerField("dead-lettered", default=0,
                                                   help_text="Events given up on, in total.")
    work_waiting_since = models.DateTimeField(
        "work waiting since", null=True, blank=True,
        help_text="Since when the sweep has seen events or a batch waiting for the queue; cleared when a slice "
        "leaves nothing behind. Long ago with no slice run since: the queue is stuck.")
    relayed_by = models.CharField(
        "relayed by", max_length=255, blank=True,
        help_text="The Celery worker whose task relays the queue now, or did last (while 'held until' is ahead).")

    class Meta:
        verbose_name = "queue status"
        verbose_name_plural = "queue statuses"

    def __str__(self) -> str:
        return f"status of {self.queue}"

    @property
    def failing(self) -> bool:
        """Whether the last run ended with an error."""
        return self.last_error_at is not None and (
            self.last_success_at is None or self.last_error_at > self.last_success_at)

    @property
    def registered(self) -> bool:
        """Whether the relay's PgQ consumer is known to be registered in the source database."""
        return self.consumer_registered_at is not None

    def state(self, now: datetime) -> str:
        """In a word or three: not registered, stuck, backing off, failing or healthy."""
        if not self.registered:
            return QueueState.NOT_REGISTERED
        if self.stuck(now):
            return QueueState.STUCK
        if self.failing:
            return QueueState.BACKING_OFF if self.backoff_until and self.backoff_until > now else QueueState.FAILING
        return QueueState.HEALTHY

    def stuck(self, now: datetime) -> bool:
        """Work has waited for more than :func:`stuck_after` and no slice has run or holds the queue since."""
        since = now - stuck_after()
        return (self.work_waiting_since is not None and self.work_waiting_since < since
                and (self.last_run_at is None or self.last_run_at < since)
                and (self.lease_until is None or self.lease_until < now)
                and (self.backoff_until is None or self.backoff_until < now))


def stuck_after() -> timedelta:
    """How long work may wait with no slice before its queue is called stuck: three sweep periods, 10 s at least."""
    return timedelta(seconds=max(10.0, 3 * settings.RELAY_SWEEP_SECONDS))

class QueueSample(models.Model):
    """One minute's look at a queue, recorded by the worker: PgQ's lag and pending events, and its relayed count.

    The queue overview draws its charts from these; beat's sampling task
    writes one per enabled queue every ``RELAY_SAMPLE_SECONDS`` and deletes
    those older than ``RELAY_SAMPLE_KEEP_HOURS``.
    """

    queue = models.ForeignKey(RelayedQueue, on_delete=models.CASCADE, related_name="samples", verbose_name="queue",
                              help_text="The relayed queue looked at.")
    taken_at = models.DateTimeField("taken at", help_text="When the sample was taken.")
    published = models.PositiveBigIntegerField(
        "published so far", help_text="The queue's count of published events then (its status); the difference "
        "between two samples over the time between them is the rate.")
    consumer_lag = models.FloatField(
        "consumer lag (s)", null=True, blank=True,
        help_text="Age of the last PgQ tick the relay's consumer finished (pgq.get_consumer_info lag). "
        "Empty: the source database could not be read, or the consumer is not registered.")
    pending_events = models.BigIntegerField(
        "pending events", null=True, blank=True,
        help_text="Events in ticks the consumer has not finished, PgQ's estimate (pgq.get_consumer_info). "
        "Empty: the source database could not be read, or the consumer is not registered.")

    class Meta:
        verbose_name = "queue sample"
        verbose_name_plural = "queue samples"
        indexes = [
            # A page of the overview reads its queues' last hour; pruning reads by age alone.
            models.Index(fields=["queue", "taken_at"], name="queue_sample_by_queue"),
            models.Index(fields=["taken_at"], name="queue_sample_by_age"),
        ]

    def __str__(self) -> str:
        return f"{self.queue} at {self.taken_at:%Y-%m-%d %H:%M:%S}"

class RelayProcess(models.Model):
    """A worker or beat's sweep as last seen: the overview and /health/ready tell from these who is alive."""

    WORKER = "worker"
    SWEEP = "sweep"

    name = models.CharField("name", max_length=255, unique=True,
                            help_text="The Celery worker's name (name@host), or 'sweep' for beat's sweep.")
    kind = models.CharField("kind", max_length=16, choices=[(WORKER, "worker"), (SWEEP, "beat's sweep")],
                            help_text="A worker (it heartbeats every couple of seconds), or beat's sweep.")
    seen_at = models.DateTimeField("seen at", help_text="When it last said it is alive (a sweep: when it ran).")
    watching = models.PositiveIntegerField(
        "source databases watched", default=0,
        help_text="For a worker: the source databases whose queues it watches for new events now.")

    class Meta:
        verbose_name = "relay process"
        verbose_name_plural = "relay processes"

    def __str__(self) -> str:
        return self.name
