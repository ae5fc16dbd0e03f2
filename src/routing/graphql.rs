//! GraphQL types of routing: offers, `myOffers`, `acceptOffer`, `declineOffer` and the
//! `conversationOffered` subscription.

use std::sync::Arc;

use async_graphql::futures_util::Stream;
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use entity::conversation_offer as offer;
use uuid::Uuid;

use super::service::{self, status};
use crate::auth::Permission;
use crate::conversations::event_types;
use crate::conversations::graphql::Conversation;
use crate::error::AppError;
use crate::graphql::context::{ContextExt, RequestCtx};
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::encode_id;
use crate::live::graphql::{encode_cursor, start, stream};
use crate::queues::graphql::Queue;
use crate::tenancy;
use crate::users::graphql::User;

/// Where an offer stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfferStatus {
    /// Waiting for the agent's answer until `expiresAt`.
    Pending,
    /// Accepted: the conversation was assigned to the agent.
    Accepted,
    /// Declined by the agent.
    Declined,
    /// Not answered in time: the next agent got an offer.
    TimedOut,
    /// Withdrawn: another agent accepted, or the conversation was taken otherwise.
    Withdrawn,
}

impl OfferStatus {
    fn of(stored: &str) -> Self {
        match stored {
            status::PENDING => Self::Pending,
            status::ACCEPTED => Self::Accepted,
            status::DECLINED => Self::Declined,
            status::TIMED_OUT => Self::TimedOut,
            _ => Self::Withdrawn,
        }
    }
}

/// An offer of a queued conversation to an agent, made by routing.
pub struct ConversationOffer(pub offer::Model);

/// An offer of a queued conversation to an agent, made by routing.
#[Object]
impl ConversationOffer {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("ConversationOffer", self.0.id)
    }

    /// The conversation offered.
    async fn conversation(&self, ctx: &Context<'_>) -> Result<Option<Conversation>> {
        Ok(ctx
            .app()
            .load::<entity::conversation::Entity>(self.0.conversation_id)
            .await?
            .map(Conversation))
    }

    /// The queue it waits in.
    async fn queue(&self, ctx: &Context<'_>) -> Result<Option<Queue>> {
        Ok(ctx
            .app()
            .load::<entity::queue::Entity>(self.0.queue_id)
            .await?
            .map(Queue))
    }

    /// The agent it is offered to.
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        Ok(ctx
            .app()
            .load::<entity::user::Entity>(self.0.user_id)
            .await?
            .map(User))
    }

    /// Where it stands.
    async fn status(&self) -> OfferStatus {
        OfferStatus::of(&self.0.status)
    }

    /// Offered to this agent alone (one-at-a-time algorithms) rather than to several at once.
    async fn exclusive(&self) -> bool {
        self.0.single
    }

    /// When it was made.
    async fn offered_at(&self) -> DateTime<Utc> {
        self.0.offered_at
    }

    /// When it lapses unanswered.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }

    /// When it was answered, lapsed or withdrawn.
    async fn answered_at(&self) -> Option<DateTime<Utc>> {
        self.0.answered_at
    }
}

/// Input naming an offer.
#[derive(InputObject)]
pub struct OfferIdInput {
    /// The offer (made to the caller).
    pub offer_id: ID,
}

/// Result of `acceptOffer`.
#[derive(SimpleObject)]
pub struct AcceptOfferPayload {
    /// The offer, accepted; null when it failed.
    pub offer: Option<ConversationOffer>,
    /// The conversation, now assigned to the caller; null when it failed.
    pub conversation: Option<Conversation>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Result of `declineOffer`.
#[derive(SimpleObject)]
pub struct DeclineOfferPayload {
    /// The offer, declined; null when it failed.
    pub offer: Option<ConversationOffer>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Routing queries.
#[derive(Default)]
pub struct RoutingQuery;

#[Object]
impl RoutingQuery {
    /// The offers waiting for the caller's answer, oldest first (AGENT).
    async fn my_offers(&self, ctx: &Context<'_>) -> Result<Vec<ConversationOffer>> {
        let app = ctx.app();
        let principal = app.principal()?;
        let now = app.state.clock.now();
        Ok(service::pending_offers(app.db(), principal, now)
            .await?
            .into_iter()
            .map(ConversationOffer)
            .collect())
    }
}

/// Routing mutations.
#[derive(Default)]
pub struct RoutingMutation;

#[Object]
impl RoutingMutation {
    /// Accepts an offer made to the caller (AGENT): the conversation is claimed by them and the
    /// other offers of it are withdrawn. An offer made to someone else is `FORBIDDEN`; one that
    /// timed out, was answered or withdrawn is `INVALID_STATE`.
    async fn accept_offer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: OfferIdInput,
    ) -> Result<AcceptOfferPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let now = app.state.clock.now();
        let result = match input_id("offerId", &input.offer_id, "ConversationOffer") {
            Ok(id) => service::accept(app.db(), principal, id, now).await,
            Err(e) => Err(e),
        };
        let (done, user_errors) = split(result)?;
        let (offer, conversation) = match done {
            Some((o, c)) => (Some(ConversationOffer(o)), Some(Conversation(c))),
            None => (None, None),
        };
        Ok(AcceptOfferPayload {
            offer,
            conversation,
            user_errors,
        })
    }

