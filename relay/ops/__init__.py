"""Operating the relay: health, metrics, statsd, log format and filters, the queue overview.

May import ``relay.runs``, ``relay.audit``, the models and everything below them.
"""
