//! The GraphQL schema: root types merged from every capability, Relay's `node`, limits, and the
//! one `schema_builder()` shared by the server, the tests and the SDL export.

pub mod context;
pub mod limits;
pub mod payload;
pub mod relay;

use std::sync::Arc;

use async_graphql::{
    Context, ID, Interface, MergedObject, MergedSubscription, Object, Schema, SchemaBuilder,
};

use crate::activity::graphql::{ActivityLogEntry, ActivityQuery};
use crate::anonymization::graphql::{
    AnonymizationMutation, AnonymizationQuery, AnonymizationRequest,
};
use crate::attachments::graphql::Attachment;
use crate::auth::Permission;
use crate::channels::graphql::{Channel, ChannelMutation, ChannelQuery};
use crate::config::Config;
use crate::contact_groups::graphql::{ContactGroup, ContactGroupMutation, ContactGroupQuery};
use crate::contacts::bulk_graphql::ContactBulkMutation;
use crate::contacts::graphql::{Contact, ContactMutation, ContactQuery};
use crate::conversations::graphql::{Conversation, ConversationMutation, ConversationQuery};
use crate::custom_attributes::graphql::{
    CustomAttributeDefinition, CustomAttributeMutation, CustomAttributeQuery,
};
use crate::live::conversations::ConversationSubscription;
use crate::live::graphql::MessageSubscription;
use crate::live::typing::{TypingMutation, TypingSubscription};
use crate::messages::graphql::{Message, MessageMutation, MessageQuery};
use crate::notes::graphql::{Note, NoteMutation};
use crate::organizations::graphql::{Organization, OrganizationMutation, OrganizationQuery};
use crate::presence::graphql::{PresenceMutation, PresenceQuery, PresenceSubscription};
use crate::queues::graphql::{Queue, QueueMutation, QueueQuery};
use crate::ratelimit::RateLimiter;
use crate::search::graphql::SearchQuery;
use crate::tags::graphql::{Tag, TagMutation, TagQuery};
use crate::teams::graphql::{Team, TeamMutation, TeamQuery};
use crate::tokens::graphql::{ApiToken, TokenMutation, TokenQuery};
use crate::users::graphql::{User, UserMutation, UserQuery};
use context::ContextExt;

/// An object with a globally unique id, fetchable with `node(id:)`.
#[derive(Interface)]
#[allow(clippy::large_enum_variant)]
#[graphql(field(name = "id", ty = "ID", desc = "Globally unique, opaque id."))]
pub enum Node {
    /// An organization.
    Organization(Organization),
    /// A user.
    User(User),
    /// An API token.
    ApiToken(ApiToken),
    /// A tag.
    Tag(Tag),
    /// A team.
    Team(Team),
    /// A queue.
    Queue(Queue),
    /// A custom attribute definition.
    CustomAttributeDefinition(CustomAttributeDefinition),
    /// A contact.
    Contact(Contact),
    /// An anonymization request.
    AnonymizationRequest(AnonymizationRequest),
    /// A contact group.
    ContactGroup(ContactGroup),
    /// A channel.
    Channel(Channel),
    /// A conversation.
    Conversation(Conversation),
    /// A message.
    Message(Message),
    /// An attachment.
    Attachment(Attachment),
    /// A note.
    Note(Note),
    /// An offer of a conversation to an agent.
    ConversationOffer(crate::routing::graphql::ConversationOffer),
    /// An activity log entry.
    ActivityLogEntry(ActivityLogEntry),
    /// A message template variant.
    Template(crate::templates::graphql::Template),
    /// An auto-responder.
    AutoResponder(crate::responders::graphql::AutoResponder),
    /// A broadcast.
    Broadcast(crate::broadcasts::graphql::Broadcast),
    /// A voice conference or video room.
    Room(crate::rooms::graphql::Room),
    /// A participant of a room.
    RoomParticipant(crate::rooms::graphql::RoomParticipant),
    /// A recording of a room.
    RoomRecording(crate::rooms::graphql::RoomRecording),
    /// A call.
    Call(crate::calls::graphql::Call),
    /// A call campaign.
    CallCampaign(crate::call_campaigns::graphql::CallCampaign),
}

/// Largest list `nodes(ids:)` takes.
pub const MAX_NODES: usize = 100;

/// Relay's object lookup.
#[derive(Default)]
pub struct NodeQuery;

