"""Wiring: every relayed queue has a status row from the moment it is saved (the schedule keeps its state there).

Connected by :meth:`relay.apps.RelayConfig.ready`, so a queue saved with the
ORM anywhere (the admin, an import, a data migration, ``manage.py shell``) has
its row.
"""
from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import RelayedQueue
from .runs.queue_status import ensure_status_rows


@receiver(post_save, sender=RelayedQueue, dispatch_uid="relay.queue_status_row")
def ensure_status_row(sender, instance: RelayedQueue, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        ensure_status_rows([instance])
