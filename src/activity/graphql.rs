//! GraphQL types and queries of the activity log: `Conversation.activity` (oldest first) and the
//! organization-wide `activityLog` (newest first).

use async_graphql::{Context, Enum, ID, InputObject, Json, Object};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::service::{self, ActivityFilter, payload_id};
use crate::conversations::event_types;
use crate::conversations::graphql::Conversation;
use crate::error::{AppError, AppResult};
use crate::graphql::context::{ById, ContextExt, page_selects};
use crate::graphql::relay::{Connection, PageArgs, SortDirection, decode_id, encode_id};
use crate::messages::graphql::Message;
use crate::notes::graphql::Note;
use crate::queues::graphql::Queue;
use crate::tags::graphql::Tag;
use crate::tenancy::OrgScoped;
use crate::users::graphql::User;

macro_rules! activity_types {
    ($($variant:ident => $constant:ident: $doc:literal,)*) => {
        /// What happened in an activity log entry: one value per kind of conversation event.
        #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
        pub enum ActivityType {
            $(#[doc = $doc] $variant,)*
        }

        impl ActivityType {
            /// Every activity type.
            pub const ALL: &'static [ActivityType] = &[$(ActivityType::$variant),*];
            /// The event types that are activity.
            pub const EVENT_TYPES: &'static [&'static str] = &[$(event_types::$constant),*];

            /// The event type recorded for it.
            pub fn event_type(self) -> &'static str {
                match self {
                    $(ActivityType::$variant => event_types::$constant,)*
                }
            }

            /// The activity type of an event type, if it is one.
            pub fn of_event_type(name: &str) -> Option<Self> {
                $(if name == event_types::$constant {
                    return Some(ActivityType::$variant);
                })*
                None
            }
        }
    };
}

activity_types! {
    Created => CREATED: "The conversation was created (`data`: direction, channelId, requesterId, number).",
    MessageAdded => MESSAGE_ADDED: "A message was added (`message`; `data`: direction, authorKind).",
    MessageEdited => MESSAGE_EDITED: "A message was edited (`message`).",
    MessageRedacted => MESSAGE_REDACTED: "A message's content was redacted (`message`).",
    MessageRemoved => MESSAGE_REMOVED: "A message was removed (`message`).",
    ReactionAdded => REACTION_ADDED: "A reaction was added to a message (`message`; `data`: reaction).",
    ReactionRemoved => REACTION_REMOVED: "A reaction was removed from a message (`message`; `data`: reaction).",
    MessageStatusChanged => MESSAGE_STATUS_CHANGED: "A message's delivery status moved, as its provider reported (`message`; `data`: status, reason, and `broadcastId` for a broadcast's message).",
    Read => READ: "A reader's read position moved forward (`user` when the reader is staff; `data`: readerKind, readerId, readAt).",
    NoteAdded => NOTE_ADDED: "A note was added (`note`; `data.backdated` when imported with an earlier date).",
    NoteUpdated => NOTE_UPDATED: "A note was changed (`note`).",
    NoteRemoved => NOTE_REMOVED: "A note was removed (`data`: noteId).",
    Enqueued => ENQUEUED: "Put into a queue (`queue`).",
    Claimed => CLAIMED: "Claimed by the actor (`user`; `data`: previousAssigneeId, force).",
    Assigned => ASSIGNED: "Assigned to a user (`user`; `data`: previousAssigneeId).",
    Unassigned => UNASSIGNED: "The assignee was removed (`data`: previousAssigneeId).",
    Transferred => TRANSFERRED: "Moved to another queue (`queue` is the new one; `data`: fromQueueId, toQueueId).",
    Pending => PENDING: "Set pending (`data`: pendingUntil).",
    PendingExpired => PENDING_EXPIRED: "The pending time passed and it reopened (`data`: pendingUntil).",
    Closed => CLOSED: "Closed (`data`: reason, from, abandoned).",
    Abandoned => ABANDONED: "Closed before anyone answered or took it: an inbound conversation without a person's reply or an assignee (`queue`).",
    Reopened => REOPENED: "Reopened (`data`: reason, MANUAL or INBOUND_MESSAGE).",
    Linked => LINKED: "Linked to a parent or unlinked (`data`: parentId, linkType).",
    PriorityChanged => PRIORITY_CHANGED: "The priority changed (`data`: from, to).",
    TagAdded => TAG_ADDED: "A tag was added (`tag`).",
    TagRemoved => TAG_REMOVED: "A tag was removed (`tag`).",
    AttributesSet => ATTRIBUTES_SET: "Custom attribute values were set (`data`: identifiers).",
    Offered => OFFERED: "Offered to an agent by routing (`user`, `queue`; `data`: offerId, expiresAt).",
    OfferAccepted => OFFER_ACCEPTED: "An offer was accepted (`user`; `data`: offerId).",
    OfferDeclined => OFFER_DECLINED: "An offer was declined (`user`; `data`: offerId).",
    OfferTimedOut => OFFER_TIMED_OUT: "An offer lapsed unanswered (`user`; `data`: offerId).",
    OfferWithdrawn => OFFER_WITHDRAWN: "An offer was withdrawn: another agent accepted, or the conversation was taken otherwise (`user`; `data`: offerId).",
    Archived => ARCHIVED: "Archived.",
    Unarchived => UNARCHIVED: "Unarchived.",
    Rated => RATED: "Rated (`data`: ratingType, score).",
    Anonymized => ANONYMIZED: "Its personal data was erased (`data`: erasedMessages).",
    ParticipantAdded => PARTICIPANT_ADDED: "A participant joined (`user` for staff; `data`: participantKind, participantId).",
    ParticipantRemoved => PARTICIPANT_REMOVED: "A participant left (`user` for staff; `data`: participantKind, participantId).",
}

