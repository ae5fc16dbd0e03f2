//! Message templates: named texts with `{{ variable }}` placeholders, in variants per channel
//! type and locale, rendered with a contact's fields and given variables.

pub mod graphql;
pub mod language;
pub mod service;
