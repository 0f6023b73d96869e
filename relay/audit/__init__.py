"""Did every event reach RabbitMQ: the audit SQL API installed in a source database, its status page.

What it may import: the layers of ``.importlinter`` (docs/architecture.md), checked by lint-imports.
"""
