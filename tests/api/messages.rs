//! Messages: sending (email and SMS fields, defaults, externalId idempotency also under
//! concurrency), inbound messages, edits, redaction, removal, reactions, read receipts, delivery
//! status history, the per-conversation list, batched nested lists; bad input with clear errors
//! and nothing written; roles and tenancy.

use chrono::{Duration, Utc};
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{TestApp, codes};

pub const SEND: &str = "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
  message { id direction text html emailSubject from to cc bcc externalId deliveryStatus deliveryReason
            deliveryHistory { status reason } author { __typename ... on User { email } ... on Contact { name } }
            conversation { id } attachments { filename } scheduledAt editedAt redactedAt removedAt }
  userErrors { field message code } } }";

const INBOUND: &str = "mutation($input: RecordInboundMessageInput!) { recordInboundMessage(input: $input) {
  message { id direction text from to deliveryStatus author { __typename ... on Contact { name } } createdAt conversation { status } }
  userErrors { field message code } } }";

pub fn uuid_of(id: &Value) -> Uuid {
    switchboard::graphql::relay::decode_any_id(id.as_str().expect("global id"))
        .expect("decodable id")
        .1
}

/// Creates a channel through the API as `token`; returns its global id.
pub async fn channel(app: &TestApp, token: &str, channel_type: &str, address: &str) -> Value {
    let data = app
        .data(
            token,
            "mutation($input: CreateChannelInput!) { createChannel(input: $input) { channel { id } userErrors { field message code } } }",
            json!({ "input": { "type": channel_type, "name": format!("{channel_type} channel"), "address": address } }),
        )
        .await;
    assert_eq!(data["createChannel"]["userErrors"], json!([]));
    data["createChannel"]["channel"]["id"].clone()
}

/// Archives a channel through the API.
pub async fn archive_channel(app: &TestApp, channel: &Value) {
    let data = app
        .data(
            &app.org.token,
            "mutation($input: ChannelIdInput!) { archiveChannel(input: $input) { channel { status } userErrors { field message code } } }",
            json!({ "input": { "id": channel } }),
        )
        .await;
    assert_eq!(
        data["archiveChannel"],
        json!({ "channel": { "status": "ARCHIVED" }, "userErrors": [] })
    );
}

pub async fn contact(app: &TestApp, token: &str, input: Value) -> Value {
    let data = app
        .data(
            token,
            "mutation($input: ContactInput!) { createContact(input: $input) { contact { id } userErrors { code } } }",
            json!({ "input": input }),
        )
        .await;
    assert_eq!(data["createContact"]["userErrors"], json!([]));
    data["createContact"]["contact"]["id"].clone()
}

/// Creates an inbound conversation through the API; returns its id.
pub async fn conversation(app: &TestApp, token: &str, channel: &Value, requester: &Value) -> Value {
    let data = app
        .data(
            token,
            "mutation($input: CreateConversationInput!) { createConversation(input: $input) { conversation { id } userErrors { field message code } } }",
            json!({ "input": { "channelId": channel, "requesterId": requester, "direction": "INBOUND", "message": { "text": "Hello?" } } }),
        )
        .await;
    assert_eq!(data["createConversation"]["userErrors"], json!([]));
    data["createConversation"]["conversation"]["id"].clone()
}

/// An organization's inbox: an email and an SMS channel, a contact, a conversation on each.
pub struct Inbox {
    pub email_channel: Value,
    #[allow(dead_code)]
    pub sms_channel: Value,
    pub ann: Value,
    pub email: Value,
    pub sms: Value,
}

pub async fn inbox(app: &TestApp) -> Inbox {
    let token = &app.org.token;
    let email_channel = channel(app, token, "EMAIL", "support@acme.test").await;
    let sms_channel = channel(app, token, "SMS", "+4570000000").await;
    let ann = contact(
        app,
        token,
        json!({ "firstName": "Ann", "email": "ann@example.com", "phone": "+4520123456" }),
    )
    .await;
    let email = conversation(app, token, &email_channel, &ann).await;
    let sms = conversation(app, token, &sms_channel, &ann).await;
    Inbox {
        email_channel,
        sms_channel,
        ann,
        email,
        sms,
    }
}

pub async fn send(app: &TestApp, token: &str, input: Value) -> Value {
    app.data(token, SEND, json!({ "input": input })).await["sendMessage"].clone()
}

/// Rows a rejected operation must not have written.
pub async fn written(app: &TestApp) -> [i64; 5] {
    [
        app.count("messages").await,
        app.count("message_status_events").await,
        app.count("attachments").await,
        app.count("events").await,
        app.count("message_reactions").await,
    ]
}

fn user_error(field: &[&str], code: &str, message: &str) -> Value {
    json!({ "message": null, "userErrors": [{ "field": field, "code": code, "message": message }] })
}

