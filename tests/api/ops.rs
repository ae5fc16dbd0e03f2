//! Operations: health, readiness, Prometheus metrics, request ids, and internal errors that reach
//! the log (with the request id) but never the client.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{self, TestApp};

async fn get(app: &TestApp, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let response = app.client.get(app.url(path)).send().await.expect("send");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

fn request_id(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("an x-request-id header")
        .to_string()
}

/// The lines of the operations counter in a metrics exposition.
fn operation_lines(metrics: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("switchboard_graphql_operations_total"))
        .collect();
    lines.sort_unstable();
    lines
}

#[tokio::test]
async fn healthz_and_readyz_answer() {
    let app = TestApp::spawn().await;
    let (status, _, body) = get(&app, "/healthz").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    let (status, _, body) = get(&app, "/readyz").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ready"));
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    app.state.db.clone().close().await.expect("close the pool");
    let (status, _, body) = get(&app, "/readyz").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
    );
    // Liveness does not depend on the database.
    let (status, _, body) = get(&app, "/healthz").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test]
async fn metrics_count_operations_by_type_and_outcome() {
    let app = TestApp::spawn().await;
    let (status, headers, metrics) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(operation_lines(&metrics).is_empty(), "{metrics}");
    assert!(metrics.trim_end().ends_with("# EOF"), "{metrics}");

    app.data(&app.org.token, "{ viewer { user { id } } }", json!({}))
        .await;
    let (_, _, metrics) = get(&app, "/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "# TYPE switchboard_graphql_operations counter"),
        "{metrics}"
    );
    assert_eq!(
        operation_lines(&metrics),
        ["switchboard_graphql_operations_total{operation_type=\"query\",outcome=\"ok\"} 1"]
    );
    assert!(
        metrics.lines().any(|l| l
            == "switchboard_graphql_operation_duration_seconds_count{operation_type=\"query\"} 1"),
        "{metrics}"
    );
    // The pool gauge: at least the connection that served the query, at most the configured 5.
    let pool: Vec<i64> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("switchboard_db_pool_connections "))
        .map(|v| v.parse().expect("an integer gauge"))
        .collect();
    assert_eq!(pool.len(), 1, "{metrics}");
    assert!((1..=5).contains(&pool[0]), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("switchboard_db_pool_idle_connections ")),
        "{metrics}"
    );

    // Other outcomes: a query with an execution error, a mutation refused by validation, a request
    // with a wrong token, and a document that does not parse.
    app.post(None, json!({ "query": "{ viewer { roles } }" }))
        .await;
    app.post(
        Some(&app.org.token),
        json!({ "query": "mutation { createUser(input: {email: \"m@acme.test\"}) { nope } }" }),
    )
    .await;
    app.post(
        Some("sbt_wrong"),
        json!({ "query": "{ viewer { roles } }" }),
    )
    .await;
    app.post(Some(&app.org.token), json!({ "query": "{" }))
        .await;
    let (_, _, metrics) = get(&app, "/metrics").await;
    assert_eq!(
        operation_lines(&metrics),
        [
            "switchboard_graphql_operations_total{operation_type=\"mutation\",outcome=\"rejected\"} 1",
            "switchboard_graphql_operations_total{operation_type=\"query\",outcome=\"error\"} 1",
            "switchboard_graphql_operations_total{operation_type=\"query\",outcome=\"ok\"} 1",
            "switchboard_graphql_operations_total{operation_type=\"unknown\",outcome=\"rejected\"} 1",
            "switchboard_graphql_operations_total{operation_type=\"unknown\",outcome=\"unauthenticated\"} 1",
        ]
    );
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn every_response_has_a_request_id() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/graphiql",
        "/no-such-path",
    ] {
        let (_, headers, _) = get(&app, path).await;
        ids.push(request_id(&headers));
    }
    let (_, headers, _) = app
        .post(
            Some(&app.org.token),
            json!({ "query": "{ viewer { roles } }" }),
        )
        .await;
    ids.push(request_id(&headers));
    // Refusals too: wrong token (401), wrong content type (415), bad JSON (400).
    let (_, headers, _) = app
        .post(
            Some("sbt_wrong"),
            json!({ "query": "{ viewer { roles } }" }),
        )
        .await;
    ids.push(request_id(&headers));
    for (content_type, body) in [("text/plain", "{}"), ("application/json", "{")] {
        let response = app
            .client
            .post(app.url("/graphql"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("send");
        assert!(response.status().is_client_error());
        ids.push(request_id(response.headers()));
    }
    for id in &ids {
        assert!(uuid::Uuid::parse_str(id).is_ok(), "not a UUID: {id}");
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
}

#[tokio::test]
async fn a_request_id_sent_by_the_client_is_echoed() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "client-chosen-id-1")
        .send()
        .await
        .expect("send");
    assert_eq!(request_id(response.headers()), "client-chosen-id-1");

    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.org.token)
        .header("x-request-id", "client-chosen-id-2")
        .json(&json!({ "query": "{ viewer { roles } }" }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(request_id(response.headers()), "client-chosen-id-2");
}

#[tokio::test]
async fn internal_errors_reach_the_log_with_the_request_id_but_never_the_client() {
    let app = TestApp::spawn().await;
    app.sql("ALTER TABLE organizations RENAME TO organizations_gone")
        .await;
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.org.token)
        .json(&json!({ "query": "{ organization { name } }" }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let id = request_id(response.headers());
    let text = response.text().await.expect("body");
    let body: serde_json::Value = serde_json::from_str(&text).expect("JSON body");
    assert_eq!(
        body,
        json!({
            "data": null,
            "errors": [{
                "message": "internal server error",
                "locations": [{ "line": 1, "column": 3 }],
                "path": ["organization"],
                "extensions": { "code": "INTERNAL_SERVER_ERROR" },
            }],
        })
    );
    let lower = text.to_lowercase();
    for leak in ["organizations", "sql", "table", "relation", "query("] {
        assert!(!lower.contains(leak), "{leak:?} leaked: {text}");
    }

    // The log has the cause, in a line carrying this request's id.
    let logs = common::logs();
    let line = logs
        .lines()
        .find(|l| l.contains(&id) && l.contains("internal error"))
        .unwrap_or_else(|| panic!("no log line for request {id}:\n{logs}"));
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("organizations"), "{line}");

    // The metrics count it as an executed query with an error.
    let (_, _, metrics) = get(&app, "/metrics").await;
    assert_eq!(
        operation_lines(&metrics),
        ["switchboard_graphql_operations_total{operation_type=\"query\",outcome=\"error\"} 1"]
    );
}

#[tokio::test]
async fn shutdown_drains_a_request_in_flight_and_then_stops() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut app = crate::common::TestApp::spawn().await;
    let body = r#"{"query":"mutation { createUser(input: { email: \"late@acme.test\" }) { user { email } } }"}"#;
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        app.addr,
        app.org.token,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    // The server answers 100 Continue once the handler reads the body: the request is in flight.
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).await.expect("100 Continue");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");

    app.begin_shutdown();
    stream.write_all(body.as_bytes()).await.expect("write body");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response");
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(
        response.ends_with(r#"{"data":{"createUser":{"user":{"email":"late@acme.test"}}}}"#),
        "{response}"
    );
    app.stopped().await.expect("server stopped cleanly");
    assert!(
        tokio::net::TcpStream::connect(app.addr).await.is_err(),
        "the listener is closed after shutdown"
    );
}

/// On SQLite the planner statistics exist from the start (`ANALYZE` runs after migrations) and a
/// refresh records the organization indexes' real selectivity.
#[tokio::test]
async fn sqlite_planner_statistics_are_refreshed() {
    let app = TestApp::spawn().await;
    if app.state.db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        return;
    }
    // ANALYZE creates sqlite_stat1 even while the tables are empty.
    assert_eq!(app.count("sqlite_stat1 WHERE tbl = 'contacts'").await, 0);
    for i in 0..30 {
        app.data(
            &app.org.token,
            "mutation($input: ContactInput!) { createContact(input: $input) { userErrors { code } } }",
            json!({ "input": { "displayName": format!("C{i}") } }),
        )
        .await;
    }
    switchboard::db::refresh_statistics(&app.state.db)
        .await
        .expect("refresh");
    // 30 rows, all in one organization: the org index is not selective at all.
    assert_eq!(
        app.count("sqlite_stat1 WHERE idx = 'ix_contacts_org_sort_name' AND stat LIKE '30 30 %'")
            .await,
        1
    );
}
