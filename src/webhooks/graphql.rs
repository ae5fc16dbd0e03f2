//! GraphQL types, queries and mutations of webhooks.

use std::collections::BTreeMap;

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::catalog;
use super::service::{self, Authorization, DeliveryFilter, SubscriptionInput, SubscriptionPatch};
use crate::auth::Permission;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::graphql::context::ContextExt;
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, decode_id, encode_id};

/// How webhook requests are authorized.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookAuthorizationKind {
    /// No `Authorization` header.
    None,
    /// `Authorization: Basic base64(username:password)`.
    Basic,
    /// `Authorization: Bearer <token>`.
    Bearer,
}

/// Where a delivery stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookDeliveryStatus {
    /// Not delivered yet (waiting for an attempt or a retry).
    Pending,
    /// The receiver answered 2xx.
    Succeeded,
    /// The last attempt failed (see `lastError`).
    Failed,
}

impl WebhookDeliveryStatus {
    fn parse(s: &str) -> Self {
        match s {
            "SUCCEEDED" => Self::Succeeded,
            "FAILED" => Self::Failed,
            _ => Self::Pending,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
        }
    }
}

/// Which deliveries to list.
#[derive(InputObject, Default)]
pub struct WebhookDeliveryFilterInput {
    /// Only deliveries of this event type.
    pub event_type: Option<String>,
    /// Only deliveries in this status.
    pub status: Option<WebhookDeliveryStatus>,
}

/// An event type a webhook can subscribe to.
#[derive(SimpleObject)]
pub struct WebhookEventType {
    /// Its name, as given in `events` and sent as the body's `type`.
    pub name: String,
    /// What happened.
    pub description: String,
}

/// How a subscription's requests are authorized (secrets are never shown).
#[derive(SimpleObject)]
pub struct WebhookAuthorization {
    /// The scheme.
    pub kind: WebhookAuthorizationKind,
    /// The Basic user name.
    pub username: Option<String>,
}

/// A webhook subscription.
#[derive(Clone)]
pub struct WebhookSubscription(pub entity::webhook_subscription::Model);

/// Where the server POSTs events of the chosen types: JSON `{type, timestamp, data}`, signed
/// per Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with the
/// subscription's secret.
#[Object]
impl WebhookSubscription {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("WebhookSubscription", self.0.id)
    }

    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Where requests go.
    async fn url(&self) -> &str {
        &self.0.url
    }

    /// The event types it receives.
    async fn events(&self) -> Vec<String> {
        serde_json::from_value(self.0.event_types.clone()).unwrap_or_default()
    }

    /// How requests are authorized.
    async fn authorization(&self) -> WebhookAuthorization {
        WebhookAuthorization {
            kind: match self.0.auth_kind.as_str() {
                "BASIC" => WebhookAuthorizationKind::Basic,
                "BEARER" => WebhookAuthorizationKind::Bearer,
                _ => WebhookAuthorizationKind::None,
            },
            username: self.0.auth_username.clone(),
        }
    }

    /// Extra request headers (names lowercased).
    async fn headers(&self) -> Json<serde_json::Value> {
        Json(self.0.headers.clone())
    }

    /// Whether it receives events.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// Why the server disabled it (e.g. the receiver answered 410 Gone); null when enabled or
    /// disabled by a user.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }

    /// When it was disabled.
    async fn disabled_at(&self) -> Option<DateTime<Utc>> {
        self.0.disabled_at
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// Its deliveries, newest first.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only deliveries matching this filter.")] filter: Option<
            WebhookDeliveryFilterInput,
        >,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<WebhookDelivery>> {
        let app = ctx.app();
        let (page, total) = service::deliveries(
            app.db(),
            self.0.org_id,
            self.0.id,
            DeliveryFilter {
                event_type: filter.as_ref().and_then(|f| f.event_type.clone()),
                status: filter
                    .as_ref()
                    .and_then(|f| f.status)
                    .map(WebhookDeliveryStatus::as_str),
            },
            &PageArgs {
                after,
                before,
                first,
                last,
            },
        )
        .await?;
        Ok(Connection::new(page.map(WebhookDelivery), total))
    }

    /// The latest delivery of each event type it was sent, by event type.
    async fn delivery_status(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<WebhookDelivery>> {
        let app = ctx.app();
        Ok(
            service::latest_by_event_type(app.db(), self.0.org_id, self.0.id)
                .await?
                .into_iter()
                .map(WebhookDelivery)
                .collect(),
        )
    }
}

/// One event (or ping) delivered to a subscription.
#[derive(Clone)]
pub struct WebhookDelivery(pub entity::webhook_delivery::Model);

/// One event (or ping) delivered to a subscription, with its attempts. Its id is the request's
/// `webhook-id` (as `msg_` and the id's hex digits), the same for every attempt.
#[Object]
impl WebhookDelivery {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("WebhookDelivery", self.0.id)
    }

    /// The `webhook-id` header of its requests.
    async fn webhook_id(&self) -> String {
        format!("msg_{}", self.0.id.simple())
    }

    /// The event type (`WEBHOOK_PING` for a test ping).
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }

    /// The JSON body sent.
    async fn payload(&self) -> Json<serde_json::Value> {
        Json(self.0.payload.clone())
    }

    /// Where it stands.
    async fn status(&self) -> WebhookDeliveryStatus {
        WebhookDeliveryStatus::parse(&self.0.status)
    }

    /// Attempts made.
    async fn attempt_count(&self) -> i32 {
        self.0.attempts
    }

    /// The status code of the last answer.
    async fn last_status_code(&self) -> Option<i32> {
        self.0.last_status_code
    }

    /// Why the last attempt failed.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }

    /// When the next attempt is due, if one is.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_attempt_at
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the receiver accepted it.
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }

    /// Its attempts, oldest first.
    async fn attempts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<WebhookAttempt>> {
        let app = ctx.app();
        Ok(service::attempts(app.db(), self.0.org_id, self.0.id)
            .await?
            .into_iter()
            .map(WebhookAttempt)
            .collect())
    }
}

