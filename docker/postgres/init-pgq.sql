-- The demo source database, with PgQ, next to the relay's own database.
CREATE DATABASE mikkoo_demo;
CREATE DATABASE mikkoo_relay;
\connect mikkoo_demo
CREATE EXTENSION IF NOT EXISTS pgq;
