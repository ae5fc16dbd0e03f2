//! The event log: every state change writes one row here in the same transaction as the change.
//! Subscriptions (through [`crate::live::bus`]), the activity and audit logs read it.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
use serde_json::Value;
use uuid::Uuid;

use crate::error::AppResult;

/// What an event is about.
#[derive(Clone, Copy, Debug)]
pub struct Subject {
    /// Kind of the subject, as in the GraphQL type name (`User`, `Organization`, `ApiToken`).
    pub kind: &'static str,
    /// Its id.
    pub id: Uuid,
}

impl Subject {
    /// A subject of kind `kind`.
    pub fn new(kind: &'static str, id: Uuid) -> Self {
        Self { kind, id }
    }
}

/// Appends an event. Call it with the transaction that makes the change (a write transaction of
/// [`crate::db::begin_write`], which on PostgreSQL orders event writers and notifies the event
/// bus when the transaction commits).
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    actor_user_id: Option<Uuid>,
    event_type: &str,
    subject: Subject,
    payload: Value,
) -> AppResult<entity::event::Model> {
    let model = entity::event::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(org_id),
        event_type: Set(event_type.to_string()),
        subject_type: Set(subject.kind.to_string()),
        subject_id: Set(subject.id),
        actor_user_id: Set(actor_user_id),
        payload: Set(payload),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    // Metric facts and rollups move with the change they measure.
    crate::metrics::rollup::on_event(conn, &model).await?;
    Ok(model)
}