async fn load_node(ctx: &Context<'_>, id: &ID) -> async_graphql::Result<Option<Node>> {
    let app = ctx.app();
    let principal = app.principal()?;
    principal.require(Permission::ReadDirectory)?;
    let (type_name, uuid) = relay::decode_any_id(id)?;
    Ok(match type_name.as_str() {
        "Organization" => app
            .load::<entity::organization::Entity>(uuid)
            .await?
            .map(|m| Node::Organization(Organization(m))),
        "User" => app
            .load::<entity::user::Entity>(uuid)
            .await?
            .map(|m| Node::User(User(m))),
        "ApiToken" => app
            .load::<entity::api_token::Entity>(uuid)
            .await?
            .and_then(|m| crate::tokens::service::visible(principal, m))
            .map(|m| Node::ApiToken(ApiToken(m))),
        "Tag" => app
            .load::<entity::tag::Entity>(uuid)
            .await?
            .map(|m| Node::Tag(Tag(m))),
        "Team" => app
            .load::<entity::team::Entity>(uuid)
            .await?
            .map(|m| Node::Team(Team(m))),
        "ConversationOffer" => app
            .load::<entity::conversation_offer::Entity>(uuid)
            .await?
            .map(|m| Node::ConversationOffer(crate::routing::graphql::ConversationOffer(m))),
        "Queue" => app
            .load::<entity::queue::Entity>(uuid)
            .await?
            .map(|m| Node::Queue(Queue(m))),
        "CustomAttributeDefinition" => app
            .load::<entity::custom_attribute_definition::Entity>(uuid)
            .await?
            .map(|m| Node::CustomAttributeDefinition(CustomAttributeDefinition(m))),
        "Contact" => app
            .load::<entity::contact::Entity>(uuid)
            .await?
            .map(|m| Node::Contact(Contact(m))),
        "AnonymizationRequest" if principal.require(Permission::Anonymize).is_ok() => app
            .load::<entity::anonymization_request::Entity>(uuid)
            .await?
            .map(|m| Node::AnonymizationRequest(AnonymizationRequest(m))),
        "ContactGroup" => app
            .load::<entity::contact_group::Entity>(uuid)
            .await?
            .map(|m| Node::ContactGroup(ContactGroup(m))),
        "Channel" if principal.require(Permission::WorkConversations).is_ok() => app
            .load::<entity::channel::Entity>(uuid)
            .await?
            .map(|m| Node::Channel(Channel(m))),
        "Conversation" if principal.require(Permission::WorkConversations).is_ok() => app
            .load::<entity::conversation::Entity>(uuid)
            .await?
            .map(|m| Node::Conversation(Conversation(m))),
        "Message" if principal.require(Permission::WorkConversations).is_ok() => app
            .load::<entity::message::Entity>(uuid)
            .await?
            .map(|m| Node::Message(Message(m))),
        "Attachment" if principal.require(Permission::WorkConversations).is_ok() => app
            .load::<entity::attachment::Entity>(uuid)
            .await?
            .map(|m| Node::Attachment(Attachment(m))),
        "Note" if principal.require(Permission::WorkConversations).is_ok() => app
            .load::<entity::note::Entity>(uuid)
            .await?
            .map(|m| Node::Note(Note(m))),
        "Template" if principal.require(Permission::WorkConversations).is_ok() => app
            .load::<entity::template::Entity>(uuid)
            .await?
            .map(|m| Node::Template(crate::templates::graphql::Template(m))),
        "AutoResponder" if principal.require(Permission::WorkConversations).is_ok() => app
            .load::<entity::auto_responder::Entity>(uuid)
            .await?
            .map(|m| Node::AutoResponder(crate::responders::graphql::AutoResponder(m))),
        "Broadcast" if principal.require(Permission::ManageRouting).is_ok() => app
            .load::<entity::broadcast::Entity>(uuid)
            .await?
            .map(|m| Node::Broadcast(crate::broadcasts::graphql::Broadcast(m))),
        "Room" if principal.require(Permission::WorkConversations).is_ok() => app
            .load::<entity::room::Entity>(uuid)
            .await?
            .map(|m| Node::Room(crate::rooms::graphql::Room(m))),
        "RoomParticipant" if principal.require(Permission::WorkConversations).is_ok() => app
            .load::<entity::room_participant::Entity>(uuid)
            .await?
            .map(|m| Node::RoomParticipant(crate::rooms::graphql::RoomParticipant(m))),
        "RoomRecording" if principal.require(Permission::WorkConversations).is_ok() => app
            .load::<entity::room_recording::Entity>(uuid)
            .await?
            .map(|m| Node::RoomRecording(crate::rooms::graphql::RoomRecording(m))),
        "Call" if principal.require(Permission::WorkConversations).is_ok() => app
            .load::<entity::call::Entity>(uuid)
            .await?
            .map(|m| Node::Call(crate::calls::graphql::Call(m))),
        "CallCampaign" if principal.require(Permission::ManageRouting).is_ok() => app
            .load::<entity::call_campaign::Entity>(uuid)
            .await?
            .map(|m| Node::CallCampaign(crate::call_campaigns::graphql::CallCampaign(m))),
        "ActivityLogEntry" if principal.require(Permission::WorkConversations).is_ok() => app
            .load::<entity::event::Entity>(uuid)
            .await?
            .and_then(ActivityLogEntry::of)
            .map(Node::ActivityLogEntry),
        _ => None,
    })
}

