"""Dead letters in the admin: copied from the source database that holds them, and replayed into PgQ."""
from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from ..engine.connections import Connections, OwnConnections
from ..models import DeadLetter, RelayedQueue
from ..pgq.consumer import PgqConsumer


def sync_dead_letters(queue: RelayedQueue, connections: Connections | None = None) -> int:
    """Copy dead letters recorded in the source database since the last copy; returns how many.

    The source database holds the truth (written with ``pgq.finish_batch``); a
    copy missed by a crash is picked up by the next run.
    """
    last = queue.dead_letters.order_by("-source_id").values_list("source_id", flat=True).first() or 0
    copied = 0
    dsn = queue.source_dsn()
    with (connections or OwnConnections()).source(dsn) as connection:
        consumer = PgqConsumer(dsn, queue.queue_name, queue.consumer_name, connection)
        while rows := consumer.dead_letters_since(last):
            with transaction.atomic():
                DeadLetter.objects.bulk_create(
                    [
                        DeadLetter(
                            queue=queue, source_id=row["id"], event_id=row["ev_id"],
                            event_txid=row["ev_txid"], event_time=row["ev_time"],
                            event_type=row["ev_type"] or "", event_data=row["ev_data"] or "",
                            extra1=row["ev_extra1"] or "", extra2=row["ev_extra2"] or "",
                            extra3=row["ev_extra3"] or "", extra4=row["ev_extra4"] or "",
                            reason=row["reason"], failures=row["failures"],
                            dead_lettered_at=row["dead_lettered_at"], first_failed_at=row["first_failed_at"],
                        )
                        for row in rows
                    ],
                    ignore_conflicts=True,
                )
            copied += len(rows)
            last = rows[-1]["id"]
    return copied


def replay_dead_letters(letters: Iterable[DeadLetter], user: str) -> int:
    """Put dead-lettered events back into their PgQ queues as they were; returns how many.

    Type, data and extra fields are kept; PgQ gives each a new ev_id, so a
    replayed event also gets a new message_id. Each queue's events are written
    in one transaction, then the rows are marked replayed.
    """
    by_queue: dict[int, list[DeadLetter]] = {}
    for letter in letters:
        if letter.replayed_at is None:
            by_queue.setdefault(letter.queue_id, []).append(letter)
    replayed = 0
    for queue_letters in by_queue.values():
        queue = queue_letters[0].queue
        consumer = PgqConsumer(queue.source_dsn(), queue.queue_name, queue.consumer_name)
        consumer.connect()
        try:
            consumer.insert_events((letter.event_type, letter.event_data, letter.extra1, letter.extra2,
                                    letter.extra3, letter.extra4) for letter in queue_letters)
        finally:
            consumer.close()
        DeadLetter.objects.filter(pk__in=[letter.pk for letter in queue_letters]).update(
            replayed_at=timezone.now(), replayed_by=user)
        replayed += len(queue_letters)
    return replayed
