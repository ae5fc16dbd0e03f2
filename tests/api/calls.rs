//! Calls: click-to-call through answer, hold, resume and end (times and price), the simulator's
//! outcomes by number, callbacks and transfers, inbound calls reported on the ingest endpoint,
//! the `calls` connection's filters, `callChanged`, and every refused input changing nothing.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::fixtures;
use crate::ingest::{ingest, new_channel};
use crate::live::{connected, next_data, subscribe_to};

const T0: &str = "2026-11-24T09:00:00Z";

fn t0() -> DateTime<Utc> {
    T0.parse().unwrap()
}

fn at(seconds: i64) -> String {
    (t0() + Duration::seconds(seconds)).to_rfc3339()
}

fn advance(app: &TestApp, seconds: i64) {
    app.state.clock.advance(Duration::seconds(seconds));
}

const CALL: &str = "id status kind direction from to onHold waitSeconds talkSeconds holdSeconds
    endReason keypad createdAt ringingAt answeredAt endedAt priceEstimate { amount currency }
    user { email } queue { name } contact { phone } conversation { channelType direction status }";

async fn call_mutation(app: &TestApp, token: &str, name: &str, input: Value) -> Value {
    let input_type = match name {
        "startCall" => "StartCallInput",
        "requestCallback" => "RequestCallbackInput",
        "endCall" => "EndCallInput",
        "transferCall" => "TransferCallInput",
        _ => "CallIdInput",
    };
    let query = format!(
        "mutation($input: {input_type}!) {{ {name}(input: $input) {{ call {{ {CALL} }} userErrors {{ field message code }} }} }}"
    );
    app.data(token, &query, json!({ "input": input })).await[name].clone()
}

async fn voice_channel(app: &TestApp, extra: Value) -> (String, String) {
    let mut input = json!({ "type": "VOICE", "name": "Phones", "address": "+4570000000" });
    if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        input.extend(extra.clone());
    }
    new_channel(app, input).await
}

async fn phone_contact(app: &TestApp, phone: &str) -> String {
    fixtures::contact(
        app,
        &app.org.token,
        json!({ "displayName": format!("Caller {phone}"), "phone": phone }),
    )
    .await
}

#[tokio::test]
async fn click_to_call_rings_is_answered_held_resumed_and_ended_with_times_and_price() {
    let app = TestApp::spawn().await;
    app.state.clock.set(t0());
    let token = app.org.token.clone();
    let (channel, _) = voice_channel(
        &app,
        json!({ "callRate": { "perMinute": "0.013", "currency": "EUR" } }),
    )
    .await;
    let contact = phone_contact(&app, "+4520000004").await;

    let started = call_mutation(
        &app,
        &token,
        "startCall",
        json!({ "channelId": channel, "contactId": contact }),
    )
    .await;
    assert_eq!(started["userErrors"], json!([]));
    let call = &started["call"];
    let id = call["id"].as_str().unwrap().to_string();
    assert_eq!(
        call,
        &json!({
            "id": id, "status": "RINGING", "kind": "CLICK_TO_CALL", "direction": "OUTBOUND",
            "from": "+4570000000", "to": "+4520000004", "onHold": false, "waitSeconds": null,
            "talkSeconds": null, "holdSeconds": 0, "endReason": null, "keypad": null,
            "createdAt": at(0), "ringingAt": at(0), "answeredAt": null, "endedAt": null,
            "priceEstimate": null, "user": { "email": "owner@acme.test" }, "queue": null,
            "contact": { "phone": "+4520000004" },
            "conversation": { "channelType": "VOICE", "direction": "OUTBOUND", "status": "OPEN" }
        })
    );

    advance(&app, 7);
    let answered = call_mutation(&app, &token, "answerCall", json!({ "id": id })).await;
    assert_eq!(answered["call"]["status"], "IN_PROGRESS");
    assert_eq!(answered["call"]["answeredAt"], at(7));
    assert_eq!(answered["call"]["waitSeconds"], 7);

    advance(&app, 10);
    let held = call_mutation(&app, &token, "holdCall", json!({ "id": id })).await;
    assert_eq!(held["call"]["onHold"], true);
    let again = call_mutation(&app, &token, "holdCall", json!({ "id": id })).await;
    assert_eq!(
        again["userErrors"],
        json!([{ "field": ["input", "id"], "message": "the call is on hold already", "code": "INVALID_STATE" }])
    );
    advance(&app, 20);
    let resumed = call_mutation(&app, &token, "resumeCall", json!({ "id": id })).await;
    assert_eq!(
        (&resumed["call"]["onHold"], &resumed["call"]["holdSeconds"]),
        (&json!(false), &json!(20))
    );

    advance(&app, 35);
    let ended = call_mutation(
        &app,
        &token,
        "endCall",
        json!({ "id": id, "reason": "resolved" }),
    )
    .await;
    let call = &ended["call"];
    assert_eq!(call["status"], "COMPLETED");
    assert_eq!(call["endedAt"], at(72));
    assert_eq!(call["talkSeconds"], 65);
    assert_eq!(call["endReason"], "resolved");
    assert_eq!(
        call["priceEstimate"],
        json!({ "amount": "0.026000", "currency": "EUR" })
    );

    // Ending it again: refused, nothing changes.
    let events = app.count("events").await;
    let again = call_mutation(&app, &token, "endCall", json!({ "id": id })).await;
    assert_eq!(
        again,
        json!({ "call": null, "userErrors": [
            { "field": ["input", "id"], "message": "the call has ended (COMPLETED)", "code": "INVALID_STATE" }
        ] })
    );
    assert_eq!(app.count("events").await, events);
    assert_eq!(
        app.count(
            "events WHERE subject_type = 'Call' AND event_type IN ('CALL_CREATED', 'CALL_STATUS_CHANGED', 'CALL_HELD', 'CALL_RESUMED', 'CALL_ENDED')"
        )
        .await,
        5
    );
}

