//! Contacts (being written).
