//! Custom attribute definitions for contacts and conversations (Dixa custom attributes), and the
//! validation of values against them.

pub mod graphql;
pub mod service;
