//! Webhooks: subscriptions (secret shown once, authorization, headers, events), signed test
//! pings against a receiver started by the test, the attempt log, redelivery, 410 disabling;
//! bad input, roles and private addresses.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

use crate::common::{TestApp, codes};

const CREATE: &str = "mutation($input: CreateWebhookSubscriptionInput!) { createWebhookSubscription(input: $input) { subscription { id name url events authorization { kind username } headers enabled disabledReason } secret userErrors { field message code } } }";
const UPDATE: &str = "mutation($input: UpdateWebhookSubscriptionInput!) { updateWebhookSubscription(input: $input) { subscription { name events enabled disabledReason authorization { kind username } } secret userErrors { field message code } } }";
const PING: &str = "mutation($id: ID!) { testWebhookSubscription(input: { id: $id }) { delivery { id webhookId eventType status attemptCount lastStatusCode lastError payload attempts { statusCode responseSnippet error } } userErrors { field message code } } }";
const REDELIVER: &str = "mutation($id: ID!) { redeliverWebhook(input: { id: $id }) { delivery { status attemptCount lastStatusCode lastError attempts { statusCode responseSnippet } } userErrors { field message code } } }";

/// What the receiver got: headers and body of each request.
#[derive(Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    answer: Arc<Mutex<(u16, &'static str)>>,
}

impl Receiver {
    fn answer(&self, status: u16, body: &'static str) {
        *self.answer.lock().unwrap() = (status, body);
    }

