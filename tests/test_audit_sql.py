"""mikkoo's audit SQL API, the relay's additions and their installer, on the real PostgreSQL + PgQ."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import threading
import uuid

import psycopg2
import pytest
from django.core.management import CommandError, call_command

from relay.audit.install import AUDIT_SQL_FILES, CURRENT, INSTALLED, MIKKOO_SQL, UPGRADED, install_audit_sql
from relay.core.errors import SourceUnavailable
from relay.models import BrokerConnection, RelayedQueue

from . import services

CONSUMER = "audit_test"

# What mikkoo's mikkoo.sql declares: producers depend on these names, argument order and results.
MIKKOO_FUNCTIONS = {
    "mikkoo.delete_audit_record(uuid)": ("in_message_id uuid", "boolean"),
    "mikkoo.new_audit_record(uuid,bigint,text,text,text,text,text,text,text)": (
        ("in_message_id uuid, in_event_id bigint, in_queue text, in_exchange text, in_routing_key text, "
         "in_payload text, in_content_type text, in_properties text, in_headers text"),
        "mikkoo.audit",
    ),
    "mikkoo.insert_audited_event(text,text,text,text,text)": (
        "in_queue text, in_exchange text, in_routing_key text, in_payload text, in_content_type text",
        "bigint",
    ),
    "mikkoo.insert_event(text,text,text,text,text)": (
        "in_queue text, in_exchange text, in_routing_key text, in_payload text, in_content_type text",
        "bigint",
    ),
    "mikkoo.insert_event(text,text,text,text,text,text,text)": (
        ("in_queue text, in_exchange text, in_routing_key text, in_payload text, in_content_type text, "
         "in_properties text, in_headers text"),
        "bigint",
    ),
}
RELAY_FUNCTIONS = {
    "mikkoo.mark_confirmed(uuid[])": ("message_ids uuid[]", "integer"),
    "mikkoo.mark_dead_lettered(uuid[],text)": ("message_ids uuid[], reason text", "integer"),
}
MIKKOO_COLUMNS = [
    ("message_id", "uuid", "NO"),
    ("event_id", "bigint", "NO"),
    ("queue", "text", "NO"),
    ("exchange", "text", "NO"),
    ("routing_key", "text", "NO"),
    ("payload", "text", "NO"),
    ("content_type", "text", "YES"),
    ("properties", "text", "YES"),
    ("headers", "text", "YES"),
    ("published_at", "timestamp with time zone", "NO"),
]
RELAY_COLUMNS = [
    ("confirmed_at", "timestamp with time zone", "YES"),
    ("dead_lettered_at", "timestamp with time zone", "YES"),
    ("dead_letter_reason", "text", "YES"),
]

# A database as mikkoo's own mikkoo.sql leaves it (written for this test, same shape): STRICT
# SECURITY DEFINER functions and JSON made by string concatenation.
ORIGINAL_STYLE_SCHEMA = """
CREATE SCHEMA mikkoo;
CREATE TABLE mikkoo.audit (
    message_id uuid NOT NULL, event_id bigint NOT NULL, queue text NOT NULL, exchange text NOT NULL,
    routing_key text NOT NULL, payload text NOT NULL, content_type text, properties text, headers text,
    published_at timestamp with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE UNIQUE INDEX audit_message_id ON mikkoo.audit (message_id);
CREATE FUNCTION mikkoo.delete_audit_record(in_message_id uuid) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER VOLATILE STRICT
    AS $$ BEGIN DELETE FROM mikkoo.audit WHERE message_id = in_message_id; RETURN FOUND; END $$;
CREATE FUNCTION mikkoo.new_audit_record(in_message_id uuid, in_event_id bigint, in_queue text,
        in_exchange text, in_routing_key text, in_payload text, in_content_type text,
        in_properties text, in_headers text) RETURNS mikkoo.audit
    LANGUAGE sql SECURITY DEFINER VOLATILE STRICT
    AS $$ INSERT INTO mikkoo.audit (message_id, event_id, queue, exchange, routing_key, payload,
          content_type, properties, headers) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING * $$;
CREATE FUNCTION mikkoo.insert_audited_event(in_queue text, in_exchange text, in_routing_key text,
        in_payload text, in_content_type text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER VOLATILE STRICT AS $$
    DECLARE v_id bigint; v_mid uuid := gen_random_uuid();
            v_p text := '{"message_id": "' || v_mid || '"}'; v_h text := '{"pgq_queue": "' || $1 || '"}';
    BEGIN
        v_id := pgq.insert_event($1, $3, $4, $2, $5, v_p, v_h);
        PERFORM mikkoo.new_audit_record(v_mid, v_id, $1, $2, $3, $4, $5, v_p, v_h);
        RETURN v_id;
    END $$;
CREATE FUNCTION mikkoo.insert_event(in_queue text, in_exchange text, in_routing_key text,
        in_payload text, in_content_type text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER VOLATILE STRICT AS $$
    BEGIN RETURN pgq.insert_event($1, $3, $4, $2, $5, '{"message_id": "' || gen_random_uuid() || '"}',
                                  '{"pgq_queue": "' || $1 || '"}'); END $$;
CREATE FUNCTION mikkoo.insert_event(in_queue text, in_exchange text, in_routing_key text,
        in_payload text, in_content_type text, in_properties text, in_headers text) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER VOLATILE STRICT
    AS $$ SELECT pgq.insert_event($1, $3, $4, $2, $5, $6, $7) $$;
"""


# -- helpers and fixtures -------------------------------------------------------------------------

@pytest.fixture
def fresh_dsn():
    """A database of its own with PgQ and nothing else."""
    name = services.unique("mikkoo_audit")
    dsn = services.create_database(name)
    yield dsn
    services.drop_database(name)


def make_queue(dsn: str, name: str) -> str:
    """Create a PgQ queue and register the test consumer BEFORE anything is inserted."""
    services.sql(dsn, "SELECT pgq.create_queue(%s)", (name,))
    services.sql(dsn, "SELECT pgq.register_consumer(%s, %s)", (name, CONSUMER))
    return name


@pytest.fixture
def queue(audited_dsn):
    name = make_queue(audited_dsn, services.unique("aq"))
    yield name
    services.sql(audited_dsn, "SELECT pgq.drop_queue(%s, true)", (name,))


def read_events(dsn: str, queue: str) -> list[dict]:
    """Every event inserted into ``queue`` since the last read, as the relay would see them."""
    services.tick(dsn, queue)
    with services.connect(dsn, autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("SELECT pgq.next_batch(%s, %s)", (queue, CONSUMER))
        (batch_id,) = cur.fetchone()
        if batch_id is None:
            return []
        cur.execute("SELECT * FROM pgq.get_batch_events(%s) ORDER BY ev_id", (batch_id,))
        names = [col.name for col in cur.description]
        events = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        cur.execute("SELECT pgq.finish_batch(%s)", (batch_id,))
        conn.commit()
    return events


def audit_rows(dsn: str, queue: str) -> list[dict]:
    with services.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM mikkoo.audit WHERE queue = %s ORDER BY event_id", (queue,))
        names = [col.name for col in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def one(dsn: str, statement: str, params=None):
    (value,) = services.sql(dsn, statement, params)[0]
    return value


def functions(dsn: str) -> dict[str, tuple[str, str]]:
    return {
        signature: (arguments, result)
        for signature, arguments, result in services.sql(
            dsn,
            "SELECT p.oid::regprocedure::text, pg_get_function_arguments(p.oid), "
            "pg_get_function_result(p.oid) FROM pg_proc p WHERE p.pronamespace = 'mikkoo'::regnamespace",
        )
    }


def columns(dsn: str) -> list[tuple[str, str, str]]:
    return [tuple(row) for row in services.sql(
        dsn,
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'mikkoo' AND table_name = 'audit' ORDER BY ordinal_position",
    )]


def psql_install(dsn: str, *files) -> subprocess.CompletedProcess:
    args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", dsn]
    for path in files:
        args += ["-f", str(path)]
    return subprocess.run(args, check=False, capture_output=True, text=True, timeout=60)


needs_psql = pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")


# -- the API, function by function ----------------------------------------------------------------

def test_functions_keep_mikkoos_names_arguments_and_results(audited_dsn):
    assert functions(audited_dsn) == {**MIKKOO_FUNCTIONS, **RELAY_FUNCTIONS}


def test_producer_functions_are_security_definer_with_a_pinned_search_path(audited_dsn):
    rows = services.sql(
        audited_dsn,
        "SELECT p.oid::regprocedure::text, prosecdef, proisstrict, proconfig FROM pg_proc p "
        "WHERE p.pronamespace = 'mikkoo'::regnamespace",
    )
    for signature, secdef, strict, config in rows:
        assert not strict, signature  # a NULL argument never silently inserts nothing
        if signature in MIKKOO_FUNCTIONS:
            assert secdef, signature
            assert config == ["search_path=pg_catalog, pg_temp"], signature
        else:
            assert not secdef, signature


def test_audit_table_has_mikkoos_columns_then_the_relays(audited_dsn):
    assert columns(audited_dsn) == MIKKOO_COLUMNS + RELAY_COLUMNS
    default = one(audited_dsn, "SELECT column_default FROM information_schema.columns "
                                 "WHERE table_schema = 'mikkoo' AND table_name = 'audit' "
                                 "AND column_name = 'published_at'")
    assert default == "CURRENT_TIMESTAMP"
    indexes = dict(services.sql(audited_dsn, "SELECT indexname, indexdef FROM pg_indexes "
                                               "WHERE schemaname = 'mikkoo' AND tablename = 'audit'"))
    assert indexes["audit_message_id"].startswith("CREATE UNIQUE INDEX")
    assert indexes["audit_outstanding"].endswith(
        "(queue, published_at) WHERE ((confirmed_at IS NULL) AND (dead_lettered_at IS NULL))")


def test_every_object_is_commented(audited_dsn):
    missing = services.sql(audited_dsn, """
        SELECT 'schema' FROM pg_namespace n WHERE nspname = 'mikkoo'
           AND obj_description(n.oid, 'pg_namespace') IS NULL
        UNION ALL
        SELECT 'relation ' || relname FROM pg_class c WHERE relnamespace = 'mikkoo'::regnamespace
           AND obj_description(c.oid, 'pg_class') IS NULL
        UNION ALL
        SELECT 'column ' || attname FROM pg_attribute a WHERE attrelid = 'mikkoo.audit'::regclass
           AND attnum > 0 AND NOT attisdropped AND col_description(attrelid, attnum) IS NULL
        UNION ALL
        SELECT 'function ' || p.oid::regprocedure FROM pg_proc p WHERE pronamespace = 'mikkoo'::regnamespace
           AND obj_description(p.oid, 'pg_proc') IS NULL
    """)
    assert missing == []


def test_insert_audited_event_inserts_one_event_and_its_audit_record(audited_dsn, queue):
    event_id = one(audited_dsn, "SELECT mikkoo.insert_audited_event(%s, %s, %s, %s, %s)",
                   (queue, "postgres", "test.routing-key", '{"foo": "bar"}', "application/json"))

    (event,) = read_events(audited_dsn, queue)
    (record,) = audit_rows(audited_dsn, queue)
    assert event["ev_id"] == event_id == record["event_id"]
    assert (event["ev_type"], event["ev_data"], event["ev_extra1"], event["ev_extra2"]) == (
        "test.routing-key", '{"foo": "bar"}', "postgres", "application/json")
    assert json.loads(event["ev_extra3"]) == {"message_id": str(record["message_id"])}
    assert json.loads(event["ev_extra4"]) == {"pgq_queue": queue}
    assert uuid.UUID(str(record["message_id"])).version == 4
    assert (record["exchange"], record["routing_key"], record["payload"], record["content_type"]) == (
        "postgres", "test.routing-key", '{"foo": "bar"}', "application/json")
    assert (record["properties"], record["headers"]) == (event["ev_extra3"], event["ev_extra4"])
    assert record["published_at"] is not None
    assert (record["confirmed_at"], record["dead_lettered_at"], record["dead_letter_reason"]) == (None,) * 3


def test_insert_audited_event_is_part_of_the_producers_transaction(audited_dsn, queue):
    with services.connect(audited_dsn, autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("SELECT mikkoo.insert_audited_event(%s, '', 'rk', 'body', 'text/plain')", (queue,))
        conn.rollback()
    with pytest.raises(psycopg2.errors.NullValueNotAllowed, match="must not be NULL"):
        services.sql(audited_dsn, "SELECT mikkoo.insert_audited_event(%s, '', 'rk', NULL, 'text/plain')",
                     (queue,))
    # When the audit half fails after the event was inserted, the event goes too.
    services.sql(audited_dsn,
                 "ALTER TABLE mikkoo.audit ADD CONSTRAINT test_no_boom CHECK (payload <> 'boom')")
    try:
        with pytest.raises(psycopg2.errors.CheckViolation):
            services.sql(audited_dsn, "SELECT mikkoo.insert_audited_event(%s, '', 'rk', 'boom', NULL)",
                         (queue,))
    finally:
        services.sql(audited_dsn, "ALTER TABLE mikkoo.audit DROP CONSTRAINT test_no_boom")
    assert read_events(audited_dsn, queue) == []
    assert audit_rows(audited_dsn, queue) == []


def test_insert_audited_event_with_a_null_content_type_still_inserts(audited_dsn, queue):
    # mikkoo's STRICT version returned NULL here and inserted nothing at all.
    event_id = one(audited_dsn, "SELECT mikkoo.insert_audited_event(%s, '', 'rk', 'body', NULL)", (queue,))
    assert event_id is not None
    (event,) = read_events(audited_dsn, queue)
    assert event["ev_extra2"] is None
    assert [r["content_type"] for r in audit_rows(audited_dsn, queue)] == [None]


def test_insert_event_with_five_arguments_sets_message_id_and_pgq_queue_without_audit(audited_dsn, queue):
    event_id = one(audited_dsn, "SELECT mikkoo.insert_event(%s, %s, %s, %s, %s)",
                   (queue, "ex", "rk", "body", "text/plain"))
    (event,) = read_events(audited_dsn, queue)
    assert event["ev_id"] == event_id
    assert (event["ev_type"], event["ev_data"], event["ev_extra1"], event["ev_extra2"]) == (
        "rk", "body", "ex", "text/plain")
    properties = json.loads(event["ev_extra3"])
    assert list(properties) == ["message_id"]
    uuid.UUID(properties["message_id"])
    assert json.loads(event["ev_extra4"]) == {"pgq_queue": queue}
    assert audit_rows(audited_dsn, queue) == []


def test_insert_event_with_seven_arguments_passes_properties_and_headers_through(audited_dsn, queue):
    properties, headers = '{"type": "example", "priority": 3}', '{"tenant": "acme"}'
    event_id = one(audited_dsn, "SELECT mikkoo.insert_event(%s, %s, %s, %s, %s, %s, %s)",
                   (queue, "postgres", "test.routing-key", '{"foo": "bar"}', "application/json",
                    properties, headers))
    (event,) = read_events(audited_dsn, queue)
    assert event["ev_id"] == event_id
    assert (event["ev_type"], event["ev_data"], event["ev_extra1"], event["ev_extra2"],
            event["ev_extra3"], event["ev_extra4"]) == (
        "test.routing-key", '{"foo": "bar"}', "postgres", "application/json", properties, headers)
    assert audit_rows(audited_dsn, queue) == []


def test_insert_event_into_an_unknown_queue_fails(audited_dsn):
    with pytest.raises(psycopg2.Error, match="queue"):
        services.sql(audited_dsn, "SELECT mikkoo.insert_event(%s, '', 'rk', 'body', 'text/plain')",
                     (services.unique("missing"),))


def test_new_audit_record_inserts_and_returns_the_row(audited_dsn):
    message_id, queue = uuid.uuid4(), services.unique("nq")
    with services.connect(audited_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM mikkoo.new_audit_record(%s::uuid, 42, %s, 'ex', 'rk', 'body', "
                    "'text/plain', '{}', NULL)", (str(message_id), queue))
        names = [col.name for col in cur.description]
        row = dict(zip(names, cur.fetchone(), strict=True))
    assert names == [name for name, _, _ in MIKKOO_COLUMNS + RELAY_COLUMNS]
    assert (row["message_id"], row["event_id"], row["queue"], row["headers"]) == (
        str(message_id), 42, queue, None)
    assert [r["message_id"] for r in audit_rows(audited_dsn, queue)] == [str(message_id)]
    with pytest.raises(psycopg2.errors.UniqueViolation):
        services.sql(audited_dsn, "SELECT mikkoo.new_audit_record(%s::uuid, 43, %s, 'ex', 'rk', 'b', "
                                    "NULL, NULL, NULL)", (str(message_id), queue))


def test_delete_audit_record(audited_dsn, queue):
    one(audited_dsn, "SELECT mikkoo.insert_audited_event(%s, '', 'rk', 'body', 'text/plain')", (queue,))
    (record,) = audit_rows(audited_dsn, queue)
    assert one(audited_dsn, "SELECT mikkoo.delete_audit_record(%s)", (record["message_id"],)) is True
    assert audit_rows(audited_dsn, queue) == []
    assert one(audited_dsn, "SELECT mikkoo.delete_audit_record(%s)", (record["message_id"],)) is False
    assert one(audited_dsn, "SELECT mikkoo.delete_audit_record(NULL)") is False


@pytest.mark.parametrize("name", ["it's", 'say "hi"', "back\\slash's"])
def test_queue_names_with_quotes_give_valid_json(audited_dsn, name):
    name = make_queue(audited_dsn, f"{name} {uuid.uuid4().hex[:8]}")
    try:
        one(audited_dsn, "SELECT mikkoo.insert_audited_event(%s, '', 'rk', 'a', NULL)", (name,))
        one(audited_dsn, "SELECT mikkoo.insert_event(%s, '', 'rk', 'b', NULL)", (name,))
        events = read_events(audited_dsn, name)
        assert [json.loads(ev["ev_extra4"]) for ev in events] == [{"pgq_queue": name}] * 2
        (record,) = audit_rows(audited_dsn, name)
        assert json.loads(record["headers"]) == {"pgq_queue": name}
        assert json.loads(events[0]["ev_extra3"]) == {"message_id": str(record["message_id"])}
    finally:
        services.sql(audited_dsn, "SELECT pgq.drop_queue(%s, true)", (name,))


def test_mark_confirmed(audited_dsn, queue):
    for body in ("a", "b", "c"):
        one(audited_dsn, "SELECT mikkoo.insert_audited_event(%s, '', 'rk', %s, NULL)", (queue, body))
    a, b, c = (r["message_id"] for r in audit_rows(audited_dsn, queue))
    stranger = str(uuid.uuid4())

    assert one(audited_dsn, "SELECT mikkoo.mark_confirmed(%s::uuid[])", ([a, b, stranger],)) == 2
    first = {r["message_id"]: r["confirmed_at"] for r in audit_rows(audited_dsn, queue)}
    assert first[a] is not None and first[b] is not None and first[c] is None
    # A batch handed out again confirms the same messages again: nothing changes.
    assert one(audited_dsn, "SELECT mikkoo.mark_confirmed(%s::uuid[])", ([a, b, b],)) == 0
    assert {r["message_id"]: r["confirmed_at"] for r in audit_rows(audited_dsn, queue)} == first
    assert one(audited_dsn, "SELECT mikkoo.mark_confirmed('{}'::uuid[])") == 0
    assert one(audited_dsn, "SELECT mikkoo.mark_confirmed(NULL)") == 0
    outstanding = services.sql(audited_dsn,
                               "SELECT message_id FROM mikkoo.audit WHERE queue = %s "
                               "AND confirmed_at IS NULL AND dead_lettered_at IS NULL", (queue,))
    assert outstanding == [(c,)]


def test_mark_confirmed_rolls_back_with_the_batch(audited_dsn, queue):
    one(audited_dsn, "SELECT mikkoo.insert_audited_event(%s, '', 'rk', 'a', NULL)", (queue,))
    (record,) = audit_rows(audited_dsn, queue)
    with services.connect(audited_dsn, autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("SELECT mikkoo.mark_confirmed(ARRAY[%s]::uuid[])", (record["message_id"],))
        assert cur.fetchone() == (1,)
        conn.rollback()
    assert audit_rows(audited_dsn, queue)[0]["confirmed_at"] is None


def test_mark_dead_lettered(audited_dsn, queue):
    for body in ("a", "b", "c"):
        one(audited_dsn, "SELECT mikkoo.insert_audited_event(%s, '', 'rk', %s, NULL)", (queue, body))
    a, b, c = (r["message_id"] for r in audit_rows(audited_dsn, queue))
    one(audited_dsn, "SELECT mikkoo.mark_confirmed(ARRAY[%s]::uuid[])", (a,))

    assert one(audited_dsn, "SELECT mikkoo.mark_dead_lettered(%s::uuid[], %s)",
               ([a, b], "unroutable: no queue bound")) == 1  # a reached RabbitMQ already
    rows = {r["message_id"]: r for r in audit_rows(audited_dsn, queue)}
    assert (rows[a]["dead_lettered_at"], rows[a]["dead_letter_reason"]) == (None, None)
    assert rows[b]["dead_lettered_at"] is not None
    assert rows[b]["dead_letter_reason"] == "unroutable: no queue bound"
    assert rows[c]["dead_lettered_at"] is None

    # A replayed dead letter that fails again gets the new reason.
    assert one(audited_dsn, "SELECT mikkoo.mark_dead_lettered(ARRAY[%s]::uuid[], %s)",
               (b, "exchange not found")) == 1
    assert one(audited_dsn, "SELECT mikkoo.mark_dead_lettered(ARRAY[%s]::uuid[], '')", (c,)) == 1
    rows = {r["message_id"]: r for r in audit_rows(audited_dsn, queue)}
    assert rows[b]["dead_letter_reason"] == "exchange not found"
    assert rows[c]["dead_letter_reason"] == "no reason given"
    assert one(audited_dsn, "SELECT mikkoo.mark_dead_lettered(NULL, 'x')") == 0
    # Confirmed after a replay: it reached RabbitMQ; the dead-letter history is kept.
    assert one(audited_dsn, "SELECT mikkoo.mark_confirmed(ARRAY[%s]::uuid[])", (b,)) == 1
    assert audit_rows(audited_dsn, queue)[1]["dead_lettered_at"] is not None


def test_outstanding_records_are_found_through_the_partial_index(audited_dsn, queue):
    with services.connect(audited_dsn) as conn, conn.cursor() as cur:
        cur.execute("SET enable_seqscan = off")
        cur.execute("EXPLAIN SELECT count(*), min(published_at) FROM mikkoo.audit WHERE queue = %s "
                    "AND confirmed_at IS NULL AND dead_lettered_at IS NULL", (queue,))
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "audit_outstanding" in plan


# -- installing and upgrading ---------------------------------------------------------------------

def test_install_twice_is_idempotent_and_keeps_rows(fresh_dsn):
    first = install_audit_sql(fresh_dsn)
    assert (first.action, first.audit_rows) == (INSTALLED, 0)
    assert first.summary() == f"installed the mikkoo audit SQL API in {fresh_dsn} (0 audit rows)"
    queue = make_queue(fresh_dsn, services.unique("aq"))
    one(fresh_dsn, "SELECT mikkoo.insert_audited_event(%s, '', 'rk', 'a', NULL)", (queue,))
    before = services.sql(fresh_dsn, "SELECT * FROM mikkoo.audit")

    again = install_audit_sql(fresh_dsn)
    assert (again.action, again.audit_rows) == (CURRENT, 1)
    assert "already current (1 audit row)" in again.summary()
    assert services.sql(fresh_dsn, "SELECT * FROM mikkoo.audit") == before
    assert functions(fresh_dsn) == {**MIKKOO_FUNCTIONS, **RELAY_FUNCTIONS}


@needs_psql
def test_the_files_run_with_plain_psql_twice_in_one_transaction(fresh_dsn):
    for _ in range(2):
        done = psql_install(fresh_dsn, *AUDIT_SQL_FILES)
        assert done.returncode == 0, done.stderr
    assert functions(fresh_dsn) == {**MIKKOO_FUNCTIONS, **RELAY_FUNCTIONS}
    assert install_audit_sql(fresh_dsn).action == CURRENT


@needs_psql
def test_installing_only_mikkoo_sql_then_the_installer_upgrades(fresh_dsn):
    done = psql_install(fresh_dsn, MIKKOO_SQL)
    assert done.returncode == 0, done.stderr
    assert functions(fresh_dsn) == MIKKOO_FUNCTIONS
    assert columns(fresh_dsn) == MIKKOO_COLUMNS
    assert install_audit_sql(fresh_dsn).action == UPGRADED
    assert columns(fresh_dsn) == MIKKOO_COLUMNS + RELAY_COLUMNS


def test_upgrading_an_original_mikkoo_schema_keeps_rows_and_privileges(fresh_dsn):
    services.sql(fresh_dsn, ORIGINAL_STYLE_SCHEMA)
    services.sql(fresh_dsn, "REVOKE EXECUTE ON FUNCTION "
                            "mikkoo.insert_audited_event(text, text, text, text, text) FROM PUBLIC")
    queue = make_queue(fresh_dsn, services.unique("aq"))
    for body in ("a", "b"):
        one(fresh_dsn, "SELECT mikkoo.insert_audited_event(%s, 'ex', 'rk', %s, 'text/plain')", (queue, body))
    before = audit_rows(fresh_dsn, queue)
    acl = ("SELECT proacl::text FROM pg_proc "
           "WHERE oid = 'mikkoo.insert_audited_event(text,text,text,text,text)'::regprocedure")
    acl_before = one(fresh_dsn, acl)

    result = install_audit_sql(fresh_dsn)
    assert (result.action, result.audit_rows) == (UPGRADED, 2)
    assert "upgraded" in result.summary() and "(2 audit rows kept)" in result.summary()
    after = audit_rows(fresh_dsn, queue)
    assert [{k: r[k] for k in before[0]} for r in after] == before
    assert [(r["confirmed_at"], r["dead_lettered_at"]) for r in after] == [(None, None)] * 2
    assert one(fresh_dsn, acl) == acl_before
    assert functions(fresh_dsn) == {**MIKKOO_FUNCTIONS, **RELAY_FUNCTIONS}

    # The producers' calls keep working, now without the original's flaws.
    one(fresh_dsn, "SELECT mikkoo.insert_audited_event(%s, 'ex', 'rk', 'c', NULL)", (queue,))
    assert len(audit_rows(fresh_dsn, queue)) == 3
    assert one(fresh_dsn, "SELECT mikkoo.mark_confirmed(ARRAY[%s]::uuid[])", (before[0]["message_id"],)) == 1
    assert install_audit_sql(fresh_dsn).action == CURRENT


def test_two_installers_at_once_do_not_race(fresh_dsn):
    start = threading.Barrier(3)
    results, errors = [], []

    def run():
        start.wait()
        try:
            results.append(install_audit_sql(fresh_dsn).action)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(results) == [CURRENT, CURRENT, INSTALLED]


def test_a_database_without_pgq_is_refused_and_left_untouched():
    name = services.unique("mikkoo_nopgq")
    with services.connect(services.ADMIN_DSN) as conn, conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    dsn = services.dsn_for(name)
    try:
        with pytest.raises(SourceUnavailable, match=r"PgQ is not installed .*CREATE EXTENSION pgq"):
            install_audit_sql(dsn)
        assert services.sql(dsn, "SELECT nspname FROM pg_namespace WHERE nspname = 'mikkoo'") == []
    finally:
        services.drop_database(name)


def test_an_unreachable_database_is_reported_without_its_password():
    with pytest.raises(SourceUnavailable) as caught:
        install_audit_sql("postgres://relay:hunter2-s3cret@127.0.0.1:1/app", connect_timeout=2)
    message = str(caught.value)
    assert "hunter2-s3cret" not in message
    assert "postgres://relay:***@127.0.0.1:1/app" in message
    assert "\n" not in message


# -- manage.py install_sql ------------------------------------------------------------------------

def make_relayed_queue(source_url: str) -> RelayedQueue:
    connection = BrokerConnection.objects.create(name=services.unique("bc").replace("_", "-"))
    return RelayedQueue.objects.create(name=services.unique("rq").replace("_", "-"),
                                       queue_name=services.unique("q"), source_url=source_url,
                                       connection=connection)


@pytest.mark.django_db
def test_install_sql_command_installs_then_reports_current(fresh_dsn):
    relayed = make_relayed_queue(fresh_dsn)
    out = io.StringIO()
    call_command("install_sql", relayed.name, stdout=out)
    assert out.getvalue() == f"installed the mikkoo audit SQL API in {fresh_dsn} (0 audit rows)\n"
    assert functions(fresh_dsn) == {**MIKKOO_FUNCTIONS, **RELAY_FUNCTIONS}
    out = io.StringIO()
    call_command("install_sql", relayed.name, stdout=out)
    assert out.getvalue() == f"the mikkoo audit SQL API in {fresh_dsn} is already current (0 audit rows)\n"


@pytest.mark.django_db
def test_install_sql_command_unknown_queue():
    with pytest.raises(CommandError, match="no relayed queue named 'nope'"):
        call_command("install_sql", "nope", stdout=io.StringIO())


@pytest.mark.django_db
def test_install_sql_command_unreachable_database_hides_the_password():
    relayed = make_relayed_queue("postgres://relay:hunter2-s3cret@127.0.0.1:1/app")
    with pytest.raises(CommandError) as caught:
        call_command("install_sql", relayed.name, stdout=io.StringIO())
    message = str(caught.value)
    assert "hunter2-s3cret" not in message
    assert message.startswith("source database postgres://relay:***@127.0.0.1:1/app: connecting failed:")
    assert "\n" not in message
