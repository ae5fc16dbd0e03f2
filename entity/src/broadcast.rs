//! A broadcast: one message (a template or a body) sent to an audience of contacts, groups and
//! segments on one channel, at the channel's send rate.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "broadcasts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    /// The channel it sends on (cleared when the channel is deleted).
    pub channel_id: Option<Uuid>,
    /// The template variant it renders per contact, or `None` for the body below.
    pub template_id: Option<Uuid>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    /// Extra template variables (JSON object).
    pub variables: Json,
    /// The audience: `{"contactIds": [...], "groupIds": [...]}`.
    pub audience: Json,
    /// `DRAFT | SCHEDULED | SENDING | PAUSED | COMPLETED | CANCELLED | FAILED`.
    pub status: String,
    pub scheduled_at: Option<DateTimeUtc>,
    pub started_at: Option<DateTimeUtc>,
    pub paused_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    pub cancelled_at: Option<DateTimeUtc>,
    pub failed_at: Option<DateTimeUtc>,
    pub failure_reason: Option<String>,
    /// When every contact of the audience had its recipient row.
    pub expanded_at: Option<DateTimeUtc>,
    /// The current expansion job's token: an older job that finds another one stops.
    pub job_token: Option<Uuid>,
    /// The last contact expanded (contacts are expanded in id order).
    pub cursor_contact_id: Option<Uuid>,
    /// Contacts in the audience when it started.
    pub audience_size: i64,
    pub recipients: i64,
    /// Recipients whose message is not sent yet.
    pub queued: i64,
    pub skipped: i64,
    pub sent: i64,
    pub delivered: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub replied: i64,
    /// When the last `BROADCAST_PROGRESS` event was recorded.
    pub progress_at: Option<DateTimeUtc>,
    /// Whether a progress job is waiting to record the next one.
    pub progress_pending: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
