"""The relay engine end to end on the real PostgreSQL + PgQ and the real RabbitMQ."""
from __future__ import annotations

import json
import socket
import uuid
from datetime import UTC, datetime

import pytest

from relay import __version__
from relay.amqp.broker import BrokerLink
from relay.core.events import Event
from relay.core.identity import stable_message_id
from relay.engine.amqp_target import AmqpTarget
from relay.engine.connections import ConnectionPool, OwnConnections
from relay.engine.loop import QueueRelay
from relay.engine.targets import engine_for
from relay.pgq.consumer import PgqConsumer

from . import services


@pytest.fixture
def observer(source_dsn, pgq_queue):
    """A second PgQ consumer, registered before events are written: returns the events as PgQ stored them."""
    services.sql(source_dsn, "SELECT pgq.register_consumer(%s, 'observer')", (pgq_queue,))

    def read() -> list[Event]:
        (batch_id,) = services.sql(source_dsn, "SELECT pgq.next_batch(%s, 'observer')", (pgq_queue,))[0]
        rows = services.sql(source_dsn, "SELECT ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data, ev_extra1, "
                                        "ev_extra2, ev_extra3, ev_extra4 FROM pgq.get_batch_events(%s)", (batch_id,))
        services.sql(source_dsn, "SELECT pgq.finish_batch(%s)", (batch_id,))
        return [Event(*row) for row in rows]

    return read


def relay(settings, connections=None, **kwargs):
    return engine_for(settings, connections).run(**kwargs)


def dead_letters(dsn, queue):
    return services.sql(dsn, "SELECT ev_id, ev_type, reason, failures FROM mikkoo_relay.dead_letter "
                             "WHERE queue_name = %s ORDER BY ev_id", (queue,))


def test_worked_example_arrives_with_every_property_and_header(
        queue_settings, source_dsn, pgq_queue, exchange, bind_queue, amqp):
    target = bind_queue(exchange, "test.routing-key")
    services.insert_events(source_dsn, pgq_queue, [
        ("test.routing-key", '{"foo": "bar"}', exchange, "application/json", '{"type": "example"}', ""),
    ])
    services.tick(source_dsn, pgq_queue)

    result = relay(queue_settings)

    assert (result.batches, result.published, result.retried, result.dead_lettered) == (1, 1, 0, 0)
    [message] = services.drain(amqp, target, expected=1)
    props = message.properties
    assert message.delivery_info["exchange"] == exchange
    assert message.delivery_info["routing_key"] == "test.routing-key"
    assert message.body == b'{"foo": "bar"}'
    assert props["content_type"] == "application/json"
    assert props["type"] == "example"
    assert props["app_id"] == f"mikkoo-relay/{__version__}"
    assert uuid.UUID(props["correlation_id"])
    assert uuid.UUID(props["message_id"])
    assert props["delivery_mode"] == 2
    assert "content_encoding" not in props
    headers = props["application_headers"]
    assert set(headers) == {"origin", "sequence", "timestamp", "txid"}
    assert headers["origin"] == socket.getfqdn()
    assert isinstance(headers["sequence"], int)
    sent_at = datetime.fromisoformat(headers["timestamp"])
    assert sent_at.utcoffset().total_seconds() == 0
    assert abs(sent_at.timestamp() - props["timestamp"]) < 1
    assert abs(datetime.now(UTC).timestamp() - props["timestamp"]) < 60
    assert isinstance(headers["txid"], int) and headers["txid"] > 0


def test_thousands_of_events_arrive_exactly_once_and_in_order(
        queue_settings, source_dsn, pgq_queue, exchange, bind_queue, amqp):
    target = bind_queue(exchange, "order.#")
    count = 5000
    services.insert_events(source_dsn, pgq_queue,
                           [("order.created", json.dumps({"n": n}), exchange, "application/json", "", "")
                            for n in range(count)])
    services.tick(source_dsn, pgq_queue)

    result = relay(queue_settings)

    assert (result.published, result.retried, result.dead_lettered) == (count, 0, 0)
    messages = services.drain(amqp, target, expected=count)
    assert [json.loads(m.body)["n"] for m in messages] == list(range(count))
    assert len({m.properties["message_id"] for m in messages}) == count


