//! Inbox fixtures created through the API: channels, contacts, queues, tags and conversations.

use serde_json::{Value, json};

use crate::common::TestApp;

/// Creates a channel; returns its id.
pub async fn channel(app: &TestApp, token: &str, kind: &str, name: &str, address: &str) -> String {
    let data = app
        .data(
            token,
            "mutation($input: CreateChannelInput!) { createChannel(input: $input) { channel { id } userErrors { field message code } } }",
            json!({ "input": { "type": kind, "name": name, "address": address } }),
        )
        .await;
    assert_eq!(data["createChannel"]["userErrors"], json!([]), "{data}");
    data["createChannel"]["channel"]["id"]
        .as_str()
        .expect("channel id")
        .to_string()
}

/// Creates a contact from fields; returns its id.
pub async fn contact(app: &TestApp, token: &str, fields: Value) -> String {
    let data = app
        .data(
            token,
            "mutation($input: ContactInput!) { createContact(input: $input) { contact { id } userErrors { field message code } } }",
            json!({ "input": fields }),
        )
        .await;
    assert_eq!(data["createContact"]["userErrors"], json!([]), "{data}");
    data["createContact"]["contact"]["id"]
        .as_str()
        .expect("contact id")
        .to_string()
}

/// Creates a queue; returns its id.
pub async fn queue(app: &TestApp, token: &str, name: &str) -> String {
    let data = app
        .data(
            token,
            "mutation($input: QueueSettingsInput!) { createQueue(input: $input) { queue { id } userErrors { field message code } } }",
            json!({ "input": { "name": name } }),
        )
        .await;
    assert_eq!(data["createQueue"]["userErrors"], json!([]), "{data}");
    data["createQueue"]["queue"]["id"]
        .as_str()
        .expect("queue id")
        .to_string()
}

/// Creates a tag; returns its id.
pub async fn tag(app: &TestApp, token: &str, name: &str) -> String {
    let data = app
        .data(
            token,
            "mutation($input: CreateTagInput!) { createTag(input: $input) { tag { id } userErrors { message } } }",
            json!({ "input": { "name": name } }),
        )
        .await;
    data["createTag"]["tag"]["id"]
        .as_str()
        .expect("tag id")
        .to_string()
}

/// Runs `createConversation` with `input`; returns the payload.
pub async fn create_conversation(app: &TestApp, token: &str, input: Value) -> Value {
    let data = app
        .data(
            token,
            "mutation($input: CreateConversationInput!) { createConversation(input: $input) {
                conversation { id number status direction subject messageCount }
                message { id direction text }
                userErrors { field message code } } }",
            json!({ "input": input }),
        )
        .await;
    data["createConversation"].clone()
}

/// An inbound conversation from `requester` on `channel` with first message `text`; returns its
/// id.
pub async fn inbound(
    app: &TestApp,
    token: &str,
    channel: &str,
    requester: &str,
    text: &str,
) -> String {
    let payload = create_conversation(
        app,
        token,
        json!({ "channelId": channel, "requesterId": requester, "message": { "text": text } }),
    )
    .await;
    assert_eq!(payload["userErrors"], json!([]), "{payload}");
    payload["conversation"]["id"]
        .as_str()
        .expect("conversation id")
        .to_string()
}

/// An SMS channel and a contact with a phone: the usual setup. Returns (channel, contact).
pub async fn sms_setup(app: &TestApp) -> (String, String) {
    let token = app.org.token.clone();
    let channel = channel(app, &token, "SMS", "Support line", "+4520000001").await;
    let contact = contact(
        app,
        &token,
        json!({ "firstName": "Ann", "lastName": "Lee", "phone": "+4520000002" }),
    )
    .await;
    (channel, contact)
}
