"""The admin says what it is: mikkoo-relay and its release, and "View site" leads to the queue overview."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse

from relay import __version__

pytestmark = pytest.mark.django_db


def test_the_header_and_title_name_the_relay_and_its_release(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()

    assert re.search(rf"<title>[^<]*\| mikkoo-relay {re.escape(__version__)}</title>", page)
    assert re.search(rf'<div id="site-name"><a href="[^"]*">mikkoo-relay {re.escape(__version__)}</a></div>', page)
    assert "Django administration" not in page


def test_view_site_leads_to_the_queue_overview(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()
    [view_site] = re.findall(r'<a href="([^"]*)">View site</a>', page)

    response = admin_client.get(view_site, follow=True)

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("admin:relay_queueoverview_changelist")
