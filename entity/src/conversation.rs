use sea_orm::entity::prelude::*;

/// A conversation with a contact (core columns; the inbox extends them).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    /// Per-organization sequential number (the human id).
    pub number: i64,
    /// The contact who requested it.
    pub requester_id: Uuid,
    /// `EMAIL`, `SMS`, … (see `ChannelType`).
    pub channel_type: String,
    pub subject: Option<String>,
    /// `OPEN`, `PENDING` or `CLOSED`.
    pub status: String,
    pub close_reason: Option<String>,
    pub closed_at: Option<DateTimeUtc>,
    pub anonymized_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
