"""The operator's screens in the Django admin: model admins, their forms, large dead letters.

May import anything of the relay but ``relay.tasks``.
"""

from . import model_admins  # noqa: F401  Django's autodiscovery imports relay.admin: registering is there
