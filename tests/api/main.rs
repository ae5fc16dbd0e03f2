#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests through HTTP against the app started in-process on a fresh database.
//! Every test runs on SQLite; with `SWITCHBOARD_TEST_POSTGRES_URL` set they run on PostgreSQL.

mod common;
mod fixtures;

mod activity;
mod anonymization;
mod attachments;
mod auth;
mod batching;
mod broadcasts;
mod call_campaigns;
mod calls;
mod channels;
mod contacts;
mod contacts_bulk;
mod conversations;
mod custom_attributes;
mod delivery;
mod groups;
mod idempotency;
mod inbox;
mod ingest;
mod jobs;
mod limits;
mod live;
mod messages;
mod metrics;
mod notes;
mod ops;
mod presence;
mod providers;
mod queues;
mod responders;
mod rooms;
mod routing;
mod schema;
mod search;
mod tags;
mod teams;
mod templates;
mod tenancy;
mod transport;
mod users;
mod webhooks;
