"""The admin's audit status page, end to end on the real services, and its verdict rules."""
from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings
from django.urls import reverse

from relay.audit.status import (
    ALL_DELIVERED,
    BEHIND,
    FAILING,
    PAGE_SIZE,
    STUCK,
    AuditCounts,
    PgqState,
    SourceReader,
    SourceReading,
    Verdict,
    judge,
)
from relay.core.errors import BrokerUnavailable, RelayError
from relay.models import BrokerConnection, RelayedQueue
from relay.runs.run_queue import relay_queue

from . import services

SECRET = "s3cret-Pa55"
STATUS_URL = "admin:relay_auditstatus_changelist"


# -- the verdict rules, as a pure function --------------------------------------------------------

LIMIT = timedelta(minutes=5)
QUIET = PgqState(consumer_lag=timedelta(seconds=1), ticker_lag=timedelta(seconds=1))


def audit(outstanding=0, oldest=None, confirmed=10, dead=0):
    return AuditCounts(audited=confirmed + dead + outstanding, confirmed=confirmed, dead_lettered=dead,
                       outstanding=outstanding, oldest_outstanding_age=oldest)


def verdict(audit_counts=None, pgq=QUIET, **kwargs):
    return judge(SourceReading(pgq=pgq, audit=audit_counts), stuck_after=LIMIT, **kwargs)


def test_nothing_outstanding_is_all_delivered():
    assert verdict(audit()) == Verdict(ALL_DELIVERED,
                                       "nothing outstanding: every audited event was confirmed by RabbitMQ")


def test_dead_lettered_events_are_named_but_the_queue_is_delivered():
    result = verdict(audit(dead=2))
    assert result.state == ALL_DELIVERED
    assert "2 audited events dead-lettered" in result.reason


def test_without_audit_sql_the_verdict_rests_on_pgq():
    assert verdict(None).state == ALL_DELIVERED
    assert "no audit SQL" in verdict(None).reason
    assert verdict(None, PgqState(pending_events=3, consumer_lag=timedelta(seconds=2))).state == BEHIND


def test_young_outstanding_or_pending_events_are_behind():
    result = verdict(audit(outstanding=3, oldest=timedelta(seconds=4)),
                     PgqState(pending_events=3, new_events=1, consumer_lag=timedelta(seconds=4)))
    assert result.state == BEHIND
    assert result.reason == ("3 audited events outstanding (the oldest 4 s old); 3 events pending in PgQ; "
                             "1 event waiting for a tick")


def test_an_event_outstanding_longer_than_the_limit_is_stuck():
    result = verdict(audit(outstanding=1, oldest=timedelta(minutes=12)))
    assert result.state == STUCK
    assert result.reason == "1 audited event outstanding, the oldest for 12 min (limit 5 min)"


def test_counts_that_stopped_at_the_limit_say_so():
    many = AuditCounts(audited=100_000, confirmed=90_000, dead_lettered=7, outstanding=100_000,
                       oldest_outstanding_age=timedelta(seconds=30), partial=True, outstanding_partial=True)
    assert verdict(many).reason.startswith("over 100,000 audited events outstanding (the oldest 30 s old)")
    delivered = AuditCounts(audited=100_000, confirmed=90_000, dead_lettered=7, outstanding=0, partial=True)
    assert verdict(delivered).reason == ("nothing outstanding; at least 7 audited events dead-lettered "
                                         "(see Dead letters)")


def test_events_waiting_for_a_tick_that_does_not_come_are_stuck_on_pgqd():
    result = verdict(None, PgqState(new_events=4, ticker_lag=timedelta(minutes=7)))
    assert result.state == STUCK
    assert result.reason == "no PgQ tick for 7 min with 4 events waiting for one: is pgqd running?"
    # An idle queue ticks rarely; without events waiting that is no problem.
    assert verdict(None, PgqState(ticker_lag=timedelta(minutes=7))).state == ALL_DELIVERED


def test_pending_events_the_relay_does_not_take_are_stuck_on_the_relay():
    result = verdict(None, PgqState(pending_events=9, consumer_lag=timedelta(hours=2)))
    assert result.state == STUCK
    assert result.reason == "the relay has not finished a batch for 2 h with 9 events pending: is the relay running?"