/// An activity log entry.
#[derive(Clone)]
pub struct ActivityLogEntry(pub entity::event::Model);

fn id_in(model: &entity::event::Model, key: &str) -> Option<Uuid> {
    payload_id(&model.payload, key)
}

/// The user an entry is about: the assignee, or a staff participant or reader.
fn user_id(model: &entity::event::Model) -> Option<Uuid> {
    let staff = |kind: &str, id: &str| {
        (model.payload.get(kind).and_then(|k| k.as_str()) == Some("USER"))
            .then(|| id_in(model, id))
            .flatten()
    };
    id_in(model, "userId")
        .or_else(|| staff("participantKind", "participantId"))
        .or_else(|| staff("readerKind", "readerId"))
}

/// The queue an entry is about: the queue entered, or the target of a transfer.
fn queue_id(model: &entity::event::Model) -> Option<Uuid> {
    id_in(model, "queueId").or_else(|| id_in(model, "toQueueId"))
}

impl ActivityLogEntry {
    /// The entry if the event is a conversation's activity.
    pub fn of(model: entity::event::Model) -> Option<Self> {
        (model.subject_type == crate::conversations::SUBJECT
            && ActivityType::of_event_type(&model.event_type).is_some())
        .then_some(ActivityLogEntry(model))
    }
}

/// One thing that happened in a conversation, from the event log: who did what, when.
#[Object]
impl ActivityLogEntry {
    /// Globally unique, opaque id (the event's).
    pub async fn id(&self) -> ID {
        encode_id("ActivityLogEntry", self.0.id)
    }

    /// What happened.
    #[graphql(name = "type")]
    async fn activity_type(&self) -> async_graphql::Result<ActivityType> {
        ActivityType::of_event_type(&self.0.event_type).ok_or_else(|| {
            AppError::internal(format!("event type {} is no activity", self.0.event_type)).into()
        })
    }

