"""What the admin configures: RabbitMQ connections, relayed queues, and dead letters."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from .amqp.broker import BrokerSettings, TlsSettings
from .amqp.tls import tls_requested
from .core.errors import InvalidConfiguration
from .core.secrets import InvalidConnectionString, redact_url
from .engine.settings import AmqpTargetSettings, PgqTargetSettings, QueueSettings, TargetSettings
from .fields import SecretField, undecryptable
from .secret_refs import check_reference, resolve
from .validation import (
    CONFIRM_TIMEOUT,
    CONNECT_TIMEOUT,
    HEARTBEAT,
    MAX_FAILURES,
    MAX_MESSAGE_SIZE,
    PORT,
    RETRY_DELAY,
    WAIT_DURATION,
    checked_amqp_url,
    checked_postgres_dsn,
    tls_problems,
    validate_hosts,
    validate_name,
    validate_path,
    validate_secret_text,
    validate_tls_protocol,
)


class _HasSettings(Protocol):
    def to_settings(self) -> object: ...


class ChecksItsSettings:
    """A configuration row whose ``to_settings()`` says, by raising InvalidConfiguration, what makes it unusable."""

    def configuration_problems(self: _HasSettings) -> list[str]:
        """What makes this row unusable as stored (never a secret); empty when it can be used."""
        try:
            self.to_settings()
        except InvalidConfiguration as exc:
            return [str(exc)]
        return []


class BrokerConnection(ChecksItsSettings, models.Model):
    """A RabbitMQ server or cluster that relayed events are published to."""

    name = models.SlugField(
        "name", max_length=100, unique=True,
        help_text="A short name for this connection, used by queues and by import_mikkoo.",
    )
    url = SecretField(
        "AMQP URL", max_length=1000, blank=True, validators=[validate_secret_text],
        help_text="amqp:// or amqps:// URL (mikkoo 3's rabbitmq_url). When set it replaces "
        "host, port, vhost, username and password. env:NAME reads it from the environment variable NAME "
        "when connecting. Stored encrypted; never shown back: leave blank to keep it.",
    )
    hosts = models.CharField(
        "hosts", max_length=500, default="localhost", validators=[validate_hosts],
        help_text="Host name, or several separated by commas for a cluster: the next one is "
        "tried when one is down. A host may carry its own port as host:port (an IPv6 address as [::1]:5672).",
    )
    port = models.PositiveIntegerField(
        "port", default=5672, validators=PORT.validators(),
        help_text="AMQP port for hosts that name none (5671 is usual with TLS).",
    )
    vhost = models.CharField("virtual host", max_length=255, default="/", validators=[validate_name],
                             help_text="RabbitMQ virtual host.")
    username = models.CharField("username", max_length=255, default="guest", validators=[validate_name],
                                help_text="RabbitMQ user.")
    password = SecretField(
        "password", max_length=255, blank=True, default="guest", validators=[validate_secret_text],
        help_text="RabbitMQ password, or env:NAME to read it from the environment variable NAME when "
        "connecting. Stored encrypted; never shown back: leave blank to keep the stored one.",
    )
    heartbeat = models.PositiveIntegerField(
        "heartbeat interval (s)", default=300, validators=HEARTBEAT.validators(),
        help_text="AMQP heartbeat in seconds (mikkoo's heartbeat_interval); 0 turns it off.",
    )
    connect_timeout = models.FloatField(
        "connect timeout (s)", default=5.0, validators=CONNECT_TIMEOUT.validators(),
        help_text="Seconds to wait for a TCP/AMQP connection before trying the next host.",
    )
    confirm_timeout = models.FloatField(
        "confirm timeout (s)", default=30.0, validators=CONFIRM_TIMEOUT.validators(),
        help_text="Seconds to wait for RabbitMQ to confirm published messages; events still "
        "unconfirmed then are retried instead of waiting forever.",
    )
    max_message_size = models.PositiveIntegerField(
        "max message size (bytes)", default=134_217_728, validators=MAX_MESSAGE_SIZE.validators(),
        help_text="RabbitMQ's max_message_size: it closes the channel on a larger message body, so the relay "
        "dead-letters such an event at once. RabbitMQ 3's default is 134217728 (128 MiB), RabbitMQ 4's "
        "16777216 (16 MiB).",
    )
    use_tls = models.BooleanField(
        "use TLS", default=False,
        help_text="Connect with TLS (mikkoo's ssl_options). Implied by an amqps:// URL.",
    )
    ca_certs = models.CharField("CA certificates file", max_length=500, blank=True, validators=[validate_path],
                                help_text="Absolute path of a PEM file of CA certificates to verify the server.")
    ca_path = models.CharField("CA certificates directory", max_length=500, blank=True, validators=[validate_path],
                               help_text="Absolute path of a directory of hashed CA certificates.")
    ca_data = models.TextField("CA certificates (PEM)", blank=True,
                               help_text="CA certificates given inline, PEM encoded.")
    tls_protocol = models.CharField(
        "TLS protocol", max_length=40, blank=True, validators=[validate_tls_protocol],
        help_text="Minimum TLS version, e.g. TLSv1_2 (mikkoo's ssl_options protocol). "
        "Blank: the library's secure default.",
    )
    certfile = models.CharField("client certificate file", max_length=500, blank=True, validators=[validate_path],
                                help_text="Absolute path of the client certificate (PEM) for mutual TLS.")
    keyfile = models.CharField("client key file", max_length=500, blank=True, validators=[validate_path],
                               help_text="Absolute path of the client certificate's private key.")
    key_password = SecretField(
        "client key password", max_length=255, blank=True, validators=[validate_secret_text],
        help_text="Password of the client key, or env:NAME to read it from the environment variable NAME. "
        "Stored encrypted; never shown back: leave blank to keep it.",
    )
    ciphers = models.CharField("ciphers", max_length=500, blank=True, validators=[validate_name],
                               help_text="OpenSSL cipher list. Blank: the library's default.")

    #: Fields that hold a secret (or an env:NAME reference to one): encrypted, never shown back.
    SECRET_FIELDS = ("url", "password", "key_password")
    #: Which field holds each TLS option (relay.validation.tls_problems names the options).
    TLS_FIELDS = {"ca_certs": "ca_certs", "ca_path": "ca_path", "ca_data": "ca_data", "protocol": "tls_protocol",
                  "certfile": "certfile", "keyfile": "keyfile", "ciphers": "ciphers"}

    class Meta:
        verbose_name = "RabbitMQ connection"
        verbose_name_plural = "RabbitMQ connections"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def display_address(self) -> str:
        """Where this connection points, without any password."""
        if self.url:
            return redact_url(self.url)
        return f"{self.username}@{self.hosts}:{self.port}{self.vhost}"

    def clean(self) -> None:
        errors = _secret_reference_errors(self, self.SECRET_FIELDS)
        if self.url and "url" not in errors:
            try:
                self.url = checked_amqp_url(self.url)
            except InvalidConnectionString as exc:
                errors["url"] = str(exc)
        if errors:
            raise ValidationError(errors)

    def to_settings(self) -> BrokerSettings:
        """The plain settings object the publisher takes; raises InvalidConfiguration when a value is unusable.

        ``env:NAME`` references are read from the environment now, and TLS
        files are loaded, so what cannot work is said before connecting.
        """
        _check_fields(self, self.SECRET_FIELDS)
        url = _secret(self, "url")
        if url:
            try:
                url = checked_amqp_url(url)
            except InvalidConnectionString as exc:
                raise InvalidConfiguration(f"{_label(self, 'url')}: {exc}") from None
        password, key_password = _secret(self, "password"), _secret(self, "key_password")
        tls = None
        if tls_requested(self.use_tls, url):
            tls = TlsSettings(
                ca_certs=self.ca_certs, ca_path=self.ca_path, ca_data=self.ca_data,
                protocol=self.tls_protocol, certfile=self.certfile, keyfile=self.keyfile,
                password=key_password, ciphers=self.ciphers,
            )
            problems = tls_problems(ca_certs=tls.ca_certs, ca_path=tls.ca_path, ca_data=tls.ca_data,
                                    protocol=tls.protocol, certfile=tls.certfile, keyfile=tls.keyfile,
                                    password=tls.password, ciphers=tls.ciphers)
            if problems:
                raise InvalidConfiguration("; ".join(f"{_label(self, self.TLS_FIELDS[option])}: {problem}"
                                                     for option, problem in problems.items()))
        return BrokerSettings(
            url=url,
            hosts=tuple(h.strip() for h in self.hosts.split(",") if h.strip()),
            port=self.port,
            vhost=self.vhost,
            username=self.username,
            password=password,
            heartbeat=self.heartbeat,
            connect_timeout=self.connect_timeout,
            confirm_timeout=self.confirm_timeout,
            tls=tls,
            max_message_size=self.max_message_size,
        )


def _label(instance: models.Model, field: str) -> str:
    try:
        found = instance._meta.get_field(field)
        # A reverse relation has no verbose_name: no label, as for NON_FIELD_ERRORS and the like.
        return str(found.verbose_name) if isinstance(found, models.Field) else ""
    except Exception:  # NON_FIELD_ERRORS and the like
        return ""


def _secret_reference_errors(instance: models.Model, fields: tuple[str, ...]) -> dict[str, str]:
    errors = {}
    for field in fields:
        value = getattr(instance, field)
        if value and undecryptable(value):
            errors[field] = ("the stored value cannot be decrypted: SECRET_KEY or SALT_KEY is not the one it was "
                             "stored with (set SECRET_KEY_FALLBACKS, or enter it again)")
            continue
        problem = check_reference(value) if value else None
        if problem:
            errors[field] = problem
    return errors


def _check_fields(instance: models.Model, secret_fields: tuple[str, ...], exclude: tuple[str, ...] = ()) -> None:
    """Run the model's own validation on stored values; InvalidConfiguration naming each field at fault."""
    try:
        instance.clean_fields(exclude=exclude)
        instance.clean()
    except ValidationError as exc:
        problems = []
        for field, messages in exc.message_dict.items():
            label = _label(instance, field)
            problems.append(f"{label}: {' '.join(messages)}" if label else " ".join(messages))
        raise InvalidConfiguration("; ".join(problems)) from None


