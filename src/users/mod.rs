//! Users: the staff who sign in. Listing, creating, updating, deactivating, roles, passwords, login.

pub mod graphql;
pub mod service;
