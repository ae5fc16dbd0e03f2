//! Business rules for tags.

use chrono::Utc;
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, IntoActiveModel,
    PaginatorTrait, QueryFilter, Set,
};
use serde_json::json;
use uuid::Uuid;

use crate::auth::{Permission, Principal};
use crate::db::{self, like_pattern};
use crate::error::{AppError, AppResult, FieldError, UserErrorCode};
use crate::events::{self, Subject};
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::tenancy;
use crate::validate::Errors;

use entity::tag::{self, Column};

/// Whether a tag can be applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagStatus {
    /// Can be applied.
    Active,
    /// Stays where applied; cannot be newly applied.
    Inactive,
}

impl TagStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TagStatus::Active => "ACTIVE",
            TagStatus::Inactive => "INACTIVE",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> TagStatus {
        if s == "INACTIVE" {
            TagStatus::Inactive
        } else {
            TagStatus::Active
        }
    }
}

fn check_color(errors: &mut Errors, color: &str) -> String {
    let color = color.trim().to_lowercase();
    let valid = color.len() == 7
        && color.starts_with('#')
        && color[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        errors.add(
            "color",
            UserErrorCode::Invalid,
            format!("{color:?} is not a color such as #1a2b3c"),
        );
    }
    color
}

async fn name_taken<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    key: &str,
    except: Option<Uuid>,
) -> AppResult<bool> {
    let mut select = tenancy::in_org::<tag::Entity>(org_id).filter(Column::NameKey.eq(key));
    if let Some(id) = except {
        select = select.filter(Column::Id.ne(id));
    }
    Ok(select.count(conn).await? > 0)
}

fn taken(name: &str) -> AppError {
    AppError::invalid(
        "name",
        UserErrorCode::Taken,
        format!("a tag named {name:?} exists"),
    )
}

/// Creates a tag (TEAM_LEAD).
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    name: &str,
    color: Option<&str>,
) -> AppResult<tag::Model> {
    principal.require(Permission::ManageRouting)?;
    let mut errors = Errors::default();
    let name = errors.required_text("name", name, 100);
    let color = color.map(|c| check_color(&mut errors, c));
    errors.finish()?;
    let key = name.to_lowercase();
    let txn = db::begin_write(db).await?;
    if name_taken(&txn, principal.org_id, &key, None).await? {
        return Err(taken(&name));
    }
    let now = Utc::now();
    let model = tag::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(principal.org_id),
        name: Set(name),
        name_key: Set(key),
        color: Set(color),
        status: Set(TagStatus::Active.as_str().into()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "TAG_CREATED",
        Subject::new("Tag", model.id),
        json!({ "name": model.name, "color": model.color }),
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

async fn find<C: ConnectionTrait>(conn: &C, org_id: Uuid, id: Uuid) -> AppResult<tag::Model> {
    tenancy::by_id::<tag::Entity>(org_id, id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid("id", UserErrorCode::NotFound, "no such tag"))
}

/// Renames or recolors a tag (TEAM_LEAD); `Some(None)` clears the color.
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    name: Option<&str>,
    color: Option<Option<&str>>,
) -> AppResult<tag::Model> {
    principal.require(Permission::ManageRouting)?;
    let mut errors = Errors::default();
    let name = name.map(|n| errors.required_text("name", n, 100));
    let color = color.map(|c| c.map(|c| check_color(&mut errors, c)));
    errors.finish()?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id).await?;
    let mut changed = Vec::new();
    let mut model = current.into_active_model();
    if let Some(name) = name {
        let key = name.to_lowercase();
        if name_taken(&txn, principal.org_id, &key, Some(id)).await? {
            return Err(taken(&name));
        }
        changed.push("name");
        model.name = Set(name);
        model.name_key = Set(key);
    }
    if let Some(color) = color {
        changed.push("color");
        model.color = Set(color);
    }
    model.updated_at = Set(Utc::now());
    let updated = model.update(&txn).await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "TAG_UPDATED",
        Subject::new("Tag", id),
        json!({ "changed": changed }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Activates or deactivates a tag (TEAM_LEAD).
pub async fn set_status(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    status: TagStatus,
) -> AppResult<tag::Model> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id).await?;
    if TagStatus::parse(&current.status) == status {
        return Err(AppError::invalid(
            "id",
            UserErrorCode::InvalidState,
            format!("tag is already {}", status.as_str().to_lowercase()),
        ));
    }
    let mut model = current.into_active_model();
    model.status = Set(status.as_str().into());
    model.updated_at = Set(Utc::now());
    let updated = model.update(&txn).await?;
    let event = match status {
        TagStatus::Active => "TAG_ACTIVATED",
        TagStatus::Inactive => "TAG_DEACTIVATED",
    };
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        event,
        Subject::new("Tag", id),
        json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Which tags to list.
#[derive(Clone, Debug, Default)]
pub struct TagFilter {
    /// Tags in this status.
    pub status: Option<TagStatus>,
    /// Case-insensitive text in the name.
    pub search: Option<String>,
}

/// One page of tags, by name.
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: TagFilter,
    args: &PageArgs,
) -> AppResult<(Page<tag::Model>, TotalCount)> {
    principal.require(Permission::WorkContacts)?;
    let mut select = tenancy::in_org::<tag::Entity>(principal.org_id);
    if let Some(status) = filter.status {
        select = select.filter(Column::Status.eq(status.as_str()));
    }
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        use sea_orm::sea_query::ExprTrait as _;
        select = select
            .filter(Expr::expr(Func::lower(Expr::col(Column::Name))).like(like_pattern(search)));
    }
    let sort = Sort {
        name: "NAME",
        column: Column::NameKey,
        direction: SortDirection::Asc,
        value: |m: &tag::Model| SortValue::Text(m.name_key.clone()),
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "tags", &sort, args).await?;
    Ok((page, total))
}

/// The tags with these ids, in input order, if all exist in the organization and are active;
/// otherwise a validation error naming each bad id at `field.<index>` (NOT_FOUND for unknown
/// ids, INVALID_STATE for inactive tags). Used wherever tags are applied.
pub async fn require_applicable<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    ids: &[Uuid],
    field: &str,
) -> AppResult<Vec<tag::Model>> {
    let found = tenancy::by_ids::<tag::Entity>(org_id, ids.iter().copied())
        .all(conn)
        .await?;
    let mut tags = Vec::with_capacity(ids.len());
    let mut errors = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let path = format!("{field}.{i}");
        match found.iter().find(|t| t.id == *id) {
            None => errors.push(FieldError::new(
                &path,
                UserErrorCode::NotFound,
                "no such tag",
            )),
            Some(t) if TagStatus::parse(&t.status) == TagStatus::Inactive => {
                errors.push(FieldError::new(
                    &path,
                    UserErrorCode::InvalidState,
                    format!("tag {:?} is inactive and cannot be applied", t.name),
                ))
            }
            Some(t) => tags.push(t.clone()),
        }
    }
    if errors.is_empty() {
        Ok(tags)
    } else {
        Err(AppError::Validation(errors))
    }
}
