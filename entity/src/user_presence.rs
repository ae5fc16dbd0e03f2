use sea_orm::entity::prelude::*;

/// A user's presence: connection status (kept across server instances), the presence status the
/// user chose, the channel types they take and how many open conversations of each at once.
/// A user without a row is offline, working, takes no channel type and has no capacity set.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_presence")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub org_id: Uuid,
    /// `ONLINE` or `OFFLINE`. Online while a websocket of the user is connected anywhere, and
    /// for the grace period after the last one ended (until `offline_at`).
    pub connection_status: String,
    /// `WORKING`, `AWAY` or `BUSY`, set by the user (or an admin).
    pub presence_status: String,
    /// Comma-separated channel types the user takes, e.g. `EMAIL,CHAT`.
    pub active_channels: String,
    /// JSON object: channel type to the number of open conversations taken at once.
    pub capacity: Json,
    /// Last connect, disconnect, renewal while connected, or presence change.
    pub last_seen: Option<DateTimeUtc>,
    /// While online without a connection: when the user goes offline.
    pub offline_at: Option<DateTimeUtc>,
    /// While online: when the current online stretch began (the first connection after being
    /// offline). Kept after going offline until the next stretch.
    pub online_since: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id"
    )]
    User,
}

impl ActiveModelBehavior for ActiveModel {}
