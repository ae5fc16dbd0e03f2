//! Business rules of conversations, over a transaction. Every action loads the conversation inside
//! a write transaction, checks the current state (invalid transitions are `INVALID_STATE`), writes
//! the change and records one event about the conversation.

use chrono::{DateTime, Utc};
use entity::{conversation, conversation_participant, conversation_read, conversation_tag, user};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    IntoActiveModel, QueryFilter, Set, Statement,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{NOT_WAITING, Party, SUBJECT, event_types};
use crate::auth::{Permission, Principal};
use crate::channels::service::active_channel;
use crate::db;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::events::{self, Subject};
use crate::messages::service::{Direction, NewMessage, append};
use crate::tenancy;
use crate::validate::Errors;

stored_enum!(
    /// Where a conversation stands.
    Status {
        /// Being worked.
        Open => "OPEN",
        /// Waiting (for the contact or a date); reopens at `pendingUntil`.
        Pending => "PENDING",
        /// Done.
        Closed => "CLOSED",
    }
);

stored_enum!(
    /// Urgency of a conversation.
    Priority {
        /// Low.
        Low => "LOW",
        /// Normal (the default).
        Normal => "NORMAL",
        /// High.
        High => "HIGH",
        /// Urgent.
        Urgent => "URGENT",
    }
);

impl Priority {
    /// Sort key: higher is more urgent.
    pub fn rank(self) -> i16 {
        match self {
            Priority::Low => 0,
            Priority::Normal => 1,
            Priority::High => 2,
            Priority::Urgent => 3,
        }
    }
}

stored_enum!(
    /// One-to-one or group conversation.
    Kind {
        /// A contact and the organization.
        Direct => "DIRECT",
        /// Several contacts and users (participants).
        Group => "GROUP",
    }
);

stored_enum!(
    /// How a conversation relates to its parent.
    LinkType {
        /// Continues the parent.
        FollowUp => "FOLLOW_UP",
        /// A side conversation (e.g. with a third party) about the parent.
        SideConversation => "SIDE_CONVERSATION",
        /// The parent forwarded.
        Forward => "FORWARD",
    }
);

/// A customer satisfaction rating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rating {
    /// CSAT score 1–5.
    Csat(i32),
    /// Thumbs up (`true`) or down.
    Thumbs(bool),
}

/// Longest subject.
pub const MAX_SUBJECT: usize = 500;
/// Longest close reason.
pub const MAX_CLOSE_REASON: usize = 200;
/// Longest rating comment.
pub const MAX_RATING_COMMENT: usize = 2_000;
/// Longest first message.
pub const MAX_FIRST_MESSAGE: usize = 65_536;
/// Most participants added in one call.
pub const MAX_PARTICIPANTS: usize = 100;

fn invalid_state(message: impl Into<String>) -> AppError {
    AppError::invalid("conversationId", UserErrorCode::InvalidState, message)
}

/// The conversation `id` of `org_id`, or `NOT_FOUND` at `field`.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    id: Uuid,
    field: &str,
) -> AppResult<conversation::Model> {
    tenancy::by_id::<conversation::Entity>(org_id, id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid(field, UserErrorCode::NotFound, "no such conversation"))
}

/// The organization's next conversation number (taken inside the caller's transaction).
pub(crate) async fn next_number<C: ConnectionTrait>(conn: &C, org_id: Uuid) -> AppResult<i64> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO conversation_counters (org_id, last_number) VALUES ($1, 1) \
             ON CONFLICT (org_id) DO UPDATE SET last_number = conversation_counters.last_number + 1 \
             RETURNING last_number"
        }
        _ => {
            "INSERT INTO conversation_counters (org_id, last_number) VALUES (?, 1) \
             ON CONFLICT (org_id) DO UPDATE SET last_number = last_number + 1 \
             RETURNING last_number"
        }
    };
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [org_id.into()],
        ))
        .await?
        .ok_or_else(|| AppError::internal("conversation counter returned no row"))?;
    Ok(row.try_get::<i64>("", "last_number")?)
}

async fn active_user<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    user_id: Uuid,
    field: &str,
) -> AppResult<user::Model> {
    let user = tenancy::by_id::<user::Entity>(org_id, user_id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid(field, UserErrorCode::NotFound, "no such user"))?;
    if user.status != "ACTIVE" {
        return Err(AppError::invalid(
            field,
            UserErrorCode::InvalidState,
            "the user is deactivated",
        ));
    }
    Ok(user)
}

async fn require_queue<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    queue_id: Uuid,
    field: &str,
) -> AppResult<entity::queue::Model> {
    tenancy::by_id::<entity::queue::Entity>(org_id, queue_id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid(field, UserErrorCode::NotFound, "no such queue"))
}

fn subject(id: Uuid) -> Subject {
    Subject::new(SUBJECT, id)
}

async fn record<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    conversation_id: Uuid,
    event_type: &str,
    payload: Value,
) -> AppResult<()> {
    events::record(
        conn,
        principal.org_id,
        Some(principal.user_id()),
        event_type,
        subject(conversation_id),
        payload,
    )
    .await?;
    Ok(())
}

/// A conversation to create.
#[derive(Clone, Debug)]
pub struct NewConversation {
    /// The channel it is on.
    pub channel_id: Uuid,
    /// The contact it is with.
    pub requester_id: Uuid,
    /// Who writes first.
    pub direction: Direction,
    /// Direct or group.
    pub kind: Kind,
    /// Subject (email subject, chat topic).
    pub subject: Option<String>,
    /// Urgency.
    pub priority: Priority,
    /// Queue to put it in (default: the channel's default queue; outbound: none).
    pub queue_id: Option<Uuid>,
    /// Who works it (outbound: the creator unless given).
    pub assignee_id: Option<Uuid>,
    /// First message: plain text.
    pub text: Option<String>,
    /// First message: HTML.
    pub html: Option<String>,
    /// Further participants of a group conversation: contacts.
    pub contact_ids: Vec<Uuid>,
    /// Further participants of a group conversation: users.
    pub user_ids: Vec<Uuid>,
}