#[tokio::test]
async fn the_simulator_decides_outcomes_by_number() {
    let app = TestApp::spawn().await;
    app.state.clock.set(t0());
    let token = app.org.token.clone();
    let (channel, _) = voice_channel(&app, json!({})).await;
    let cases = [
        ("+4520000000", "BUSY", Value::Null),
        ("+4520000001", "NO_ANSWER", Value::Null),
        ("+4520000002", "VOICEMAIL", Value::Null),
        (
            "+4520000003",
            "FAILED",
            json!("the number is not in service"),
        ),
        ("+4520000004", "RINGING", Value::Null),
    ];
    for (number, status, reason) in cases {
        let started = call_mutation(
            &app,
            &token,
            "startCall",
            json!({ "channelId": channel, "to": number }),
        )
        .await;
        assert_eq!(started["userErrors"], json!([]), "{number}");
        let call = &started["call"];
        assert_eq!(call["status"], status, "{number}");
        assert_eq!(call["endReason"], reason, "{number}");
        assert_eq!(call["contact"]["phone"], number);
        if status != "RINGING" {
            // Ends after ringing 5 s, unanswered: all of it was waiting.
            assert_eq!(call["endedAt"], at(5), "{number}");
            assert_eq!(call["waitSeconds"], 5, "{number}");
            assert_eq!(call["talkSeconds"], Value::Null, "{number}");
        }
    }
    // A number the callee answers: talks 30 s + its last two digits, then hangs up.
    let answered = call_mutation(
        &app,
        &token,
        "startCall",
        json!({ "channelId": channel, "to": "+4520001005" }),
    )
    .await;
    let call = &answered["call"];
    assert_eq!(
        (
            &call["status"],
            &call["answeredAt"],
            &call["talkSeconds"],
            &call["keypad"]
        ),
        (&json!("COMPLETED"), &json!(at(5)), &json!(35), &json!("5"))
    );
    assert_eq!(call["priceEstimate"], Value::Null, "no rate on the channel");
}

