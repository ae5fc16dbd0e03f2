//! Organizations: the tenants. Created from the command line (`switchboard org create`) or as the
//! demo; read and updated through GraphQL by their own staff.

pub mod graphql;
pub mod service;
