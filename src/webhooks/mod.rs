//! Webhooks: subscriptions to event types, signed deliveries per Standard Webhooks, and the log
//! of every attempt.

pub mod catalog;
pub mod dispatch;
pub mod graphql;
pub mod service;
pub mod signing;
