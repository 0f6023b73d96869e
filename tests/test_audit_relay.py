"""The relay marks audit records confirmed or dead-lettered, on the real PostgreSQL + PgQ and RabbitMQ."""
from __future__ import annotations

import json
import uuid

import pytest

from relay.core.errors import SourceUnavailable
from relay.engine.amqp_target import AmqpTarget
from relay.engine.connections import OwnConnections
from relay.engine.loop import QueueRelay
from relay.engine.settings import AmqpTargetSettings, QueueSettings
from relay.engine.targets import engine_for
from relay.pgq.consumer import PgqConsumer

from . import services


@pytest.fixture
def settings_for(audited_dsn, audited_queue, broker_settings):
    def make(confirm: bool = True, **overrides) -> QueueSettings:
        values = {"name": audited_queue, "queue_name": audited_queue, "source_dsn": audited_dsn,
                  "target": AmqpTargetSettings(broker=broker_settings, confirm=confirm), "max_failures": 3,
                  "retry_delay": 0, **overrides}
        return QueueSettings(**values)

    return make


def relay(settings, **kwargs):
    return engine_for(settings).run(**kwargs)


def test_the_audit_api_is_detected_only_where_it_is_installed(audited_dsn, audited_queue, source_dsn, pgq_queue):
    found = {}
    for dsn, queue in ((audited_dsn, audited_queue), (source_dsn, pgq_queue)):
        consumer = PgqConsumer(dsn, queue, "mikkoo")
        consumer.connect()
        try:
            consumer.prepare()
            found[dsn] = consumer.audited
        finally:
            consumer.close()
    assert found == {audited_dsn: True, source_dsn: False}


def test_confirmed_events_are_marked_confirmed_and_arrive_with_their_audit_message_id(
        settings_for, audited_dsn, audited_queue, exchange, bind_queue, amqp):
    target = bind_queue(exchange)
    ids = services.insert_audited_events(audited_dsn, audited_queue, exchange, "order.created",
                                         ['{"n": 1}', '{"n": 2}', '{"n": 3}'])
    services.insert_events(audited_dsn, audited_queue, [("order.plain", "not audited", exchange, "", "", "")])
    services.tick(audited_dsn, audited_queue)

    result = relay(settings_for())

    assert (result.published, result.retried, result.dead_lettered) == (4, 0, 0)
    received = services.drain(amqp, target, expected=4)
    assert [m.properties["message_id"] for m in received][:3] == ids
    rows = services.audit_rows(audited_dsn, audited_queue)
    assert [row[0] for row in rows] == ids
    assert all(confirmed and not dead for _, confirmed, dead, _ in rows)


def test_every_window_of_a_large_batch_is_marked(settings_for, audited_dsn, audited_queue, exchange, bind_queue):
    bind_queue(exchange)
    count = 2 * AmqpTarget(settings_for(), OwnConnections()).window_size + 500
    services.sql(audited_dsn, "SELECT count(mikkoo.insert_audited_event(%s, %s, 'bulk', n::text, 'text/plain')) "
                              "FROM generate_series(1, %s) AS n", (audited_queue, exchange, count))
    services.tick(audited_dsn, audited_queue)

    assert relay(settings_for()).published == count

    (confirmed, outstanding) = services.sql(
        audited_dsn, "SELECT count(confirmed_at), count(*) FILTER (WHERE confirmed_at IS NULL) "
                     "FROM mikkoo.audit WHERE queue = %s", (audited_queue,))[0]
    assert (confirmed, outstanding) == (count, 0)


def test_an_unroutable_event_is_outstanding_while_retried_then_dead_lettered_with_the_reason(
        settings_for, audited_dsn, audited_queue, exchange):
    [message_id] = services.insert_audited_events(audited_dsn, audited_queue, exchange, "nobody.listens", ["{}"])
    services.tick(audited_dsn, audited_queue)
    settings = settings_for(max_failures=2)

    assert relay(settings).retried == 1
    assert services.audit_rows(audited_dsn, audited_queue) == [(message_id, None, None, None)]

    services.release_retries(audited_dsn, audited_queue)
    assert relay(settings).dead_lettered == 1

    [(_, confirmed, dead_at, reason)] = services.audit_rows(audited_dsn, audited_queue)
    assert confirmed is None and dead_at is not None
    assert reason.startswith("unroutable")


def test_a_retried_event_is_confirmed_when_it_is_finally_delivered(
        settings_for, audited_dsn, audited_queue, exchange, bind_queue, amqp):
    [message_id] = services.insert_audited_events(audited_dsn, audited_queue, exchange, "late.binding", ["{}"])
    services.tick(audited_dsn, audited_queue)
    assert relay(settings_for()).retried == 1

    target = bind_queue(exchange, "late.#")
    services.release_retries(audited_dsn, audited_queue)
    assert relay(settings_for()).published == 1

    [(mid, confirmed, dead_at, _)] = services.audit_rows(audited_dsn, audited_queue)
    assert (mid, dead_at) == (message_id, None) and confirmed is not None
    assert [m.properties["message_id"] for m in services.drain(amqp, target, expected=1)] == [message_id]


