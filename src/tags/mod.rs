//! Tags: labels with a color for conversations and contacts. Inactive tags stay where applied but
//! cannot be newly applied.

pub mod graphql;
pub mod service;
