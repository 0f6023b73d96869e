"""The operator's screens in the Django admin: model admins, their forms, large dead letters.

What it may import: the layers of ``.importlinter`` (docs/architecture.md), checked by lint-imports.
"""

from . import model_admins  # noqa: F401  Django's autodiscovery imports relay.admin: registering is there
