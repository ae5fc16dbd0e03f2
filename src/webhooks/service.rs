//! Business rules for webhook subscriptions and their deliveries.
//!
//! A subscription names a URL, the event types it wants, how requests are authorized (none,
//! HTTP Basic, or a bearer token) and extra headers. Every request is signed per Standard
//! Webhooks with the subscription's secret (shown once, at creation and rotation). URLs must be
//! http(s) and, unless the configuration allows it, must not reach private, loopback or
//! link-local addresses (checked when saved and again before each attempt, after resolving the
//! host). Each attempt is logged with its status code, latency, the start of the response and any
//! error; an answer `410 Gone` disables the subscription and records why.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::http::{HeaderName, HeaderValue};
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{catalog, dispatch, signing};
use crate::auth::{Permission, Principal};
use crate::config::Config;
use crate::db;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::events::{self, Subject};
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::tenancy;
use crate::validate::Errors;

use entity::webhook_attempt as attempt;
use entity::webhook_delivery as delivery;
use entity::webhook_subscription as subscription;

/// Longest name.
const MAX_NAME: usize = 100;
/// Longest URL.
const MAX_URL: usize = 2_000;
/// Most custom headers.
const MAX_HEADERS: usize = 20;
/// Bytes of a response kept in the attempt log.
const SNIPPET_BYTES: usize = 1_024;
/// Headers the server sets itself.
const RESERVED_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "content-length",
    "authorization",
    "host",
    "user-agent",
];

/// How requests are authorized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authorization {
    /// No `Authorization` header.
    None,
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// Token.
        token: String,
    },
}

impl Authorization {
    fn kind(&self) -> &'static str {
        match self {
            Authorization::None => "NONE",
            Authorization::Basic { .. } => "BASIC",
            Authorization::Bearer { .. } => "BEARER",
        }
    }

    fn columns(&self) -> (Option<String>, Option<String>) {
        match self {
            Authorization::None => (None, None),
            Authorization::Basic { username, password } => {
                (Some(username.clone()), Some(password.clone()))
            }
            Authorization::Bearer { token } => (None, Some(token.clone())),
        }
    }

    fn of(model: &subscription::Model) -> Self {
        let secret = model.auth_secret.clone().unwrap_or_default();
        match model.auth_kind.as_str() {
            "BASIC" => Authorization::Basic {
                username: model.auth_username.clone().unwrap_or_default(),
                password: secret,
            },
            "BEARER" => Authorization::Bearer { token: secret },
            _ => Authorization::None,
        }
    }
}

/// A subscription as given.
#[derive(Clone, Debug)]
pub struct SubscriptionInput {
    /// Name.
    pub name: String,
    /// Where to POST.
    pub url: String,
    /// Event types (see [`catalog::EVENT_TYPES`]).
    pub events: Vec<String>,
    /// Whether it receives events (default true).
    pub enabled: bool,
    /// How requests are authorized.
    pub authorization: Authorization,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
}

/// Changes to a subscription; `None` keeps a field.
#[derive(Clone, Debug, Default)]
pub struct SubscriptionPatch {
    /// New name.
    pub name: Option<String>,
    /// New URL.
    pub url: Option<String>,
    /// New event types.
    pub events: Option<Vec<String>>,
    /// Enable (clears why it was disabled) or disable.
    pub enabled: Option<bool>,
    /// New authorization.
    pub authorization: Option<Authorization>,
    /// New extra headers (replacing the old ones).
    pub headers: Option<BTreeMap<String, String>>,
}

/// Whether `ip` is not on the public internet: loopback, private, link-local, shared (CGNAT),
/// unspecified, multicast, broadcast, or IPv6 unique-local.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
                || a >= 240
                || (a == 198 && (18..20).contains(&b))
                || (a == 192 && b == 0 && c == 0)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            let first = segments[0];
            // NAT64 (64:ff9b::/96, 64:ff9b:1::/48) reaches IPv4 addresses.
            let nat64 = first == 0x0064 && segments[1] == 0xff9b;
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || nat64
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
        }
    }
}

