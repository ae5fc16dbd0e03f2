//! Contacts: the people an organization talks to (Dixa end users, Text Request and Multisender
//! contacts, courier individuals), with tags and validated custom attribute values.

pub mod bulk;
pub mod bulk_graphql;
pub mod graphql;
pub mod import;
pub mod service;
