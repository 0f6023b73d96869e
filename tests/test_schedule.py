"""Which queues the beat dispatcher starts: enabled, not held by a task, not backing off after failures."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from relay.models import BrokerConnection, QueueStatus, RelayedQueue
from relay.schedule import backoff, due_queues

pytestmark = pytest.mark.django_db


@pytest.fixture
def make_queue():
    broker = BrokerConnection.objects.create(name="local", hosts="127.0.0.1")

    def make(name, enabled=True, **status):
        queue = RelayedQueue.objects.create(name=name, queue_name=name, source_url="postgres://db/x",
                                            connection=broker, enabled=enabled)
        if status:
            QueueStatus.objects.create(queue=queue, **status)
        return queue

    return make


def test_due_queues_skip_disabled_held_and_backing_off_ones(make_queue):
    now = timezone.now()
    make_queue("new")
    make_queue("disabled", enabled=False)
    make_queue("held", lease_until=now + timedelta(seconds=5))
    make_queue("lease-expired", lease_until=now - timedelta(seconds=1))
    make_queue("just-failed", last_error="RabbitMQ down", last_error_at=now, failures_in_a_row=3)
    make_queue("failed-long-ago", last_error="RabbitMQ down", last_error_at=now - timedelta(minutes=5),
               failures_in_a_row=9)
    make_queue("recovered", last_error="old", last_error_at=now - timedelta(seconds=1), last_success_at=now)

    assert due_queues() == ["failed-long-ago", "lease-expired", "new", "recovered"]


@pytest.mark.parametrize(("failures", "seconds"), [(0, 1), (1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (50, 60)])
def test_backoff_doubles_up_to_a_minute(failures, seconds):
    assert backoff(failures) == timedelta(seconds=seconds)
