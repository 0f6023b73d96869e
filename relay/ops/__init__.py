"""Operating the relay: health, metrics, statsd, log format and filters, the queue overview's figures (its page
is in :mod:`relay.admin.overview_views`).

What it may import: the layers of ``.importlinter`` (docs/architecture.md), checked by lint-imports.
"""
