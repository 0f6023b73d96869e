"""The Celery application: the relay tasks, the wake-ups step, and how the worker logs (start, stop, format)."""
from __future__ import annotations

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, worker_ready, worker_shutdown

from relay.ops.logformat import use_settings_format
from relay.scheduling import lifecycle
from relay.scheduling.wakeups import WakeupStep

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mikkoo_project.settings")

app = Celery("mikkoo_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.steps["worker"].add(WakeupStep)
worker_ready.connect(lifecycle.worker_ready, weak=False)
worker_shutdown.connect(lifecycle.worker_shutdown, weak=False)
after_setup_logger.connect(use_settings_format, weak=False)
after_setup_task_logger.connect(use_settings_format, weak=False)
app.autodiscover_tasks()
