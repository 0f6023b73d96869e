"""Secrets kept outside Django's database: a field holding ``env:NAME`` is read from the environment when used.

The grammar of a reference is :mod:`relay.core.connection_strings`'s. The reference is
what is stored; the value is looked up each time a connection is made
(``settings.RELAY_SECRETS_ENVIRON``, the process's environment), so it can come from a secrets manager that fills the
environment of the web app and the worker, and it is never written back.
"""
from __future__ import annotations

from django.conf import settings

from .core.connection_strings import ENV_PREFIX
from .core.connection_strings import env_reference_name as reference_name
from .core.errors import InvalidConfiguration


def check_reference(value: str) -> str | None:
    """Why ``value`` is not a usable reference, when it starts like one (None: it is one, or a plain value)."""
    if not value.startswith(ENV_PREFIX):
        return None
    name = reference_name(value)
    if name is None:
        return "env: must be followed by an environment variable name (letters, digits and _)"
    if name in settings.RELAY_SECRET_ENV_DENY:
        return f"the environment variable {name} holds one of the relay's own secrets and cannot be referred to"
    return None


def resolve(value: str, what: str) -> str:
    """``value``, or the environment variable it refers to (``env:NAME``); raises InvalidConfiguration.

    ``what`` names the field in the error ("RabbitMQ password"); the error
    names the variable, never a value.
    """
    problem = check_reference(value)
    if problem:
        raise InvalidConfiguration(f"{what}: {problem}")
    name = reference_name(value)
    if name is None:
        return value
    resolved = settings.RELAY_SECRETS_ENVIRON.get(name)
    if not resolved:
        raise InvalidConfiguration(f"{what}: the environment variable {name} is not set (the field says env:{name})")
    return resolved
