//! Broadcasts: one message (a template or a body) to an audience of contacts, groups and
//! segments on one channel, scheduled, paused, resumed or cancelled, sent at the channel's rate
//! as real outbound messages in the contacts' conversations, with live stats.

pub mod graphql;
pub mod service;

pub use service::SUBJECT;
