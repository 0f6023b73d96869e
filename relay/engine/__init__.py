"""The batch loop: a queue's batches taken from PgQ, delivered to a target, finished.

Owns: the loop (lock, prepare, drain, follow), its targets (RabbitMQ, or PostgreSQL for the
queue splitter), the decision to retry or dead-letter, the settings a run needs, and the
connections a worker process keeps across runs.

What it may import: the layers of ``.importlinter`` (docs/architecture.md), checked by lint-imports.
"""
