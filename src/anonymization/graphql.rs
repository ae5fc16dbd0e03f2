//! GraphQL types, queries and mutations of anonymization requests.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::service::{self, RequestStatus, TargetType};
use crate::auth::Permission;
use crate::contacts::graphql::Contact;
use crate::graphql::context::ContextExt;
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{decode_id, encode_id};
use crate::users::graphql::User;

/// What an anonymization request erases.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "AnonymizationTargetType", remote = "service::TargetType")]
pub enum TargetTypeGql {
    /// A contact, with the subjects and message bodies of the conversations it requested.
    Contact,
    /// One conversation.
    Conversation,
    /// One message.
    Message,
}

/// Where an anonymization request stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "AnonymizationRequestStatus", remote = "service::RequestStatus")]
pub enum RequestStatusGql {
    /// Accepted, not yet processed.
    Pending,
    /// Personal data erased.
    Completed,
}

/// An anonymization request.
#[derive(Clone)]
pub struct AnonymizationRequest(pub entity::anonymization_request::Model);

/// A tracked request to erase personal data; counts, numbers and timestamps stay.
#[Object]
impl AnonymizationRequest {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("AnonymizationRequest", self.0.id)
    }

    /// What it erases.
    async fn target_type(&self) -> TargetTypeGql {
        TargetType::parse(&self.0.target_type).into()
    }

    /// Global id of the anonymized object.
    async fn target_id(&self) -> ID {
        let kind = match TargetType::parse(&self.0.target_type) {
            TargetType::Contact => "Contact",
            TargetType::Conversation => "Conversation",
            TargetType::Message => "Message",
        };
        encode_id(kind, self.0.target_id)
    }

    /// The anonymized contact, when the target is a contact.
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        if TargetType::parse(&self.0.target_type) != TargetType::Contact {
            return Ok(None);
        }
        Ok(ctx
            .app()
            .load::<entity::contact::Entity>(self.0.target_id)
            .await?
            .map(Contact))
    }

    /// Where it stands.
    async fn status(&self) -> RequestStatusGql {
        RequestStatus::parse(&self.0.status).into()
    }

    /// Whether conversations that were not closed were closed to let it proceed.
    async fn force(&self) -> bool {
        self.0.force
    }

    /// The user who asked for it; null when the system did.
    async fn requested_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.requested_by else {
            return Ok(None);
        };
        Ok(ctx.app().load::<entity::user::Entity>(id).await?.map(User))
    }

    /// When it was asked for.
    async fn requested_at(&self) -> DateTime<Utc> {
        self.0.requested_at
    }

    /// When the data was erased; null while pending.
    async fn processed_at(&self) -> Option<DateTime<Utc>> {
        self.0.processed_at
    }

    /// Conversations closed because of `force`.
    async fn closed_conversations(&self) -> i32 {
        self.0.closed_conversations
    }

    /// Conversations whose subject and message bodies were erased.
    async fn anonymized_conversations(&self) -> i32 {
        self.0.anonymized_conversations
    }

    /// Messages whose bodies were erased.
    async fn erased_messages(&self) -> i32 {
        self.0.erased_messages
    }
}

/// Anonymization queries.
#[derive(Default)]
pub struct AnonymizationQuery;

#[Object]
impl AnonymizationQuery {
    /// An anonymization request by id; null when there is none (ADMIN).
    async fn anonymization_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request's global id.")] id: ID,
    ) -> async_graphql::Result<Option<AnonymizationRequest>> {
        let app = ctx.app();
        app.principal()?.require(Permission::Anonymize)?;
        let id = decode_id(&id, "AnonymizationRequest")?;
        Ok(app
            .load::<entity::anonymization_request::Entity>(id)
            .await?
            .map(AnonymizationRequest))
    }
}

/// Which contact to anonymize.
#[derive(InputObject)]
pub struct AnonymizeContactInput {
    /// The contact.
    pub contact_id: ID,
    /// Close the contact's conversations that are not closed instead of refusing with `CONFLICT`.
    #[graphql(default = false)]
    pub force: bool,
}

/// Result of an anonymization.
#[derive(SimpleObject)]
pub struct AnonymizeContactPayload {
    /// The tracked request; null when the input was refused.
    pub request: Option<AnonymizationRequest>,
    /// The contact after anonymization; null when the input was refused.
    pub contact: Option<Contact>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Anonymization mutations.
#[derive(Default)]
pub struct AnonymizationMutation;

#[Object]
impl AnonymizationMutation {
    /// Erases a contact's personal data, its conversations' subjects and their message bodies,
    /// keeping counts and timestamps (ADMIN). Conversations not closed block it with `CONFLICT`
    /// unless `force` closes them. An anonymized contact cannot be changed again.
    async fn anonymize_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: AnonymizeContactInput,
    ) -> async_graphql::Result<AnonymizeContactPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("contactId", &input.contact_id, "Contact") {
            Ok(id) => {
                let store =
                    crate::attachments::store::Store::new(&app.state.config.attachments_dir);
                service::anonymize_contact(app.db(), &store, principal, id, input.force).await
            }
            Err(e) => Err(e),
        };
        let (done, user_errors) = split(result)?;
        let (request, contact) = match done {
            Some((request, contact)) => {
                (Some(AnonymizationRequest(request)), Some(Contact(contact)))
            }
            None => (None, None),
        };
        Ok(AnonymizeContactPayload {
            request,
            contact,
            user_errors,
        })
    }

    /// Erases one conversation's personal data: subject, rating comment, attribute values,
    /// message bodies, email subjects and addresses, note bodies (ADMIN). A conversation not
    /// closed blocks it with `CONFLICT` unless `force` closes it.
    async fn anonymize_conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: AnonymizeConversationInput,
    ) -> async_graphql::Result<AnonymizeConversationPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("conversationId", &input.conversation_id, "Conversation") {
            Ok(id) => {
                let store =
                    crate::attachments::store::Store::new(&app.state.config.attachments_dir);
                service::anonymize_conversation(app.db(), &store, principal, id, input.force).await
            }
            Err(e) => Err(e),
        };
        let (done, user_errors) = split(result)?;
        let (request, conversation) = match done {
            Some((request, conversation)) => (
                Some(AnonymizationRequest(request)),
                Some(crate::conversations::graphql::Conversation(conversation)),
            ),
            None => (None, None),
        };
        Ok(AnonymizeConversationPayload {
            request,
            conversation,
            user_errors,
        })
    }
}

/// Anonymize one conversation.
#[derive(InputObject)]
pub struct AnonymizeConversationInput {
    /// The conversation.
    pub conversation_id: ID,
    /// Close it first when it is not closed (otherwise that is a `CONFLICT`).
    #[graphql(default)]
    pub force: bool,
}

/// Result of `anonymizeConversation`.
#[derive(SimpleObject)]
pub struct AnonymizeConversationPayload {
    /// The completed request; null when refused.
    pub request: Option<AnonymizationRequest>,
    /// The conversation after erasure.
    pub conversation: Option<crate::conversations::graphql::Conversation>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}
