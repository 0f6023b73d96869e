-- The relay's own bookkeeping in the source database. Installed by the relay
-- the first time it touches a queue; safe to run again.
CREATE SCHEMA IF NOT EXISTS mikkoo_relay;
COMMENT ON SCHEMA mikkoo_relay IS 'Bookkeeping of mikkoo-relay, the PgQ to RabbitMQ relay.';

CREATE TABLE IF NOT EXISTS mikkoo_relay.dead_letter (
    id               bigserial PRIMARY KEY,
    queue_name       text        NOT NULL,
    consumer_name    text        NOT NULL,
    batch_id         bigint      NOT NULL,
    ev_id            bigint      NOT NULL,
    ev_time          timestamptz NOT NULL,
    ev_txid          bigint,
    ev_retry         integer,
    ev_type          text,
    ev_data          text,
    ev_extra1        text,
    ev_extra2        text,
    ev_extra3        text,
    ev_extra4        text,
    reason           text        NOT NULL,
    failures         integer     NOT NULL,
    dead_lettered_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS dead_letter_queue_consumer_id
    ON mikkoo_relay.dead_letter (queue_name, consumer_name, id);

COMMENT ON TABLE mikkoo_relay.dead_letter IS
    'Events the relay gave up on, written in the same transaction as pgq.finish_batch of their batch.';
COMMENT ON COLUMN mikkoo_relay.dead_letter.batch_id IS 'The PgQ batch the event was given up in.';
COMMENT ON COLUMN mikkoo_relay.dead_letter.reason IS 'Why the event could not be published.';
COMMENT ON COLUMN mikkoo_relay.dead_letter.failures IS 'How often publishing the event failed.';
COMMENT ON COLUMN mikkoo_relay.dead_letter.dead_lettered_at IS 'When the relay gave up on the event.';

-- Wake-ups: the relay LISTENs on mikkoo_relay_q<queue id>; a statement-level
-- trigger on each event table of the queue notifies it. NOTIFY is sent at
-- commit and once per transaction, so producers pay almost nothing.
CREATE OR REPLACE FUNCTION mikkoo_relay.notify_relay() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mikkoo_relay_q' || TG_ARGV[0], '');
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION mikkoo_relay.notify_relay() IS
    'Trigger: tells a listening mikkoo-relay that events of a PgQ queue committed.';

CREATE OR REPLACE FUNCTION mikkoo_relay.watch_queue(i_queue_name text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    q record;
    t record;
    added integer := 0;
BEGIN
    SELECT queue_id, queue_data_pfx INTO q FROM pgq.queue WHERE queue_name = i_queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such PgQ queue: %', i_queue_name;
    END IF;
    FOR t IN
        SELECT c.oid::regclass AS event_table
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = q.queue_data_pfx::regclass
           AND NOT EXISTS (SELECT 1 FROM pg_trigger
                            WHERE tgrelid = c.oid AND tgname = 'mikkoo_relay_notify')
    LOOP
        EXECUTE format('CREATE TRIGGER mikkoo_relay_notify AFTER INSERT ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION mikkoo_relay.notify_relay(%L)',
                       t.event_table, q.queue_id);
        added := added + 1;
    END LOOP;
    RETURN added;
END;
$$;
COMMENT ON FUNCTION mikkoo_relay.watch_queue(text) IS
    'Installs the wake-up trigger on every event table of a PgQ queue; returns how many it added.';

-- Failure history of events being retried: PgQ counts retries but keeps no
-- times. Written with pgq.event_retry, removed when the event is delivered or
-- dead-lettered (which keeps its first failure time).
CREATE TABLE IF NOT EXISTS mikkoo_relay.event_failure (
    queue_name      text        NOT NULL,
    consumer_name   text        NOT NULL,
    ev_id           bigint      NOT NULL,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at  timestamptz NOT NULL DEFAULT now(),
    last_reason     text        NOT NULL,
    PRIMARY KEY (queue_name, consumer_name, ev_id)
);
COMMENT ON TABLE mikkoo_relay.event_failure IS
    'Events waiting for a retry: when they first and last failed, and why. Kept by mikkoo-relay.';
ALTER TABLE mikkoo_relay.dead_letter ADD COLUMN IF NOT EXISTS first_failed_at timestamptz;
COMMENT ON COLUMN mikkoo_relay.dead_letter.first_failed_at IS
    'When publishing the event first failed (dead_lettered_at is the last failure).';

-- Empty batches, finished in bulk: pgqd ticks every idle queue now and then (ticker_idle_period),
-- which gives each consumer an empty batch to take and finish. For a database with hundreds of
-- queues the relay finishes them all in one statement instead of one relay task each. A queue
-- another session is relaying (its advisory lock, as the relay takes it) is left alone; a batch
-- that holds an event is left taken (pgq.next_batch hands the same one out again).
CREATE OR REPLACE FUNCTION mikkoo_relay.finish_empty_batches(i_queues text[], i_consumers text[])
RETURNS TABLE (queue_name text, consumer_name text, finished integer, work_left boolean)
LANGUAGE plpgsql AS $$
DECLARE
    batch bigint;
    has_event boolean;
BEGIN
    FOR queue_name, consumer_name IN SELECT * FROM unnest(i_queues, i_consumers) LOOP
        finished := 0;
        work_left := false;
        IF NOT pg_try_advisory_xact_lock(('x' || substr(md5('mikkoo-relay/' || queue_name || '/'
                                                            || consumer_name), 1, 16))::bit(64)::bigint) THEN
            work_left := true;
            RETURN NEXT;
            CONTINUE;
        END IF;
        LOOP
            batch := pgq.next_batch(queue_name, consumer_name);
            EXIT WHEN batch IS NULL;
            EXECUTE 'SELECT EXISTS (' || pgq.batch_event_sql(batch) || ')' INTO has_event;
            IF has_event THEN
                work_left := true;
                EXIT;
            END IF;
            PERFORM pgq.finish_batch(batch);
            finished := finished + 1;
        END LOOP;
        RETURN NEXT;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION mikkoo_relay.finish_empty_batches(text[], text[]) IS
    'Finishes the empty batches of the given queue consumers that nobody is relaying; says which have events left.';

-- A batch a run stopped in the middle of (its time was up): what is recorded for it so far is
-- committed, and the next run goes on after last_ev_id. Removed with pgq.finish_batch. Keep this
-- table last in the file: the relay installs the schema again when it is missing.
CREATE TABLE IF NOT EXISTS mikkoo_relay.batch_progress (
    queue_name    text   NOT NULL,
    consumer_name text   NOT NULL,
    batch_id      bigint NOT NULL,
    last_ev_id    bigint NOT NULL,
    PRIMARY KEY (queue_name, consumer_name)
);
COMMENT ON TABLE mikkoo_relay.batch_progress IS
    'Batches relayed in part by a run of mikkoo-relay that had to stop: the next run goes on after last_ev_id.';
