//! GraphQL types, queries and mutations of API tokens.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::service::{self, NewToken, TokenFilter};
use crate::graphql::context::ContextExt;
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, decode_id, encode_id};
use crate::users::graphql::User;

/// What a token is for.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiTokenKind {
    /// A long-lived token for integrations and scripts.
    Api,
    /// A session created by `login`.
    Session,
}

/// Whether a token still works.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiTokenStatus {
    /// Accepted.
    Active,
    /// Revoked by a user.
    Revoked,
    /// Past its expiry.
    Expired,
}

/// A bearer credential of a user. The secret is shown once, at creation; only a prefix remains.
#[derive(Clone)]
pub struct ApiToken(pub entity::api_token::Model);

/// A bearer credential of a user. The secret is shown once, at creation; only a prefix remains.
#[Object]
impl ApiToken {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("ApiToken", self.0.id)
    }

    /// Label given at creation.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// API token or login session.
    async fn kind(&self) -> ApiTokenKind {
        if self.0.kind == service::TokenKind::Session.as_str() {
            ApiTokenKind::Session
        } else {
            ApiTokenKind::Api
        }
    }

    /// The first characters of the secret, to recognise it.
    async fn prefix(&self) -> &str {
        &self.0.token_prefix
    }

    /// Whether it still works.
    async fn status(&self) -> ApiTokenStatus {
        if self.0.revoked_at.is_some() {
            ApiTokenStatus::Revoked
        } else if self.0.expires_at.is_some_and(|at| at <= Utc::now()) {
            ApiTokenStatus::Expired
        } else {
            ApiTokenStatus::Active
        }
    }

    /// The user it authenticates as.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let user = ctx.app().load::<entity::user::Entity>(self.0.user_id);
        Ok(user.await?.map(User))
    }

    /// Who created it.
    async fn created_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.created_by_user_id else {
            return Ok(None);
        };
        Ok(ctx.app().load::<entity::user::Entity>(id).await?.map(User))
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it was last used (updated at most once a minute).
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }

    /// When it stops working; never when null.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    /// When it was revoked.
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}

/// Which tokens to list.
#[derive(InputObject, Default)]
pub struct ApiTokenFilter {
    /// Whose tokens; the caller's when omitted. Another user's need OWNER.
    pub user_id: Option<ID>,
    /// Every user's tokens (OWNER).
    #[graphql(default)]
    pub all_users: bool,
    /// Include revoked and expired tokens.
    #[graphql(default)]
    pub include_inactive: bool,
}

/// Token queries.
#[derive(Default)]
pub struct TokenQuery;

#[Object]
impl TokenQuery {
    /// API tokens and sessions, newest first: the caller's own, or others' for OWNER.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    async fn api_tokens(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only tokens matching this filter.")] filter: Option<ApiTokenFilter>,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<ApiToken>> {
        let app = ctx.app();
        let filter = filter.unwrap_or_default();
        let user_id = match &filter.user_id {
            Some(id) => Some(decode_id(id, "User")?),
            None => None,
        };
        let (page, total) = service::list(
            app.db(),
            app.principal()?,
            TokenFilter {
                user_id,
                all_users: filter.all_users,
                include_inactive: filter.include_inactive,
            },
            &PageArgs {
                after,
                before,
                first,
                last,
            },
        )
        .await?;
        Ok(Connection::new(page.map(ApiToken), total))
    }
}

/// A new API token.
#[derive(InputObject)]
pub struct CreateApiTokenInput {
    /// Label, e.g. the integration that will use it.
    pub name: String,
    /// When it stops working; never when omitted.
    pub expires_at: Option<DateTime<Utc>>,
    /// For whom; the caller when omitted. Another user needs OWNER.
    pub user_id: Option<ID>,
}

/// Result of `createApiToken`.
#[derive(SimpleObject)]
pub struct CreateApiTokenPayload {
    /// The new token.
    pub api_token: Option<ApiToken>,
    /// The secret, shown this once: send it as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Names one token.
#[derive(InputObject)]
pub struct RevokeApiTokenInput {
    /// The token.
    pub id: ID,
}

/// Result of `revokeApiToken`.
#[derive(SimpleObject)]
pub struct RevokeApiTokenPayload {
    /// The revoked token.
    pub api_token: Option<ApiToken>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Token mutations.
#[derive(Default)]
pub struct TokenMutation;

#[Object]
impl TokenMutation {
    /// Creates an API token; its secret is in the payload once and never again.
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CreateApiTokenInput,
    ) -> async_graphql::Result<CreateApiTokenPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input
            .user_id
            .as_ref()
            .map(|id| input_id("userId", id, "User"))
        {
            Some(Err(e)) => Err(e),
            user_id => {
                let new = NewToken {
                    name: input.name,
                    expires_at: input.expires_at,
                    user_id: user_id.and_then(Result::ok),
                };
                service::create(app.db(), principal, new).await
            }
        };
        let (created, user_errors) = split(result)?;
        let (api_token, token) = match created {
            Some((model, secret)) => (Some(ApiToken(model)), Some(secret)),
            None => (None, None),
        };
        Ok(CreateApiTokenPayload {
            api_token,
            token,
            user_errors,
        })
    }

    /// Revokes a token: one's own, or anyone's for OWNER. It stops working at once.
    async fn revoke_api_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: RevokeApiTokenInput,
    ) -> async_graphql::Result<RevokeApiTokenPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("id", &input.id, "ApiToken") {
            Ok(id) => service::revoke(app.db(), principal, id).await,
            Err(e) => Err(e),
        };
        let (token, user_errors) = split(result)?;
        Ok(RevokeApiTokenPayload {
            api_token: token.map(ApiToken),
            user_errors,
        })
    }

    /// Revokes the token this request was made with (signs out).
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<RevokeApiTokenPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let (token, user_errors) =
            split(service::revoke(app.db(), principal, principal.token_id).await)?;
        Ok(RevokeApiTokenPayload {
            api_token: token.map(ApiToken),
            user_errors,
        })
    }
}
