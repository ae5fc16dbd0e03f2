//! Business rules for teams.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, Set,
};
use serde_json::json;
use uuid::Uuid;

use crate::auth::{Permission, Principal};
use crate::db::{self, like_pattern};
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::events::{self, Subject};
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::tenancy;
use crate::validate::Errors;

use entity::{team, team_member};

async fn find<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    id: Uuid,
    field: &str,
) -> AppResult<team::Model> {
    tenancy::by_id::<team::Entity>(org_id, id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid(field, UserErrorCode::NotFound, "no such team"))
}

/// Creates a team (TEAM_LEAD).
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    name: &str,
    description: Option<&str>,
) -> AppResult<team::Model> {
    principal.require(Permission::ManageRouting)?;
    let mut errors = Errors::default();
    let name = errors.required_text("name", name, 200);
    let description = errors.optional_text("description", description, 2000);
    errors.finish()?;
    let txn = db::begin_write(db).await?;
    let now = Utc::now();
    let model = team::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(principal.org_id),
        name: Set(name),
        description: Set(description),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "TEAM_CREATED",
        Subject::new("Team", model.id),
        json!({ "name": model.name }),
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

/// Renames a team or changes its description (TEAM_LEAD); `Some(None)` clears the description.
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    name: Option<&str>,
    description: Option<Option<&str>>,
) -> AppResult<team::Model> {
    principal.require(Permission::ManageRouting)?;
    let mut errors = Errors::default();
    let name = name.map(|n| errors.required_text("name", n, 200));
    let description = description.map(|d| errors.optional_text("description", d, 2000));
    errors.finish()?;
    let txn = db::begin_write(db).await?;
    let mut model = find(&txn, principal.org_id, id, "id")
        .await?
        .into_active_model();
    let mut changed = Vec::new();
    if let Some(name) = name {
        changed.push("name");
        model.name = Set(name);
    }
    if let Some(description) = description {
        changed.push("description");
        model.description = Set(description);
    }
    model.updated_at = Set(Utc::now());
    let updated = model.update(&txn).await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "TEAM_UPDATED",
        Subject::new("Team", id),
        json!({ "changed": changed }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Deletes a team and its memberships (TEAM_LEAD).
pub async fn delete(db: &DatabaseConnection, principal: &Principal, id: Uuid) -> AppResult<Uuid> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let team = find(&txn, principal.org_id, id, "id").await?;
    team_member::Entity::delete_many()
        .filter(team_member::Column::TeamId.eq(id))
        .exec(&txn)
        .await?;
    team::Entity::delete_by_id(id).exec(&txn).await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "TEAM_DELETED",
        Subject::new("Team", id),
        json!({ "name": team.name }),
    )
    .await?;
    txn.commit().await?;
    Ok(id)
}

/// Checks that every user id names a user of the organization; errors name `field.<index>`.
pub async fn require_users<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    user_ids: &[Uuid],
    field: &str,
) -> AppResult<()> {
    tenancy::require_all::<entity::user::Entity, _>(conn, org_id, user_ids, field, "no such user")
        .await
        .map(|_| ())
}

/// Adds users to a team (TEAM_LEAD); members already in it stay as they are.
pub async fn add_members(
    db: &DatabaseConnection,
    principal: &Principal,
    team_id: Uuid,
    user_ids: &[Uuid],
) -> AppResult<team::Model> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let team = find(&txn, principal.org_id, team_id, "teamId").await?;
    require_users(&txn, principal.org_id, user_ids, "userIds").await?;
    let existing: HashSet<Uuid> = team_member::Entity::find()
        .filter(team_member::Column::TeamId.eq(team_id))
        .all(&txn)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    let now = Utc::now();
    let mut added = Vec::new();
    for user_id in user_ids {
        if existing.contains(user_id) || added.contains(user_id) {
            continue;
        }
        // One microsecond apart, so members added together keep their input order.
        let joined = now + chrono::Duration::microseconds(added.len() as i64);
        team_member::ActiveModel {
            team_id: Set(team_id),
            user_id: Set(*user_id),
            org_id: Set(principal.org_id),
            created_at: Set(joined),
        }
        .insert(&txn)
        .await?;
        added.push(*user_id);
    }
    if !added.is_empty() {
        events::record(
            &txn,
            principal.org_id,
            Some(principal.user_id()),
            "TEAM_MEMBERS_ADDED",
            Subject::new("Team", team_id),
            json!({ "userIds": added }),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(team)
}

/// Removes users from a team (TEAM_LEAD); users not in it are ignored.
pub async fn remove_members(
    db: &DatabaseConnection,
    principal: &Principal,
    team_id: Uuid,
    user_ids: &[Uuid],
) -> AppResult<team::Model> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let team = find(&txn, principal.org_id, team_id, "teamId").await?;
    require_users(&txn, principal.org_id, user_ids, "userIds").await?;
    let removed = team_member::Entity::delete_many()
        .filter(team_member::Column::TeamId.eq(team_id))
        .filter(team_member::Column::UserId.is_in(user_ids.iter().copied()))
        .exec(&txn)
        .await?
        .rows_affected;
    if removed > 0 {
        events::record(
            &txn,
            principal.org_id,
            Some(principal.user_id()),
            "TEAM_MEMBERS_REMOVED",
            Subject::new("Team", team_id),
            json!({ "userIds": user_ids }),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(team)
}

/// One page of teams, by name.
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    search: Option<&str>,
    args: &PageArgs,
) -> AppResult<(Page<team::Model>, TotalCount)> {
    principal.require(Permission::ReadDirectory)?;
    let mut select = tenancy::in_org::<team::Entity>(principal.org_id);
    if let Some(search) = search.map(str::trim).filter(|s| !s.is_empty()) {
        use sea_orm::sea_query::{Expr, ExprTrait as _, Func};
        select = select.filter(
            Expr::expr(Func::lower(Expr::col(team::Column::Name))).like(like_pattern(search)),
        );
    }
    let sort = Sort {
        name: "NAME",
        column: team::Column::Name,
        direction: SortDirection::Asc,
        value: |m: &team::Model| SortValue::Text(m.name.clone()),
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "teams", &sort, args).await?;
    Ok((page, total))
}

/// Member user ids of each team, in joining order (one query for all teams).
pub async fn member_ids(
    db: &DatabaseConnection,
    org_id: Uuid,
    team_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<Uuid>>> {
    let rows = team_member::Entity::find()
        .filter(team_member::Column::OrgId.eq(org_id))
        .filter(team_member::Column::TeamId.is_in(team_ids.iter().copied()))
        .order_by_asc(team_member::Column::CreatedAt)
        .order_by_asc(team_member::Column::UserId)
        .all(db)
        .await?;
    let mut map: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for row in rows {
        map.entry(row.team_id).or_default().push(row.user_id);
    }
    Ok(map)
}

/// Team ids of each user (one query for all users).
pub async fn team_ids_of_users(
    db: &DatabaseConnection,
    org_id: Uuid,
    user_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<Uuid>>> {
    let rows = team_member::Entity::find()
        .filter(team_member::Column::OrgId.eq(org_id))
        .filter(team_member::Column::UserId.is_in(user_ids.iter().copied()))
        .order_by_asc(team_member::Column::CreatedAt)
        .order_by_asc(team_member::Column::TeamId)
        .all(db)
        .await?;
    let mut map: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for row in rows {
        map.entry(row.user_id).or_default().push(row.team_id);
    }
    Ok(map)
}
