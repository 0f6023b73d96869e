"""RabbitMQ: broker settings, TLS, the event-to-message mapping, AMQP frames, the publisher.

Owns: what a connection to RabbitMQ is, the pure mapping of a PgQ event to a message, the
frames written for it, and publishing windows with pipelined confirms. Knows nothing of PgQ.

What it may import: the layers of ``.importlinter`` (docs/architecture.md), checked by lint-imports.
"""
