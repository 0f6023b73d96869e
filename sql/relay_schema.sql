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
