//! `GET /graphql/ws`: GraphQL subscriptions over websockets, with the `graphql-transport-ws` and
//! the legacy `graphql-ws` subprotocols. The token comes with the upgrade request
//! (`Authorization: Bearer …`) or in the `connection_init` payload (`{"authorization": "Bearer
//! …"}` or `{"token": "…"}`).
//!
//! Every authenticated connection holds a lease of [`crate::presence::Registry`] for its life:
//! over the per-token cap, an upgrade authenticated by header gets HTTP 429 (`RATE_LIMITED`) and
//! one authenticated in `connection_init` is closed with 4403.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Data, ErrorExtensions};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::guard::{self, Dialect, Limits, close};
use crate::AppState;
use crate::auth;
use crate::error::AppError;
use crate::graphql::context::RequestCtx;
use crate::http::error_response;
use crate::http::graphql::{auth_failure, principal};

/// Bytes the server reads ahead per connection (the library's default is 128 KiB).
const READ_BUFFER: usize = 4 * 1024;

/// The token of a `connection_init` payload.
fn token_of(payload: &serde_json::Value) -> Option<String> {
    let text = |key: &str| payload.get(key).and_then(|v| v.as_str()).map(str::trim);
    if let Some(value) = text("authorization").or_else(|| text("Authorization")) {
        let (scheme, token) = value.split_once(' ').unwrap_or(("", value));
        if scheme.is_empty() || scheme.eq_ignore_ascii_case("bearer") {
            return Some(token.trim().to_string()).filter(|t| !t.is_empty());
        }
        return None;
    }
    text("token").map(str::to_string).filter(|t| !t.is_empty())
}

/// The subprotocols the client asked for, in its order.
fn requested(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Upgrades to a websocket serving the schema's subscriptions for the authenticated caller, with
/// the transport rules of [`super::guard`]. A client asking for no known subprotocol is answered
/// with the first one it asked for and closed with 4406.
pub async fn handler(
    State(state): State<AppState>,
    protocol: Result<GraphQLProtocol, StatusCode>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let requested = requested(&headers);
    let upgrade = upgrade.read_buffer_size(READ_BUFFER);
    let Ok(protocol) = protocol else {
        return upgrade
            .protocols(requested.into_iter().take(1))
            .on_upgrade(|socket| {
                guard::refuse(
                    socket,
                    close::UNKNOWN_SUBPROTOCOL,
                    "Subprotocol not acceptable: use graphql-transport-ws or graphql-ws",
                )
            });
    };
    let dialect = match requested
        .iter()
        .find(|p| ALL_WEBSOCKET_PROTOCOLS.contains(&p.as_str()))
    {
        Some(p) if p == "graphql-ws" => Dialect::Legacy,
        _ => Dialect::TransportWs,
    };
    let upfront = match principal(&state, &headers).await {
        Ok(principal) => principal,
        Err(error) => return auth_failure(&state, error),
    };
    // A connection authenticated by header counts against its token's cap before the upgrade.
    let lease = match &upfront {
        Some(principal) => match state.presence.acquire(principal.token_id) {
            Ok(lease) => Some(lease),
            Err(limit) => {
                return error_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    &limit.message(),
                    "RATE_LIMITED",
                );
            }
        },
        None => None,
    };
    let limits = Limits {
        init_timeout: Duration::from_secs(state.config.ws_init_timeout_seconds),
        max_subscriptions: state.config.ws_max_subscriptions.max(1),
        max_queued: state.config.ws_max_queued.max(1),
        ping_interval: Duration::from_secs(state.config.ws_ping_interval_seconds.max(1)),
        idle_timeout: Duration::from_secs(state.config.ws_idle_timeout_seconds.max(1)),
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            // The connection's lease (cap and presence record) lives as long as this task: it is
            // released when the connection ends, however it ends.
            let mut lease = lease;
            if let (Some(lease), Some(principal)) = (lease.as_mut(), upfront.as_ref()) {
                lease.register(principal).await;
            }
            let held = Arc::new(Mutex::new(lease));
            let init_held = held.clone();
            let schema = state.schema.clone();
            let caller = Arc::new(std::sync::OnceLock::new());
            let sharing = guard::Sharing {
                state: state.clone(),
                principal: caller.clone(),
            };
            guard::serve(
                socket,
                dialect,
                limits,
                Some(sharing),
                move |incoming, outgoing| {
                    GraphQLWebSocket::new_with_pair(outgoing, incoming, schema, protocol)
                        .on_connection_init(move |payload| async move {
                            let principal = match upfront {
                                Some(principal) => principal,
                                None => {
                                    let token = token_of(&payload).ok_or_else(|| {
                                        async_graphql::Error::from(AppError::Unauthenticated(
                                            "authentication required: give the token in the \
                                             connection_init payload as `authorization`"
                                                .into(),
                                        ))
                                    })?;
                                    let principal = auth::authenticate(&state.db, &token)
                                        .await
                                        .map_err(async_graphql::Error::from)?;
                                    let mut lease = state
                                        .presence
                                        .acquire(principal.token_id)
                                        .map_err(|limit| {
                                            async_graphql::Error::new(limit.message())
                                                .extend_with(|_, e| e.set("code", "RATE_LIMITED"))
                                        })?;
                                    lease.register(&principal).await;
                                    match init_held.lock() {
                                        Ok(mut held) => *held = Some(lease),
                                        Err(poisoned) => *poisoned.into_inner() = Some(lease),
                                    }
                                    principal
                                }
                            };
                            let _ = caller.set(principal.clone());
                            let mut data = Data::default();
                            data.insert(Arc::new(RequestCtx::new(state.clone(), Some(principal))));
                            Ok(data)
                        })
                        .serve()
                },
            )
            .await;
            drop(held);
        })
}
