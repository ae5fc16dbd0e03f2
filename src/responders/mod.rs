//! Auto-responders: replies channels send by themselves (keywords, out of hours, first
//! message), and the SMS consent keywords `STOP`/`START`.

pub mod graphql;
pub mod service;
