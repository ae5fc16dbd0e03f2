//! GraphQL over HTTP (the GraphQL-over-HTTP specification): `POST /graphql` with JSON (or
//! multipart/form-data with files, per the GraphQL multipart request specification),
//! `GET /graphql` for queries, media-type negotiation, status codes, authentication, batching,
//! execution timeout, and GraphiQL.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::http::GraphiQLSource;
use async_graphql::parser::types::OperationType;
use async_graphql::{Response as GqlResponse, Variables};
use axum::body::to_bytes;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use futures_util::{StreamExt, TryStreamExt};

use super::error_response;
use super::metrics::{OperationKind, Outcome};
use crate::AppState;
use crate::auth::{self, Principal};
use crate::error::AppError;
use crate::graphql::context::RequestCtx;
use crate::graphql::limits::{MetaSnapshot, RequestMeta, Stage, coded_error};
use crate::idempotency::{self, Claim, Recorded};
use crate::ratelimit::RateStatus;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";
const MULTIPART: &str = "multipart/form-data";
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The response media type the client accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MediaType {
    /// `application/graphql-response+json`: status codes follow the outcome.
    GraphqlResponse,
    /// `application/json`: 200 for every well-formed request.
    Json,
}

impl MediaType {
    fn as_str(self) -> &'static str {
        match self {
            MediaType::GraphqlResponse => GRAPHQL_RESPONSE,
            MediaType::Json => JSON,
        }
    }
}

/// Picks the response media type from `Accept` by quality value; on a tie
/// `application/graphql-response+json` wins. No `Accept` means `application/json` (the
/// GraphQL-over-HTTP rule for legacy clients); `None` when nothing acceptable is offered.
fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(MediaType::Json);
    };
    let (mut graphql, mut json) = (0.0_f32, 0.0_f32);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            GRAPHQL_RESPONSE => graphql = graphql.max(quality),
            JSON => json = json.max(quality),
            "*/*" | "application/*" => json = json.max(quality),
            _ => {}
        }
    }
    if graphql <= 0.0 && json <= 0.0 {
        None
    } else if graphql >= json {
        Some(MediaType::GraphqlResponse)
    } else {
        Some(MediaType::Json)
    }
}

fn bearer(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| AppError::Unauthenticated("malformed Authorization header".into()))?;
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(AppError::Unauthenticated(
                "the Authorization header must be `Bearer <token>`".into(),
            ));
        }
        return Ok(Some(token.trim().to_string()));
    }
    if let Some(value) = headers.get("x-api-key") {
        let token = value
            .to_str()
            .map_err(|_| AppError::Unauthenticated("malformed X-Api-Key header".into()))?;
        return Ok(Some(token.trim().to_string()));
    }
    Ok(None)
}

/// Authenticates the request; `Ok(None)` for requests without credentials.
pub(crate) async fn principal(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Principal>, AppError> {
    match bearer(headers)? {
        Some(token) => Ok(Some(auth::authenticate(&state.db, &token).await?)),
        None => Ok(None),
    }
}

/// The response to a failed authentication: 401 with `WWW-Authenticate: Bearer`.
pub(crate) fn auth_failure(state: &AppState, error: AppError) -> Response {
    state
        .metrics
        .record(OperationKind::Unknown, Outcome::Unauthenticated, 0.0);
    match error {
        AppError::Unauthenticated(_) => {
            let mut response = error_response(
                StatusCode::UNAUTHORIZED,
                &error.public_message(),
                error.code(),
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        other => {
            let _ = other.clone().into_graphql();
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &other.public_message(),
                other.code(),
            )
        }
    }
}

/// One GraphQL request as read off the wire.
struct Incoming {
    query: String,
    operation_name: Option<String>,
    variables: Variables,
}

fn bad_request(message: impl Into<String>) -> Response {
    error_response(StatusCode::BAD_REQUEST, &message.into(), "BAD_REQUEST")
}

fn parse_incoming(value: serde_json::Value) -> Result<Incoming, &'static str> {
    let serde_json::Value::Object(mut map) = value else {
        return Err("the request body must be a JSON object");
    };
    let query = match map.remove("query") {
        Some(serde_json::Value::String(q)) if !q.trim().is_empty() => q,
        Some(serde_json::Value::String(_)) | None | Some(serde_json::Value::Null) => {
            return Err("the request has no `query`");
        }
        Some(_) => return Err("`query` must be a string"),
    };
    let operation_name = match map.remove("operationName") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(name)) => Some(name),
        Some(_) => return Err("`operationName` must be a string"),
    };
    let variables = match map.remove("variables") {
        None | Some(serde_json::Value::Null) => Variables::default(),
        Some(value @ serde_json::Value::Object(_)) => Variables::from_json(value),
        Some(_) => return Err("`variables` must be an object"),
    };
    Ok(Incoming {
        query,
        operation_name,
        variables,
    })
}

