"""The operator's machine endpoints: /health/live, /health/ready, /health/ (JSON, 503 when not) and /metrics.

/health/live says whether this process answers and reaches Django's database
(for restarts); /health/ready whether the relay can do its job (Django's
database, Celery's broker, a worker and beat seen lately, every queue);
/health/ the queues alone.

Anonymous callers of /health/ (a load balancer) learn only healthy or not,
overall and per queue; hosts, users and errors go to a staff session or to a
caller with ``Authorization: Bearer <RELAY_HEALTH_TOKEN>``. /metrics asks for
``RELAY_METRICS_TOKEN`` (or a staff session) when that is set.
"""
from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from . import metrics
from .health import check_health
from .readiness import check_live, check_ready


def _is_staff(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def _answered(response: JsonResponse) -> JsonResponse:
    """``response``, a 503 included, is the endpoint's answer, not a server error: Django does not log it.

    django.utils.log.log_response skips a response marked ``_has_been_logged``, a private attribute that
    django-stubs does not declare.
    """
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def _has_token(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Every enabled queue's health: the same engine as ``manage.py relay_health``, answering within a second."""
    report = check_health(deadline=settings.RELAY_HEALTH_DEADLINE_SECONDS, cached=True)
    details = _is_staff(request) or _has_token(request, settings.RELAY_HEALTH_TOKEN)
    # A 503 is this endpoint's answer, not a server error: Django would log one ERROR line per poll
    # (and send it to Sentry). The problems are in the answer and in relay_health.
    return _answered(JsonResponse(report.as_dict(details=details), status=200 if report.healthy else 503))


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    """For restarts: this process answers and reaches Django's database (status only, for anyone)."""
    health = check_live()
    return _answered(JsonResponse({"live": health.healthy}, status=200 if health.healthy else 503))


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    """Whether the relay can do its job: Django's database, Celery's broker, a worker, beat, every queue."""
    report = check_ready(deadline=settings.RELAY_HEALTH_DEADLINE_SECONDS)
    details = _is_staff(request) or _has_token(request, settings.RELAY_HEALTH_TOKEN)
    return _answered(JsonResponse(report.as_dict(details=details), status=200 if report.healthy else 503))


@never_cache
@require_GET
def prometheus(request: HttpRequest) -> HttpResponse:
    token = settings.RELAY_METRICS_TOKEN
    if token and not (_has_token(request, token) or _is_staff(request)):
        response = HttpResponse("a bearer token is required (RELAY_METRICS_TOKEN)\n", status=401,
                                content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
