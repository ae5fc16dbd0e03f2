use sea_orm::entity::prelude::*;

/// A user's membership of a queue, with the priority offers follow.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "queue_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub queue_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub org_id: Uuid,
    /// Lower number first.
    pub priority: i32,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
