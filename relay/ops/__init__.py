"""Operating the relay: health, metrics, statsd, log format and filters, the queue overview.

What it may import: the layers of ``.importlinter`` (README "Architecture"), checked by lint-imports.
"""
