//! `GET /graphql/ws`: GraphQL subscriptions over websockets, with the `graphql-transport-ws` and
//! the legacy `graphql-ws` subprotocols. The token comes with the upgrade request
//! (`Authorization: Bearer …`) or in the `connection_init` payload (`{"authorization": "Bearer
//! …"}` or `{"token": "…"}`).

use std::sync::Arc;

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;

use crate::AppState;
use crate::auth;
use crate::error::AppError;
use crate::graphql::context::RequestCtx;
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

/// Upgrades to a websocket serving the schema's subscriptions for the authenticated caller.
pub async fn handler(
    State(state): State<AppState>,
    protocol: GraphQLProtocol,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let upfront = match principal(&state, &headers).await {
        Ok(principal) => principal,
        Err(error) => return auth_failure(&state, error),
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| {
            let schema = state.schema.clone();
            GraphQLWebSocket::new(socket, schema, protocol)
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
                            auth::authenticate(&state.db, &token)
                                .await
                                .map_err(async_graphql::Error::from)?
                        }
                    };
                    let mut data = Data::default();
                    data.insert(Arc::new(RequestCtx::new(state.clone(), Some(principal))));
                    Ok(data)
                })
                .serve()
        })
}