def test_a_second_run_publishes_nothing_again(queue_settings, source_dsn, pgq_queue, exchange, bind_queue, amqp):
    target = bind_queue(exchange)
    services.insert_events(source_dsn, pgq_queue, [("a.b", "x", exchange, "", "", "")] * 10)
    services.tick(source_dsn, pgq_queue)
    assert relay(queue_settings).published == 10
    services.tick(source_dsn, pgq_queue)

    second = relay(queue_settings)

    assert second.published == 0
    assert len(services.drain(amqp, target, expected=10)) == 10
    assert services.drain(amqp, target) == []


def test_mixed_batch_good_events_flow_bad_ones_are_retried_or_dead_lettered(
        queue_settings, source_dsn, pgq_queue, exchange, bind_queue, amqp):
    missing_exchange = services.unique("missing")
    default_target = bind_queue("")  # reached through the default exchange by its own name
    good_target = bind_queue(exchange, "good.#")
    services.insert_events(source_dsn, pgq_queue, [
        ("good.1", "first", exchange, "text/plain", "", ""),
        ("bad.json", "poison", exchange, "", "{not json", ""),
        ("late.1", "to a missing exchange", missing_exchange, "", "", ""),
        ("nobody.listens", "unroutable", exchange, "", "", ""),
        (default_target, "via the default exchange", "", "", "", ""),
        ("good.2", "second", exchange, "text/plain", "", '{"h": 1}'),
    ])
    services.tick(source_dsn, pgq_queue)

    first = relay(queue_settings)

    assert (first.events, first.published, first.retried, first.dead_lettered) == (6, 3, 2, 1)
    assert [m.body for m in services.drain(amqp, good_target, expected=2)] == [b"first", b"second"]
    assert [m.body for m in services.drain(amqp, default_target, expected=1)] == [b"via the default exchange"]
    [(_, ev_type, reason, failures)] = dead_letters(source_dsn, pgq_queue)
    assert ev_type == "bad.json" and "ev_extra3 is not valid JSON" in reason and failures == 1

    # The operator fixes the cause: the exchange now exists and the routing key is bound.
    late_target = bind_queue(exchange, "nobody.#")
    channel = amqp.channel()
    channel.exchange_declare(missing_exchange, "topic", durable=False, auto_delete=False)
    channel.queue_bind(late_target, missing_exchange, "late.#")
    try:
        assert services.release_retries(source_dsn, pgq_queue) == 2
        second = relay(queue_settings)
    finally:
        channel.exchange_delete(missing_exchange)
        channel.close()

    assert (second.published, second.retried, second.dead_lettered) == (2, 0, 0)
    assert sorted(m.body for m in services.drain(amqp, late_target, expected=2)) == [
        b"to a missing exchange", b"unroutable"]


def test_events_that_keep_failing_are_dead_lettered_after_max_failures(
        queue_settings, source_dsn, pgq_queue, exchange, amqp):
    services.insert_events(source_dsn, pgq_queue, [("nowhere", "lost?", exchange, "", "", "")])
    services.tick(source_dsn, pgq_queue)
    results = [relay(queue_settings)]
    for _ in range(queue_settings.max_failures - 1):
        services.release_retries(source_dsn, pgq_queue)
        results.append(relay(queue_settings))

    assert [r.retried for r in results] == [1] * (queue_settings.max_failures - 1) + [0]
    assert results[-1].dead_lettered == 1
    [(_, _, reason, failures)] = dead_letters(source_dsn, pgq_queue)
    assert reason.startswith("unroutable") and failures == queue_settings.max_failures
    [(first, last)] = services.sql(source_dsn, "SELECT first_failed_at, dead_lettered_at FROM mikkoo_relay.dead_letter "
                                               "WHERE queue_name = %s", (pgq_queue,))
    assert first < last  # the first of the failures, not the last
    assert services.sql(source_dsn, "SELECT count(*) FROM mikkoo_relay.event_failure WHERE queue_name = %s",
                        (pgq_queue,))[0][0] == 0


