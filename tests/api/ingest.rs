//! `POST /ingest/{channelId}`: signatures (ok, bad, missing, stale, rotated secret), unknown
//! channels, malformed bodies (nothing stored), inbound SMS creating the contact and the
//! conversation then continuing it, email threading by `In-Reply-To`/`References` and by subject
//! token, repeats ignored.

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard::webhooks::signing;

use crate::common::TestApp;
use crate::fixtures;

pub const CREATE_CHANNEL: &str = "mutation($input: CreateChannelInput!) { createChannel(input: $input) { channel { id } ingestSecret userErrors { field message } } }";

/// Creates a channel from `input`; returns its id and ingest secret.
pub async fn new_channel(app: &TestApp, input: Value) -> (String, String) {
    let data = app
        .data(&app.org.token, CREATE_CHANNEL, json!({ "input": input }))
        .await;
    assert_eq!(data["createChannel"]["userErrors"], json!([]), "{data}");
    (
        data["createChannel"]["channel"]["id"]
            .as_str()
            .unwrap()
            .to_string(),
        data["createChannel"]["ingestSecret"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

/// POSTs `body` to the channel's ingest endpoint with the given headers.
pub async fn post_raw(
    app: &TestApp,
    channel: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(app.url(&format!("/ingest/{channel}")))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Signed headers for `body` with `secret` at `timestamp`.
pub fn signed(secret: &str, timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    let signature = signing::sign(secret, &id, timestamp, body);
    vec![
        ("webhook-id", id),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ]
}

/// POSTs `body`, signed now with `secret`.
pub async fn ingest(
    app: &TestApp,
    channel: &str,
    secret: &str,
    body: Value,
) -> (StatusCode, Value) {
    let bytes = body.to_string().into_bytes();
    let headers = signed(secret, chrono::Utc::now().timestamp(), &bytes);
    post_raw(app, channel, &headers, &bytes).await
}

async fn stored(app: &TestApp) -> (i64, i64, i64) {
    (
        app.count("messages").await,
        app.count("conversations").await,
        app.count("contacts").await,
    )
}

const CONVERSATION: &str = "query($id: ID!) { node(id: $id) { ... on Conversation {
    number direction status subject queue { name } requester { ... on Contact { phone email displayName } }
    messageCount messages(first: 10) { nodes { id direction text html emailSubject from to deliveryStatus
        author { ... on Contact { id } } } } } } }";

#[tokio::test]
async fn ingest_requests_need_a_known_channel_a_valid_signature_and_a_well_formed_body() {
    let app = TestApp::spawn().await;
    let (channel, secret) = new_channel(
        &app,
        json!({ "type": "SMS", "name": "Line", "address": "+4520009999" }),
    )
    .await;
    let (_, other_secret) = channel_pair(&app).await;
    let body = json!({ "type": "message", "providerMessageId": "c-1", "from": "+4520001234", "text": "Hi" });
    let bytes = body.to_string().into_bytes();
    let now = chrono::Utc::now().timestamp();

    // Unknown channels: 404 before anything else.
    for unknown in [
        uuid::Uuid::now_v7().to_string(),
        "nonsense".to_string(),
        switchboard::graphql::relay::encode_id("Queue", uuid::Uuid::now_v7()).0,
    ] {
        let (status, answer) =
            post_raw(&app, &unknown, &signed(&secret, now, &bytes), &bytes).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            answer,
            json!({ "errors": [{ "message": "no such channel", "extensions": { "code": "NOT_FOUND" } }] })
        );
    }

    let unauthenticated = |message: &str| json!({ "errors": [{ "message": message, "extensions": { "code": "UNAUTHENTICATED" } }] });
    let (status, answer) = post_raw(&app, &channel, &[], &bytes).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer,
        unauthenticated(
            "sign the request: webhook-id, webhook-timestamp and webhook-signature headers are required"
        )
    );
    let mismatch =
        unauthenticated("no webhook-signature matches the body and the channel's secret");
    // Another channel's secret, a changed body, a bad signature.
    let (status, answer) =
        post_raw(&app, &channel, &signed(&other_secret, now, &bytes), &bytes).await;
    assert_eq!(
        (status, answer),
        (StatusCode::UNAUTHORIZED, mismatch.clone())
    );
    let (status, answer) = post_raw(&app, &channel, &signed(&secret, now, b"{}"), &bytes).await;
    assert_eq!(
        (status, answer),
        (StatusCode::UNAUTHORIZED, mismatch.clone())
    );
    let mut headers = signed(&secret, now, &bytes);
    headers[2].1 = "v1,AAAA".into();
    let (status, answer) = post_raw(&app, &channel, &headers, &bytes).await;
    assert_eq!(
        (status, answer),
        (StatusCode::UNAUTHORIZED, mismatch.clone())
    );
    // Stale (or future) timestamps: well past the 5 minutes even when this test runs slowly
    // (`now` was read before the setup above).
    let fresh = chrono::Utc::now().timestamp();
    for at in [fresh - 400, fresh + 400] {
        let (status, answer) = post_raw(&app, &channel, &signed(&secret, at, &bytes), &bytes).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            answer,
            unauthenticated(
                "webhook-timestamp is more than 5 minutes away from the server's clock"
            )
        );
    }
    assert_eq!(stored(&app).await, (0, 0, 0));

    // Malformed bodies: 400, then 422 naming the fields.
    for raw in [&b"{not json"[..], b"[1, 2]", b""] {
        let (status, answer) = post_raw(&app, &channel, &signed(&secret, now, raw), raw).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    }
    let (status, answer) = ingest(&app, &channel, &secret, json!({ "text": "Hi" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer,
        json!({ "errors": [{ "message": "type is required", "extensions": { "code": "REQUIRED", "field": "type" } }] })
    );
    let (status, answer) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "message", "from": "0045 2000", "to": 5, "receivedAt": "yesterday" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer,
        json!({ "errors": [
            { "message": "providerMessageId is required", "extensions": { "code": "REQUIRED", "field": "providerMessageId" } },
            { "message": "to must be an address or an array of addresses", "extensions": { "code": "INVALID", "field": "to" } },
            { "message": "receivedAt must be an RFC 3339 time such as 2026-11-25T09:30:00Z", "extensions": { "code": "INVALID", "field": "receivedAt" } },
        ] })
    );
    let (status, answer) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "message", "providerMessageId": "c-1", "from": "0045 2000", "text": "Hi" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer,
        json!({ "errors": [{ "message": "\"0045 2000\" is not an E.164 phone number such as +14155550100", "extensions": { "code": "INVALID", "field": "from" } }] })
    );
    let (status, answer) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "message", "providerMessageId": "c-1", "from": "+4520001234" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["errors"][0]["extensions"]["field"], "text");
    let (status, answer) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "status", "providerMessageId": "c-1", "status": "LOST" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer,
        json!({ "errors": [{ "message": "status \"LOST\" is not one of SENT, DELIVERED, READ, FAILED", "extensions": { "code": "INVALID", "field": "status" } }] })
    );
    let (status, answer) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "call", "providerCallId": "c-1", "callId": "x" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer,
        json!({ "errors": [{ "message": "callId is not the id of a call", "extensions": { "code": "INVALID", "field": "callId" } }] })
    );
    let (status, answer) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "status", "providerMessageId": "nobody", "status": "DELIVERED" }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer,
        json!({ "errors": [{ "message": "message of this channel with providerMessageId \"nobody\" not found", "extensions": { "code": "NOT_FOUND" } }] })
    );
    assert_eq!(stored(&app).await, (0, 0, 0));
    assert_eq!(
        app.count("events WHERE event_type LIKE 'MESSAGE%'").await,
        0
    );

    // Several signatures: one matching is enough; the raw UUID names the channel too.
    let raw_id = switchboard::graphql::relay::decode_id(&channel, "Channel").unwrap();
    let mut headers = signed(&secret, now, &bytes);
    headers[2].1 = format!("v1,bm9wZQ== {}", headers[2].1);
    let (status, answer) = post_raw(&app, &raw_id.to_string(), &headers, &bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(stored(&app).await, (1, 1, 1));

    // A rotated secret replaces the old one at once.
    let rotated = app
        .data(
            &app.org.token,
            "mutation($id: ID!) { rotateChannelIngestSecret(input: { id: $id }) { channel { id } ingestSecret userErrors { message } } }",
            json!({ "id": channel }),
        )
        .await["rotateChannelIngestSecret"]
        .clone();
    let new_secret = rotated["ingestSecret"].as_str().unwrap().to_string();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    assert_eq!(rotated["channel"]["id"], json!(channel));
    let next = json!({ "type": "message", "providerMessageId": "c-2", "from": "+4520001234", "text": "Again" });
    let (status, _) = ingest(&app, &channel, &secret, next.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = ingest(&app, &channel, &new_secret, next).await;
    assert_eq!(status, StatusCode::CREATED);
    // Agents may not rotate; the secret is never readable on the channel.
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let denied = app
        .gql(
            &agent,
            "mutation($id: ID!) { rotateChannelIngestSecret(input: { id: $id }) { ingestSecret } }",
            json!({ "id": channel }),
        )
        .await;
    assert_eq!(crate::common::codes(&denied), ["FORBIDDEN"]);
    let read = app
        .gql(
            &app.org.token,
            "query($id: ID!) { channel(id: $id) { ingestSecret } }",
            json!({ "id": channel }),
        )
        .await;
    assert_eq!(crate::common::codes(&read), ["GRAPHQL_VALIDATION_FAILED"]);
}

async fn channel_pair(app: &TestApp) -> (String, String) {
    new_channel(
        app,
        json!({ "type": "SMS", "name": "Other", "address": "+4520008888" }),
    )
    .await
}

#[tokio::test]
async fn inbound_sms_creates_the_contact_and_conversation_then_continues_it_and_ignores_repeats() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let queue = fixtures::queue(&app, &token, "Front desk").await;
    let (channel, secret) = new_channel(
        &app,
        json!({ "type": "SMS", "name": "Line", "address": "+4520009999", "defaultQueueId": queue }),
    )
    .await;
    let (status, first) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "message", "providerMessageId": "sms-1", "from": "+4520001234", "fromName": "Ann",
                "text": "Is my order ready?", "receivedAt": "2026-01-05T09:00:00Z" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["result"], "CREATED");
    assert_eq!(
        (&first["newConversation"], &first["newContact"]),
        (&json!(true), &json!(true))
    );
    let conversation = first["conversationId"].as_str().unwrap().to_string();
    let data = app
        .data(&token, CONVERSATION, json!({ "id": conversation }))
        .await;
    assert_eq!(
        data["node"],
        json!({ "number": 1, "direction": "INBOUND", "status": "OPEN", "subject": null,
                "queue": { "name": "Front desk" },
                "requester": { "phone": "+4520001234", "email": null, "displayName": "Ann" },
                "messageCount": 1, "messages": { "nodes": [{
                    "id": first["messageId"], "direction": "INBOUND", "text": "Is my order ready?", "html": null,
                    "emailSubject": null, "from": "+4520001234", "to": ["+4520009999"], "deliveryStatus": "DELIVERED",
                    "author": { "id": first["contactId"] } }] } })
    );

    // The same number again continues it; the repeat of a provider id is ignored.
    let (status, second) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "message", "providerMessageId": "sms-2", "from": "+4520001234", "text": "Hello?" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(second["conversationId"], json!(conversation));
    assert_eq!(
        (&second["newConversation"], &second["newContact"]),
        (&json!(false), &json!(false))
    );
    let before = stored(&app).await;
    let events = app.count("events").await;
    let (status, repeat) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "message", "providerMessageId": "sms-2", "from": "+4520001234", "text": "Hello?" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        repeat,
        json!({ "result": "DUPLICATE", "messageId": second["messageId"], "conversationId": conversation,
                "contactId": second["contactId"], "newConversation": false, "newContact": false })
    );
    assert_eq!(stored(&app).await, before);
    assert_eq!(app.count("events").await, events);

    // Another number: another contact and conversation. An existing contact is found by phone.
    let known = fixtures::contact(
        &app,
        &token,
        json!({ "phone": "+4520005555", "displayName": "Bo" }),
    )
    .await;
    let (_, third) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "message", "providerMessageId": "sms-3", "from": "+4520005555", "text": "Hi" }),
    )
    .await;
    assert_eq!(third["contactId"], json!(known));
    assert_eq!(
        (&third["newConversation"], &third["newContact"]),
        (&json!(true), &json!(false))
    );

    // A closed conversation is not continued: the next SMS starts a new one.
    let closed = app
        .data(
            &token,
            "mutation($id: ID!) { closeConversation(input: { conversationId: $id }) { userErrors { message } } }",
            json!({ "id": conversation }),
        )
        .await;
    assert_eq!(closed["closeConversation"]["userErrors"], json!([]));
    let (_, fourth) = ingest(
        &app,
        &channel,
        &secret,
        json!({ "type": "message", "providerMessageId": "sms-4", "from": "+4520001234", "text": "Me again" }),
    )
    .await;
    assert_eq!(fourth["newConversation"], json!(true));
    assert_ne!(fourth["conversationId"], json!(conversation));
    assert_eq!(fourth["contactId"], first["contactId"]);
    assert_eq!(app.count("conversations").await, 3);
    assert_eq!(
        app.count("events WHERE event_type = 'CONVERSATION_CREATED' AND actor_user_id IS NULL")
            .await,
        3
    );
}

