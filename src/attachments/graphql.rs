//! GraphQL type of attachments.

use async_graphql::{ID, Object};
use chrono::{DateTime, Utc};

use crate::graphql::relay::encode_id;

/// An attachment.
#[derive(Clone)]
pub struct Attachment(pub entity::attachment::Model);

impl Attachment {
    /// The download path of an attachment: `/attachments/<global id>`.
    pub fn url_of(id: uuid::Uuid) -> String {
        format!("/attachments/{}", encode_id("Attachment", id).0)
    }
}

/// A file sent with a message. Download it from `url` with the same `Authorization: Bearer`
/// header as the API.
#[Object]
impl Attachment {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("Attachment", self.0.id)
    }

    /// File name as uploaded (without any folder part).
    async fn filename(&self) -> &str {
        &self.0.filename
    }

    /// Content type (one of the allowed types, e.g. `image/png`).
    async fn content_type(&self) -> &str {
        &self.0.content_type
    }

    /// Size in bytes.
    async fn size(&self) -> i64 {
        self.0.size_bytes
    }

    /// Hex SHA-256 of the content.
    async fn checksum(&self) -> &str {
        &self.0.sha256
    }

    /// Download path on this server (`/attachments/<id>`); needs the `Authorization: Bearer`
    /// header of a user of the organization.
    async fn url(&self) -> String {
        Self::url_of(self.0.id)
    }

    /// When it was uploaded.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
