//! Reads of the activity log: pages of conversation events in sequence order.

use chrono::{DateTime, Utc};
use entity::event;
use sea_orm::{ColumnTrait, DatabaseConnection, QueryFilter};
use uuid::Uuid;

use crate::auth::{Permission, Principal};
use crate::error::{AppError, AppResult};
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::tenancy::{self, OrgScoped};

/// Events belong to one organization; entries are looked up by the event's id.
impl OrgScoped for event::Entity {
    fn org_column() -> Self::Column {
        event::Column::OrgId
    }
    fn id_column() -> Self::Column {
        event::Column::Id
    }
    fn model_id(model: &Self::Model) -> Uuid {
        model.id
    }
}

/// Which entries to list. All given conditions must hold.
#[derive(Clone, Debug, Default)]
pub struct ActivityFilter {
    /// Event types to include (activity types only; all of them when empty).
    pub event_types: Vec<&'static str>,
    /// Entries of this conversation.
    pub conversation_id: Option<Uuid>,
    /// Entries caused by this user.
    pub actor_id: Option<Uuid>,
    /// Entries at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Entries before this time.
    pub to: Option<DateTime<Utc>>,
}

/// One page of the caller's organization's activity (AGENT), in sequence order (`Asc`: oldest
/// first). `all_types` are the event types that are activity; `filter.event_types` narrows them.
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    all_types: &[&'static str],
    filter: ActivityFilter,
    direction: SortDirection,
    args: &PageArgs,
) -> AppResult<(Page<event::Model>, TotalCount)> {
    principal.require(Permission::WorkConversations)?;
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from > to
    {
        return Err(AppError::BadUserInput(
            "`from` must not be after `to`".into(),
        ));
    }
    let types: Vec<&str> = if filter.event_types.is_empty() {
        all_types.to_vec()
    } else {
        filter.event_types
    };
    let mut select = tenancy::in_org::<event::Entity>(principal.org_id)
        .filter(event::Column::SubjectType.eq(crate::conversations::SUBJECT))
        .filter(event::Column::EventType.is_in(types));
    if let Some(id) = filter.conversation_id {
        select = select.filter(event::Column::SubjectId.eq(id));
    }
    if let Some(actor) = filter.actor_id {
        select = select.filter(event::Column::ActorUserId.eq(actor));
    }
    if let Some(from) = filter.from {
        select = select.filter(event::Column::CreatedAt.gte(from));
    }
    if let Some(to) = filter.to {
        select = select.filter(event::Column::CreatedAt.lt(to));
    }
    let sort = Sort {
        name: "SEQ",
        column: event::Column::Seq,
        direction,
        value: |m: &event::Model| SortValue::Int(m.seq),
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "activity", &sort, args).await?;
    Ok((page, total))
}

/// A uuid in an event payload, if present.
pub fn payload_id(payload: &serde_json::Value, key: &str) -> Option<Uuid> {
    payload
        .get(key)
        .and_then(serde_json::Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}