/// Checks `url`: http(s), a host, and (unless allowed) no private address among those the host
/// resolves to. The error says why.
pub async fn check_url(config: &Config, url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|_| format!("{url:?} is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{url:?} is not an http(s) URL"));
    }
    let Some(host) = parsed
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
        .filter(|h| !h.is_empty())
    else {
        return Err(format!("{url:?} has no host"));
    };
    if config.webhook_allow_private_addresses {
        return Ok(parsed);
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| format!("the host of {url:?} does not resolve"))?
            .map(|a| a.ip())
            .collect(),
    };
    if addresses.iter().any(|ip| is_private(*ip)) {
        return Err(format!(
            "{url:?} points to a private or loopback address, which webhooks may not reach"
        ));
    }
    Ok(parsed)
}

fn check_events(errors: &mut Errors, events: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if events.is_empty() {
        errors.add(
            "events",
            UserErrorCode::Required,
            "name at least one event type",
        );
    }
    for (i, event) in events.iter().enumerate() {
        let event = event.trim().to_uppercase();
        if !catalog::exists(&event) {
            errors.add(
                &format!("events.{i}"),
                UserErrorCode::Invalid,
                format!("{event:?} is not an event type (see `webhookEventTypes`)"),
            );
        } else if !out.contains(&event) {
            out.push(event);
        }
    }
    out
}

fn check_headers(
    errors: &mut Errors,
    headers: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    if headers.len() > MAX_HEADERS {
        errors.add(
            "headers",
            UserErrorCode::TooLong,
            format!("at most {MAX_HEADERS} headers"),
        );
    }
    let mut out = BTreeMap::new();
    for (name, value) in headers {
        let field = format!("headers.{name}");
        let lower = name.trim().to_lowercase();
        if HeaderName::from_bytes(lower.as_bytes()).is_err() {
            errors.add(
                &field,
                UserErrorCode::Invalid,
                format!("{name:?} is not a header name"),
            );
        } else if RESERVED_HEADERS.contains(&lower.as_str()) {
            errors.add(
                &field,
                UserErrorCode::Invalid,
                format!("{name:?} is set by the server"),
            );
        } else if HeaderValue::from_str(value).is_err() {
            errors.add(
                &field,
                UserErrorCode::Invalid,
                format!("the value of {name:?} is not a header value"),
            );
        } else {
            out.insert(lower, value.clone());
        }
    }
    out
}

fn check_authorization(errors: &mut Errors, authorization: &Authorization) {
    match authorization {
        Authorization::None => {}
        Authorization::Basic { username, password } => {
            if username.is_empty() || username.contains(':') {
                errors.add(
                    "authorization.username",
                    UserErrorCode::Invalid,
                    "a Basic user name is not empty and has no `:`",
                );
            }
            if password.is_empty() {
                errors.add(
                    "authorization.password",
                    UserErrorCode::Required,
                    "a Basic password must not be empty",
                );
            }
        }
        Authorization::Bearer { token } => {
            if token.trim().is_empty() || HeaderValue::from_str(token).is_err() {
                errors.add(
                    "authorization.token",
                    UserErrorCode::Invalid,
                    "a bearer token is not empty and fits in a header",
                );
            }
        }
    }
}

/// Checks the URL and records its error.
async fn url_field(errors: &mut Errors, config: &Config, url: &str) -> String {
    if url.chars().count() > MAX_URL {
        errors.add(
            "url",
            UserErrorCode::TooLong,
            format!("url must be at most {MAX_URL} characters"),
        );
        return url.to_string();
    }
    match check_url(config, url).await {
        Ok(parsed) => parsed.to_string(),
        Err(why) => {
            errors.add("url", UserErrorCode::Invalid, why);
            url.to_string()
        }
    }
}

async fn record<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    kind: &str,
    id: Uuid,
    payload: Value,
) -> AppResult<()> {
    events::record(
        conn,
        principal.org_id,
        Some(principal.user_id()),
        kind,
        Subject::new("WebhookSubscription", id),
        payload,
    )
    .await?;
    Ok(())
}

