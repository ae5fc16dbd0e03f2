use sea_orm::entity::prelude::*;

/// A unit of durable background work.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The organization it works for, when any.
    pub org_id: Option<Uuid>,
    /// Which handler runs it, e.g. `message.deliver`.
    pub kind: String,
    pub payload: Json,
    /// `QUEUED`, `RUNNING`, `SUCCEEDED` or `FAILED`.
    pub status: String,
    /// Not before this time.
    pub run_at: DateTimeUtc,
    /// Attempts started so far.
    pub attempts: i32,
    pub max_attempts: i32,
    /// The claim holding it while `RUNNING`.
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
