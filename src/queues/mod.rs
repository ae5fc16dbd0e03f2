//! Queues (Dixa's queues): where conversations wait to be offered to the queue's members, with
//! the offer algorithm, timeouts, thresholds and per-channel settings. Exactly one queue per
//! organization is the default.

pub mod graphql;
pub mod service;
