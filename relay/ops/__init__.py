"""Operating the relay: health, metrics, statsd, log format and filters, the queue overview.

What it may import: the layers of ``.importlinter`` (docs/architecture.md), checked by lint-imports.
"""