def test_only_a_fresh_answer_that_the_exchange_is_missing_charges_a_failure(
        queue_settings, source_dsn, pgq_queue, absent_exchange, bind_queue, amqp, monkeypatch):
    # As in a worker, the broker link and what it learnt of exchanges outlive a run (here surely long enough).
    monkeypatch.setattr(BrokerLink, "exchange_check_seconds", 60.0)
    worker_connections = ConnectionPool()
    services.insert_events(source_dsn, pgq_queue, [("late.first", "1", absent_exchange, "", "", "")])
    services.tick(source_dsn, pgq_queue)
    try:
        assert relay(queue_settings, connections=worker_connections).retried == 1
        channel = amqp.channel()
        channel.exchange_declare(absent_exchange, "topic", durable=True, auto_delete=False)
        channel.close()
        target = bind_queue(absent_exchange, "late.#")
        services.insert_events(source_dsn, pgq_queue, [("late.second", "2", absent_exchange, "", "", ""),
                                                       ("late.third", "3", absent_exchange, "", "", "")])
        services.tick(source_dsn, pgq_queue)

        second = relay(queue_settings, connections=worker_connections)

        # The events written after the fix are delivered and charged nothing; the first keeps its one failure.
        assert (second.published, second.retried, second.dead_lettered) == (2, 0, 0)
        assert services.sql(source_dsn, "SELECT ev_type, ev_retry FROM pgq.retry_queue WHERE ev_queue = "
                                        "(SELECT queue_id FROM pgq.queue WHERE queue_name = %s)",
                            (pgq_queue,)) == [("late.first", 1)]
        assert services.sql(source_dsn, "SELECT last_reason FROM mikkoo_relay.event_failure WHERE queue_name = %s",
                            (pgq_queue,)) == [(f"exchange {absent_exchange!r} does not exist",)]
        services.release_retries(source_dsn, pgq_queue)
        assert relay(queue_settings, connections=worker_connections).published == 1
    finally:
        worker_connections.close()

    assert sorted(m.body for m in services.drain(amqp, target, expected=3)) == [b"1", b"2", b"3"]
    assert dead_letters(source_dsn, pgq_queue) == []


def test_an_event_delivered_after_failing_leaves_no_failure_history(
        queue_settings, source_dsn, pgq_queue, exchange, bind_queue, amqp):
    services.insert_events(source_dsn, pgq_queue, [("late.bound", "x", exchange, "", "", "")])
    services.tick(source_dsn, pgq_queue)
    assert relay(queue_settings).retried == 1
    [(reason,)] = services.sql(source_dsn, "SELECT last_reason FROM mikkoo_relay.event_failure "
                                           "WHERE queue_name = %s", (pgq_queue,))
    assert reason.startswith("unroutable")
    bind_queue(exchange, "late.bound")
    services.release_retries(source_dsn, pgq_queue)

    assert relay(queue_settings).published == 1
    assert services.sql(source_dsn, "SELECT count(*) FROM mikkoo_relay.event_failure WHERE queue_name = %s",
                        (pgq_queue,))[0][0] == 0


def test_a_retried_event_keeps_its_message_id(
        queue_settings, source_dsn, pgq_queue, exchange, bind_queue, amqp, observer):
    services.insert_events(source_dsn, pgq_queue, [("retry.me", "y", exchange, "", "", "")])
    services.tick(source_dsn, pgq_queue)
    [stored] = observer()
    assert relay(queue_settings).retried == 1  # nothing is bound yet: unroutable
    target = bind_queue(exchange, "retry.me")
    services.release_retries(source_dsn, pgq_queue)

    assert relay(queue_settings).published == 1

    [message] = services.drain(amqp, target, expected=1)
    assert message.properties["message_id"] == stable_message_id(pgq_queue, stored)
    assert message.properties["application_headers"]["txid"] != stored.txid  # PgQ gave it a new txid


def test_with_confirms_off_events_are_published_without_waiting(
        queue_settings, source_dsn, pgq_queue, exchange, bind_queue, amqp):
    from dataclasses import replace

    target = bind_queue(exchange)
    services.insert_events(source_dsn, pgq_queue, [("k", str(n), exchange, "", "", "") for n in range(100)])
    services.tick(source_dsn, pgq_queue)

    result = relay(replace(queue_settings, target=replace(queue_settings.target, confirm=False)))

    assert result.published == 100
    assert len(services.drain(amqp, target, expected=100)) == 100


def test_a_busy_queue_is_left_alone(queue_settings, source_dsn, pgq_queue, exchange, bind_queue, amqp):
    target = bind_queue(exchange)
    services.insert_events(source_dsn, pgq_queue, [("k", "once", exchange, "", "", "")])
    services.tick(source_dsn, pgq_queue)
    holder = PgqConsumer(source_dsn, pgq_queue, "mikkoo")
    holder.connect()
    try:
        assert holder.try_lock()
        busy = relay(queue_settings)
    finally:
        holder.close()

    assert busy.busy and busy.published == 0
    assert services.drain(amqp, target) == []
    assert relay(queue_settings).published == 1


