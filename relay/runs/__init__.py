"""Running configured queues: one run of a queue for a command, a task or the admin, and its bookkeeping.

Owns: turning a :class:`~relay.models.RelayedQueue` into an engine run, the queue's status rows
(successes, failures, backoff), registering its PgQ consumer, dead letters copied into the admin
and replayed, retiring a queue. The Celery schedule over these runs is :mod:`relay.scheduling`.

What it may import: the layers of ``.importlinter`` (docs/architecture.md), checked by lint-imports.
"""