#[tokio::test]
async fn refused_calls_and_moves_say_why_and_change_nothing() {
    let app = TestApp::spawn().await;
    app.state.clock.set(t0());
    let token = app.org.token.clone();
    let (voice, _) = voice_channel(&app, json!({})).await;
    let (sms_only, _) = new_channel(
        &app,
        json!({ "type": "SMS", "name": "Texts", "address": "+4571111111", "capabilities": ["SMS"] }),
    )
    .await;
    let (email, _) = new_channel(
        &app,
        json!({ "type": "EMAIL", "name": "Mail", "address": "help@acme.test" }),
    )
    .await;
    let contact = phone_contact(&app, "+4520000004").await;
    let opted_out = phone_contact(&app, "+4520005555").await;
    let consent = app
        .data(
            &token,
            "mutation($input: SetContactConsentInput!) { setContactConsent(input: $input) { userErrors { message } } }",
            json!({ "input": { "contactId": opted_out, "channel": "VOICE", "status": "OPTED_OUT" } }),
        )
        .await;
    assert_eq!(consent["setContactConsent"]["userErrors"], json!([]));
    let no_phone = fixtures::contact(&app, &token, json!({ "displayName": "No phone" })).await;

    let before = (
        app.count("calls").await,
        app.count("conversations").await,
        app.count("contacts").await,
    );
    let cases = [
        (
            json!({ "channelId": sms_only, "contactId": contact }),
            json!([{ "field": ["input", "channelId"], "message": "the channel (SMS) does not have the VOICE_OUTBOUND capability", "code": "INVALID" }]),
        ),
        (
            json!({ "channelId": email, "contactId": contact }),
            json!([{ "field": ["input", "channelId"], "message": "the channel (EMAIL) does not have the VOICE_OUTBOUND capability", "code": "INVALID" }]),
        ),
        (
            json!({ "channelId": voice, "to": "20000004" }),
            json!([{ "field": ["input", "to"], "message": "\"20000004\" is not an E.164 phone number (such as +4520123456)", "code": "INVALID" }]),
        ),
        (
            json!({ "channelId": voice, "contactId": opted_out }),
            json!([{ "field": ["input", "contactId"], "message": "the contact opted out of calls", "code": "INVALID_STATE" }]),
        ),
        (
            json!({ "channelId": voice, "contactId": no_phone }),
            json!([{ "field": ["input", "contactId"], "message": "the contact has no phone number; give `to`", "code": "INVALID" }]),
        ),
        (
            json!({ "channelId": voice }),
            json!([{ "field": ["input", "to"], "message": "give a contactId or a number to call", "code": "INVALID" }]),
        ),
    ];
    for (input, errors) in cases {
        let answer = call_mutation(&app, &token, "startCall", input.clone()).await;
        assert_eq!(
            answer,
            json!({ "call": null, "userErrors": errors }),
            "{input}"
        );
    }
    assert_eq!(
        (
            app.count("calls").await,
            app.count("conversations").await,
            app.count("contacts").await,
        ),
        before
    );

    // Moves a ringing call's status does not allow.
    let ringing = call_mutation(
        &app,
        &token,
        "startCall",
        json!({ "channelId": voice, "contactId": contact }),
    )
    .await["call"]["id"]
        .clone();
    let queue = fixtures::queue(&app, &token, "Q").await;
    let events = app.count("events").await;
    let held = call_mutation(&app, &token, "holdCall", json!({ "id": ringing })).await;
    assert_eq!(
        held["userErrors"],
        json!([{ "field": ["input", "id"], "message": "only a call in progress can be held; this one is RINGING", "code": "INVALID_STATE" }])
    );
    let both = call_mutation(
        &app,
        &token,
        "transferCall",
        json!({ "id": ringing, "queueId": queue, "userId": null }),
    )
    .await;
    assert_eq!(both["userErrors"], json!([]), "a queue alone is fine");
    let neither = call_mutation(&app, &token, "transferCall", json!({ "id": ringing })).await;
    assert_eq!(
        neither["userErrors"],
        json!([{ "field": ["input", "queueId"], "message": "give exactly one of queueId and userId", "code": "INVALID" }])
    );
    let unknown = call_mutation(
        &app,
        &token,
        "answerCall",
        json!({ "id": switchboard::graphql::relay::encode_id("Call", uuid::Uuid::now_v7()).0 }),
    )
    .await;
    assert_eq!(
        unknown["userErrors"],
        json!([{ "field": ["input", "id"], "message": "no such call", "code": "NOT_FOUND" }])
    );
    // The transfer (to a queue: QUEUED again) is the only change.
    assert_eq!(app.count("events").await, events + 2);

    // Calls are the organization's own.
    let other = app.create_org("Other", "other", "owner@other.test").await;
    let theirs = call_mutation(&app, &other.token, "endCall", json!({ "id": ringing })).await;
    assert_eq!(theirs["userErrors"][0]["code"], "NOT_FOUND");
    let seen = app
        .data(&other.token, "{ calls { totalCount } }", json!({}))
        .await;
    assert_eq!(seen["calls"]["totalCount"], 0);
}