def test_the_queue_and_consumer_are_created_when_missing(source_dsn, broker_settings, exchange, bind_queue, amqp):
    from relay.engine.settings import AmqpTargetSettings, QueueSettings

    name = services.unique("fresh")
    settings = QueueSettings(name=name, queue_name=name, source_dsn=source_dsn,
                             target=AmqpTargetSettings(broker=broker_settings))
    try:
        assert relay(settings).batches == 0
        (consumers,) = services.sql(source_dsn, "SELECT count(*) FROM pgq.get_consumer_info(%s, 'mikkoo')",
                                    (name,))[0]
        assert consumers == 1
    finally:
        services.sql(source_dsn, "SELECT pgq.drop_queue(%s, true)", (name,))


@pytest.mark.parametrize("window", [7])
def test_batches_larger_than_a_window_stream_through_the_cursor(
        window, queue_settings, source_dsn, pgq_queue, exchange, bind_queue, amqp, monkeypatch):
    target = bind_queue(exchange)
    services.insert_events(source_dsn, pgq_queue, [("k", str(n), exchange, "", "", "") for n in range(50)])
    services.tick(source_dsn, pgq_queue)
    connections = OwnConnections()
    engine = QueueRelay(queue_settings, AmqpTarget(queue_settings, connections, window_size=window), connections)

    result = engine.run()

    assert (result.batches, result.published) == (1, 50)
    assert [m.body for m in services.drain(amqp, target, expected=50)] == [str(n).encode() for n in range(50)]


def test_a_batch_is_read_in_a_short_first_window_then_full_ones_sorting_in_its_own_memory(source_dsn, pgq_queue):
    services.insert_events(source_dsn, pgq_queue, [("k", str(n), "", "", "", "") for n in range(20)])
    services.tick(source_dsn, pgq_queue)
    consumer = PgqConsumer(source_dsn, pgq_queue, "mikkoo")
    consumer.connect()
    try:
        (default_memory,) = consumer._run("reading work_mem", "SHOW work_mem")[0]
        batch_id = consumer.next_batch()
        windows, memory, statements = [], [], []
        run = consumer._run

        def noting_statements(doing, sql, *args, **kwargs):
            statements.append(sql)
            return run(doing, sql, *args, **kwargs)

        consumer._run = noting_statements
        for window in consumer.iter_event_windows(batch_id, 7, first=3):
            windows.append([event.data for event in window])
            memory.append(run("reading work_mem", "SHOW work_mem")[0][0])
        consumer.finish_batch(batch_id)

        assert windows == [["0", "1", "2"], ["3", "4", "5", "6", "7", "8", "9"],
                           ["10", "11", "12", "13", "14", "15", "16"], ["17", "18", "19"]]
        # A short window is the last: no FETCH after it.
        assert sum(sql.startswith("FETCH") for sql in statements) == 3
        assert memory == [PgqConsumer.sort_memory] * 4 != [default_memory] * 4
        # Only the batch's transaction had it.
        assert run("reading work_mem", "SHOW work_mem")[0][0] == default_memory
    finally:
        consumer.close()


def test_a_run_out_of_time_stops_mid_batch_and_the_next_goes_on_without_publishing_twice(
        queue_settings, source_dsn, pgq_queue, exchange, bind_queue, amqp):
    target = bind_queue(exchange)
    services.insert_events(source_dsn, pgq_queue, [("k", str(n), exchange, "", "", "") for n in range(50)])
    services.tick(source_dsn, pgq_queue)
    connections = OwnConnections()
    small_windows = AmqpTarget(queue_settings, connections, window_size=7, first_window_size=3)
    engine = QueueRelay(queue_settings, small_windows, connections)

    first = engine.run(until=0.0)  # out of time from the start: one window, then stop

    assert (first.batches, first.published, first.cut_short) == (0, 3, True)
    assert [m.body for m in services.drain(amqp, target, expected=3)] == [b"0", b"1", b"2"]
    (active,) = services.sql(source_dsn, "SELECT sub_batch IS NOT NULL FROM pgq.subscription s "
                                         "JOIN pgq.queue q ON q.queue_id = s.sub_queue WHERE q.queue_name = %s",
                             (pgq_queue,))[0]
    assert active  # the batch is not finished yet

    second = engine.run()

    assert (second.batches, second.published, second.cut_short) == (1, 47, False)
    assert [m.body for m in services.drain(amqp, target, expected=47)] == [str(n).encode() for n in range(3, 50)]
    assert services.sql(source_dsn, "SELECT count(*) FROM mikkoo_relay.batch_progress WHERE queue_name = %s",
                        (pgq_queue,))[0][0] == 0
    assert engine.run().batches == 0
