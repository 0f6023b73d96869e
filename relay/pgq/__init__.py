"""PostgreSQL and PgQ: the source database and a split queue's target database.

Owns: one PostgreSQL connection that names its database without the password, the PgQ consumer
(batches, ticks, retries, dead letters, the relay's schema), watching every queue of a database
over one connection, PgQ status for operators, the splitter's target database, array parameters
of bulk statements, the producer's insert statements. Knows nothing of AMQP.

What it may import: the layers of ``.importlinter`` (docs/architecture.md), checked by lint-imports.
"""