#[tokio::test]
async fn callbacks_wait_in_a_queue_and_transfers_move_calls_between_queues_and_agents() {
    let app = TestApp::spawn().await;
    app.state.clock.set(t0());
    let token = app.org.token.clone();
    let queue = fixtures::queue(&app, &token, "Phones").await;
    let second = fixtures::queue(&app, &token, "Billing").await;
    let (channel, _) = voice_channel(&app, json!({ "defaultQueueId": queue })).await;
    let (agent_id, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;

    let requested = call_mutation(
        &app,
        &token,
        "requestCallback",
        json!({ "channelId": channel, "to": "+4520000004" }),
    )
    .await;
    assert_eq!(requested["userErrors"], json!([]));
    let call = &requested["call"];
    let id = call["id"].as_str().unwrap().to_string();
    assert_eq!(
        (
            &call["status"],
            &call["kind"],
            &call["queue"],
            &call["conversation"]
        ),
        (
            &json!("QUEUED"),
            &json!("CALLBACK"),
            &json!({ "name": "Phones" }),
            &json!({ "channelType": "VOICE", "direction": "INBOUND", "status": "OPEN" })
        )
    );

    advance(&app, 30);
    let moved = call_mutation(
        &app,
        &token,
        "transferCall",
        json!({ "id": id, "queueId": second }),
    )
    .await;
    assert_eq!(
        (&moved["call"]["status"], &moved["call"]["queue"]),
        (&json!("QUEUED"), &json!({ "name": "Billing" }))
    );
    let rung = call_mutation(
        &app,
        &token,
        "transferCall",
        json!({ "id": id, "userId": agent_id }),
    )
    .await;
    assert_eq!(
        (&rung["call"]["status"], &rung["call"]["user"]),
        (&json!("RINGING"), &json!({ "email": "agent@acme.test" }))
    );
    advance(&app, 10);
    // The agent takes it: their leg is answered and the contact is dialled (`…0004` rings
    // until it picks up).
    let taken = call_mutation(&app, &agent, "answerCall", json!({ "id": id })).await;
    assert_eq!(taken["userErrors"], json!([]));
    assert_eq!(
        (
            &taken["call"]["status"],
            &taken["call"]["answeredAt"],
            &taken["call"]["user"]
        ),
        (
            &json!("RINGING"),
            &Value::Null,
            &json!({ "email": "agent@acme.test" })
        )
    );
    advance(&app, 3);
    let answered = call_mutation(&app, &agent, "answerCall", json!({ "id": id })).await;
    assert_eq!(
        (
            &answered["call"]["status"],
            &answered["call"]["waitSeconds"]
        ),
        (&json!("IN_PROGRESS"), &json!(43))
    );
    // Back to a queue mid-call: it waits again, the answer time stays.
    let requeued = call_mutation(
        &app,
        &agent,
        "transferCall",
        json!({ "id": id, "queueId": queue }),
    )
    .await;
    assert_eq!(requeued["call"]["status"], "QUEUED");
    assert_eq!(requeued["call"]["user"], Value::Null);
    advance(&app, 5);
    let voicemail = call_mutation(&app, &agent, "sendCallToVoicemail", json!({ "id": id })).await;
    assert_eq!(voicemail["call"]["status"], "VOICEMAIL");
    assert_eq!(voicemail["call"]["answeredAt"], at(43));

    // Another callback, given up before anyone answered: CANCELED.
    let other = call_mutation(
        &app,
        &token,
        "requestCallback",
        json!({ "channelId": channel, "to": "+4520008888", "queueId": second }),
    )
    .await["call"]["id"]
        .clone();
    let canceled = call_mutation(&app, &token, "endCall", json!({ "id": other })).await;
    assert_eq!(canceled["call"]["status"], "CANCELED");
    assert_eq!(canceled["call"]["waitSeconds"], 0);
}

#[tokio::test]
async fn inbound_calls_reported_on_ingest_join_a_voice_conversation_in_the_queue() {
    let app = TestApp::spawn().await;
    app.state.clock.set(t0());
    let token = app.org.token.clone();
    let queue = fixtures::queue(&app, &token, "Phones").await;
    let (channel, secret) = voice_channel(
        &app,
        json!({ "defaultQueueId": queue, "callRate": { "perMinute": "0.5", "currency": "DKK" } }),
    )
    .await;

    // Bad reports: clear errors, nothing stored.
    let before = (app.count("calls").await, app.count("contacts").await);
    let bad = [
        (
            json!({ "type": "call", "from": "+4520001234" }),
            json!([{ "message": "providerCallId is required", "extensions": { "code": "REQUIRED", "field": "providerCallId" } }]),
        ),
        (
            json!({ "type": "call", "providerCallId": "pc-1" }),
            json!([{ "message": "an unknown providerCallId starts an inbound call: give `from`", "extensions": { "code": "INVALID", "field": "from" } }]),
        ),
        (
            json!({ "type": "call", "providerCallId": "pc-1", "from": "12345" }),
            json!([{ "message": "\"12345\" is not an E.164 phone number", "extensions": { "code": "INVALID", "field": "from" } }]),
        ),
        (
            json!({ "type": "call", "providerCallId": "pc-1", "from": "+4520001234", "status": "LOST" }),
            json!([{ "message": "status \"LOST\" is not one of QUEUED, RINGING, IN_PROGRESS, COMPLETED, BUSY, NO_ANSWER, FAILED, CANCELED, VOICEMAIL", "extensions": { "code": "INVALID", "field": "status" } }]),
        ),
        (
            json!({ "type": "call", "providerCallId": "pc-1", "from": "+4520001234", "keypad": "12a" }),
            json!([{ "message": "keypad holds the digits 0-9, * and # only", "extensions": { "code": "INVALID", "field": "keypad" } }]),
        ),
    ];
    for (body, errors) in bad {
        let (status, answer) = ingest(&app, &channel, &secret, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(answer, json!({ "errors": errors }), "{body}");
    }
    assert_eq!(
        (app.count("calls").await, app.count("contacts").await),
        before
    );

    let (status, created) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "call", "providerCallId": "pc-1", "from": "+4520001234" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["result"], "CREATED");
    assert_eq!(created["status"], "QUEUED");
    let id = created["callId"].as_str().unwrap().to_string();
    let conversation = created["conversationId"].as_str().unwrap().to_string();
    let view = app
        .data(
            &token,
            "query($id: ID!) { node(id: $id) { ... on Conversation { channelType direction status queue { name } requester { ... on Contact { phone } } } } }",
            json!({ "id": conversation }),
        )
        .await;
    assert_eq!(
        view["node"],
        json!({ "channelType": "VOICE", "direction": "INBOUND", "status": "OPEN",
            "queue": { "name": "Phones" }, "requester": { "phone": "+4520001234" } })
    );

    // The provider moves it on; the same status again is ignored.
    for (seconds, status) in [(4, "RINGING"), (9, "IN_PROGRESS")] {
        advance(&app, if seconds == 4 { 4 } else { 5 });
        let (code, answer) = ingest(
            &app,
            &channel,
            &secret,
            json!({ "type": "call", "providerCallId": "pc-1", "status": status }),
        )
        .await;
        assert_eq!(
            (code, &answer["result"], &answer["status"]),
            (StatusCode::OK, &json!("UPDATED"), &json!(status))
        );
    }
    let (_, repeat) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "call", "providerCallId": "pc-1", "status": "IN_PROGRESS" }),
    )
    .await;
    assert_eq!(
        (&repeat["result"], &repeat["reason"]),
        (&json!("IGNORED"), &json!("the call is IN_PROGRESS already"))
    );
    advance(&app, 130);
    let (_, ended) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "call", "providerCallId": "pc-1", "status": "COMPLETED", "keypad": "1#",
            "recordingUrl": "https://rec.example/pc-1.mp3", "recordingSeconds": 128 }),
    )
    .await;
    assert_eq!(ended["status"], "COMPLETED");
    // A move its status does not allow.
    let (code, refused) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "call", "providerCallId": "pc-1", "status": "RINGING" }),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused,
        json!({ "errors": [{ "message": "the call has ended (COMPLETED)", "extensions": { "code": "INVALID_STATE", "field": "id" } }] })
    );

    let call = app
        .data(
            &token,
            &format!(
                "query($id: ID!) {{ call(id: $id) {{ {CALL} recording {{ url durationSeconds transcriptionStatus }} }} }}"
            ),
            json!({ "id": id }),
        )
        .await;
    let call = &call["call"];
    assert_eq!(
        (
            &call["kind"],
            &call["direction"],
            &call["from"],
            &call["to"]
        ),
        (
            &json!("INBOUND"),
            &json!("INBOUND"),
            &json!("+4520001234"),
            &json!("+4570000000")
        )
    );
    assert_eq!(
        (
            &call["ringingAt"],
            &call["answeredAt"],
            &call["endedAt"],
            &call["waitSeconds"],
            &call["talkSeconds"]
        ),
        (
            &json!(at(4)),
            &json!(at(9)),
            &json!(at(139)),
            &json!(9),
            &json!(130)
        )
    );
    assert_eq!(call["keypad"], "1#");
    assert_eq!(call["queue"], json!({ "name": "Phones" }));
    assert_eq!(
        call["priceEstimate"],
        json!({ "amount": "1.500000", "currency": "DKK" })
    );
    assert_eq!(
        call["recording"],
        json!({ "url": "https://rec.example/pc-1.mp3", "durationSeconds": 128, "transcriptionStatus": "PENDING" })
    );

    // A second call from the same number while the conversation is open continues it.
    let (_, second) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "call", "providerCallId": "pc-2", "from": "+4520001234" }),
    )
    .await;
    assert_eq!(second["conversationId"], conversation.as_str());
    assert_eq!(app.count("contacts").await, before.1 + 1);
}

