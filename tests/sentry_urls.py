"""URLs for the Sentry test: the project's own, plus a view that fails."""
from __future__ import annotations

from django.urls import path

from mikkoo_project.urls import urlpatterns as project_urls


def fail(request):
    raise RuntimeError("boom from a view")


urlpatterns = [*project_urls, path("fail/", fail)]
