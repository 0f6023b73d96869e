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

-- Whether events were committed since a queue's last tick, i.e. ticking would put them in a batch.
-- The event sequence moving past the tick's says so for most, but not for an event whose ev_id was
-- drawn before pgq.force_tick moved the sequence on and that committed after the tick: only its
-- txid, not visible in the tick's snapshot, tells. Without this such an event waits for pgqd's idle
-- tick (a minute).
CREATE OR REPLACE FUNCTION mikkoo_relay.events_since_tick(i_queue_name text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
    q record;
    t record;
    pending boolean;
BEGIN
    SELECT queue_id, queue_data_pfx, queue_event_seq INTO q FROM pgq.queue WHERE queue_name = i_queue_name;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    SELECT tick_snapshot, tick_event_seq INTO t FROM pgq.tick
     WHERE tick_queue = q.queue_id ORDER BY tick_id DESC LIMIT 1;
    IF NOT FOUND OR pg_sequence_last_value(q.queue_event_seq::regclass) > t.tick_event_seq THEN
        RETURN pg_sequence_last_value(q.queue_event_seq::regclass) IS NOT NULL;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE ev_txid >= $1 '
                   'AND NOT txid_visible_in_snapshot(ev_txid, $2))', q.queue_data_pfx)
       INTO pending USING txid_snapshot_xmin(t.tick_snapshot), t.tick_snapshot;
    RETURN pending;
END;
$$;
COMMENT ON FUNCTION mikkoo_relay.events_since_tick(text) IS
    'Whether events of the PgQ queue committed since its last tick (a tick would make a batch of them).';

-- A batch a run stopped in the middle of (its time was up): what is recorded for it so far is
-- committed, and the next run goes on after last_ev_id. Removed with pgq.finish_batch.
CREATE TABLE IF NOT EXISTS mikkoo_relay.batch_progress (
    queue_name    text   NOT NULL,
    consumer_name text   NOT NULL,
    batch_id      bigint NOT NULL,
    last_ev_id    bigint NOT NULL,
    PRIMARY KEY (queue_name, consumer_name)
);
COMMENT ON TABLE mikkoo_relay.batch_progress IS
    'Batches relayed in part by a run of mikkoo-relay that had to stop: the next run goes on after last_ev_id.';

-- Optional wake-up NOTIFY (RELAY_NOTIFY, off by default). The relay learns of new events by reading
-- the queues' event sequences; a trigger that NOTIFYs would cost every producer's commit an
-- instance-wide lock held through its WAL flush (PreCommit_Notify), so that every event-writing
-- commit of the server runs one at a time (0.36-0.46 x the commit rate at 4-16 producers, measured).
-- Relays before 2026-12 installed it on every queue: the relay removes it unless told otherwise.
DROP FUNCTION IF EXISTS mikkoo_relay.watch_queue(text);
CREATE OR REPLACE FUNCTION mikkoo_relay.notify_relay() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mikkoo_relay_q' || TG_ARGV[0], '');
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION mikkoo_relay.notify_relay() IS
    'Trigger (only with RELAY_NOTIFY): tells a listening mikkoo-relay that events of a PgQ queue committed.';

-- Keep this function last in the file: the relay installs the schema again when it is missing.
CREATE OR REPLACE FUNCTION mikkoo_relay.set_wakeup_trigger(i_queue_name text, i_notify boolean)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    q record;
    t record;
    changed integer := 0;
BEGIN
    SELECT queue_id, queue_data_pfx INTO q FROM pgq.queue WHERE queue_name = i_queue_name;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    FOR t IN
        SELECT c.oid::regclass AS event_table,
               EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = c.oid AND tgname = 'mikkoo_relay_notify') AS has
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = q.queue_data_pfx::regclass
    LOOP
        IF i_notify AND NOT t.has THEN
            EXECUTE format('CREATE TRIGGER mikkoo_relay_notify AFTER INSERT ON %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION mikkoo_relay.notify_relay(%L)',
                           t.event_table, q.queue_id);
            changed := changed + 1;
        ELSIF t.has AND NOT i_notify THEN
            EXECUTE format('DROP TRIGGER mikkoo_relay_notify ON %s', t.event_table);
            changed := changed + 1;
        END IF;
    END LOOP;
    RETURN changed;
END;
$$;
COMMENT ON FUNCTION mikkoo_relay.set_wakeup_trigger(text, boolean) IS
    'Installs (true) or removes (false) the optional NOTIFY trigger on every event table of a PgQ queue; '
    'returns how many tables changed.';
