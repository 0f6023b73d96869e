"""Dead letters: events the relay gave up on, copied into the admin to be replayed or discarded."""
from __future__ import annotations

from django.db import models

from .queues import RelayedQueue


class DeadLetter(models.Model):
    """An event the relay gave up on, copied from the source database's dead-letter table."""

    queue = models.ForeignKey(RelayedQueue, on_delete=models.CASCADE, related_name="dead_letters",
                              verbose_name="queue", help_text="The relayed queue the event came from.")
    source_id = models.BigIntegerField(
        "source row id", help_text="Id of the row in mikkoo_relay.dead_letter in the source database.")
    event_id = models.BigIntegerField("event id", help_text="PgQ ev_id.")
    event_txid = models.BigIntegerField("txid", null=True, blank=True, help_text="PgQ ev_txid.")
    event_time = models.DateTimeField("event time", null=True, blank=True, help_text="PgQ ev_time.")
    event_type = models.TextField("type", blank=True, help_text="ev_type: the routing key.")
    event_data = models.TextField("data", blank=True, help_text="ev_data: the message body.")
    extra1 = models.TextField("extra1", blank=True, help_text="ev_extra1: the exchange.")
    extra2 = models.TextField("extra2", blank=True, help_text="ev_extra2: the content type.")
    extra3 = models.TextField("extra3", blank=True, help_text="ev_extra3: AMQP properties (JSON).")
    extra4 = models.TextField("extra4", blank=True, help_text="ev_extra4: AMQP headers (JSON).")
    reason = models.TextField("reason", help_text="Why the event could not be published.")
    failures = models.PositiveIntegerField("failures", help_text="How often publishing it failed.")
    first_failed_at = models.DateTimeField("first failure", null=True, blank=True,
                                           help_text="When publishing the event first failed.")
    dead_lettered_at = models.DateTimeField("dead-lettered at",
                                            help_text="When the relay gave up on the event: its last failure.")
    replayed_at = models.DateTimeField("replayed at", null=True, blank=True,
                                       help_text="When the event was put back into its PgQ queue from the admin.")
    replayed_by = models.CharField("replayed by", max_length=150, blank=True,
                                   help_text="Who put the event back into its PgQ queue.")

    class Meta:
        verbose_name = "dead letter"
        verbose_name_plural = "dead letters"
        ordering = ["-dead_lettered_at"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "source_id"], name="dead_letter_once_per_source_row"),
        ]

    def __str__(self) -> str:
        return f"{self.queue} event {self.event_id}"
