"""The guard of the relay's own frame writer: used while py-amqp encodes as verified, basic_publish otherwise."""
from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from functools import partial

from relay.amqp import frames
from relay.amqp.broker import BrokerSettings
from relay.amqp.frame_check import frames_problem, own_frames_usable, py_amqp_frames
from relay.amqp.mapping import event_to_message
from relay.amqp.message import MessageLimits
from relay.amqp.publisher import Publisher
from relay.core.events import Event

from . import services
from .mapping_values import IDENTITY


def another_encoder() -> object:
    """A py-amqp encoder that writes other bytes than the verified ones, new each call (a cache key of its own)."""
    return lambda channel, message, mandatory, frame_max: py_amqp_frames(channel, message, mandatory,
                                                                         frame_max) + b"\x00"


def test_the_installed_py_amqp_writes_the_verified_bytes():
    assert frames_problem() is None
    assert own_frames_usable()


def test_other_bytes_fail_the_check_which_says_so_once(caplog):
    encoder = another_encoder()

    with caplog.at_level(logging.WARNING, logger="relay.amqp.frame_check"):
        assert not own_frames_usable(encoder)
        assert not own_frames_usable(encoder)

    [record] = caplog.records
    assert "publishing through py-amqp's basic_publish" in record.getMessage()
    assert "encodes the sample messages into other bytes than py-amqp 5.4.2" in record.getMessage()


def test_a_py_amqp_without_write_table_fails_the_check(monkeypatch):
    monkeypatch.setattr(frames, "_write_table", None)

    assert frames_problem().startswith("encoding the sample messages failed: TypeError")


def test_when_the_check_fails_messages_arrive_intact_through_basic_publish(exchange, bind_queue, amqp, caplog):
    class CheckedAgainstAnotherEncoder(Publisher):
        own_frames_usable = staticmethod(partial(own_frames_usable, another_encoder()))

    queue = bind_queue(exchange)
    limits = MessageLimits(frame_max=amqp.connection.frame_max, user_id="guest")
    time = datetime(2026, 12, 6, 1, 2, 3, tzinfo=UTC)
    fields = [
        {},  # the relay's own shape, whose packed header is spoilt below: basic_publish must not use it
        {"extra2": "application/json", "extra3": json.dumps({"type": "t", "priority": 7, "expiration": "60000",
                                                             "headers": {"nested": {"list": [1, "é", None]}}})},
        {"extra4": json.dumps({"tenant": "acme", "big": 2**40, "ratio": 0.25, "flag": True, "none": None})},
        {"data": "x" * (3 * limits.frame_max)},  # a body of several frames
        {"extra1": services.unique("missing")},  # no such exchange: this message alone fails
    ]
    defaults = {"time": time, "txid": 4242, "retry": None, "type": "rk", "data": "body", "extra1": exchange,
                "extra2": "text/plain"}
    events = [Event(id=index, **{**defaults, **extra}) for index, extra in enumerate(fields, start=1)]
    messages = [event_to_message(event, queue="fallback", identity=IDENTITY, persistent=True,
                                 correlation_id=f"00000000-0000-4000-8000-{event.id:012d}", sequence=2**40 + event.id,
                                 limits=limits)
                for event in events]
    assert messages[0].header is not None
    messages[0] = messages[0]._replace(header=b"\xff" * len(messages[0].header))

    with caplog.at_level(logging.WARNING, logger="relay.amqp.frame_check"), \
            CheckedAgainstAnotherEncoder(BrokerSettings(hosts=("127.0.0.1",))) as publisher:
        verdicts = publisher.publish(messages)

    assert verdicts[:4] == [None] * 4
    assert verdicts[4] == f"exchange {events[4].extra1!r} does not exist"
    assert "publishing through py-amqp's basic_publish" in caplog.text
    received = {message.properties["message_id"]: message
                for message in services.drain(amqp, queue, expected=4, timeout=10.0)}
    assert len(received) == 4
    for sent in messages[:4]:
        got = received[sent.properties["message_id"]]
        assert (got.delivery_info["exchange"], got.delivery_info["routing_key"], got.body) == (
            sent.exchange, sent.routing_key, sent.body)
        expected = {name: value for name, value in sent.properties.items() if name != "headers"}
        assert {name: got.properties[name] for name in expected} == expected
        assert got.properties["application_headers"] == sent.properties["headers"]
