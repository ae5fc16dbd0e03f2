//! Anonymization: tracked requests that erase personal data while keeping counts and timestamps
//! (Dixa's anonymization requests). Contacts here; conversations and messages come with the inbox.

pub mod graphql;
pub mod service;
