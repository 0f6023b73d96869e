"""mikkoo and queue_splitter compatibility: reading their configuration files and importing them.

Owns: bounded reading of imported files, mikkoo's YAML and environment, queue_splitter's INI,
and writing what they configure into the models.

What it may import: the layers of ``.importlinter`` (docs/architecture.md), checked by lint-imports.
"""