#[tokio::test]
async fn agents_send_email_and_sms_messages_with_defaults_queued() {
    let app = TestApp::spawn().await;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let inbox = inbox(&app).await;
    let before = app.count("events WHERE event_type = 'MESSAGE_ADDED'").await;

    let sent = send(
        &app,
        &agent,
        json!({ "conversationId": inbox.email, "text": "Your order shipped.", "html": "<p>Your order shipped.</p>",
                "emailSubject": "Re: order", "cc": ["Boss@Example.com"], "bcc": ["audit@acme.test"] }),
    )
    .await;
    let id = sent["message"]["id"].clone();
    assert_eq!(
        sent,
        json!({ "message": { "id": id, "direction": "OUTBOUND", "text": "Your order shipped.", "html": "<p>Your order shipped.</p>",
            "emailSubject": "Re: order", "from": "support@acme.test", "to": ["ann@example.com"], "cc": ["boss@example.com"],
            "bcc": ["audit@acme.test"], "externalId": null, "deliveryStatus": "QUEUED", "deliveryReason": null,
            "deliveryHistory": [{ "status": "QUEUED", "reason": null }], "author": { "__typename": "User", "email": "agent@acme.test" },
            "conversation": { "id": inbox.email }, "attachments": [], "scheduledAt": null, "editedAt": null, "redactedAt": null,
            "removedAt": null },
            "userErrors": [] })
    );

    let later = (Utc::now() + Duration::hours(2)).to_rfc3339();
    let sms = send(
        &app,
        &agent,
        json!({ "conversationId": inbox.sms, "text": "On its way", "scheduledAt": later }),
    )
    .await;
    assert_eq!(sms["userErrors"], json!([]));
    assert_eq!(
        (
            &sms["message"]["from"],
            &sms["message"]["to"],
            &sms["message"]["cc"]
        ),
        (&json!("+4570000000"), &json!(["+4520123456"]), &json!([]))
    );
    assert!(sms["message"]["scheduledAt"].is_string());
    let to = send(
        &app,
        &agent,
        json!({ "conversationId": inbox.sms, "text": "Also to you", "to": ["+4520999999"], "from": "+4570000001" }),
    )
    .await;
    assert_eq!(
        (&to["message"]["from"], &to["message"]["to"]),
        (&json!("+4570000001"), &json!(["+4520999999"]))
    );
    assert_eq!(
        app.count("events WHERE event_type = 'MESSAGE_ADDED'").await,
        before + 3
    );
    // The conversation counts the reply and its first response.
    let data = app
        .data(
            &agent,
            "query($id: ID!) { node(id: $id) { ... on Conversation { messageCount firstResponseAt lastMessage { id } } } }",
            json!({ "id": inbox.email }),
        )
        .await;
    assert_eq!(data["node"]["messageCount"], json!(2));
    assert_eq!(data["node"]["lastMessage"]["id"], id);
    assert!(data["node"]["firstResponseAt"].is_string());
}

#[tokio::test]
async fn external_ids_make_sending_idempotent_even_concurrently() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let inbox = inbox(&app).await;
    let input =
        json!({ "conversationId": inbox.email, "text": "Once only", "externalId": "crm-42" });
    let first = send(&app, &token, input.clone()).await;
    assert_eq!(first["userErrors"], json!([]));
    assert_eq!(first["message"]["externalId"], json!("crm-42"));
    let rows = written(&app).await;
    let again = send(&app, &token, input).await;
    assert_eq!(again, first);
    assert_eq!(written(&app).await, rows);

    // The same id in another conversation is a conflict, and writes nothing.
    let other = send(
        &app,
        &token,
        json!({ "conversationId": inbox.sms, "text": "Once only", "externalId": "crm-42" }),
    )
    .await;
    assert_eq!(
        other,
        user_error(
            &["input", "externalId"],
            "CONFLICT",
            "external id \"crm-42\" belongs to a message in another conversation"
        )
    );
    assert_eq!(written(&app).await, rows);

    // Ten concurrent sends with one external id store one message.
    let input = json!({ "conversationId": inbox.sms, "text": "Race", "externalId": "race-1" });
    let results =
        futures_util::future::join_all((0..10).map(|_| send(&app, &token, input.clone()))).await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|r| r["message"]["id"].as_str().expect("a message").to_string())
        .collect();
    assert_eq!(ids.len(), 1, "{results:?}");
    assert_eq!(app.count("messages WHERE external_id = 'race-1'").await, 1);
    assert_eq!(written(&app).await[0], rows[0] + 1);
}

