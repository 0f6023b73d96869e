"""Connection strings: one rule for the admin's models and both importers, the same words for the same mistake."""
from __future__ import annotations

import pytest

from relay.compat.postgres_dsn import postgres_dsn
from relay.core.connection_strings import InvalidConnectionString, env_reference_name
from relay.core.errors import ConfigError
from relay.validation import POSTGRES_DSN_EXPECTED, checked_amqp_url, checked_postgres_dsn

pytestmark = pytest.mark.pure  # no service, no process: the fast tier (pytest -m "not slow")

MISTAKES = ["amqp://guest@rabbit/", "just-a-name", "postgres://u:p@[::1/db", "postgres://u:p@db:99999/app",
            "dbname=app password=a b"]


@pytest.mark.parametrize("value", MISTAKES)
def test_a_bad_postgresql_string_is_refused_in_the_same_words_by_the_models_and_the_importers(value):
    with pytest.raises(InvalidConnectionString) as refused:
        checked_postgres_dsn(value)
    with pytest.raises(ConfigError) as imported:
        postgres_dsn(value, "Application/workers/q/postgres_url")

    assert str(refused.value).startswith(POSTGRES_DSN_EXPECTED)
    assert str(imported.value) == f"Application/workers/q/postgres_url: {refused.value}"
    assert "p@" not in str(refused.value) and "a b" not in str(refused.value)  # the value is never quoted


def test_references_pass_as_they_are_and_good_strings_come_back_checked():
    assert checked_postgres_dsn(" env:SOURCE_DSN ") == "env:SOURCE_DSN"
    assert checked_amqp_url("env:RABBIT_URL") == "env:RABBIT_URL"
    assert checked_postgres_dsn("postgresql://app:pa ss@db/shop") == "postgresql://app:pa%20ss@db/shop"
    assert checked_postgres_dsn("dbname=shop host=db") == "dbname=shop host=db"
    assert checked_amqp_url("amqps://u:p@rabbit:5671/%2F") == "amqps://u:p@rabbit:5671/%2F"
    assert postgres_dsn("dbname=shop\nhost=db", "at") == "dbname=shop host=db"  # libpq's continuation lines


@pytest.mark.parametrize("value, name", [("env:A_1", "A_1"), ("env:1A", None), ("env:", None), ("ENV:A", None),
                                         ("env:A-B", None), ("A", None)])
def test_the_env_reference_grammar(value, name):
    assert env_reference_name(value) == name


def test_an_amqp_url_of_another_scheme_is_refused_without_its_password():
    with pytest.raises(InvalidConnectionString, match="expected a URL starting with amqp:// or amqps://") as refused:
        checked_amqp_url("http://user:s3cret@rabbit/")
    assert "s3cret" not in str(refused.value)
