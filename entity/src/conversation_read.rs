use sea_orm::entity::prelude::*;

/// How far a reader (user or contact) has read a conversation.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "conversation_reads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub conversation_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub reader_id: Uuid,
    pub org_id: Uuid,
    /// `USER` or `CONTACT`.
    pub reader_kind: String,
    pub last_read_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
