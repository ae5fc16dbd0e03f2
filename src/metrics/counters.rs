//! Counters cheap enough for every page load: a user's unread (badge) counts, open conversations
//! per queue and status, and a contact's communication summary. Each is one or two indexed
//! statements.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::sql::Sql;
use crate::error::AppResult;

/// Unread counts of one queue (or of the user's own conversations when `queue_id` is none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unread {
    /// Conversations with messages the user hasn't read.
    pub conversations: i64,
    /// Messages the user hasn't read (not their own, not removed).
    pub messages: i64,
}

/// A user's unread counts: their own open conversations (assigned to them), and per queue they
/// are a member of, the unassigned open conversations waiting in it.
#[derive(Clone, Debug, Default)]
pub struct Badge {
    /// Assigned to the user.
    pub mine: Unread,
    /// Unassigned, per queue of the user.
    pub queues: Vec<(Uuid, Unread)>,
}

/// Unread counts of `user_id`, in one statement.
pub async fn badge<C: ConnectionTrait>(conn: &C, org_id: Uuid, user_id: Uuid) -> AppResult<Badge> {
    let mut sql = Sql::new(conn.get_database_backend());
    sql.push(
        "SELECT x.queue_id AS queue_id, x.mine AS mine, COUNT(*) AS conversations, \
         CAST(SUM(x.unread) AS BIGINT) AS messages FROM (SELECT c.queue_id AS queue_id, \
         CASE WHEN c.assignee_id IS NULL THEN 0 ELSE 1 END AS mine, \
         (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id \
          AND m.removed_at IS NULL AND (m.author_user_id IS NULL OR m.author_user_id <> ",
    )
    .bind(user_id)
    .push(
        ") AND (r.last_read_at IS NULL OR m.created_at > r.last_read_at)) AS unread \
         FROM conversations c LEFT JOIN conversation_reads r ON r.conversation_id = c.id \
         AND r.reader_id = ",
    )
    .bind(user_id)
    .push(" WHERE c.org_id = ")
    .bind(org_id)
    .push(" AND c.status <> 'CLOSED' AND (c.assignee_id = ")
    .bind(user_id)
    .push(
        " OR (c.assignee_id IS NULL AND c.queue_id IN \
         (SELECT queue_id FROM queue_members WHERE user_id = ",
    )
    .bind(user_id)
    .push("))) ) x WHERE x.unread > 0 GROUP BY x.queue_id, x.mine");
    let mut badge = Badge::default();
    let mut queues: HashMap<Uuid, Unread> = HashMap::new();
    for row in conn.query_all_raw(sql.statement()).await? {
        let queue: Option<Uuid> = row.try_get("", "queue_id")?;
        let mine: i32 = row.try_get("", "mine")?;
        let unread = Unread {
            conversations: row.try_get("", "conversations")?,
            messages: row.try_get::<Option<i64>>("", "messages")?.unwrap_or(0),
        };
        if mine == 1 {
            badge.mine.conversations += unread.conversations;
            badge.mine.messages += unread.messages;
        } else if let Some(queue) = queue {
            queues.insert(queue, unread);
        }
    }
    let mut queues: Vec<_> = queues.into_iter().collect();
    queues.sort_by_key(|(q, _)| *q);
    badge.queues = queues;
    Ok(badge)
}

/// Open and pending conversations per queue (none: not queued) and status, in one statement.
pub async fn open_by_queue<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
) -> AppResult<Vec<(Option<Uuid>, String, i64)>> {
    let mut sql = Sql::new(conn.get_database_backend());
    sql.push("SELECT queue_id, status, COUNT(*) AS n FROM conversations WHERE org_id = ")
        .bind(org_id)
        .push(" AND status IN ('OPEN', 'PENDING') GROUP BY queue_id, status");
    let mut out = Vec::new();
    for row in conn.query_all_raw(sql.statement()).await? {
        out.push((
            row.try_get("", "queue_id")?,
            row.try_get("", "status")?,
            row.try_get("", "n")?,
        ));
    }
    out.sort();
    Ok(out)
}

/// A contact's communication on one channel type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSummary {
    /// Channel type (stored name).
    pub channel_type: String,
    /// Conversations with the contact as requester.
    pub conversations: i64,
    /// Messages from the contact.
    pub inbound: i64,
    /// Messages to the contact.
    pub outbound: i64,
}

/// A contact's communication summary.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Per channel type.
    pub channels: Vec<ChannelSummary>,
    /// The latest message of the contact's conversations.
    pub last_message: Option<entity::message::Model>,
    /// When the first conversation started.
    pub first_contact_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The communication summary of `contact_id` (the requester of its conversations): two
/// statements.
pub async fn contact_summary<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    contact_id: Uuid,
) -> AppResult<Summary> {
    let mut sql = Sql::new(conn.get_database_backend());
    sql.push(
        "SELECT c.channel_type AS channel_type, COUNT(DISTINCT c.id) AS conversations, \
         COALESCE(SUM(CASE WHEN m.direction = 'INBOUND' THEN 1 ELSE 0 END), 0) AS inbound, \
         COALESCE(SUM(CASE WHEN m.direction = 'OUTBOUND' THEN 1 ELSE 0 END), 0) AS outbound \
         FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id \
         AND m.removed_at IS NULL WHERE c.org_id = ",
    )
    .bind(org_id)
    .push(" AND c.requester_id = ")
    .bind(contact_id)
    .push(" GROUP BY c.channel_type ORDER BY c.channel_type");
    let mut summary = Summary::default();
    for row in conn.query_all_raw(sql.statement()).await? {
        summary.channels.push(ChannelSummary {
            channel_type: row.try_get("", "channel_type")?,
            conversations: row.try_get("", "conversations")?,
            inbound: row.try_get("", "inbound")?,
            outbound: row.try_get("", "outbound")?,
        });
    }
    if summary.channels.is_empty() {
        return Ok(summary);
    }
    use entity::conversation::{Column as C, Entity as Conversations};
    let first = Conversations::find()
        .filter(C::OrgId.eq(org_id))
        .filter(C::RequesterId.eq(contact_id))
        .order_by_asc(C::CreatedAt)
        .one(conn)
        .await?;
    summary.first_contact_at = first.map(|c| c.created_at);
    let last = Conversations::find()
        .filter(C::OrgId.eq(org_id))
        .filter(C::RequesterId.eq(contact_id))
        .order_by_desc(C::LastMessageAt)
        .one(conn)
        .await?;
    if let Some(id) = last.and_then(|c| c.last_message_id) {
        summary.last_message = entity::message::Entity::find_by_id(id)
            .filter(entity::message::Column::OrgId.eq(org_id))
            .one(conn)
            .await?;
    }
    Ok(summary)
}
