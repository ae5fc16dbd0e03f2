//! Webhooks: subscriptions (secret shown once, authorization, headers, events), signed test
//! pings against a receiver started by the test, the attempt log, redelivery, 410 disabling;
//! call, call-campaign receiver and room events delivered in order; bad input, roles and private
//! addresses.

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
    answer: Arc<Mutex<(u16, &'static str, Option<&'static str>)>>,
    arrived: Arc<tokio::sync::Notify>,
}

impl Receiver {
    fn answer(&self, status: u16, body: &'static str) {
        *self.answer.lock().unwrap() = (status, body, None);
    }

    /// Answers `status` with a `Retry-After` header.
    fn answer_retry_after(&self, status: u16, retry_after: &'static str) {
        *self.answer.lock().unwrap() = (status, "later", Some(retry_after));
    }

    fn requests(&self) -> Vec<(HeaderMap, Bytes)> {
        self.requests.lock().unwrap().clone()
    }

    /// The bodies received, parsed.
    fn bodies(&self) -> Vec<Value> {
        self.requests()
            .iter()
            .map(|(_, body)| serde_json::from_slice(body).unwrap())
            .collect()
    }

    /// Waits (at most 60 s) until `n` requests arrived.
    async fn wait_for(&self, n: usize) -> Vec<(HeaderMap, Bytes)> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let arrived = self.arrived.notified();
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("{} requests arrived, not {n}", self.requests().len());
            }
        }
    }
}