/// The result of executing one operation.
struct Executed {
    response: GqlResponse,
    meta: MetaSnapshot,
    /// Ran to the end without a fault or timeout: its response may be replayed for its
    /// idempotency key.
    completed: bool,
}

async fn execute(
    state: &AppState,
    ctx: &Arc<RequestCtx>,
    rate_key: Option<String>,
    incoming: Incoming,
    get_request: bool,
) -> Executed {
    let mut request = async_graphql::Request::new(incoming.query).variables(incoming.variables);
    if let Some(name) = incoming.operation_name {
        request = request.operation_name(name);
    }
    execute_request(state, ctx, rate_key, request, get_request).await
}

async fn execute_request(
    state: &AppState,
    ctx: &Arc<RequestCtx>,
    rate_key: Option<String>,
    request: async_graphql::Request,
    get_request: bool,
) -> Executed {
    let started = Instant::now();
    let meta = Arc::new(RequestMeta::new(
        request.operation_name.clone(),
        get_request,
        rate_key,
    ));
    let request = request.data(ctx.clone()).data(meta.clone());
    let timeout = Duration::from_millis(state.config.execution_timeout_ms.max(1));
    // The operation runs as its own task so that a timeout never cuts a mutation short: one
    // that may have committed must not be answered as failed. Queries are stopped at the
    // timeout; mutations run to their end (the database's busy timeout bounds their waits).
    let schema = state.schema.clone();
    let mut task = tokio::spawn(tracing::Instrument::in_current_span(async move {
        schema.execute(request).await
    }));
    let joined = |joined: Result<GqlResponse, tokio::task::JoinError>| match joined {
        Ok(response) => response,
        Err(error) => {
            tracing::error!(%error, "the operation's task failed");
            let error = AppError::internal(error.to_string());
            GqlResponse::from_errors(vec![coded_error(error.public_message(), error.code())])
        }
    };
    let (response, timed_out) = match tokio::time::timeout(timeout, &mut task).await {
        Ok(done) => (joined(done), false),
        Err(_) if meta.snapshot().operation_type == Some(OperationType::Mutation) => {
            (joined(task.await), false)
        }
        Err(_) => {
            task.abort();
            let error = AppError::Timeout;
            (
                GqlResponse::from_errors(vec![coded_error(error.public_message(), error.code())]),
                true,
            )
        }
    };
    let snapshot = meta.snapshot();
    if snapshot.operation_type == Some(OperationType::Mutation) {
        // Its transactions have committed (or rolled back): subscribers may have news.
        state.bus.poke();
    }
    let kind = match snapshot.operation_type {
        Some(OperationType::Query) => OperationKind::Query,
        Some(OperationType::Mutation) => OperationKind::Mutation,
        Some(OperationType::Subscription) => OperationKind::Subscription,
        None => OperationKind::Unknown,
    };
    let outcome = if timed_out {
        Outcome::Timeout
    } else {
        match snapshot.stage {
            Stage::RateLimited => Outcome::RateLimited,
            Stage::Executing if response.errors.is_empty() => Outcome::Ok,
            Stage::Executing => Outcome::Error,
            _ => Outcome::Rejected,
        }
    };
    state
        .metrics
        .record(kind, outcome, started.elapsed().as_secs_f64());
    let completed = outcome_completed(&outcome)
        && !response.errors.iter().any(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .is_some_and(|c| *c == async_graphql::Value::from("INTERNAL_SERVER_ERROR"))
        });
    Executed {
        response,
        meta: snapshot,
        completed,
    }
}