#[tokio::test]
async fn bad_sends_get_clear_errors_and_write_nothing() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let inbox = inbox(&app).await;
    let rows = written(&app).await;
    let past = (Utc::now() - Duration::minutes(1)).to_rfc3339();
    let cases = [
        (
            json!({ "conversationId": inbox.email }),
            json!([{ "field": ["input", "text"], "code": "INVALID", "message": "a message needs text, html or an attachment" }]),
        ),
        (
            json!({ "conversationId": inbox.email, "text": "x".repeat(65_537) }),
            json!([{ "field": ["input", "text"], "code": "TOO_LONG", "message": "text is 65537 bytes; a message may have at most 65536 bytes" }]),
        ),
        (
            json!({ "conversationId": inbox.sms, "text": "x".repeat(1_601) }),
            json!([{ "field": ["input", "text"], "code": "TOO_LONG", "message": "an SMS may have at most 1600 characters, got 1601" }]),
        ),
        (
            json!({ "conversationId": inbox.sms, "text": "Hi", "html": "<p>Hi</p>", "emailSubject": "Hi", "cc": ["a@b.co"], "from": "acme" }),
            json!([
                { "field": ["input", "html"], "code": "INVALID", "message": "SMS and WhatsApp messages are plain text; send `text` instead of `html`" },
                { "field": ["input", "emailSubject"], "code": "INVALID", "message": "emailSubject is only for email channels" },
                { "field": ["input", "cc"], "code": "INVALID", "message": "cc is only for email channels" },
                { "field": ["input", "from"], "code": "INVALID", "message": "\"acme\" is not an E.164 phone number such as +14155550100" },
                { "field": ["input", "cc", "0"], "code": "INVALID", "message": "\"a@b.co\" is not an E.164 phone number such as +14155550100" }
            ]),
        ),
        (
            json!({ "conversationId": inbox.email, "text": "Hi", "to": ["not-an-address"], "bcc": ["ok@example.com", "nope"] }),
            json!([
                { "field": ["input", "to", "0"], "code": "INVALID", "message": "\"not-an-address\" is not a valid email address" },
                { "field": ["input", "bcc", "1"], "code": "INVALID", "message": "\"nope\" is not a valid email address" }
            ]),
        ),
        (
            json!({ "conversationId": inbox.email, "text": "Hi", "scheduledAt": past }),
            json!([{ "field": ["input", "scheduledAt"], "code": "INVALID", "message": "scheduledAt must be in the future" }]),
        ),
        (
            json!({ "conversationId": inbox.ann, "text": "Hi" }),
            json!([{ "field": ["input", "conversationId"], "code": "INVALID", "message": "expected an id of a Conversation, got an id of a Contact" }]),
        ),
        (
            json!({ "conversationId": switchboard::graphql::relay::encode_id("Conversation", Uuid::now_v7()).0, "text": "Hi" }),
            json!([{ "field": ["input", "conversationId"], "code": "NOT_FOUND", "message": "no such conversation" }]),
        ),
    ];
    for (input, errors) in cases {
        let answer = send(&app, &token, input.clone()).await;
        assert_eq!(
            answer,
            json!({ "message": null, "userErrors": errors }),
            "{input}"
        );
        assert_eq!(written(&app).await, rows, "{input}");
    }

    // An SMS contact who opted out.
    let consent = app
        .data(
            &token,
            "mutation($input: SetContactConsentInput!) { setContactConsent(input: $input) { userErrors { code } } }",
            json!({ "input": { "contactId": inbox.ann, "channel": "SMS", "status": "OPTED_OUT", "source": "STOP" } }),
        )
        .await;
    assert_eq!(consent["setContactConsent"]["userErrors"], json!([]));
    let rows = written(&app).await;
    let answer = send(
        &app,
        &token,
        json!({ "conversationId": inbox.sms, "text": "Deal!" }),
    )
    .await;
    assert_eq!(
        answer,
        user_error(
            &["input", "conversationId"],
            "INVALID_STATE",
            "the contact opted out of SMS messages; nothing can be sent to them there until they opt in again"
        )
    );
    assert_eq!(written(&app).await, rows);
    // Email is another channel type: still allowed.
    let email = send(
        &app,
        &token,
        json!({ "conversationId": inbox.email, "text": "Deal!" }),
    )
    .await;
    assert_eq!(email["userErrors"], json!([]));

    // An archived channel.
    archive_channel(&app, &inbox.email_channel).await;
    let rows = written(&app).await;
    let answer = send(
        &app,
        &token,
        json!({ "conversationId": inbox.email, "text": "Anyone?" }),
    )
    .await;
    assert_eq!(
        answer,
        user_error(
            &["input", "conversationId"],
            "INVALID_STATE",
            "the conversation's channel: the channel is archived"
        )
    );
    assert_eq!(written(&app).await, rows);

    // An anonymized conversation.
    {
        use sea_orm::{EntityTrait, IntoActiveModel};
        let db = &app.state.db;
        let conversation = entity::conversation::Entity::find_by_id(uuid_of(&inbox.sms))
            .one(db)
            .await
            .expect("query")
            .expect("conversation");
        let mut conversation = conversation.into_active_model();
        conversation.anonymized_at = Set(Some(Utc::now()));
        conversation.update(db).await.expect("anonymize");
        let ann = entity::contact::Entity::find_by_id(uuid_of(&inbox.ann))
            .one(db)
            .await
            .expect("query")
            .expect("contact");
        let mut ann = ann.into_active_model();
        ann.consent = Set(json!({}));
        ann.update(db).await.expect("consent");
    }
    let answer = send(
        &app,
        &token,
        json!({ "conversationId": inbox.sms, "text": "Hi" }),
    )
    .await;
    assert_eq!(
        answer,
        user_error(
            &["input", "conversationId"],
            "INVALID_STATE",
            "the conversation is anonymized"
        )
    );
    assert_eq!(written(&app).await, rows);
}

