//! Messages: sending (outbound), recording inbound messages, edits, redaction, removal, reactions,
//! read receipts, delivery status and its history, outbound delivery through the channel's
//! provider ([`delivery`]), and the per-conversation `messages` list.

pub mod delivery;
pub mod graphql;
pub mod service;
