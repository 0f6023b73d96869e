"""The relay app: moves PgQ events to RabbitMQ."""

#: The release, declared here alone: pyproject.toml, the app_id on every message, the admin's header and
#: ``relay_once --version`` read it.
__version__ = "1.0.0"
