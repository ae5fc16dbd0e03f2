use sea_orm::entity::prelude::*;

/// An organization's endpoint on one medium.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "channels")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    /// `EMAIL`, `SMS`, … (see `ChannelType`).
    pub channel_type: String,
    pub name: String,
    /// Email address, E.164 number or widget key, by type.
    pub address: String,
    /// Array of `SMS`, `MMS`, `VOICE_INBOUND`, `VOICE_OUTBOUND`.
    pub capabilities: Json,
    /// `simulator`, `webhook` or `smtp`.
    pub provider: String,
    pub provider_settings: Json,
    /// Outbound messages per second.
    pub send_rate_per_second: f64,
    pub default_queue_id: Option<Uuid>,
    pub business_hours: Option<Json>,
    pub auto_reply: Option<String>,
    /// `ACTIVE` or `ARCHIVED`.
    pub status: String,
    /// `whsec_…` secret signing ingest requests and webhook-provider sends; null until rotated
    /// for channels created before it existed (their ingest requests are refused).
    pub ingest_secret: Option<String>,
    /// Voice price per minute, in millionths of `call_currency` (price estimates of calls).
    pub call_rate_micros: Option<i64>,
    /// ISO 4217 currency of `call_rate_micros`.
    pub call_currency: Option<String>,
    pub archived_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
