//! Outbound delivery through jobs and the simulator: statuses `QUEUED → SENT → DELIVERED |
//! FAILED` with reasons and times in the history, retries of transient failures, delayed
//! delivery as a later job, `messageUpdated` over the websocket, and the channel's send rate
//! across two instances.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::fixtures;
use crate::live::{connected, next_data, subscribe_to};

const HISTORY: &str = "query($id: ID!) { message(id: $id) { deliveryStatus deliveryReason deliveryHistory { status reason at } } }";

async fn workers() -> TestApp {
    TestApp::spawn_with(|c| {
        c.job_workers = 4;
        c.job_poll_ms = 20;
        c.job_backoff_base_ms = 1;
    })
    .await
}

/// An SMS channel sending `rate` messages per second and an inbound conversation on it.
async fn line(app: &TestApp, rate: f64) -> String {
    on_channel(
        app,
        json!({ "type": "SMS", "name": "Line", "address": "+4520009999", "sendRatePerSecond": rate }),
        json!({ "phone": "+4520001234" }),
    )
    .await
}

/// A channel created with `input` and an inbound conversation on it from a new contact.
async fn on_channel(app: &TestApp, input: Value, contact: Value) -> String {
    let token = app.org.token.clone();
    let data = app
        .data(
            &token,
            "mutation($input: CreateChannelInput!) { createChannel(input: $input) { channel { id } userErrors { message } } }",
            json!({ "input": input }),
        )
        .await;
    assert_eq!(data["createChannel"]["userErrors"], json!([]), "{data}");
    let channel = data["createChannel"]["channel"]["id"]
        .as_str()
        .expect("channel")
        .to_string();
    let contact = fixtures::contact(app, &token, contact).await;
    fixtures::inbound(app, &token, &channel, &contact, "Hello?").await
}

/// Sends `text` to `to` in `conversation`; returns the message id.
async fn send(app: &TestApp, conversation: &str, to: &str, text: &str) -> String {
    let data = app
        .data(
            &app.org.token,
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id deliveryStatus } userErrors { field message } } }",
            json!({ "input": { "conversationId": conversation, "text": text, "to": [to] } }),
        )
        .await;
    assert_eq!(data["sendMessage"]["userErrors"], json!([]), "{data}");
    assert_eq!(data["sendMessage"]["message"]["deliveryStatus"], "QUEUED");
    data["sendMessage"]["message"]["id"]
        .as_str()
        .expect("message id")
        .to_string()
}

async fn history(app: &TestApp, id: &str) -> Value {
    app.data(&app.org.token, HISTORY, json!({ "id": id })).await["message"].clone()
}

