//! A recording of a recorded room, made when the room ended and then processed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "room_recordings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub room_id: Uuid,
    /// `PROCESSING | COMPLETED | FAILED`.
    pub status: String,
    /// 0–100.
    pub processing_percent: i32,
    /// Length in seconds (known once processed).
    pub duration_seconds: Option<i64>,
    /// Size in bytes (known once processed).
    pub size_bytes: Option<i64>,
    pub completed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
