"""Template filters of the relay's admin pages.

What it may import: the layers of ``.importlinter`` (docs/architecture.md), checked by lint-imports.
"""
