"""The queue overview page of the admin: every queue's state, lag, rate and pending events, and its last hour."""
from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from ..ops.overview import PAGE_SIZE, STATES, overview
from .pages import PageAdmin

#: Staff need this permission; others get 403.
PERMISSION = "relay.view_queue_overview"
#: Seconds between the page's own reloads: samples come once a minute, states change any time.
REFRESH_SECONDS = 30


def queue_overview(request: HttpRequest, model_admin: PageAdmin) -> HttpResponse:
    """A page of queues by name (``?page=``), all of them or those in one state (``?state=``)."""
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    data = overview(timezone.now(), request.GET.get("page", 1), request.GET.get("state") or None)

    def link(page: int | None = None, state: str | None = data.state) -> str:
        query = {key: value for key, value in (("state", state), ("page", page)) if value and value != 1}
        return "?" + urlencode(query) if query else "?"

    pages = [(number, link(number) if isinstance(number, int) else None)
             for number in data.page.paginator.get_elided_page_range(data.page.number, on_each_side=2, on_ends=1)]
    return TemplateResponse(request, "admin/relay/queue_overview.html", model_admin.page_context(
        request, "Queue overview",
        overview=data, rows=data.rows, pages=pages, page_size=PAGE_SIZE,
        all_link=link(state=None), state_links=[(state, n, link(state=state)) for state, n in data.counts],
        states=STATES, refresh_seconds=REFRESH_SECONDS, sample_seconds=settings.RELAY_SAMPLE_SECONDS,
    ))