#[tokio::test]
async fn inbound_messages_come_from_the_requester_reopen_and_are_idempotent() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let inbox = inbox(&app).await;
    let closed = app
        .data(
            &token,
            "mutation($input: CloseConversationInput!) { closeConversation(input: $input) { conversation { status } userErrors { code } } }",
            json!({ "input": { "conversationId": inbox.sms } }),
        )
        .await;
    assert_eq!(
        closed["closeConversation"]["conversation"]["status"],
        json!("CLOSED")
    );
    let received_at = (Utc::now() - Duration::minutes(3)).to_rfc3339();
    let input = json!({ "conversationId": inbox.sms, "text": "Where is it?", "externalId": "SM123", "receivedAt": received_at });
    let first =
        app.data(&token, INBOUND, json!({ "input": input })).await["recordInboundMessage"].clone();
    let id = first["message"]["id"].clone();
    let created_at = first["message"]["createdAt"].clone();
    assert_eq!(
        first,
        json!({ "message": { "id": id, "direction": "INBOUND", "text": "Where is it?", "from": "+4520123456",
            "to": ["+4570000000"], "deliveryStatus": "DELIVERED", "author": { "__typename": "Contact", "name": "Ann" },
            "createdAt": created_at, "conversation": { "status": "OPEN" } }, "userErrors": [] })
    );
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(created_at.as_str().unwrap_or_default())
            .map(|t| t.timestamp()),
        chrono::DateTime::parse_from_rfc3339(&received_at).map(|t| t.timestamp())
    );
    assert_eq!(
        app.count("events WHERE event_type = 'CONVERSATION_REOPENED'")
            .await,
        1
    );
    let rows = written(&app).await;
    let again =
        app.data(&token, INBOUND, json!({ "input": input })).await["recordInboundMessage"].clone();
    assert_eq!(again, first);
    assert_eq!(written(&app).await, rows);

    let future = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let bad = app
        .data(
            &token,
            INBOUND,
            json!({ "input": { "conversationId": inbox.email, "html": "<b>x</b>", "from": "+4520123456", "receivedAt": future } }),
        )
        .await;
    assert_eq!(
        bad["recordInboundMessage"]["userErrors"],
        json!([{ "field": ["input", "receivedAt"], "code": "INVALID", "message": "receivedAt is in the future" }])
    );
    let bad = app
        .data(
            &token,
            INBOUND,
            json!({ "input": { "conversationId": inbox.email, "html": "<b>x</b>", "from": "+4520123456" } }),
        )
        .await;
    assert_eq!(
        bad["recordInboundMessage"]["userErrors"],
        json!([{ "field": ["input", "from"], "code": "INVALID", "message": "\"+4520123456\" is not a valid email address" }])
    );
    assert_eq!(written(&app).await, rows);
}

const EDIT: &str = "mutation($input: EditMessageInput!) { editMessage(input: $input) { message { text html editedAt } userErrors { field message code } } }";
const REDACT: &str = "mutation($input: RedactMessageInput!) { redactMessage(input: $input) { message { text html emailSubject redactedAt removedAt } userErrors { field message code } } }";
const REMOVE: &str = "mutation($input: RemoveMessageInput!) { removeMessage(input: $input) { message { text html removedAt } userErrors { field message code } } }";
const REACT: &str = "mutation($input: ReactionInput!) { addReaction(input: $input) { message { reactionCounts { reaction count } } userErrors { field message code } } }";
const UNREACT: &str = "mutation($input: ReactionInput!) { removeReaction(input: $input) { message { reactionCounts { reaction count } } userErrors { field message code } } }";

