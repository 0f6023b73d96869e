"""Did every event reach RabbitMQ: the audit SQL API installed in a source database, its status page.

May import the models, ``relay.pgq`` and ``relay.core``.
"""