#[tokio::test]
async fn the_calls_connection_filters_by_direction_status_agent_contact_queue_and_time() {
    let app = TestApp::spawn().await;
    app.state.clock.set(t0());
    let token = app.org.token.clone();
    let queue = fixtures::queue(&app, &token, "Phones").await;
    let (channel, secret) = voice_channel(&app, json!({ "defaultQueueId": queue })).await;
    let ann = phone_contact(&app, "+4520000004").await;
    let ringing = call_mutation(
        &app,
        &token,
        "startCall",
        json!({ "channelId": channel, "contactId": ann }),
    )
    .await["call"]["id"]
        .clone();
    advance(&app, 60);
    let busy = call_mutation(
        &app,
        &token,
        "startCall",
        json!({ "channelId": channel, "to": "+4520000000" }),
    )
    .await["call"]["id"]
        .clone();
    advance(&app, 60);
    let (_, inbound) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "call", "providerCallId": "in-1", "from": "+4520009999" }),
    )
    .await;
    let inbound = inbound["callId"].clone();

    let ids = |data: &Value| -> Vec<Value> {
        data["calls"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].clone())
            .collect()
    };
    const LIST: &str =
        "query($filter: CallFilterInput) { calls(filter: $filter) { totalCount nodes { id } } }";
    let owner = app
        .data(&token, "{ viewer { user { id } } }", json!({}))
        .await["viewer"]["user"]["id"]
        .clone();
    for (filter, expected) in [
        (json!({}), vec![&inbound, &busy, &ringing]),
        (json!({ "direction": "INBOUND" }), vec![&inbound]),
        (json!({ "direction": "OUTBOUND" }), vec![&busy, &ringing]),
        (
            json!({ "statuses": ["BUSY", "QUEUED"] }),
            vec![&inbound, &busy],
        ),
        (json!({ "userId": owner }), vec![&busy, &ringing]),
        (json!({ "contactId": ann }), vec![&ringing]),
        (json!({ "queueId": queue }), vec![&inbound]),
        (json!({ "kinds": ["INBOUND"] }), vec![&inbound]),
        (
            json!({ "createdAfter": at(60), "createdBefore": at(120) }),
            vec![&busy],
        ),
    ] {
        let data = app.data(&token, LIST, json!({ "filter": filter })).await;
        let expected: Vec<Value> = expected.into_iter().cloned().collect();
        assert_eq!(ids(&data), expected, "{filter}");
        assert_eq!(data["calls"]["totalCount"], expected.len(), "{filter}");
    }
    let wrong = app
        .gql(
            &token,
            LIST,
            json!({ "filter": { "createdAfter": at(120), "createdBefore": at(60) } }),
        )
        .await;
    assert_eq!(
        wrong["errors"][0]["message"],
        "filter.createdBefore is before filter.createdAfter"
    );
    assert_eq!(wrong["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

#[tokio::test]
async fn call_changed_replays_and_follows_a_calls_changes() {
    let app = TestApp::spawn().await;
    app.state.clock.set(t0());
    let token = app.org.token.clone();
    let (channel, secret) = voice_channel(&app, json!({})).await;
    let id = call_mutation(
        &app,
        &token,
        "startCall",
        json!({ "channelId": channel, "to": "+4520000004" }),
    )
    .await["call"]["id"]
        .clone();
    const SUB: &str =
        "subscription($id: ID, $after: String) { callChanged(callId: $id, after: $after) {
        cursor eventType call { status onHold } } }";
    let mut socket = connected(&app, &token).await;
    // From the start of the log: the creation is replayed, then the rest arrives live.
    subscribe_to(
        &mut socket,
        "c",
        SUB,
        json!({ "id": id, "after": "ZXZlbnQ6MA" }),
    )
    .await;
    let first = tokio::time::timeout(StdDuration::from_secs(60), next_data(&mut socket, "c"))
        .await
        .expect("replayed");
    assert_eq!(first["callChanged"]["eventType"], "CALL_CREATED");
    for name in ["answerCall", "holdCall", "resumeCall"] {
        let done = call_mutation(&app, &token, name, json!({ "id": id })).await;
        assert_eq!(done["userErrors"], json!([]), "{name}");
    }
    // Transferred to another agent (it rings them), who answers.
    let (agent_id, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let moved = call_mutation(
        &app,
        &token,
        "transferCall",
        json!({ "id": id, "userId": agent_id }),
    )
    .await;
    assert_eq!(moved["userErrors"], json!([]));
    let done = call_mutation(&app, &agent, "answerCall", json!({ "id": id })).await;
    assert_eq!(done["userErrors"], json!([]));
    // The provider reports the recording, then its transcription.
    for report in [
        json!({ "type": "call", "providerCallId": "sim-rec-1", "callId": id,
                "recordingUrl": "https://rec.example/c-1.mp3", "recordingSeconds": 12 }),
        json!({ "type": "call", "providerCallId": "sim-rec-1", "transcription": "Hello, this is Acme." }),
    ] {
        let (code, answer) = ingest(&app, &channel, &secret, report).await;
        assert_eq!(code, StatusCode::OK, "{answer}");
    }
    let done = call_mutation(&app, &agent, "endCall", json!({ "id": id })).await;
    assert_eq!(done["userErrors"], json!([]));
    let mut seen = Vec::new();
    while seen.len() < 10 {
        let data = tokio::time::timeout(StdDuration::from_secs(60), next_data(&mut socket, "c"))
            .await
            .expect("a change");
        seen.push(
            data["callChanged"]["eventType"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(
        seen,
        [
            "CALL_AGENT_ANSWERED",
            "CALL_STATUS_CHANGED",
            "CALL_HELD",
            "CALL_RESUMED",
            "CALL_TRANSFERRED",
            "CALL_STATUS_CHANGED",
            "CALL_STATUS_CHANGED",
            "CALL_RECORDING_ADDED",
            "CALL_RECORDING_ADDED",
            "CALL_ENDED"
        ]
    );
    let recording = app
        .data(
            &token,
            "query($id: ID!) { call(id: $id) { status user { email } recording { url durationSeconds transcriptionStatus transcription } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        recording["call"],
        json!({ "status": "COMPLETED", "user": { "email": "agent@acme.test" },
                "recording": { "url": "https://rec.example/c-1.mp3", "durationSeconds": 12,
                               "transcriptionStatus": "COMPLETED", "transcription": "Hello, this is Acme." } })
    );
}

const LEGS: &str = "status agentTo agentAnsweredAt ringingAt answeredAt endedAt waitSeconds
    talkSeconds endReason user { email }";

async fn legs(app: &TestApp, token: &str, name: &str, input: Value) -> Value {
    let input_type = match name {
        "startCall" => "StartCallInput",
        "requestCallback" => "RequestCallbackInput",
        _ => "CallIdInput",
    };
    let query = format!(
        "mutation($input: {input_type}!) {{ {name}(input: $input) {{ call {{ id {LEGS} }} userErrors {{ field message code }} }} }}"
    );
    let answer = app.data(token, &query, json!({ "input": input })).await[name].clone();
    assert_eq!(answer["userErrors"], json!([]), "{name}");
    answer["call"].clone()
}

fn without_id(mut call: Value) -> Value {
    if let Some(call) = call.as_object_mut() {
        call.remove("id");
    }
    call
}

#[tokio::test]
async fn click_to_call_rings_the_agent_first_then_the_contact() {
    let app = TestApp::spawn().await;
    app.state.clock.set(t0());
    let (channel, _) = voice_channel(&app, json!({})).await;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;

    // An agent without a phone is rung in the app, which answers at once; the contact rings.
    let in_app = legs(
        &app,
        &app.org.token,
        "startCall",
        json!({ "channelId": channel, "to": "+4520000004" }),
    )
    .await;
    assert_eq!(
        without_id(in_app),
        json!({ "status": "RINGING", "agentTo": format!("client:{}", app.org.owner_id),
                "agentAnsweredAt": at(0), "ringingAt": at(0), "answeredAt": null, "endedAt": null,
                "waitSeconds": null, "talkSeconds": null, "endReason": null,
                "user": { "email": "owner@acme.test" } })
    );

    // An agent whose phone (`…0004`) rings until they pick up: the contact is not rung before.
    app.sql("UPDATE users SET phone = '+4520990004' WHERE email = 'agent@acme.test'")
        .await;
    let ringing = legs(
        &app,
        &agent,
        "startCall",
        json!({ "channelId": channel, "to": "+4520001234" }),
    )
    .await;
    let id = ringing["id"].clone();
    assert_eq!(
        (
            &ringing["status"],
            &ringing["agentTo"],
            &ringing["agentAnsweredAt"]
        ),
        (&json!("RINGING"), &json!("+4520990004"), &Value::Null)
    );
    let events = app
        .count("events WHERE event_type = 'CALL_AGENT_ANSWERED'")
        .await;
    advance(&app, 4);
    // The agent picks up: the contact (answers after 5 s, talks 64 s) is rung now.
    let answered = legs(&app, &agent, "answerCall", json!({ "id": id })).await;
    assert_eq!(
        without_id(answered),
        json!({ "status": "COMPLETED", "agentTo": "+4520990004", "agentAnsweredAt": at(4),
                "ringingAt": at(0), "answeredAt": at(9), "endedAt": at(73), "waitSeconds": 9,
                "talkSeconds": 64, "endReason": null, "user": { "email": "agent@acme.test" } })
    );
    assert_eq!(
        app.count("events WHERE event_type = 'CALL_AGENT_ANSWERED'")
            .await,
        events + 1
    );

    // A busy agent's phone (`…0000`): the call ends, the contact is never rung.
    app.sql("UPDATE users SET phone = '+4520990000' WHERE email = 'agent@acme.test'")
        .await;
    let busy = legs(
        &app,
        &agent,
        "startCall",
        json!({ "channelId": channel, "to": "+4520001234" }),
    )
    .await;
    assert_eq!(
        without_id(busy),
        json!({ "status": "BUSY", "agentTo": "+4520990000", "agentAnsweredAt": null,
                "ringingAt": at(4), "answeredAt": null, "endedAt": at(4), "waitSeconds": 0,
                "talkSeconds": null,
                "endReason": "the agent's leg ended BUSY; the contact was not called",
                "user": { "email": "agent@acme.test" } })
    );
}

#[tokio::test]
async fn taking_a_callback_dials_the_contact_and_records_the_outcome() {
    let app = TestApp::spawn().await;
    app.state.clock.set(t0());
    let token = app.org.token.clone();
    let (channel, _) = voice_channel(&app, json!({})).await;
    let answers = legs(
        &app,
        &token,
        "requestCallback",
        json!({ "channelId": channel, "to": "+4520001234" }),
    )
    .await;
    let busy = legs(
        &app,
        &token,
        "requestCallback",
        json!({ "channelId": channel, "to": "+4520000000" }),
    )
    .await;
    assert_eq!(
        (
            &answers["status"],
            &answers["agentTo"],
            &answers["ringingAt"]
        ),
        (&json!("QUEUED"), &Value::Null, &Value::Null)
    );
    advance(&app, 20);
    // Taken at 20 s: the contact rings, answers 5 s later and talks 64 s.
    let taken = legs(&app, &token, "answerCall", json!({ "id": answers["id"] })).await;
    assert_eq!(
        without_id(taken),
        json!({ "status": "COMPLETED", "agentTo": format!("client:{}", app.org.owner_id),
                "agentAnsweredAt": at(20), "ringingAt": at(20), "answeredAt": at(25),
                "endedAt": at(89), "waitSeconds": 25, "talkSeconds": 64, "endReason": null,
                "user": { "email": "owner@acme.test" } })
    );
    let taken = legs(&app, &token, "answerCall", json!({ "id": busy["id"] })).await;
    assert_eq!(
        (
            &taken["status"],
            &taken["agentAnsweredAt"],
            &taken["endedAt"]
        ),
        (&json!("BUSY"), &json!(at(20)), &json!(at(25)))
    );
    // An ended callback is not taken again.
    let again = call_mutation(&app, &token, "answerCall", json!({ "id": busy["id"] })).await;
    assert_eq!(
        again["userErrors"],
        json!([{ "field": ["input", "id"], "message": "the call has ended (BUSY)", "code": "INVALID_STATE" }])
    );
}

#[tokio::test]
async fn a_channels_call_rate_is_checked_set_and_cleared() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (channel, _) = voice_channel(&app, json!({})).await;
    const UPDATE: &str = "mutation($input: UpdateChannelInput!) { updateChannel(input: $input) {
        channel { callRate { amount currency } } userErrors { field message code } } }";
    let events = app.count("events").await;
    for (rate, field, message) in [
        (
            json!({ "perMinute": "abc", "currency": "EUR" }),
            "callRate.perMinute",
            "callRate.perMinute must be a decimal number such as 0.013",
        ),
        (
            json!({ "perMinute": "0.0000001", "currency": "EUR" }),
            "callRate.perMinute",
            "callRate.perMinute must be a decimal number such as 0.013",
        ),
        (
            json!({ "perMinute": "1000.5", "currency": "EUR" }),
            "callRate.perMinute",
            "callRate.perMinute must be 0 to 1000",
        ),
        (
            json!({ "perMinute": "0.01", "currency": "eu" }),
            "callRate.currency",
            "callRate.currency must be an ISO 4217 code such as EUR",
        ),
    ] {
        let answer = app
            .data(
                &token,
                UPDATE,
                json!({ "input": { "id": channel, "callRate": rate } }),
            )
            .await;
        assert_eq!(
            answer["updateChannel"]["userErrors"][0]["message"], message,
            "{rate}"
        );
        let path = answer["updateChannel"]["userErrors"][0]["field"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(".");
        assert!(path.ends_with(field), "{path}");
    }
    assert_eq!(app.count("events").await, events);
    let set = app
        .data(
            &token,
            UPDATE,
            json!({ "input": { "id": channel, "callRate": { "perMinute": "0.013", "currency": "EUR" } } }),
        )
        .await;
    assert_eq!(
        set["updateChannel"],
        json!({ "channel": { "callRate": { "amount": "0.013000", "currency": "EUR" } }, "userErrors": [] })
    );
    let cleared = app
        .data(
            &token,
            UPDATE,
            json!({ "input": { "id": channel, "callRate": null } }),
        )
        .await;
    assert_eq!(cleared["updateChannel"]["channel"]["callRate"], Value::Null);
}

#[tokio::test]
async fn an_inbound_call_is_offered_to_an_agent_taking_voice() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (agent_id, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let mut socket = connected(&app, &agent).await;
    let presence = app
        .data(
            &agent,
            "mutation($input: SetPresenceInput!) { setPresence(input: $input) { userErrors { message } } }",
            json!({ "input": { "activeChannels": ["VOICE"] } }),
        )
        .await;
    assert_eq!(presence["setPresence"]["userErrors"], json!([]));
    subscribe_to(
        &mut socket,
        "o",
        "subscription { conversationOffered { change offer { user { email } conversation { id channelType } } } }",
        json!({}),
    )
    .await;
    let queue = fixtures::queue(&app, &token, "Phones").await;
    let members = app
        .data(
            &token,
            "mutation($input: QueueMembersInput!) { addQueueMembers(input: $input) { userErrors { message } } }",
            json!({ "input": { "queueId": queue, "members": [{ "userId": agent_id, "priority": 1 }] } }),
        )
        .await;
    assert_eq!(members["addQueueMembers"]["userErrors"], json!([]));
    let (channel, secret) = voice_channel(&app, json!({ "defaultQueueId": queue })).await;

    let (_, created) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "call", "providerCallId": "ring-1", "from": "+4520001234" }),
    )
    .await;
    let offered = tokio::time::timeout(StdDuration::from_secs(60), next_data(&mut socket, "o"))
        .await
        .expect("an offer");
    assert_eq!(
        offered["conversationOffered"],
        json!({ "change": "OFFERED", "offer": {
            "user": { "email": "agent@acme.test" },
            "conversation": { "id": created["conversationId"], "channelType": "VOICE" } } })
    );
}

