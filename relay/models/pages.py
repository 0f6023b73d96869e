"""No tables: the admin pages that are not model lists get their place in the admin index, and a permission."""
from __future__ import annotations

from django.db import models


class AuditStatus(models.Model):
    """No table: gives the audit status page its place in the admin index, and its permission."""

    class Meta:
        managed = False  # nothing is stored: the page reads mikkoo.audit and PgQ in each source database
        default_permissions = ()
        permissions = [("view_audit_status", "Can view the audit status page")]
        verbose_name = "audit status"
        verbose_name_plural = "audit status"


class QueueOverview(models.Model):
    """No table: gives the queue overview page its place in the admin index, and its permission."""

    class Meta:
        managed = False  # nothing is stored: the page reads the queues, their status and their samples
        default_permissions = ()
        permissions = [("view_queue_overview", "Can view the queue overview page")]
        verbose_name = "queue overview"
        verbose_name_plural = "queue overview"