/// How a conversation opens: everything [`insert`] writes besides its channel and requester.
#[derive(Clone, Debug)]
pub struct Opening {
    /// Who writes first.
    pub direction: Direction,
    /// Direct or group.
    pub kind: Kind,
    /// Subject, checked.
    pub subject: Option<String>,
    /// Urgency.
    pub priority: Priority,
    /// Queue it waits in, checked.
    pub queue_id: Option<Uuid>,
    /// Who works it, checked.
    pub assignee_id: Option<Uuid>,
    /// Creation time.
    pub at: DateTime<Utc>,
}

/// Inserts an open conversation on `channel` with `requester` inside `conn`, without a message
/// yet (append the first one in the same transaction), and records `CONVERSATION_CREATED`,
/// `ENQUEUED` and `ASSIGNED` as they apply, by `actor` (none for the system). `create` and the
/// ingest endpoint use it.
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    actor: Option<Uuid>,
    channel: &entity::channel::Model,
    requester: &entity::contact::Model,
    opening: Opening,
) -> AppResult<conversation::Model> {
    let now = opening.at;
    let (queue_id, assignee_id) = (opening.queue_id, opening.assignee_id);
    let number = next_number(conn, channel.org_id).await?;
    let conversation = conversation::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(channel.org_id),
        number: Set(number),
        channel_id: Set(Some(channel.id)),
        channel_type: Set(channel.channel_type.clone()),
        kind: Set(opening.kind.as_str().into()),
        direction: Set(opening.direction.as_str().into()),
        subject: Set(opening.subject),
        status: Set(Status::Open.as_str().into()),
        pending_until: Set(None),
        close_reason: Set(None),
        closed_at: Set(None),
        requester_id: Set(requester.id),
        assignee_id: Set(assignee_id),
        assigned_at: Set(assignee_id.map(|_| now)),
        queue_id: Set(queue_id),
        queued_at: Set(queue_id.map(|_| now)),
        priority: Set(opening.priority.as_str().into()),
        priority_rank: Set(opening.priority.rank()),
        parent_id: Set(None),
        link_type: Set(None),
        rating_type: Set(None),
        rating_score: Set(None),
        rating_comment: Set(None),
        rated_at: Set(None),
        first_response_at: Set(None),
        last_message_at: Set(now),
        last_message_id: Set(None),
        waiting_since: Set(None),
        waiting_key: Set(NOT_WAITING),
        message_count: Set(0),
        archived_at: Set(None),
        anonymized_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await?;
    events::record(
        conn,
        channel.org_id,
        actor,
        event_types::CREATED,
        subject(conversation.id),
        json!({
            "number": number,
            "direction": conversation.direction,
            "channelId": channel.id,
            "requesterId": requester.id,
        }),
    )
    .await?;
    if let Some(queue_id) = queue_id {
        events::record(
            conn,
            channel.org_id,
            actor,
            event_types::ENQUEUED,
            subject(conversation.id),
            json!({ "queueId": queue_id }),
        )
        .await?;
    }
    if let Some(user_id) = assignee_id {
        events::record(
            conn,
            channel.org_id,
            actor,
            event_types::ASSIGNED,
            subject(conversation.id),
            json!({ "userId": user_id, "previousAssigneeId": null }),
        )
        .await?;
    }
    Ok(conversation)
}

/// Creates a conversation with its first message: inbound (the requester wrote; it goes to a
/// queue) or outbound (the calling user writes first and is assigned).
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    new: NewConversation,
) -> AppResult<(conversation::Model, entity::message::Model)> {
    principal.require(Permission::WorkConversations)?;
    let mut errors = Errors::default();
    let subject = errors.optional_text("subject", new.subject.as_deref(), MAX_SUBJECT);
    let text = errors.optional_text("message.text", new.text.as_deref(), MAX_FIRST_MESSAGE);
    let html = errors.optional_text("message.html", new.html.as_deref(), MAX_FIRST_MESSAGE);
    if text.is_none() && html.is_none() {
        errors.add(
            "message",
            UserErrorCode::Required,
            "the first message needs text or HTML",
        );
    }
    if new.kind == Kind::Direct && !(new.contact_ids.is_empty() && new.user_ids.is_empty()) {
        errors.add(
            "participants",
            UserErrorCode::Invalid,
            "only GROUP conversations have participants",
        );
    }
    if new.contact_ids.len() + new.user_ids.len() > MAX_PARTICIPANTS {
        errors.add(
            "participants",
            UserErrorCode::TooLong,
            format!("at most {MAX_PARTICIPANTS} participants at once"),
        );
    }
    errors.finish()?;

    let txn = db::begin_write(db).await?;
    let org = principal.org_id;
    let channel = active_channel(&txn, org, new.channel_id, "channelId").await?;
    let requester = tenancy::by_id::<entity::contact::Entity>(org, new.requester_id)
        .one(&txn)
        .await?
        .ok_or_else(|| {
            AppError::invalid("requesterId", UserErrorCode::NotFound, "no such contact")
        })?;
    if requester.anonymized_at.is_some() {
        return Err(AppError::invalid(
            "requesterId",
            UserErrorCode::InvalidState,
            "the contact is anonymized",
        ));
    }
    if new.direction == Direction::Outbound {
        crate::messages::service::ensure_reachable(
            crate::channels::ChannelType::parse(&channel.channel_type),
            &requester,
            "requesterId",
        )?;
    }
    let queue_id = match (new.queue_id, new.direction) {
        (Some(id), _) => Some(require_queue(&txn, org, id, "queueId").await?.id),
        (None, Direction::Inbound) => channel.default_queue_id,
        (None, Direction::Outbound) => None,
    };
    let assignee_id = match (new.assignee_id, new.direction) {
        (Some(id), _) => Some(active_user(&txn, org, id, "assigneeId").await?.id),
        (None, Direction::Outbound) => Some(principal.user_id()),
        (None, Direction::Inbound) => None,
    };
    tenancy::require_all::<entity::contact::Entity, _>(
        &txn,
        org,
        &tenancy::distinct(&new.contact_ids),
        "participants.contactIds",
        "no such contact",
    )
    .await?;
    tenancy::require_all::<user::Entity, _>(
        &txn,
        org,
        &tenancy::distinct(&new.user_ids),
        "participants.userIds",
        "no such user",
    )
    .await?;

    let now = Utc::now();
    let conversation = insert(
        &txn,
        Some(principal.user_id()),
        &channel,
        &requester,
        Opening {
            direction: new.direction,
            kind: new.kind,
            subject,
            priority: new.priority,
            queue_id,
            assignee_id,
            at: now,
        },
    )
    .await?;
    add_participant_rows(
        &txn,
        principal,
        &conversation,
        &tenancy::distinct(&new.contact_ids),
        &tenancy::distinct(&new.user_ids),
    )
    .await?;
    let author = match new.direction {
        Direction::Inbound => Party::Contact(requester.id),
        Direction::Outbound => Party::User(principal.user_id()),
    };
    let mut message = NewMessage::text(author, new.direction, String::new());
    message.text = text;
    message.html = html;
    message.created_at = now;
    (message.from_address, message.to) =
        crate::messages::service::default_addresses(&channel, &requester, new.direction);
    let (message, conversation) =
        append(&txn, conversation, message, Some(principal.user_id())).await?;
    txn.commit().await?;
    Ok((conversation, message))
}

