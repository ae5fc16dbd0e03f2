//! Presence (DESIGN §2.1, Dixa's agent presence): per user, the connection status derived from
//! their websocket connections on every instance, the presence status they choose, the channel
//! types they take and their capacity per type; plus the registry of this instance's websocket
//! connections with the per-token connection cap.

pub mod graphql;
pub mod registry;
pub mod service;

pub use registry::Registry;
