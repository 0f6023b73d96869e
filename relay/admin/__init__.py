"""The operator's screens in the Django admin: model admins, their forms, large dead letters, and every page
that is not a model list (the audit status, the queue overview) on one base (:mod:`.pages`).

What it may import: the layers of ``.importlinter`` (docs/architecture.md), checked by lint-imports.
"""

from . import model_admins  # noqa: F401  Django's autodiscovery imports relay.admin: registering is there
