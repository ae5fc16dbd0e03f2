//! Full-text search of conversations: subjects, messages, notes and the requester's names,
//! emails and phones, with highlighted excerpts. The index (`search_documents`, SQLite FTS5 or
//! PostgreSQL `tsvector`) is kept in step by database triggers (migration 010), in the same
//! transaction as every write, whichever module makes it.

pub mod graphql;
pub mod highlight;
pub mod query;
pub mod service;
