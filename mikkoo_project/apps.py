"""The admin app with the relay's own site as its default site (Django's way of replacing admin.site)."""
from django.contrib.admin.apps import AdminConfig


class RelayAdminConfig(AdminConfig):
    """``django.contrib.admin``, whose ``admin.site`` is :class:`~mikkoo_project.admin.RelayAdminSite`."""

    default_site = "mikkoo_project.admin.RelayAdminSite"
