//! Live updates: the event bus over the event log, GraphQL subscriptions, and the websocket
//! endpoint that serves them.

pub mod bus;
pub mod cohort;
pub mod conversations;
pub mod graphql;
pub mod guard;
pub mod typing;
pub mod ws;

pub use bus::EventBus;
