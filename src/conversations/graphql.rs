//! GraphQL types, queries and mutations of conversations: the inbox.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject, Union};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::inbox;
use super::service::{
    self, ConversationFilter, Kind, LinkType, NewConversation, OrderField, Priority, Rating, Status,
};
use crate::auth::{Permission, Principal};
use crate::channels::graphql::ChannelTypeGql;
use crate::contacts::graphql::{AttributeValueInput, Contact};
use crate::custom_attributes::graphql::CustomAttributeDefinition;
use crate::error::{AppError, AppResult};
use crate::graphql::context::{
    ById, ContextExt, RequestCtx, ScopedLoader, batch_loader, page_selects,
};
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, SortDirection, decode_id, encode_id};
use crate::messages::graphql::Message;
use crate::messages::service::Direction;
use crate::queues::graphql::Queue;
use crate::tags::graphql::Tag;
use crate::users::graphql::User;

batch_loader!(
    ConversationTagIds,
    Vec<Uuid>,
    service::tag_ids,
    "Tag ids per conversation, batched."
);
batch_loader!(
    ConversationAttributeValues,
    Vec<entity::conversation_attribute_value::Model>,
    service::attribute_values,
    "Attribute values per conversation, batched."
);
batch_loader!(
    ConversationParticipants,
    Vec<entity::conversation_participant::Model>,
    service::participants,
    "Participants per conversation, batched."
);

/// Unread count and read position per (conversation, reader), batched per reader.
pub struct UnreadCounts {
    db: DatabaseConnection,
    org_id: Uuid,
}

impl ScopedLoader for UnreadCounts {
    fn new(db: DatabaseConnection, org_id: Uuid) -> Self {
        Self { db, org_id }
    }
}

impl Loader<(Uuid, Uuid)> for UnreadCounts {
    type Value = (i64, Option<DateTime<Utc>>);
    type Error = AppError;

    async fn load(
        &self,
        keys: &[(Uuid, Uuid)],
    ) -> Result<HashMap<(Uuid, Uuid), Self::Value>, AppError> {
        let mut by_reader: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (conversation, reader) in keys {
            by_reader.entry(*reader).or_default().push(*conversation);
        }
        let mut out = HashMap::new();
        for (reader, conversations) in by_reader {
            let counts =
                inbox::unread_counts(&self.db, self.org_id, reader, &conversations).await?;
            for (conversation, value) in counts {
                out.insert((conversation, reader), value);
            }
        }
        Ok(out)
    }
}