async fn receive(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, &'static str) {
    let (status, body_out, retry_after) = *receiver.answer.lock().unwrap();
    receiver.requests.lock().unwrap().push((headers, body));
    receiver.arrived.notify_waiters();
    let mut out = HeaderMap::new();
    if let Some(value) = retry_after {
        out.insert("retry-after", value.parse().unwrap());
    }
    (StatusCode::from_u16(status).unwrap(), out, body_out)
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

/// An app whose job runner dispatches webhooks, by a clock that stands still until moved.
async fn dispatching_app(schedule: Vec<u64>) -> TestApp {
    let app = TestApp::spawn_with(move |c| {
        c.webhook_allow_private_addresses = true;
        c.job_workers = 2;
        c.webhook_retry_schedule = schedule;
    })
    .await;
    app.state
        .clock
        .set(chrono::Utc::now() + chrono::Duration::minutes(1));
    app
}

async fn subscribe(app: &TestApp, url: &str, events: Value) -> (Value, String) {
    let created = app
        .data(
            &app.org.token,
            CREATE,
            json!({ "input": { "name": "Hook", "url": url, "events": events } }),
        )
        .await["createWebhookSubscription"]
        .clone();
    assert_eq!(created["userErrors"], json!([]));
    (
        created["subscription"]["id"].clone(),
        created["secret"].as_str().unwrap().to_string(),
    )
}

async fn create_contact(app: &TestApp, token: &str, first_name: &str) -> Value {
    app.data(
        token,
        "mutation($input: ContactInput!) { createContact(input: $input) { contact { id } userErrors { code } } }",
        json!({ "input": { "firstName": first_name } }),
    )
    .await["createContact"]["contact"]["id"]
        .clone()
}

async fn rename_contact(app: &TestApp, id: &Value, first_name: &str) {
    let renamed = app
        .data(
            &app.org.token,
            "mutation($id: ID!, $name: String!) { updateContact(input: { id: $id, contact: { firstName: $name } }) { userErrors { code } } }",
            json!({ "id": id, "name": first_name }),
        )
        .await;
    assert_eq!(renamed["updateContact"]["userErrors"], json!([]));
}

/// Moves the runner's clock on and wakes it.
fn advance(app: &TestApp, seconds: i64) {
    app.state.clock.advance(chrono::Duration::seconds(seconds));
    app.state.jobs.wake();
}

/// Waits (at most 60 s) until the subscription's deliveries made `attempts` attempts in all,
/// recorded; returns its state.
async fn recorded(app: &TestApp, id: &Value, attempts: i64) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let state = app
            .data(&app.org.token, SUBSCRIPTION_STATE, json!({ "id": id }))
            .await;
        let made: i64 = state["webhookSubscription"]["deliveries"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["attemptCount"].as_i64().unwrap())
            .sum();
        if made >= attempts {
            return state;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{made} attempts recorded, not {attempts}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The deliveries' event sequences increase, and each request carries the Standard Webhooks
/// signature of its body under `secret`.
fn assert_in_order_and_signed(requests: &[(HeaderMap, Bytes)], bodies: &[Value], secret: &str) {
    let sequences: Vec<i64> = bodies
        .iter()
        .map(|b| b["data"]["sequence"].as_i64().unwrap())
        .collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    for (headers, body) in requests {
        let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_string();
        let timestamp: i64 = header("webhook-timestamp").parse().unwrap();
        assert_eq!(
            header("webhook-signature"),
            switchboard::webhooks::signing::sign(secret, &header("webhook-id"), timestamp, body)
        );
    }
}

const SUBSCRIPTION_STATE: &str = "query($id: ID!) { webhookSubscription(id: $id) { enabled disabledReason deliveries { nodes { eventType status attemptCount lastStatusCode attempts { statusCode } } } } }";

#[tokio::test]
async fn committed_events_reach_their_subscriptions_signed_in_order_and_only_those_wanted() {
    let app = dispatching_app(vec![5]).await;
    let (receiver, url) = receiver().await;
    // Before the subscription: not delivered.
    let early = create_contact(&app, &app.org.token, "Early").await;
    let (id, secret) = subscribe(&app, &url, json!(["CONTACT_CREATED", "CONTACT_UPDATED"])).await;
    let ann = create_contact(&app, &app.org.token, "Ann").await;
    rename_contact(&app, &ann, "Anne").await;
    // A type it does not want, and another organization's event: not delivered.
    app.data(
        &app.org.token,
        "mutation($id: ID!) { setContactConsent(input: { contactId: $id, channel: SMS, status: OPTED_OUT }) { userErrors { code } } }",
        json!({ "id": ann }),
    )
    .await;
    let other = app.create_org("Other", "other", "owner@other.test").await;
    create_contact(&app, &other.token, "Stranger").await;
    rename_contact(&app, &early, "Earlier").await;

    let requests = receiver.wait_for(3).await;
    let bodies = receiver.bodies();
    let summary: Vec<(Value, Value)> = bodies
        .iter()
        .map(|b| (b["type"].clone(), b["data"]["subject"]["id"].clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (json!("CONTACT_CREATED"), ann.clone()),
            (json!("CONTACT_UPDATED"), ann.clone()),
            (json!("CONTACT_UPDATED"), early.clone()),
        ]
    );
    let body = &bodies[1];
    assert_eq!(body["data"]["subject"]["type"], "Contact");
    assert_eq!(body["data"]["actorId"], app.org.owner_id);
    assert_eq!(body["data"]["organizationId"], app.org.org_id);
    assert_in_order_and_signed(&requests, &bodies, &secret);
    let state = recorded(&app, &id, 3).await;
    let deliveries = state["webhookSubscription"]["deliveries"]["nodes"]
        .as_array()
        .unwrap();
    assert_eq!(deliveries.len(), 3);
    assert!(deliveries.iter().all(|d| d["status"] == "SUCCEEDED"
        && d["attemptCount"] == 1
        && d["attempts"] == json!([{ "statusCode": 200 }])));
    // Nothing more arrives: the other events were not for it.
    advance(&app, 60);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.requests().len(), 3);
}

#[tokio::test]
async fn a_failed_delivery_is_retried_on_schedule_or_retry_after_and_later_events_wait_behind_it() {
    let app = dispatching_app(vec![5, 300]).await;
    let (receiver, url) = receiver().await;
    let (id, _) = subscribe(&app, &url, json!(["CONTACT_CREATED"])).await;
    receiver.answer_retry_after(503, "120");
    let first = create_contact(&app, &app.org.token, "First").await;
    recorded(&app, &id, 1).await;
    let second = create_contact(&app, &app.org.token, "Second").await;
    // The second waits behind the first: nothing is sent before the first's retry is due
    // (Retry-After 120 s is longer than the schedule's 5 s).
    advance(&app, 60);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.requests().len(), 1);
    let state = app
        .data(&app.org.token, SUBSCRIPTION_STATE, json!({ "id": id }))
        .await;
    assert_eq!(
        state["webhookSubscription"]["deliveries"]["nodes"],
        json!([
            { "eventType": "CONTACT_CREATED", "status": "PENDING", "attemptCount": 0, "lastStatusCode": null, "attempts": [] },
            { "eventType": "CONTACT_CREATED", "status": "PENDING", "attemptCount": 1, "lastStatusCode": 503, "attempts": [{ "statusCode": 503 }] },
        ])
    );
    // Its time comes: the first goes, then the second, in order.
    receiver.answer(200, "ok");
    advance(&app, 61);
    receiver.wait_for(3).await;
    recorded(&app, &id, 3).await;
    let subjects: Vec<Value> = receiver
        .bodies()
        .iter()
        .map(|b| b["data"]["subject"]["id"].clone())
        .collect();
    assert_eq!(subjects, [first.clone(), first, second]);
    let requests = receiver.requests();
    assert_eq!(
        requests[0].0.get("webhook-id"),
        requests[1].0.get("webhook-id"),
        "a retry keeps its webhook-id"
    );
    let state = app
        .data(&app.org.token, SUBSCRIPTION_STATE, json!({ "id": id }))
        .await;
    assert_eq!(
        state["webhookSubscription"]["deliveries"]["nodes"],
        json!([
            { "eventType": "CONTACT_CREATED", "status": "SUCCEEDED", "attemptCount": 1, "lastStatusCode": 200, "attempts": [{ "statusCode": 200 }] },
            { "eventType": "CONTACT_CREATED", "status": "SUCCEEDED", "attemptCount": 2, "lastStatusCode": 200, "attempts": [{ "statusCode": 503 }, { "statusCode": 200 }] },
        ])
    );
}