/// Polls the message until its status is `status` (60 s at most).
async fn until_status(app: &TestApp, id: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(60);
    loop {
        let message = history(app, id).await;
        if message["deliveryStatus"] == status {
            return message;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "message never reached {status}: {message}"
        );
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
}

/// The history as (status, reason) pairs.
fn steps(message: &Value) -> Vec<(String, Option<String>)> {
    message["deliveryHistory"]
        .as_array()
        .expect("history")
        .iter()
        .map(|s| {
            (
                s["status"].as_str().unwrap_or_default().to_string(),
                s["reason"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn step(status: &str, reason: Option<&str>) -> (String, Option<String>) {
    (status.to_string(), reason.map(str::to_string))
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("time"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

#[tokio::test]
async fn outbound_messages_are_delivered_or_fail_as_the_simulator_decides_by_recipient() {
    let app = workers().await;
    let conversation = line(&app, 100.0).await;
    let delivered = send(&app, &conversation, "+4520001234", "plain").await;
    let refused = send(&app, &conversation, "+4520000000", "no such number").await;
    let flaky = send(&app, &conversation, "+4520000001", "flaky carrier").await;
    let unreachable = send(&app, &conversation, "+4520000003", "handset off").await;

    let message = until_status(&app, &delivered, "DELIVERED").await;
    assert_eq!(
        steps(&message),
        [
            step("QUEUED", None),
            step("SENT", None),
            step("DELIVERED", None)
        ]
    );
    assert_eq!(message["deliveryReason"], Value::Null);

    let message = until_status(&app, &refused, "FAILED").await;
    assert_eq!(
        steps(&message),
        [
            step("QUEUED", None),
            step("FAILED", Some("the number is not in service"))
        ]
    );
    assert_eq!(message["deliveryReason"], "the number is not in service");

    let message = until_status(&app, &flaky, "DELIVERED").await;
    assert_eq!(
        steps(&message),
        [
            step("QUEUED", None),
            step("SENT", None),
            step("DELIVERED", None)
        ]
    );

    let message = until_status(&app, &unreachable, "FAILED").await;
    assert_eq!(
        steps(&message),
        [
            step("QUEUED", None),
            step("SENT", None),
            step("FAILED", Some("the handset is unreachable"))
        ]
    );
    // The flaky send took three attempts, the refused one failed its job with the reason.
    assert_eq!(
        app.count(
            "jobs WHERE kind = 'message.deliver' AND status = 'SUCCEEDED' AND attempts = 3 \
             AND last_error = 'carrier temporarily unavailable'"
        )
        .await,
        1
    );
    assert_eq!(
        app.count(
            "jobs WHERE kind = 'message.deliver' AND status = 'FAILED' \
             AND last_error = 'the number is not in service'"
        )
        .await,
        1
    );
    // Each step was an event: 2 + 1 + 2 + 2.
    assert_eq!(
        app.count("events WHERE event_type = 'MESSAGE_STATUS_CHANGED'")
            .await,
        7
    );
}

#[tokio::test]
async fn delayed_delivery_is_a_later_job_and_reaches_message_updated_subscribers() {
    let app = workers().await;
    let conversation = line(&app, 100.0).await;
    // The runner's clock stands before the message: its delivery is not due yet.
    app.state
        .clock
        .set(Utc::now().trunc_subsecs(6) - Duration::hours(1));
    let id = send(&app, &conversation, "+4520000002", "later").await;
    // Read once the send returned: the delivery is due from then on.
    let t0 = Utc::now().trunc_subsecs(6);

    let token = app.org.token.clone();
    let mut socket = connected(&app, &token).await;
    // From the log's end: no update from here on is missed, however late the server starts
    // the subscription.
    subscribe_to(
        &mut socket,
        "u",
        "subscription($c: ID, $after: String) { messageUpdated(conversationId: $c, after: $after) { change message { id deliveryStatus deliveryHistory { status at } } } }",
        json!({ "c": conversation, "after": app.log_end_cursor().await }),
    )
    .await;

    let t1 = t0 + Duration::seconds(1);
    app.state.clock.set(t1);
    app.state.jobs.wake();
    let sent = next_data(&mut socket, "u").await;
    assert_eq!(sent["messageUpdated"]["change"], "STATUS_CHANGED");
    assert_eq!(sent["messageUpdated"]["message"]["id"], id.as_str());
    assert_eq!(sent["messageUpdated"]["message"]["deliveryStatus"], "SENT");
    let history = &sent["messageUpdated"]["message"]["deliveryHistory"];
    assert_eq!(history[1]["status"], "SENT");
    assert_eq!(time(&history[1]["at"]), t1);
    // The report is a job due a minute after the send.
    assert_eq!(
        app.count("jobs WHERE kind = 'message.report' AND status = 'QUEUED'")
            .await,
        1
    );
    assert_eq!(history_status(&app, &id).await, "SENT");

    app.state.clock.set(t1 + Duration::seconds(60));
    app.state.jobs.wake();
    let delivered = next_data(&mut socket, "u").await;
    assert_eq!(delivered["messageUpdated"]["change"], "STATUS_CHANGED");
    assert_eq!(
        delivered["messageUpdated"]["message"]["deliveryStatus"],
        "DELIVERED"
    );
    let history = &delivered["messageUpdated"]["message"]["deliveryHistory"];
    assert_eq!(history.as_array().map(Vec::len), Some(3));
    assert_eq!(history[2]["status"], "DELIVERED");
    assert_eq!(time(&history[2]["at"]), t1 + Duration::seconds(60));
}

async fn history_status(app: &TestApp, id: &str) -> String {
    history(app, id).await["deliveryStatus"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_burst_is_sent_at_the_channel_rate_across_two_instances() {
    let first = TestApp::spawn_with(|c| {
        c.job_workers = 3;
        c.job_poll_ms = 20;
        c.db_max_connections = 8;
    })
    .await;
    let second = first.spawn_beside().await;
    let conversation = line(&first, 5.0).await;
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(send(&first, &conversation, "+4520001234", &format!("burst {n}")).await);
    }
    second.state.jobs.wake();
    let mut sent = Vec::new();
    for id in &ids {
        let message = until_status(&first, id, "DELIVERED").await;
        let history = message["deliveryHistory"].as_array().expect("history");
        sent.extend(
            history
                .iter()
                .filter(|s| s["status"] == "SENT")
                .map(|s| time(&s["at"])),
        );
    }
    assert_eq!(sent.len(), ids.len());
    sent.sort();
    let gaps: Vec<i64> = sent
        .windows(2)
        .map(|w| (w[1] - w[0]).num_microseconds().unwrap_or_default())
        .collect();
    assert!(
        gaps.iter().all(|gap| *gap >= 200_000),
        "sends closer than 1/rate: {gaps:?}"
    );
    assert!(sent[9] - sent[0] >= Duration::milliseconds(1_800));
}

#[tokio::test]
async fn emails_follow_the_simulator_too_and_an_outbound_conversation_is_delivered() {
    let app = workers().await;
    let conversation = on_channel(
        &app,
        json!({ "type": "EMAIL", "name": "Support", "address": "support@acme.test" }),
        json!({ "email": "ann@example.com" }),
    )
    .await;
    let bounced = send(&app, &conversation, "bounce+ann@example.com", "hi").await;
    let refused = send(&app, &conversation, "fail+ann@example.com", "hi").await;
    assert_eq!(
        steps(&until_status(&app, &bounced, "FAILED").await),
        [
            step("QUEUED", None),
            step("SENT", None),
            step("FAILED", Some("the message bounced"))
        ]
    );
    assert_eq!(
        steps(&until_status(&app, &refused, "FAILED").await),
        [
            step("QUEUED", None),
            step("FAILED", Some("the mailbox does not exist"))
        ]
    );

    let token = app.org.token.clone();
    let channel = fixtures::channel(&app, &token, "SMS", "Outreach", "+4520008888").await;
    let bob = fixtures::contact(&app, &token, json!({ "phone": "+4520002222" })).await;
    let created = fixtures::create_conversation(
        &app,
        &token,
        json!({ "channelId": channel, "requesterId": bob, "direction": "OUTBOUND", "message": { "text": "Your order shipped" } }),
    )
    .await;
    assert_eq!(created["userErrors"], json!([]), "{created}");
    let first = created["message"]["id"].as_str().expect("message id");
    assert_eq!(
        steps(&until_status(&app, first, "DELIVERED").await),
        [
            step("QUEUED", None),
            step("SENT", None),
            step("DELIVERED", None)
        ]
    );
}

#[tokio::test]
async fn messages_that_cannot_go_out_fail_with_a_reason_and_scheduled_ones_wait() {
    let app = workers().await;
    let token = app.org.token.clone();
    let bridged = on_channel(
        &app,
        json!({ "type": "SMS", "name": "Bridge", "address": "+4520007777", "provider": "WEBHOOK",
                "providerSettings": { "url": "http://127.0.0.1:9/send" } }),
        json!({ "phone": "+4520003333" }),
    )
    .await;
    let via_webhook = send(&app, &bridged, "+4520003333", "hi").await;
    assert_eq!(
        steps(&until_status(&app, &via_webhook, "FAILED").await),
        [
            step("QUEUED", None),
            step(
                "FAILED",
                Some(
                    "not sent: \"http://127.0.0.1:9/send\" points to a private or loopback address, which webhooks may not reach"
                )
            )
        ]
    );

    // The runner's clock stands an hour back: nothing sent now is due.
    let conversation = line(&app, 100.0).await;
    let now = Utc::now().trunc_subsecs(6);
    app.state.clock.set(now - Duration::hours(1));
    let removed = send(&app, &conversation, "+4520001234", "oops").await;
    let removal = app
        .data(
            &token,
            "mutation($input: RemoveMessageInput!) { removeMessage(input: $input) { userErrors { message } } }",
            json!({ "input": { "messageId": removed } }),
        )
        .await;
    assert_eq!(removal["removeMessage"]["userErrors"], json!([]));
    let at = now + Duration::hours(2);
    let data = app
        .data(
            &token,
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id scheduledAt } userErrors { message } } }",
            json!({ "input": { "conversationId": conversation, "text": "tomorrow", "scheduledAt": at.to_rfc3339() } }),
        )
        .await;
    let scheduled = data["sendMessage"]["message"]["id"]
        .as_str()
        .expect("message id")
        .to_string();

    // A minute past the time read once the sends returned: the removed message's job is due
    // (the scheduled one is not).
    app.state
        .clock
        .set(Utc::now().trunc_subsecs(6) + Duration::minutes(1));
    app.state.jobs.wake();
    assert_eq!(
        steps(&until_status(&app, &removed, "FAILED").await),
        [
            step("QUEUED", None),
            step("FAILED", Some("the message was removed before it was sent"))
        ]
    );
    assert_eq!(history_status(&app, &scheduled).await, "QUEUED");
    assert_eq!(
        app.count(&format!(
            "jobs WHERE kind = 'message.deliver' AND status = 'QUEUED' AND CAST(payload AS TEXT) LIKE '%{}%'",
            uuid_of(&scheduled)
        ))
        .await,
        1
    );
    app.state.clock.set(at);
    app.state.jobs.wake();
    let message = until_status(&app, &scheduled, "DELIVERED").await;
    assert_eq!(time(&message["deliveryHistory"][1]["at"]), at);
}

fn uuid_of(id: &str) -> uuid::Uuid {
    switchboard::graphql::relay::decode_any_id(id)
        .expect("decodable id")
        .1
}

#[tokio::test]
async fn a_send_that_keeps_failing_transiently_fails_the_message_after_its_last_attempt() {
    use switchboard::jobs::NewJob;
    let app = workers().await;
    let conversation = line(&app, 100.0).await;
    // The message is scheduled an hour ahead, so its own job waits; a one-attempt delivery job
    // for it is due now.
    let at = Utc::now().trunc_subsecs(6) + Duration::hours(1);
    let data = app
        .data(
            &app.org.token,
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id } userErrors { message } } }",
            json!({ "input": { "conversationId": conversation, "text": "flaky", "to": ["+4520000001"], "scheduledAt": at.to_rfc3339() } }),
        )
        .await;
    let id = data["sendMessage"]["message"]["id"]
        .as_str()
        .expect("message id")
        .to_string();
    crate::jobs::enqueue(
        &app,
        NewJob::new(
            switchboard::messages::delivery::DELIVER,
            json!({ "messageId": uuid_of(&id) }),
        )
        .attempts(1),
    )
    .await;
    let message = until_status(&app, &id, "FAILED").await;
    assert_eq!(
        steps(&message),
        [
            step("QUEUED", None),
            step(
                "FAILED",
                Some("carrier temporarily unavailable (gave up after 1 attempts)")
            )
        ]
    );
    // The message's own job, once due, finds it failed and ends without sending.
    app.state.clock.set(at);
    app.state.jobs.wake();
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(60);
    while app
        .count("jobs WHERE kind = 'message.deliver' AND status = 'SUCCEEDED'")
        .await
        < 1
    {
        assert!(tokio::time::Instant::now() < deadline, "the job never ran");
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    assert_eq!(steps(&history(&app, &id).await).len(), 2);
}

#[tokio::test]
async fn a_scheduled_message_canceled_before_it_is_due_is_never_sent() {
    let app = workers().await;
    let token = app.org.token.clone();
    let conversation = line(&app, 100.0).await;
    let now = Utc::now().trunc_subsecs(6);
    app.state.clock.set(now);
    let at = now + Duration::hours(2);
    let data = app
        .data(
            &token,
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id } userErrors { message } } }",
            json!({ "input": { "conversationId": conversation, "text": "later", "scheduledAt": at.to_rfc3339() } }),
        )
        .await;
    let scheduled = data["sendMessage"]["message"]["id"].clone();
    const CANCEL: &str = "mutation($id: ID!) { cancelScheduledMessage(input: { messageId: $id }) { message { deliveryStatus deliveryReason } userErrors { field message code } } }";
    let canceled = app.data(&token, CANCEL, json!({ "id": scheduled })).await;
    assert_eq!(
        canceled["cancelScheduledMessage"],
        json!({ "message": { "deliveryStatus": "CANCELED", "deliveryReason": "canceled before it was due" }, "userErrors": [] })
    );
    // Its time comes: the delivery job ends without sending it.
    app.state.clock.set(at + Duration::seconds(1));
    app.state.jobs.wake();
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(60);
    while app
        .count("jobs WHERE kind = 'message.deliver' AND status = 'SUCCEEDED'")
        .await
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job never ended"
        );
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    let message = history(&app, scheduled.as_str().unwrap()).await;
    assert_eq!(
        steps(&message),
        [
            step("QUEUED", None),
            step("CANCELED", Some("canceled before it was due"))
        ]
    );
    // Canceling again, or a message that is not scheduled, is refused and changes nothing.
    let not_scheduled = send(&app, &conversation, "+4520001234", "now").await;
    for id in [scheduled.clone(), json!(not_scheduled)] {
        let again = app.data(&token, CANCEL, json!({ "id": id })).await;
        assert_eq!(
            again["cancelScheduledMessage"],
            json!({ "message": null, "userErrors": [{ "field": ["input", "messageId"],
                    "message": "only a scheduled message that is not yet due can be canceled", "code": "INVALID_STATE" }] })
        );
    }
    assert_eq!(
        app.count("message_status_events WHERE status = 'CANCELED'")
            .await,
        1
    );
}
