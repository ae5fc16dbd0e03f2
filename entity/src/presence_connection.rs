use sea_orm::entity::prelude::*;

/// A websocket connection of a user held by a server instance, deleted when it ends. It lives as
/// long as its instance's row in `presence_instances`: the connections of an instance that
/// stopped renewing that row (it crashed) expire with it and are swept by any instance.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "presence_connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_id: Uuid,
    /// The API token the connection authenticated with.
    pub token_id: Uuid,
    /// The server instance holding the connection (random per process).
    pub instance_id: Uuid,
    pub connected_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
