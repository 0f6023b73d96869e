"""The relay's vocabulary, shared by every layer: errors, PgQ events, message identity, connection strings.

Owns: the error types, the :class:`Event` row, identity (correlation and message ids), parsing,
rebuilding and redacting connection URLs. Imports nothing of the relay but its version, and no Django.

What it may import: the layers of ``.importlinter`` (docs/architecture.md), checked by lint-imports.
"""
