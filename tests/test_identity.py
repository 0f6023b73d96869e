"""The values the relay stamps on every message: correlation ids and sequence numbers (pure, no I/O)."""
from __future__ import annotations

import uuid

import pytest

from relay.core.identity import SequenceGenerator, new_correlation_ids

pytestmark = pytest.mark.pure  # no service, no process: the fast tier (pytest -m "not slow")


def test_correlation_ids_are_distinct_version_4_uuids_in_canonical_text():
    ids = new_correlation_ids(5000)

    assert len(ids) == len(set(ids)) == 5000
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def test_no_correlation_ids_asked_none_given():
    assert new_correlation_ids(0) == []


def test_sequences_increase_across_calls_and_never_repeat():
    generator = SequenceGenerator()

    taken = [number for size in (1, 7, 2000, 1, 300) for number in generator.take(size)]

    assert taken == sorted(set(taken))
    assert len(taken) == 2309


def test_more_sequences_than_a_millisecond_holds_move_the_clock_part_on():
    generator = SequenceGenerator()

    taken = generator.take(3 * SequenceGenerator.COUNTER_SIZE + 5)

    assert taken == sorted(set(taken))
    milliseconds = {number >> 22 for number in taken}
    assert len(milliseconds) >= 4
    assert all(0 < number < 2**63 for number in taken)
