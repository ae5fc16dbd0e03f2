//! `conversationChanged`: the conversations of an inbox filter as they change, enter and leave
//! it.
//!
//! A subscription knows which conversations matched its filter when it started (their ids) and
//! follows every conversation event: after each, it checks the conversation against the filter
//! (the same conditions as the `conversations` query) and delivers the event when the
//! conversation is in the filter now or was before: `ENTERED`, `CHANGED` or `LEFT`. Replayed
//! events (with `after`) are checked against the filter as it matches now; a conversation that
//! does not match now is delivered once as `LEFT` so a client that had it drops it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_graphql::futures_util::Stream;
use async_graphql::{Context, Enum, Result, SimpleObject, Subscription};
use entity::conversation;
use sea_orm::{ColumnTrait, DatabaseConnection, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::graphql::{encode_cursor, start, stream};
use crate::activity::graphql::ActivityLogEntry;
use crate::auth::{Permission, Principal};
use crate::conversations::graphql::{Conversation, ConversationFilterInput};
use crate::conversations::service::{ConversationFilter, filtered};
use crate::error::AppResult;
use crate::graphql::context::{ContextExt, RequestCtx};
use crate::tenancy;

/// How a change moved a conversation relative to the subscription's filter.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterMembership {
    /// It matches the filter now and did not before (new, or changed into it).
    Entered,
    /// It matched before and still does.
    Changed,
    /// It matched before and no longer does (drop it from the list).
    Left,
}

/// A conversation of the subscription's filter changed.
#[derive(SimpleObject)]
pub struct ConversationChangedEvent {
    /// This event's cursor: subscribe with it as `after` to resume after this event.
    cursor: String,
    /// Whether the conversation entered, stayed in or left the filter.
    membership: FilterMembership,
    /// What happened, as the activity log tells it.
    activity: ActivityLogEntry,
    /// The conversation as it is now (with the caller's unread count and read position).
    conversation: Conversation,
}

/// The conversation subscriptions.
#[derive(Default)]
pub struct ConversationSubscription;

/// Conversations as they change.
#[Subscription]
impl ConversationSubscription {
    /// Conversations of the caller's organization as they change (AGENT), limited to those
    /// matching `filter` (the conditions of the `conversations` query): every change of a
    /// conversation in the filter, and a conversation entering or leaving it. Reads by the caller
    /// or a contact arrive as `READ` activity with the conversation's new unread count. With
    /// `after`, first the changes after that cursor, then live ones.
    async fn conversation_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only conversations matching this (all of its conditions).")]
        filter: Option<ConversationFilterInput>,
        #[graphql(desc = "Resume after this event cursor (from an earlier event).")] after: Option<
            String,
        >,
    ) -> Result<impl Stream<Item = Result<ConversationChangedEvent>> + use<>> {
        let app = ctx.app();
        let principal = app.principal()?.clone();
        principal.require(Permission::WorkConversations)?;
        let filter = filter.unwrap_or_default().into_filter()?;
        let db = app.db().clone();
        // The filter's conversations are read before the log's end is: a change committed
        // between the two reads is then replayed (or live) and checked against a membership
        // from before it, so a conversation it moved out of the filter leaves it. Read the other
        // way round, the membership would already miss it and the change would be skipped.
        let members = matching(&db, &principal, filter.clone()).await?;
        let start = start(&db, &app.state.bus, after.as_deref()).await?;
        let replayed_until = start.end;
        let follower = Arc::new(Follower {
            principal,
            filter,
            known: Mutex::new(Known {
                members,
                announced_left: HashSet::new(),
            }),
            replayed_until,
        });
        let org_id = follower.principal.org_id;
        let app = ctx.data::<Arc<RequestCtx>>()?.clone();
        Ok(stream(db, start, org_id, app, move |db, event| {
            let follower = follower.clone();
            async move { follower.follow(&db, &event).await }
        }))
    }
}

/// The ids of the conversations matching `filter` now.
async fn matching(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: ConversationFilter,
) -> AppResult<HashSet<Uuid>> {
    let ids: Vec<Uuid> = filtered(principal, filter)
        .select_only()
        .column(conversation::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids.into_iter().collect())
}

/// The conversations a subscription knows to be in its filter, and those it told a client (while
/// replaying) to drop.
struct Known {
    members: HashSet<Uuid>,
    announced_left: HashSet<Uuid>,
}

/// One subscription's view of its filter.
struct Follower {
    principal: Principal,
    filter: ConversationFilter,
    /// What it knows of the filter's conversations.
    known: Mutex<Known>,
    /// Events up to this sequence are replayed, not live.
    replayed_until: i64,
}

impl Follower {
    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        match self.known.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The event as this subscription delivers it, if at all.
    async fn follow(
        &self,
        db: &DatabaseConnection,
        event: &entity::event::Model,
    ) -> AppResult<Option<ConversationChangedEvent>> {
        if event.subject_type != crate::conversations::SUBJECT {
            return Ok(None);
        }
        let Some(activity) = ActivityLogEntry::of(event.clone()) else {
            return Ok(None);
        };
        let id = event.subject_id;
        let now = filtered(&self.principal, self.filter.clone())
            .filter(conversation::Column::Id.eq(id))
            .one(db)
            .await?;
        let replayed = event.seq <= self.replayed_until;
        let (membership, model) = {
            let mut known = self.known();
            match now {
                Some(model) if known.members.insert(id) => (FilterMembership::Entered, Some(model)),
                Some(model) => (FilterMembership::Changed, Some(model)),
                None if known.members.remove(&id) => {
                    // Told once: the replayed changes after it (a close's `ABANDONED`) are not
                    // announced again unless it enters anew.
                    known.announced_left.insert(id);
                    (FilterMembership::Left, None)
                }
                None if replayed && known.announced_left.insert(id) => {
                    (FilterMembership::Left, None)
                }
                None => return Ok(None),
            }
        };
        let model = match model {
            Some(model) => model,
            None => {
                let found = tenancy::by_id::<conversation::Entity>(self.principal.org_id, id)
                    .one(db)
                    .await?;
                let Some(model) = found else {
                    return Ok(None);
                };
                model
            }
        };
        Ok(Some(ConversationChangedEvent {
            cursor: encode_cursor(event.seq),
            membership,
            activity,
            conversation: Conversation(model),
        }))
    }
}
