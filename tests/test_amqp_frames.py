"""The relay's own basic.publish frames are byte for byte py-amqp's, for any message the mapping makes (hypothesis).

The publisher writes a window's frames itself (relay.amqp.frames) instead of
handing each message to kombu and py-amqp; py-amqp's own frame writer, fed
the same message as kombu would hand it over (relay.amqp.frame_check, which
checks the same at start-up on a few samples), is the oracle.
"""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.amqp.frame_check import py_amqp_frames
from relay.amqp.frames import publish_frames
from relay.amqp.message import PoisonEvent

from .test_mapping_properties import EVENTS, LIMITS, PROPERTY_TESTS, map_event

pytestmark = pytest.mark.pure  # no service, no process: the fast tier (pytest -m "not slow")


@PROPERTY_TESTS
@given(EVENTS, LIMITS, st.integers(1, 2047), st.sampled_from([4096, 131072]), st.booleans())
def test_the_frames_of_any_mapped_message_are_py_amqps(event, limits, channel, frame_max, mandatory):
    try:
        message = map_event(event, limits)
    except PoisonEvent:
        return
    if limits is not None and limits.frame_max:
        frame_max = limits.frame_max

    assert publish_frames(channel, message, mandatory, frame_max) == py_amqp_frames(channel, message, mandatory,
                                                                                     frame_max)


@PROPERTY_TESTS
@given(st.integers(0, 3 * 4088 + 5), st.sampled_from([4096, 8192]))
def test_a_body_larger_than_a_frame_is_split_as_py_amqp_splits_it(size, frame_max):
    from .test_mapping_properties import make_event

    message = map_event(make_event("rk", "b" * size, "ex", "text/plain", None, None))

    assert publish_frames(7, message, True, frame_max) == py_amqp_frames(7, message, True, frame_max)