/// Runs one action on a conversation: loads it in a write transaction, lets `change` check the
/// state and edit it, saves it and records `event_type` with the payload `change` returned.
async fn act<F>(
    db: &DatabaseConnection,
    principal: &Principal,
    permission: Permission,
    conversation_id: Uuid,
    event_type: &str,
    change: F,
) -> AppResult<conversation::Model>
where
    F: FnOnce(&conversation::Model, &mut conversation::ActiveModel) -> AppResult<Option<Value>>,
{
    principal.require(permission)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, conversation_id, "conversationId").await?;
    let mut active = current.clone().into_active_model();
    let Some(payload) = change(&current, &mut active)? else {
        return Ok(current);
    };
    active.updated_at = Set(Utc::now());
    let updated = active.update(&txn).await?;
    let abandoned = payload.get("abandoned") == Some(&Value::Bool(true));
    record(&txn, principal, updated.id, event_type, payload).await?;
    if abandoned {
        record(
            &txn,
            principal,
            updated.id,
            event_types::ABANDONED,
            json!({ "queueId": updated.queue_id }),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(updated)
}

fn not_closed(current: &conversation::Model, action: &str) -> AppResult<()> {
    if current.status == Status::Closed.as_str() {
        return Err(invalid_state(format!(
            "conversation {} is closed: reopen it to {action}",
            current.number
        )));
    }
    Ok(())
}

/// Claims a conversation for the calling user. Assigned to someone else: `CONFLICT` unless
/// `force`. Already the caller's: no change.
pub async fn claim(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    force: bool,
) -> AppResult<conversation::Model> {
    let me = principal.user_id();
    act(
        db,
        principal,
        Permission::WorkConversations,
        conversation_id,
        event_types::CLAIMED,
        |current, active| {
            not_closed(current, "claim it")?;
            match current.assignee_id {
                Some(id) if id == me => return Ok(None),
                Some(_) if !force => {
                    return Err(AppError::invalid(
                        "conversationId",
                        UserErrorCode::Conflict,
                        format!(
                            "conversation {} is assigned to someone else: claim with force to take it",
                            current.number
                        ),
                    ));
                }
                _ => {}
            }
            active.assignee_id = Set(Some(me));
            active.assigned_at = Set(Some(Utc::now()));
            Ok(Some(json!({
                "userId": me,
                "previousAssigneeId": current.assignee_id,
                "force": force,
            })))
        },
    )
    .await
}

/// Assigns a conversation to an active user of the organization.
pub async fn assign(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    user_id: Uuid,
) -> AppResult<conversation::Model> {
    principal.require(Permission::WorkConversations)?;
    active_user(db, principal.org_id, user_id, "userId").await?;
    act(
        db,
        principal,
        Permission::WorkConversations,
        conversation_id,
        event_types::ASSIGNED,
        |current, active| {
            not_closed(current, "assign it")?;
            if current.assignee_id == Some(user_id) {
                return Ok(None);
            }
            active.assignee_id = Set(Some(user_id));
            active.assigned_at = Set(Some(Utc::now()));
            Ok(Some(json!({
                "userId": user_id,
                "previousAssigneeId": current.assignee_id,
            })))
        },
    )
    .await
}

/// Removes the assignee.
pub async fn unassign(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
) -> AppResult<conversation::Model> {
    act(
        db,
        principal,
        Permission::WorkConversations,
        conversation_id,
        event_types::UNASSIGNED,
        |current, active| {
            let Some(previous) = current.assignee_id else {
                return Err(invalid_state(format!(
                    "conversation {} is not assigned",
                    current.number
                )));
            };
            active.assignee_id = Set(None);
            active.assigned_at = Set(None);
            Ok(Some(json!({ "previousAssigneeId": previous })))
        },
    )
    .await
}

/// Moves a conversation to another queue of the organization; it leaves its assignee, to be
/// offered in the new queue.
pub async fn transfer(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    queue_id: Uuid,
) -> AppResult<conversation::Model> {
    principal.require(Permission::WorkConversations)?;
    require_queue(db, principal.org_id, queue_id, "queueId").await?;
    act(
        db,
        principal,
        Permission::WorkConversations,
        conversation_id,
        event_types::TRANSFERRED,
        |current, active| {
            not_closed(current, "transfer it")?;
            if current.queue_id == Some(queue_id) && current.assignee_id.is_none() {
                return Err(invalid_state(format!(
                    "conversation {} is already waiting in that queue",
                    current.number
                )));
            }
            active.queue_id = Set(Some(queue_id));
            active.queued_at = Set(Some(Utc::now()));
            active.assignee_id = Set(None);
            active.assigned_at = Set(None);
            Ok(Some(json!({
                "fromQueueId": current.queue_id,
                "toQueueId": queue_id,
                "previousAssigneeId": current.assignee_id,
            })))
        },
    )
    .await
}

/// Sets an open conversation pending, optionally until a time (then it reopens).
pub async fn set_pending(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    until: Option<DateTime<Utc>>,
) -> AppResult<conversation::Model> {
    if let Some(until) = until
        && until <= Utc::now()
    {
        return Err(AppError::invalid(
            "pendingUntil",
            UserErrorCode::Invalid,
            "pendingUntil must be in the future",
        ));
    }
    act(
        db,
        principal,
        Permission::WorkConversations,
        conversation_id,
        event_types::PENDING,
        |current, active| {
            not_closed(current, "set it pending")?;
            if current.status == Status::Pending.as_str() && current.pending_until == until {
                return Ok(None);
            }
            active.status = Set(Status::Pending.as_str().into());
            active.pending_until = Set(until);
            Ok(Some(json!({ "pendingUntil": until })))
        },
    )
    .await
}

/// Closes an open or pending conversation with an optional reason. An inbound conversation that
/// no person answered and that has no assignee when it is closed is also recorded as abandoned.
pub async fn close(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    reason: Option<&str>,
) -> AppResult<conversation::Model> {
    let mut errors = Errors::default();
    let reason = errors.optional_text("reason", reason, MAX_CLOSE_REASON);
    errors.finish()?;
    act(
        db,
        principal,
        Permission::WorkConversations,
        conversation_id,
        event_types::CLOSED,
        |current, active| {
            if current.status == Status::Closed.as_str() {
                return Err(invalid_state(format!(
                    "conversation {} is already closed",
                    current.number
                )));
            }
            active.status = Set(Status::Closed.as_str().into());
            active.pending_until = Set(None);
            active.closed_at = Set(Some(Utc::now()));
            active.close_reason = Set(reason.clone());
            // Inbound, never answered by a person nor taken by anyone: abandoned.
            let abandoned = current.direction == "INBOUND"
                && current.first_response_at.is_none()
                && current.assignee_id.is_none();
            Ok(Some(
                json!({ "reason": reason, "from": current.status, "abandoned": abandoned }),
            ))
        },
    )
    .await
}

/// Reopens a closed or pending conversation.
pub async fn reopen(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
) -> AppResult<conversation::Model> {
    act(
        db,
        principal,
        Permission::WorkConversations,
        conversation_id,
        event_types::REOPENED,
        |current, active| {
            if current.status == Status::Open.as_str() {
                return Err(invalid_state(format!(
                    "conversation {} is already open",
                    current.number
                )));
            }
            if current.anonymized_at.is_some() {
                return Err(invalid_state(format!(
                    "conversation {} is anonymized",
                    current.number
                )));
            }
            active.status = Set(Status::Open.as_str().into());
            active.pending_until = Set(None);
            active.closed_at = Set(None);
            active.close_reason = Set(None);
            Ok(Some(json!({ "reason": "MANUAL", "from": current.status })))
        },
    )
    .await
}

/// Reopens pending conversations whose `pendingUntil` is at or before `now`, recording
/// `CONVERSATION_PENDING_EXPIRED` for each (no actor). Returns how many reopened.
pub async fn expire_pending(db: &DatabaseConnection, now: DateTime<Utc>) -> AppResult<usize> {
    let txn = db::begin_write(db).await?;
    let due = conversation::Entity::find()
        .filter(conversation::Column::Status.eq(Status::Pending.as_str()))
        .filter(conversation::Column::PendingUntil.lte(now))
        .all(&txn)
        .await?;
    for current in &due {
        let mut active = current.clone().into_active_model();
        active.status = Set(Status::Open.as_str().into());
        active.pending_until = Set(None);
        active.updated_at = Set(Utc::now());
        active.update(&txn).await?;
        events::record(
            &txn,
            current.org_id,
            None,
            event_types::PENDING_EXPIRED,
            subject(current.id),
            json!({ "pendingUntil": current.pending_until }),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(due.len())
}

/// Links a conversation to a parent (follow-up, side conversation, forward). A conversation can't
/// be its own parent or an ancestor of its parent (no cycles).
pub async fn link(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    parent_id: Uuid,
    link_type: LinkType,
) -> AppResult<conversation::Model> {
    principal.require(Permission::WorkConversations)?;
    if parent_id == conversation_id {
        return Err(AppError::invalid(
            "parentId",
            UserErrorCode::Invalid,
            "a conversation can't be linked to itself",
        ));
    }
    let org = principal.org_id;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, org, conversation_id, "conversationId").await?;
    let parent = find(&txn, org, parent_id, "parentId").await?;
    // Walk up from the parent: meeting the conversation means the link would close a cycle.
    let mut ancestor = parent.parent_id;
    let mut steps = 0;
    while let Some(id) = ancestor {
        if id == conversation_id {
            return Err(AppError::invalid(
                "parentId",
                UserErrorCode::Invalid,
                format!(
                    "conversation {} is linked below conversation {}: linking would make a cycle",
                    parent.number, current.number
                ),
            ));
        }
        steps += 1;
        if steps > 1_000 {
            return Err(AppError::internal("conversation link chain too long"));
        }
        ancestor = find(&txn, org, id, "parentId").await?.parent_id;
    }
    if current.parent_id == Some(parent_id)
        && current.link_type.as_deref() == Some(link_type.as_str())
    {
        return Ok(current);
    }
    let mut active = current.into_active_model();
    active.parent_id = Set(Some(parent_id));
    active.link_type = Set(Some(link_type.as_str().into()));
    active.updated_at = Set(Utc::now());
    let updated = active.update(&txn).await?;
    record(
        &txn,
        principal,
        updated.id,
        event_types::LINKED,
        json!({ "parentId": parent_id, "linkType": link_type.as_str() }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Removes a conversation's parent link.
pub async fn unlink(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
) -> AppResult<conversation::Model> {
    act(
        db,
        principal,
        Permission::WorkConversations,
        conversation_id,
        event_types::LINKED,
        |current, active| {
            if current.parent_id.is_none() {
                return Err(invalid_state(format!(
                    "conversation {} is not linked",
                    current.number
                )));
            }
            active.parent_id = Set(None);
            active.link_type = Set(None);
            Ok(Some(json!({ "parentId": null, "linkType": null })))
        },
    )
    .await
}

/// Sets the priority.
pub async fn set_priority(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    priority: Priority,
) -> AppResult<conversation::Model> {
    act(
        db,
        principal,
        Permission::WorkConversations,
        conversation_id,
        event_types::PRIORITY_CHANGED,
        |current, active| {
            if current.priority == priority.as_str() {
                return Ok(None);
            }
            active.priority = Set(priority.as_str().into());
            active.priority_rank = Set(priority.rank());
            Ok(Some(
                json!({ "from": current.priority, "to": priority.as_str() }),
            ))
        },
    )
    .await
}

/// Archives (hides from the default inbox) or unarchives a conversation.
pub async fn set_archived(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    archived: bool,
) -> AppResult<conversation::Model> {
    let event = if archived {
        event_types::ARCHIVED
    } else {
        event_types::UNARCHIVED
    };
    act(
        db,
        principal,
        Permission::WorkConversations,
        conversation_id,
        event,
        |current, active| {
            if current.archived_at.is_some() == archived {
                return Err(invalid_state(format!(
                    "conversation {} is {}",
                    current.number,
                    if archived {
                        "already archived"
                    } else {
                        "not archived"
                    }
                )));
            }
            active.archived_at = Set(archived.then(Utc::now));
            Ok(Some(json!({})))
        },
    )
    .await
}

/// Rates a conversation once (CSAT 1–5 or thumbs, optional comment).
pub async fn rate(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    rating: Rating,
    comment: Option<&str>,
) -> AppResult<conversation::Model> {
    let mut errors = Errors::default();
    let comment = errors.optional_text("comment", comment, MAX_RATING_COMMENT);
    let (rating_type, score) = match rating {
        Rating::Csat(score) => {
            if !(1..=5).contains(&score) {
                errors.add(
                    "csat",
                    UserErrorCode::Invalid,
                    format!("a CSAT score is 1 to 5, got {score}"),
                );
            }
            ("CSAT", score)
        }
        Rating::Thumbs(up) => ("THUMBS", i32::from(up)),
    };
    errors.finish()?;
    act(
        db,
        principal,
        Permission::WorkConversations,
        conversation_id,
        event_types::RATED,
        |current, active| {
            if current.rated_at.is_some() {
                return Err(invalid_state(format!(
                    "conversation {} is already rated",
                    current.number
                )));
            }
            active.rating_type = Set(Some(rating_type.into()));
            active.rating_score = Set(Some(score));
            active.rating_comment = Set(comment.clone());
            active.rated_at = Set(Some(Utc::now()));
            Ok(Some(json!({ "ratingType": rating_type, "score": score })))
        },
    )
    .await
}

/// Tag ids per conversation, for a batch of conversations.
pub async fn tag_ids<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    conversation_ids: &[Uuid],
) -> AppResult<std::collections::HashMap<Uuid, Vec<Uuid>>> {
    let rows = conversation_tag::Entity::find()
        .filter(conversation_tag::Column::OrgId.eq(org_id))
        .filter(conversation_tag::Column::ConversationId.is_in(conversation_ids.iter().copied()))
        .all(conn)
        .await?;
    let mut map: std::collections::HashMap<Uuid, Vec<Uuid>> = std::collections::HashMap::new();
    for row in rows {
        map.entry(row.conversation_id).or_default().push(row.tag_id);
    }
    Ok(map)
}

/// Adds (`add`) or removes tags on a conversation; one event per tag that changed. Adding needs
/// active tags; unknown tags are `NOT_FOUND` at `tagIds.<i>`.
pub async fn set_tags(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    tag_ids: &[Uuid],
    add: bool,
) -> AppResult<conversation::Model> {
    principal.require(Permission::WorkConversations)?;
    let org = principal.org_id;
    let tag_ids = tenancy::distinct(tag_ids);
    let txn = db::begin_write(db).await?;
    let current = find(&txn, org, conversation_id, "conversationId").await?;
    let tags = tenancy::require_all::<entity::tag::Entity, _>(
        &txn,
        org,
        &tag_ids,
        "tagIds",
        "no such tag",
    )
    .await?;
    if add {
        let inactive: Vec<_> = tag_ids
            .iter()
            .enumerate()
            .filter(|(_, id)| tags.get(id).is_some_and(|t| t.status != "ACTIVE"))
            .map(|(i, _)| {
                crate::error::FieldError::new(
                    &format!("tagIds.{i}"),
                    UserErrorCode::InvalidState,
                    "the tag is inactive",
                )
            })
            .collect();
        if !inactive.is_empty() {
            return Err(AppError::Validation(inactive));
        }
    }
    let existing = tag_ids_of(&txn, org, current.id).await?;
    let changed: Vec<Uuid> = tag_ids
        .iter()
        .copied()
        .filter(|id| existing.contains(id) != add)
        .collect();
    if changed.is_empty() {
        return Ok(current);
    }
    let now = Utc::now();
    if add {
        conversation_tag::Entity::insert_many(changed.iter().map(|tag_id| {
            conversation_tag::ActiveModel {
                conversation_id: Set(current.id),
                tag_id: Set(*tag_id),
                org_id: Set(org),
                created_at: Set(now),
            }
        }))
        .on_conflict(
            OnConflict::columns([
                conversation_tag::Column::ConversationId,
                conversation_tag::Column::TagId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    } else {
        conversation_tag::Entity::delete_many()
            .filter(conversation_tag::Column::ConversationId.eq(current.id))
            .filter(conversation_tag::Column::TagId.is_in(changed.iter().copied()))
            .exec(&txn)
            .await?;
    }
    let event = if add {
        event_types::TAG_ADDED
    } else {
        event_types::TAG_REMOVED
    };
    for tag_id in &changed {
        record(
            &txn,
            principal,
            current.id,
            event,
            json!({ "tagId": tag_id }),
        )
        .await?;
    }
    let mut active = current.into_active_model();
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

async fn tag_ids_of<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    conversation_id: Uuid,
) -> AppResult<Vec<Uuid>> {
    Ok(tag_ids(conn, org_id, &[conversation_id])
        .await?
        .remove(&conversation_id)
        .unwrap_or_default())
}

/// Sets custom attribute values (conversation attributes); `None` clears one.
pub async fn set_attributes(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    values: &[(String, Option<Value>)],
) -> AppResult<conversation::Model> {
    use crate::custom_attributes::service::{AttributeEntity, TypedValue};
    use entity::conversation_attribute_value as value;
    principal.require(Permission::WorkConversations)?;
    let org = principal.org_id;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, org, conversation_id, "conversationId").await?;
    let definitions = crate::custom_attributes::service::list(
        &txn,
        principal,
        AttributeEntity::Conversation,
        true,
    )
    .await?;
    let checked = crate::contacts::service::check_attribute_values_of(
        "conversation",
        &definitions,
        values,
        "values",
    )?;
    let now = Utc::now();
    for (definition, typed) in &checked {
        value::Entity::delete_many()
            .filter(value::Column::ConversationId.eq(current.id))
            .filter(value::Column::DefinitionId.eq(definition.id))
            .exec(&txn)
            .await?;
        let Some(typed) = typed else { continue };
        let mut row = value::ActiveModel {
            conversation_id: Set(current.id),
            definition_id: Set(definition.id),
            org_id: Set(org),
            identifier: Set(definition.identifier.clone()),
            text_value: Set(None),
            number_value: Set(None),
            bool_value: Set(None),
            date_value: Set(None),
            updated_at: Set(now),
        };
        match typed {
            TypedValue::Text(s) => row.text_value = Set(Some(s.clone())),
            TypedValue::Number(n) => row.number_value = Set(Some(*n)),
            TypedValue::Bool(b) => row.bool_value = Set(Some(*b)),
            TypedValue::Date(d) => row.date_value = Set(Some(*d)),
        }
        row.insert(&txn).await?;
    }
    let identifiers: Vec<&str> = checked.iter().map(|(d, _)| d.identifier.as_str()).collect();
    record(
        &txn,
        principal,
        current.id,
        event_types::ATTRIBUTES_SET,
        json!({ "identifiers": identifiers }),
    )
    .await?;
    let mut active = current.into_active_model();
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Attribute values per conversation, for a batch of conversations.
pub async fn attribute_values<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    conversation_ids: &[Uuid],
) -> AppResult<std::collections::HashMap<Uuid, Vec<entity::conversation_attribute_value::Model>>> {
    use entity::conversation_attribute_value as value;
    let rows = value::Entity::find()
        .filter(value::Column::OrgId.eq(org_id))
        .filter(value::Column::ConversationId.is_in(conversation_ids.iter().copied()))
        .all(conn)
        .await?;
    let mut map: std::collections::HashMap<Uuid, Vec<value::Model>> =
        std::collections::HashMap::new();
    for row in rows {
        map.entry(row.conversation_id).or_default().push(row);
    }
    Ok(map)
}

async fn add_participant_rows<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    conversation: &conversation::Model,
    contact_ids: &[Uuid],
    user_ids: &[Uuid],
) -> AppResult<Vec<Uuid>> {
    let existing: Vec<Uuid> = conversation_participant::Entity::find()
        .filter(conversation_participant::Column::ConversationId.eq(conversation.id))
        .all(conn)
        .await?
        .into_iter()
        .map(|p| p.participant_id)
        .collect();
    let now = Utc::now();
    let mut added = Vec::new();
    let wanted = contact_ids
        .iter()
        .map(|id| ("CONTACT", *id))
        .chain(user_ids.iter().map(|id| ("USER", *id)));
    for (kind, id) in wanted {
        if existing.contains(&id) {
            continue;
        }
        conversation_participant::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(conversation.org_id),
            conversation_id: Set(conversation.id),
            participant_kind: Set(kind.into()),
            participant_id: Set(id),
            added_by: Set(Some(principal.user_id())),
            created_at: Set(now),
        }
        .insert(conn)
        .await?;
        record(
            conn,
            principal,
            conversation.id,
            event_types::PARTICIPANT_ADDED,
            json!({ "participantKind": kind, "participantId": id }),
        )
        .await?;
        added.push(id);
    }
    Ok(added)
}

/// Adds contacts and users to a group conversation (already present ones are skipped).
pub async fn add_participants(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    contact_ids: &[Uuid],
    user_ids: &[Uuid],
) -> AppResult<conversation::Model> {
    principal.require(Permission::WorkConversations)?;
    if contact_ids.len() + user_ids.len() > MAX_PARTICIPANTS {
        return Err(AppError::invalid(
            "contactIds",
            UserErrorCode::TooLong,
            format!("at most {MAX_PARTICIPANTS} participants at once"),
        ));
    }
    let org = principal.org_id;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, org, conversation_id, "conversationId").await?;
    if current.kind != Kind::Group.as_str() {
        return Err(invalid_state(format!(
            "conversation {} is not a GROUP conversation",
            current.number
        )));
    }
    not_closed(&current, "add participants")?;
    let contact_ids = tenancy::distinct(contact_ids);
    let user_ids = tenancy::distinct(user_ids);
    tenancy::require_all::<entity::contact::Entity, _>(
        &txn,
        org,
        &contact_ids,
        "contactIds",
        "no such contact",
    )
    .await?;
    tenancy::require_all::<user::Entity, _>(&txn, org, &user_ids, "userIds", "no such user")
        .await?;
    let added = add_participant_rows(&txn, principal, &current, &contact_ids, &user_ids).await?;
    if added.is_empty() {
        return Ok(current);
    }
    let mut active = current.into_active_model();
    active.updated_at = Set(Utc::now());
    let updated = active.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Removes participants (contacts or users) from a group conversation. Ids that are not
/// participants are `NOT_FOUND` at `participantIds.<i>`.
pub async fn remove_participants(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    participant_ids: &[Uuid],
) -> AppResult<conversation::Model> {
    principal.require(Permission::WorkConversations)?;
    let org = principal.org_id;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, org, conversation_id, "conversationId").await?;
    if current.kind != Kind::Group.as_str() {
        return Err(invalid_state(format!(
            "conversation {} is not a GROUP conversation",
            current.number
        )));
    }
    let ids = tenancy::distinct(participant_ids);
    let present = conversation_participant::Entity::find()
        .filter(conversation_participant::Column::ConversationId.eq(current.id))
        .filter(conversation_participant::Column::ParticipantId.is_in(ids.iter().copied()))
        .all(&txn)
        .await?;
    let missing: Vec<_> = ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !present.iter().any(|p| p.participant_id == **id))
        .map(|(i, _)| {
            crate::error::FieldError::new(
                &format!("participantIds.{i}"),
                UserErrorCode::NotFound,
                "not a participant of this conversation",
            )
        })
        .collect();
    if !missing.is_empty() {
        return Err(AppError::Validation(missing));
    }
    conversation_participant::Entity::delete_many()
        .filter(conversation_participant::Column::ConversationId.eq(current.id))
        .filter(conversation_participant::Column::ParticipantId.is_in(ids.iter().copied()))
        .exec(&txn)
        .await?;
    for p in &present {
        record(
            &txn,
            principal,
            current.id,
            event_types::PARTICIPANT_REMOVED,
            json!({ "participantKind": p.participant_kind, "participantId": p.participant_id }),
        )
        .await?;
    }
    let mut active = current.into_active_model();
    active.updated_at = Set(Utc::now());
    let updated = active.update(&txn).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Participants per conversation, for a batch of conversations (oldest first).
pub async fn participants<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    conversation_ids: &[Uuid],
) -> AppResult<std::collections::HashMap<Uuid, Vec<conversation_participant::Model>>> {
    use sea_orm::QueryOrder;
    let rows = tenancy::in_org::<conversation_participant::Entity>(org_id)
        .filter(
            conversation_participant::Column::ConversationId
                .is_in(conversation_ids.iter().copied()),
        )
        .order_by_asc(conversation_participant::Column::CreatedAt)
        .all(conn)
        .await?;
    let mut map: std::collections::HashMap<Uuid, Vec<conversation_participant::Model>> =
        std::collections::HashMap::new();
    for row in rows {
        map.entry(row.conversation_id).or_default().push(row);
    }
    Ok(map)
}

/// Marks a conversation read by the calling user up to `at` (default now); never moves back.
pub async fn mark_read(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    at: Option<DateTime<Utc>>,
) -> AppResult<conversation::Model> {
    principal.require(Permission::WorkConversations)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, conversation_id, "conversationId").await?;
    let at = at.unwrap_or_else(Utc::now).min(Utc::now());
    crate::messages::service::mark_read(
        &txn,
        &current,
        Party::User(principal.user_id()),
        at,
        Some(principal.user_id()),
    )
    .await?;
    txn.commit().await?;
    Ok(current)
}

/// Moves `reader`'s read position in `conversation` forward to `at` (never back).
pub async fn set_read_position<C: ConnectionTrait>(
    conn: &C,
    conversation: &conversation::Model,
    reader: Party,
    at: DateTime<Utc>,
) -> AppResult<()> {
    let reader_id = match reader {
        Party::User(id) | Party::Contact(id) => id,
        Party::System => return Ok(()),
    };
    let existing = conversation_read::Entity::find_by_id((conversation.id, reader_id))
        .one(conn)
        .await?;
    match existing {
        Some(row) if row.last_read_at >= at => {}
        Some(row) => {
            let mut active = row.into_active_model();
            active.last_read_at = Set(at);
            active.update(conn).await?;
        }
        None => {
            conversation_read::ActiveModel {
                conversation_id: Set(conversation.id),
                reader_id: Set(reader_id),
                org_id: Set(conversation.org_id),
                reader_kind: Set(reader.kind().into()),
                last_read_at: Set(at),
            }
            .insert(conn)
            .await?;
        }
    }
    Ok(())
}

/// Which conversations the inbox lists. Empty lists and `None` don't filter.
#[derive(Clone, Debug, Default)]
pub struct ConversationFilter {
    /// In one of these statuses.
    pub statuses: Vec<Status>,
    /// On one of these channels.
    pub channel_ids: Vec<Uuid>,
    /// On channels of one of these types (stored names).
    pub channel_types: Vec<&'static str>,
    /// In one of these queues.
    pub queue_ids: Vec<Uuid>,
    /// Assigned to one of these users …
    pub assignee_ids: Vec<Uuid>,
    /// … or to the caller …
    pub assigned_to_me: bool,
    /// … or to nobody.
    pub unassigned: bool,
    /// Assigned to a member of this team.
    pub team_id: Option<Uuid>,
    /// Carrying at least one of these tags.
    pub tag_ids: Vec<Uuid>,
    /// With this requester.
    pub requester_id: Option<Uuid>,
    /// With one of these priorities.
    pub priorities: Vec<Priority>,
    /// Of this kind.
    pub kind: Option<Kind>,
    /// Archived (`true`) or not (`false`, the default).
    pub archived: bool,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
    /// Updated at or after.
    pub updated_after: Option<DateTime<Utc>>,
    /// Updated before.
    pub updated_before: Option<DateTime<Utc>>,
}

/// How the inbox is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderField {
    /// By the last message's time.
    LastMessageAt,
    /// By creation time.
    CreatedAt,
    /// By priority (then id).
    Priority,
    /// By how long the contact has waited for an answer (not waiting counts as zero).
    WaitingTime,
}

