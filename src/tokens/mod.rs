//! API tokens and login sessions: bearer credentials of users. Secrets are shown once and stored
//! as SHA-256 hashes.

pub mod graphql;
pub mod service;