    /// Declines an offer made to the caller (AGENT); the conversation is offered to the next
    /// agent. Errors as for `acceptOffer`.
    async fn decline_offer(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: OfferIdInput,
    ) -> Result<DeclineOfferPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let now = app.state.clock.now();
        let result = match input_id("offerId", &input.offer_id, "ConversationOffer") {
            Ok(id) => service::decline(app.db(), principal, id, now).await,
            Err(e) => Err(e),
        };
        let (offer, user_errors) = split(result)?;
        Ok(DeclineOfferPayload {
            offer: offer.map(ConversationOffer),
            user_errors,
        })
    }
}

/// What happened to an offer.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfferChange {
    /// It was made.
    Offered,
    /// The caller accepted it.
    Accepted,
    /// The caller declined it.
    Declined,
    /// It lapsed unanswered.
    TimedOut,
    /// It was withdrawn.
    Withdrawn,
}

impl OfferChange {
    fn of(event_type: &str) -> Option<Self> {
        Some(match event_type {
            event_types::OFFERED => Self::Offered,
            event_types::OFFER_ACCEPTED => Self::Accepted,
            event_types::OFFER_DECLINED => Self::Declined,
            event_types::OFFER_TIMED_OUT => Self::TimedOut,
            event_types::OFFER_WITHDRAWN => Self::Withdrawn,
            _ => return None,
        })
    }
}

/// Something happened to an offer made to the caller.
#[derive(SimpleObject)]
pub struct ConversationOfferEvent {
    /// This event's cursor: subscribe with it as `after` to resume after this event.
    cursor: String,
    /// What happened.
    change: OfferChange,
    /// The offer as it is when delivered.
    offer: ConversationOffer,
}

/// The routing subscription.
#[derive(Default)]
pub struct RoutingSubscription;

/// Offers to the caller.
#[Subscription]
impl RoutingSubscription {
    /// Offers made to the caller (AGENT) and what became of them: offered, accepted, declined,
    /// timed out, withdrawn. With `after`, first those after that cursor, then live ones.
    async fn conversation_offered(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Resume after this event cursor (from an earlier event).")] after: Option<
            String,
        >,
    ) -> Result<impl Stream<Item = Result<ConversationOfferEvent>> + use<>> {
        let app = ctx.app();
        let principal = app.principal()?.clone();
        principal.require(Permission::WorkConversations)?;
        let db = app.db().clone();
        let start = start(&db, &app.state.bus, after.as_deref()).await?;
        let me = principal.user_id();
        let org_id = principal.org_id;
        let app = ctx.data::<Arc<RequestCtx>>()?.clone();
        Ok(stream(
            db,
            start,
            org_id,
            app,
            move |db, event| async move {
                let Some(change) = OfferChange::of(&event.event_type) else {
                    return Ok(None);
                };
                let id = |key: &str| {
                    event
                        .payload
                        .get(key)
                        .and_then(|v| v.as_str())
                        .and_then(|v| Uuid::parse_str(v).ok())
                };
                if id("userId") != Some(me) {
                    return Ok(None);
                }
                let Some(offer_id) = id("offerId") else {
                    return Ok(None);
                };
                let model = tenancy::by_id::<offer::Entity>(org_id, offer_id)
                    .one(&db)
                    .await?
                    .ok_or_else(|| AppError::internal("an offer event without its offer"))?;
                Ok(Some(ConversationOfferEvent {
                    cursor: encode_cursor(event.seq),
                    change,
                    offer: ConversationOffer(model),
                }))
            },
        ))
    }
}

/// A queue's figures at one moment.
pub struct QueueStats {
    stats: service::QueueStats,
    at: DateTime<Utc>,
}

/// A queue's figures at one moment.
#[Object]
impl QueueStats {
    /// The queue.
    async fn queue(&self, ctx: &Context<'_>) -> Result<Option<Queue>> {
        Ok(ctx
            .app()
            .load::<entity::queue::Entity>(self.stats.queue_id)
            .await?
            .map(Queue))
    }

    /// Open, unassigned conversations waiting in it.
    async fn waiting_count(&self) -> i64 {
        self.stats.waiting
    }

