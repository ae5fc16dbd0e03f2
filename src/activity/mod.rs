//! The activity log: the timeline of conversations, read from the event log. Every event whose
//! subject is a conversation and whose type is one of `conversations::event_types` is an entry;
//! nothing is stored twice.

pub mod graphql;
pub mod service;
