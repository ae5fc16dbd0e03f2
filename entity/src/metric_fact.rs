use sea_orm::entity::prelude::*;

/// One measured occurrence of a metric (a conversation created, a first response, a rating…):
/// the raw data metrics are computed from when rollups can't answer (percentiles, tags, zones
/// off whole-hour offsets). Dimensions are the values when the occurrence happened.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "metric_facts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    /// Metric id of the catalog.
    pub metric: String,
    /// When it happened, in milliseconds since the Unix epoch (UTC).
    pub at_ms: i64,
    pub conversation_id: Option<Uuid>,
    pub channel_id: Option<Uuid>,
    pub channel_type: Option<String>,
    pub queue_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    /// `INBOUND` or `OUTBOUND`.
    pub direction: Option<String>,
    /// The measured value (1 for counts, seconds for durations, 0 or 100 for shares).
    pub value: f64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