    /// How long the conversation waiting longest has waited, in seconds (null: none waits).
    async fn longest_wait_seconds(&self) -> Option<i64> {
        self.stats
            .oldest_queued_at
            .map(|queued| (self.at - queued).num_seconds().max(0))
    }

    /// Members connected now.
    async fn agents_online(&self) -> i64 {
        self.stats.agents_online
    }

    /// Members connected and `WORKING`: those who may be offered conversations.
    async fn agents_available(&self) -> i64 {
        self.stats.agents_available
    }

    /// When these figures were taken.
    async fn at(&self) -> DateTime<Utc> {
        self.at
    }
}

fn decode_queue_ids(ids: Option<Vec<ID>>) -> Result<Option<Vec<Uuid>>> {
    Ok(ids
        .map(|ids| {
            ids.iter()
                .map(|id| crate::graphql::relay::decode_id(id, "Queue"))
                .collect::<crate::error::AppResult<Vec<_>>>()
        })
        .transpose()?)
}

/// Queue figures.
#[derive(Default)]
pub struct QueueStatsQuery;

#[Object]
impl QueueStatsQuery {
    /// Waiting conversations, longest wait and agents available per queue (AGENT), of the
    /// given queues or all, by queue name.
    async fn queue_stats(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only these queues.")] queue_ids: Option<Vec<ID>>,
    ) -> Result<Vec<QueueStats>> {
        let app = ctx.app();
        let at = Utc::now();
        Ok(
            service::queue_stats(app.db(), app.principal()?, decode_queue_ids(queue_ids)?)
                .await?
                .into_iter()
                .map(|stats| QueueStats { stats, at })
                .collect(),
        )
    }
}

/// Queue figures as they change.
#[derive(SimpleObject)]
pub struct QueueStatsEvent {
    /// The cursor of the event that changed them: subscribe with it as `after` to resume.
    cursor: String,
    /// The figures of every queue subscribed to.
    stats: Vec<QueueStats>,
}

/// Event types that may change a queue's figures.
const STATS_AFTER: &[&str] = &[
    event_types::CREATED,
    event_types::ENQUEUED,
    event_types::TRANSFERRED,
    event_types::CLAIMED,
    event_types::ASSIGNED,
    event_types::UNASSIGNED,
    event_types::PENDING,
    event_types::PENDING_EXPIRED,
    event_types::CLOSED,
    event_types::REOPENED,
    event_types::ARCHIVED,
    event_types::UNARCHIVED,
    event_types::ANONYMIZED,
    crate::presence::service::PRESENCE_CHANGED,
];

/// The queue statistics subscription.
#[derive(Default)]
pub struct QueueStatsSubscription;

/// Queue figures.
#[Subscription]
impl QueueStatsSubscription {
    /// The figures of the given queues (or all) whenever they change (AGENT): after
    /// conversations enter, leave or are taken from a queue and after agents' presence changes.
    /// With `after`, resumes after that cursor (the first event then carries the figures as
    /// they are).
    async fn queue_stats(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only these queues.")] queue_ids: Option<Vec<ID>>,
        #[graphql(desc = "Resume after this event cursor (from an earlier event).")] after: Option<
            String,
        >,
    ) -> Result<impl Stream<Item = Result<QueueStatsEvent>> + use<>> {
        let app = ctx.app();
        let principal = app.principal()?.clone();
        principal.require(Permission::WorkConversations)?;
        let ids = decode_queue_ids(queue_ids)?;
        let db = app.db().clone();
        // The stats are read before the log's end: a change committed between the two reads
        // then reaches the stream and differs from them, so it is not taken for a repeat.
        let last = Arc::new(std::sync::Mutex::new(
            service::queue_stats(&db, &principal, ids.clone()).await?,
        ));
        let start = start(&db, &app.state.bus, after.as_deref()).await?;
        let org_id = principal.org_id;
        let app = ctx.data::<Arc<RequestCtx>>()?.clone();
        Ok(stream(db, start, org_id, app, move |db, event| {
            let (principal, ids, last) = (principal.clone(), ids.clone(), last.clone());
            async move {
                if !STATS_AFTER.contains(&event.event_type.as_str()) {
                    return Ok(None);
                }
                let stats = service::queue_stats(&db, &principal, ids).await?;
                {
                    let mut last = match last.lock() {
                        Ok(last) => last,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    if *last == stats {
                        return Ok(None);
                    }
                    *last = stats.clone();
                }
                let at = Utc::now();
                Ok(Some(QueueStatsEvent {
                    cursor: encode_cursor(event.seq),
                    stats: stats
                        .into_iter()
                        .map(|stats| QueueStats { stats, at })
                        .collect(),
                }))
            }
        }))
    }
}
