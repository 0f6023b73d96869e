"""What the admin configures: RabbitMQ connections, relayed queues, and dead letters."""
from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from .broker import BrokerSettings, TlsSettings
from .relay import QueueSettings
from .secrets import redact_url
from .splitter import SplitterSettings


class BrokerConnection(models.Model):
    """A RabbitMQ server or cluster that relayed events are published to."""

    name = models.SlugField(
        "name", max_length=100, unique=True,
        help_text="A short name for this connection, used by queues and by import_mikkoo.",
    )
    url = models.CharField(
        "AMQP URL", max_length=1000, blank=True,
        help_text="amqp:// or amqps:// URL (mikkoo 3's rabbitmq_url). When set it replaces "
        "host, port, vhost, username and password. Never shown back: leave blank to keep it.",
    )
    hosts = models.CharField(
        "hosts", max_length=500, default="localhost",
        help_text="Host name, or several separated by commas for a cluster: the next one is "
        "tried when one is down. A host may carry its own port as host:port.",
    )
    port = models.PositiveIntegerField(
        "port", default=5672, validators=[MaxValueValidator(65535)],
        help_text="AMQP port for hosts that name none (5671 is usual with TLS).",
    )
    vhost = models.CharField("virtual host", max_length=255, default="/",
                             help_text="RabbitMQ virtual host.")
    username = models.CharField("username", max_length=255, default="guest",
                                help_text="RabbitMQ user.")
    password = models.CharField(
        "password", max_length=255, blank=True, default="guest",
        help_text="RabbitMQ password. Never shown back: leave blank to keep the stored one.",
    )
    heartbeat = models.PositiveIntegerField(
        "heartbeat interval (s)", default=300,
        help_text="AMQP heartbeat in seconds (mikkoo's heartbeat_interval); 0 turns it off.",
    )
    connect_timeout = models.FloatField(
        "connect timeout (s)", default=5.0, validators=[MinValueValidator(0.1)],
        help_text="Seconds to wait for a TCP/AMQP connection before trying the next host.",
    )
    confirm_timeout = models.FloatField(
        "confirm timeout (s)", default=30.0, validators=[MinValueValidator(0.1)],
        help_text="Seconds to wait for RabbitMQ to confirm published messages; events still "
        "unconfirmed then are retried instead of waiting forever.",
    )
    use_tls = models.BooleanField(
        "use TLS", default=False,
        help_text="Connect with TLS (mikkoo's ssl_options). Implied by an amqps:// URL.",
    )
    ca_certs = models.CharField("CA certificates file", max_length=500, blank=True,
                                help_text="Path of a PEM file of CA certificates to verify the server.")
    ca_path = models.CharField("CA certificates directory", max_length=500, blank=True,
                               help_text="Directory of hashed CA certificates.")
    ca_data = models.TextField("CA certificates (PEM)", blank=True,
                               help_text="CA certificates given inline, PEM encoded.")
    tls_protocol = models.CharField(
        "TLS protocol", max_length=40, blank=True,
        help_text="Minimum TLS version, e.g. TLSv1_2 (mikkoo's ssl_options protocol). "
        "Blank: the library's secure default.",
    )
    certfile = models.CharField("client certificate file", max_length=500, blank=True,
                                help_text="Path of the client certificate (PEM) for mutual TLS.")
    keyfile = models.CharField("client key file", max_length=500, blank=True,
                               help_text="Path of the client certificate's private key.")
    key_password = models.CharField(
        "client key password", max_length=255, blank=True,
        help_text="Password of the client key. Never shown back: leave blank to keep it.",
    )
    ciphers = models.CharField("ciphers", max_length=500, blank=True,
                               help_text="OpenSSL cipher list. Blank: the library's default.")

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

    def to_settings(self) -> BrokerSettings:
        """The plain settings object the publisher takes."""
        tls = None
        if self.use_tls or self.url.startswith("amqps://"):
            tls = TlsSettings(
                ca_certs=self.ca_certs, ca_path=self.ca_path, ca_data=self.ca_data,
                protocol=self.tls_protocol, certfile=self.certfile, keyfile=self.keyfile,
                password=self.key_password, ciphers=self.ciphers,
            )
        return BrokerSettings(
            url=self.url,
            hosts=tuple(h.strip() for h in self.hosts.split(",") if h.strip()),
            port=self.port,
            vhost=self.vhost,
            username=self.username,
            password=self.password,
            heartbeat=self.heartbeat,
            connect_timeout=self.connect_timeout,
            confirm_timeout=self.confirm_timeout,
            tls=tls,
        )


