use sea_orm::entity::prelude::*;

/// A server instance holding websocket connections (`presence_connections`): it renews
/// `expires_at` on each heartbeat, one row whatever the number of connections. When it stops
/// (it crashed), the row expires and any instance's sweep ends its connections at that time.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "presence_instances")]
pub struct Model {
    /// The instance (random per process).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