fn outcome_completed(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Ok | Outcome::Error)
}

/// Status code of a single operation's response.
fn status_of(executed: &Executed, media: MediaType) -> StatusCode {
    match executed.meta.stage {
        Stage::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Stage::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Stage::ParseFailed => StatusCode::BAD_REQUEST,
        Stage::Executing => StatusCode::OK,
        Stage::Received | Stage::Rejected => match media {
            MediaType::GraphqlResponse if !executed.response.errors.is_empty() => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::OK,
        },
    }
}

fn rate_headers(headers: &mut HeaderMap, rate: Option<RateStatus>, retry_after: Option<u64>) {
    if let Some(rate) = rate.filter(|r| r.limit > 0) {
        headers.insert("x-ratelimit-limit", HeaderValue::from(rate.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(rate.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(rate.reset_secs));
    }
    if let Some(seconds) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
}

fn json_response(status: StatusCode, media: MediaType, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, media.as_str())], body).into_response()
}

fn serialize<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| {
        super::error_body("internal server error", "INTERNAL_SERVER_ERROR")
            .to_string()
            .into_bytes()
    })
}

fn client_addr(request: &Request) -> Option<String> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| format!("ip:{}", addr.ip()))
}

fn rate_key(
    state: &AppState,
    principal: Option<&Principal>,
    addr: Option<String>,
) -> Option<String> {
    if !state.rate_limiter.enabled() {
        return None;
    }
    match principal {
        Some(p) => Some(format!("token:{}", p.token_id)),
        None => addr,
    }
}

/// `POST /graphql`.
pub async fn post_handler(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if content_type != JSON && content_type != MULTIPART {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request as application/json (or multipart/form-data with files)",
            "UNSUPPORTED_MEDIA_TYPE",
        );
    }
    let Some(media) = negotiate(&headers) else {
        return error_response(
            StatusCode::NOT_ACCEPTABLE,
            "this endpoint answers application/graphql-response+json or application/json",
            "NOT_ACCEPTABLE",
        );
    };
    if content_type == MULTIPART {
        return post_multipart(state, request, media).await;
    }
    let addr = client_addr(&request);
    let limit = state.config.max_body_bytes;
    let body = match to_bytes(request.into_body(), limit).await {
        Ok(body) => body,
        Err(_) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the request body is larger than {limit} bytes"),
                "PAYLOAD_TOO_LARGE",
            );
        }
    };
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(error) => return bad_request(format!("the request body is not valid JSON: {error}")),
    };
    let principal = match principal(&state, &headers).await {
        Ok(p) => p,
        Err(error) => return auth_failure(&state, error),
    };
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| v.to_str().unwrap_or("\u{0}").to_string());
    let claim = match (&key, &principal) {
        (Some(key), Some(principal)) => {
            match idempotency::claim(&state.db, principal, key, &body).await {
                Ok(claim) => Some(claim),
                Err(error) => return request_error(error),
            }
        }
        _ => None,
    };
    let claim_id = match claim {
        Some(Claim::Replay(recorded)) => return replay(recorded),
        Some(Claim::Fresh(id)) => Some(id),
        None => None,
    };
    let rate_key = rate_key(&state, principal.as_ref(), addr);
    let ctx = Arc::new(RequestCtx::new(state.clone(), principal));
    let (response, completed) = run_body(&state, &ctx, rate_key, value, media).await;
    match claim_id {
        Some(id) => record(&state, id, response, completed).await,
        None => response,
    }
}

