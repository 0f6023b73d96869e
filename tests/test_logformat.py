"""The JSON log line: the documented fields, and a record's traceback and stack kept."""
from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.pure  # no service, no process: the fast tier (pytest -m "not slow")

LOGGER = "relay.tests.logformat"


def test_a_line_has_time_level_logger_message_and_the_extra_fields(json_log):
    lines = json_log(LOGGER)

    logging.getLogger(LOGGER).warning("queue=%s is slow", "orders", extra={"queue": "orders", "ms": 12})

    [line] = lines
    record = json.loads(line)
    written = datetime.fromisoformat(record.pop("time"))
    assert record == {"level": "WARNING", "logger": LOGGER, "message": "queue=orders is slow",
                      "queue": "orders", "ms": 12}
    assert written.utcoffset() == timedelta(0) and abs(datetime.now(UTC) - written) < timedelta(seconds=60)


def test_the_stack_of_a_record_logged_with_stack_info_is_kept(json_log):
    lines = json_log(LOGGER)

    logging.getLogger(LOGGER).warning("where am I", stack_info=True)

    record = json.loads(lines[0])
    assert record["stack_info"].startswith("Stack (most recent call last):")
    assert "test_the_stack_of_a_record_logged_with_stack_info_is_kept" in record["stack_info"]
    assert "\n" not in lines[0]


def test_the_traceback_of_an_exception_is_kept(json_log):
    lines = json_log(LOGGER)

    try:
        raise ValueError("the cause")
    except ValueError:
        logging.getLogger(LOGGER).exception("it failed")

    record = json.loads(lines[0])
    assert record["message"] == "it failed" and record["level"] == "ERROR"
    assert record["exception"].startswith("Traceback") and record["exception"].endswith("ValueError: the cause")
    assert "\n" not in lines[0]
