//! Teams: groups of users.

pub mod graphql;
pub mod service;
