"""The Celery application that runs the relay tasks, and the worker step that listens for wake-ups."""
from __future__ import annotations

import os

from celery import Celery

from relay.scheduling.wakeups import WakeupStep

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mikkoo_project.settings")

app = Celery("mikkoo_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.steps["worker"].add(WakeupStep)
app.autodiscover_tasks()
