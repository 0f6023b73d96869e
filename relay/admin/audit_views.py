"""The audit status pages of the admin: every queue's verdict, and one queue's outstanding audit records."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone

from ..audit.status import (
    MAX_OFFSET,
    PAGE_SIZE,
    VERDICTS,
    SourceReader,
    format_age,
    queue_audits,
    readable_source,
    stuck_after,
)
from ..core.errors import InvalidConfiguration, RelayError
from ..models import RelayedQueue
from .pages import PageAdmin

#: Staff need this permission for both pages; others get 403.
PERMISSION = "relay.view_audit_status"
#: Seconds between the status page's own reloads.
REFRESH_SECONDS = 5


def require_permission(request: HttpRequest) -> None:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied


def audit_status(request: HttpRequest, model_admin: PageAdmin) -> HttpResponse:
    """Every queue relayed to RabbitMQ: its audit figures, its PgQ state, the relay's last run, and a verdict."""
    require_permission(request)
    # The audit answers "did it reach RabbitMQ?": split queues (PostgreSQL target) have no such answer.
    queues = RelayedQueue.objects.filter(target=RelayedQueue.Target.RABBITMQ)
    audits = queue_audits(queues.select_related("status").order_by("name"))
    summary = [(state, n) for state in VERDICTS if (n := sum(a.verdict.state == state for a in audits))]
    return TemplateResponse(request, "admin/relay/audit_status.html", model_admin.page_context(
        request, "Audit status", audits=audits, summary=summary, read_at=timezone.now(),
        refresh_seconds=REFRESH_SECONDS, stuck_after=format_age(stuck_after())))


def outstanding(request: HttpRequest, model_admin: PageAdmin, name: str) -> HttpResponse:
    """One queue's outstanding audit records, oldest first, a page at a time (never past MAX_OFFSET)."""
    require_permission(request)
    queue = get_object_or_404(RelayedQueue, name=name)
    try:
        page = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        page = 1
    last_page = MAX_OFFSET // PAGE_SIZE
    page = min(page, last_page)
    offset = (page - 1) * PAGE_SIZE
    records, error = [], ""
    dsn, invalid = readable_source(queue)
    try:
        if dsn is None:
            raise InvalidConfiguration(f"the queue's configuration is invalid: {invalid}")
        with SourceReader(dsn) as reader:
            # One more than a page says whether there is a next one without counting.
            records = reader.outstanding(queue.queue_name, offset, PAGE_SIZE + 1)
    except RelayError as exc:
        error = str(exc)
    has_next = len(records) > PAGE_SIZE and page < last_page
    return TemplateResponse(request, "admin/relay/audit_outstanding.html", model_admin.page_context(
        request, f"Outstanding audit records of {queue.name}", queue=queue,
        source=queue.display_source(), records=records[:PAGE_SIZE], error=error, page=page, first=offset + 1,
        last=offset + len(records[:PAGE_SIZE]),
        previous_page=page - 1 if page > 1 else None, next_page=page + 1 if has_next else None,
        max_records=MAX_OFFSET))
