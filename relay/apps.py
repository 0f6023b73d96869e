"""Django app configuration for the relay."""
from django.apps import AppConfig


class RelayConfig(AppConfig):
    """The relay app."""

    name = "relay"
    verbose_name = "PgQ → RabbitMQ relay"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the receivers; Django's contrib apps do the same)