/// The conversations of the caller's organization matching `filter`, as a select.
pub fn filtered(
    principal: &Principal,
    filter: ConversationFilter,
) -> sea_orm::Select<conversation::Entity> {
    use conversation::Column as C;
    use sea_orm::Condition;
    use sea_orm::sea_query::Query;
    let org = principal.org_id;
    let mut select = tenancy::in_org::<conversation::Entity>(org);
    if !filter.statuses.is_empty() {
        select = select.filter(C::Status.is_in(filter.statuses.iter().map(|s| s.as_str())));
    }
    if !filter.channel_ids.is_empty() {
        select = select.filter(C::ChannelId.is_in(filter.channel_ids));
    }
    if !filter.channel_types.is_empty() {
        select = select.filter(C::ChannelType.is_in(filter.channel_types));
    }
    if !filter.queue_ids.is_empty() {
        select = select.filter(C::QueueId.is_in(filter.queue_ids));
    }
    if !filter.assignee_ids.is_empty() || filter.assigned_to_me || filter.unassigned {
        let mut ids = filter.assignee_ids;
        if filter.assigned_to_me {
            ids.push(principal.user_id());
        }
        let mut any = Condition::any();
        if !ids.is_empty() {
            any = any.add(C::AssigneeId.is_in(ids));
        }
        if filter.unassigned {
            any = any.add(C::AssigneeId.is_null());
        }
        select = select.filter(any);
    }
    if let Some(team_id) = filter.team_id {
        select = select.filter(
            C::AssigneeId.in_subquery(
                Query::select()
                    .column(entity::team_member::Column::UserId)
                    .from(entity::team_member::Entity)
                    .and_where(entity::team_member::Column::OrgId.eq(org))
                    .and_where(entity::team_member::Column::TeamId.eq(team_id))
                    .to_owned(),
            ),
        );
    }
    if !filter.tag_ids.is_empty() {
        select = select.filter(
            C::Id.in_subquery(
                Query::select()
                    .column(conversation_tag::Column::ConversationId)
                    .from(conversation_tag::Entity)
                    .and_where(conversation_tag::Column::OrgId.eq(org))
                    .and_where(conversation_tag::Column::TagId.is_in(filter.tag_ids))
                    .to_owned(),
            ),
        );
    }
    if let Some(requester_id) = filter.requester_id {
        select = select.filter(C::RequesterId.eq(requester_id));
    }
    if !filter.priorities.is_empty() {
        select = select.filter(C::Priority.is_in(filter.priorities.iter().map(|p| p.as_str())));
    }
    if let Some(kind) = filter.kind {
        select = select.filter(C::Kind.eq(kind.as_str()));
    }
    select = if filter.archived {
        select.filter(C::ArchivedAt.is_not_null())
    } else {
        select.filter(C::ArchivedAt.is_null())
    };
    if let Some(at) = filter.created_after {
        select = select.filter(C::CreatedAt.gte(at));
    }
    if let Some(at) = filter.created_before {
        select = select.filter(C::CreatedAt.lt(at));
    }
    if let Some(at) = filter.updated_after {
        select = select.filter(C::UpdatedAt.gte(at));
    }
    if let Some(at) = filter.updated_before {
        select = select.filter(C::UpdatedAt.lt(at));
    }
    select
}

/// The sort of an inbox ordering. Waiting time descending (longest first) is ascending
/// `waiting_key`.
pub fn sort(
    field: OrderField,
    direction: crate::graphql::relay::SortDirection,
) -> crate::graphql::relay::Sort<conversation::Entity> {
    use crate::graphql::relay::{Sort, SortDirection, SortValue};
    use conversation::Column as C;
    match field {
        OrderField::LastMessageAt => Sort {
            name: "lastMessageAt",
            column: C::LastMessageAt,
            direction,
            value: |m| SortValue::Time(m.last_message_at),
        },
        OrderField::CreatedAt => Sort {
            name: "createdAt",
            column: C::CreatedAt,
            direction,
            value: |m| SortValue::Time(m.created_at),
        },
        OrderField::Priority => Sort {
            name: "priority",
            column: C::PriorityRank,
            direction,
            value: |m| SortValue::Int(i64::from(m.priority_rank)),
        },
        OrderField::WaitingTime => Sort {
            name: "waitingTime",
            column: C::WaitingKey,
            direction: match direction {
                SortDirection::Asc => SortDirection::Desc,
                SortDirection::Desc => SortDirection::Asc,
            },
            value: |m| SortValue::Time(m.waiting_key),
        },
    }
}
