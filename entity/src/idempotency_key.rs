use sea_orm::entity::prelude::*;

/// A mutation request sent with an `Idempotency-Key` header, and its response for replay.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_id: Uuid,
    /// The client's key; unique per user.
    pub key: String,
    /// SHA-256 of the request body: a key reused with another request is refused.
    pub request_hash: String,
    /// `PENDING` while the first request runs, then `DONE`.
    pub status: String,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub response_content_type: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
