"""Finding an event's audit message_id in whatever a producer wrote (hypothesis): never an exception, never a guess."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.amqp.audit_ids import top_level_string

pytestmark = pytest.mark.pure  # no service, no process: the fast tier (pytest -m "not slow")

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20)


@settings(max_examples=300, derandomize=True, database=None)
@given(st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=6), st.sampled_from(["message_id", "x"]))
def test_the_top_level_string_is_what_a_json_parser_finds_there(obj, key):
    found = top_level_string(json.dumps(obj), key)

    expected = obj.get(key)
    assert found == (expected if isinstance(expected, str) else None)


@settings(max_examples=300, derandomize=True, database=None)
@given(st.text())
def test_any_text_gives_a_string_or_none(text):
    assert top_level_string(text, "message_id") is None or isinstance(top_level_string(text, "message_id"), str)


def test_a_message_id_beside_a_structure_nested_far_too_deep_for_a_parser_is_found():
    deep = '{"a": ' * 100_000 + "1" + "}" * 100_000

    assert top_level_string(f'{{"headers": {deep}, "message_id": "m-1"}}', "message_id") == "m-1"
    assert top_level_string(f'{{"message_id": "m-2", "headers": {deep}', "message_id") == "m-2"