/// One HTTP attempt of a delivery.
pub struct WebhookAttempt(pub entity::webhook_attempt::Model);

/// One HTTP attempt of a delivery.
#[Object]
impl WebhookAttempt {
    /// When it was made.
    async fn attempted_at(&self) -> DateTime<Utc> {
        self.0.attempted_at
    }

    /// The receiver's status code; null when no answer came.
    async fn status_code(&self) -> Option<i32> {
        self.0.status_code
    }

    /// Milliseconds until the answer (or the failure).
    async fn latency_ms(&self) -> i32 {
        self.0.latency_ms
    }

    /// The first kilobyte of the answer's body.
    async fn response_snippet(&self) -> Option<&str> {
        self.0.response_snippet.as_deref()
    }

    /// Why no answer came (not sent, could not connect, timed out).
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
}

/// Webhook queries.
#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// The event types webhooks can subscribe to.
    async fn webhook_event_types(&self) -> Vec<WebhookEventType> {
        catalog::EVENT_TYPES
            .iter()
            .map(|(name, description)| WebhookEventType {
                name: (*name).into(),
                description: (*description).into(),
            })
            .collect()
    }

    /// The organization's webhook subscriptions, newest first (ADMIN).
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    async fn webhook_subscriptions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<WebhookSubscription>> {
        let app = ctx.app();
        let (page, total) = service::list(
            app.db(),
            app.principal()?,
            &PageArgs {
                after,
                before,
                first,
                last,
            },
        )
        .await?;
        Ok(Connection::new(page.map(WebhookSubscription), total))
    }

    /// A webhook subscription by id (ADMIN); null when there is none.
    async fn webhook_subscription(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The subscription's global id.")] id: ID,
    ) -> async_graphql::Result<Option<WebhookSubscription>> {
        let app = ctx.app();
        app.principal()?.require(Permission::ManageWebhooks)?;
        let id = decode_id(&id, "WebhookSubscription")?;
        Ok(app
            .load::<entity::webhook_subscription::Entity>(id)
            .await?
            .map(WebhookSubscription))
    }
}

/// How requests are to be authorized.
#[derive(InputObject)]
pub struct WebhookAuthorizationInput {
    /// The scheme.
    pub kind: WebhookAuthorizationKind,
    /// Basic: user name (no `:`).
    pub username: Option<String>,
    /// Basic: password.
    pub password: Option<String>,
    /// Bearer: token.
    pub token: Option<String>,
}

