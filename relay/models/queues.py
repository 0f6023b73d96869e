"""Relayed queues: a PgQ queue, and where its events go."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from ..core.connection_strings import InvalidConnectionString, redact_url
from ..engine.settings import QueueSettings
from ..fields import SecretField
from ..validation import (
    MAX_FAILURES,
    RETRY_DELAY,
    WAIT_DURATION,
    checked_postgres_dsn,
    validate_name,
    validate_secret_text,
)
from .connections import BrokerConnection
from .engine_settings import ChecksItsSettings, postgres_dsn, queue_settings, secret_reference_errors


class RelayedQueue(ChecksItsSettings, models.Model):
    """A PgQ queue whose events are relayed to a RabbitMQ connection or split into queues of another database."""

    class Target(models.TextChoices):
        """Where a queue's events go."""

        RABBITMQ = "rabbitmq", "RabbitMQ"
        POSTGRES = "postgres", "PostgreSQL queues (queue_splitter)"

    name = models.SlugField(
        "name", max_length=100, unique=True,
        help_text="Name used by relay_once and the schedule; usually the PgQ queue name.",
    )
    queue_name = models.CharField("PgQ queue", max_length=255, validators=[validate_name],
                                  help_text="The PgQ queue to consume. Created if missing.")
    source_url = SecretField(
        "source PostgreSQL URL", max_length=1000, validators=[validate_secret_text],
        help_text="postgres:// URL or libpq connection string of the database the queue "
        "lives in, or env:NAME to read it from the environment variable NAME. Stored encrypted; "
        "never shown back with its password: leave blank to keep it.",
    )
    consumer_name = models.CharField(
        "consumer name", max_length=255, default="mikkoo", validators=[validate_name],
        help_text="PgQ consumer to register and read as (mikkoo's default: mikkoo).",
    )
    target = models.CharField(
        "target", max_length=20, choices=Target.choices, default=Target.RABBITMQ,
        help_text="RabbitMQ: each event is published to the RabbitMQ connection. PostgreSQL queues: "
        "each event is inserted into the PgQ queue its ev_extra1 names in the target database, "
        "each batch exactly once (Skytools' queue_splitter).",
    )
    connection = models.ForeignKey(
        BrokerConnection, on_delete=models.PROTECT, related_name="queues", null=True, blank=True,
        verbose_name="RabbitMQ connection",
        help_text="Where this queue's events are published. Required for the RabbitMQ target.",
    )
    target_url = SecretField(
        "target PostgreSQL URL", max_length=1000, blank=True, validators=[validate_secret_text],
        help_text="For the PostgreSQL target: postgres:// URL or libpq connection string of the database "
        "that holds the target queues (PgQ installed), or env:NAME. Stored encrypted; never shown back with "
        "its password: leave blank to keep it.",
    )
    create_target_queues = models.BooleanField(
        "create target queues", default=True,
        help_text="For the PostgreSQL target: create a missing target queue (pgq.create_queue). Off: events "
        "for a missing queue are retried, then dead-lettered after max failures.",
    )
    enabled = models.BooleanField("enabled", default=True,
                                  help_text="Disabled queues are not relayed by the schedule.")
    confirm = models.BooleanField(
        "publisher confirms", default=True,
        help_text="Wait for RabbitMQ to confirm each message before finishing a batch. "
        "Off: publish without confirms, faster but a broker crash can lose messages.",
    )
    persistent = models.BooleanField(
        "persistent messages", default=True,
        help_text="Publish with delivery_mode 2 unless an event's ev_extra3 says otherwise.",
    )
    max_failures = models.PositiveIntegerField(
        "max failures", default=10, validators=MAX_FAILURES.validators(),
        help_text="Failures of one event before it is moved to the dead letters.",
    )
    retry_delay = models.PositiveIntegerField(
        "retry delay (s)", default=10, validators=RETRY_DELAY.validators(),
        help_text="Seconds until PgQ hands a failed event back (pgq.event_retry), at most a day.",
    )
    wait_duration = models.FloatField(
        "wait duration (s)", default=10.0, validators=WAIT_DURATION.validators(),
        help_text="mikkoo's wait between polls of an idle queue, kept so that mikkoo files import as they are. "
        "The relay does not poll a queue: commits wake it, and the sweep checks every queue every "
        "RELAY_SWEEP_SECONDS.",
    )
    unregister = models.BooleanField(
        "unregister when retired", default=True,
        help_text="Unregister the PgQ consumer when this queue is deleted or retired. "
        "Never done when a worker stops.",
    )

    #: Fields that hold a secret (or an env:NAME reference to one): encrypted, never shown back.
    SECRET_FIELDS = ("source_url", "target_url")

    class Meta:
        verbose_name = "relayed queue"
        verbose_name_plural = "relayed queues"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def display_source(self) -> str:
        """The source database URL without its password."""
        return redact_url(self.source_url)

    def display_target(self) -> str:
        """The target database URL without its password."""
        return redact_url(self.target_url)

    def clean(self) -> None:
        errors = secret_reference_errors(self, self.SECRET_FIELDS)
        if self.target == self.Target.RABBITMQ and self.connection_id is None:
            errors["connection"] = "A RabbitMQ connection is required for the RabbitMQ target."
        if self.target == self.Target.POSTGRES and not self.target_url:
            errors["target_url"] = "A target PostgreSQL URL is required for the PostgreSQL target."
        for field in self.SECRET_FIELDS:
            value = getattr(self, field)
            if value and field not in errors:
                try:
                    setattr(self, field, checked_postgres_dsn(value))
                except InvalidConnectionString as exc:
                    errors[field] = str(exc)
        if errors:
            raise ValidationError(errors)

    def source_dsn(self) -> str:
        """The source database's URL or libpq string, read from the environment for env:NAME; checked."""
        return postgres_dsn(self, "source_url")

    def target_dsn(self) -> str:
        """The target database's URL or libpq string (PostgreSQL target), as :meth:`source_dsn`."""
        return postgres_dsn(self, "target_url")

    def to_settings(self) -> QueueSettings:
        """The plain settings object the engine takes, with the target's: RabbitMQ, or a PostgreSQL database.

        Raises :class:`~relay.core.errors.InvalidConfiguration` naming the field at
        fault when a stored value cannot be used (it never quotes a secret).
        """
        return queue_settings(self)
