"""Creating or updating a configuration row by name, as the file importers do: idempotent and validated."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import models

from ..core.errors import ConfigError

_Row = TypeVar("_Row", bound=models.Model)


def upsert_by_name(model: type[_Row], name: str, fields: dict[str, Any], path: str,
                   key_names: Mapping[str, str] | None = None) -> tuple[_Row, str, list[str]]:
    """Create or update the row called ``name``; returns it, "created"/"updated"/"unchanged" and the fields changed.

    A value the model refuses becomes a :class:`ConfigError` at ``path``, naming
    the field (as the file calls it, through ``key_names``) but never its value.
    """
    row = model._default_manager.filter(name=name).first()
    if row is None:
        row, outcome, changed = model(name=name, **fields), "created", list(fields)
    else:
        changed = [key for key, value in fields.items() if getattr(row, key) != value]
        if not changed:
            return row, "unchanged", []
        for key in changed:
            setattr(row, key, fields[key])
        outcome = "updated"
    try:
        row.full_clean()
    except ValidationError as exc:
        # The parser checks what the file can get wrong; this catches the rest (lengths) without values.
        names = key_names or {}
        raise ConfigError(path, "; ".join(f"{names.get(key, key)}: {' '.join(messages)}"
                                          for key, messages in exc.message_dict.items())) from None
    row.save()
    return row, outcome, changed
