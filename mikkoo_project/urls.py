"""URL configuration: the admin is the relay's user interface."""
from django.contrib import admin
from django.urls import path

from relay.ops import views as ops_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", ops_views.health, name="health"),
    path("health/live", ops_views.live, name="health-live"),
    path("health/ready", ops_views.ready, name="health-ready"),
    path("metrics", ops_views.prometheus, name="metrics"),
]
