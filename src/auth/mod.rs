//! Who is calling: roles, the authenticated principal, the permission policy, credentials.
//!
//! Role checks live in one place: services call [`Principal::require`] with a [`Permission`], and
//! [`policy::minimum_role`] says which role each permission needs.

pub mod policy;
pub mod secrets;

use std::sync::Arc;

use chrono::Utc;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
pub use policy::Permission;

/// A staff role. Each role includes the rights of the ones below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Works conversations, messages, notes and contacts.
    Agent,
    /// Also teams, queues, tags, templates, broadcasts and campaigns.
    TeamLead,
    /// Also users, channels, webhooks, custom attributes, settings, anonymization, audit log.
    Admin,
    /// Also other users' tokens and deleting the organization.
    Owner,
}

impl Role {
    /// All roles, highest first.
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::TeamLead, Role::Agent];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "OWNER",
            Role::Admin => "ADMIN",
            Role::TeamLead => "TEAM_LEAD",
            Role::Agent => "AGENT",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Parses the stored comma-separated list, highest first.
    pub fn parse_list(stored: &str) -> Vec<Role> {
        let mut roles: Vec<Role> = stored.split(',').filter_map(Role::parse).collect();
        roles.sort_by(|a, b| b.cmp(a));
        roles.dedup();
        roles
    }

    /// The stored form of a role list: sorted highest first, no duplicates.
    pub fn store_list(roles: &[Role]) -> String {
        let mut roles = roles.to_vec();
        roles.sort_by(|a, b| b.cmp(a));
        roles.dedup();
        roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The caller's organization: every read and write is scoped to it.
    pub org_id: Uuid,
    /// The caller (loaded once per request with the token).
    pub user: Arc<entity::user::Model>,
    /// The caller's roles, highest first.
    pub roles: Vec<Role>,
    /// The token the request came with.
    pub token_id: Uuid,
}

impl Principal {
    /// The caller's user id.
    pub fn user_id(&self) -> Uuid {
        self.user.id
    }

    /// The caller's highest role.
    pub fn highest_role(&self) -> Role {
        self.roles.first().copied().unwrap_or(Role::Agent)
    }

    /// Whether the caller holds at least `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.highest_role() >= role
    }

    /// Fails with `FORBIDDEN` unless the caller's role allows `permission`.
    pub fn require(&self, permission: Permission) -> AppResult<()> {
        if self.has_role(policy::minimum_role(permission)) {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                format!(
                    "this action needs the {} role",
                    policy::minimum_role(permission).as_str()
                )
                .into(),
            ))
        }
    }
}

/// Resolves a bearer secret to its principal with one query (token joined with its user).
/// Unknown, revoked and expired tokens and deactivated users are all `UNAUTHENTICATED`.
pub async fn authenticate(db: &DatabaseConnection, secret: &str) -> AppResult<Principal> {
    let hash = secrets::hash_token(secret);
    let found = entity::api_token::Entity::find()
        .filter(entity::api_token::Column::TokenHash.eq(hash))
        .find_also_related(entity::user::Entity)
        .one(db)
        .await?;
    let Some((token, Some(user))) = found else {
        return Err(AppError::Unauthenticated("invalid token".into()));
    };
    let now = Utc::now();
    if token.revoked_at.is_some() {
        return Err(AppError::Unauthenticated("token has been revoked".into()));
    }
    if token.expires_at.is_some_and(|at| at <= now) {
        return Err(AppError::Unauthenticated("token has expired".into()));
    }
    if user.status != "ACTIVE" {
        return Err(AppError::Unauthenticated("user is deactivated".into()));
    }
    if token
        .last_used_at
        .is_none_or(|at| now - at > chrono::Duration::seconds(60))
    {
        touch_token(db, token.id).await;
    }
    Ok(Principal {
        org_id: user.org_id,
        roles: Role::parse_list(&user.roles),
        user: Arc::new(user),
        token_id: token.id,
    })
}

/// Records `last_used_at`, at most once a minute per token. A failure is logged, never the
/// request's: the request goes on. Done before answering (not in a spawned task) so that the write
/// belongs to the request that caused it, and statement counts and shutdown see it.
async fn touch_token(db: &DatabaseConnection, token_id: Uuid) {
    let result = entity::api_token::Entity::update_many()
        .col_expr(
            entity::api_token::Column::LastUsedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(entity::api_token::Column::Id.eq(token_id))
        .exec(db)
        .await;
    if let Err(error) = result {
        tracing::warn!(%error, "could not record token use");
    }
}