def _secret(instance: models.Model, field: str) -> str:
    """A secret field's value, read from the environment when it holds env:NAME."""
    return resolve(getattr(instance, field), _label(instance, field))


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
        errors = _secret_reference_errors(self, self.SECRET_FIELDS)
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
        return self._dsn("source_url")

    def target_dsn(self) -> str:
        """The target database's URL or libpq string (PostgreSQL target), as :meth:`source_dsn`."""
        return self._dsn("target_url")

    def _dsn(self, field: str) -> str:
        value = _secret(self, field)
        try:
            return checked_postgres_dsn(value)
        except InvalidConnectionString as exc:
            raise InvalidConfiguration(f"{_label(self, field)}: {exc}") from None

    def _checked(self) -> None:
        # The connection is checked as a whole by its own to_settings(); here only that there is one.
        _check_fields(self, self.SECRET_FIELDS, exclude=("connection",))

    def to_settings(self) -> QueueSettings:
        """The plain settings object the engine takes, with the target's: RabbitMQ, or a PostgreSQL database.

        Raises :class:`~relay.core.errors.InvalidConfiguration` naming the field at
        fault when a stored value cannot be used (it never quotes a secret).
        """
        self._checked()
        return QueueSettings(
            name=self.name,
            queue_name=self.queue_name,
            source_dsn=self.source_dsn(),
            target=self._target_settings(),
            consumer_name=self.consumer_name,
            max_failures=self.max_failures,
            retry_delay=self.retry_delay,
        )

    def _target_settings(self) -> TargetSettings:
        if self.target == self.Target.POSTGRES:
            return PgqTargetSettings(target_dsn=self.target_dsn(), create_target_queues=self.create_target_queues)
        connection = self.connection
        if connection is None:  # clean(), through _checked(), refuses it first
            raise InvalidConfiguration(f"{_label(self, 'connection')}: A RabbitMQ connection is required for the "
                                       "RabbitMQ target.")
        try:
            broker = connection.to_settings()
        except InvalidConfiguration as exc:
            raise InvalidConfiguration(f"RabbitMQ connection {connection.name}: {exc}") from None
        return AmqpTargetSettings(broker=broker, confirm=self.confirm, persistent=self.persistent)


