//! Inbound ingest (DESIGN §2.6): providers report inbound messages and delivery status updates
//! (and, later, call events) to `POST /ingest/{channelId}`, signed per Standard Webhooks with the
//! channel's ingest secret. [`http`] checks the channel and the signature; [`service`] parses the
//! body and records what it says, through the same message paths as the GraphQL API.

pub mod http;
pub mod service;
