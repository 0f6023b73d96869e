-- mikkoo's audit API, compatible with the mikkoo.sql that mikkoo ships: the
-- same schema, table, function names, argument names, argument order and
-- result types, so producers written for mikkoo keep working unchanged.
--
-- That API is mikkoo's: Copyright (c) 2015 Gavin M. Roy, BSD-3-Clause
-- (https://github.com/gmr/mikkoo); its notice is kept in LICENSE.
--
-- Differences from mikkoo's file (see docs/audit-sql.md, "Differences from mikkoo's mikkoo.sql"):
--   * needs no uuid-ossp extension: message ids come from gen_random_uuid()
--     (PostgreSQL 13 or later);
--   * the JSON of ev_extra3/ev_extra4 is built by jsonb_build_object, so a
--     queue name with a quote or backslash in it gives valid JSON;
--   * the SECURITY DEFINER functions pin their search_path;
--   * no function is STRICT: a NULL argument is not silently turned into
--     "no event and a NULL result", it is stored as NULL or rejected with an
--     error that rolls the producer's transaction back;
--   * safe to run again over itself or over mikkoo's own install: rows and
--     privileges are kept.
--
-- Needs the pgq extension. Contains no transaction control and no psql
-- meta-commands, so it can run inside a transaction:
--   psql -v ON_ERROR_STOP=1 --single-transaction -f sql/mikkoo.sql -f sql/mikkoo_relay_audit.sql
-- or: python manage.py install_sql <queue>

-- Installers serialise on this transaction-level lock (released at commit),
-- so two of them cannot race on the same objects.
DO $$
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(
        ('x' || pg_catalog.substr(pg_catalog.md5('mikkoo-relay/audit-sql'), 1, 16))::bit(64)::bigint);
    IF pg_catalog.to_regnamespace('pgq') IS NULL THEN
        RAISE EXCEPTION 'PgQ is not installed in database % (CREATE EXTENSION pgq first)',
            pg_catalog.current_database();
    END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS mikkoo;

COMMENT ON SCHEMA mikkoo IS
    'mikkoo''s audit API: producers insert PgQ events (optionally with an audit record) for a '
    'PgQ to RabbitMQ relay (mikkoo, mikkoo-relay).';

CREATE TABLE IF NOT EXISTS mikkoo.audit (
    message_id   uuid        NOT NULL,
    event_id     bigint      NOT NULL,
    queue        text        NOT NULL,
    exchange     text        NOT NULL,
    routing_key  text        NOT NULL,
    payload      text        NOT NULL,
    content_type text,
    properties   text,
    headers      text,
    published_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CREATE INDEX IF NOT EXISTS would still take a SHARE lock on the table (and
-- block producers) before finding the index; look first.
DO $$
BEGIN
    IF pg_catalog.to_regclass('mikkoo.audit_message_id') IS NULL THEN
        CREATE UNIQUE INDEX audit_message_id ON mikkoo.audit (message_id);
    END IF;
END
$$;

COMMENT ON TABLE mikkoo.audit IS
    'One row per event inserted with mikkoo.insert_audited_event (or mikkoo.new_audit_record): '
    'what was sent to PgQ, to check that it reached RabbitMQ.';
COMMENT ON COLUMN mikkoo.audit.message_id IS
    'The AMQP message_id property of the message (set in the event''s ev_extra3).';
COMMENT ON COLUMN mikkoo.audit.event_id IS 'The PgQ event id (ev_id).';
COMMENT ON COLUMN mikkoo.audit.queue IS 'The PgQ queue the event was inserted into.';
COMMENT ON COLUMN mikkoo.audit.exchange IS 'The AMQP exchange (ev_extra1); empty: the default exchange.';
COMMENT ON COLUMN mikkoo.audit.routing_key IS 'The AMQP routing key (ev_type).';
COMMENT ON COLUMN mikkoo.audit.payload IS 'The AMQP message body (ev_data).';
COMMENT ON COLUMN mikkoo.audit.content_type IS 'The AMQP content_type property (ev_extra2).';
COMMENT ON COLUMN mikkoo.audit.properties IS 'The AMQP properties as a JSON object (ev_extra3).';
COMMENT ON COLUMN mikkoo.audit.headers IS 'The AMQP headers as a JSON object (ev_extra4).';
COMMENT ON COLUMN mikkoo.audit.published_at IS
    'When the event was written to PgQ (start of the producer''s transaction). mikkoo''s name: '
    'the message reaches RabbitMQ later.';
COMMENT ON INDEX mikkoo.audit_message_id IS 'One audit record per AMQP message_id.';


CREATE OR REPLACE FUNCTION mikkoo.delete_audit_record(in_message_id uuid)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM mikkoo.audit WHERE message_id = in_message_id;
    RETURN FOUND;
END
$$;

COMMENT ON FUNCTION mikkoo.delete_audit_record(uuid) IS
'Delete the audit record of a message.
INPUTS: in_message_id - the AMQP message_id of the message
OUTPUTS: true if a record was deleted, false if there was none (or in_message_id is NULL).';


CREATE OR REPLACE FUNCTION mikkoo.new_audit_record(
    in_message_id uuid, in_event_id bigint, in_queue text, in_exchange text, in_routing_key text,
    in_payload text, in_content_type text, in_properties text, in_headers text)
RETURNS mikkoo.audit
LANGUAGE sql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO mikkoo.audit (message_id, event_id, queue, exchange, routing_key, payload,
                              content_type, properties, headers)
    VALUES (in_message_id, in_event_id, in_queue, in_exchange, in_routing_key, in_payload,
            in_content_type, in_properties, in_headers)
    RETURNING *;
$$;

COMMENT ON FUNCTION mikkoo.new_audit_record(uuid, bigint, text, text, text, text, text, text, text) IS
'Insert a row into mikkoo.audit and return it.
INPUTS: in_message_id - the AMQP message_id of the message (unique)
        in_event_id - the PgQ event id
        in_queue - the PgQ queue of the event
        in_exchange - the AMQP exchange
        in_routing_key - the AMQP routing key
        in_payload - the message body
        in_content_type - the AMQP content_type property (may be NULL)
        in_properties - the AMQP properties as JSON text (may be NULL)
        in_headers - the AMQP headers as JSON text (may be NULL)
OUTPUTS: the new mikkoo.audit row.
A NULL message id, event id, queue, exchange, routing key or payload is an error.';


CREATE OR REPLACE FUNCTION mikkoo.insert_audited_event(
    in_queue text, in_exchange text, in_routing_key text, in_payload text, in_content_type text)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_message_id uuid := gen_random_uuid();
    v_properties text := jsonb_build_object('message_id', v_message_id)::text;
    v_headers    text := jsonb_build_object('pgq_queue', in_queue)::text;
    v_event_id   bigint;
BEGIN
    IF in_queue IS NULL OR in_exchange IS NULL OR in_routing_key IS NULL OR in_payload IS NULL THEN
        RAISE EXCEPTION 'mikkoo.insert_audited_event: queue, exchange, routing key and payload '
                        'must not be NULL (exchange '''' is the default exchange)'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_event_id := pgq.insert_event(in_queue, in_routing_key, in_payload, in_exchange,
                                   in_content_type, v_properties, v_headers);
    PERFORM mikkoo.new_audit_record(v_message_id, v_event_id, in_queue, in_exchange, in_routing_key,
                                    in_payload, in_content_type, v_properties, v_headers);
    RETURN v_event_id;
END
$$;

COMMENT ON FUNCTION mikkoo.insert_audited_event(text, text, text, text, text) IS
'Insert an event into a PgQ queue and its record into mikkoo.audit, both in the caller''s transaction.
A new message_id (a random UUID) is set in the AMQP properties (ev_extra3) and the queue name in
the AMQP headers (ev_extra4) under "pgq_queue"; the audit record carries the same message_id.
INPUTS: in_queue - the PgQ queue
        in_exchange - the AMQP exchange (ev_extra1); empty string: the default exchange
        in_routing_key - the AMQP routing key (ev_type)
        in_payload - the message body (ev_data)
        in_content_type - the AMQP content_type property (ev_extra2, may be NULL)
OUTPUTS: the PgQ event id.
Unlike mikkoo''s version it needs no uuid-ossp extension, and a NULL queue, exchange, routing key or
payload is an error instead of silently inserting nothing.';


CREATE OR REPLACE FUNCTION mikkoo.insert_event(
    in_queue text, in_exchange text, in_routing_key text, in_payload text, in_content_type text)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN pgq.insert_event(in_queue, in_routing_key, in_payload, in_exchange, in_content_type,
                            jsonb_build_object('message_id', gen_random_uuid())::text,
                            jsonb_build_object('pgq_queue', in_queue)::text);
END
$$;

COMMENT ON FUNCTION mikkoo.insert_event(text, text, text, text, text) IS
'Insert an event into a PgQ queue, without an audit record.
A new message_id (a random UUID) is set in the AMQP properties (ev_extra3) and the queue name in
the AMQP headers (ev_extra4) under "pgq_queue".
INPUTS: in_queue - the PgQ queue
        in_exchange - the AMQP exchange (ev_extra1); empty string: the default exchange
        in_routing_key - the AMQP routing key (ev_type)
        in_payload - the message body (ev_data)
        in_content_type - the AMQP content_type property (ev_extra2)
OUTPUTS: the PgQ event id.
NULL arguments are passed to pgq.insert_event as NULL (mikkoo''s version inserted nothing).';


CREATE OR REPLACE FUNCTION mikkoo.insert_event(
    in_queue text, in_exchange text, in_routing_key text, in_payload text, in_content_type text,
    in_properties text, in_headers text)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN pgq.insert_event(in_queue, in_routing_key, in_payload, in_exchange, in_content_type,
                            in_properties, in_headers);
END
$$;

COMMENT ON FUNCTION mikkoo.insert_event(text, text, text, text, text, text, text) IS
'Insert an event into a PgQ queue, without an audit record, with the producer''s own properties and headers.
INPUTS: in_queue - the PgQ queue
        in_exchange - the AMQP exchange (ev_extra1); empty string: the default exchange
        in_routing_key - the AMQP routing key (ev_type)
        in_payload - the message body (ev_data)
        in_content_type - the AMQP content_type property (ev_extra2)
        in_properties - the AMQP properties as a JSON object (ev_extra3)
        in_headers - the AMQP headers as a JSON object (ev_extra4)
OUTPUTS: the PgQ event id.
NULL arguments are passed to pgq.insert_event as NULL (mikkoo''s version inserted nothing).';
