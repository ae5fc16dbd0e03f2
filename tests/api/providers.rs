//! The webhook and SMTP providers: signed sends to a receiver started by the test, the carrier's
//! status callbacks on the ingest endpoint (forward only), 4xx failing and 5xx retrying; mail to
//! an SMTP server started by the test, and its refusal failing the message.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::TestApp;
use crate::fixtures;
use crate::ingest::{ingest, new_channel};
use crate::live::{connected, next_data, subscribe_to};

const HISTORY: &str = "query($id: ID!) { message(id: $id) { deliveryStatus deliveryReason deliveryHistory { status reason } } }";

async fn workers() -> TestApp {
    TestApp::spawn_with(|c| {
        c.job_workers = 2;
        c.job_poll_ms = 20;
        c.job_backoff_base_ms = 1;
        c.webhook_allow_private_addresses = true;
    })
    .await
}

/// A carrier bridge: records each request, answers from a script (then the last answer again).
#[derive(Clone, Default)]
struct Carrier {
    requests: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    answers: Arc<Mutex<VecDeque<(u16, String)>>>,
}

async fn carry(
    State(carrier): State<Carrier>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    carrier.requests.lock().unwrap().push((headers, body));
    let mut answers = carrier.answers.lock().unwrap();
    let (status, body) = if answers.len() > 1 {
        answers.pop_front().unwrap()
    } else {
        answers.front().cloned().unwrap()
    };
    (StatusCode::from_u16(status).unwrap(), body)
}