#[tokio::test]
async fn a_delivery_failing_through_its_retries_disables_the_subscription_until_enabled_again() {
    let app = dispatching_app(vec![5]).await;
    let (receiver, url) = receiver().await;
    let (id, _) = subscribe(&app, &url, json!(["CONTACT_CREATED"])).await;
    receiver.answer(500, "down");
    create_contact(&app, &app.org.token, "One").await;
    recorded(&app, &id, 1).await;
    // Not before the schedule's 5 s.
    advance(&app, 4);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.requests().len(), 1);
    advance(&app, 1);
    recorded(&app, &id, 2).await;
    // Read again: one request's fields are read one after the other, and the second attempt
    // may have committed between the subscription's and its deliveries' in the first.
    let disabled = app
        .data(&app.org.token, SUBSCRIPTION_STATE, json!({ "id": id }))
        .await;
    assert_eq!(disabled["webhookSubscription"]["enabled"], false);
    let reason = disabled["webhookSubscription"]["disabledReason"]
        .as_str()
        .unwrap();
    assert!(
        reason.starts_with("the CONTACT_CREATED delivery (event ")
            && reason.contains(" failed 2 times since ")
            && reason.ends_with("; the last error: the receiver answered 500"),
        "{reason}"
    );
    assert_eq!(
        disabled["webhookSubscription"]["deliveries"]["nodes"],
        json!([{ "eventType": "CONTACT_CREATED", "status": "FAILED", "attemptCount": 2, "lastStatusCode": 500,
                 "attempts": [{ "statusCode": 500 }, { "statusCode": 500 }] }])
    );
    assert_eq!(
        app.count("events WHERE event_type = 'WEBHOOK_SUBSCRIPTION_DISABLED'")
            .await,
        1
    );
    // Disabled: events are not delivered, nor later when it is enabled again.
    receiver.answer(200, "ok");
    create_contact(&app, &app.org.token, "Missed").await;
    advance(&app, 60);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.requests().len(), 2);
    let enabled = app
        .data(
            &app.org.token,
            UPDATE,
            json!({ "input": { "id": id, "enabled": true } }),
        )
        .await;
    assert_eq!(
        enabled["updateWebhookSubscription"]["userErrors"],
        json!([])
    );
    let after = create_contact(&app, &app.org.token, "After").await;
    receiver.wait_for(3).await;
    assert_eq!(receiver.bodies()[2]["data"]["subject"]["id"], after);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.requests().len(), 3);
}