/// A request-level error for a failure outside GraphQL execution.
fn request_error(error: AppError) -> Response {
    let status = match &error {
        AppError::Conflict(_) => StatusCode::CONFLICT,
        AppError::BadUserInput(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let message = error.public_message();
    let code = error.code();
    let _ = error.into_graphql();
    error_response(status, &message, code)
}

fn replay(recorded: Recorded) -> Response {
    let mut response = (
        StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::OK),
        [(header::CONTENT_TYPE, recorded.content_type)],
        recorded.body,
    )
        .into_response();
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// Records a successful response for its idempotency key, or releases the key so a retry runs.
async fn record(state: &AppState, id: uuid::Uuid, response: Response, completed: bool) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        let _ = idempotency::release(&state.db, id).await;
        return request_error(AppError::internal("response body could not be read"));
    };
    let result = if completed && parts.status.is_success() {
        let recorded = Recorded {
            status: parts.status.as_u16(),
            content_type: parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(JSON)
                .to_string(),
            body: bytes.to_vec(),
        };
        idempotency::complete(&state.db, id, &recorded).await
    } else {
        idempotency::release(&state.db, id).await
    };
    if let Err(error) = result {
        let _ = error.into_graphql();
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Executes a parsed JSON body: one operation or a batch.
async fn run_body(
    state: &AppState,
    ctx: &Arc<RequestCtx>,
    rate_key: Option<String>,
    value: serde_json::Value,
    media: MediaType,
) -> (Response, bool) {
    match value {
        serde_json::Value::Array(items) => {
            if items.is_empty() {
                return (bad_request("the batch is empty"), false);
            }
            if items.len() > state.config.max_batch {
                let refused = error_response(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "the batch has {} operations; the limit is {}",
                        items.len(),
                        state.config.max_batch
                    ),
                    "QUERY_TOO_COMPLEX",
                );
                return (refused, false);
            }
            let mut requests = Vec::with_capacity(items.len());
            for item in items {
                match parse_incoming(item) {
                    Ok(i) => {
                        let mut request =
                            async_graphql::Request::new(i.query).variables(i.variables);
                        if let Some(name) = i.operation_name {
                            request = request.operation_name(name);
                        }
                        requests.push(request);
                    }
                    Err(message) => return (bad_request(message), false),
                }
            }
            run_batch(state, ctx, rate_key, requests, media).await
        }
        other => {
            let incoming = match parse_incoming(other) {
                Ok(i) => i,
                Err(message) => return (bad_request(message), false),
            };
            let executed = execute(state, ctx, rate_key, incoming, false).await;
            let completed = executed.completed;
            (respond(executed, media), completed)
        }
    }
}

/// Executes the operations of a batch in order; answers a JSON array.
async fn run_batch(
    state: &AppState,
    ctx: &Arc<RequestCtx>,
    rate_key: Option<String>,
    requests: Vec<async_graphql::Request>,
    media: MediaType,
) -> (Response, bool) {
    let mut responses = Vec::with_capacity(requests.len());
    let mut last_rate = None;
    let mut retry_after = None;
    let mut completed = true;
    for request in requests {
        let executed = execute_request(state, ctx, rate_key.clone(), request, false).await;
        last_rate = executed.meta.rate.or(last_rate);
        retry_after = executed.meta.retry_after.or(retry_after);
        completed &= executed.completed;
        responses.push(executed.response);
    }
    let mut response = json_response(StatusCode::OK, media, serialize(&responses));
    rate_headers(response.headers_mut(), last_rate, retry_after);
    (response, completed)
}

/// Largest multipart request: the JSON body limit plus the most attachments a message takes at
/// their largest size.
fn multipart_limit(config: &crate::Config) -> usize {
    config.max_body_bytes.saturating_add(
        crate::attachments::MAX_PER_MESSAGE.saturating_mul(config.max_attachment_bytes),
    )
}

/// `POST /graphql` as `multipart/form-data` per the GraphQL multipart request specification
/// (files for `Upload` variables). Accepted only with an `Authorization: Bearer` header: browsers
/// cannot add one to a cross-site form post, so this opens no CSRF hole. Files are spooled to
/// temporary files while the body streams in, and the body is limited (see
/// [`multipart_limit`]). `Idempotency-Key` is not supported here (a message's `externalId` makes
/// sends idempotent).
async fn post_multipart(state: AppState, request: Request, media: MediaType) -> Response {
    let headers = request.headers().clone();
    let has_bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"));
    if !has_bearer {
        return auth_failure(
            &state,
            AppError::Unauthenticated(
                "multipart requests need an `Authorization: Bearer <token>` header".into(),
            ),
        );
    }
    let principal = match principal(&state, &headers).await {
        Ok(p) => p,
        Err(error) => return auth_failure(&state, error),
    };
    if headers.contains_key(IDEMPOTENCY_KEY) {
        return bad_request(
            "Idempotency-Key is not supported on multipart requests; give the message an externalId instead",
        );
    }
    let limit = multipart_limit(&state.config);
    let too_large = || {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the multipart request body is larger than {limit} bytes"),
            "PAYLOAD_TOO_LARGE",
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let addr = client_addr(&request);
    let exceeded = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = exceeded.clone();
    let mut received = 0usize;
    let body = request.into_body().into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        received = received.saturating_add(chunk.len());
        if received > limit {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
            return Err(std::io::Error::other("the multipart body is too large"));
        }
        Ok(chunk)
    });
    let parsed = async_graphql::http::receive_batch_body(
        Some(content_type),
        body.into_async_read(),
        async_graphql::http::MultipartOptions::default(),
    )
    .await;
    let batch = match parsed {
        Ok(batch) => batch,
        Err(_) if exceeded.load(std::sync::atomic::Ordering::Relaxed) => return too_large(),
        Err(error) => return bad_request(format!("invalid multipart request: {error}")),
    };
    let rate_key = rate_key(&state, principal.as_ref(), addr);
    let ctx = Arc::new(RequestCtx::new(state.clone(), principal));
    match batch {
        async_graphql::BatchRequest::Single(request) => {
            if request.query.trim().is_empty() {
                return bad_request("the request has no `query`");
            }
            let executed = execute_request(&state, &ctx, rate_key, request, false).await;
            respond(executed, media)
        }
        async_graphql::BatchRequest::Batch(requests) => {
            if requests.is_empty() {
                return bad_request("the batch is empty");
            }
            if requests.len() > state.config.max_batch {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "the batch has {} operations; the limit is {}",
                        requests.len(),
                        state.config.max_batch
                    ),
                    "QUERY_TOO_COMPLEX",
                );
            }
            run_batch(&state, &ctx, rate_key, requests, media).await.0
        }
    }
}

