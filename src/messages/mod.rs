//! Messages: sending (outbound), recording inbound messages, edits, redaction, removal, reactions,
//! read receipts, delivery status and its history, and the per-conversation `messages` list.

pub mod graphql;
pub mod service;
