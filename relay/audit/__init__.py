"""Did every event reach RabbitMQ: the audit SQL API installed in a source database, the verdicts its status
page shows (the page itself is in :mod:`relay.admin.audit_views`).

What it may import: the layers of ``.importlinter`` (docs/architecture.md), checked by lint-imports.
"""
