"""Running configured queues: one run for a command, a task or the admin; the schedule for many.

Owns: turning a :class:`~relay.models.RelayedQueue` into an engine run, the queue's status rows
(successes, failures, backoff), dead letters copied into the admin and replayed, retiring a
queue, the Celery schedule (registration, wake-ups, slices, sweeps, samples), relay_once's
progress.

What it may import: the layers of ``.importlinter`` (docs/architecture.md), checked by lint-imports.
"""
