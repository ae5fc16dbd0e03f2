//! Routing rules: which agents a queued conversation is offered to, in what order, and what
//! accepting, declining and not answering do. Every function takes `now` (the server's
//! [`crate::clock::Clock`]), so tests move time instead of waiting.
//!
//! Eligible agents are the queue's members who are active users, online, `WORKING`, take the
//! conversation's channel type, are under their capacity for it (open conversations assigned to
//! them; no capacity set means no limit), are not in wrap-up (a conversation of theirs closed
//! less than the queue's wrap-up time ago) and have not declined or let lapse an offer of this
//! conversation in this queue (once every member passed, it waits for a transfer or a new
//! member). The queue's algorithm picks among them:
//! `ALL_AT_ONCE` every one, `ONE_AT_A_TIME_RANDOM` one at random, `LONGEST_IDLE` the one assigned
//! a conversation longest ago; the `AGENT_PRIORITY_` variants first keep only the members with the
//! best (lowest) priority. Offers lapse after the queue's offer timeout and the next agent gets
//! one.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use entity::{conversation, conversation_offer as offer, queue, queue_member, user, user_presence};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;

use crate::auth::{Permission, Principal};
use crate::conversations::{SUBJECT, event_types};
use crate::db;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::events::{self, Subject};
use crate::queues::service::OfferAlgorithm;
use crate::tenancy;

/// Offer timeout when the queue sets none.
pub const DEFAULT_OFFER_TIMEOUT_SECONDS: i64 = 30;

/// Offer states.
pub mod status {
    /// Waiting for the agent.
    pub const PENDING: &str = "PENDING";
    /// Accepted: the conversation is the agent's.
    pub const ACCEPTED: &str = "ACCEPTED";
    /// Declined by the agent.
    pub const DECLINED: &str = "DECLINED";
    /// Not answered in time.
    pub const TIMED_OUT: &str = "TIMED_OUT";
    /// Withdrawn: someone else took the conversation.
    pub const WITHDRAWN: &str = "WITHDRAWN";
}

/// Conversations routed per sweep at most.
const SWEEP_BATCH: u64 = 200;

/// A member's standing for an offer.
struct Candidate {
    user_id: Uuid,
    priority: i32,
    /// When they were last assigned a conversation (never: the longest idle).
    last_assigned: Option<DateTime<Utc>>,
}

