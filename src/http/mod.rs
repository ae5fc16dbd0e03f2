//! HTTP: the router, GraphQL over HTTP, GraphiQL, health, readiness and metrics.

pub mod graphql;
pub mod metrics;
pub mod ops;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::AppState;

/// The request id header, set on every request and response.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The JSON body of a request-level error.
pub fn error_body(message: &str, code: &str) -> serde_json::Value {
    serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

/// A request-level error response.
pub fn error_response(status: StatusCode, message: &str, code: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        error_body(message, code).to_string(),
    )
        .into_response()
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal server error",
        "INTERNAL_SERVER_ERROR",
    )
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<&str> = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .collect();
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.contains(&"*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
            .allow_headers(Any)
            .expose_headers(Any)
            .max_age(Duration::from_secs(3600)),
    )
}

/// Wraps any router in the server's middleware: request ids, tracing with the request id, panic
/// recovery, CORS.
pub fn with_middleware(router: Router, cors_origins: &[String]) -> Router {
    let router = router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                    let id = request
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!(
                        "request",
                        request_id = %id,
                        method = %request.method(),
                        path = %request.uri().path(),
                    )
                }),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
            .layer(CatchPanicLayer::custom(panic_response)),
    );
    match cors(cors_origins) {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

/// All routes of the server.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route(
            "/graphql",
            get(graphql::get_handler).post(graphql::post_handler),
        )
        .route("/graphql/ws", get(crate::live::ws::handler))
        .route("/attachments/{id}", get(crate::attachments::http::download))
        .route("/ingest/{channel}", post(crate::ingest::http::ingest))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics));
    if state.config.graphiql {
        router = router
            .route("/graphiql", get(graphql::graphiql))
            .route("/", get(|| async { Redirect::temporary("/graphiql") }));
    }
    let cors_origins = state.config.cors_origins.clone();
    with_middleware(router.with_state(state), &cors_origins)
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_internal_server_error_with_a_request_id() {
        let router = with_middleware(
            Router::new().route(
                "/boom",
                get(|| async {
                    if true {
                        panic!("resolver exploded with secret detail");
                    }
                    "unreachable"
                }),
            ),
            &[],
        );
        let Ok(response) = router
            .oneshot(
                Request::builder()
                    .uri("/boom")
                    .body(Body::empty())
                    .unwrap_or_default(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().contains_key(&REQUEST_ID));
        let body = to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap_or_default();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(
            body,
            serde_json::json!({ "errors": [{ "message": "internal server error", "extensions": { "code": "INTERNAL_SERVER_ERROR" } }] })
        );
    }
}
