"""The admin site: the relay's user interface, named after the relay and its release."""
from django.contrib import admin

from relay import __version__


class RelayAdminSite(admin.AdminSite):
    """Django's admin site with the relay's name and version in its header and page titles."""

    site_header = site_title = f"mikkoo-relay {__version__}"
