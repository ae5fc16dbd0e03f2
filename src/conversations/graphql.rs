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

    /// The conversation's messages, oldest first unless `order` says otherwise.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn messages(
        &self,
        ctx: &async_graphql::Context<'_>,
        #[graphql(desc = "Order of the list; oldest first by default.")] order: Option<
            crate::messages::graphql::MessageOrderGql,
        >,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<
        crate::graphql::relay::Connection<crate::messages::graphql::Message>,
    > {
        crate::messages::graphql::messages_connection(
            ctx, self.0.id, first, after, last, before, order,
        )
        .await
    }
}