/// Offers `conversation_id` to the next agents of its queue if it waits for one (open,
/// queued, unassigned, no pending offer). Returns the offers made (none when nobody is eligible
/// or a round is already running, on this instance or another).
pub async fn route(
    db: &DatabaseConnection,
    conversation_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<Vec<offer::Model>> {
    // Most conversations don't wait for an agent: find out before taking the write lock.
    let waits = conversation::Entity::find_by_id(conversation_id)
        .one(db)
        .await?
        .is_some_and(|c| {
            c.queue_id.is_some()
                && c.status == "OPEN"
                && c.assignee_id.is_none()
                && c.archived_at.is_none()
        });
    if !waits {
        return Ok(Vec::new());
    }
    let txn = db::begin_write(db).await?;
    let result = match offer_round(&txn, conversation_id, now).await {
        Ok(made) if made.is_empty() => return Ok(made),
        Ok(made) => txn.commit().await.map(|()| made).map_err(AppError::from),
        Err(error) => {
            txn.rollback().await?;
            Err(error)
        }
    };
    match result {
        Ok(made) => Ok(made),
        // Another instance started the round first (the partial unique indexes refused ours).
        Err(_) if pending(db, conversation_id).await? > 0 => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}

async fn offer_round<C: ConnectionTrait>(
    conn: &C,
    conversation_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<Vec<offer::Model>> {
    let Some(conversation) = conversation::Entity::find_by_id(conversation_id)
        .one(conn)
        .await?
    else {
        return Ok(Vec::new());
    };
    let Some(queue_id) = conversation.queue_id else {
        return Ok(Vec::new());
    };
    if conversation.status != "OPEN"
        || conversation.assignee_id.is_some()
        || conversation.archived_at.is_some()
        || pending(conn, conversation_id).await? > 0
    {
        return Ok(Vec::new());
    }
    let org_id = conversation.org_id;
    let Some(queue) = tenancy::by_id::<queue::Entity>(org_id, queue_id)
        .one(conn)
        .await?
    else {
        return Ok(Vec::new());
    };
    let candidates = eligible(conn, &conversation, &queue, now).await?;
    let algorithm =
        OfferAlgorithm::parse(&queue.offer_algorithm).unwrap_or(OfferAlgorithm::AllAtOnce);
    let chosen = choose(algorithm, candidates);
    let single = chosen.len() == 1 && !all_at_once(algorithm);
    let timeout = queue
        .offer_timeout_seconds
        .map_or(DEFAULT_OFFER_TIMEOUT_SECONDS, i64::from)
        .max(1);
    let expires_at = now + Duration::seconds(timeout);
    let mut made = Vec::new();
    for user_id in chosen {
        let model = offer::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(org_id),
            conversation_id: Set(conversation_id),
            queue_id: Set(queue_id),
            user_id: Set(user_id),
            single: Set(single),
            status: Set(status::PENDING.into()),
            offered_at: Set(now),
            expires_at: Set(expires_at),
            answered_at: Set(None),
        }
        .insert(conn)
        .await?;
        events::record(
            conn,
            org_id,
            None,
            event_types::OFFERED,
            Subject::new(SUBJECT, conversation_id),
            json!({
                "offerId": model.id,
                "userId": user_id,
                "queueId": queue_id,
                "expiresAt": expires_at,
            }),
        )
        .await?;
        made.push(model);
    }
    Ok(made)
}

fn all_at_once(algorithm: OfferAlgorithm) -> bool {
    matches!(
        algorithm,
        OfferAlgorithm::AllAtOnce | OfferAlgorithm::AgentPriorityAllAtOnce
    )
}

/// The agents `algorithm` offers to now, among `candidates`.
fn choose(algorithm: OfferAlgorithm, mut candidates: Vec<Candidate>) -> Vec<Uuid> {
    use OfferAlgorithm as A;
    if matches!(
        algorithm,
        A::AgentPriorityAllAtOnce | A::AgentPriorityLongestIdle | A::AgentPriorityOneAtATimeRandom
    ) && let Some(best) = candidates.iter().map(|c| c.priority).min()
    {
        candidates.retain(|c| c.priority == best);
    }
    if candidates.is_empty() {
        return Vec::new();
    }
    match algorithm {
        A::AllAtOnce | A::AgentPriorityAllAtOnce => {
            candidates.into_iter().map(|c| c.user_id).collect()
        }
        A::OneAtATimeRandom | A::AgentPriorityOneAtATimeRandom => {
            let pick = rand::random::<usize>() % candidates.len();
            vec![candidates[pick].user_id]
        }
        A::LongestIdle | A::AgentPriorityLongestIdle => {
            // Never assigned sorts first; ties by id so the choice is stable.
            candidates.sort_by_key(|c| (c.last_assigned, c.user_id));
            vec![candidates[0].user_id]
        }
    }
}

async fn pending<C: ConnectionTrait>(conn: &C, conversation_id: Uuid) -> AppResult<u64> {
    use sea_orm::PaginatorTrait;
    Ok(offer::Entity::find()
        .filter(offer::Column::ConversationId.eq(conversation_id))
        .filter(offer::Column::Status.eq(status::PENDING))
        .count(conn)
        .await?)
}

/// The queue's members who may be offered `conversation` now.
async fn eligible<C: ConnectionTrait>(
    conn: &C,
    conversation: &conversation::Model,
    queue: &queue::Model,
    now: DateTime<Utc>,
) -> AppResult<Vec<Candidate>> {
    let org_id = conversation.org_id;
    let members = queue_member::Entity::find()
        .filter(queue_member::Column::OrgId.eq(org_id))
        .filter(queue_member::Column::QueueId.eq(queue.id))
        .all(conn)
        .await?;
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = members.iter().map(|m| m.user_id).collect();
    let active: HashSet<Uuid> = user::Entity::find()
        .filter(user::Column::OrgId.eq(org_id))
        .filter(user::Column::Id.is_in(ids.clone()))
        .filter(user::Column::Status.eq("ACTIVE"))
        .all(conn)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect();
    let presence: HashMap<Uuid, user_presence::Model> = user_presence::Entity::find()
        .filter(user_presence::Column::OrgId.eq(org_id))
        .filter(user_presence::Column::UserId.is_in(ids.clone()))
        .all(conn)
        .await?
        .into_iter()
        .map(|p| (p.user_id, p))
        .collect();
    // Who already passed on this conversation in this queue.
    let passed: HashSet<Uuid> = offer::Entity::find()
        .filter(offer::Column::ConversationId.eq(conversation.id))
        .filter(offer::Column::QueueId.eq(queue.id))
        .filter(offer::Column::Status.is_in([status::DECLINED, status::TIMED_OUT]))
        .all(conn)
        .await?
        .into_iter()
        .map(|o| o.user_id)
        .collect();
    let wrapup = queue.wrapup_timeout_seconds.map_or(0, i64::from).max(0);
    // The members' assigned conversations: open ones count against capacity, recently closed
    // ones put them in wrap-up, the latest assignment says how long they have been idle.
    let assigned = conversation::Entity::find()
        .filter(conversation::Column::OrgId.eq(org_id))
        .filter(conversation::Column::AssigneeId.is_in(ids))
        .filter(
            sea_orm::Condition::any()
                .add(conversation::Column::Status.ne("CLOSED"))
                .add(conversation::Column::ClosedAt.gte(now - Duration::seconds(wrapup))),
        )
        .all(conn)
        .await?;
    let last_assigned: HashMap<Uuid, Option<DateTime<Utc>>> = {
        let rows: Vec<(Option<Uuid>, Option<DateTime<Utc>>)> = conversation::Entity::find()
            .select_only()
            .column(conversation::Column::AssigneeId)
            .expr(sea_orm::sea_query::ExprTrait::max(Expr::col(
                conversation::Column::AssignedAt,
            )))
            .filter(conversation::Column::OrgId.eq(org_id))
            .filter(
                conversation::Column::AssigneeId
                    .is_in(members.iter().map(|m| m.user_id).collect::<Vec<_>>()),
            )
            .group_by(conversation::Column::AssigneeId)
            .into_tuple()
            .all(conn)
            .await?;
        rows.into_iter()
            .filter_map(|(user, at)| Some((user?, at)))
            .collect()
    };
    let channel_type = conversation.channel_type.as_str();
    let mut candidates = Vec::new();
    for member in members {
        let user_id = member.user_id;
        if !active.contains(&user_id) || passed.contains(&user_id) {
            continue;
        }
        let Some(presence) = presence.get(&user_id) else {
            continue;
        };
        let takes = presence
            .active_channels
            .split(',')
            .any(|c| c.trim() == channel_type);
        if presence.connection_status != "ONLINE" || presence.presence_status != "WORKING" || !takes
        {
            continue;
        }
        let mine = assigned.iter().filter(|c| c.assignee_id == Some(user_id));
        let in_wrapup = wrapup > 0
            && mine.clone().any(|c| {
                c.closed_at
                    .is_some_and(|at| at > now - Duration::seconds(wrapup))
            });
        if in_wrapup {
            continue;
        }
        let open = mine
            .filter(|c| c.status != "CLOSED" && c.channel_type == channel_type)
            .count();
        let capacity = presence
            .capacity
            .get(channel_type)
            .and_then(serde_json::Value::as_i64);
        if capacity.is_some_and(|capacity| open as i64 >= capacity) {
            continue;
        }
        candidates.push(Candidate {
            user_id,
            priority: member.priority,
            last_assigned: last_assigned.get(&user_id).copied().flatten(),
        });
    }
    Ok(candidates)
}

/// The caller's offer `offer_id`, checked to be theirs and still open at `now`.
async fn open_offer<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    offer_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<offer::Model> {
    principal.require(Permission::WorkConversations)?;
    let offer = tenancy::by_id::<offer::Entity>(principal.org_id, offer_id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid("offerId", UserErrorCode::NotFound, "no such offer"))?;
    if offer.user_id != principal.user_id() {
        return Err(AppError::invalid(
            "offerId",
            UserErrorCode::Forbidden,
            "this offer was made to another agent",
        ));
    }
    let state = match offer.status.as_str() {
        status::PENDING if offer.expires_at <= now => "timed out",
        status::PENDING => return Ok(offer),
        status::ACCEPTED => "already accepted",
        status::DECLINED => "already declined",
        status::TIMED_OUT => "timed out",
        _ => "withdrawn: the conversation was taken",
    };
    Err(AppError::invalid(
        "offerId",
        UserErrorCode::InvalidState,
        format!("the offer is {state}"),
    ))
}

/// Moves a pending offer to `to` (only if it is still pending: `false` otherwise) and records
/// `event_type`.
async fn settle<C: ConnectionTrait>(
    conn: &C,
    offer: &offer::Model,
    to: &str,
    event_type: &str,
    actor: Option<Uuid>,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let moved = offer::Entity::update_many()
        .col_expr(offer::Column::Status, Expr::value(to))
        .col_expr(offer::Column::AnsweredAt, Expr::value(now))
        .filter(offer::Column::Id.eq(offer.id))
        .filter(offer::Column::Status.eq(status::PENDING))
        .exec(conn)
        .await?
        .rows_affected
        == 1;
    if moved {
        events::record(
            conn,
            offer.org_id,
            actor,
            event_type,
            Subject::new(SUBJECT, offer.conversation_id),
            json!({ "offerId": offer.id, "userId": offer.user_id, "queueId": offer.queue_id }),
        )
        .await?;
    }
    Ok(moved)
}

/// Withdraws the other pending offers of a conversation.
async fn withdraw_others<C: ConnectionTrait>(
    conn: &C,
    conversation_id: Uuid,
    except: Option<Uuid>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let others = offer::Entity::find()
        .filter(offer::Column::ConversationId.eq(conversation_id))
        .filter(offer::Column::Status.eq(status::PENDING))
        .all(conn)
        .await?;
    for other in others.iter().filter(|o| Some(o.id) != except) {
        settle(
            conn,
            other,
            status::WITHDRAWN,
            event_types::OFFER_WITHDRAWN,
            None,
            now,
        )
        .await?;
    }
    Ok(())
}

/// Accepts the caller's offer: the conversation is assigned to them (a claim) and the other
/// offers of it are withdrawn.
pub async fn accept(
    db: &DatabaseConnection,
    principal: &Principal,
    offer_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<(offer::Model, conversation::Model)> {
    let txn = db::begin_write(db).await?;
    let offer = open_offer(&txn, principal, offer_id, now).await?;
    let conversation =
        tenancy::by_id::<conversation::Entity>(principal.org_id, offer.conversation_id)
            .one(&txn)
            .await?
            .ok_or_else(|| {
                AppError::invalid("offerId", UserErrorCode::NotFound, "no such offer")
            })?;
    if conversation.assignee_id.is_some() || conversation.status == "CLOSED" {
        return Err(AppError::invalid(
            "offerId",
            UserErrorCode::InvalidState,
            "the conversation was taken meanwhile",
        ));
    }
    let me = principal.user_id();
    settle(
        &txn,
        &offer,
        status::ACCEPTED,
        event_types::OFFER_ACCEPTED,
        Some(me),
        now,
    )
    .await?;
    withdraw_others(&txn, offer.conversation_id, Some(offer.id), now).await?;
    let mut active: conversation::ActiveModel = conversation.into();
    active.assignee_id = Set(Some(me));
    active.assigned_at = Set(Some(now));
    active.updated_at = Set(now);
    let conversation = active.update(&txn).await?;
    events::record(
        &txn,
        principal.org_id,
        Some(me),
        event_types::CLAIMED,
        Subject::new(SUBJECT, conversation.id),
        json!({ "userId": me, "previousAssigneeId": null, "force": false, "offerId": offer.id }),
    )
    .await?;
    let offer = offer::Entity::find_by_id(offer.id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::internal("accepted offer vanished"))?;
    txn.commit().await?;
    Ok((offer, conversation))
}

/// Declines the caller's offer; the conversation goes to the next agent.
pub async fn decline(
    db: &DatabaseConnection,
    principal: &Principal,
    offer_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<offer::Model> {
    let txn = db::begin_write(db).await?;
    let offer = open_offer(&txn, principal, offer_id, now).await?;
    settle(
        &txn,
        &offer,
        status::DECLINED,
        event_types::OFFER_DECLINED,
        Some(principal.user_id()),
        now,
    )
    .await?;
    let offer = offer::Entity::find_by_id(offer.id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::internal("declined offer vanished"))?;
    txn.commit().await?;
    route(db, offer.conversation_id, now).await?;
    Ok(offer)
}

/// The timer: offers past their expiry time out, conversations whose offers were withdrawn or
/// that left the queue stop being offered, and waiting conversations are routed (agents may
/// have become available). Returns the offers made.
pub async fn sweep(db: &DatabaseConnection, now: DateTime<Utc>) -> AppResult<Vec<offer::Model>> {
    let lapsed = offer::Entity::find()
        .filter(offer::Column::Status.eq(status::PENDING))
        .filter(offer::Column::ExpiresAt.lte(now))
        .order_by_asc(offer::Column::ExpiresAt)
        .limit(SWEEP_BATCH)
        .all(db)
        .await?;
    for offer in &lapsed {
        let txn = db::begin_write(db).await?;
        settle(
            &txn,
            offer,
            status::TIMED_OUT,
            event_types::OFFER_TIMED_OUT,
            None,
            now,
        )
        .await?;
        txn.commit().await?;
    }
    // Offers of conversations that were claimed, assigned, closed or moved meanwhile.
    let stale: Vec<offer::Model> = offer::Entity::find()
        .filter(offer::Column::Status.eq(status::PENDING))
        // Correlated: one primary-key look-up per pending offer (an `IN (SELECT …)` of the
        // conversations matching the `OR` read every conversation).
        .filter(Expr::exists(
            sea_orm::sea_query::Query::select()
                .expr(Expr::val(1))
                .from(conversation::Entity)
                .and_where(sea_orm::sea_query::ExprTrait::equals(
                    Expr::col((conversation::Entity, conversation::Column::Id)),
                    (offer::Entity, offer::Column::ConversationId),
                ))
                .cond_where(
                    sea_orm::Condition::any()
                        .add(conversation::Column::AssigneeId.is_not_null())
                        .add(conversation::Column::Status.ne("OPEN"))
                        .add(conversation::Column::QueueId.is_null()),
                )
                .to_owned(),
        ))
        .limit(SWEEP_BATCH)
        .all(db)
        .await?;
    for offer in &stale {
        let txn = db::begin_write(db).await?;
        settle(
            &txn,
            offer,
            status::WITHDRAWN,
            event_types::OFFER_WITHDRAWN,
            None,
            now,
        )
        .await?;
        txn.commit().await?;
    }
    let waiting: Vec<Uuid> = conversation::Entity::find()
        .select_only()
        .column(conversation::Column::Id)
        .filter(conversation::Column::Status.eq("OPEN"))
        .filter(conversation::Column::QueueId.is_not_null())
        .filter(conversation::Column::AssigneeId.is_null())
        .filter(conversation::Column::ArchivedAt.is_null())
        .filter(
            conversation::Column::Id.not_in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(offer::Column::ConversationId)
                    .from(offer::Entity)
                    .and_where(offer::Column::Status.eq(status::PENDING))
                    .to_owned(),
            ),
        )
        .order_by_asc(conversation::Column::QueuedAt)
        .limit(SWEEP_BATCH)
        .into_tuple()
        .all(db)
        .await?;
    let mut made = Vec::new();
    for id in waiting {
        made.extend(route(db, id, now).await?);
    }
    Ok(made)
}

/// The caller's pending offers, oldest first.
pub async fn pending_offers(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
) -> AppResult<Vec<offer::Model>> {
    principal.require(Permission::WorkConversations)?;
    Ok(tenancy::in_org::<offer::Entity>(principal.org_id)
        .filter(offer::Column::UserId.eq(principal.user_id()))
        .filter(offer::Column::Status.eq(status::PENDING))
        .filter(offer::Column::ExpiresAt.gt(now))
        .order_by_asc(offer::Column::OfferedAt)
        .all(db)
        .await?)
}

/// A queue's figures at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueStats {
    /// The queue.
    pub queue_id: Uuid,
    /// Open, unassigned conversations in it.
    pub waiting: i64,
    /// When the one waiting longest was queued.
    pub oldest_queued_at: Option<DateTime<Utc>>,
    /// Members online.
    pub agents_online: i64,
    /// Members online and `WORKING`.
    pub agents_available: i64,
}

/// The figures of the organization's queues (of `queue_ids` when given), by queue name.
pub async fn queue_stats(
    db: &DatabaseConnection,
    principal: &Principal,
    queue_ids: Option<Vec<Uuid>>,
) -> AppResult<Vec<QueueStats>> {
    principal.require(Permission::WorkConversations)?;
    let org_id = principal.org_id;
    let mut queues = tenancy::in_org::<queue::Entity>(org_id).order_by_asc(queue::Column::Name);
    if let Some(ids) = queue_ids {
        queues = queues.filter(queue::Column::Id.is_in(ids));
    }
    let queues = queues.all(db).await?;
    let ids: Vec<Uuid> = queues.iter().map(|q| q.id).collect();
    let waiting: Vec<(Option<Uuid>, i64, Option<DateTime<Utc>>)> = conversation::Entity::find()
        .select_only()
        .column(conversation::Column::QueueId)
        .expr(sea_orm::sea_query::ExprTrait::count(Expr::col(
            conversation::Column::Id,
        )))
        .expr(sea_orm::sea_query::ExprTrait::min(Expr::col(
            conversation::Column::QueuedAt,
        )))
        .filter(conversation::Column::OrgId.eq(org_id))
        .filter(conversation::Column::QueueId.is_in(ids.clone()))
        .filter(conversation::Column::Status.eq("OPEN"))
        .filter(conversation::Column::AssigneeId.is_null())
        .filter(conversation::Column::ArchivedAt.is_null())
        .group_by(conversation::Column::QueueId)
        .into_tuple()
        .all(db)
        .await?;
    let waiting: HashMap<Uuid, (i64, Option<DateTime<Utc>>)> = waiting
        .into_iter()
        .filter_map(|(queue, n, oldest)| Some((queue?, (n, oldest))))
        .collect();
    let members = queue_member::Entity::find()
        .filter(queue_member::Column::OrgId.eq(org_id))
        .filter(queue_member::Column::QueueId.is_in(ids))
        .all(db)
        .await?;
    let presence: HashMap<Uuid, user_presence::Model> = user_presence::Entity::find()
        .filter(user_presence::Column::OrgId.eq(org_id))
        .filter(
            user_presence::Column::UserId
                .is_in(members.iter().map(|m| m.user_id).collect::<Vec<_>>()),
        )
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.user_id, p))
        .collect();
    Ok(queues
        .into_iter()
        .map(|queue| {
            let (waiting, oldest_queued_at) = waiting.get(&queue.id).copied().unwrap_or((0, None));
            let online: Vec<&user_presence::Model> = members
                .iter()
                .filter(|m| m.queue_id == queue.id)
                .filter_map(|m| presence.get(&m.user_id))
                .filter(|p| p.connection_status == "ONLINE")
                .collect();
            QueueStats {
                queue_id: queue.id,
                waiting,
                oldest_queued_at,
                agents_online: online.len() as i64,
                agents_available: online
                    .iter()
                    .filter(|p| p.presence_status == "WORKING")
                    .count() as i64,
            }
        })
        .collect())
}
