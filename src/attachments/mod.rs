//! Attachments: files sent with messages. Uploaded through the GraphQL multipart request spec
//! (`Upload` scalar), checked against a size limit and a content-type allowlist, stored on local
//! disk (`<attachments_dir>/<organization id>/<attachment id>`) and served back by an
//! authenticated download URL (`GET /attachments/<id>`).

pub mod graphql;
pub mod http;
pub mod service;
pub mod store;

/// Most attachments one message may carry.
pub const MAX_PER_MESSAGE: usize = 10;
