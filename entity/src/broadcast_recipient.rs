//! One contact of a broadcast's audience: the message sent to them, or why they were skipped.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "broadcast_recipients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub broadcast_id: Uuid,
    pub contact_id: Uuid,
    pub conversation_id: Option<Uuid>,
    pub message_id: Option<Uuid>,
    /// `QUEUED | SENT | DELIVERED | READ | FAILED | SKIPPED | CANCELLED`.
    pub status: String,
    /// Why skipped or failed before sending: `OPTED_OUT | NO_ADDRESS | RENDER_FAILED`.
    pub reason: Option<String>,
    /// The reason in words.
    pub detail: Option<String>,
    /// When the contact first wrote back after the broadcast's message.
    pub replied_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
