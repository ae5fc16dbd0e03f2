//! An offer of a queued conversation to an agent.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversation_offers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub conversation_id: Uuid,
    pub queue_id: Uuid,
    pub user_id: Uuid,
    /// Offered to this agent alone (one-at-a-time algorithms).
    pub single: bool,
    /// `PENDING ACCEPTED DECLINED TIMED_OUT WITHDRAWN`.
    pub status: String,
    pub offered_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub answered_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