impl WebhookAuthorizationInput {
    fn into_authorization(self) -> AppResult<Authorization> {
        let missing = |field: &str| {
            AppError::invalid(
                &format!("authorization.{field}"),
                UserErrorCode::Required,
                format!("give `{field}` for this kind"),
            )
        };
        Ok(match self.kind {
            WebhookAuthorizationKind::None => Authorization::None,
            WebhookAuthorizationKind::Basic => Authorization::Basic {
                username: self.username.ok_or_else(|| missing("username"))?,
                password: self.password.ok_or_else(|| missing("password"))?,
            },
            WebhookAuthorizationKind::Bearer => Authorization::Bearer {
                token: self.token.ok_or_else(|| missing("token"))?,
            },
        })
    }
}

/// Extra headers as a JSON object of strings.
fn headers(value: Option<Json<serde_json::Value>>) -> AppResult<Option<BTreeMap<String, String>>> {
    let Some(Json(value)) = value else {
        return Ok(None);
    };
    serde_json::from_value(value).map(Some).map_err(|_| {
        AppError::invalid(
            "headers",
            UserErrorCode::Invalid,
            "headers must be a JSON object of strings",
        )
    })
}

/// A new webhook subscription.
#[derive(InputObject)]
pub struct CreateWebhookSubscriptionInput {
    /// Name.
    pub name: String,
    /// Where to POST: an http(s) URL that does not reach a private address.
    pub url: String,
    /// Event types to receive (see `webhookEventTypes`).
    pub events: Vec<String>,
    /// Whether it receives events right away (default true).
    #[graphql(default = true)]
    pub enabled: bool,
    /// How requests are authorized (default none).
    pub authorization: Option<WebhookAuthorizationInput>,
    /// Extra request headers, as a JSON object of strings.
    pub headers: Option<Json<serde_json::Value>>,
}

/// Changes to a webhook subscription; omitted fields stay.
#[derive(InputObject)]
pub struct UpdateWebhookSubscriptionInput {
    /// The subscription.
    pub id: ID,
    /// New name.
    pub name: Option<String>,
    /// New URL.
    pub url: Option<String>,
    /// New event types.
    pub events: Option<Vec<String>>,
    /// Enable (clearing why the server disabled it) or disable.
    pub enabled: Option<bool>,
    /// New authorization.
    pub authorization: Option<WebhookAuthorizationInput>,
    /// New extra headers (replacing the old ones).
    pub headers: Option<Json<serde_json::Value>>,
}

/// Names one webhook subscription.
#[derive(InputObject)]
pub struct WebhookSubscriptionIdInput {
    /// The subscription.
    pub id: ID,
}

/// Names one webhook delivery.
#[derive(InputObject)]
pub struct WebhookDeliveryIdInput {
    /// The delivery.
    pub id: ID,
}