#[tokio::test]
async fn authors_edit_and_agents_redact_and_remove_messages() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let inbox = inbox(&app).await;
    let sent = send(
        &app,
        &token,
        json!({ "conversationId": inbox.email, "text": "Helo", "emailSubject": "Typo" }),
    )
    .await;
    let id = sent["message"]["id"].clone();

    let edited = app
        .data(
            &token,
            EDIT,
            json!({ "input": { "messageId": id, "text": "Hello", "html": "<p>Hello</p>" } }),
        )
        .await["editMessage"]
        .clone();
    assert_eq!(edited["userErrors"], json!([]));
    assert_eq!(
        (&edited["message"]["text"], &edited["message"]["html"]),
        (&json!("Hello"), &json!("<p>Hello</p>"))
    );
    assert!(edited["message"]["editedAt"].is_string());
    assert_eq!(
        app.count("events WHERE event_type = 'MESSAGE_EDITED'")
            .await,
        1
    );

    let rows = written(&app).await;
    let not_author = app
        .data(
            &agent,
            EDIT,
            json!({ "input": { "messageId": id, "text": "Mine" } }),
        )
        .await;
    assert_eq!(
        not_author["editMessage"],
        user_error(
            &["input", "messageId"],
            "FORBIDDEN",
            "only the message's author can edit it"
        )
    );
    let emptied = app
        .data(
            &token,
            EDIT,
            json!({ "input": { "messageId": id, "text": null, "html": null } }),
        )
        .await;
    assert_eq!(
        emptied["editMessage"],
        user_error(
            &["input", "text"],
            "INVALID",
            "a message needs text, html or an attachment"
        )
    );
    assert_eq!(written(&app).await, rows);

    let removed = app
        .data(&agent, REMOVE, json!({ "input": { "messageId": id } }))
        .await["removeMessage"]
        .clone();
    assert_eq!(
        (
            &removed["message"]["text"],
            &removed["message"]["html"],
            &removed["userErrors"]
        ),
        (&Value::Null, &Value::Null, &json!([]))
    );
    assert!(removed["message"]["removedAt"].is_string());
    let rows = written(&app).await;
    for (query, name) in [(EDIT, "editMessage"), (REACT, "addReaction")] {
        let input = if name == "editMessage" {
            json!({ "messageId": id, "text": "again" })
        } else {
            json!({ "messageId": id, "reaction": "LIKE" })
        };
        let refused = app.data(&token, query, json!({ "input": input })).await;
        let action = if name == "editMessage" {
            "be edited"
        } else {
            "take reactions"
        };
        assert_eq!(
            refused[name],
            user_error(
                &["input", "messageId"],
                "INVALID_STATE",
                &format!("the message is removed; it cannot {action}")
            )
        );
    }
    let twice = app
        .data(&agent, REMOVE, json!({ "input": { "messageId": id } }))
        .await;
    assert_eq!(
        twice["removeMessage"],
        user_error(
            &["input", "messageId"],
            "INVALID_STATE",
            "the message is already removed"
        )
    );
    assert_eq!(written(&app).await, rows);

    // Redaction erases the content of another message and keeps its place.
    let secret = send(
        &app,
        &token,
        json!({ "conversationId": inbox.email, "text": "Card 4111 1111 1111 1111", "emailSubject": "Card" }),
    )
    .await["message"]["id"]
        .clone();
    let redacted = app
        .data(
            &agent,
            REDACT,
            json!({ "input": { "messageId": secret, "reason": "card number" } }),
        )
        .await["redactMessage"]
        .clone();
    assert_eq!(
        (
            &redacted["message"]["text"],
            &redacted["message"]["emailSubject"],
            &redacted["message"]["removedAt"]
        ),
        (&Value::Null, &Value::Null, &Value::Null)
    );
    assert!(redacted["message"]["redactedAt"].is_string());
    assert_eq!(
        app.count(
            "messages WHERE text_body IS NULL AND email_subject IS NULL AND redacted_at IS NOT NULL"
        )
        .await,
        1
    );
    let rows = written(&app).await;
    let refused = app
        .data(
            &token,
            REACT,
            json!({ "input": { "messageId": secret, "reaction": "WOW" } }),
        )
        .await;
    assert_eq!(
        refused["addReaction"],
        user_error(
            &["input", "messageId"],
            "INVALID_STATE",
            "the message is redacted; it cannot take reactions"
        )
    );
    let refused = app
        .data(
            &token,
            EDIT,
            json!({ "input": { "messageId": secret, "text": "x" } }),
        )
        .await;
    assert_eq!(
        refused["editMessage"],
        user_error(
            &["input", "messageId"],
            "INVALID_STATE",
            "the message is redacted; it cannot be edited"
        )
    );
    assert_eq!(written(&app).await, rows);

    // Inbound messages are not edited.
    let inbound = app
        .data(
            &token,
            INBOUND,
            json!({ "input": { "conversationId": inbox.email, "text": "Thanks" } }),
        )
        .await["recordInboundMessage"]["message"]["id"]
        .clone();
    let refused = app
        .data(
            &token,
            EDIT,
            json!({ "input": { "messageId": inbound, "text": "x" } }),
        )
        .await;
    assert_eq!(
        refused["editMessage"],
        user_error(
            &["input", "messageId"],
            "FORBIDDEN",
            "only the message's author can edit it"
        )
    );
    for kind in [
        "MESSAGE_EDITED",
        "MESSAGE_REMOVED",
        "MESSAGE_REDACTED",
        "REACTION_ADDED",
    ] {
        let expected = i64::from(kind != "REACTION_ADDED");
        assert_eq!(
            (
                kind,
                app.count(&format!("events WHERE event_type = '{kind}'"))
                    .await
            ),
            (kind, expected),
        );
    }
}

