"""URL configuration: the admin is the relay's user interface."""
from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from relay.ops import views as ops_views

urlpatterns = [
    # The admin's "View site" link: the queue overview is what there is to see.
    path("", RedirectView.as_view(pattern_name="admin:relay_queueoverview_changelist"), name="home"),
    path("admin/", admin.site.urls),
    path("health/", ops_views.health, name="health"),
    path("health/live", ops_views.live, name="health-live"),
    path("health/ready", ops_views.ready, name="health-ready"),
    path("metrics", ops_views.prometheus, name="metrics"),
]
