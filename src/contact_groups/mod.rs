//! Contact groups: static members (Multisender, Text Request and courier groups) plus optional
//! rules over contact fields and custom attributes (Multisender's account filters), matched
//! all-of and evaluated in SQL.

pub mod graphql;
pub mod rules;
pub mod service;