/// The stored `Message-ID` of a message.
async fn message_id_header(app: &TestApp, message: &str) -> String {
    use sea_orm::EntityTrait;
    let id = switchboard::graphql::relay::decode_id(message, "Message").unwrap();
    entity::message::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .message_id_header
        .unwrap()
}

#[tokio::test]
async fn email_replies_thread_by_in_reply_to_references_or_subject_token() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (channel, secret) = new_channel(
        &app,
        json!({ "type": "EMAIL", "name": "Support", "address": "support@acme.test" }),
    )
    .await;
    let email = |id: &str, from: &str, extra: Value| {
        let mut body = json!({ "type": "message", "providerMessageId": id, "from": from,
            "to": ["support@acme.test"], "text": "text", "html": "<p>text</p>", "subject": "Broken kettle" });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let (status, first) = ingest(
        &app,
        &channel,
        &secret,
        email(
            "e-1",
            "Ann@Example.com",
            json!({ "messageId": "<m1@example.com>" }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let conversation = first["conversationId"].as_str().unwrap().to_string();
    let data = app
        .data(&token, CONVERSATION, json!({ "id": conversation }))
        .await;
    assert_eq!(data["node"]["subject"], "Broken kettle");
    assert_eq!(
        data["node"]["requester"],
        json!({ "phone": null, "email": "ann@example.com", "displayName": null })
    );
    assert_eq!(
        data["node"]["messages"]["nodes"][0]["emailSubject"],
        "Broken kettle"
    );
    assert_eq!(
        message_id_header(&app, first["messageId"].as_str().unwrap()).await,
        "<m1@example.com>"
    );

    // The agent's reply gets a Message-ID of the channel's domain.
    let sent = app
        .data(
            &token,
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id } userErrors { message } } }",
            json!({ "input": { "conversationId": conversation, "text": "We are on it", "emailSubject": "Re: Broken kettle" } }),
        )
        .await;
    let reply = sent["sendMessage"]["message"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reply_header = message_id_header(&app, &reply).await;
    assert!(
        reply_header.starts_with('<') && reply_header.ends_with("@acme.test>"),
        "{reply_header}"
    );

    // In-Reply-To the agent's reply: same conversation.
    let (_, answer) = ingest(
        &app,
        &channel,
        &secret,
        email(
            "e-2",
            "ann@example.com",
            json!({ "subject": "Re: Broken kettle", "inReplyTo": reply_header }),
        ),
    )
    .await;
    assert_eq!(answer["conversationId"], json!(conversation));
    // References naming the first message (as an array), from someone else on the thread.
    let (_, answer) = ingest(
        &app,
        &channel,
        &secret,
        email(
            "e-3",
            "bo@example.com",
            json!({ "references": ["<unknown@x>", "<m1@example.com>"] }),
        ),
    )
    .await;
    assert_eq!(answer["conversationId"], json!(conversation));
    assert_eq!(answer["newContact"], json!(true));
    let data = app
        .data(&token, CONVERSATION, json!({ "id": conversation }))
        .await;
    let nodes = data["node"]["messages"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4);
    assert_eq!(nodes[3]["author"]["id"], answer["contactId"]);
    assert_eq!(nodes[3]["from"], "bo@example.com");
    assert_eq!(data["node"]["requester"]["email"], "ann@example.com");

    // A subject token threads for the requester, not for a stranger.
    let number = data["node"]["number"].as_i64().unwrap();
    let (_, answer) = ingest(
        &app,
        &channel,
        &secret,
        email(
            "e-4",
            "ann@example.com",
            json!({ "subject": format!("Re: [#{number}] Broken kettle") }),
        ),
    )
    .await;
    assert_eq!(answer["conversationId"], json!(conversation));
    let (_, answer) = ingest(
        &app,
        &channel,
        &secret,
        email(
            "e-5",
            "eve@example.com",
            json!({ "subject": format!("[#{number}] let me in") }),
        ),
    )
    .await;
    assert_eq!(answer["newConversation"], json!(true));
    // No reference and no token: a new conversation, even from the same sender.
    let (_, answer) = ingest(
        &app,
        &channel,
        &secret,
        email(
            "e-6",
            "ann@example.com",
            json!({ "subject": "Another thing" }),
        ),
    )
    .await;
    assert_eq!(answer["newConversation"], json!(true));
    assert_eq!(app.count("conversations").await, 3);
    assert_eq!(app.count("contacts").await, 3);
}

#[tokio::test]
async fn concurrent_repeats_of_one_inbound_message_store_it_once() {
    let app = TestApp::spawn().await;
    let (channel, secret) = new_channel(
        &app,
        json!({ "type": "SMS", "name": "Line", "address": "+4520009999" }),
    )
    .await;
    let body = json!({ "type": "message", "providerMessageId": "same", "from": "+4520001234", "text": "Once" });
    let answers = futures_util::future::join_all(
        (0..5).map(|_| ingest(&app, &channel, &secret, body.clone())),
    )
    .await;
    let mut results: Vec<(StatusCode, String)> = answers
        .iter()
        .map(|(status, answer)| {
            (
                *status,
                answer["result"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    results.sort();
    assert_eq!(
        results[0],
        (StatusCode::OK, "DUPLICATE".to_string()),
        "{answers:?}"
    );
    assert_eq!(
        results
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count(),
        1,
        "{answers:?}"
    );
    let ids: std::collections::HashSet<&Value> =
        answers.iter().map(|(_, a)| &a["messageId"]).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(app.count("messages").await, 1);
}

#[tokio::test]
async fn channels_that_cannot_take_inbound_messages_refuse_them_and_store_nothing() {
    let app = TestApp::spawn().await;
    let msg = |id: &str, from: &str| json!({ "type": "message", "providerMessageId": id, "from": from, "text": "Hi" });
    // A chat channel: its widget brings its messages, not the ingest endpoint.
    let (chat, chat_secret) = new_channel(&app, json!({ "type": "CHAT", "name": "Widget" })).await;
    let (status, answer) = ingest(&app, &chat, &chat_secret, msg("x-1", "+4520001234")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer,
        json!({ "errors": [{ "message": "inbound messages are recorded on EMAIL, SMS and WHATSAPP channels",
                "extensions": { "code": "INVALID", "field": "type" } }] })
    );
    // An archived channel.
    let (sms, secret) = new_channel(
        &app,
        json!({ "type": "SMS", "name": "Old line", "address": "+4520009999" }),
    )
    .await;
    let archived = app
        .data(
            &app.org.token,
            "mutation($id: ID!) { archiveChannel(input: { id: $id }) { userErrors { code } } }",
            json!({ "id": sms }),
        )
        .await;
    assert_eq!(archived["archiveChannel"]["userErrors"], json!([]));
    let (status, answer) = ingest(&app, &sms, &secret, msg("x-2", "+4520001234")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer,
        json!({ "errors": [{ "message": "the channel is archived; it takes no inbound messages",
                "extensions": { "code": "INVALID_STATE", "field": "channel" } }] })
    );
    // A channel without a secret (created before ingest existed) refuses everything.
    let (email, secret) = new_channel(
        &app,
        json!({ "type": "EMAIL", "name": "Mail", "address": "mail@acme.test" }),
    )
    .await;
    app.sql("UPDATE channels SET ingest_secret = NULL").await;
    let (status, answer) = ingest(&app, &email, &secret, msg("x-3", "ann@example.com")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer,
        json!({ "errors": [{ "message": "the channel has no ingest secret yet: an admin gives it one with rotateChannelIngestSecret",
                "extensions": { "code": "UNAUTHENTICATED" } }] })
    );
    assert_eq!(stored(&app).await, (0, 0, 0));
}