def test_an_event_that_can_never_be_published_is_marked_dead_lettered_at_once(
        settings_for, audited_dsn, audited_queue):
    [message_id] = services.insert_audited_events(audited_dsn, audited_queue, "x" * 300, "too.long", ["{}"])
    services.tick(audited_dsn, audited_queue)

    assert relay(settings_for()).dead_lettered == 1

    [(mid, confirmed, dead_at, reason)] = services.audit_rows(audited_dsn, audited_queue)
    assert mid == message_id and confirmed is None and dead_at is not None
    assert "longer than the 255 bytes" in reason


def test_an_audited_event_nested_too_deep_is_dead_lettered_and_marked_and_the_batch_flows(
        settings_for, audited_dsn, audited_queue, exchange, bind_queue, amqp):
    target = bind_queue(exchange)
    message_id = str(uuid.uuid4())
    deep = '{"a": ' * 600 + "1" + "}" * 600
    services.insert_events(audited_dsn, audited_queue, [
        ("k", "before", exchange, "", "", ""),
        ("k", "deep", exchange, "", f'{{"message_id": "{message_id}", "headers": {deep}}}', ""),
        ("k", "after", exchange, "", "", "")])
    services.sql(audited_dsn, "SELECT mikkoo.new_audit_record(%s, 2, %s, %s, 'k', 'deep', NULL, NULL, NULL)",
                 (message_id, audited_queue, exchange))
    services.tick(audited_dsn, audited_queue)

    result = relay(settings_for())

    assert (result.published, result.dead_lettered) == (2, 1)
    assert sorted(m.body for m in services.drain(amqp, target, expected=2)) == [b"after", b"before"]
    [(mid, confirmed, dead_at, reason)] = services.audit_rows(audited_dsn, audited_queue)
    assert mid == message_id and confirmed is None and dead_at is not None
    assert "nested deeper than" in reason


def test_message_ids_that_are_not_uuids_do_not_stop_the_batch(
        settings_for, audited_dsn, audited_queue, exchange, bind_queue, amqp):
    target = bind_queue(exchange)
    braced = uuid.uuid4()
    # A producer that wrote its own audit record with an id in another spelling PostgreSQL accepts.
    services.sql(audited_dsn, "SELECT mikkoo.new_audit_record(%s, 1, %s, %s, 'k', 'b', NULL, NULL, NULL)",
                 (str(braced), audited_queue, exchange))
    services.insert_events(audited_dsn, audited_queue, [
        ("k", "a", exchange, "", json.dumps({"message_id": "order-42"}), ""),
        ("k", "b", exchange, "", json.dumps({"message_id": "{" + str(braced).upper() + "}"}), ""),
        ("k", "c", exchange, "", json.dumps({"message_id": "urn:uuid:" + str(uuid.uuid4())}), ""),
    ])
    services.tick(audited_dsn, audited_queue)

    assert relay(settings_for()).published == 3

    assert len(services.drain(amqp, target, expected=3)) == 3
    [(mid, confirmed, _, _)] = services.audit_rows(audited_dsn, audited_queue)
    assert mid == str(braced) and confirmed is not None


def test_with_confirms_off_sent_events_are_marked_as_the_relay_counts_them(
        settings_for, audited_dsn, audited_queue, exchange, bind_queue):
    bind_queue(exchange)
    services.insert_audited_events(audited_dsn, audited_queue, exchange, "k", ["1", "2"])
    services.tick(audited_dsn, audited_queue)

    assert relay(settings_for(confirm=False)).published == 2

    assert all(confirmed for _, confirmed, _, _ in services.audit_rows(audited_dsn, audited_queue))


class CrashBeforeFinishing(PgqConsumer):
    """A consumer whose process dies after recording a batch's fate, before the commit."""

    def finish_batch(self, batch_id: int) -> None:
        raise SourceUnavailable("the relay process died before finishing the batch")


def crashing_relay(settings: QueueSettings) -> QueueRelay:
    """The relay with that consumer."""
    connections = OwnConnections()
    return QueueRelay(settings, AmqpTarget(settings, connections), connections, consumer_class=CrashBeforeFinishing)


def test_the_marks_commit_with_the_batch_or_not_at_all(settings_for, audited_dsn, audited_queue, exchange, bind_queue):
    bind_queue(exchange)
    ids = services.insert_audited_events(audited_dsn, audited_queue, exchange, "k", ["1", "2"])
    services.tick(audited_dsn, audited_queue)

    with pytest.raises(SourceUnavailable):
        crashing_relay(settings_for()).run()
    assert services.audit_rows(audited_dsn, audited_queue) == [(mid, None, None, None) for mid in ids]

    # PgQ hands the unfinished batch out again: now it is finished and the marks commit with it.
    assert relay(settings_for()).published == 2
    assert all(confirmed for _, confirmed, _, _ in services.audit_rows(audited_dsn, audited_queue))