/// Creates a subscription (ADMIN); returns it with its secret, which is shown only now.
pub async fn create(
    db: &DatabaseConnection,
    config: &Config,
    principal: &Principal,
    input: SubscriptionInput,
) -> AppResult<(subscription::Model, String)> {
    principal.require(Permission::ManageWebhooks)?;
    let mut errors = Errors::default();
    let name = errors.required_text("name", &input.name, MAX_NAME);
    let url = url_field(&mut errors, config, &input.url).await;
    let events = check_events(&mut errors, &input.events);
    check_authorization(&mut errors, &input.authorization);
    let headers = check_headers(&mut errors, &input.headers);
    errors.finish()?;
    let secret = signing::new_secret();
    let (auth_username, auth_secret) = input.authorization.columns();
    let now = Utc::now();
    let txn = db::begin_write(db).await?;
    let model = subscription::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(principal.org_id),
        name: Set(name),
        url: Set(url),
        event_types: Set(json!(events)),
        secret: Set(secret.clone()),
        auth_kind: Set(input.authorization.kind().into()),
        auth_username: Set(auth_username),
        auth_secret: Set(auth_secret),
        headers: Set(json!(headers)),
        enabled: Set(input.enabled),
        disabled_reason: Set(None),
        disabled_at: Set((!input.enabled).then_some(now)),
        created_by: Set(Some(principal.user_id())),
        cursor_seq: Set(0),
        dispatch_job_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let model = dispatch::ensure_dispatcher(&txn, model, true, now).await?;
    record(
        &txn,
        principal,
        "WEBHOOK_SUBSCRIPTION_CREATED",
        model.id,
        json!({ "name": model.name, "events": model.event_types }),
    )
    .await?;
    txn.commit().await?;
    Ok((model, secret))
}

async fn find<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    id: Uuid,
) -> AppResult<subscription::Model> {
    tenancy::by_id::<subscription::Entity>(org_id, id)
        .one(conn)
        .await?
        .ok_or_else(|| {
            AppError::invalid(
                "id",
                UserErrorCode::NotFound,
                "no such webhook subscription",
            )
        })
}

/// Changes a subscription (ADMIN). Enabling it again clears why it was disabled.
pub async fn update(
    db: &DatabaseConnection,
    config: &Config,
    principal: &Principal,
    id: Uuid,
    patch: SubscriptionPatch,
) -> AppResult<subscription::Model> {
    principal.require(Permission::ManageWebhooks)?;
    let mut errors = Errors::default();
    let name = patch
        .name
        .as_deref()
        .map(|n| errors.required_text("name", n, MAX_NAME));
    let url = match patch.url.as_deref() {
        Some(url) => Some(url_field(&mut errors, config, url).await),
        None => None,
    };
    let events = patch
        .events
        .as_deref()
        .map(|e| check_events(&mut errors, e));
    if let Some(authorization) = &patch.authorization {
        check_authorization(&mut errors, authorization);
    }
    let headers = patch
        .headers
        .as_ref()
        .map(|h| check_headers(&mut errors, h));
    errors.finish()?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id).await?;
    let mut changed = Vec::new();
    let now = Utc::now();
    let enabled_before = current.enabled;
    let mut model = current.into_active_model();
    if let Some(name) = name {
        model.name = Set(name);
        changed.push("name");
    }
    if let Some(url) = url {
        model.url = Set(url);
        changed.push("url");
    }
    if let Some(events) = events {
        model.event_types = Set(json!(events));
        changed.push("events");
    }
    if let Some(authorization) = patch.authorization {
        let (username, secret) = authorization.columns();
        model.auth_kind = Set(authorization.kind().into());
        model.auth_username = Set(username);
        model.auth_secret = Set(secret);
        changed.push("authorization");
    }
    if let Some(headers) = headers {
        model.headers = Set(json!(headers));
        changed.push("headers");
    }
    if let Some(enabled) = patch.enabled {
        model.enabled = Set(enabled);
        if enabled {
            model.disabled_reason = Set(None);
            model.disabled_at = Set(None);
        } else if enabled_before {
            model.disabled_at = Set(Some(now));
        }
        changed.push("enabled");
    }
    model.updated_at = Set(now);
    let updated = model.update(&txn).await?;
    // Enabled again: events from now on (not those it missed); still enabled: make sure its
    // dispatcher runs.
    let updated = dispatch::ensure_dispatcher(&txn, updated, !enabled_before, now).await?;
    record(
        &txn,
        principal,
        "WEBHOOK_SUBSCRIPTION_UPDATED",
        id,
        json!({ "changed": changed }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Gives a subscription a new secret (ADMIN); returns it, shown only now.
pub async fn rotate_secret(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
) -> AppResult<(subscription::Model, String)> {
    principal.require(Permission::ManageWebhooks)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id).await?;
    let secret = signing::new_secret();
    let mut model = current.into_active_model();
    model.secret = Set(secret.clone());
    model.updated_at = Set(Utc::now());
    let updated = model.update(&txn).await?;
    record(&txn, principal, "WEBHOOK_SECRET_ROTATED", id, json!({})).await?;
    txn.commit().await?;
    Ok((updated, secret))
}

/// Deletes a subscription with its delivery log (ADMIN).
pub async fn delete(db: &DatabaseConnection, principal: &Principal, id: Uuid) -> AppResult<Uuid> {
    principal.require(Permission::ManageWebhooks)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id).await?;
    subscription::Entity::delete_by_id(current.id)
        .exec(&txn)
        .await?;
    record(
        &txn,
        principal,
        "WEBHOOK_SUBSCRIPTION_DELETED",
        id,
        json!({ "name": current.name }),
    )
    .await?;
    txn.commit().await?;
    Ok(id)
}

