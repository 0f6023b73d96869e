"""Large dead letters in the admin: lists show a prefix and the size, the detail a bounded preview, and a download.

A dead-lettered event may carry megabytes in ``ev_data`` or its extra fields
(and a reason quoting them): no page ever renders more than a bounded prefix
of any of them, and the database hands the page only that prefix and the
length, never the whole value.
"""
from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Func, QuerySet
from django.db.models.functions import Length, Substr
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html

#: The fields that may be large, and what the pages call them.
LARGE_FIELDS = {"event_type": "type", "event_data": "data", "extra1": "extra1", "extra2": "extra2",
                "extra3": "extra3", "extra4": "extra4", "reason": "reason"}
#: Characters of a large field a list page shows.
LIST_CHARS = 120
#: Characters of a large field the detail page shows.
PREVIEW_CHARS = 10_000


def with_previews(queryset: QuerySet, chars: int) -> QuerySet:
    """The dead letters with each large field's first ``chars`` characters and its length, the rest not read."""
    annotations: dict[str, Func] = {}
    for name in LARGE_FIELDS:
        annotations[f"{name}_head"] = Substr(name, 1, chars)
        annotations[f"{name}_size"] = Length(name)
    return queryset.defer(*LARGE_FIELDS).annotate(**annotations)


def head_and_size(letter, name: str) -> tuple[str, int]:
    head = getattr(letter, f"{name}_head", None)
    size = getattr(letter, f"{name}_size", None)
    if head is None or size is None:  # not annotated: a row from elsewhere
        value = getattr(letter, name) or ""
        return value[:PREVIEW_CHARS], len(value)
    return head or "", size or 0


def list_cell(letter, name: str) -> str:
    """A list page's cell: the value, or its first LIST_CHARS characters and its size."""
    head, size = head_and_size(letter, name)
    if size <= LIST_CHARS:
        return head
    return f"{head[:LIST_CHARS]}… ({size:,} characters)"


def detail_preview(letter, name: str):
    """The detail page's preview: up to PREVIEW_CHARS characters, with the size and a download link beyond."""
    head, size = head_and_size(letter, name)
    if size <= PREVIEW_CHARS:
        return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', head)
    url = reverse("admin:relay_deadletter_download", args=[letter.pk, name])
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}…</pre>'
                       '<p>The first {} of {} characters. <a href="{}">Download all of it</a></p>',
                       head, f"{PREVIEW_CHARS:,}", f"{size:,}", url)


def list_column(name: str):
    """A ModelAdmin column showing ``list_cell`` of the field ``name``."""
    @admin.display(description=LARGE_FIELDS[name])
    def column(model_admin, letter) -> str:
        return list_cell(letter, name)
    return column


def preview_column(name: str):
    """A ModelAdmin read-only field showing ``detail_preview`` of the field ``name``."""
    @admin.display(description=LARGE_FIELDS[name])
    def column(model_admin, letter):
        return detail_preview(letter, name)
    return column


def download(request: HttpRequest, model_admin, object_id: str, field: str) -> HttpResponse:
    """One field of one dead letter, whole, as a file (never rendered as a page)."""
    if field not in LARGE_FIELDS:
        raise Http404("no such field")
    letter = model_admin.get_object(request, object_id)
    if letter is None:
        raise Http404("no such dead letter")
    if not model_admin.has_view_permission(request, letter):
        raise PermissionDenied
    value = type(letter).objects.filter(pk=letter.pk).values_list(field, flat=True).get() or ""
    response = HttpResponse(value.encode("utf-8"), content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="dead-letter-{letter.pk}-{field}.txt"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
