"""The queue overview: samples the worker records from PgQ, and the admin page that draws them."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from relay.engine.connections import OwnConnections
from relay.models import QueueSample, QueueStatus, RelayedQueue
from relay.ops.overview import STATES, state_counts, with_state
from relay.ops.processes import claim_sweep, worker_heartbeat
from relay.runs.run_queue import relay_queue
from relay.scheduling.samples import record_samples

from . import services

pytestmark = pytest.mark.django_db

URL = "admin:relay_queueoverview_changelist"


class CountingConnections(OwnConnections):
    """Its own connections, counted: how many the sampler opened."""

    def __init__(self) -> None:
        self.opened: list[str] = []

    def source(self, dsn: str):
        self.opened.append(dsn)
        return super().source(dsn)


def add_queue(broker, dsn: str, pgq_queue: str, **fields) -> RelayedQueue:
    queue = RelayedQueue.objects.create(name=pgq_queue.replace("_", "-"), queue_name=pgq_queue, source_url=dsn,
                                        connection=broker, retry_delay=0, **fields)
    QueueStatus.objects.filter(queue=queue).update(consumer_registered_at=timezone.now())
    return queue


@pytest.fixture
def viewer(django_user_model, client):
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_queue_overview"))
    client.force_login(user)
    return client


@pytest.fixture
def two_more_queues(source_dsn, audited_dsn):
    with services.fresh_queue(source_dsn, "ov") as first, services.fresh_queue(audited_dsn, "ov") as second:
        yield first, second


def test_one_sample_per_queue_with_one_connection_per_source_database(
        broker, source_dsn, audited_dsn, pgq_queue, two_more_queues):
    busy = add_queue(broker, source_dsn, pgq_queue)
    idle = add_queue(broker, source_dsn, two_more_queues[0])
    elsewhere = add_queue(broker, audited_dsn, two_more_queues[1])
    services.insert_events(source_dsn, pgq_queue, [("k", str(n), "", "", "", "") for n in range(7)])
    services.tick(source_dsn, pgq_queue)
    connections = CountingConnections()

    result = record_samples(connections)

    assert sorted(connections.opened) == sorted([source_dsn, audited_dsn])
    assert (result.samples, result.sources, result.unreadable) == (3, 2, 0)
    samples = {s.queue_id: s for s in QueueSample.objects.all()}
    # PgQ's estimate, from event ids: the forced tick moved them on by about 2,000.
    assert samples[busy.pk].pending_events >= 7
    assert samples[idle.pk].pending_events == 0 and samples[elsewhere.pk].pending_events == 0
    assert all(s.consumer_lag is not None and s.consumer_lag >= 0 for s in samples.values())


def test_a_source_that_cannot_be_read_leaves_a_gap_and_the_others_are_sampled(broker, source_dsn, pgq_queue):
    reachable = add_queue(broker, source_dsn, pgq_queue)
    down = add_queue(broker, "postgres://relay:secret@127.0.0.1:1/nowhere", "gone_queue")

    result = record_samples(OwnConnections())

    assert (result.samples, result.unreadable) == (2, 1)
    assert QueueSample.objects.get(queue=down).consumer_lag is None
    assert QueueSample.objects.get(queue=down).pending_events is None
    assert QueueSample.objects.get(queue=reachable).consumer_lag is not None


def test_samples_older_than_a_day_are_pruned_and_a_second_beat_adds_none(broker, source_dsn, pgq_queue):
    queue = add_queue(broker, source_dsn, pgq_queue)
    now = timezone.now()
    QueueSample.objects.create(queue=queue, taken_at=now - timedelta(hours=25), published=0)
    QueueSample.objects.create(queue=queue, taken_at=now - timedelta(hours=23), published=0)

    assert record_samples(OwnConnections(), now=now).pruned == 1
    assert record_samples(OwnConnections(), now=now + timedelta(seconds=10), unless_sampled_within=30).skipped
    assert QueueSample.objects.count() == 2


def test_the_sql_state_is_the_status_state(broker, source_dsn):
    now = timezone.now()
    earlier, later = now - timedelta(minutes=5), now - timedelta(minutes=1)
    statuses = {
        "never registered": {"consumer_registered_at": None},
        "healthy": {},
        "recovered": {"last_error_at": earlier, "last_success_at": later},
        "failing": {"last_error_at": later, "last_success_at": earlier},
        "failed, never succeeded": {"last_error_at": later},
        "backing off": {"last_error_at": later, "backoff_until": now + timedelta(seconds=30)},
        "backoff over": {"last_error_at": later, "backoff_until": now - timedelta(seconds=1)},
        "stuck": {"work_waiting_since": earlier, "last_run_at": earlier},
        "stuck, never run": {"work_waiting_since": earlier},
        "waiting, run since": {"work_waiting_since": earlier, "last_run_at": now - timedelta(seconds=1)},
        "waiting, held by a slice": {"work_waiting_since": earlier, "lease_until": now + timedelta(seconds=5)},
        "waiting a moment": {"work_waiting_since": now - timedelta(seconds=1)},
    }
    for index, fields in enumerate(statuses.values()):
        queue = RelayedQueue.objects.create(name=f"q{index}", queue_name=f"q{index}", source_url=source_dsn,
                                            connection=broker)
        QueueStatus.objects.filter(queue=queue).update(**{"consumer_registered_at": now, **fields})
    no_status = RelayedQueue.objects.create(name="no-status", queue_name="x", source_url=source_dsn,
                                            connection=broker)
    QueueStatus.objects.filter(queue=no_status).delete()

    for queue in with_state(RelayedQueue.objects.select_related("status"), now):
        expected = queue.status.state(now) if hasattr(queue, "status") else "consumer not registered"
        assert queue.state == expected, queue.name
    assert {state for state, _ in state_counts(now)} <= set(STATES)
    assert dict(state_counts(now))["stuck"] == 2


def test_only_staff_with_the_permission_see_the_page(django_user_model, client):
    url = reverse(URL)
    assert client.get(url).status_code == 302  # to the login page

    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_relayedqueue"))
    client.force_login(staff)
    assert client.get(url).status_code == 403
    assert url not in client.get(reverse("admin:index")).content.decode()

    staff.user_permissions.add(Permission.objects.get(codename="view_queue_overview"))
    client.force_login(django_user_model.objects.get(pk=staff.pk))
    assert client.get(url).status_code == 200
    index = client.get(reverse("admin:index")).content.decode()
    assert url in index and "Queue overview" in index


def row_of(content: str, name: str) -> str:
    return re.search(rf'<tr id="queue-{re.escape(name)}".*?</tr>', content, re.S).group(0)


@pytest.mark.django_db(transaction=True)
def test_a_relayed_queue_shows_its_rate_lag_pending_and_chart(viewer, broker, source_dsn, pgq_queue, exchange,
                                                              bind_queue):
    queue = add_queue(broker, source_dsn, pgq_queue)
    failing = add_queue(broker, "postgres://relay:secret@127.0.0.1:1/nowhere", "down_queue")
    bind_queue(exchange)
    start = timezone.now() - timedelta(minutes=2)
    record_samples(OwnConnections(), now=start)
    services.insert_events(source_dsn, pgq_queue, [("k", str(n), exchange, "", "", "") for n in range(120)])
    services.tick(source_dsn, pgq_queue)
    assert relay_queue(queue).published == 120
    with pytest.raises(Exception, match="nowhere"):
        relay_queue(failing)
    services.insert_events(source_dsn, pgq_queue, [("k", "waiting", exchange, "", "", "")])
    services.tick(source_dsn, pgq_queue)
    record_samples(OwnConnections(), now=start + timedelta(minutes=1))

    content = viewer.get(reverse(URL)).content.decode()

    row = row_of(content, queue.name)
    assert 'data-state="healthy"' in row
    assert '<td class="number rate">2.0</td>' in row  # 120 events in the minute between the samples
    pending = re.search(r'<td class="number pending">([\d,]+)</td>', row).group(1)
    assert int(pending.replace(",", "")) >= 1  # PgQ's estimate: the forced tick adds about 2,000
    assert re.search(r'<td class="lag">\d+ s</td>', row)
    assert '<svg class="relay-chart"' in row and 'class="rate area"' in row and 'class="lag line"' in row
    assert "up to 2.0 events/s published" in row
    down = row_of(content, failing.name)
    assert 'data-state="backing off"' in down and "nowhere" in down and "secret" not in content
    assert "<script" not in content.split('id="content-main"')[1]  # the chart is SVG, drawn on the server


def test_a_page_costs_the_same_queries_with_3_queues_or_120(viewer, broker, source_dsn):
    def make(count: int) -> None:
        start = RelayedQueue.objects.count()
        queues = RelayedQueue.objects.bulk_create(
            [RelayedQueue(name=f"bulk-{start + n:04d}", queue_name=f"bulk_{start + n}", source_url=source_dsn,
                          connection=broker) for n in range(count)])
        QueueStatus.objects.bulk_create([QueueStatus(queue=q, consumer_registered_at=timezone.now())
                                         for q in queues])
        now = timezone.now()
        QueueSample.objects.bulk_create([QueueSample(queue=q, taken_at=now - timedelta(minutes=m), published=100 - m,
                                                     consumer_lag=1.0, pending_events=0)
                                         for q in queues for m in range(60)])

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert viewer.get(reverse(URL)).status_code == 200
        return len(captured)

    make(3)
    few = queries()
    make(117)
    assert queries() == few
    assert 5 <= few <= 9  # session and user, states counted, the page's count, queues, samples, workers

    content = viewer.get(reverse(URL)).content.decode()
    assert content.count('<tr id="queue-') == 50
    assert "1-50 of 120" in content
    second = viewer.get(reverse(URL) + "?page=3").content.decode()
    assert second.count('<tr id="queue-') == 20 and "bulk-0119" in second


def test_the_page_filters_by_state(viewer, broker, source_dsn):
    add_queue(broker, source_dsn, "healthy_one")
    RelayedQueue.objects.create(name="off", queue_name="off", source_url=source_dsn, connection=broker,
                                enabled=False)

    content = viewer.get(reverse(URL) + "?state=disabled").content.decode()

    assert 'id="queue-off"' in content and 'id="queue-healthy-one"' not in content
    assert "1 disabled" in content and "1 healthy" in content and "all 2" in content


def test_the_page_says_which_workers_are_alive_when_beat_swept_and_which_queue_is_stuck(viewer, broker, source_dsn):
    now = timezone.now()
    stuck = add_queue(broker, source_dsn, "stuck_one")
    busy = add_queue(broker, source_dsn, "busy_one")
    QueueStatus.objects.filter(queue=stuck).update(work_waiting_since=now - timedelta(minutes=2),
                                                   last_run_at=now - timedelta(minutes=3))
    QueueStatus.objects.filter(queue=busy).update(lease_until=now + timedelta(seconds=8), relayed_by="w2@relay-b")
    worker_heartbeat("w1@relay-a", now - timedelta(seconds=1), watching=2)
    worker_heartbeat("w9@relay-gone", now - timedelta(minutes=5), watching=0)

    content = viewer.get(reverse(URL)).content.decode()

    workers = re.search(r'<p id="relay-workers">(.*?)</p>', content, re.S).group(1)
    assert "relay-a (seen 1 s ago, watching 2 source databases)" in workers
    assert "relay-gone" not in workers  # not seen for five minutes: gone
    assert "never ran" in content and "is beat running" in content
    assert re.search(r'id="queue-stuck-one" class="state-stuck"', content)
    assert re.search(r'id="queue-busy-one".*?relayed now by w2@relay-b', content, re.S)

    assert claim_sweep(timezone.now())
    assert not claim_sweep(timezone.now())  # a second beat in the same period sweeps nothing
    content = viewer.get(reverse(URL)).content.decode()
    assert re.search(r'<span id="relay-sweep">last ran \d+ s ago</span>', content)
    assert "is beat running" not in content
