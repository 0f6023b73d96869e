"""The Celery application that runs the relay tasks."""
from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mikkoo_project.settings")

app = Celery("mikkoo_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