#[tokio::test]
async fn anonymizing_a_contact_erases_their_number_and_recordings_but_keeps_durations() {
    let app = TestApp::spawn().await;
    app.state.clock.set(t0());
    let token = app.org.token.clone();
    let (channel, secret) = voice_channel(&app, json!({})).await;
    let (_, created) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "call", "providerCallId": "a-1", "from": "+4520001234" }),
    )
    .await;
    let id = created["callId"].as_str().unwrap().to_string();
    for (seconds, status) in [(3, "IN_PROGRESS"), (60, "COMPLETED")] {
        advance(&app, seconds);
        let (code, _) = ingest(
            &app,
            &channel,
            &secret,
            json!({ "type": "call", "providerCallId": "a-1", "status": status, "keypad": "9",
                    "recordingUrl": "https://rec.example/a-1.mp3", "transcription": "hello" }),
        )
        .await;
        assert_eq!(code, StatusCode::OK);
    }
    let contact = created["contactId"].clone();
    let done = app
        .data(
            &token,
            "mutation($input: AnonymizeContactInput!) { anonymizeContact(input: $input) { userErrors { message } } }",
            json!({ "input": { "contactId": contact, "force": true } }),
        )
        .await;
    assert_eq!(done["anonymizeContact"]["userErrors"], json!([]));
    let call = app
        .data(
            &token,
            "query($id: ID!) { call(id: $id) { from to keypad recording { url } status waitSeconds talkSeconds } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        call["call"],
        json!({ "from": "", "to": "+4570000000", "keypad": null, "recording": null,
                "status": "COMPLETED", "waitSeconds": 3, "talkSeconds": 60 })
    );
}

#[tokio::test]
async fn concurrent_first_reports_of_one_call_make_one_call() {
    let app = TestApp::spawn().await;
    let (channel, secret) = voice_channel(&app, json!({})).await;
    for round in 0..5 {
        let id = format!("dup-{round}");
        let body = json!({ "type": "call", "providerCallId": id, "from": "+4520001234" });
        let (first, second) = tokio::join!(
            ingest(&app, &channel, &secret, body.clone()),
            ingest(&app, &channel, &secret, body.clone()),
        );
        let mut codes = [first.0, second.0];
        codes.sort();
        assert_eq!(
            codes,
            [StatusCode::OK, StatusCode::CREATED],
            "{first:?} {second:?}"
        );
        assert_eq!(first.1["callId"], second.1["callId"]);
        assert_eq!(
            app.count(&format!("calls WHERE provider_call_id = '{id}'"))
                .await,
            1
        );
    }
}
