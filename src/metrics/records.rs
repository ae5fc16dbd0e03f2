//! Analytics records (Dixa's records): one row per conversation with its timings and counts, as a
//! filterable connection. A record is a view of the conversation row (kept current by the
//! inbox), with its message counts read for the page in one grouped statement.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, QueryFilter};
use uuid::Uuid;

use super::sql::Sql;
use crate::auth::Permission;
use crate::auth::Principal;
use crate::error::AppResult;
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use entity::conversation;

/// Which records to list (all conditions hold together; lists match any of their values).
#[derive(Clone, Debug, Default)]
pub struct RecordFilter {
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before.
    pub created_to: Option<DateTime<Utc>>,
    /// Channels.
    pub channel_ids: Option<Vec<Uuid>>,
    /// Channel types (stored names).
    pub channel_types: Option<Vec<String>>,
    /// Queues.
    pub queue_ids: Option<Vec<Uuid>>,
    /// Assignees.
    pub assignee_ids: Option<Vec<Uuid>>,
    /// Teams of the assignee.
    pub team_ids: Option<Vec<Uuid>>,
    /// Any of these tags.
    pub tag_ids: Option<Vec<Uuid>>,
    /// Direction (stored name).
    pub direction: Option<String>,
    /// Statuses (stored names).
    pub statuses: Option<Vec<String>>,
    /// Rated or not.
    pub rated: Option<bool>,
}

fn sort() -> Sort<conversation::Entity> {
    Sort {
        name: "createdAt",
        column: conversation::Column::CreatedAt,
        direction: SortDirection::Desc,
        value: |m| SortValue::Time(m.created_at),
    }
}

/// A page of records, newest first, and the counter of all of them.
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: RecordFilter,
    args: &PageArgs,
) -> AppResult<(Page<conversation::Model>, TotalCount)> {
    use conversation::Column as C;
    principal.require(Permission::ManageRouting)?;
    let org = principal.org_id;
    let mut cond = Condition::all();
    if let Some(t) = filter.created_from {
        cond = cond.add(C::CreatedAt.gte(t));
    }
    if let Some(t) = filter.created_to {
        cond = cond.add(C::CreatedAt.lt(t));
    }
    if let Some(ids) = filter.channel_ids {
        cond = cond.add(C::ChannelId.is_in(ids));
    }
    if let Some(types) = filter.channel_types {
        cond = cond.add(C::ChannelType.is_in(types));
    }
    if let Some(ids) = filter.queue_ids {
        cond = cond.add(C::QueueId.is_in(ids));
    }
    if let Some(ids) = filter.assignee_ids {
        cond = cond.add(C::AssigneeId.is_in(ids));
    }
    if let Some(ids) = filter.team_ids {
        cond = cond.add(
            C::AssigneeId.in_subquery(
                Query::select()
                    .column(entity::team_member::Column::UserId)
                    .from(entity::team_member::Entity)
                    .and_where(Expr::col(entity::team_member::Column::OrgId).eq(org))
                    .and_where(Expr::col(entity::team_member::Column::TeamId).is_in(ids))
                    .to_owned(),
            ),
        );
    }
    if let Some(ids) = filter.tag_ids {
        cond = cond.add(
            C::Id.in_subquery(
                Query::select()
                    .column(entity::conversation_tag::Column::ConversationId)
                    .from(entity::conversation_tag::Entity)
                    .and_where(Expr::col(entity::conversation_tag::Column::OrgId).eq(org))
                    .and_where(Expr::col(entity::conversation_tag::Column::TagId).is_in(ids))
                    .to_owned(),
            ),
        );
    }
    if let Some(direction) = filter.direction {
        cond = cond.add(C::Direction.eq(direction));
    }
    if let Some(statuses) = filter.statuses {
        cond = cond.add(C::Status.is_in(statuses));
    }
    match filter.rated {
        Some(true) => cond = cond.add(C::RatedAt.is_not_null()),
        Some(false) => cond = cond.add(C::RatedAt.is_null()),
        None => {}
    }
    let select = crate::tenancy::in_org::<conversation::Entity>(org).filter(cond);
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "analyticsRecords", &sort(), args).await?;
    Ok((page, total))
}

/// Inbound and outbound message counts per conversation (removed messages excluded), in one
/// statement.
pub async fn message_counts<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    conversation_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, (i64, i64)>> {
    let mut out = HashMap::new();
    if conversation_ids.is_empty() {
        return Ok(out);
    }
    let mut sql = Sql::new(conn.get_database_backend());
    sql.push(
        "SELECT conversation_id, \
         SUM(CASE WHEN direction = 'INBOUND' THEN 1 ELSE 0 END) AS inbound, \
         SUM(CASE WHEN direction = 'OUTBOUND' THEN 1 ELSE 0 END) AS outbound \
         FROM messages WHERE org_id = ",
    )
    .bind(org_id)
    .push(" AND removed_at IS NULL AND conversation_id IN ")
    .bind_list(conversation_ids.iter().map(|&id| id.into()))
    .push(" GROUP BY conversation_id");
    for row in conn.query_all_raw(sql.statement()).await? {
        let id: Uuid = row.try_get("", "conversation_id")?;
        let inbound: i64 = row.try_get("", "inbound")?;
        let outbound: i64 = row.try_get("", "outbound")?;
        out.insert(id, (inbound, outbound));
    }
    Ok(out)
}
