"""RabbitMQ connections: where relayed events are published."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from ..amqp.broker import BrokerSettings
from ..core.connection_strings import InvalidConnectionString, redact_url
from ..fields import SecretField
from ..validation import (
    CONFIRM_TIMEOUT,
    CONNECT_TIMEOUT,
    HEARTBEAT,
    MAX_MESSAGE_SIZE,
    PORT,
    checked_amqp_url,
    validate_hosts,
    validate_name,
    validate_path,
    validate_secret_text,
    validate_tls_protocol,
)
from .engine_settings import ChecksItsSettings, broker_settings, secret_reference_errors


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
        errors = secret_reference_errors(self, self.SECRET_FIELDS)
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
        return broker_settings(self)