#[tokio::test]
async fn call_campaign_receiver_and_room_events_reach_a_subscription_signed_and_in_order() {
    let app = dispatching_app(vec![5]).await;
    let now = app.state.clock.now();
    let (receiver, url) = receiver().await;
    let (id, secret) = subscribe(
        &app,
        &url,
        json!([
            "CALL_ENDED",
            "CALL_CAMPAIGN_RECEIVER_FINISHED",
            "ROOM_CREATED",
            "ROOM_PARTICIPANT_JOINED"
        ]),
    )
    .await;
    let token = app.org.token.clone();
    let channel = crate::fixtures::channel(&app, &token, "VOICE", "Calls", "+4570000000").await;

    // A call to a busy number: ended at once.
    let busy = app
        .data(
            &token,
            "mutation($input: StartCallInput!) { startCall(input: $input) { call { id status } userErrors { message } } }",
            json!({ "input": { "channelId": channel, "to": "+4520000000" } }),
        )
        .await["startCall"]
        .clone();
    assert_eq!(busy["call"]["status"], "BUSY", "{busy}");

    // A campaign with one receiver, who answers and presses 5: accepts.
    let created = app
        .data(
            &token,
            "mutation($input: CreateCallCampaignInput!) { createCallCampaign(input: $input) { callCampaign { id } userErrors { message } } }",
            json!({ "input": {
                "name": "Town hall", "kind": "RSVP", "channelId": channel,
                "audio": { "textToSpeech": { "text": "Press 5 to come.", "locale": "en-US" } },
                "receivers": { "phoneNumbers": ["+4520001005"] },
                "endTime": (now + chrono::Duration::days(1)).to_rfc3339(),
                "activeFrom": "00:00", "activeTo": "24:00",
                "activeWeekdays": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"],
                "actionButtons": [{ "button": "5", "action": "ACCEPT" }],
                "metadata": { "event": "town-hall", "crmId": 42 },
            } }),
        )
        .await["createCallCampaign"]
        .clone();
    assert_eq!(created["userErrors"], json!([]), "{created}");
    let campaign = created["callCampaign"]["id"].clone();
    app.state.jobs.wake();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let campaign_call = loop {
        let state = app
            .data(
                &token,
                "query($id: ID!) { callCampaign(id: $id) { state receivers { nodes { latestCall { id } } } } }",
                json!({ "id": campaign }),
            )
            .await;
        if state["callCampaign"]["state"] == "COMPLETE" {
            break state["callCampaign"]["receivers"]["nodes"][0]["latestCall"]["id"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the campaign never completed: {state}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };

    // A room is created and joined.
    let room = app
        .data(
            &token,
            "mutation($input: CreateRoomInput!) { createRoom(input: $input) { room { id } userErrors { message } } }",
            json!({ "input": { "kind": "VOICE", "name": "Stand-up" } }),
        )
        .await["createRoom"]["room"]["id"]
        .clone();
    let joined = app
        .data(
            &token,
            "mutation($input: RoomPresenceInput!) { joinRoom(input: $input) { participant { status } userErrors { message } } }",
            json!({ "input": { "roomId": room } }),
        )
        .await;
    assert_eq!(
        joined["joinRoom"],
        json!({ "participant": { "status": "CONNECTED" }, "userErrors": [] })
    );

    let requests = receiver.wait_for(5).await;
    let bodies = receiver.bodies();
    let summary: Vec<(Value, Value)> = bodies
        .iter()
        .map(|b| (b["type"].clone(), b["data"]["subject"]["id"].clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (json!("CALL_ENDED"), busy["call"]["id"].clone()),
            (json!("CALL_ENDED"), campaign_call.clone()),
            (json!("CALL_CAMPAIGN_RECEIVER_FINISHED"), campaign.clone()),
            (json!("ROOM_CREATED"), room.clone()),
            (json!("ROOM_PARTICIPANT_JOINED"), room.clone()),
        ]
    );
    assert_eq!(
        bodies[0]["data"]["details"]["status"], "BUSY",
        "{}",
        bodies[0]
    );
    let finished = &bodies[2]["data"]["details"];
    assert_eq!(
        (
            &finished["phoneNumber"],
            &finished["answered"],
            &finished["reply"],
            &finished["keypad"],
            &finished["dialCount"],
            &finished["durationSeconds"],
            &finished["metadata"],
        ),
        (
            &json!("+4520001005"),
            &json!(true),
            &json!("ACCEPT"),
            &json!("5"),
            &json!(1),
            &json!(35),
            &json!({ "event": "town-hall", "crmId": 42 }),
        ),
        "{finished}"
    );
    assert_eq!(bodies[2]["data"]["subject"]["type"], "CallCampaign");
    assert_in_order_and_signed(&requests, &bodies, &secret);
    let state = recorded(&app, &id, 5).await;
    assert!(
        state["webhookSubscription"]["deliveries"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "SUCCEEDED" && d["attemptCount"] == 1),
        "{state}"
    );
    // Nothing else arrives: the other call, campaign and room events were not wanted.
    advance(&app, 60);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.requests().len(), 5);
}
