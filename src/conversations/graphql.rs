//! GraphQL types, queries and mutations of conversations.

use async_graphql::{ID, Object};

use crate::graphql::relay::encode_id;

/// A conversation.
#[derive(Clone)]
pub struct Conversation(pub entity::conversation::Model);

/// A conversation with a contact (or a group) on a channel: the unit of the inbox.
#[Object]
impl Conversation {
    /// Globally unique id.
    async fn id(&self) -> ID {
        encode_id("Conversation", self.0.id)
    }

    /// Per-organization sequential number (the human id).
    async fn number(&self) -> i64 {
        self.0.number
    }
}
