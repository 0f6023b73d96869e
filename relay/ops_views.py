"""The operator's machine endpoints: /health/ (JSON, 503 when unhealthy) and /metrics (Prometheus)."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from . import metrics
from .health import check_health


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Every enabled queue's health, the same report as ``manage.py relay_health --json``."""
    report = check_health()
    return JsonResponse(report.as_dict(), status=200 if report.healthy else 503)


@never_cache
@require_GET
def prometheus(request: HttpRequest) -> HttpResponse:
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
