use sea_orm::entity::prelude::*;

/// A conversation with a contact (or a group) on a channel.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "conversations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    /// Per-organization sequential number (the human id).
    pub number: i64,
    pub channel_id: Option<Uuid>,
    /// `EMAIL`, `SMS`, … (see `ChannelType`).
    pub channel_type: String,
    /// `DIRECT` or `GROUP`.
    pub kind: String,
    /// `INBOUND` or `OUTBOUND`: who wrote first.
    pub direction: String,
    pub subject: Option<String>,
    /// `OPEN`, `PENDING` or `CLOSED`.
    pub status: String,
    pub pending_until: Option<DateTimeUtc>,
    pub close_reason: Option<String>,
    pub closed_at: Option<DateTimeUtc>,
    /// The contact who requested it.
    pub requester_id: Uuid,
    pub assignee_id: Option<Uuid>,
    pub assigned_at: Option<DateTimeUtc>,
    pub queue_id: Option<Uuid>,
    pub queued_at: Option<DateTimeUtc>,
    /// `LOW`, `NORMAL`, `HIGH` or `URGENT`.
    pub priority: String,
    /// Sort key of `priority` (higher is more urgent).
    pub priority_rank: i16,
    pub parent_id: Option<Uuid>,
    /// `FOLLOW_UP`, `SIDE_CONVERSATION` or `FORWARD` when `parent_id` is set.
    pub link_type: Option<String>,
    /// `CSAT` or `THUMBS` once rated.
    pub rating_type: Option<String>,
    /// 1–5 for CSAT; 0 (down) or 1 (up) for thumbs.
    pub rating_score: Option<i32>,
    pub rating_comment: Option<String>,
    pub rated_at: Option<DateTimeUtc>,
    pub first_response_at: Option<DateTimeUtc>,
    /// Time of the last message (creation time until the first).
    pub last_message_at: DateTimeUtc,
    pub last_message_id: Option<Uuid>,
    /// Since when the contact waits for an answer (last unanswered inbound message).
    pub waiting_since: Option<DateTimeUtc>,
    /// Sort key of waiting time: `waiting_since`, or the far future when nobody waits (waiting
    /// time zero), so longest-waiting-first is ascending order.
    pub waiting_key: DateTimeUtc,
    pub message_count: i64,
    pub archived_at: Option<DateTimeUtc>,
    pub anonymized_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
