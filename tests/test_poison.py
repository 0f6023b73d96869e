"""Poison events beside valid ones, on the real PgQ and RabbitMQ: one producer's bug costs its own event only.

Each case is relayed as ``relay_once`` does it, round after round (a tick and
PgQ's retry maintenance in between), with 60 valid events around it: every
valid event arrives, none is dead-lettered, the poison event is dead-lettered
with its own reason, and nothing is left pending.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess

import pytest

from relay.engine.targets import engine_for

from . import services

DEEP = '{"a": ' * 600 + "1" + "}" * 600

#: name -> (ev_type, ev_data, ev_extra3, ev_extra4, words of the reason it must be dead-lettered with)
POISON = {
    "ev_extra4 nested 600 deep": ("k", "p", "", DEEP, "ev_extra4 is nested deeper than 100 levels"),
    "ev_extra3 headers nested 600 deep": ("k", "p", '{"headers": ' + DEEP + "}", "",
                                          "ev_extra3 is nested deeper than 101 levels"),
    "user_id not the login user": ("k", "p", '{"user_id": "mallory"}', "",
                                   "'user_id' is \"mallory\" but the connection logs in as \"guest\""),
    "header larger than the frame": ("k", "p", "", json.dumps({"big": "x" * 200_000}),
                                     "more than the 131052 bytes a content-header frame holds"),
    "NaN in a header": ("k", "p", "", '{"n": NaN}', "ev_extra4 has the number NaN"),
    "-Infinity in ev_extra3 headers": ("k", "p", '{"headers": {"n": -Infinity}}', "",
                                       "ev_extra3 has the number -Infinity"),
    "integer beyond 64 bits": ("k", "p", "", '{"n": 9223372036854775808}', "outside the 64-bit range"),
    "key over 255 bytes": ("k", "p", "", json.dumps({"k" * 256: 1}), "has a key longer than 255 bytes"),
    "lone surrogate": ("k", "p", "", '{"s": "\\ud800"}', "lone surrogate (U+D800"),
    "invalid JSON": ("k", "p", "", '{"a": ', "ev_extra4 is not valid JSON"),
    "CC that is not an array": ("k", "p", "", '{"CC": "x"}', "header 'CC' must be an array"),
    "expiration beyond ten years": ("k", "p", '{"expiration": "999999999999999"}', "",
                                    "'expiration' must be at most 315360000000"),
    "priority out of range": ("k", "p", '{"priority": 300}', "", "'priority' must be an integer from 0 to 255"),
    "routing key over 255 bytes": ("k" * 300, "p", "", "", "ev_type (routing key) is longer than the 255 bytes"),
    "unknown property": ("k", "p", '{"colour": "red"}', "", "unknown AMQP properties: colour"),
    "body over max_message_size": ("k", "x" * 2_000_000, "", "", "more than RabbitMQ's max_message_size of 1000000"),
}


@pytest.fixture
def settings(queue_settings):
    """max_failures 3 and retry delay 0 (from conftest); RabbitMQ's max_message_size is said to be 1 MB."""
    broker = dataclasses.replace(queue_settings.target.broker, max_message_size=1_000_000)
    return dataclasses.replace(queue_settings, target=dataclasses.replace(queue_settings.target, broker=broker))


def write_batch(dsn, queue, exchange, poison: list[tuple]) -> list[str]:
    """60 valid events with the poison ones spread among them, in one transaction; the valid bodies."""
    valid = [f"valid-{n}" for n in range(60)]
    rows = [("k", body, exchange, "text/plain", "", "") for body in valid]
    for index, (ev_type, data, extra3, extra4, _) in enumerate(poison):
        rows.insert(7 + index * 3, (ev_type, data, exchange, "", extra3, extra4))
    services.insert_events(dsn, queue, rows)
    return valid


def relay_until_done(settings, dsn, queue, rounds: int = 15) -> int:
    """Relay as relay_once does, with a tick and PgQ's retry maintenance between runs; how many runs it took."""
    for done in range(1, rounds + 1):
        services.tick(dsn, queue)
        result = engine_for(settings).run()
        services.release_retries(dsn, queue)
        if not result.retried and not pending(dsn, queue):
            return done
    raise AssertionError(f"still not done after {rounds} rounds")