def test_a_queue_the_relay_never_touched_is_behind():
    assert verdict(None, PgqState(queue_exists=False, registered=False)).state == BEHIND
    assert "not registered" in verdict(None, PgqState(registered=False)).reason


def test_failing_wins_over_everything():
    stuck = audit(outstanding=1, oldest=timedelta(hours=1))
    assert verdict(stuck, failing=True, last_error="RabbitMQ down") == Verdict(
        FAILING, "the relay's last run ended in an error: RabbitMQ down")
    assert judge(None, read_error="connecting failed", stuck_after=LIMIT) == Verdict(
        FAILING, "the source database cannot be read: connecting failed")


# -- the page on the real services ----------------------------------------------------------------

class Rows(HTMLParser):
    """The text of each cell of ``#audit-status`` (or any table), by row id and cell class."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.row: dict[str, str] | None = None
        self.cells: list[str] = []  # classes of the cells open now
        self.meta_refresh: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "meta" and attrs.get("http-equiv") == "refresh":
            self.meta_refresh = attrs.get("content")
        if tag == "tr" and attrs.get("id", "").startswith("queue-"):
            self.row = self.rows.setdefault(attrs["id"][len("queue-"):], {"state": attrs.get("data-verdict")})
        elif self.row is not None and tag in ("td", "th", "span", "div", "a"):
            self.cells.append(" ".join(c for c in (attrs.get("class") or "").split() if c != "number"))

    def handle_endtag(self, tag):
        if tag == "tr":
            self.row = None
        elif self.row is not None and tag in ("td", "th", "span", "div", "a") and self.cells:
            self.cells.pop()

    def handle_data(self, data):
        if self.row is not None:
            for name in self.cells:
                if name:
                    self.row[name] = " ".join((self.row.get(name, "") + " " + data).split())


def page_rows(client) -> Rows:
    response = client.get(reverse(STATUS_URL))
    assert response.status_code == 200
    parser = Rows()
    parser.feed(response.content.decode())
    return parser


@pytest.fixture
def auditor(django_user_model, client):
    """A staff member with the audit status permission, logged in."""
    user = django_user_model.objects.create_user("auditor", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_audit_status"))
    client.force_login(user)
    return client


def configure(dsn, pgq_queue, max_failures=10, **connection):
    broker = BrokerConnection.objects.create(name=services.unique("rabbit").replace("_", "-"),
                                             hosts="127.0.0.1", **connection)
    return RelayedQueue.objects.create(name=pgq_queue.replace("_", "-"), queue_name=pgq_queue, source_url=dsn,
                                       connection=broker, retry_delay=0, max_failures=max_failures)


@pytest.mark.django_db
def test_relayed_audited_events_show_as_delivered(auditor, audited_dsn, audited_queue, exchange, bind_queue):
    bind_queue(exchange)
    queue = configure(audited_dsn, audited_queue)
    services.insert_audited_events(audited_dsn, audited_queue, exchange, "order.created", ["1", "2", "3"])
    services.tick(audited_dsn, audited_queue)
    relay_queue(queue)

    page = page_rows(auditor)

    row = page.rows[queue.name]
    assert row["state"] == row["verdict"] == ALL_DELIVERED
    assert row["reason"] == "nothing outstanding: every audited event was confirmed by RabbitMQ"
    assert (row["audited"], row["confirmed"], row["dead-lettered"], row["outstanding"]) == ("3", "3", "0", "0")
    assert row["pending"] == "0"
    assert row["last-batch"].endswith("ago") and row["last-error"] == "-"
    assert page.meta_refresh == "5"


@pytest.mark.django_db
def test_with_rabbitmq_unreachable_the_events_are_outstanding_and_the_queue_failing(
        auditor, audited_dsn, audited_queue, exchange):
    queue = configure(audited_dsn, audited_queue, port=1, password=SECRET, connect_timeout=2)
    services.insert_audited_events(audited_dsn, audited_queue, exchange, "order.created", ["1", "2"])
    services.tick(audited_dsn, audited_queue)
    with pytest.raises(BrokerUnavailable):
        relay_queue(queue)

    response = auditor.get(reverse(STATUS_URL))
    row = page_rows(auditor).rows[queue.name]

    assert row["verdict"] == FAILING
    assert row["reason"].startswith("the relay's last run ended in an error: RabbitMQ amqp://guest@127.0.0.1:1/: "
                                    "cannot connect")
    assert (row["audited"], row["confirmed"], row["outstanding"]) == ("2", "0", "2")
    # PgQ estimates pending events from event ids, which a forced tick (as in the tests) advances by 1,000.
    assert int(row["pending"].replace(",", "")) >= 2
    assert "cannot connect" in row["last-error"]
    assert SECRET not in response.content.decode()


@pytest.mark.django_db
def test_a_dead_lettered_audited_event_shows_as_dead_lettered(auditor, audited_dsn, audited_queue, exchange):
    queue = configure(audited_dsn, audited_queue, max_failures=1)
    services.insert_audited_events(audited_dsn, audited_queue, exchange, "nobody.listens", ["lost?"])
    services.tick(audited_dsn, audited_queue)
    assert relay_queue(queue).dead_lettered == 1

    row = page_rows(auditor).rows[queue.name]

    assert (row["audited"], row["confirmed"], row["dead-lettered"], row["outstanding"]) == ("1", "0", "1", "0")
    assert row["verdict"] == ALL_DELIVERED
    assert row["reason"] == "nothing outstanding; 1 audited event dead-lettered (see Dead letters)"


@pytest.mark.django_db
def test_an_event_outstanding_too_long_makes_the_queue_stuck(auditor, audited_dsn, audited_queue, exchange):
    queue = configure(audited_dsn, audited_queue)
    services.insert_audited_events(audited_dsn, audited_queue, exchange, "k", ["1"])
    services.sql(audited_dsn, "UPDATE mikkoo.audit SET published_at = now() - interval '1 hour' WHERE queue = %s",
                 (audited_queue,))

    row = page_rows(auditor).rows[queue.name]

    assert row["verdict"] == STUCK
    assert row["reason"] == "1 audited event outstanding, the oldest for 1 h (limit 5 min)"
    with override_settings(AUDIT_STUCK_AFTER=7200):
        assert page_rows(auditor).rows[queue.name]["verdict"] == BEHIND


@pytest.mark.django_db
def test_events_waiting_for_a_tick_that_never_comes_point_at_pgqd(auditor, source_dsn, pgq_queue):
    queue = configure(source_dsn, pgq_queue)
    services.tick(source_dsn, pgq_queue)
    # The queue's ticks are an hour old, as when pgqd stopped an hour ago.
    services.sql(source_dsn, "UPDATE pgq.tick SET tick_time = tick_time - interval '1 hour' "
                             "WHERE tick_queue = (SELECT queue_id FROM pgq.queue WHERE queue_name = %s)", (pgq_queue,))
    services.insert_events(source_dsn, pgq_queue, [("k", "1", "", "", "", ""), ("k", "2", "", "", "", "")])

    row = page_rows(auditor).rows[queue.name]

    assert row["verdict"] == STUCK
    assert row["reason"] == "no PgQ tick for 1 h with 2 events waiting for one: is pgqd running?"
    assert row["audit-note"] == "no audit SQL in this database: run install_sql to install it"
    assert row["last-tick"] == "1 h ago"


@pytest.mark.django_db
def test_an_unreachable_source_database_is_shown_for_its_queue_only(
        auditor, audited_dsn, audited_queue, exchange, bind_queue, pgq_queue):
    bind_queue(exchange)
    good = configure(audited_dsn, audited_queue)
    services.insert_audited_events(audited_dsn, audited_queue, exchange, "k", ["1"])
    services.tick(audited_dsn, audited_queue)
    relay_queue(good)
    bad = configure(f"postgres://app:{SECRET}@127.0.0.1:1/nowhere", pgq_queue)

    response = auditor.get(reverse(STATUS_URL))
    rows = page_rows(auditor).rows

    assert rows[good.name]["verdict"] == ALL_DELIVERED
    assert rows[bad.name]["verdict"] == FAILING
    assert rows[bad.name]["source-error"].startswith(
        "source database postgres://app:***@127.0.0.1:1/nowhere: connecting failed")
    assert SECRET not in response.content.decode()


@pytest.mark.django_db
def test_a_locked_audit_table_does_not_hold_the_page(auditor, audited_dsn, audited_queue):
    queue = configure(audited_dsn, audited_queue)
    with services.connect(audited_dsn, autocommit=False) as conn, conn.cursor() as cur:
        # What an upgrade's ALTER TABLE holds: nothing may read the table until it commits.
        cur.execute("LOCK TABLE mikkoo.audit IN ACCESS EXCLUSIVE MODE")
        row = page_rows(auditor).rows[queue.name]
        conn.rollback()

    # The page gave up on the lock (its lock_timeout) instead of waiting for it.
    assert row["verdict"] == FAILING
    assert "lock timeout" in row["source-error"]


def test_the_page_reads_on_a_read_only_connection_with_short_timeouts(audited_dsn):
    with SourceReader(audited_dsn) as reader:
        assert reader.query("reading settings", "SHOW transaction_read_only") == [("on",)]
        assert reader.query("reading settings", "SHOW statement_timeout") == [("2s",)]
        with pytest.raises(RelayError, match="read-only transaction"):
            reader.query("writing", "DELETE FROM mikkoo.audit")


@pytest.mark.django_db
def test_the_drill_down_lists_the_outstanding_records_a_page_at_a_time(
        auditor, audited_dsn, audited_queue, exchange):
    queue = configure(audited_dsn, audited_queue)
    ids = services.insert_audited_events(audited_dsn, audited_queue, exchange, "order.created",
                                         [str(n) for n in range(PAGE_SIZE + 10)])
    url = reverse("admin:relay_auditstatus_outstanding", args=[queue.name])

    first = auditor.get(url).content.decode()
    second = auditor.get(url, {"page": 2}).content.decode()

    assert [i for i in ids if i in first] == ids[:PAGE_SIZE]
    assert [i for i in ids if i in second] == ids[PAGE_SIZE:]
    assert 'href="?page=2"' in first and "newer records" in first
    assert 'href="?page=1"' in second and "newer records" not in second
    # The status page links its outstanding figure here.
    assert f'href="{url}"' in auditor.get(reverse(STATUS_URL)).content.decode()


@pytest.mark.django_db
def test_the_drill_down_of_a_delivered_queue_says_nothing_is_outstanding(
        auditor, audited_dsn, audited_queue, exchange, bind_queue):
    bind_queue(exchange)
    queue = configure(audited_dsn, audited_queue)
    services.insert_audited_events(audited_dsn, audited_queue, exchange, "k", ["1"])
    services.tick(audited_dsn, audited_queue)
    relay_queue(queue)

    content = auditor.get(reverse("admin:relay_auditstatus_outstanding", args=[queue.name])).content.decode()

    assert 'id="nothing-outstanding"' in content


@pytest.mark.django_db
def test_only_staff_with_the_permission_see_the_pages(django_user_model, client, source_dsn, pgq_queue):
    queue = configure(source_dsn, pgq_queue)
    status_url = reverse(STATUS_URL)
    outstanding_url = reverse("admin:relay_auditstatus_outstanding", args=[queue.name])

    assert client.get(status_url).status_code == 302  # to the login page

    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_relayedqueue"))
    client.force_login(staff)
    assert client.get(status_url).status_code == 403
    assert client.get(outstanding_url).status_code == 403
    assert status_url not in client.get(reverse("admin:index")).content.decode()

    staff.user_permissions.add(Permission.objects.get(codename="view_audit_status"))
    staff = django_user_model.objects.get(pk=staff.pk)  # permissions are cached on the user object
    client.force_login(staff)
    assert client.get(status_url).status_code == 200
    index = client.get(reverse("admin:index")).content.decode()
    assert status_url in index and "Audit status" in index


@pytest.mark.django_db
def test_split_queues_are_not_on_the_page_they_have_no_rabbitmq_delivery_to_audit(auditor, source_dsn, pgq_queue):
    relayed = configure(source_dsn, pgq_queue)
    RelayedQueue.objects.create(name="split-elsewhere", queue_name="whatever", source_url=source_dsn,
                                target=RelayedQueue.Target.POSTGRES, target_url=source_dsn)

    rows = page_rows(auditor).rows

    assert set(rows) == {relayed.name}
