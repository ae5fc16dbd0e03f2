use sea_orm::entity::prelude::*;

/// One domain event, written in the same transaction as the change it describes.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    /// Global, increasing sequence: the cursor of event streams.
    #[sea_orm(primary_key)]
    pub seq: i64,
    #[sea_orm(unique)]
    pub id: Uuid,
    pub org_id: Uuid,
    /// Upper-snake name, e.g. `USER_CREATED`.
    pub event_type: String,
    /// Kind of the subject, e.g. `User`.
    pub subject_type: String,
    pub subject_id: Uuid,
    /// The user who caused it; `None` for the system.
    pub actor_user_id: Option<Uuid>,
    pub payload: Json,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