/// Result of a mutation on one webhook subscription.
#[derive(SimpleObject)]
pub struct WebhookSubscriptionPayload {
    /// The subscription after the change; null when it failed.
    pub subscription: Option<WebhookSubscription>,
    /// The signing secret: only when it was created or rotated, and never shown again.
    pub secret: Option<String>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

impl WebhookSubscriptionPayload {
    fn from(
        result: AppResult<(entity::webhook_subscription::Model, Option<String>)>,
    ) -> async_graphql::Result<Self> {
        let (done, user_errors) = split(result)?;
        let (subscription, secret) = match done {
            Some((model, secret)) => (Some(WebhookSubscription(model)), secret),
            None => (None, None),
        };
        Ok(Self {
            subscription,
            secret,
            user_errors,
        })
    }
}

/// Result of deleting a webhook subscription.
#[derive(SimpleObject)]
pub struct DeleteWebhookSubscriptionPayload {
    /// The deleted subscription's id; null when it failed.
    pub deleted_id: Option<ID>,
    /// Why it was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Result of sending a delivery.
#[derive(SimpleObject)]
pub struct WebhookDeliveryPayload {
    /// The delivery with the attempt just made; null when it was refused.
    pub delivery: Option<WebhookDelivery>,
    /// Why it was refused; empty when an attempt was made (whatever its outcome).
    pub user_errors: Vec<UserError>,
}

impl WebhookDeliveryPayload {
    fn from(result: AppResult<entity::webhook_delivery::Model>) -> async_graphql::Result<Self> {
        let (delivery, user_errors) = split(result)?;
        Ok(Self {
            delivery: delivery.map(WebhookDelivery),
            user_errors,
        })
    }
}

/// Webhook mutations (ADMIN).
#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Creates a webhook subscription; the payload carries its signing secret, shown only now.
    async fn create_webhook_subscription(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CreateWebhookSubscriptionInput,
    ) -> async_graphql::Result<WebhookSubscriptionPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = async {
            principal.require(Permission::ManageWebhooks)?;
            let authorization = match input.authorization {
                Some(a) => a.into_authorization()?,
                None => Authorization::None,
            };
            let (model, secret) = service::create(
                app.db(),
                &app.state.config,
                principal,
                SubscriptionInput {
                    name: input.name,
                    url: input.url,
                    events: input.events,
                    enabled: input.enabled,
                    authorization,
                    headers: headers(input.headers)?.unwrap_or_default(),
                },
            )
            .await?;
            Ok((model, Some(secret)))
        }
        .await;
        WebhookSubscriptionPayload::from(result)
    }

    /// Changes a webhook subscription.
    async fn update_webhook_subscription(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UpdateWebhookSubscriptionInput,
    ) -> async_graphql::Result<WebhookSubscriptionPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = async {
            principal.require(Permission::ManageWebhooks)?;
            let id = input_id("id", &input.id, "WebhookSubscription")?;
            let patch = SubscriptionPatch {
                name: input.name,
                url: input.url,
                events: input.events,
                enabled: input.enabled,
                authorization: input
                    .authorization
                    .map(WebhookAuthorizationInput::into_authorization)
                    .transpose()?,
                headers: headers(input.headers)?,
            };
            let model = service::update(app.db(), &app.state.config, principal, id, patch).await?;
            Ok((model, None))
        }
        .await;
        WebhookSubscriptionPayload::from(result)
    }

    /// Gives a webhook subscription a new signing secret, returned only now.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: WebhookSubscriptionIdInput,
    ) -> async_graphql::Result<WebhookSubscriptionPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = async {
            let id = input_id("id", &input.id, "WebhookSubscription")?;
            let (model, secret) = service::rotate_secret(app.db(), principal, id).await?;
            Ok((model, Some(secret)))
        }
        .await;
        WebhookSubscriptionPayload::from(result)
    }

    /// Deletes a webhook subscription with its delivery log.
    async fn delete_webhook_subscription(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: WebhookSubscriptionIdInput,
    ) -> async_graphql::Result<DeleteWebhookSubscriptionPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("id", &input.id, "WebhookSubscription") {
            Ok(id) => service::delete(app.db(), principal, id).await,
            Err(e) => Err(e),
        };
        let (deleted, user_errors) = split(result)?;
        Ok(DeleteWebhookSubscriptionPayload {
            deleted_id: deleted.map(|id| encode_id("WebhookSubscription", id)),
            user_errors,
        })
    }

    /// Sends a signed `WEBHOOK_PING` to a subscription now and returns the delivery with the
    /// attempt's outcome.
    async fn test_webhook_subscription(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: WebhookSubscriptionIdInput,
    ) -> async_graphql::Result<WebhookDeliveryPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("id", &input.id, "WebhookSubscription") {
            Ok(id) => service::ping(app.db(), &app.state.config, principal, id).await,
            Err(e) => Err(e),
        };
        WebhookDeliveryPayload::from(result)
    }

    /// Sends a delivery again now, with the same `webhook-id` and body.
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: WebhookDeliveryIdInput,
    ) -> async_graphql::Result<WebhookDeliveryPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("id", &input.id, "WebhookDelivery") {
            Ok(id) => service::redeliver(app.db(), &app.state.config, principal, id).await,
            Err(e) => Err(e),
        };
        WebhookDeliveryPayload::from(result)
    }
}
