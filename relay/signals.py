"""Wiring: every relayed queue has a status row from the moment it is saved (the schedule keeps its state there)."""
from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import QueueStatus, RelayedQueue


@receiver(post_save, sender=RelayedQueue, dispatch_uid="relay.queue_status_row")
def ensure_status_row(sender, instance: RelayedQueue, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        QueueStatus.objects.get_or_create(queue=instance)