#[tokio::test]
async fn reactions_are_idempotent_and_counted() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (agent_id, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let inbox = inbox(&app).await;
    let id = send(
        &app,
        &token,
        json!({ "conversationId": inbox.email, "text": "Good news" }),
    )
    .await["message"]["id"]
        .clone();
    for (who, reaction) in [
        (&token, "LIKE"),
        (&token, "LIKE"),
        (&agent, "LIKE"),
        (&agent, "LOVE"),
    ] {
        let answer = app
            .data(
                who,
                REACT,
                json!({ "input": { "messageId": id, "reaction": reaction } }),
            )
            .await;
        assert_eq!(answer["addReaction"]["userErrors"], json!([]));
    }
    assert_eq!(app.count("message_reactions").await, 3);
    assert_eq!(
        app.count("events WHERE event_type = 'REACTION_ADDED'")
            .await,
        3
    );
    let data = app
        .data(
            &token,
            "query($id: ID!) { message(id: $id) { reactionCounts { reaction count } reactions { reaction reactor { ... on User { id } } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        data["message"],
        json!({ "reactionCounts": [{ "reaction": "LIKE", "count": 2 }, { "reaction": "LOVE", "count": 1 }],
            "reactions": [{ "reaction": "LIKE", "reactor": { "id": app.org.owner_id } },
                          { "reaction": "LIKE", "reactor": { "id": agent_id } },
                          { "reaction": "LOVE", "reactor": { "id": agent_id } }] })
    );
    for _ in 0..2 {
        let answer = app
            .data(
                &agent,
                UNREACT,
                json!({ "input": { "messageId": id, "reaction": "LIKE" } }),
            )
            .await;
        assert_eq!(
            answer["removeReaction"],
            json!({ "message": { "reactionCounts": [{ "reaction": "LIKE", "count": 1 }, { "reaction": "LOVE", "count": 1 }] }, "userErrors": [] })
        );
    }
    assert_eq!(
        app.count("events WHERE event_type = 'REACTION_REMOVED'")
            .await,
        1
    );
}

#[tokio::test]
async fn read_receipts_per_participant_never_move_backwards() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let inbox = inbox(&app).await;
    let first = send(
        &app,
        &agent,
        json!({ "conversationId": inbox.email, "text": "One" }),
    )
    .await["message"]["id"]
        .clone();
    let receipt = "mutation($input: RecordReadReceiptInput!) { recordReadReceipt(input: $input) { conversation { id } readAt userErrors { field message code } } }";
    let now = Utc::now();
    let answer = app
        .data(
            &token,
            receipt,
            json!({ "input": { "conversationId": inbox.email, "contactId": inbox.ann, "readAt": now.to_rfc3339() } }),
        )
        .await["recordReadReceipt"]
        .clone();
    assert_eq!(answer["userErrors"], json!([]));
    assert_eq!(answer["conversation"]["id"], inbox.email);
    let read_at = answer["readAt"].clone();
    let second = send(
        &app,
        &agent,
        json!({ "conversationId": inbox.email, "text": "Two" }),
    )
    .await["message"]["id"]
        .clone();
    // An older receipt does not move the position back, and records nothing.
    let read_events = "events WHERE event_type = 'CONVERSATION_READ'";
    assert_eq!(app.count(read_events).await, 1);
    let older = app
        .data(
            &token,
            receipt,
            json!({ "input": { "conversationId": inbox.email, "contactId": inbox.ann, "readAt": (now - Duration::hours(1)).to_rfc3339() } }),
        )
        .await["recordReadReceipt"]
        .clone();
    assert_eq!(older["readAt"], read_at);
    assert_eq!(app.count(read_events).await, 1);
    // The owner marks it read (a user reader).
    let marked = app
        .data(
            &token,
            "mutation($input: MarkConversationReadInput!) { markConversationRead(input: $input) { userErrors { code } } }",
            json!({ "input": { "conversationId": inbox.email } }),
        )
        .await;
    assert_eq!(marked["markConversationRead"]["userErrors"], json!([]));
    // Marking read records the reader's move too.
    assert_eq!(app.count(read_events).await, 2);
    let query = "query($id: ID!) { message(id: $id) { readBy { reader { __typename ... on User { id } ... on Contact { id } } readAt } } }";
    let one = app.data(&token, query, json!({ "id": first })).await;
    let readers: Vec<Value> = one["message"]["readBy"]
        .as_array()
        .expect("readBy")
        .iter()
        .map(|r| r["reader"].clone())
        .collect();
    assert_eq!(
        readers,
        vec![
            json!({ "__typename": "Contact", "id": inbox.ann }),
            json!({ "__typename": "User", "id": app.org.owner_id })
        ]
    );
    let two = app.data(&token, query, json!({ "id": second })).await;
    assert_eq!(
        two["message"]["readBy"][0]["reader"],
        json!({ "__typename": "User", "id": app.org.owner_id })
    );
    assert_eq!(two["message"]["readBy"].as_array().map(Vec::len), Some(1));

    // A contact who takes no part, and a time in the future.
    let stranger = contact(&app, &token, json!({ "firstName": "Bo" })).await;
    let rows = app.count("conversation_reads").await;
    let refused = app
        .data(
            &token,
            receipt,
            json!({ "input": { "conversationId": inbox.email, "contactId": stranger } }),
        )
        .await;
    assert_eq!(
        refused["recordReadReceipt"],
        json!({ "conversation": null, "readAt": null, "userErrors": [{ "field": ["input", "contactId"], "code": "NOT_FOUND",
            "message": "the contact takes no part in the conversation" }] })
    );
    let refused = app
        .data(
            &token,
            receipt,
            json!({ "input": { "conversationId": inbox.email, "contactId": inbox.ann, "readAt": (now + Duration::hours(1)).to_rfc3339() } }),
        )
        .await;
    assert_eq!(
        refused["recordReadReceipt"]["userErrors"],
        json!([{ "field": ["input", "readAt"], "code": "INVALID", "message": "readAt is in the future" }])
    );
    assert_eq!(app.count("conversation_reads").await, rows);
    assert_eq!(app.count(read_events).await, 2);
}

