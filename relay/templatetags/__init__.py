"""Template filters of the relay's admin pages.

What it may import: the layers of ``.importlinter`` (README "Architecture"), checked by lint-imports.
"""