/// One page of the organization's subscriptions, newest first.
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    args: &PageArgs,
) -> AppResult<(Page<subscription::Model>, TotalCount)> {
    principal.require(Permission::ManageWebhooks)?;
    let select = tenancy::in_org::<subscription::Entity>(principal.org_id);
    let sort = Sort {
        name: "CREATED_AT",
        column: subscription::Column::CreatedAt,
        direction: SortDirection::Desc,
        value: |m: &subscription::Model| SortValue::Time(m.created_at),
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "webhookSubscriptions", &sort, args).await?;
    Ok((page, total))
}

/// Which deliveries to list.
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    /// Of this event type.
    pub event_type: Option<String>,
    /// In this status (`PENDING SUCCEEDED FAILED`).
    pub status: Option<&'static str>,
}

/// One page of a subscription's deliveries, newest first.
pub async fn deliveries(
    db: &DatabaseConnection,
    org_id: Uuid,
    subscription_id: Uuid,
    filter: DeliveryFilter,
    args: &PageArgs,
) -> AppResult<(Page<delivery::Model>, TotalCount)> {
    let mut select = tenancy::in_org::<delivery::Entity>(org_id)
        .filter(delivery::Column::SubscriptionId.eq(subscription_id));
    if let Some(event_type) = filter.event_type {
        select = select.filter(delivery::Column::EventType.eq(event_type.trim().to_uppercase()));
    }
    if let Some(status) = filter.status {
        select = select.filter(delivery::Column::Status.eq(status));
    }
    let sort = Sort {
        name: "CREATED_AT",
        column: delivery::Column::CreatedAt,
        direction: SortDirection::Desc,
        value: |m: &delivery::Model| SortValue::Time(m.created_at),
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "deliveries", &sort, args).await?;
    Ok((page, total))
}

/// A delivery's attempts, oldest first.
pub async fn attempts(
    db: &DatabaseConnection,
    org_id: Uuid,
    delivery_id: Uuid,
) -> AppResult<Vec<attempt::Model>> {
    Ok(tenancy::in_org::<attempt::Entity>(org_id)
        .filter(attempt::Column::DeliveryId.eq(delivery_id))
        .order_by_asc(attempt::Column::AttemptedAt)
        .order_by_asc(attempt::Column::Id)
        .all(db)
        .await?)
}

