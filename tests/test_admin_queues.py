"""Retiring a queue in the admin: the confirmation says what happens to its PgQ consumer, and it happens."""
from __future__ import annotations

import pytest
from django.urls import reverse

from relay.models import BrokerConnection, RelayedQueue

from . import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue(source_dsn, pgq_queue):
    broker = BrokerConnection.objects.create(name=services.unique("rabbit").replace("_", "-"), hosts="127.0.0.1")
    return RelayedQueue.objects.create(name=pgq_queue.replace("_", "-"), queue_name=pgq_queue,
                                       source_url=source_dsn, connection=broker)


def registered(dsn, queue_name):
    return services.sql(dsn, "SELECT count(*) FROM pgq.get_consumer_info(%s, 'mikkoo')", (queue_name,))[0][0]


def test_the_confirmation_page_says_events_will_no_longer_be_kept(admin_client, queue):
    page = admin_client.get(reverse("admin:relay_relayedqueue_delete", args=[queue.pk])).content.decode()

    assert "PgQ will no longer keep events for it" in page


def test_deleting_a_queue_unregisters_its_consumer(admin_client, queue, source_dsn):
    response = admin_client.post(reverse("admin:relay_relayedqueue_delete", args=[queue.pk]), {"post": "yes"},
                                 follow=True)

    assert not RelayedQueue.objects.filter(pk=queue.pk).exists()
    assert registered(source_dsn, queue.queue_name) == 0
    assert f"consumer mikkoo unregistered from PgQ queue {queue.queue_name}" in response.content.decode()


def test_with_unregister_off_the_consumer_keeps_its_events(admin_client, queue, source_dsn):
    RelayedQueue.objects.filter(pk=queue.pk).update(unregister=False)
    page = admin_client.get(reverse("admin:relay_relayedqueue_delete", args=[queue.pk])).content.decode()
    assert "stays registered" in page

    admin_client.post(reverse("admin:relay_relayedqueue_delete", args=[queue.pk]), {"post": "yes"})

    assert not RelayedQueue.objects.filter(pk=queue.pk).exists()
    assert registered(source_dsn, queue.queue_name) == 1


def test_an_unreachable_source_keeps_the_queue_and_says_why(admin_client, queue):
    RelayedQueue.objects.filter(pk=queue.pk).update(source_url="postgres://app:hunter2@127.0.0.1:1/gone")

    response = admin_client.post(reverse("admin:relay_relayedqueue_delete", args=[queue.pk]), {"post": "yes"},
                                 follow=True)

    page = response.content.decode()
    assert RelayedQueue.objects.filter(pk=queue.pk).exists()
    assert "was not deleted" in page and "connecting failed" in page and "hunter2" not in page
