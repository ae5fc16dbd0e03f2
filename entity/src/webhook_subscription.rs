//! A webhook subscription: where to POST which events, signed and authorized how.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub url: String,
    /// JSON list of event type names.
    pub event_types: Json,
    /// Signing secret, `whsec_` and base64 (Standard Webhooks).
    pub secret: String,
    /// `NONE BASIC BEARER`.
    pub auth_kind: String,
    pub auth_username: Option<String>,
    /// Basic password or bearer token.
    pub auth_secret: Option<String>,
    /// JSON object of extra request headers.
    pub headers: Json,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTimeUtc>,
    pub created_by: Option<Uuid>,
    /// Events up to this sequence have been turned into deliveries (or were not wanted).
    pub cursor_seq: i64,
    /// The job that dispatches this subscription's deliveries.
    pub dispatch_job_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