#[Object]
impl NodeQuery {
    /// The object with this global id, if it exists and the caller may see it.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global id.")] id: ID,
    ) -> async_graphql::Result<Option<Node>> {
        load_node(ctx, &id).await
    }

    /// The objects with these global ids, in order; null where one does not exist or is hidden.
    #[graphql(complexity = "ids.len() * child_complexity + 1")]
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Up to 100 global ids.")] ids: Vec<ID>,
    ) -> async_graphql::Result<Vec<Option<Node>>> {
        if ids.len() > MAX_NODES {
            return Err(crate::error::AppError::BadUserInput(format!(
                "nodes takes at most {MAX_NODES} ids"
            ))
            .into());
        }
        futures_util::future::try_join_all(ids.iter().map(|id| load_node(ctx, id))).await
    }
}

/// Every query of the API.
#[derive(MergedObject, Default)]
pub struct Query(
    NodeQuery,
    UserQuery,
    OrganizationQuery,
    TokenQuery,
    TagQuery,
    TeamQuery,
    QueueQuery,
    CustomAttributeQuery,
    ContactQuery,
    AnonymizationQuery,
    ContactGroupQuery,
    ChannelQuery,
    ConversationQuery,
    SearchQuery,
    MessageQuery,
    ActivityQuery,
    PresenceQuery,
    crate::routing::graphql::RoutingQuery,
    crate::routing::graphql::QueueStatsQuery,
    crate::templates::graphql::TemplateQuery,
    crate::responders::graphql::ResponderQuery,
    crate::webhooks::graphql::WebhookQuery,
    crate::broadcasts::graphql::BroadcastQuery,
    crate::rooms::graphql::RoomQuery,
    crate::calls::graphql::CallQuery,
    crate::call_campaigns::graphql::CallCampaignQuery,
    crate::metrics::graphql::MetricsQuery,
    crate::metrics::graphql::MetricsCountersQuery,
);

/// Every mutation of the API.
#[derive(MergedObject, Default)]
pub struct Mutation(
    UserMutation,
    OrganizationMutation,
    TokenMutation,
    TagMutation,
    TeamMutation,
    QueueMutation,
    CustomAttributeMutation,
    ContactMutation,
    AnonymizationMutation,
    ContactGroupMutation,
    ContactBulkMutation,
    ChannelMutation,
    ConversationMutation,
    MessageMutation,
    NoteMutation,
    TypingMutation,
    crate::routing::graphql::RoutingMutation,
    crate::templates::graphql::TemplateMutation,
    crate::responders::graphql::ResponderMutation,
    crate::webhooks::graphql::WebhookMutation,
    PresenceMutation,
    crate::broadcasts::graphql::BroadcastMutation,
    crate::rooms::graphql::RoomMutation,
    crate::calls::graphql::CallMutation,
    crate::call_campaigns::graphql::CallCampaignMutation,
);

/// Every subscription of the API: live updates over websockets (`/graphql/ws`, subprotocols
/// `graphql-transport-ws` and `graphql-ws`).
#[derive(MergedSubscription, Default)]
pub struct Subscription(
    MessageSubscription,
    ConversationSubscription,
    TypingSubscription,
    PresenceSubscription,
    crate::routing::graphql::RoutingSubscription,
    crate::routing::graphql::QueueStatsSubscription,
    crate::broadcasts::graphql::BroadcastSubscription,
    crate::rooms::graphql::RoomSubscription,
    crate::calls::graphql::CallSubscription,
    crate::call_campaigns::graphql::CallCampaignSubscription,
);

/// The schema type.
pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// The schema with its types and nothing configured: the SDL comes from this.
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
}

/// The schema as the server runs it: limits, introspection setting and the rate limiter.
pub fn build_schema(config: Arc<Config>, rate_limiter: Arc<RateLimiter>) -> AppSchema {
    let mut builder = schema_builder().extension(limits::Limits::new(config.clone(), rate_limiter));
    if !config.introspection {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}

/// The SDL of the schema, as written to `schema.graphql`.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}
