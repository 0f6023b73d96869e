"""Dead letters for operators: listed with the whole event, replayed end to end, discarded after confirmation."""
from __future__ import annotations

import pytest
from django.urls import reverse

from relay.amqp.broker import BrokerLink
from relay.engine.connections import ConnectionPool
from relay.models import DeadLetter, RelayedQueue
from relay.runs.run_queue import relay_queue

from . import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue(source_dsn, pgq_queue, broker):
    return RelayedQueue.objects.create(name=pgq_queue.replace("_", "-"), queue_name=pgq_queue,
                                       source_url=source_dsn, connection=broker, max_failures=1, retry_delay=0)


@pytest.fixture
def dead(queue, source_dsn, exchange):
    """Two events given up on: one unroutable (nothing bound yet), one with invalid properties."""
    services.insert_events(source_dsn, queue.queue_name, [
        ("orders.created", '{"id": 7}', exchange, "application/json", '{"type": "order"}', '{"tenant": "a"}'),
        ("orders.broken", "x", exchange, "", "{not json", ""),
    ])
    services.tick(source_dsn, queue.queue_name)
    assert relay_queue(queue).dead_lettered == 2
    return DeadLetter.objects.filter(queue=queue).order_by("event_id")


def test_the_list_shows_each_dead_letter_with_its_reason_and_the_queue_list_counts_them(dead, queue, admin_client):
    page = admin_client.get(reverse("admin:relay_deadletter_changelist")).content.decode()
    assert "unroutable: NO_ROUTE" in page and "ev_extra3 is not valid JSON" in page

    invalid_only = admin_client.get(reverse("admin:relay_deadletter_changelist") + "?reason_kind=invalid")
    assert [d.event_type for d in invalid_only.context["cl"].result_list] == ["orders.broken"]

    queues = admin_client.get(reverse("admin:relay_relayedqueue_changelist"))
    [row] = queues.context["cl"].result_list
    assert row.dead_letter_count == 2

    detail = admin_client.get(reverse("admin:relay_deadletter_change", args=[dead[0].pk])).content.decode()
    for shown in ("orders.created", "{&quot;id&quot;: 7}", "application/json", "{&quot;tenant&quot;: &quot;a&quot;}"):
        assert shown in detail


def test_a_replayed_event_arrives_once_the_cause_is_fixed(dead, queue, source_dsn, exchange, bind_queue, amqp,
                                                          admin_client, admin_user):
    target = bind_queue(exchange, "orders.created")  # the fix: now somebody listens
    unroutable = dead[0]

    response = admin_client.post(reverse("admin:relay_deadletter_changelist"),
                                 {"action": "replay", "_selected_action": [unroutable.pk]}, follow=True)

    assert "1 events put back into their PgQ queues" in response.content.decode()
    unroutable.refresh_from_db()
    assert unroutable.replayed_at is not None and unroutable.replayed_by == admin_user.username
    services.tick(source_dsn, queue.queue_name)
    assert relay_queue(queue).published == 1
    [message] = services.drain(amqp, target, expected=1)
    assert message.body == b'{"id": 7}'
    assert message.properties["type"] == "order"
    assert message.properties["application_headers"]["tenant"] == "a"


def test_a_replay_right_after_the_missing_exchange_was_declared_is_delivered(
        queue, source_dsn, absent_exchange, bind_queue, amqp, admin_client, monkeypatch):
    # A worker keeps its broker link from one run to the next, and what the link learnt of exchanges for
    # a while: a long while here, so that the replay surely comes while the first answer is still known.
    monkeypatch.setattr(BrokerLink, "exchange_check_seconds", 60.0)
    worker_connections = ConnectionPool()
    services.insert_events(source_dsn, queue.queue_name,
                           [("orders.created", '{"id": 8}', absent_exchange, "", "", "")])
    services.tick(source_dsn, queue.queue_name)
    try:
        assert relay_queue(queue, connections=worker_connections).dead_lettered == 1
        [letter] = DeadLetter.objects.filter(queue=queue)
        assert (letter.reason, letter.failures) == (f"exchange {absent_exchange!r} does not exist", 1)

        # The fix, then the replay at once.
        channel = amqp.channel()
        channel.exchange_declare(absent_exchange, "topic", durable=True, auto_delete=False)
        channel.close()
        target = bind_queue(absent_exchange, "orders.#")
        admin_client.post(reverse("admin:relay_deadletter_changelist"),
                          {"action": "replay", "_selected_action": [letter.pk]})
        services.tick(source_dsn, queue.queue_name)
        replayed = relay_queue(queue, connections=worker_connections)
    finally:
        worker_connections.close()

    assert (replayed.published, replayed.retried, replayed.dead_lettered) == (1, 0, 0)
    [message] = services.drain(amqp, target, expected=1)
    assert message.body == b'{"id": 8}'
    assert services.sql(source_dsn, "SELECT count(*) FROM mikkoo_relay.dead_letter WHERE queue_name = %s",
                        (queue.queue_name,)) == [(1,)]
    assert DeadLetter.objects.filter(queue=queue, replayed_at__isnull=True).count() == 0


def test_discarding_asks_first_then_removes_the_rows(dead, admin_client):
    url = reverse("admin:relay_deadletter_changelist")
    ids = [letter.pk for letter in dead]

    confirmation = admin_client.post(url, {"action": "discard", "_selected_action": ids})
    assert confirmation.status_code == 200 and "Are you sure" in confirmation.content.decode()
    assert DeadLetter.objects.filter(pk__in=ids).count() == 2

    admin_client.post(url, {"action": "discard", "_selected_action": ids, "post": "yes"})
    assert DeadLetter.objects.filter(pk__in=ids).count() == 0


@pytest.fixture
def big(queue):
    """A dead letter with a 5 MB body and large extras and reason, as a producer's bug can make."""
    return DeadLetter.objects.create(
        queue=queue, source_id=99, event_id=99, event_type="orders.huge", event_data="B" * 5_000_000,
        extra3="{" + "3" * 1_000_000 + "}", reason="ev_extra3 is not valid JSON: " + "R" * 100_000, failures=1,
        dead_lettered_at="2026-01-01T00:00:00Z")


def test_a_big_dead_letter_lists_as_a_prefix_and_its_size(big, admin_client):
    response = admin_client.get(reverse("admin:relay_deadletter_changelist"))

    page = response.content.decode()
    assert response.status_code == 200 and len(response.content) < 200_000
    assert "B" * 120 + "… (5,000,000 characters)" in page
    assert "(100,029 characters)" in page


def test_its_page_shows_a_bounded_preview_and_offers_the_whole_body(big, admin_client, django_user_model, client):
    response = admin_client.get(reverse("admin:relay_deadletter_change", args=[big.pk]))

    page = response.content.decode()
    assert response.status_code == 200 and len(response.content) < 300_000
    assert "The first 10,000 of 5,000,000 characters." in page
    download = reverse("admin:relay_deadletter_download", args=[big.pk, "event_data"])
    assert download in page

    whole = admin_client.get(download)
    assert whole.status_code == 200
    assert whole["Content-Disposition"] == f'attachment; filename="dead-letter-{big.pk}-event_data.txt"'
    assert whole["Content-Type"] == "application/octet-stream"
    assert whole.content == b"B" * 5_000_000
    assert admin_client.get(reverse("admin:relay_deadletter_download", args=[big.pk, "password"])).status_code == 404

    # Staff who may not see dead letters cannot download them either.
    stranger = django_user_model.objects.create_user("stranger", password="x-123-stranger", is_staff=True)
    client.force_login(stranger)
    assert client.get(download).status_code == 403