fn respond(executed: Executed, media: MediaType) -> Response {
    let status = status_of(&executed, media);
    let mut response = json_response(status, media, serialize(&executed.response));
    rate_headers(
        response.headers_mut(),
        executed.meta.rate,
        executed.meta.retry_after,
    );
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// The GraphiQL page.
pub async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("Switchboard GraphiQL")
            .finish(),
    )
}

/// `GET /graphql`: GraphiQL for browsers, otherwise queries (never mutations) from the URL.
pub async fn get_handler(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let param = |name: &str| params.get(name).cloned();
    if param("query").is_none() && wants_html(&headers) && state.config.graphiql {
        return graphiql().await.into_response();
    }
    let Some(media) = negotiate(&headers) else {
        return error_response(
            StatusCode::NOT_ACCEPTABLE,
            "this endpoint answers application/graphql-response+json or application/json",
            "NOT_ACCEPTABLE",
        );
    };
    let Some(query) = param("query").filter(|q| !q.trim().is_empty()) else {
        return bad_request("the request has no `query` parameter");
    };
    let variables = match param("variables") {
        None => Variables::default(),
        Some(raw) => match serde_json::from_str::<serde_json::Value>(&raw) {
            Ok(value @ serde_json::Value::Object(_)) => Variables::from_json(value),
            Ok(serde_json::Value::Null) => Variables::default(),
            _ => return bad_request("`variables` must be a JSON object"),
        },
    };
    let addr = client_addr(&request);
    let principal = match principal(&state, &headers).await {
        Ok(p) => p,
        Err(error) => return auth_failure(&state, error),
    };
    let rate_key = rate_key(&state, principal.as_ref(), addr);
    let ctx = Arc::new(RequestCtx::new(state.clone(), principal));
    let incoming = Incoming {
        query,
        operation_name: param("operationName").filter(|n| !n.is_empty()),
        variables,
    };
    let executed = execute(&state, &ctx, rate_key, incoming, true).await;
    respond(executed, media)
}