/// A carrier on a loopback port answering `answers` in turn; returns it and its URL.
async fn start_carrier(answers: &[(u16, &str)]) -> (Carrier, String) {
    let carrier = Carrier::default();
    *carrier.answers.lock().unwrap() = answers
        .iter()
        .map(|(s, b)| (*s, (*b).to_string()))
        .collect();
    let app = Router::new()
        .route("/send", post(carry))
        .with_state(carrier.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/send", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (carrier, url)
}

/// A conversation on a new channel from `input` with a contact from `contact`; returns the
/// channel, its ingest secret and the conversation.
async fn conversation_on(app: &TestApp, input: Value, contact: Value) -> (String, String, String) {
    let (channel, secret) = new_channel(app, input).await;
    let token = app.org.token.clone();
    let contact = fixtures::contact(app, &token, contact).await;
    let conversation = fixtures::inbound(app, &token, &channel, &contact, "Hello?").await;
    (channel, secret, conversation)
}

async fn send(app: &TestApp, input: Value) -> String {
    let data = app
        .data(
            &app.org.token,
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id } userErrors { field message } } }",
            json!({ "input": input }),
        )
        .await;
    assert_eq!(data["sendMessage"]["userErrors"], json!([]), "{data}");
    data["sendMessage"]["message"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Polls the message until its status is `status` (60 s at most).
async fn until_status(app: &TestApp, id: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let message =
            app.data(&app.org.token, HISTORY, json!({ "id": id })).await["message"].clone();
        if message["deliveryStatus"] == status {
            return message;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "message never reached {status}: {message}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers.get(name).unwrap().to_str().unwrap().to_string()
}

#[tokio::test]
async fn the_webhook_provider_posts_signed_sends_and_takes_status_callbacks_forward_only() {
    let app = workers().await;
    let (carrier, url) = start_carrier(&[(202, r#"{"providerMessageId":"carrier-1"}"#)]).await;
    let (channel, secret, conversation) = conversation_on(
        &app,
        json!({ "type": "SMS", "name": "Bridge", "address": "+4520009999", "sendRatePerSecond": 100.0,
                "provider": "WEBHOOK", "providerSettings": { "url": url } }),
        json!({ "phone": "+4520001234" }),
    )
    .await;
    let message = send(
        &app,
        json!({ "conversationId": conversation, "text": "Your order shipped" }),
    )
    .await;
    let sent = until_status(&app, &message, "SENT").await;
    assert_eq!(
        sent,
        json!({ "deliveryStatus": "SENT", "deliveryReason": null, "deliveryHistory": [
            { "status": "QUEUED", "reason": null }, { "status": "SENT", "reason": null }] })
    );

    let requests = carrier.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let (headers, body) = &requests[0];
    let id = header(headers, "webhook-id");
    let timestamp = header(headers, "webhook-timestamp");
    let raw = switchboard::graphql::relay::decode_id(&message, "Message").unwrap();
    assert_eq!(id, format!("msg_{}", raw.simple()));
    assert_eq!(
        switchboard::webhooks::signing::verify(
            &secret,
            &id,
            &timestamp,
            &header(headers, "webhook-signature"),
            body,
            chrono::Utc::now().timestamp(),
        ),
        Ok(())
    );
    assert_eq!(header(headers, "content-type"), "application/json");
    let body: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        body,
        json!({ "type": "message.send", "messageId": message, "channelId": channel, "channelType": "SMS",
                "from": "+4520009999", "to": ["+4520001234"], "cc": [], "bcc": [], "subject": null,
                "text": "Your order shipped", "html": null, "messageIdHeader": null, "inReplyTo": null,
                "references": [], "attempt": 1 })
    );

    // The carrier reports delivery (seen by messageUpdated), then the read; a late DELIVERED
    // is ignored.
    let token = app.org.token.clone();
    let mut socket = connected(&app, &token).await;
    // From the log's end: no update from here on is missed, however late the server starts
    // the subscription.
    subscribe_to(
        &mut socket,
        "u",
        "subscription($c: ID, $after: String) { messageUpdated(conversationId: $c, after: $after) { change message { id deliveryStatus } } }",
        json!({ "c": conversation, "after": app.log_end_cursor().await }),
    )
    .await;
    let status = |status: &str| json!({ "type": "status", "providerMessageId": "carrier-1", "status": status });
    let (code, answer) = ingest(&app, &channel, &secret, status("DELIVERED")).await;
    assert_eq!(code, reqwest::StatusCode::OK);
    assert_eq!(
        answer,
        json!({ "result": "UPDATED", "messageId": message, "status": "DELIVERED", "reason": null })
    );
    let update = next_data(&mut socket, "u").await;
    assert_eq!(
        update["messageUpdated"],
        json!({ "change": "STATUS_CHANGED", "message": { "id": message, "deliveryStatus": "DELIVERED" } })
    );
    let mut read = status("READ");
    read["at"] = json!(chrono::Utc::now().to_rfc3339());
    let (_, answer) = ingest(&app, &channel, &secret, read).await;
    assert_eq!(answer["result"], "UPDATED");
    let events = app
        .count("events WHERE event_type = 'MESSAGE_STATUS_CHANGED'")
        .await;
    let (code, answer) = ingest(&app, &channel, &secret, status("DELIVERED")).await;
    assert_eq!(code, reqwest::StatusCode::OK);
    assert_eq!(
        answer,
        json!({ "result": "IGNORED", "messageId": message, "status": "READ",
                "reason": "the message is READ; it cannot move back to DELIVERED" })
    );
    assert_eq!(
        app.count("events WHERE event_type = 'MESSAGE_STATUS_CHANGED'")
            .await,
        events
    );
    let history = app
        .data(&app.org.token, HISTORY, json!({ "id": message }))
        .await;
    assert_eq!(
        history["message"]["deliveryHistory"],
        json!([{ "status": "QUEUED", "reason": null }, { "status": "SENT", "reason": null },
               { "status": "DELIVERED", "reason": null }, { "status": "READ", "reason": null }])
    );
    // Another channel's secret does not reach this channel's messages.
    let (other, other_secret) = new_channel(
        &app,
        json!({ "type": "SMS", "name": "Other", "address": "+4520008888" }),
    )
    .await;
    let (code, _) = ingest(&app, &other, &other_secret, status("FAILED")).await;
    assert_eq!(code, reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_webhook_provider_fails_on_4xx_with_the_reason_and_retries_5xx() {
    let app = workers().await;
    let (carrier, url) = start_carrier(&[
        (503, "busy"),
        (500, ""),
        (200, r#"{"providerMessageId":"c-9"}"#),
    ])
    .await;
    let (_, _, conversation) = conversation_on(
        &app,
        json!({ "type": "SMS", "name": "Bridge", "address": "+4520009999", "sendRatePerSecond": 100.0,
                "provider": "WEBHOOK", "providerSettings": { "url": url } }),
        json!({ "phone": "+4520001234" }),
    )
    .await;
    let message = send(
        &app,
        json!({ "conversationId": conversation, "text": "One" }),
    )
    .await;
    until_status(&app, &message, "SENT").await;
    let attempts: Vec<i64> = carrier
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|(_, body)| {
            serde_json::from_slice::<Value>(body).unwrap()["attempt"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(attempts, [1, 2, 3]);

    let (_, url) = start_carrier(&[(422, r#"{"error":"unknown number"}"#)]).await;
    let (_, _, conversation) = conversation_on(
        &app,
        json!({ "type": "SMS", "name": "Strict", "address": "+4520007777", "sendRatePerSecond": 100.0,
                "provider": "WEBHOOK", "providerSettings": { "url": url } }),
        json!({ "phone": "+4520004321" }),
    )
    .await;
    let message = send(
        &app,
        json!({ "conversationId": conversation, "text": "Two" }),
    )
    .await;
    let failed = until_status(&app, &message, "FAILED").await;
    let reason = r#"the provider's webhook answered 422: {"error":"unknown number"}"#;
    assert_eq!(
        failed,
        json!({ "deliveryStatus": "FAILED", "deliveryReason": reason, "deliveryHistory": [
            { "status": "QUEUED", "reason": null }, { "status": "FAILED", "reason": reason }] })
    );
}

/// One mail as the SMTP server received it: `MAIL FROM`, the accepted `RCPT TO`s, the data.
type Mail = (String, Vec<String>, String);

/// What the SMTP server received.
#[derive(Clone, Debug, Default)]
struct Mailbox {
    mails: Arc<Mutex<Vec<Mail>>>,
}

/// An SMTP server on a loopback port speaking just enough SMTP; `refuse` is a recipient it
/// answers `550` for. Returns what it received and its port.
async fn smtp_server(refuse: Option<&'static str>) -> (Mailbox, u16) {
    let mailbox = Mailbox::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let kept = mailbox.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let mailbox = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 test ESMTP\r\n").await.unwrap();
                let (mut from, mut to) = (String::new(), Vec::new());
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let answer: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250-test\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("MAIL FROM:") {
                        from = line[10..].trim().to_string();
                        b"250 ok\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        let rcpt = line[8..].trim().to_string();
                        if refuse.is_some_and(|r| rcpt.contains(r)) {
                            b"550 5.1.1 no such user here\r\n"
                        } else {
                            to.push(rcpt);
                            b"250 ok\r\n"
                        }
                    } else if upper == "DATA" {
                        write.write_all(b"354 go ahead\r\n").await.unwrap();
                        let mut data = String::new();
                        while let Ok(Some(line)) = lines.next_line().await {
                            if line == "." {
                                break;
                            }
                            data.push_str(&line);
                            data.push('\n');
                        }
                        mailbox.mails.lock().unwrap().push((
                            from.clone(),
                            std::mem::take(&mut to),
                            data,
                        ));
                        b"250 queued\r\n"
                    } else if upper == "QUIT" {
                        write.write_all(b"221 bye\r\n").await.unwrap();
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    write.write_all(answer).await.unwrap();
                }
            });
        }
    });
    (mailbox, port)
}

#[tokio::test]
async fn the_smtp_provider_sends_mail_to_the_channels_server() {
    let app = workers().await;
    let (mailbox, port) = smtp_server(None).await;
    let (channel, secret) = new_channel(
        &app,
        json!({ "type": "EMAIL", "name": "Support", "address": "support@acme.test",
                "provider": "SMTP", "providerSettings": { "host": "127.0.0.1", "port": port, "tls": "NONE" } }),
    )
    .await;
    // The customer wrote first (through ingest); the answer threads under their mail.
    let (_, first) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "message", "providerMessageId": "in-1", "from": "ann@example.com",
                "subject": "My kettle", "text": "Broken", "messageId": "<m1@example.com>" }),
    )
    .await;
    let conversation = first["conversationId"].as_str().unwrap().to_string();
    let message = send(
        &app,
        json!({ "conversationId": conversation, "emailSubject": "Your kettle", "text": "It is fixed.",
                "html": "<p>It is <b>fixed</b>.</p>", "cc": ["bo@example.com"], "bcc": ["audit@acme.test"] }),
    )
    .await;
    until_status(&app, &message, "SENT").await;
    let mails = mailbox.mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    let (from, to, data) = &mails[0];
    assert!(from.starts_with("<support@acme.test>"), "{from}");
    assert_eq!(
        to,
        &["<ann@example.com>", "<bo@example.com>", "<audit@acme.test>"]
    );
    let raw = switchboard::graphql::relay::decode_id(&message, "Message").unwrap();
    for expected in [
        "From: support@acme.test".to_string(),
        "To: ann@example.com".to_string(),
        "Cc: bo@example.com".to_string(),
        "Subject: Your kettle".to_string(),
        format!("Message-ID: <{}@acme.test>", raw.simple()),
        "In-Reply-To: <m1@example.com>".to_string(),
        "References: <m1@example.com>".to_string(),
        "Content-Type: multipart/alternative;".to_string(),
        "It is fixed.".to_string(),
        "<p>It is <b>fixed</b>.</p>".to_string(),
    ] {
        assert!(data.contains(&expected), "{expected:?} missing in:\n{data}");
    }
    assert!(!data.contains("audit@acme.test"), "{data}");
}

#[tokio::test]
async fn an_smtp_refusal_fails_the_message_with_the_servers_reason() {
    let app = workers().await;
    let (mailbox, port) = smtp_server(Some("nobody@example.com")).await;
    let (_, _, conversation) = conversation_on(
        &app,
        json!({ "type": "EMAIL", "name": "Support", "address": "support@acme.test",
                "provider": "SMTP", "providerSettings": { "host": "127.0.0.1", "port": port, "tls": "NONE" } }),
        json!({ "email": "nobody@example.com" }),
    )
    .await;
    let message = send(
        &app,
        json!({ "conversationId": conversation, "text": "Hello" }),
    )
    .await;
    let failed = until_status(&app, &message, "FAILED").await;
    let reason = failed["deliveryReason"].as_str().unwrap();
    assert!(
        reason.starts_with("the SMTP server refused the message: permanent error (550)")
            && reason.contains("no such user here"),
        "{reason}"
    );
    assert!(mailbox.mails.lock().unwrap().is_empty());

    // Settings the provider cannot use are refused when the channel is created.
    let refused = app
        .data(
            &app.org.token,
            "mutation($input: CreateChannelInput!) { createChannel(input: $input) { userErrors { field message } } }",
            json!({ "input": { "type": "EMAIL", "name": "Bad", "address": "bad@acme.test", "provider": "SMTP",
                    "providerSettings": { "host": "127.0.0.1", "tls": "SSL", "username": "" } } }),
        )
        .await;
    assert_eq!(
        refused["createChannel"]["userErrors"],
        json!([
            { "field": ["input", "providerSettings", "tls"], "message": "providerSettings.tls must be NONE, STARTTLS or TLS" },
            { "field": ["input", "providerSettings", "username"], "message": "providerSettings.username must be a non-empty string" },
        ])
    );
}

const START_CALL: &str = "mutation($input: StartCallInput!) { startCall(input: $input) {
    call { id status } userErrors { field message code } } }";

/// The call's status and end reason once `done` holds (polled; the placement job runs in the
/// background).
async fn call_until(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let call = app
            .data(
                &app.org.token,
                "query($id: ID!) { call(id: $id) { status endReason } }",
                json!({ "id": id }),
            )
            .await["call"]
            .clone();
        if done(&call) {
            return call;
        }
        assert!(tokio::time::Instant::now() < deadline, "call stuck: {call}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `n`th request the carrier got (waiting up to 60 s for it): its headers and JSON body.
async fn nth_request(carrier: &Carrier, n: usize) -> (HeaderMap, Bytes, Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while carrier.requests.lock().unwrap().len() <= n {
        assert!(tokio::time::Instant::now() < deadline, "no request {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (headers, body) = carrier.requests.lock().unwrap()[n].clone();
    let json = serde_json::from_slice(&body).unwrap();
    (headers, body, json)
}

/// Waits until a call has provider call id `provider_id` (the placement job recorded it).
async fn placed_as(app: &TestApp, provider_id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while app
        .count(&format!("calls WHERE provider_call_id = '{provider_id}'"))
        .await
        != 1
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the placement was never recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_webhook_provider_places_calls_and_the_bridge_reports_their_progress() {
    let app = workers().await;
    let (carrier, url) = start_carrier(&[
        (202, r#"{"providerCallId":"bridge-7"}"#),
        (202, r#"{"providerCallId":"bridge-8"}"#),
        (202, r#"{"providerCallId":"bridge-9"}"#),
    ])
    .await;
    let (channel, secret) = new_channel(
        &app,
        json!({ "type": "VOICE", "name": "Bridge", "address": "+4570001111",
                "provider": "WEBHOOK", "providerSettings": { "url": url } }),
    )
    .await;
    let started = app
        .data(
            &app.org.token,
            START_CALL,
            json!({ "input": { "channelId": channel, "to": "+4520001234" } }),
        )
        .await;
    assert_eq!(started["startCall"]["userErrors"], json!([]));
    let id = started["startCall"]["call"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(started["startCall"]["call"]["status"], "RINGING");
    let agent_to = format!("client:{}", app.org.owner_id);

    // First the agent's leg reaches the bridge, signed with the channel's secret.
    let (headers, body, json_body) = nth_request(&carrier, 0).await;
    let raw = switchboard::graphql::relay::decode_id(&id, "Call").unwrap();
    let webhook_id = header(&headers, "webhook-id");
    assert_eq!(webhook_id, format!("call_{}_agent", raw.simple()));
    assert_eq!(
        switchboard::webhooks::signing::verify(
            &secret,
            &webhook_id,
            &header(&headers, "webhook-timestamp"),
            &header(&headers, "webhook-signature"),
            &body,
            chrono::Utc::now().timestamp(),
        ),
        Ok(())
    );
    assert_eq!(
        json_body,
        json!({ "type": "call.place", "callId": id, "channelId": channel, "kind": "CLICK_TO_CALL",
                "leg": "AGENT", "from": "+4570001111", "to": agent_to, "contact": "+4520001234",
                "attempt": 1 })
    );
    placed_as(&app, "bridge-7").await;

    // The contact cannot answer before the agent did: refused, nothing changes.
    let events = app.count("events").await;
    let (code, refused) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "call", "providerCallId": "bridge-7", "status": "IN_PROGRESS" }),
    )
    .await;
    assert_eq!(code, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused["errors"],
        json!([{ "message": "the agent has not answered their leg yet: report it with \"leg\": \"AGENT\" first",
                 "extensions": { "code": "INVALID_STATE", "field": "leg" } }])
    );
    assert_eq!(app.count("events").await, events);
    assert_eq!(
        app.count("calls WHERE status = 'RINGING' AND agent_answered_at IS NULL")
            .await,
        1
    );

    // The agent answers: only now is the contact's leg placed.
    let (code, answer) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "call", "providerCallId": "bridge-7", "leg": "AGENT", "status": "IN_PROGRESS" }),
    )
    .await;
    assert_eq!(code, axum::http::StatusCode::OK, "{answer}");
    assert_eq!(
        (&answer["result"], &answer["status"]),
        (&json!("UPDATED"), &json!("RINGING"))
    );
    let (headers, _, json_body) = nth_request(&carrier, 1).await;
    assert_eq!(
        header(&headers, "webhook-id"),
        format!("call_{}", raw.simple())
    );
    assert_eq!(
        json_body,
        json!({ "type": "call.place", "callId": id, "channelId": channel, "kind": "CLICK_TO_CALL",
                "leg": "CONTACT", "from": "+4570001111", "to": "+4520001234", "contact": "+4520001234",
                "attempt": 1 })
    );
    // The contact leg's id replaces the agent leg's; the bridge's reports under it move the call.
    placed_as(&app, "bridge-8").await;
    for status in ["IN_PROGRESS", "COMPLETED"] {
        let (code, answer) = ingest(
            &app,
            &channel,
            &secret,
            json!({ "type": "call", "providerCallId": "bridge-8", "status": status }),
        )
        .await;
        assert_eq!(code, axum::http::StatusCode::OK, "{answer}");
        assert_eq!(answer["callId"], id.as_str());
    }
    let call = call_until(&app, &id, |c| c["status"] == "COMPLETED").await;
    assert_eq!(call["endReason"], Value::Null);
    assert_eq!(
        app.count("events WHERE event_type = 'CALL_AGENT_ANSWERED'")
            .await,
        1
    );

    // An agent who does not answer: the call ends and the contact is never called.
    let second = app
        .data(
            &app.org.token,
            START_CALL,
            json!({ "input": { "channelId": channel, "to": "+4520005678" } }),
        )
        .await["startCall"]["call"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, _, json_body) = nth_request(&carrier, 2).await;
    assert_eq!(json_body["leg"], "AGENT");
    placed_as(&app, "bridge-9").await;
    let (code, answer) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "call", "providerCallId": "bridge-9", "leg": "AGENT", "status": "NO_ANSWER" }),
    )
    .await;
    assert_eq!(code, axum::http::StatusCode::OK, "{answer}");
    let call = call_until(&app, &second, |c| c["status"] == "NO_ANSWER").await;
    assert_eq!(
        call["endReason"],
        "the agent's leg ended NO_ANSWER; the contact was not called"
    );
    assert_eq!(carrier.requests.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn taking_a_callback_dials_the_contact_through_the_bridge() {
    let app = workers().await;
    let (carrier, url) = start_carrier(&[(202, r#"{"providerCallId":"cb-1"}"#)]).await;
    let (channel, secret) = new_channel(
        &app,
        json!({ "type": "VOICE", "name": "Bridge", "address": "+4570001111",
                "provider": "WEBHOOK", "providerSettings": { "url": url } }),
    )
    .await;
    let requested = app
        .data(
            &app.org.token,
            "mutation($input: RequestCallbackInput!) { requestCallback(input: $input) { call { id status } } }",
            json!({ "input": { "channelId": channel, "to": "+4520001234" } }),
        )
        .await;
    let id = requested["requestCallback"]["call"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(requested["requestCallback"]["call"]["status"], "QUEUED");
    // Nothing is dialled while it waits for an agent.
    assert_eq!(app.count("jobs WHERE kind = 'call.place'").await, 0);

    let taken = app
        .data(
            &app.org.token,
            "mutation($input: CallIdInput!) { answerCall(input: $input) { call { status agentTo agentAnsweredAt answeredAt user { email } } userErrors { message } } }",
            json!({ "input": { "id": id } }),
        )
        .await;
    let call = &taken["answerCall"]["call"];
    assert_eq!(taken["answerCall"]["userErrors"], json!([]));
    assert_eq!(
        (
            &call["status"],
            &call["agentTo"],
            &call["answeredAt"],
            &call["user"]
        ),
        (
            &json!("RINGING"),
            &json!(format!("client:{}", app.org.owner_id)),
            &Value::Null,
            &json!({ "email": "owner@acme.test" })
        )
    );
    assert!(call["agentAnsweredAt"].is_string());
    let (_, _, body) = nth_request(&carrier, 0).await;
    assert_eq!(
        body,
        json!({ "type": "call.place", "callId": id, "channelId": channel, "kind": "CALLBACK",
                "leg": "CONTACT", "from": "+4570001111", "to": "+4520001234", "contact": "+4520001234",
                "attempt": 1 })
    );
    placed_as(&app, "cb-1").await;
    for status in ["IN_PROGRESS", "COMPLETED"] {
        let (code, answer) = ingest(
            &app,
            &channel,
            &secret,
            json!({ "type": "call", "providerCallId": "cb-1", "status": status }),
        )
        .await;
        assert_eq!(code, axum::http::StatusCode::OK, "{answer}");
    }
    let call = call_until(&app, &id, |c| c["status"] == "COMPLETED").await;
    assert_eq!(call["endReason"], Value::Null);
    assert_eq!(carrier.requests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_call_the_bridge_refuses_fails_with_the_reason() {
    let app = workers().await;
    let (_carrier, url) = start_carrier(&[(400, "unknown number")]).await;
    let (channel, _) = new_channel(
        &app,
        json!({ "type": "VOICE", "name": "Bridge", "address": "+4570001111",
                "provider": "WEBHOOK", "providerSettings": { "url": url } }),
    )
    .await;
    let started = app
        .data(
            &app.org.token,
            START_CALL,
            json!({ "input": { "channelId": channel, "to": "+4520001234" } }),
        )
        .await;
    let id = started["startCall"]["call"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let call = call_until(&app, &id, |c| c["status"] == "FAILED").await;
    assert_eq!(
        call,
        json!({ "status": "FAILED", "endReason": "the provider's webhook answered 400: unknown number" })
    );
}