    fn requests(&self) -> Vec<(HeaderMap, Bytes)> {
        self.requests.lock().unwrap().clone()
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    receiver.requests.lock().unwrap().push((headers, body));
    let (status, body) = *receiver.answer.lock().unwrap();
    (StatusCode::from_u16(status).unwrap(), body)
}

/// A receiver on a loopback port; returns it and its URL.
async fn receiver() -> (Receiver, String) {
    let receiver = Receiver::default();
    receiver.answer(200, "ok");
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (receiver, url)
}

async fn loopback_app() -> TestApp {
    TestApp::spawn_with(|c| c.webhook_allow_private_addresses = true).await
}

#[tokio::test]
async fn subscriptions_are_created_with_a_secret_shown_once_changed_rotated_and_deleted() {
    let app = loopback_app().await;
    let owner = &app.org.token;
    let (_, url) = receiver().await;
    let created = app
        .data(
            owner,
            CREATE,
            json!({ "input": {
                "name": "CRM", "url": url, "events": ["conversation_created", "MESSAGE_ADDED", "MESSAGE_ADDED"],
                "authorization": { "kind": "BASIC", "username": "crm", "password": "s3cret" },
                "headers": { "X-Tenant": "acme" }
            } }),
        )
        .await["createWebhookSubscription"]
        .clone();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = created["subscription"]["id"].clone();
    assert_eq!(
        created,
        json!({ "subscription": {
            "id": id, "name": "CRM", "url": url, "events": ["CONVERSATION_CREATED", "MESSAGE_ADDED"],
            "authorization": { "kind": "BASIC", "username": "crm" },
            "headers": { "x-tenant": "acme" }, "enabled": true, "disabledReason": null
        }, "secret": secret, "userErrors": [] })
    );
    // The secret is never readable afterwards; the password neither.
    let read = app
        .gql(
            owner,
            "query($id: ID!) { webhookSubscription(id: $id) { secret } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(codes(&read), ["GRAPHQL_VALIDATION_FAILED"]);

    let updated = app
        .data(
            owner,
            UPDATE,
            json!({ "input": { "id": id, "events": ["NOTE_ADDED"], "enabled": false,
                    "authorization": { "kind": "BEARER", "token": "t0ken" } } }),
        )
        .await;
    assert_eq!(
        updated["updateWebhookSubscription"],
        json!({ "subscription": { "name": "CRM", "events": ["NOTE_ADDED"], "enabled": false, "disabledReason": null,
                "authorization": { "kind": "BEARER", "username": null } }, "secret": null, "userErrors": [] })
    );
    let rotated = app
        .data(
            owner,
            "mutation($id: ID!) { rotateWebhookSecret(input: { id: $id }) { secret userErrors { message } } }",
            json!({ "id": id }),
        )
        .await;
    let new_secret = rotated["rotateWebhookSecret"]["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);

    let list = app
        .data(
            owner,
            "{ webhookSubscriptions { totalCount nodes { name } } webhookEventTypes { name } }",
            json!({}),
        )
        .await;
    assert_eq!(
        list["webhookSubscriptions"],
        json!({ "totalCount": 1, "nodes": [{ "name": "CRM" }] })
    );
    let types = list["webhookEventTypes"].as_array().unwrap();
    assert!(types.contains(&json!({ "name": "CONVERSATION_PENDING_EXPIRED" })));
    assert!(types.contains(&json!({ "name": "MESSAGE_STATUS_CHANGED" })));

    let deleted = app
        .data(
            owner,
            "mutation($id: ID!) { deleteWebhookSubscription(input: { id: $id }) { deletedId userErrors { message } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        deleted["deleteWebhookSubscription"],
        json!({ "deletedId": id, "userErrors": [] })
    );
    let gone = app
        .data(
            owner,
            "query($id: ID!) { webhookSubscription(id: $id) { name } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(gone, json!({ "webhookSubscription": null }));
}

#[tokio::test]
async fn a_test_ping_is_signed_per_standard_webhooks_logged_redelivered_and_410_disables() {
    let app = loopback_app().await;
    let owner = &app.org.token;
    let (receiver, url) = receiver().await;
    let created = app
        .data(
            owner,
            CREATE,
            json!({ "input": { "name": "Hook", "url": url, "events": ["MESSAGE_ADDED"],
                    "authorization": { "kind": "BEARER", "token": "t0ken" }, "headers": { "X-Env": "test" } } }),
        )
        .await["createWebhookSubscription"]
        .clone();
    let secret = created["secret"].as_str().unwrap().to_string();
    let id = created["subscription"]["id"].clone();

    let ping = app.data(owner, PING, json!({ "id": id })).await["testWebhookSubscription"].clone();
    assert_eq!(ping["userErrors"], json!([]));
    let delivery = &ping["delivery"];
    assert_eq!(
        (
            &delivery["eventType"],
            &delivery["status"],
            &delivery["attemptCount"],
            &delivery["lastStatusCode"],
            &delivery["lastError"],
            &delivery["attempts"]
        ),
        (
            &json!("WEBHOOK_PING"),
            &json!("SUCCEEDED"),
            &json!(1),
            &json!(200),
            &Value::Null,
            &json!([{ "statusCode": 200, "responseSnippet": "ok", "error": null }])
        )
    );
    assert_eq!(delivery["payload"]["type"], "WEBHOOK_PING");
    assert_eq!(delivery["payload"]["data"]["subscriptionId"], id);

    // What the receiver got: the body sent, signed as Standard Webhooks says.
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let (headers, body) = &requests[0];
    let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_string();
    assert_eq!(
        header("webhook-id"),
        delivery["webhookId"].as_str().unwrap()
    );
    assert_eq!(header("authorization"), "Bearer t0ken");
    assert_eq!(header("x-env"), "test");
    assert_eq!(header("content-type"), "application/json");
    let timestamp: i64 = header("webhook-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
    assert_eq!(
        header("webhook-signature"),
        switchboard::webhooks::signing::sign(&secret, &header("webhook-id"), timestamp, body)
    );
    assert_eq!(
        serde_json::from_slice::<Value>(body).unwrap(),
        delivery["payload"]
    );

    // The receiver fails: the attempt is logged with its answer; the delivery is FAILED.
    receiver.answer(500, "boom");
    let delivery_id = delivery["id"].clone();
    let again = app
        .data(owner, REDELIVER, json!({ "id": delivery_id }))
        .await["redeliverWebhook"]
        .clone();
    assert_eq!(
        again,
        json!({ "delivery": { "status": "FAILED", "attemptCount": 2, "lastStatusCode": 500,
                "lastError": "the receiver answered 500",
                "attempts": [{ "statusCode": 200, "responseSnippet": "ok" }, { "statusCode": 500, "responseSnippet": "boom" }] },
                "userErrors": [] })
    );
    let requests = receiver.requests();
    assert_eq!(
        requests[1].0.get("webhook-id"),
        requests[0].0.get("webhook-id"),
        "a redelivery keeps its webhook-id"
    );
    assert_eq!(requests[1].1, requests[0].1);

    // 410 Gone: the subscription is disabled, with the reason.
    receiver.answer(410, "");
    let gone = app
        .data(owner, REDELIVER, json!({ "id": delivery_id }))
        .await;
    assert_eq!(gone["redeliverWebhook"]["delivery"]["lastStatusCode"], 410);
    let state = app
        .data(
            owner,
            "query($id: ID!) { webhookSubscription(id: $id) { enabled disabledReason deliveryStatus { eventType status lastStatusCode } deliveries { totalCount } failed: deliveries(filter: { status: FAILED }) { totalCount } other: deliveries(filter: { eventType: \"message_added\" }) { totalCount } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        state,
        json!({ "webhookSubscription": {
            "enabled": false,
            "disabledReason": "the receiver answered 410 Gone: it no longer wants deliveries",
            "deliveryStatus": [{ "eventType": "WEBHOOK_PING", "status": "FAILED", "lastStatusCode": 410 }],
            "deliveries": { "totalCount": 1 },
            "failed": { "totalCount": 1 },
            "other": { "totalCount": 0 }
        } })
    );
    // Enabling it again clears the reason.
    let enabled = app
        .data(
            owner,
            UPDATE,
            json!({ "input": { "id": id, "enabled": true } }),
        )
        .await;
    assert_eq!(
        (
            &enabled["updateWebhookSubscription"]["subscription"]["enabled"],
            &enabled["updateWebhookSubscription"]["subscription"]["disabledReason"]
        ),
        (&json!(true), &Value::Null)
    );
}

#[tokio::test]
async fn bad_webhook_input_gets_user_errors_and_changes_nothing() {
    // The default configuration: private and loopback addresses are refused.
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let (_, lead) = app.user_with_token("lead@acme.test", &["TEAM_LEAD"]).await;
    let subscriptions = app.count("webhook_subscriptions").await;
    let events = app.count("events").await;
    let create = |input: Value| {
        let app = &app;
        async move {
            app.data(owner, CREATE, json!({ "input": input })).await["createWebhookSubscription"]
                .clone()
        }
    };
    let errors = |result: Value| result["userErrors"].clone();

    for (url, message) in [
        (
            "ftp://example.test/hook",
            "\"ftp://example.test/hook\" is not an http(s) URL",
        ),
        ("not a url", "\"not a url\" is not a URL"),
        (
            "http://127.0.0.1:9/hook",
            "\"http://127.0.0.1:9/hook\" points to a private or loopback address, which webhooks may not reach",
        ),
        (
            "https://10.0.0.5/hook",
            "\"https://10.0.0.5/hook\" points to a private or loopback address, which webhooks may not reach",
        ),
        (
            "http://[::1]/hook",
            "\"http://[::1]/hook\" points to a private or loopback address, which webhooks may not reach",
        ),
        (
            "http://169.254.169.254/latest",
            "\"http://169.254.169.254/latest\" points to a private or loopback address, which webhooks may not reach",
        ),
    ] {
        assert_eq!(
            errors(create(json!({ "name": "x", "url": url, "events": ["MESSAGE_ADDED"] })).await),
            json!([{ "field": ["input", "url"], "message": message, "code": "INVALID" }]),
            "{url}"
        );
    }
    assert_eq!(
        errors(
            create(json!({ "name": "", "url": "https://203.0.113.10/hook", "events": ["MESSAGE_ADDED", "NOPE"],
                          "headers": { "Webhook-Signature": "x", "X-Ok": "fine" },
                          "authorization": { "kind": "BASIC", "username": "a:b", "password": "" } }))
            .await
        ),
        json!([
            { "field": ["input", "name"], "message": "name must not be empty", "code": "REQUIRED" },
            { "field": ["input", "events", "1"], "message": "\"NOPE\" is not an event type (see `webhookEventTypes`)", "code": "INVALID" },
            { "field": ["input", "authorization", "username"], "message": "a Basic user name is not empty and has no `:`", "code": "INVALID" },
            { "field": ["input", "authorization", "password"], "message": "a Basic password must not be empty", "code": "REQUIRED" },
            { "field": ["input", "headers", "Webhook-Signature"], "message": "\"Webhook-Signature\" is set by the server", "code": "INVALID" }
        ])
    );
    assert_eq!(
        errors(
            create(json!({ "name": "x", "url": "https://203.0.113.10/hook", "events": [] })).await
        ),
        json!([{ "field": ["input", "events"], "message": "name at least one event type", "code": "REQUIRED" }])
    );
    assert_eq!(
        errors(
            create(
                json!({ "name": "x", "url": "https://203.0.113.10/hook", "events": ["NOTE_ADDED"],
                          "authorization": { "kind": "BEARER" } })
            )
            .await
        ),
        json!([{ "field": ["input", "authorization", "token"], "message": "give `token` for this kind", "code": "REQUIRED" }])
    );
    for token in [&agent, &lead] {
        let denied = app
            .gql(
                token,
                CREATE,
                json!({ "input": { "name": "x", "url": "https://203.0.113.10/hook", "events": ["NOTE_ADDED"] } }),
            )
            .await;
        assert_eq!(codes(&denied), ["FORBIDDEN"]);
        let denied = app
            .gql(token, "{ webhookSubscriptions { totalCount } }", json!({}))
            .await;
        assert_eq!(codes(&denied), ["FORBIDDEN"]);
    }
    assert_eq!(app.count("webhook_subscriptions").await, subscriptions);
    assert_eq!(app.count("events").await, events);

    // A public address is accepted; another organization cannot see or ping it.
    let ok = create(
        json!({ "name": "Public", "url": "https://203.0.113.10/hook", "events": ["NOTE_ADDED"] }),
    )
    .await;
    assert_eq!(ok["userErrors"], json!([]));
    let id = ok["subscription"]["id"].clone();
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let theirs = app.data(&other.token, PING, json!({ "id": id })).await;
    assert_eq!(
        theirs["testWebhookSubscription"],
        json!({ "delivery": null, "userErrors": [{ "field": ["input", "id"], "message": "no such webhook subscription", "code": "NOT_FOUND" }] })
    );
}