    /// Who did it; null for the system (expiry sweeps, inbound messages from providers) or a
    /// deleted user.
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.actor_user_id else {
            return Ok(None);
        };
        Ok(ctx.app().load::<entity::user::Entity>(id).await?.map(User))
    }

    /// The conversation.
    async fn conversation(&self, ctx: &Context<'_>) -> async_graphql::Result<Conversation> {
        ctx.app()
            .load::<entity::conversation::Entity>(self.0.subject_id)
            .await?
            .map(Conversation)
            .ok_or_else(|| AppError::NotFound("conversation".into()).into())
    }

    /// When it happened (for imported notes: when they were imported).
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The details as recorded; ids in it are raw UUIDs (the typed fields link the objects).
    async fn data(&self) -> Json<serde_json::Value> {
        Json(self.0.payload.clone())
    }

    /// The message it is about, if any (null when it no longer exists).
    async fn message(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Message>> {
        let Some(id) = id_in(&self.0, "messageId") else {
            return Ok(None);
        };
        Ok(ctx
            .app()
            .load::<entity::message::Entity>(id)
            .await?
            .map(Message))
    }

    /// The note it is about, if any (null when it was removed).
    async fn note(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Note>> {
        let Some(id) = id_in(&self.0, "noteId") else {
            return Ok(None);
        };
        Ok(ctx.app().load::<entity::note::Entity>(id).await?.map(Note))
    }

    /// The tag added or removed, if any.
    async fn tag(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Tag>> {
        let Some(id) = id_in(&self.0, "tagId") else {
            return Ok(None);
        };
        Ok(ctx.app().load::<entity::tag::Entity>(id).await?.map(Tag))
    }

    /// The queue entered (enqueued, or the target of a transfer), if any.
    async fn queue(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Queue>> {
        let Some(id) = queue_id(&self.0) else {
            return Ok(None);
        };
        Ok(ctx
            .app()
            .load::<entity::queue::Entity>(id)
            .await?
            .map(Queue))
    }

    /// The user it is about, if any: the new assignee (claimed, assigned), a staff participant
    /// who joined or left, or a staff reader.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = user_id(&self.0) else {
            return Ok(None);
        };
        Ok(ctx.app().load::<entity::user::Entity>(id).await?.map(User))
    }
}

/// Loads rows of `E` into the request's loader (one statement), unless there are none.
async fn warm<E>(ctx: &Context<'_>, ids: Vec<Uuid>) -> AppResult<()>
where
    E: OrgScoped + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
{
    if !ids.is_empty() {
        ctx.app().loader::<ById<E>>()?.load_many(ids).await?;
    }
    Ok(())
}

/// Loads what a page of entries selects (actors and users, conversations, messages, notes,
/// tags, queues) with one statement per kind and feeds the request's loaders, so the page costs
/// the same statements whatever its size.
async fn prefetch(ctx: &Context<'_>, entries: &[&entity::event::Model]) -> AppResult<()> {
    let ids = |field: &str, f: &dyn Fn(&entity::event::Model) -> Option<Uuid>| -> Vec<Uuid> {
        if !page_selects(ctx, &[field]) {
            return Vec::new();
        }
        let mut ids: Vec<Uuid> = entries.iter().filter_map(|e| f(e)).collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let mut users = ids("actor", &|e| e.actor_user_id);
    users.extend(ids("user", &user_id));
    futures_util::try_join!(
        warm::<entity::user::Entity>(ctx, users),
        warm::<entity::conversation::Entity>(ctx, ids("conversation", &|e| Some(e.subject_id))),
        warm::<entity::message::Entity>(ctx, ids("message", &|e| id_in(e, "messageId"))),
        warm::<entity::note::Entity>(ctx, ids("note", &|e| id_in(e, "noteId"))),
        warm::<entity::tag::Entity>(ctx, ids("tag", &|e| id_in(e, "tagId"))),
        warm::<entity::queue::Entity>(ctx, ids("queue", &queue_id)),
    )?;
    Ok(())
}

async fn connection(
    ctx: &Context<'_>,
    filter: ActivityFilter,
    direction: SortDirection,
    args: PageArgs,
) -> async_graphql::Result<Connection<ActivityLogEntry>> {
    let app = ctx.app();
    let (page, total) = service::list(
        app.db(),
        app.principal()?,
        ActivityType::EVENT_TYPES,
        filter,
        direction,
        &args,
    )
    .await?;
    let models: Vec<&entity::event::Model> = page.items.iter().map(|(_, m)| m).collect();
    prefetch(ctx, &models).await?;
    Ok(Connection::new(page.map(ActivityLogEntry), total))
}

fn event_types_of(types: Option<Vec<ActivityType>>) -> Vec<&'static str> {
    types
        .unwrap_or_default()
        .into_iter()
        .map(ActivityType::event_type)
        .collect()
}

/// Which entries of a conversation's activity to list.
#[derive(InputObject, Default)]
pub struct ConversationActivityFilterInput {
    /// Entries of any of these types (all types when omitted or empty).
    pub types: Option<Vec<ActivityType>>,
}

/// The activity of a conversation the caller has loaded, oldest first, as a connection.
pub async fn activity_connection(
    ctx: &Context<'_>,
    conversation_id: Uuid,
    filter: Option<ConversationActivityFilterInput>,
    args: PageArgs,
) -> async_graphql::Result<Connection<ActivityLogEntry>> {
    let filter = ActivityFilter {
        event_types: event_types_of(filter.unwrap_or_default().types),
        conversation_id: Some(conversation_id),
        ..Default::default()
    };
    connection(ctx, filter, SortDirection::Asc, args).await
}

/// Which entries of the organization's activity log to list. All given conditions must hold.
#[derive(InputObject, Default)]
pub struct ActivityLogFilterInput {
    /// Entries of any of these types (all types when omitted or empty).
    pub types: Option<Vec<ActivityType>>,
    /// Entries caused by this user.
    pub actor_id: Option<ID>,
    /// Entries of this conversation.
    pub conversation_id: Option<ID>,
    /// Entries at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Entries before this time.
    pub to: Option<DateTime<Utc>>,
}

/// Activity log queries.
#[derive(Default)]
pub struct ActivityQuery;

#[Object]
impl ActivityQuery {
    /// The organization's conversation activity, newest first (AGENT).
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    async fn activity_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only entries matching this filter.")] filter: Option<
            ActivityLogFilterInput,
        >,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<ActivityLogEntry>> {
        let filter = filter.unwrap_or_default();
        let filter = ActivityFilter {
            event_types: event_types_of(filter.types),
            conversation_id: filter
                .conversation_id
                .map(|id| decode_id(&id, "Conversation"))
                .transpose()?,
            actor_id: filter
                .actor_id
                .map(|id| decode_id(&id, "User"))
                .transpose()?,
            from: filter.from,
            to: filter.to,
        };
        let args = PageArgs {
            after,
            before,
            first,
            last,
        };
        connection(ctx, filter, SortDirection::Desc, args).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event type constant of conversations is an activity type, and back.
    #[test]
    fn every_conversation_event_type_is_an_activity_type() {
        let source = include_str!("../conversations/mod.rs");
        let block = source
            .split("pub mod event_types {")
            .nth(1)
            .and_then(|rest| rest.split("\n}\n").next())
            .unwrap_or_default();
        let declared: Vec<&str> = block
            .lines()
            .filter_map(|line| line.trim().strip_prefix("pub const "))
            .filter_map(|rest| rest.split('"').nth(1))
            .collect();
        assert!(!declared.is_empty());
        assert_eq!(declared, ActivityType::EVENT_TYPES);
        for (t, name) in ActivityType::ALL.iter().zip(ActivityType::EVENT_TYPES) {
            assert_eq!(t.event_type(), *name);
            assert_eq!(ActivityType::of_event_type(name), Some(*t));
        }
        assert_eq!(ActivityType::of_event_type("CHANNEL_CREATED"), None);
    }
}
