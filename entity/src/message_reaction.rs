use sea_orm::entity::prelude::*;

/// A reaction to a message.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "message_reactions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub message_id: Uuid,
    /// `USER` or `CONTACT`.
    pub reactor_kind: String,
    pub reactor_id: Uuid,
    /// `LIKE`, `LOVE`, `LOL`, `WOW`, `SAD` or `DISLIKE`.
    pub reaction: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
