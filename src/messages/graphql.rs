//! GraphQL types, queries and mutations of messages.

use async_graphql::{Context, Enum, ID, Object, SimpleObject, Union};
use chrono::{DateTime, Utc};

use crate::contacts::graphql::Contact;
use crate::graphql::context::ContextExt;
use crate::graphql::relay::encode_id;
use crate::users::graphql::User;

/// Direction of a message.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "MessageDirection")]
pub enum MessageDirection {
    /// From a contact to the organization.
    Inbound,
    /// From the organization to contacts.
    Outbound,
}

impl MessageDirection {
    /// From the stored name.
    pub fn from_stored(name: &str) -> Self {
        if name == "INBOUND" {
            MessageDirection::Inbound
        } else {
            MessageDirection::Outbound
        }
    }
}

/// The system as a message author (automatic replies, imports).
#[derive(SimpleObject, Clone)]
pub struct SystemAuthor {
    /// Always `Switchboard`.
    pub name: String,
}

/// Who wrote a message.
#[derive(Union)]
#[allow(clippy::large_enum_variant)]
pub enum MessageAuthor {
    /// A staff user.
    User(User),
    /// A contact.
    Contact(Contact),
    /// The system.
    System(SystemAuthor),
}

/// A message in a conversation.
#[derive(Clone)]
pub struct Message(pub entity::message::Model);

/// A message in a conversation: text and/or HTML by a user, a contact or the system.
#[Object]
impl Message {
    /// Globally unique id.
    pub async fn id(&self) -> ID {
        encode_id("Message", self.0.id)
    }

    /// Inbound (from a contact) or outbound.
    async fn direction(&self) -> MessageDirection {
        MessageDirection::from_stored(&self.0.direction)
    }

    /// Plain text body.
    async fn text(&self) -> Option<&str> {
        self.0.text_body.as_deref()
    }

    /// HTML body.
    async fn html(&self) -> Option<&str> {
        self.0.html_body.as_deref()
    }

    /// Who wrote it; null when the author was deleted.
    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<MessageAuthor>> {
        let app = ctx.app();
        Ok(match (self.0.author_user_id, self.0.author_contact_id) {
            (Some(id), _) => app
                .load::<entity::user::Entity>(id)
                .await?
                .map(|m| MessageAuthor::User(User(m))),
            (None, Some(id)) => app
                .load::<entity::contact::Entity>(id)
                .await?
                .map(|m| MessageAuthor::Contact(Contact(m))),
            (None, None) if self.0.author_kind == "SYSTEM" => {
                Some(MessageAuthor::System(SystemAuthor {
                    name: "Switchboard".into(),
                }))
            }
            (None, None) => None,
        })
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
