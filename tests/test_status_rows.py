"""Every relayed queue has its status row from the moment it is saved, however it was saved."""
from __future__ import annotations

import pytest

from relay.engine.connections import OwnConnections
from relay.models import QueueStatus, RelayedQueue
from relay.scheduling.sweep import sweep

from . import services

pytestmark = pytest.mark.django_db(transaction=True)

SAVE_WITH_THE_ORM = """
from relay.models import BrokerConnection, QueueStatus, RelayedQueue
queue = RelayedQueue.objects.create(name="{name}", queue_name="{name}", source_url="{dsn}",
                                    connection=BrokerConnection.objects.get(pk={broker}))
print("status row:", QueueStatus.objects.filter(queue=queue).exists())
"""


def test_a_queue_saved_with_the_orm_in_a_plain_process_has_its_status_row(source_dsn, broker):
    name = services.unique("orm")
    done = services.manage("shell", "-c", SAVE_WITH_THE_ORM.format(name=name, dsn=source_dsn, broker=broker.pk))
    assert done.returncode == 0, done.stderr
    assert "status row: True" in done.stdout
    assert QueueStatus.objects.filter(queue__name=name).exists()


def test_the_sweep_gives_a_row_to_a_queue_inserted_without_signals_and_goes_on(source_dsn, broker, pgq_queue):
    RelayedQueue.objects.bulk_create([RelayedQueue(name="bulk", queue_name=pgq_queue, source_url=source_dsn,
                                                   connection=broker)])  # bulk_create sends no post_save
    assert not QueueStatus.objects.filter(queue__name="bulk").exists()

    result = sweep(OwnConnections())

    assert result.sources == 1 and result.unreachable == []
    assert QueueStatus.objects.filter(queue__name="bulk").exists()