/// The latest delivery of each event type a subscription delivered (Dixa's delivery status),
/// by event type: one statement, whatever the log's length.
pub async fn latest_by_event_type(
    db: &DatabaseConnection,
    org_id: Uuid,
    subscription_id: Uuid,
) -> AppResult<Vec<delivery::Model>> {
    use sea_orm::sea_query::{Expr, ExprTrait as _, Query};
    let newest = Query::select()
        .column(delivery::Column::EventType)
        .expr(Expr::col(delivery::Column::CreatedAt).max())
        .from(delivery::Entity)
        .and_where(Expr::col(delivery::Column::SubscriptionId).eq(subscription_id))
        .group_by_col(delivery::Column::EventType)
        .to_owned();
    let rows = tenancy::in_org::<delivery::Entity>(org_id)
        .filter(delivery::Column::SubscriptionId.eq(subscription_id))
        .filter(
            Expr::tuple([
                Expr::col(delivery::Column::EventType),
                Expr::col(delivery::Column::CreatedAt),
            ])
            .in_subquery(newest),
        )
        .order_by_asc(delivery::Column::EventType)
        .order_by_desc(delivery::Column::Id)
        .all(db)
        .await?;
    // Two deliveries of one type in the same instant: the later id.
    let mut latest: Vec<delivery::Model> = Vec::with_capacity(rows.len());
    for row in rows {
        if latest.last().is_none_or(|l| l.event_type != row.event_type) {
            latest.push(row);
        }
    }
    Ok(latest)
}

/// Resolves host names to their public addresses only: the connection goes to an address that
/// was checked, whatever the name resolves to at another moment (DNS rebinding).
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let public: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| !is_private(address.ip()))
                .collect();
            if public.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            let addresses: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addresses)
        })
    }
}

/// The HTTP client: no redirects (they could lead anywhere); unless private addresses are
/// allowed, names resolve to public addresses only.
pub(crate) fn client(allow_private: bool) -> &'static reqwest::Client {
    static OPEN: OnceLock<reqwest::Client> = OnceLock::new();
    static PUBLIC: OnceLock<reqwest::Client> = OnceLock::new();
    let build = |public_only: bool| {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Switchboard-Webhooks/", env!("CARGO_PKG_VERSION")));
        if public_only {
            builder = builder.dns_resolver(std::sync::Arc::new(PublicOnly));
        }
        builder.build().unwrap_or_default()
    };
    if allow_private {
        OPEN.get_or_init(|| build(false))
    } else {
        PUBLIC.get_or_init(|| build(true))
    }
}

/// The first [`SNIPPET_BYTES`] of a response's body (the rest is not read).
async fn snippet(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < SNIPPET_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(SNIPPET_BYTES);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// What one attempt got.
pub(crate) struct Outcome {
    /// The receiver's status code, when it answered.
    pub status_code: Option<u16>,
    /// The start of its answer.
    pub snippet: Option<String>,
    /// Why there was no answer.
    pub error: Option<String>,
    /// How long the attempt took.
    pub latency: Duration,
    /// How long the receiver asked to be left alone (`Retry-After`), when it did.
    pub retry_after: Option<chrono::Duration>,
}

impl Outcome {
    /// Whether the receiver took the delivery (a 2xx answer).
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|s| (200..300).contains(&s))
    }

    /// Why the attempt failed, when it did.
    fn failure(&self) -> Option<String> {
        match (&self.error, self.status_code) {
            (Some(error), _) => Some(error.clone()),
            (None, Some(status)) if !self.succeeded() => {
                Some(format!("the receiver answered {status}"))
            }
            _ => None,
        }
    }
}

/// A `Retry-After` value: seconds, or an HTTP date (RFC 9110 §10.2.3), as a wait from now.
pub(crate) fn retry_after(value: &str) -> Option<chrono::Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u32>() {
        return Some(chrono::Duration::seconds(i64::from(seconds)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - Utc::now()).max(chrono::Duration::zero()))
}

