"""The base of the admin pages that are not model lists: an unmanaged model gives each its place and permission."""
from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import URLPattern, path


class PageAdmin(admin.ModelAdmin):
    """A page with no table behind it: its changelist is the page (django-rq's pattern), nothing can be changed.

    A subclass names its ``permission`` and overrides ``changelist_view``;
    further views of the page come from :meth:`extra_urls`.
    """

    #: The permission (``app_label.codename``) that lets a user see the page; others get 403.
    permission = ""

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(self.permission)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        # Only these: the default add, change and history views would look for a table.
        info = self.opts.app_label, self.opts.model_name
        return [path("", self.admin_site.admin_view(self.changelist_view), name="{}_{}_changelist".format(*info)),
                *self.extra_urls()]

    def extra_urls(self) -> list[URLPattern]:
        """The page's views besides its changelist; none by default."""
        return []

    def page_context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        """The admin's context for one of the page's templates, with ``title`` and ``extra``."""
        # No navigation sidebar: a status table needs the page's full width.
        return {**self.admin_site.each_context(request), "title": title, "opts": self.model._meta,
                "is_nav_sidebar_enabled": False, **extra}