macro_rules! gql_enum {
    ($(#[$doc:meta])* $name:ident = $gql:literal, $remote:literal { $($(#[$vdoc:meta])* $variant:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
        #[graphql(name = $gql, remote = $remote)]
        pub enum $name {
            $($(#[$vdoc])* $variant),*
        }
    };
}

gql_enum!(
    /// Where a conversation stands.
    ConversationStatusGql = "ConversationStatus", "service::Status" {
        /// Being worked.
        Open,
        /// Waiting (for the contact or a date); reopens at `pendingUntil`.
        Pending,
        /// Done.
        Closed,
    }
);

gql_enum!(
    /// Urgency of a conversation.
    ConversationPriorityGql = "ConversationPriority", "service::Priority" {
        /// Low.
        Low,
        /// Normal (the default).
        Normal,
        /// High.
        High,
        /// Urgent.
        Urgent,
    }
);

gql_enum!(
    /// One-to-one or group conversation.
    ConversationKindGql = "ConversationKind", "service::Kind" {
        /// A contact and the organization.
        Direct,
        /// Several contacts and users (participants).
        Group,
    }
);

gql_enum!(
    /// How a conversation relates to its parent.
    ConversationLinkTypeGql = "ConversationLinkType", "service::LinkType" {
        /// Continues the parent.
        FollowUp,
        /// A side conversation (e.g. with a third party) about the parent.
        SideConversation,
        /// The parent forwarded.
        Forward,
    }
);

/// Who wrote first.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[graphql(name = "ConversationDirection")]
pub enum ConversationDirection {
    /// The contact wrote first.
    #[default]
    Inbound,
    /// An agent wrote first.
    Outbound,
}

impl From<ConversationDirection> for Direction {
    fn from(d: ConversationDirection) -> Self {
        match d {
            ConversationDirection::Inbound => Direction::Inbound,
            ConversationDirection::Outbound => Direction::Outbound,
        }
    }
}

/// The kind of a rating.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RatingType {
    /// Customer satisfaction score, 1 (worst) to 5 (best).
    Csat,
    /// Thumbs up (score 1) or down (score 0).
    Thumbs,
}

/// A thumbs rating.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Thumbs {
    /// Satisfied.
    Up,
    /// Not satisfied.
    Down,
}

/// A conversation's rating by its contact.
#[derive(SimpleObject, Clone)]
pub struct ConversationRating {
    /// CSAT or thumbs.
    pub rating_type: RatingType,
    /// 1–5 for CSAT; 1 (up) or 0 (down) for thumbs.
    pub score: i32,
    /// The contact's comment.
    pub comment: Option<String>,
    /// When it was rated.
    pub rated_at: DateTime<Utc>,
}

/// A participant: a user or a contact.
#[derive(Union)]
#[allow(clippy::large_enum_variant)]
pub enum Participant {
    /// A staff user.
    User(User),
    /// A contact.
    Contact(Contact),
}

/// A participant of a group conversation.
pub struct ConversationParticipant(entity::conversation_participant::Model);

/// A contact or user taking part in a group conversation.
#[Object]
impl ConversationParticipant {
    /// The user or contact; null when it no longer exists.
    async fn participant(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Participant>> {
        let app = ctx.app();
        Ok(match self.0.participant_kind.as_str() {
            "USER" => app
                .load::<entity::user::Entity>(self.0.participant_id)
                .await?
                .map(|u| Participant::User(User(u))),
            _ => app
                .load::<entity::contact::Entity>(self.0.participant_id)
                .await?
                .map(|c| Participant::Contact(Contact(c))),
        })
    }

    /// When they were added.
    async fn added_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A custom attribute value of a conversation.
pub struct ConversationAttributeValue(entity::conversation_attribute_value::Model);

/// A conversation's value of a custom attribute.
#[Object]
impl ConversationAttributeValue {
    /// The attribute's identifier.
    async fn identifier(&self) -> &str {
        &self.0.identifier
    }

    /// The value: a string (TEXT, SELECT option value, DATE as `YYYY-MM-DD`), number or boolean.
    async fn value(&self) -> Json<serde_json::Value> {
        let v = &self.0;
        Json(if let Some(s) = &v.text_value {
            serde_json::json!(s)
        } else if let Some(n) = v.number_value {
            serde_json::json!(n)
        } else if let Some(b) = v.bool_value {
            serde_json::json!(b)
        } else if let Some(d) = v.date_value {
            serde_json::json!(d.format("%Y-%m-%d").to_string())
        } else {
            serde_json::Value::Null
        })
    }

    /// The attribute's definition.
    async fn definition(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<CustomAttributeDefinition>> {
        let definition = ctx
            .app()
            .load::<entity::custom_attribute_definition::Entity>(self.0.definition_id);
        Ok(definition.await?.map(CustomAttributeDefinition))
    }
}

/// A conversation.
#[derive(Clone)]
pub struct Conversation(pub entity::conversation::Model);

fn viewer(app: &RequestCtx) -> AppResult<Uuid> {
    Ok(app.principal()?.user_id())
}

/// A conversation with a contact (or a group) on a channel: the unit of the inbox.
#[Object]
impl Conversation {
    /// Globally unique id.
    pub async fn id(&self) -> ID {
        encode_id("Conversation", self.0.id)
    }

    /// Per-organization sequential number (the human id).
    async fn number(&self) -> i64 {
        self.0.number
    }

    /// The channel it is on (null for conversations without one, e.g. imported).
    async fn channel(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<crate::channels::graphql::Channel>> {
        Ok(match self.0.channel_id {
            Some(id) => ctx
                .app()
                .load::<entity::channel::Entity>(id)
                .await?
                .map(crate::channels::graphql::Channel),
            None => None,
        })
    }

    /// The channel type it is on.
    async fn channel_type(&self) -> Option<ChannelTypeGql> {
        crate::channels::ChannelType::parse(&self.0.channel_type).map(Into::into)
    }

    /// Direct or group.
    async fn kind(&self) -> ConversationKindGql {
        Kind::parse(&self.0.kind).unwrap_or(Kind::Direct).into()
    }

    /// Who wrote first.
    async fn direction(&self) -> ConversationDirection {
        if self.0.direction == "OUTBOUND" {
            ConversationDirection::Outbound
        } else {
            ConversationDirection::Inbound
        }
    }

    /// Subject (email subject, chat topic).
    async fn subject(&self) -> Option<&str> {
        self.0.subject.as_deref()
    }

    /// Open, pending or closed.
    async fn status(&self) -> ConversationStatusGql {
        Status::parse(&self.0.status).unwrap_or(Status::Open).into()
    }

    /// When a pending conversation reopens by itself.
    async fn pending_until(&self) -> Option<DateTime<Utc>> {
        self.0.pending_until
    }

    /// Why it was closed.
    async fn close_reason(&self) -> Option<&str> {
        self.0.close_reason.as_deref()
    }

    /// When it was closed (null unless closed).
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.0.closed_at
    }

    /// The contact it is with.
    async fn requester(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        let contact = ctx
            .app()
            .load::<entity::contact::Entity>(self.0.requester_id)
            .await?;
        Ok(contact.map(Contact))
    }

    /// Further participants (group conversations), oldest first.
    async fn participants(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ConversationParticipant>> {
        let rows = ctx
            .app()
            .loader::<ConversationParticipants>()?
            .load_one(self.0.id)
            .await?;
        Ok(rows
            .unwrap_or_default()
            .into_iter()
            .map(ConversationParticipant)
            .collect())
    }

    /// The user working it.
    async fn assignee(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(match self.0.assignee_id {
            Some(id) => ctx.app().load::<entity::user::Entity>(id).await?.map(User),
            None => None,
        })
    }

    /// When the assignee got it.
    async fn assigned_at(&self) -> Option<DateTime<Utc>> {
        self.0.assigned_at
    }

    /// The queue it waits in or was routed through.
    async fn queue(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Queue>> {
        Ok(match self.0.queue_id {
            Some(id) => ctx
                .app()
                .load::<entity::queue::Entity>(id)
                .await?
                .map(Queue),
            None => None,
        })
    }

    /// When it entered its queue.
    async fn queued_at(&self) -> Option<DateTime<Utc>> {
        self.0.queued_at
    }

    /// Urgency.
    async fn priority(&self) -> ConversationPriorityGql {
        Priority::parse(&self.0.priority)
            .unwrap_or(Priority::Normal)
            .into()
    }

    /// Tags, by name.
    async fn tags(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Tag>> {
        let app = ctx.app();
        let ids = app
            .loader::<ConversationTagIds>()?
            .load_one(self.0.id)
            .await?
            .unwrap_or_default();
        let tags = app
            .loader::<ById<entity::tag::Entity>>()?
            .load_many(ids)
            .await?;
        let mut tags: Vec<_> = tags.into_values().collect();
        tags.sort_by(|a, b| a.name_key.cmp(&b.name_key));
        Ok(tags.into_iter().map(Tag).collect())
    }

    /// Custom attribute values.
    async fn custom_attributes(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ConversationAttributeValue>> {
        let mut values = ctx
            .app()
            .loader::<ConversationAttributeValues>()?
            .load_one(self.0.id)
            .await?
            .unwrap_or_default();
        values.sort_by(|a, b| a.identifier.cmp(&b.identifier));
        Ok(values.into_iter().map(ConversationAttributeValue).collect())
    }

    /// The conversation this one is linked to.
    async fn parent(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Conversation>> {
        Ok(match self.0.parent_id {
            Some(id) => ctx
                .app()
                .load::<entity::conversation::Entity>(id)
                .await?
                .map(Conversation),
            None => None,
        })
    }

    /// How it relates to its parent.
    async fn link_type(&self) -> Option<ConversationLinkTypeGql> {
        self.0
            .link_type
            .as_deref()
            .and_then(LinkType::parse)
            .map(Into::into)
    }

    /// The contact's rating, once rated.
    async fn rating(&self) -> Option<ConversationRating> {
        let v = &self.0;
        Some(ConversationRating {
            rating_type: if v.rating_type.as_deref()? == "THUMBS" {
                RatingType::Thumbs
            } else {
                RatingType::Csat
            },
            score: v.rating_score?,
            comment: v.rating_comment.clone(),
            rated_at: v.rated_at?,
        })
    }

    /// When an agent first answered an inbound conversation.
    async fn first_response_at(&self) -> Option<DateTime<Utc>> {
        self.0.first_response_at
    }

    /// Time of the last message.
    async fn last_message_at(&self) -> DateTime<Utc> {
        self.0.last_message_at
    }

    /// The last message.
    async fn last_message(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Message>> {
        Ok(match self.0.last_message_id {
            Some(id) => ctx
                .app()
                .load::<entity::message::Entity>(id)
                .await?
                .map(Message),
            None => None,
        })
    }

    /// Since when the contact waits for an answer (null when answered).
    async fn waiting_since(&self) -> Option<DateTime<Utc>> {
        self.0.waiting_since
    }

    /// Number of messages.
    async fn message_count(&self) -> i64 {
        self.0.message_count
    }

    /// Whether it is archived (hidden from the default inbox).
    async fn archived(&self) -> bool {
        self.0.archived_at.is_some()
    }

    /// When it was archived.
    async fn archived_at(&self) -> Option<DateTime<Utc>> {
        self.0.archived_at
    }

    /// When its personal data was erased.
    async fn anonymized_at(&self) -> Option<DateTime<Utc>> {
        self.0.anonymized_at
    }

    /// Messages the calling user has not read (written by others after the caller's read
    /// position; removed messages don't count).
    async fn unread_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let app = ctx.app();
        let key = (self.0.id, viewer(app)?);
        let value = app.loader::<UnreadCounts>()?.load_one(key).await?;
        Ok(value.map(|(n, _)| n).unwrap_or(0))
    }

    /// How far the calling user has read (null: never opened).
    async fn last_read_at(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<DateTime<Utc>>> {
        let app = ctx.app();
        let key = (self.0.id, viewer(app)?);
        let value = app.loader::<UnreadCounts>()?.load_one(key).await?;
        Ok(value.and_then(|(_, at)| at))
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The conversation's messages, oldest first unless `order` says otherwise.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Order of the list; oldest first by default.")] order: Option<
            crate::messages::graphql::MessageOrderGql,
        >,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<crate::graphql::relay::Connection<Message>> {
        crate::messages::graphql::messages_connection(
            ctx, self.0.id, first, after, last, before, order,
        )
        .await
    }

    /// Internal notes, by creation time (oldest first unless `direction: DESC`).
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    async fn notes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
        #[graphql(desc = "Oldest first (ASC, the default) or newest first (DESC).")]
        direction: Option<SortDirection>,
    ) -> async_graphql::Result<Connection<crate::notes::graphql::Note>> {
        let args = PageArgs {
            after,
            before,
            first,
            last,
        };
        crate::notes::graphql::notes_connection(ctx, self.0.id, args, direction.unwrap_or_default())
            .await
    }

    /// What happened in the conversation, from the event log, oldest first.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    async fn activity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only entries matching this filter.")] filter: Option<
            crate::activity::graphql::ConversationActivityFilterInput,
        >,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<crate::activity::graphql::ActivityLogEntry>> {
        let args = PageArgs {
            after,
            before,
            first,
            last,
        };
        crate::activity::graphql::activity_connection(ctx, self.0.id, filter, args).await
    }
}

/// What of each conversation the page's selection set asks for, to read it in the page's own
/// statement (see [`inbox::page`]).
fn page_includes(ctx: &Context<'_>) -> AppResult<inbox::Includes> {
    let selects = |path: &[&str]| page_selects(ctx, path);
    Ok(inbox::Includes {
        requester: selects(&["requester"]),
        assignee: selects(&["assignee"]),
        queue: selects(&["queue"]),
        channel: selects(&["channel"]),
        last_message: selects(&["lastMessage"]),
        author: selects(&["lastMessage", "author"]),
        unread_for: if selects(&["unreadCount"]) || selects(&["lastReadAt"]) {
            Some(viewer(ctx.app())?)
        } else {
            None
        },
    })
}

/// Feeds the request's loaders with what the page's statement read, and reads the page's tags
/// (with one more statement) when selected, so the fields of every conversation of the page
/// resolve from the loaders' caches: the page costs the same statements whatever its size.
async fn feed(
    ctx: &Context<'_>,
    rows: Vec<inbox::Row>,
    includes: inbox::Includes,
) -> async_graphql::Result<Vec<entity::conversation::Model>> {
    let app = ctx.app();
    let org_id = app.principal()?.org_id;
    let mut contacts = Vec::new();
    let mut users = Vec::new();
    let mut queues = Vec::new();
    let mut channels = Vec::new();
    let mut messages = Vec::new();
    let mut unread = Vec::new();
    let mut conversations = Vec::with_capacity(rows.len());
    for row in rows {
        contacts.extend(row.requester.into_iter().chain(row.author_contact));
        users.extend(row.assignee.into_iter().chain(row.author_user));
        queues.extend(row.queue);
        channels.extend(row.channel);
        messages.extend(row.last_message);
        if let (Some(reader), Some(value)) = (includes.unread_for, row.unread) {
            unread.push(((row.conversation.id, reader), value));
        }
        conversations.push(row.conversation);
    }
    fill::<entity::contact::Entity>(app, contacts).await?;
    fill::<entity::user::Entity>(app, users).await?;
    fill::<entity::queue::Entity>(app, queues).await?;
    fill::<entity::channel::Entity>(app, channels).await?;
    fill::<entity::message::Entity>(app, messages).await?;
    if !unread.is_empty() {
        app.loader::<UnreadCounts>()?.feed_many(unread).await;
    }
    if page_selects(ctx, &["tags"]) {
        let ids: Vec<Uuid> = conversations.iter().map(|c| c.id).collect();
        let mut tags = inbox::tags(app.db(), org_id, &ids).await?;
        let links: Vec<(Uuid, Vec<Uuid>)> = ids
            .iter()
            .map(|id| {
                let of = tags.get(id).map(|t| t.iter().map(|t| t.id).collect());
                (*id, of.unwrap_or_default())
            })
            .collect();
        app.loader::<ConversationTagIds>()?.feed_many(links).await;
        fill::<entity::tag::Entity>(app, tags.drain().flat_map(|(_, t)| t).collect()).await?;
    }
    Ok(conversations)
}

/// Puts rows already read into the request's loader of `E`.
async fn fill<E>(app: &RequestCtx, rows: Vec<E::Model>) -> AppResult<()>
where
    E: crate::tenancy::OrgScoped + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
{
    if !rows.is_empty() {
        app.loader::<ById<E>>()?
            .feed_many(rows.into_iter().map(|m| (E::model_id(&m), m)))
            .await;
    }
    Ok(())
}

/// Who a conversation is assigned to (any of the given).
#[derive(InputObject, Default)]
pub struct AssigneeFilterInput {
    /// Assigned to one of these users.
    pub user_ids: Option<Vec<ID>>,
    /// Assigned to the caller.
    #[graphql(default)]
    pub me: bool,
    /// Assigned to nobody.
    #[graphql(default)]
    pub unassigned: bool,
}

/// Which conversations to list. All given conditions must hold.
#[derive(InputObject, Default)]
pub struct ConversationFilterInput {
    /// In one of these statuses.
    pub status: Option<Vec<ConversationStatusGql>>,
    /// On one of these channels.
    pub channel_ids: Option<Vec<ID>>,
    /// On channels of one of these types.
    pub channel_types: Option<Vec<ChannelTypeGql>>,
    /// In one of these queues.
    pub queue_ids: Option<Vec<ID>>,
    /// Assigned to one of these users, the caller, or nobody.
    pub assignee: Option<AssigneeFilterInput>,
    /// Assigned to a member of this team.
    pub team_id: Option<ID>,
    /// Carrying at least one of these tags.
    pub tag_ids: Option<Vec<ID>>,
    /// With this requester (contact).
    pub requester_id: Option<ID>,
    /// With one of these priorities.
    pub priorities: Option<Vec<ConversationPriorityGql>>,
    /// Of this kind.
    pub kind: Option<ConversationKindGql>,
    /// Archived ones only (`true`) or unarchived ones only (`false`, the default).
    #[graphql(default)]
    pub archived: bool,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
    /// Changed at or after.
    pub updated_after: Option<DateTime<Utc>>,
    /// Changed before.
    pub updated_before: Option<DateTime<Utc>>,
}

fn ids_of(ids: Option<Vec<ID>>, type_name: &str) -> AppResult<Vec<Uuid>> {
    ids.unwrap_or_default()
        .iter()
        .map(|id| decode_id(id, type_name))
        .collect()
}

impl ConversationFilterInput {
    pub(crate) fn into_filter(self) -> AppResult<ConversationFilter> {
        let assignee = self.assignee.unwrap_or_default();
        Ok(ConversationFilter {
            statuses: self
                .status
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            channel_ids: ids_of(self.channel_ids, "Channel")?,
            channel_types: self
                .channel_types
                .unwrap_or_default()
                .into_iter()
                .map(|t| crate::channels::ChannelType::from(t).as_str())
                .collect(),
            queue_ids: ids_of(self.queue_ids, "Queue")?,
            assignee_ids: ids_of(assignee.user_ids, "User")?,
            assigned_to_me: assignee.me,
            unassigned: assignee.unassigned,
            team_id: self.team_id.map(|id| decode_id(&id, "Team")).transpose()?,
            tag_ids: ids_of(self.tag_ids, "Tag")?,
            requester_id: self
                .requester_id
                .map(|id| decode_id(&id, "Contact"))
                .transpose()?,
            priorities: self
                .priorities
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            kind: self.kind.map(Into::into),
            archived: self.archived,
            created_after: self.created_after,
            created_before: self.created_before,
            updated_after: self.updated_after,
            updated_before: self.updated_before,
        })
    }
}

/// What the inbox is ordered by.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConversationOrderField {
    /// Time of the last message (the default, newest first).
    #[default]
    LastMessageAt,
    /// Creation time.
    CreatedAt,
    /// Priority (`DESC`: most urgent first).
    Priority,
    /// How long the contact has waited for an answer (`DESC`: longest first; conversations
    /// nobody waits on count as zero).
    WaitingTime,
}

impl From<ConversationOrderField> for OrderField {
    fn from(f: ConversationOrderField) -> Self {
        match f {
            ConversationOrderField::LastMessageAt => OrderField::LastMessageAt,
            ConversationOrderField::CreatedAt => OrderField::CreatedAt,
            ConversationOrderField::Priority => OrderField::Priority,
            ConversationOrderField::WaitingTime => OrderField::WaitingTime,
        }
    }
}

/// Ordering of the inbox.
#[derive(InputObject)]
pub struct ConversationOrder {
    /// The field.
    #[graphql(default)]
    pub field: ConversationOrderField,
    /// The direction (default `DESC`).
    #[graphql(default_with = "SortDirection::Desc")]
    pub direction: SortDirection,
}

impl Default for ConversationOrder {
    fn default() -> Self {
        Self {
            field: ConversationOrderField::LastMessageAt,
            direction: SortDirection::Desc,
        }
    }
}

/// Conversation queries.
#[derive(Default)]
pub struct ConversationQuery;

#[Object]
impl ConversationQuery {
    /// The inbox: the organization's conversations, newest message first by default. Archived
    /// conversations are listed only with `filter: {archived: true}`.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only conversations matching this filter.")] filter: Option<
            ConversationFilterInput,
        >,
        #[graphql(desc = "Order of the list; by last message, newest first, by default.")]
        order_by: Option<ConversationOrder>,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<Conversation>> {
        let app = ctx.app();
        let filter = filter.unwrap_or_default().into_filter()?;
        let order = order_by.unwrap_or_default();
        let args = PageArgs {
            after,
            before,
            first,
            last,
        };
        let includes = page_includes(ctx)?;
        let (page, total) = inbox::page(
            app.db(),
            app.principal()?,
            filter,
            (order.field.into(), order.direction),
            &args,
            includes,
        )
        .await?;
        let crate::graphql::relay::Page {
            items,
            has_next_page,
            has_previous_page,
        } = page;
        let (cursors, rows): (Vec<String>, Vec<inbox::Row>) = items.into_iter().unzip();
        let conversations = feed(ctx, rows, includes).await?;
        let page = crate::graphql::relay::Page {
            items: cursors.into_iter().zip(conversations).collect(),
            has_next_page,
            has_previous_page,
        };
        Ok(Connection::new(page.map(Conversation), total))
    }

    /// A conversation by id or by number (give exactly one); null when there is none.
    async fn conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The conversation's global id.")] id: Option<ID>,
        #[graphql(desc = "The conversation's number.")] number: Option<i64>,
    ) -> async_graphql::Result<Option<Conversation>> {
        let app = ctx.app();
        let principal = app.principal()?;
        principal.require(Permission::WorkConversations)?;
        match (id, number) {
            (Some(id), None) => {
                let id = decode_id(&id, "Conversation")?;
                Ok(app
                    .load::<entity::conversation::Entity>(id)
                    .await?
                    .map(Conversation))
            }
            (None, Some(number)) => {
                use sea_orm::{ColumnTrait, QueryFilter};
                let found =
                    crate::tenancy::in_org::<entity::conversation::Entity>(principal.org_id)
                        .filter(entity::conversation::Column::Number.eq(number))
                        .one(app.db())
                        .await
                        .map_err(AppError::from)?;
                Ok(found.map(Conversation))
            }
            _ => Err(AppError::BadUserInput("give either `id` or `number`".into()).into()),
        }
    }
}

/// The first message of a new conversation.
#[derive(InputObject)]
pub struct FirstMessageInput {
    /// Plain text.
    pub text: Option<String>,
    /// HTML.
    pub html: Option<String>,
}

/// Participants to add to a group conversation.
#[derive(InputObject, Default)]
pub struct ParticipantsInput {
    /// Contacts.
    pub contact_ids: Option<Vec<ID>>,
    /// Users.
    pub user_ids: Option<Vec<ID>>,
}

/// A new conversation.
#[derive(InputObject)]
pub struct CreateConversationInput {
    /// The channel it is on (must be active).
    pub channel_id: ID,
    /// The contact it is with.
    pub requester_id: ID,
    /// Inbound (the contact wrote the first message; it goes to the given queue or the channel's
    /// default queue) or outbound (the caller writes it and is assigned unless `assigneeId`).
    #[graphql(default)]
    pub direction: ConversationDirection,
    /// Direct (default) or group.
    pub kind: Option<ConversationKindGql>,
    /// Subject.
    pub subject: Option<String>,
    /// Urgency (default NORMAL).
    pub priority: Option<ConversationPriorityGql>,
    /// Queue to put it in.
    pub queue_id: Option<ID>,
    /// User to assign it to.
    pub assignee_id: Option<ID>,
    /// The first message.
    pub message: FirstMessageInput,
    /// Further participants (GROUP conversations only).
    pub participants: Option<ParticipantsInput>,
}

/// Names one conversation.
#[derive(InputObject)]
pub struct ConversationIdInput {
    /// The conversation.
    pub conversation_id: ID,
}

/// Claim a conversation.
#[derive(InputObject)]
pub struct ClaimConversationInput {
    /// The conversation.
    pub conversation_id: ID,
    /// Take it even when it is assigned to someone else.
    #[graphql(default)]
    pub force: bool,
}

/// Assign a conversation.
#[derive(InputObject)]
pub struct AssignConversationInput {
    /// The conversation.
    pub conversation_id: ID,
    /// The user (active, in the organization).
    pub user_id: ID,
}

/// Transfer a conversation to a queue.
#[derive(InputObject)]
pub struct TransferConversationInput {
    /// The conversation.
    pub conversation_id: ID,
    /// The queue.
    pub queue_id: ID,
}

/// Set a conversation pending.
#[derive(InputObject)]
pub struct SetConversationPendingInput {
    /// The conversation.
    pub conversation_id: ID,
    /// When it reopens by itself (future); null: pending until something happens.
    pub pending_until: Option<DateTime<Utc>>,
}

/// Close a conversation.
#[derive(InputObject)]
pub struct CloseConversationInput {
    /// The conversation.
    pub conversation_id: ID,
    /// Why (up to 200 characters).
    pub reason: Option<String>,
}

/// Link a conversation to a parent.
#[derive(InputObject)]
pub struct LinkConversationInput {
    /// The conversation.
    pub conversation_id: ID,
    /// The parent (not itself, not one of its descendants).
    pub parent_id: ID,
    /// How they relate.
    pub link_type: ConversationLinkTypeGql,
}

/// Set a conversation's priority.
#[derive(InputObject)]
pub struct SetConversationPriorityInput {
    /// The conversation.
    pub conversation_id: ID,
    /// The priority.
    pub priority: ConversationPriorityGql,
}

/// Tags to add to or remove from a conversation.
#[derive(InputObject)]
pub struct ConversationTagsInput {
    /// The conversation.
    pub conversation_id: ID,
    /// The tags.
    pub tag_ids: Vec<ID>,
}

/// Custom attribute values to set on a conversation.
#[derive(InputObject)]
pub struct SetConversationAttributesInput {
    /// The conversation.
    pub conversation_id: ID,
    /// The values (conversation attribute definitions).
    pub values: Vec<AttributeValueInput>,
}

/// Rate a conversation: give exactly one of `csat` and `thumbs`.
#[derive(InputObject)]
pub struct RateConversationInput {
    /// The conversation.
    pub conversation_id: ID,
    /// CSAT score 1–5.
    pub csat: Option<i32>,
    /// Thumbs up or down.
    pub thumbs: Option<Thumbs>,
    /// Comment (up to 2,000 characters).
    pub comment: Option<String>,
}

/// Add participants to a group conversation.
#[derive(InputObject)]
pub struct AddConversationParticipantsInput {
    /// The conversation (GROUP).
    pub conversation_id: ID,
    /// Contacts to add.
    pub contact_ids: Option<Vec<ID>>,
    /// Users to add.
    pub user_ids: Option<Vec<ID>>,
}

/// Remove participants from a group conversation.
#[derive(InputObject)]
pub struct RemoveConversationParticipantsInput {
    /// The conversation (GROUP).
    pub conversation_id: ID,
    /// Users' or contacts' ids.
    pub participant_ids: Vec<ID>,
}

/// Mark a conversation read by the caller.
#[derive(InputObject)]
pub struct MarkConversationReadInput {
    /// The conversation.
    pub conversation_id: ID,
    /// Read up to this time (default now; never moves back).
    pub read_at: Option<DateTime<Utc>>,
}

/// Result of a mutation on one conversation.
#[derive(SimpleObject)]
pub struct ConversationPayload {
    /// The conversation after the change; null when it failed.
    pub conversation: Option<Conversation>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

impl ConversationPayload {
    fn from(result: AppResult<entity::conversation::Model>) -> async_graphql::Result<Self> {
        let (conversation, user_errors) = split(result)?;
        Ok(Self {
            conversation: conversation.map(Conversation),
            user_errors,
        })
    }
}

/// Result of `createConversation`.
#[derive(SimpleObject)]
pub struct CreateConversationPayload {
    /// The new conversation; null when it failed.
    pub conversation: Option<Conversation>,
    /// Its first message.
    pub message: Option<Message>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

fn id_list(field: &str, ids: Option<Vec<ID>>, type_name: &str) -> AppResult<Vec<Uuid>> {
    ids.unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, id)| input_id(&format!("{field}.{i}"), id, type_name))
        .collect()
}

fn new_conversation(input: CreateConversationInput) -> AppResult<NewConversation> {
    let participants = input.participants.unwrap_or_default();
    Ok(NewConversation {
        channel_id: input_id("channelId", &input.channel_id, "Channel")?,
        requester_id: input_id("requesterId", &input.requester_id, "Contact")?,
        direction: input.direction.into(),
        kind: input.kind.map(Into::into).unwrap_or(Kind::Direct),
        subject: input.subject,
        priority: input.priority.map(Into::into).unwrap_or(Priority::Normal),
        queue_id: input
            .queue_id
            .map(|id| input_id("queueId", &id, "Queue"))
            .transpose()?,
        assignee_id: input
            .assignee_id
            .map(|id| input_id("assigneeId", &id, "User"))
            .transpose()?,
        text: input.message.text,
        html: input.message.html,
        contact_ids: id_list(
            "participants.contactIds",
            participants.contact_ids,
            "Contact",
        )?,
        user_ids: id_list("participants.userIds", participants.user_ids, "User")?,
    })
}

/// Runs an action on the conversation named by `conversation_id` and wraps the result.
async fn run<'a, F, Fut>(
    ctx: &'a Context<'a>,
    conversation_id: &ID,
    action: F,
) -> async_graphql::Result<ConversationPayload>
where
    F: FnOnce(&'a DatabaseConnection, &'a Principal, Uuid) -> Fut,
    Fut: std::future::Future<Output = AppResult<entity::conversation::Model>>,
{
    let app: &'a RequestCtx = ctx.app();
    let principal = app.principal()?;
    let result = match input_id("conversationId", conversation_id, "Conversation") {
        Ok(id) => action(app.db(), principal, id).await,
        Err(e) => Err(e),
    };
    ConversationPayload::from(result)
}

/// Conversation mutations (AGENT unless noted).
#[derive(Default)]
pub struct ConversationMutation;

#[Object]
impl ConversationMutation {
    /// Creates a conversation with its first message: inbound (from the requester; enqueued) or
    /// outbound (written by the caller, who is assigned).
    async fn create_conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CreateConversationInput,
    ) -> async_graphql::Result<CreateConversationPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match new_conversation(input) {
            Ok(new) => service::create(app.db(), principal, new).await,
            Err(e) => Err(e),
        };
        let (created, user_errors) = split(result)?;
        let (conversation, message) = match created {
            Some((c, m)) => (Some(Conversation(c)), Some(Message(m))),
            None => (None, None),
        };
        Ok(CreateConversationPayload {
            conversation,
            message,
            user_errors,
        })
    }

    /// Claims a conversation for the caller. When it is assigned to someone else this fails with
    /// `CONFLICT` unless `force`.
    async fn claim_conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ClaimConversationInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let force = input.force;
        run(ctx, &input.conversation_id, |db, p, id| {
            service::claim(db, p, id, force)
        })
        .await
    }

    /// Assigns a conversation to a user.
    async fn assign_conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: AssignConversationInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let user = input_id("userId", &input.user_id, "User");
        run(ctx, &input.conversation_id, |db, p, id| async move {
            service::assign(db, p, id, user?).await
        })
        .await
    }

    /// Removes a conversation's assignee.
    async fn unassign_conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ConversationIdInput,
    ) -> async_graphql::Result<ConversationPayload> {
        run(ctx, &input.conversation_id, service::unassign).await
    }

    /// Moves a conversation to a queue; it loses its assignee and waits there.
    async fn transfer_conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: TransferConversationInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let queue = input_id("queueId", &input.queue_id, "Queue");
        run(ctx, &input.conversation_id, |db, p, id| async move {
            service::transfer(db, p, id, queue?).await
        })
        .await
    }

    /// Sets a conversation pending, optionally until a time when it reopens by itself.
    async fn set_conversation_pending(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: SetConversationPendingInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let until = input.pending_until;
        run(ctx, &input.conversation_id, |db, p, id| {
            service::set_pending(db, p, id, until)
        })
        .await
    }

    /// Closes an open or pending conversation.
    async fn close_conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CloseConversationInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let reason = input.reason;
        run(ctx, &input.conversation_id, |db, p, id| async move {
            service::close(db, p, id, reason.as_deref()).await
        })
        .await
    }

    /// Reopens a closed or pending conversation.
    async fn reopen_conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ConversationIdInput,
    ) -> async_graphql::Result<ConversationPayload> {
        run(ctx, &input.conversation_id, service::reopen).await
    }

    /// Links a conversation to a parent (follow-up, side conversation, forward).
    async fn link_conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: LinkConversationInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let parent = input_id("parentId", &input.parent_id, "Conversation");
        let link_type: LinkType = input.link_type.into();
        run(ctx, &input.conversation_id, |db, p, id| async move {
            service::link(db, p, id, parent?, link_type).await
        })
        .await
    }

    /// Removes a conversation's parent link.
    async fn unlink_conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ConversationIdInput,
    ) -> async_graphql::Result<ConversationPayload> {
        run(ctx, &input.conversation_id, service::unlink).await
    }

    /// Sets a conversation's priority.
    async fn set_conversation_priority(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: SetConversationPriorityInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let priority: Priority = input.priority.into();
        run(ctx, &input.conversation_id, |db, p, id| {
            service::set_priority(db, p, id, priority)
        })
        .await
    }

    /// Adds tags to a conversation; inactive tags can't be added.
    async fn tag_conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ConversationTagsInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let tags = id_list("tagIds", Some(input.tag_ids), "Tag");
        run(ctx, &input.conversation_id, |db, p, id| async move {
            service::set_tags(db, p, id, &tags?, true).await
        })
        .await
    }

    /// Removes tags from a conversation.
    async fn untag_conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ConversationTagsInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let tags = id_list("tagIds", Some(input.tag_ids), "Tag");
        run(ctx, &input.conversation_id, |db, p, id| async move {
            service::set_tags(db, p, id, &tags?, false).await
        })
        .await
    }

    /// Sets custom attribute values of a conversation, validated against their definitions.
    async fn set_conversation_attributes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: SetConversationAttributesInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let values: Vec<(String, Option<serde_json::Value>)> = input
            .values
            .into_iter()
            .map(|v| (v.identifier, v.value.map(|j| j.0)))
            .collect();
        run(ctx, &input.conversation_id, |db, p, id| async move {
            service::set_attributes(db, p, id, &values).await
        })
        .await
    }

    /// Archives a conversation: it leaves the default inbox.
    async fn archive_conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ConversationIdInput,
    ) -> async_graphql::Result<ConversationPayload> {
        run(ctx, &input.conversation_id, |db, p, id| {
            service::set_archived(db, p, id, true)
        })
        .await
    }

    /// Brings an archived conversation back to the inbox.
    async fn unarchive_conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ConversationIdInput,
    ) -> async_graphql::Result<ConversationPayload> {
        run(ctx, &input.conversation_id, |db, p, id| {
            service::set_archived(db, p, id, false)
        })
        .await
    }

    /// Records the contact's rating (once): a CSAT score 1–5 or thumbs, with a comment.
    async fn rate_conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: RateConversationInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let rating = match (input.csat, input.thumbs) {
            (Some(score), None) => Ok(Rating::Csat(score)),
            (None, Some(thumbs)) => Ok(Rating::Thumbs(thumbs == Thumbs::Up)),
            _ => Err(AppError::invalid(
                "csat",
                crate::error::UserErrorCode::Invalid,
                "give exactly one of csat and thumbs",
            )),
        };
        let comment = input.comment;
        run(ctx, &input.conversation_id, |db, p, id| async move {
            service::rate(db, p, id, rating?, comment.as_deref()).await
        })
        .await
    }

    /// Adds contacts and users to a GROUP conversation.
    async fn add_conversation_participants(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: AddConversationParticipantsInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let contacts = id_list("contactIds", input.contact_ids, "Contact");
        let users = id_list("userIds", input.user_ids, "User");
        run(ctx, &input.conversation_id, |db, p, id| async move {
            service::add_participants(db, p, id, &contacts?, &users?).await
        })
        .await
    }

    /// Removes participants from a GROUP conversation.
    async fn remove_conversation_participants(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: RemoveConversationParticipantsInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let ids: AppResult<Vec<Uuid>> = input
            .participant_ids
            .iter()
            .enumerate()
            .map(|(i, id)| participant_id(&format!("participantIds.{i}"), id))
            .collect();
        run(ctx, &input.conversation_id, |db, p, id| async move {
            service::remove_participants(db, p, id, &ids?).await
        })
        .await
    }

    /// Marks a conversation read by the caller (its `unreadCount` drops to the messages after
    /// `readAt`).
    async fn mark_conversation_read(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: MarkConversationReadInput,
    ) -> async_graphql::Result<ConversationPayload> {
        let at = input.read_at;
        run(ctx, &input.conversation_id, |db, p, id| {
            service::mark_read(db, p, id, at)
        })
        .await
    }
}

fn participant_id(field: &str, id: &ID) -> AppResult<Uuid> {
    match crate::graphql::relay::decode_any_id(id) {
        Ok((kind, uuid)) if kind == "User" || kind == "Contact" => Ok(uuid),
        _ => Err(AppError::invalid(
            field,
            crate::error::UserErrorCode::Invalid,
            "not the id of a user or contact",
        )),
    }
}
