"""The one conversion of a configured row into the engine's plain settings, and the translation of its errors.

A model's ``to_settings()`` calls :func:`broker_settings` or :func:`queue_settings`:
``env:NAME`` references are read here, stored values are checked again with the
model's own validation, and every problem becomes one
:class:`~relay.core.errors.InvalidConfiguration` naming the field at fault by its
label (never quoting a secret). The admin, the health checks and the metrics ask
:class:`ChecksItsSettings` for the same words.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from django.core.exceptions import ValidationError
from django.db import models

from ..amqp.broker import BrokerSettings, TlsSettings
from ..amqp.tls import tls_requested
from ..core.connection_strings import InvalidConnectionString
from ..core.errors import InvalidConfiguration
from ..engine.settings import AmqpTargetSettings, PgqTargetSettings, QueueSettings, TargetSettings
from ..fields import undecryptable
from ..secret_refs import check_reference, resolve
from ..validation import checked_amqp_url, checked_postgres_dsn, tls_problems

if TYPE_CHECKING:
    from .connections import BrokerConnection
    from .queues import RelayedQueue


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


def broker_settings(connection: BrokerConnection) -> BrokerSettings:
    """The plain settings object the publisher takes; raises InvalidConfiguration when a value is unusable.

    ``env:NAME`` references are read from the environment now, and TLS
    files are loaded, so what cannot work is said before connecting.
    """
    _check_fields(connection, connection.SECRET_FIELDS)
    url = _secret(connection, "url")
    if url:
        try:
            url = checked_amqp_url(url)
        except InvalidConnectionString as exc:
            raise InvalidConfiguration(f"{_label(connection, 'url')}: {exc}") from None
    password, key_password = _secret(connection, "password"), _secret(connection, "key_password")
    tls = None
    if tls_requested(connection.use_tls, url):
        tls = TlsSettings(
            ca_certs=connection.ca_certs, ca_path=connection.ca_path, ca_data=connection.ca_data,
            protocol=connection.tls_protocol, certfile=connection.certfile, keyfile=connection.keyfile,
            password=key_password, ciphers=connection.ciphers,
        )
        problems = tls_problems(ca_certs=tls.ca_certs, ca_path=tls.ca_path, ca_data=tls.ca_data,
                                protocol=tls.protocol, certfile=tls.certfile, keyfile=tls.keyfile,
                                password=tls.password, ciphers=tls.ciphers)
        if problems:
            raise InvalidConfiguration("; ".join(f"{_label(connection, connection.TLS_FIELDS[option])}: {problem}"
                                                 for option, problem in problems.items()))
    return BrokerSettings(
        url=url,
        hosts=tuple(h.strip() for h in connection.hosts.split(",") if h.strip()),
        port=connection.port,
        vhost=connection.vhost,
        username=connection.username,
        password=password,
        heartbeat=connection.heartbeat,
        connect_timeout=connection.connect_timeout,
        confirm_timeout=connection.confirm_timeout,
        tls=tls,
        max_message_size=connection.max_message_size,
    )


def queue_settings(queue: RelayedQueue) -> QueueSettings:
    """The plain settings object the engine takes, with the target's: RabbitMQ, or a PostgreSQL database.

    Raises :class:`~relay.core.errors.InvalidConfiguration` naming the field at
    fault when a stored value cannot be used (it never quotes a secret).
    """
    # The connection is checked as a whole by its own to_settings(); here only that there is one.
    _check_fields(queue, queue.SECRET_FIELDS, exclude=("connection",))
    return QueueSettings(
        name=queue.name,
        queue_name=queue.queue_name,
        source_dsn=queue.source_dsn(),
        target=_target_settings(queue),
        consumer_name=queue.consumer_name,
        max_failures=queue.max_failures,
        retry_delay=queue.retry_delay,
    )


def _target_settings(queue: RelayedQueue) -> TargetSettings:
    if queue.target == queue.Target.POSTGRES:
        return PgqTargetSettings(target_dsn=queue.target_dsn(), create_target_queues=queue.create_target_queues)
    connection = queue.connection
    if connection is None:  # clean(), through _check_fields(), refuses it first
        raise InvalidConfiguration(f"{_label(queue, 'connection')}: A RabbitMQ connection is required for the "
                                   "RabbitMQ target.")
    try:
        broker = connection.to_settings()
    except InvalidConfiguration as exc:
        raise InvalidConfiguration(f"RabbitMQ connection {connection.name}: {exc}") from None
    return AmqpTargetSettings(broker=broker, confirm=queue.confirm, persistent=queue.persistent)


def postgres_dsn(queue: RelayedQueue, field: str) -> str:
    """A database URL or libpq string of the queue's, read from the environment for env:NAME; checked."""
    value = _secret(queue, field)
    try:
        return checked_postgres_dsn(value)
    except InvalidConnectionString as exc:
        raise InvalidConfiguration(f"{_label(queue, field)}: {exc}") from None


def _label(instance: models.Model, field: str) -> str:
    try:
        found = instance._meta.get_field(field)
        # A reverse relation has no verbose_name: no label, as for NON_FIELD_ERRORS and the like.
        return str(found.verbose_name) if isinstance(found, models.Field) else ""
    except Exception:  # NON_FIELD_ERRORS and the like
        return ""


def secret_reference_errors(instance: models.Model, fields: tuple[str, ...]) -> dict[str, str]:
    """For a model's ``clean()``: what is wrong with each stored secret field (not decryptable, a bad env:NAME)."""
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