/// POSTs `body` to the subscription, signed, with its authorization and headers.
pub(crate) async fn post(
    config: &Config,
    subscription: &subscription::Model,
    delivery_id: Uuid,
    body: &[u8],
) -> Outcome {
    let started = Instant::now();
    let failed = |error: String| Outcome {
        status_code: None,
        snippet: None,
        error: Some(error),
        latency: started.elapsed(),
        retry_after: None,
    };
    let url = match check_url(config, &subscription.url).await {
        Ok(url) => url,
        Err(why) => return failed(format!("not sent: {why}")),
    };
    let id = format!("msg_{}", delivery_id.simple());
    let timestamp = Utc::now().timestamp();
    let mut request = client(config.webhook_allow_private_addresses)
        .post(url)
        .timeout(Duration::from_secs(config.webhook_timeout_seconds.max(1)))
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            signing::sign(&subscription.secret, &id, timestamp, body),
        );
    if let Some(headers) = subscription.headers.as_object() {
        for (name, value) in headers {
            if let Some(value) = value.as_str() {
                request = request.header(name.as_str(), value);
            }
        }
    }
    request = match Authorization::of(subscription) {
        Authorization::None => request,
        Authorization::Basic { username, password } => request.basic_auth(username, Some(password)),
        Authorization::Bearer { token } => request.bearer_auth(token),
    };
    match request.body(body.to_vec()).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(retry_after);
            Outcome {
                status_code: Some(status),
                snippet: Some(snippet(response).await),
                error: None,
                latency: started.elapsed(),
                retry_after,
            }
        }
        Err(error) if error.is_timeout() => failed("timed out".into()),
        Err(error) if error.is_connect() => failed("could not connect".into()),
        Err(_) => failed("the request failed".into()),
    }
}

/// What becomes of a delivery whose attempt failed.
pub(crate) enum OnFailure {
    /// It ends `FAILED` (a ping, or a manual redelivery of a delivery that is not being retried).
    Fail,
    /// It stays `PENDING`, next attempted at this time (the dispatcher's retry schedule).
    RetryAt(chrono::DateTime<Utc>),
    /// Its retries are used up: it fails and the subscription is disabled with this reason.
    GiveUp(String),
    /// It stays as it is (`PENDING` with its next attempt unchanged): a manual redelivery of a
    /// delivery the dispatcher is still retrying.
    Keep,
}

/// Records one attempt of `delivery` in `txn`: logs it, moves the delivery (`SUCCEEDED` on a 2xx
/// answer, else as `on_failure` says) and disables the subscription on `410 Gone` or when the
/// delivery gives up. Returns the delivery and whether the subscription was disabled now.
pub(crate) async fn settle<C: ConnectionTrait>(
    txn: &C,
    subscription: &subscription::Model,
    delivery: delivery::Model,
    outcome: Outcome,
    now: chrono::DateTime<Utc>,
    on_failure: OnFailure,
) -> AppResult<(delivery::Model, bool)> {
    let succeeded = outcome.succeeded();
    let failure = outcome.failure();
    attempt::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(delivery.org_id),
        delivery_id: Set(delivery.id),
        attempted_at: Set(now),
        status_code: Set(outcome.status_code.map(i32::from)),
        latency_ms: Set(i32::try_from(outcome.latency.as_millis()).unwrap_or(i32::MAX)),
        response_snippet: Set(outcome.snippet),
        error: Set(outcome.error),
    }
    .insert(txn)
    .await?;
    let gone = outcome.status_code == Some(410);
    let attempts = delivery.attempts + 1;
    let mut model = delivery.into_active_model();
    model.attempts = Set(attempts);
    model.last_status_code = Set(outcome.status_code.map(i32::from));
    model.last_error = Set(failure);
    let mut disable = None;
    if succeeded {
        model.status = Set("SUCCEEDED".into());
        model.next_attempt_at = Set(None);
        model.delivered_at = Set(Some(now));
    } else if gone {
        model.status = Set("FAILED".into());
        model.next_attempt_at = Set(None);
        disable = Some((
            "GONE",
            "the receiver answered 410 Gone: it no longer wants deliveries".to_string(),
        ));
    } else {
        match on_failure {
            OnFailure::Fail => {
                model.status = Set("FAILED".into());
                model.next_attempt_at = Set(None);
            }
            OnFailure::RetryAt(at) => {
                model.status = Set("PENDING".into());
                model.next_attempt_at = Set(Some(at));
            }
            OnFailure::GiveUp(reason) => {
                model.status = Set("FAILED".into());
                model.next_attempt_at = Set(None);
                disable = Some(("FAILING", reason));
            }
            OnFailure::Keep => {}
        }
    }
    model.updated_at = Set(now);
    let updated = model.update(txn).await?;
    let mut disabled_now = false;
    if let Some((code, reason)) = disable
        && subscription.enabled
    {
        let mut disabled = subscription.clone().into_active_model();
        disabled.enabled = Set(false);
        disabled.disabled_at = Set(Some(now));
        disabled.disabled_reason = Set(Some(reason.clone()));
        disabled.updated_at = Set(now);
        disabled.update(txn).await?;
        events::record(
            txn,
            subscription.org_id,
            None,
            "WEBHOOK_SUBSCRIPTION_DISABLED",
            Subject::new("WebhookSubscription", subscription.id),
            json!({ "reason": code, "message": reason }),
        )
        .await?;
        disabled_now = true;
    }
    Ok((updated, disabled_now))
}

