"""The relay app: moves PgQ events to RabbitMQ."""
