"""The mikkoo-relay Django project: settings, Celery app and URLs."""
from .celery import app as celery_app

__all__ = ("celery_app",)
