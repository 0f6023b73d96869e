"""Did every event reach RabbitMQ: the audit SQL API installed in a source database, its status page.

What it may import: the layers of ``.importlinter`` (README "Architecture"), checked by lint-imports.
"""