#[tokio::test]
async fn delivery_status_moves_forward_with_its_history() {
    use switchboard::messages::service::{DeliveryStatus, record_delivery_status};
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let inbox = inbox(&app).await;
    let id = send(
        &app,
        &token,
        json!({ "conversationId": inbox.sms, "text": "Ping" }),
    )
    .await["message"]["id"]
        .clone();
    let db = &app.state.db;
    let load = || async {
        <entity::message::Entity as sea_orm::EntityTrait>::find_by_id(uuid_of(&id))
            .one(db)
            .await
            .expect("query")
            .expect("message")
    };
    for (status, reason) in [
        (DeliveryStatus::Sent, None),
        (DeliveryStatus::Queued, None),
        (DeliveryStatus::Failed, Some("carrier unreachable")),
        (DeliveryStatus::Delivered, None),
    ] {
        record_delivery_status(db, load().await, status, reason.map(Into::into), Utc::now())
            .await
            .map_err(|e| e.public_message())
            .expect("status recorded");
    }
    let data = app
        .data(
            &token,
            "query($id: ID!) { message(id: $id) { deliveryStatus deliveryReason deliveryHistory { status reason } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        data["message"],
        json!({ "deliveryStatus": "FAILED", "deliveryReason": "carrier unreachable", "deliveryHistory": [
            { "status": "QUEUED", "reason": null }, { "status": "SENT", "reason": null },
            { "status": "FAILED", "reason": "carrier unreachable" }] })
    );
    assert_eq!(
        app.count("events WHERE event_type = 'MESSAGE_STATUS_CHANGED'")
            .await,
        2
    );
}

const LIST: &str = "query($id: ID!, $order: MessageOrder, $first: Int, $after: String, $last: Int, $before: String) {
  node(id: $id) { ... on Conversation { messages(order: $order, first: $first, after: $after, last: $last, before: $before) {
    totalCount nodes { text } pageInfo { hasNextPage hasPreviousPage endCursor startCursor } } } } }";

