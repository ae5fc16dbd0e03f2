use sea_orm::entity::prelude::*;

/// The facts of one metric in one UTC hour for one tuple of dimensions at one grain (which
/// dimensions the row keeps; the others hold the nil UUID or the empty string).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "metric_rollups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub metric: String,
    /// Which dimensions the row keeps (see `switchboard::metrics::rollup::Grain`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub grain: i16,
    /// Hours since the Unix epoch (UTC).
    #[sea_orm(primary_key, auto_increment = false)]
    pub hour: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub channel_id: Uuid,
    pub channel_type: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub queue_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub direction: String,
    pub count: i64,
    pub sum: f64,
    pub sum_sq: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
