//! Idempotency keys: a retried mutation with the same key replays the first response.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestApp;

const CREATE: &str = "mutation($email: String!) { createUser(input: { email: $email }) { user { email } userErrors { code } } }";

async fn send(
    app: &TestApp,
    token: &str,
    key: &str,
    body: &Value,
) -> (StatusCode, Option<String>, Value) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .header("accept", "application/graphql-response+json")
        .json(body)
        .send()
        .await
        .expect("send");
    let status = response.status();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.json().await.expect("json");
    (status, replayed, body)
}

#[tokio::test]
async fn a_retried_mutation_replays_the_first_response() {
    let app = TestApp::spawn().await;
    let body = json!({ "query": CREATE, "variables": { "email": "ann@acme.test" } });
    let first = send(&app, &app.org.token, "create-ann-1", &body).await;
    assert_eq!(
        first,
        (
            StatusCode::OK,
            None,
            json!({ "data": { "createUser": { "user": { "email": "ann@acme.test" }, "userErrors": [] } } })
        )
    );
    let users = app.count("users").await;
    let events = app.count("events").await;
    let retry = send(&app, &app.org.token, "create-ann-1", &body).await;
    assert_eq!(retry, (first.0, Some("true".into()), first.2));
    assert_eq!(app.count("users").await, users);
    assert_eq!(app.count("events").await, events);

    // Without the key the same mutation runs again (and meets the unique email).
    let (_, _, again) = app.post(Some(&app.org.token), body).await;
    assert_eq!(
        again["data"]["createUser"]["userErrors"],
        json!([{ "code": "TAKEN" }])
    );
}

#[tokio::test]
async fn a_key_reused_with_another_request_is_refused() {
    let app = TestApp::spawn().await;
    let first = json!({ "query": CREATE, "variables": { "email": "ann@acme.test" } });
    let other = json!({ "query": CREATE, "variables": { "email": "bob@acme.test" } });
    send(&app, &app.org.token, "k1", &first).await;
    let users = app.count("users").await;
    let refused = send(&app, &app.org.token, "k1", &other).await;
    assert_eq!(
        refused,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            json!({ "errors": [{ "message": "this Idempotency-Key was used with a different request", "extensions": { "code": "BAD_USER_INPUT" } }] })
        )
    );
    assert_eq!(app.count("users").await, users);
    let bad_key = send(&app, &app.org.token, &"x".repeat(256), &other).await;
    assert_eq!(bad_key.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.count("users").await, users);
}

#[tokio::test]
async fn refused_requests_release_their_key_and_keys_are_per_user() {
    let app = TestApp::spawn_with(|c| c.rate_limit_per_minute = 100).await;
    // A document that fails validation runs nothing; the key is released and a retry runs again.
    let broken =
        json!({ "query": "mutation { createUser(input: { email: \"x@acme.test\" }) { nope } }" });
    let first = send(&app, &app.org.token, "broken", &broken).await;
    assert_eq!(first.0, StatusCode::BAD_REQUEST);
    let retry = send(&app, &app.org.token, "broken", &broken).await;
    assert_eq!((retry.0, retry.1), (StatusCode::BAD_REQUEST, None));
    assert_eq!(app.count("idempotency_keys").await, 0);

    // The same key of another user is another key.
    let (_, agent) = app.user_with_token("agent@acme.test", &["ADMIN"]).await;
    let body = json!({ "query": CREATE, "variables": { "email": "ann@acme.test" } });
    let owner = send(&app, &app.org.token, "shared-key", &body).await;
    assert_eq!(owner.2["data"]["createUser"]["userErrors"], json!([]));
    let other = send(&app, &agent, "shared-key", &body).await;
    assert_eq!(other.1, None);
    assert_eq!(
        other.2["data"]["createUser"]["userErrors"],
        json!([{ "code": "TAKEN" }])
    );
    assert_eq!(app.count("idempotency_keys").await, 2);
}
