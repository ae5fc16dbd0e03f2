//! Notes: internal texts on conversations by staff, added one at a time or imported in bulk
//! (backdated), listed per conversation.

pub mod graphql;
pub mod service;
