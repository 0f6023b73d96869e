-- What mikkoo-relay's queue splitter keeps in a target database so that each
-- source batch is applied there exactly once (the idea of Skytools' pgq_ext).
-- Installed by the splitter the first time it writes to the database; safe to
-- run again.
CREATE SCHEMA IF NOT EXISTS mikkoo_relay;
COMMENT ON SCHEMA mikkoo_relay IS 'Bookkeeping of mikkoo-relay, the PgQ to RabbitMQ relay.';

CREATE TABLE IF NOT EXISTS mikkoo_relay.applied_batch (
    source         text        NOT NULL,
    queue_name     text        NOT NULL,
    consumer_name  text        NOT NULL,
    batch_id       bigint      NOT NULL,
    prev_tick_id   bigint      NOT NULL,
    tick_id        bigint      NOT NULL,
    tick_time      timestamptz NOT NULL,
    inserted       bigint      NOT NULL,
    retried        bigint      NOT NULL,
    dead_lettered  bigint      NOT NULL,
    applied_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, queue_name, consumer_name)
);

COMMENT ON TABLE mikkoo_relay.applied_batch IS
    'The last source batch each split queue applied here, written in the transaction that inserted its events. '
    'A batch handed out again after a crash is recognised by its ticks and finished without inserting again.';
COMMENT ON COLUMN mikkoo_relay.applied_batch.source IS
    'The source database: its cluster''s system identifier and its name.';
COMMENT ON COLUMN mikkoo_relay.applied_batch.queue_name IS 'The source PgQ queue.';
COMMENT ON COLUMN mikkoo_relay.applied_batch.consumer_name IS 'The PgQ consumer the splitter reads the source queue as.';
COMMENT ON COLUMN mikkoo_relay.applied_batch.batch_id IS 'The source batch id (informative: ids are not unique over time).';
COMMENT ON COLUMN mikkoo_relay.applied_batch.prev_tick_id IS 'The source tick the batch starts after.';
COMMENT ON COLUMN mikkoo_relay.applied_batch.tick_id IS 'The source tick the batch ends with: the consumer''s position once the batch is finished.';
COMMENT ON COLUMN mikkoo_relay.applied_batch.tick_time IS
    'When the end tick was made; with tick_id it tells a batch from one of a queue dropped and created again.';
COMMENT ON COLUMN mikkoo_relay.applied_batch.inserted IS 'Events of the batch inserted into target queues.';
COMMENT ON COLUMN mikkoo_relay.applied_batch.retried IS 'Events of the batch handed back to the source queue (pgq.event_retry).';
COMMENT ON COLUMN mikkoo_relay.applied_batch.dead_lettered IS 'Events of the batch stored as dead letters in the source database.';

CREATE TABLE IF NOT EXISTS mikkoo_relay.applied_batch_failure (
    source         text    NOT NULL,
    queue_name     text    NOT NULL,
    consumer_name  text    NOT NULL,
    ev_id          bigint  NOT NULL,
    dead           boolean NOT NULL,
    reason         text    NOT NULL,
    PRIMARY KEY (source, queue_name, consumer_name, ev_id)
);

COMMENT ON TABLE mikkoo_relay.applied_batch_failure IS
    'Events of the last applied batch (mikkoo_relay.applied_batch) that were not inserted, and what becomes of '
    'them in the source: retried or dead-lettered. Kept so that a batch recognised as applied after a crash is '
    'finished with the same retries and dead letters.';
COMMENT ON COLUMN mikkoo_relay.applied_batch_failure.ev_id IS 'The source event id.';
COMMENT ON COLUMN mikkoo_relay.applied_batch_failure.dead IS 'True: dead-lettered; false: retried.';
COMMENT ON COLUMN mikkoo_relay.applied_batch_failure.reason IS 'Why the event was not inserted.';
