//! Business rules for API tokens.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, Set,
};
use serde_json::json;
use uuid::Uuid;

use crate::auth::{Permission, Principal, secrets};
use crate::db;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::events::{self, Subject};
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::tenancy;
use crate::validate::Errors;

use entity::api_token::{self, Column};

/// What a token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A long-lived token for integrations and scripts.
    Api,
    /// A session created by `login`.
    Session,
}

impl TokenKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Api => "API",
            TokenKind::Session => "SESSION",
        }
    }
}

/// Creates a token for `user`, returning the row and the secret. The caller owns the transaction
/// and records the event.
pub async fn issue<C: ConnectionTrait>(
    conn: &C,
    user: &entity::user::Model,
    kind: TokenKind,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    created_by: Option<Uuid>,
) -> AppResult<(api_token::Model, String)> {
    let secret = secrets::new_token();
    let model = api_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(user.org_id),
        user_id: Set(user.id),
        name: Set(name.to_string()),
        kind: Set(kind.as_str().to_string()),
        token_hash: Set(secrets::hash_token(&secret)),
        token_prefix: Set(secrets::display_prefix(&secret)),
        created_by_user_id: Set(created_by.or(Some(user.id))),
        created_at: Set(Utc::now()),
        last_used_at: Set(None),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
    }
    .insert(conn)
    .await?;
    Ok((model, secret))
}

/// A token to create.
#[derive(Clone, Debug)]
pub struct NewToken {
    /// Label.
    pub name: String,
    /// Expiry; never when absent.
    pub expires_at: Option<DateTime<Utc>>,
    /// For whom; the caller when absent (another user needs OWNER).
    pub user_id: Option<Uuid>,
}

/// Creates an API token; the secret is returned once.
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    input: NewToken,
) -> AppResult<(api_token::Model, String)> {
    principal.require(Permission::ManageOwnCredentials)?;
    let user_id = input.user_id.unwrap_or(principal.user_id());
    if user_id != principal.user_id() {
        principal.require(Permission::ManageOthersTokens)?;
    }
    let mut errors = Errors::default();
    let name = errors.required_text("name", &input.name, 100);
    if input.expires_at.is_some_and(|at| at <= Utc::now()) {
        errors.add(
            "expiresAt",
            UserErrorCode::Invalid,
            "expiresAt must be in the future",
        );
    }
    errors.finish()?;
    let txn = db::begin_write(db).await?;
    let user = tenancy::by_id::<entity::user::Entity>(principal.org_id, user_id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::invalid("userId", UserErrorCode::NotFound, "no such user"))?;
    if user.status != "ACTIVE" {
        return Err(AppError::invalid(
            "userId",
            UserErrorCode::InvalidState,
            "tokens cannot be created for a deactivated user",
        ));
    }
    let (model, secret) = issue(
        &txn,
        &user,
        TokenKind::Api,
        &name,
        input.expires_at,
        Some(principal.user_id()),
    )
    .await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "API_TOKEN_CREATED",
        Subject::new("ApiToken", model.id),
        json!({ "userId": user.id, "name": model.name }),
    )
    .await?;
    txn.commit().await?;
    Ok((model, secret))
}

/// Whether the caller may see or revoke `token`: their own, or anyone's for OWNER.
fn require_access(principal: &Principal, token: &api_token::Model) -> AppResult<()> {
    if token.user_id == principal.user_id() {
        principal.require(Permission::ManageOwnCredentials)
    } else {
        principal.require(Permission::ManageOthersTokens)
    }
}

/// Revokes a token (one's own, or anyone's for OWNER).
pub async fn revoke(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
) -> AppResult<api_token::Model> {
    let txn = db::begin_write(db).await?;
    let token = tenancy::by_id::<api_token::Entity>(principal.org_id, id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::invalid("id", UserErrorCode::NotFound, "no such token"))?;
    require_access(principal, &token)?;
    if token.revoked_at.is_some() {
        return Err(AppError::invalid(
            "id",
            UserErrorCode::InvalidState,
            "token is already revoked",
        ));
    }
    let mut model = token.into_active_model();
    model.revoked_at = Set(Some(Utc::now()));
    let updated = model.update(&txn).await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "API_TOKEN_REVOKED",
        Subject::new("ApiToken", id),
        json!({ "userId": updated.user_id }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Revokes `user`'s login sessions except `keep`.
pub async fn revoke_sessions<C: ConnectionTrait>(
    conn: &C,
    user: &entity::user::Model,
    keep: Option<Uuid>,
) -> AppResult<u64> {
    let mut update = api_token::Entity::update_many()
        .col_expr(Column::RevokedAt, Expr::value(Utc::now()))
        .filter(Column::OrgId.eq(user.org_id))
        .filter(Column::UserId.eq(user.id))
        .filter(Column::Kind.eq(TokenKind::Session.as_str()))
        .filter(Column::RevokedAt.is_null());
    if let Some(keep) = keep {
        update = update.filter(Column::Id.ne(keep));
    }
    Ok(update.exec(conn).await?.rows_affected)
}

/// Which tokens to list.
#[derive(Clone, Debug, Default)]
pub struct TokenFilter {
    /// Whose tokens; the caller's when absent (another user's need OWNER).
    pub user_id: Option<Uuid>,
    /// All users' tokens (OWNER).
    pub all_users: bool,
    /// Include revoked and expired tokens.
    pub include_inactive: bool,
}

/// One page of tokens, newest first.
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: TokenFilter,
    args: &PageArgs,
) -> AppResult<(Page<api_token::Model>, TotalCount)> {
    principal.require(Permission::ManageOwnCredentials)?;
    let mut select = tenancy::in_org::<api_token::Entity>(principal.org_id);
    if filter.all_users {
        principal.require(Permission::ManageOthersTokens)?;
    } else {
        let user_id = filter.user_id.unwrap_or(principal.user_id());
        if user_id != principal.user_id() {
            principal.require(Permission::ManageOthersTokens)?;
        }
        select = select.filter(Column::UserId.eq(user_id));
    }
    if !filter.include_inactive {
        select = select.filter(Column::RevokedAt.is_null()).filter(
            sea_orm::Condition::any()
                .add(Column::ExpiresAt.is_null())
                .add(Column::ExpiresAt.gt(Utc::now())),
        );
    }
    let sort = Sort {
        name: "CREATED_AT",
        column: Column::CreatedAt,
        direction: SortDirection::Desc,
        value: |m: &api_token::Model| SortValue::Time(m.created_at),
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "apiTokens", &sort, args).await?;
    Ok((page, total))
}

/// A token the caller may see (their own, or anyone's for OWNER); `None` otherwise.
pub fn visible(principal: &Principal, token: api_token::Model) -> Option<api_token::Model> {
    require_access(principal, &token).ok().map(|_| token)
}