/// Makes one attempt of `delivery` now and records it ([`settle`]). A failure ends it `FAILED`,
/// except for a delivery the dispatcher is retrying, which keeps its schedule.
pub async fn attempt_now(
    db: &DatabaseConnection,
    config: &Config,
    subscription: &subscription::Model,
    delivery: delivery::Model,
) -> AppResult<delivery::Model> {
    let body = serde_json::to_vec(&delivery.payload).map_err(AppError::internal)?;
    let outcome = post(config, subscription, delivery.id, &body).await;
    let on_failure = if delivery.status == "PENDING" && delivery.event_seq.is_some() {
        OnFailure::Keep
    } else {
        OnFailure::Fail
    };
    let txn = db::begin_write(db).await?;
    let (updated, _) = settle(
        &txn,
        subscription,
        delivery,
        outcome,
        Utc::now(),
        on_failure,
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// A new `PENDING` delivery of `payload` to `subscription`, for the event `(id, sequence)` when
/// it is one.
pub(crate) fn new_delivery(
    subscription: &subscription::Model,
    event: Option<(Uuid, i64)>,
    event_type: &str,
    payload: Value,
    now: chrono::DateTime<Utc>,
) -> delivery::ActiveModel {
    delivery::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(subscription.org_id),
        subscription_id: Set(subscription.id),
        event_id: Set(event.map(|(id, _)| id)),
        event_seq: Set(event.map(|(_, seq)| seq)),
        event_type: Set(event_type.into()),
        payload: Set(payload),
        status: Set("PENDING".into()),
        attempts: Set(0),
        next_attempt_at: Set(None),
        last_status_code: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        delivered_at: Set(None),
    }
}

/// Sends a signed ping to a subscription now (ADMIN) and returns its delivery with the
/// attempt's outcome. A disabled subscription is pinged too (that is how one checks a fixed
/// receiver before enabling it again).
pub async fn ping(
    db: &DatabaseConnection,
    config: &Config,
    principal: &Principal,
    id: Uuid,
) -> AppResult<delivery::Model> {
    principal.require(Permission::ManageWebhooks)?;
    let subscription = find(db, principal.org_id, id).await?;
    let now = Utc::now();
    let payload = json!({
        "type": catalog::PING,
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": { "subscriptionId": crate::graphql::relay::encode_id("WebhookSubscription", id).0 },
    });
    let txn = db::begin_write(db).await?;
    let delivery = new_delivery(&subscription, None, catalog::PING, payload, now)
        .insert(&txn)
        .await?;
    txn.commit().await?;
    attempt_now(db, config, &subscription, delivery).await
}

/// Sends a delivery again now (ADMIN), with the same `webhook-id` and body, and returns it.
pub async fn redeliver(
    db: &DatabaseConnection,
    config: &Config,
    principal: &Principal,
    delivery_id: Uuid,
) -> AppResult<delivery::Model> {
    principal.require(Permission::ManageWebhooks)?;
    let delivery = tenancy::by_id::<delivery::Entity>(principal.org_id, delivery_id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::invalid("id", UserErrorCode::NotFound, "no such delivery"))?;
    let subscription = find(db, principal.org_id, delivery.subscription_id).await?;
    attempt_now(db, config, &subscription, delivery).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::is_private;

    #[test]
    fn private_and_loopback_addresses_are_recognised() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "198.18.0.1",
            "240.0.0.1",
            "192.0.0.8",
            "fec0::1",
        ] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in ["203.0.113.10", "8.8.8.8", "2001:4860:4860::8888"] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
    }
}
