//! An auto-responder: a reply a channel sends by itself to inbound messages that match.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "auto_responders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub channel_id: Uuid,
    pub name: String,
    /// `KEYWORD OUT_OF_HOURS FIRST_MESSAGE OPT_OUT OPT_IN`.
    pub trigger: String,
    /// `EXACT CONTAINS` (keyword responders).
    pub match_kind: Option<String>,
    /// JSON list of keywords (keyword responders).
    pub keywords: Json,
    /// The reply's text.
    pub body: String,
    /// Business hours (out-of-hours responders; the channel's when absent).
    pub business_hours: Option<Json>,
    pub starts_at: Option<DateTimeUtc>,
    pub ends_at: Option<DateTimeUtc>,
    pub enabled: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