def pending(dsn, queue) -> int:
    """Events waiting for a retry."""
    return services.sql(dsn, "SELECT count(*) FROM pgq.retry_queue WHERE ev_queue = "
                             "(SELECT queue_id FROM pgq.queue WHERE queue_name = %s)", (queue,))[0][0]


def dead_letters(dsn, queue) -> list[tuple[str, str]]:
    return services.sql(dsn, "SELECT ev_data, reason FROM mikkoo_relay.dead_letter WHERE queue_name = %s "
                             "ORDER BY ev_id", (queue,))


def assert_only_the_poison_was_given_up(dsn, queue, amqp, target, valid, poison):
    bodies = [m.body.decode() for m in services.drain(amqp, target, expected=len(valid))]
    assert sorted(set(bodies)) == sorted(valid)
    letters = dead_letters(dsn, queue)
    assert len(letters) == len(poison)
    assert not any(data.startswith("valid-") for data, _ in letters)
    for (_, _, _, _, words), (_, reason) in zip(poison, letters, strict=True):
        assert words in reason


@pytest.mark.parametrize("case", POISON)
def test_a_poison_event_is_dead_lettered_at_once_with_its_reason_and_its_neighbours_arrive(
        case, settings, source_dsn, pgq_queue, exchange, bind_queue, amqp):
    target = bind_queue(exchange)
    poison = [POISON[case]]
    valid = write_batch(source_dsn, pgq_queue, exchange, poison)

    assert relay_until_done(settings, source_dsn, pgq_queue) == 1

    assert_only_the_poison_was_given_up(source_dsn, pgq_queue, amqp, target, valid, poison)


def test_every_poison_event_at_once_among_valid_ones(settings, source_dsn, pgq_queue, exchange, bind_queue, amqp):
    target = bind_queue(exchange)
    poison = list(POISON.values())
    valid = write_batch(source_dsn, pgq_queue, exchange, poison)

    rounds = relay_until_done(settings, source_dsn, pgq_queue)

    print(f"{len(poison)} poison events among {len(valid)} valid ones: done in {rounds} relay_once round(s)")
    assert rounds == 1
    assert_only_the_poison_was_given_up(source_dsn, pgq_queue, amqp, target, valid, poison)


@pytest.fixture
def broker_max_message_size():
    """RabbitMQ's own max_message_size set to 1 MB for channels opened meanwhile; its default restored after."""
    def set_limit(value: str) -> None:
        subprocess.run(["rabbitmqctl", "-q", "eval", f"application:set_env(rabbit, max_message_size, {value})."],
                       check=True, capture_output=True, timeout=60)

    original = subprocess.run(["rabbitmqctl", "-q", "eval", "application:get_env(rabbit, max_message_size)."],
                              check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    set_limit("1000000")
    yield
    if original.startswith("{ok,"):
        set_limit(original[len("{ok,"):-1])
    else:
        subprocess.run(["rabbitmqctl", "-q", "eval", "application:unset_env(rabbit, max_message_size)."],
                       check=True, capture_output=True, timeout=60)


def test_the_event_that_makes_rabbitmq_close_the_channel_is_found_and_charged_alone(
        queue_settings, source_dsn, pgq_queue, exchange, bind_queue, amqp, broker_max_message_size):
    # The relay believes RabbitMQ's default limit (128 MiB): the mapping lets the 2 MB event through and
    # RabbitMQ closes the channel on it, failing every message unconfirmed then.
    target = bind_queue(exchange)
    too_big = ("k", "x" * 2_000_000, "", "", "message size 2000000 is larger than configured max size 1000000")
    valid = write_batch(source_dsn, pgq_queue, exchange, [too_big])

    rounds = relay_until_done(queue_settings, source_dsn, pgq_queue)

    print(f"the culprit among 60 valid events: dead-lettered after {rounds} relay_once rounds (max failures 3)")
    assert rounds == queue_settings.max_failures
    assert_only_the_poison_was_given_up(source_dsn, pgq_queue, amqp, target, valid, [too_big])
    [(_, reason)] = dead_letters(source_dsn, pgq_queue)
    assert reason.startswith("refused by RabbitMQ, which closed the channel: ")
