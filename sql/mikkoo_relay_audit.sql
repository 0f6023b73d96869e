-- What mikkoo-relay adds to mikkoo's audit API: when each audited message was
-- confirmed by RabbitMQ or given up on (dead-lettered), so the audit answers
-- "did every event written to PgQ reach RabbitMQ?".
--
-- An upgrade over sql/mikkoo.sql (or over mikkoo's own mikkoo.sql): it only
-- adds nullable columns, an index and functions, so existing rows, functions
-- and producers keep working. Safe to run again; run it after sql/mikkoo.sql,
-- in the same transaction:
--   psql -v ON_ERROR_STOP=1 --single-transaction -f sql/mikkoo.sql -f sql/mikkoo_relay_audit.sql
-- Contains no transaction control and no psql meta-commands.

DO $$
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(
        ('x' || pg_catalog.substr(pg_catalog.md5('mikkoo-relay/audit-sql'), 1, 16))::bit(64)::bigint);
    IF pg_catalog.to_regclass('mikkoo.audit') IS NULL THEN
        RAISE EXCEPTION 'mikkoo.audit does not exist in database % (run sql/mikkoo.sql first)',
            pg_catalog.current_database();
    END IF;
    -- ALTER TABLE takes an ACCESS EXCLUSIVE lock even when every column is
    -- there already; only take it when something is missing. Nullable columns
    -- without a default are added without rewriting the table.
    IF (SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute
         WHERE attrelid = 'mikkoo.audit'::regclass AND NOT attisdropped
           AND attname IN ('confirmed_at', 'dead_lettered_at', 'dead_letter_reason')) < 3 THEN
        ALTER TABLE mikkoo.audit
            ADD COLUMN IF NOT EXISTS confirmed_at timestamptz,
            ADD COLUMN IF NOT EXISTS dead_lettered_at timestamptz,
            ADD COLUMN IF NOT EXISTS dead_letter_reason text;
    END IF;
    -- Outstanding records (neither confirmed nor dead-lettered) per queue,
    -- oldest first: what the admin asks for. Small when the relay keeps up.
    IF pg_catalog.to_regclass('mikkoo.audit_outstanding') IS NULL THEN
        CREATE INDEX audit_outstanding ON mikkoo.audit (queue, published_at)
            WHERE confirmed_at IS NULL AND dead_lettered_at IS NULL;
    END IF;
END
$$;

COMMENT ON COLUMN mikkoo.audit.confirmed_at IS
    'When RabbitMQ confirmed the message to mikkoo-relay; NULL: not (yet) confirmed. '
    'Set by mikkoo.mark_confirmed in the transaction that finishes the PgQ batch.';
COMMENT ON COLUMN mikkoo.audit.dead_lettered_at IS
    'When mikkoo-relay gave up on the message and stored it as a dead letter; NULL: it did not. '
    'Kept when a replayed dead letter is later confirmed.';
COMMENT ON COLUMN mikkoo.audit.dead_letter_reason IS
    'Why mikkoo-relay gave up on the message (set with dead_lettered_at).';
COMMENT ON INDEX mikkoo.audit_outstanding IS
    'Records neither confirmed nor dead-lettered, by queue and age: the messages not known to have '
    'reached RabbitMQ.';


CREATE OR REPLACE FUNCTION mikkoo.mark_confirmed(message_ids uuid[])
RETURNS integer
LANGUAGE sql
VOLATILE
AS $$
    WITH marked AS (
        UPDATE mikkoo.audit
           SET confirmed_at = pg_catalog.clock_timestamp()
         WHERE message_id = ANY (message_ids)
           AND confirmed_at IS NULL
        RETURNING 1
    )
    SELECT pg_catalog.count(*)::integer FROM marked;
$$;

COMMENT ON FUNCTION mikkoo.mark_confirmed(uuid[]) IS
'Record that RabbitMQ confirmed the messages with these AMQP message_ids.
Called by mikkoo-relay in the transaction that finishes the PgQ batch, so the mark commits
if and only if the batch is finished. Records already confirmed keep their time (a batch
handed out again after a crash confirms the same messages twice); ids without an audit
record are ignored.
INPUTS: message_ids - AMQP message_ids (NULL or empty: nothing to do)
OUTPUTS: the number of records newly marked confirmed.';


CREATE OR REPLACE FUNCTION mikkoo.mark_dead_lettered(message_ids uuid[], reason text)
RETURNS integer
LANGUAGE sql
VOLATILE
AS $$
    WITH marked AS (
        UPDATE mikkoo.audit
           SET dead_lettered_at = pg_catalog.clock_timestamp(),
               dead_letter_reason = COALESCE(NULLIF(reason, ''), 'no reason given')
         WHERE message_id = ANY (message_ids)
           AND confirmed_at IS NULL
        RETURNING 1
    )
    SELECT pg_catalog.count(*)::integer FROM marked;
$$;

COMMENT ON FUNCTION mikkoo.mark_dead_lettered(uuid[], text) IS
'Record that mikkoo-relay gave up on the messages with these AMQP message_ids and stored them as
dead letters, with the reason. Called in the transaction that finishes the PgQ batch. A message
already confirmed is left alone; one dead-lettered before (a replayed dead letter that failed
again) gets the new time and reason; ids without an audit record are ignored.
INPUTS: message_ids - AMQP message_ids (NULL or empty: nothing to do)
        reason - why the messages could not be published
OUTPUTS: the number of records marked.';
