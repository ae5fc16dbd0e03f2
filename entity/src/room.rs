//! A room: a voice conference or a video room, open now or scheduled, with participants and
//! (when recorded) recordings.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rooms")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    /// `VOICE | VIDEO`.
    pub kind: String,
    pub name: String,
    /// `SCHEDULED | OPEN | COMPLETED | TERMINATED | FAILED`.
    pub state: String,
    /// When it starts (its creation time when opened at once).
    pub starts_at: DateTimeUtc,
    /// Planned length.
    pub duration_minutes: i32,
    /// `starts_at` + `duration_minutes`: it completes then.
    pub ends_at: DateTimeUtc,
    /// Most participants connected at once.
    pub max_participants: i32,
    /// Whether it is recorded (a recording is made when it ends).
    pub recorded: bool,
    /// The conversation it belongs to, if any.
    pub conversation_id: Option<Uuid>,
    /// Key of the participants' provider credentials (HMAC-SHA256). Never exposed.
    pub secret: String,
    pub opened_at: Option<DateTimeUtc>,
    /// When the first participant connected.
    pub first_connected_at: Option<DateTimeUtc>,
    /// When the last connected participant left (cleared when someone joins).
    pub empty_since: Option<DateTimeUtc>,
    /// When it completed, was terminated or failed.
    pub ended_at: Option<DateTimeUtc>,
    pub failure_reason: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
