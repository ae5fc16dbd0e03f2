//! A reply an auto-responder (or the built-in SMS consent keywords) sent.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "auto_responder_replies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    /// The responder; `None` for a built-in consent confirmation (or a deleted responder).
    pub responder_id: Option<Uuid>,
    pub conversation_id: Uuid,
    /// The inbound message answered.
    pub inbound_message_id: Uuid,
    /// The reply.
    pub message_id: Uuid,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