class RelayedQueue(models.Model):
    """A PgQ queue whose events are relayed to a RabbitMQ connection or split into queues of another database."""

    class Target(models.TextChoices):
        """Where a queue's events go."""

        RABBITMQ = "rabbitmq", "RabbitMQ"
        POSTGRES = "postgres", "PostgreSQL queues (queue_splitter)"

    name = models.SlugField(
        "name", max_length=100, unique=True,
        help_text="Name used by relay_once and the schedule; usually the PgQ queue name.",
    )
    queue_name = models.CharField("PgQ queue", max_length=255,
                                  help_text="The PgQ queue to consume. Created if missing.")
    source_url = models.CharField(
        "source PostgreSQL URL", max_length=1000,
        help_text="postgres:// URL or libpq connection string of the database the queue "
        "lives in. Never shown back with its password: leave blank to keep it.",
    )
    consumer_name = models.CharField(
        "consumer name", max_length=255, default="mikkoo",
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
    target_url = models.CharField(
        "target PostgreSQL URL", max_length=1000, blank=True,
        help_text="For the PostgreSQL target: postgres:// URL or libpq connection string of the database "
        "that holds the target queues (PgQ installed). Never shown back with its password: leave blank "
        "to keep it.",
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
        "max failures", default=10, validators=[MinValueValidator(1)],
        help_text="Failures of one event before it is moved to the dead letters.",
    )
    retry_delay = models.PositiveIntegerField(
        "retry delay (s)", default=10,
        help_text="Seconds until PgQ hands a failed event back (pgq.event_retry).",
    )
    wait_duration = models.FloatField(
        "wait duration (s)", default=10.0, validators=[MinValueValidator(0.0)],
        help_text="Seconds to wait after an empty poll before polling again.",
    )
    unregister = models.BooleanField(
        "unregister when retired", default=True,
        help_text="Unregister the PgQ consumer when this queue is deleted or retired. "
        "Never done when a worker stops.",
    )

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
        errors = {}
        if self.target == self.Target.RABBITMQ and self.connection_id is None:
            errors["connection"] = "A RabbitMQ connection is required for the RabbitMQ target."
        if self.target == self.Target.POSTGRES and not self.target_url:
            errors["target_url"] = "A target PostgreSQL URL is required for the PostgreSQL target."
        if errors:
            raise ValidationError(errors)

    def to_splitter_settings(self) -> SplitterSettings:
        """The plain settings object the queue splitter takes (PostgreSQL target)."""
        return SplitterSettings(
            name=self.name,
            queue_name=self.queue_name,
            source_dsn=self.source_url,
            target_dsn=self.target_url,
            consumer_name=self.consumer_name,
            create_target_queues=self.create_target_queues,
            max_failures=self.max_failures,
            retry_delay=self.retry_delay,
            wait_duration=self.wait_duration,
        )

    def to_settings(self) -> QueueSettings | SplitterSettings:
        """The plain settings object the queue's engine takes: the relay's, or the splitter's (PostgreSQL target)."""
        if self.target == self.Target.POSTGRES:
            return self.to_splitter_settings()
        return QueueSettings(
            name=self.name,
            queue_name=self.queue_name,
            source_dsn=self.source_url,
            consumer_name=self.consumer_name,
            confirm=self.confirm,
            persistent=self.persistent,
            max_failures=self.max_failures,
            retry_delay=self.retry_delay,
            wait_duration=self.wait_duration,
            broker=self.connection.to_settings(),
        )


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

    class Meta:
        verbose_name = "queue status"
        verbose_name_plural = "queue statuses"

    def __str__(self) -> str:
        return f"status of {self.queue}"

    @property
    def failing(self) -> bool:
        """Whether the last run ended with an error."""
        return bool(self.last_error_at) and (not self.last_success_at or self.last_error_at > self.last_success_at)

    @property
    def registered(self) -> bool:
        """Whether the relay's PgQ consumer is known to be registered in the source database."""
        return self.consumer_registered_at is not None

    def state(self, now: datetime) -> str:
        """In a word or three: not registered, backing off, failing or healthy."""
        if not self.registered:
            return "consumer not registered"
        if self.failing:
            return "backing off" if self.backoff_until and self.backoff_until > now else "failing"
        return "healthy"


class AuditStatus(models.Model):
    """No table: gives the audit status page its place in the admin index, and its permission."""

    class Meta:
        managed = False  # nothing is stored: the page reads mikkoo.audit and PgQ in each source database
        default_permissions = ()
        permissions = [("view_audit_status", "Can view the audit status page")]
        verbose_name = "audit status"
        verbose_name_plural = "audit status"