class DeadLetter(models.Model):
    """An event the relay gave up on, copied from the source database's dead-letter table."""

    queue = models.ForeignKey(RelayedQueue, on_delete=models.CASCADE, related_name="dead_letters",
                              verbose_name="queue", help_text="The relayed queue the event came from.")
    source_id = models.BigIntegerField(
        "source row id", help_text="Id of the row in mikkoo_relay.dead_letter in the source database.")
    event_id = models.BigIntegerField("event id", help_text="PgQ ev_id.")
    event_txid = models.BigIntegerField("txid", null=True, blank=True, help_text="PgQ ev_txid.")
    event_time = models.DateTimeField("event time", null=True, blank=True, help_text="PgQ ev_time.")
    event_type = models.TextField("type", blank=True, help_text="ev_type: the routing key.")
    event_data = models.TextField("data", blank=True, help_text="ev_data: the message body.")
    extra1 = models.TextField("extra1", blank=True, help_text="ev_extra1: the exchange.")
    extra2 = models.TextField("extra2", blank=True, help_text="ev_extra2: the content type.")
    extra3 = models.TextField("extra3", blank=True, help_text="ev_extra3: AMQP properties (JSON).")
    extra4 = models.TextField("extra4", blank=True, help_text="ev_extra4: AMQP headers (JSON).")
    reason = models.TextField("reason", help_text="Why the event could not be published.")
    failures = models.PositiveIntegerField("failures", help_text="How often publishing it failed.")
    first_failed_at = models.DateTimeField("first failure", null=True, blank=True,
                                           help_text="When publishing the event first failed.")
    dead_lettered_at = models.DateTimeField("dead-lettered at",
                                            help_text="When the relay gave up on the event: its last failure.")
    replayed_at = models.DateTimeField("replayed at", null=True, blank=True,
                                       help_text="When the event was put back into its PgQ queue from the admin.")
    replayed_by = models.CharField("replayed by", max_length=150, blank=True,
                                   help_text="Who put the event back into its PgQ queue.")

    class Meta:
        verbose_name = "dead letter"
        verbose_name_plural = "dead letters"
        ordering = ["-dead_lettered_at"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "source_id"], name="dead_letter_once_per_source_row"),
        ]

    def __str__(self) -> str:
        return f"{self.queue} event {self.event_id}"


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


class AuditStatus(models.Model):
    """No table: gives the audit status page its place in the admin index, and its permission."""

    class Meta:
        managed = False  # nothing is stored: the page reads mikkoo.audit and PgQ in each source database
        default_permissions = ()
        permissions = [("view_audit_status", "Can view the audit status page")]
        verbose_name = "audit status"
        verbose_name_plural = "audit status"


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


class QueueOverview(models.Model):
    """No table: gives the queue overview page its place in the admin index, and its permission."""

    class Meta:
        managed = False  # nothing is stored: the page reads the queues, their status and their samples
        default_permissions = ()
        permissions = [("view_queue_overview", "Can view the queue overview page")]
        verbose_name = "queue overview"
        verbose_name_plural = "queue overview"


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
