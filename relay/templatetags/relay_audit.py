"""Filters for the audit status pages: durations and counts as people read them."""
from __future__ import annotations

from datetime import timedelta

from django import template

from ..audit.status import format_age

register = template.Library()


@register.filter
def age(value: timedelta | None) -> str:
    """``{{ delta|age }}``: "42 s", "5 min 3 s", "2 h 10 min"; "-" for none."""
    return format_age(value)


@register.filter
def count(value: int | None, partial: bool = False) -> str:
    """``{{ n|count:partial }}``: "12,345", or "over 100,000" when counting stopped at the limit."""
    if value is None:
        return "-"
    return f"over {value:,}" if partial else f"{value:,}"
