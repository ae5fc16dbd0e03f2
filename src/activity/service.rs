//! Reads of the activity log: pages of conversation events in sequence order.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use entity::event;
use sea_orm::{ColumnTrait, DatabaseConnection, QueryFilter, QueryOrder, QuerySelect, Select};
use uuid::Uuid;

use crate::auth::{Permission, Principal};
use crate::error::{AppError, AppResult};
use crate::graphql::relay::{Page, PageArgs, SortDirection, TotalCount, finish_page, page_size};
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
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, direction, args).await?;
    Ok((page, total))
}

fn encode_cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("activity:{seq}"))
}

fn decode_cursor(cursor: &str) -> AppResult<i64> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("activity:")?.parse().ok())
        .ok_or_else(|| AppError::BadUserInput(format!("{cursor:?} is not a cursor of this list")))
}

/// Keyset pagination by `seq` alone (unique), so both backends seek with the `(org_id, seq)` or
/// `(subject_id, seq)` index instead of filtering a scan; same page arguments and limits as
/// every other connection.
async fn paginate(
    db: &DatabaseConnection,
    mut select: Select<event::Entity>,
    direction: SortDirection,
    args: &PageArgs,
) -> AppResult<Page<event::Model>> {
    let (size, backward) = page_size(args)?;
    let ascending = direction == SortDirection::Asc;
    if let Some(after) = &args.after {
        let seq = decode_cursor(after)?;
        select = select.filter(if ascending {
            event::Column::Seq.gt(seq)
        } else {
            event::Column::Seq.lt(seq)
        });
    }
    if let Some(before) = &args.before {
        let seq = decode_cursor(before)?;
        select = select.filter(if ascending {
            event::Column::Seq.lt(seq)
        } else {
            event::Column::Seq.gt(seq)
        });
    }
    let order = if ascending != backward {
        sea_orm::Order::Asc
    } else {
        sea_orm::Order::Desc
    };
    let rows = select
        .order_by(event::Column::Seq, order)
        .limit(size as u64 + 1)
        .all(db)
        .await?;
    Ok(finish_page(rows, size, backward, args, |m| {
        encode_cursor(m.seq)
    }))
}

/// A uuid in an event payload, if present.
pub fn payload_id(payload: &serde_json::Value, key: &str) -> Option<Uuid> {
    payload
        .get(key)
        .and_then(serde_json::Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}