#[tokio::test]
async fn messages_list_newest_or_oldest_first_with_cursors() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let inbox = inbox(&app).await;
    for i in 1..=4 {
        send(
            &app,
            &token,
            json!({ "conversationId": inbox.email, "text": format!("m{i}") }),
        )
        .await;
    }
    let page = |vars: Value| {
        let app = &app;
        let token = token.clone();
        async move { app.data(&token, LIST, vars).await["node"]["messages"].clone() }
    };
    let texts = |page: &Value| -> Vec<String> {
        page["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["text"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let oldest = page(json!({ "id": inbox.email, "first": 2 })).await;
    assert_eq!(texts(&oldest), ["Hello?", "m1"]);
    assert_eq!(oldest["totalCount"], json!(5));
    assert_eq!(oldest["pageInfo"]["hasNextPage"], json!(true));
    let next =
        page(json!({ "id": inbox.email, "first": 10, "after": oldest["pageInfo"]["endCursor"] }))
            .await;
    assert_eq!(texts(&next), ["m2", "m3", "m4"]);
    assert_eq!(
        (
            &next["pageInfo"]["hasNextPage"],
            &next["pageInfo"]["hasPreviousPage"]
        ),
        (&json!(false), &json!(true))
    );
    let newest = page(json!({ "id": inbox.email, "order": "NEWEST_FIRST", "first": 3 })).await;
    assert_eq!(texts(&newest), ["m4", "m3", "m2"]);
    let last = page(json!({ "id": inbox.email, "last": 2 })).await;
    assert_eq!(texts(&last), ["m3", "m4"]);
    let before =
        page(json!({ "id": inbox.email, "last": 1, "before": last["pageInfo"]["startCursor"] }))
            .await;
    assert_eq!(texts(&before), ["m2"]);
    // A cursor of the other order is refused.
    let body = app
        .gql(
            &token,
            LIST,
            json!({ "id": inbox.email, "order": "NEWEST_FIRST", "after": oldest["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"]);
}

#[tokio::test]
async fn nested_message_lists_cost_the_same_statements_for_5_and_50_messages() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let inbox = inbox(&app).await;
    for i in 0..50 {
        let who = if i % 2 == 0 { &token } else { &agent };
        let id = send(
            &app,
            who,
            json!({ "conversationId": inbox.email, "text": format!("m{i}") }),
        )
        .await["message"]["id"]
            .clone();
        if i % 5 == 0 {
            app.data(
                &agent,
                REACT,
                json!({ "input": { "messageId": id, "reaction": "LOL" } }),
            )
            .await;
        }
    }
    app.data(
        &agent,
        "mutation($input: MarkConversationReadInput!) { markConversationRead(input: $input) { userErrors { code } } }",
        json!({ "input": { "conversationId": inbox.email } }),
    )
    .await;
    let query = |n: usize| {
        format!(
            r#"{{ node(id: {id}) {{ ... on Conversation {{ messages(first: {n}) {{ nodes {{ id text
              author {{ ... on User {{ email }} ... on Contact {{ name }} }} conversation {{ number }}
              attachments {{ filename }} deliveryHistory {{ status }}
              reactions {{ reaction reactor {{ ... on User {{ email }} }} }} reactionCounts {{ reaction count }}
              readBy {{ reader {{ ... on User {{ email }} ... on Contact {{ name }} }} readAt }} }} }} }} }} }}"#,
            id = inbox.email
        )
    };
    let (small, data) = app.statements_of(&token, &query(5)).await;
    assert_eq!(
        data["node"]["messages"]["nodes"][1]["reactions"],
        json!([{ "reaction": "LOL", "reactor": { "email": "agent@acme.test" } }])
    );
    let (large, data) = app.statements_of(&token, &query(50)).await;
    assert_eq!(
        data["node"]["messages"]["nodes"].as_array().map(Vec::len),
        Some(50)
    );
    assert_eq!(
        data["node"]["messages"]["nodes"][1]["readBy"][0]["reader"],
        json!({ "email": "agent@acme.test" })
    );
    assert_eq!(small, large);
}

#[tokio::test]
async fn other_organizations_cannot_see_or_send_to_messages() {
    let app = TestApp::spawn().await;
    let inbox = inbox(&app).await;
    let id = send(
        &app,
        &app.org.token,
        json!({ "conversationId": inbox.email, "text": "Private" }),
    )
    .await["message"]["id"]
        .clone();
    let other = app.create_org("Other", "other", "owner@other.test").await;
    let rows = written(&app).await;
    let data = app
        .data(
            &other.token,
            "query($id: ID!) { message(id: $id) { id } node(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data, json!({ "message": null, "node": null }));
    let answer = send(
        &app,
        &other.token,
        json!({ "conversationId": inbox.email, "text": "Hi" }),
    )
    .await;
    assert_eq!(
        answer,
        user_error(
            &["input", "conversationId"],
            "NOT_FOUND",
            "no such conversation"
        )
    );
    for (query, name) in [(REACT, "addReaction"), (REMOVE, "removeMessage")] {
        let input = if name == "addReaction" {
            json!({ "messageId": id, "reaction": "LIKE" })
        } else {
            json!({ "messageId": id })
        };
        let answer = app
            .data(&other.token, query, json!({ "input": input }))
            .await;
        assert_eq!(
            answer[name],
            user_error(&["input", "messageId"], "NOT_FOUND", "no such message")
        );
    }
    assert_eq!(written(&app).await, rows);
    // Without a token: UNAUTHENTICATED, nothing written.
    let (_, _, body) = app
        .post(
            None,
            json!({ "query": SEND, "variables": { "input": { "conversationId": inbox.email, "text": "x" } } }),
        )
        .await;
    assert_eq!(codes(&body), ["UNAUTHENTICATED"]);
    assert_eq!(written(&app).await, rows);
}
