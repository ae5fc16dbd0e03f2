//! Auto-responders: keyword (exact, contains), out-of-hours (own hours or the channel's, once
//! per quiet period), first-message, start and end dates, enable/disable; SMS consent keywords
//! with default and configured confirmations; bad input and roles.

use serde_json::{Value, json};

use crate::common::TestApp;
use crate::fixtures;

const CREATE: &str = "mutation($input: CreateAutoResponderInput!) { createAutoResponder(input: $input) { autoResponder { id name trigger matchKind keywords body enabled startsAt endsAt businessHours { timezone } channel { name } } userErrors { field message code } } }";
const UPDATE: &str = "mutation($input: UpdateAutoResponderInput!) { updateAutoResponder(input: $input) { autoResponder { enabled keywords } userErrors { field message code } } }";
const REPLY_TEXTS: &str = "query($id: ID!) { conversation(id: $id) { messageCount messages(first: 50, order: OLDEST_FIRST) { nodes { direction text author { __typename } to deliveryStatus } } } }";
const CONSENT: &str = "query($id: ID!) { contact(id: $id) { consent { channel status source } } }";

/// An SMS channel and a contact with a phone number.
async fn sms(app: &TestApp) -> (String, String) {
    let channel = fixtures::channel(app, &app.org.token, "SMS", "Line", "+4520009999").await;
    let contact = fixtures::contact(
        app,
        &app.org.token,
        json!({ "firstName": "Ann", "phone": "+4520001234" }),
    )
    .await;
    (channel, contact)
}

async fn responder(app: &TestApp, input: Value) -> Value {
    let data = app
        .data(&app.org.token, CREATE, json!({ "input": input }))
        .await;
    assert_eq!(
        data["createAutoResponder"]["userErrors"],
        json!([]),
        "{data}"
    );
    data["createAutoResponder"]["autoResponder"].clone()
}

async fn inbound_text(app: &TestApp, conversation: &str, text: &str) {
    let data = app
        .data(
            &app.org.token,
            "mutation($input: RecordInboundMessageInput!) { recordInboundMessage(input: $input) { message { id } userErrors { message } } }",
            json!({ "input": { "conversationId": conversation, "text": text } }),
        )
        .await;
    assert_eq!(
        data["recordInboundMessage"]["userErrors"],
        json!([]),
        "{data}"
    );
}

/// The conversation's messages as (direction, text) pairs, oldest first.
async fn thread(app: &TestApp, conversation: &str) -> Vec<(String, String)> {
    let data = app
        .data(&app.org.token, REPLY_TEXTS, json!({ "id": conversation }))
        .await;
    data["conversation"]["messages"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["direction"].as_str().unwrap().to_string(),
                m["text"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(d, t)| (d.to_string(), t.to_string()))
        .collect()
}

#[tokio::test]
async fn keyword_responders_answer_exact_and_contained_keywords_once_per_message() {
    let app = TestApp::spawn().await;
    let (channel, contact) = sms(&app).await;
    let hours = responder(
        &app,
        json!({ "channelId": channel, "name": "Hours", "trigger": "KEYWORD", "keywords": ["hours", "opening hours"],
                "matchKind": "CONTAINS", "body": "We are open 9-17." }),
    )
    .await;
    assert_eq!(
        (
            &hours["trigger"],
            &hours["matchKind"],
            &hours["keywords"],
            &hours["enabled"],
            &hours["channel"]
        ),
        (
            &json!("KEYWORD"),
            &json!("CONTAINS"),
            &json!(["hours", "opening hours"]),
            &json!(true),
            &json!({ "name": "Line" })
        )
    );
    responder(
        &app,
        json!({ "channelId": channel, "name": "Price", "trigger": "KEYWORD", "keywords": ["PRICE"], "body": "See example.com/prices" }),
    )
    .await;
    let conversation =
        fixtures::inbound(&app, &app.org.token, &channel, &contact, "Hi there").await;
    inbound_text(&app, &conversation, "What are your Opening Hours?").await;
    inbound_text(&app, &conversation, "price?").await;
    inbound_text(&app, &conversation, "what is the price").await;
    assert_eq!(
        thread(&app, &conversation).await,
        pairs(&[
            ("INBOUND", "Hi there"),
            ("INBOUND", "What are your Opening Hours?"),
            ("OUTBOUND", "We are open 9-17."),
            ("INBOUND", "price?"),
            ("OUTBOUND", "See example.com/prices"),
            ("INBOUND", "what is the price"),
        ])
    );
    // The reply is an ordinary outbound SMS from the system, to the contact, queued for delivery.
    let data = app
        .data(&app.org.token, REPLY_TEXTS, json!({ "id": conversation }))
        .await;
    let reply = &data["conversation"]["messages"]["nodes"][2];
    assert_eq!(
        (&reply["author"], &reply["to"], &reply["deliveryStatus"]),
        (
            &json!({ "__typename": "SystemAuthor" }),
            &json!(["+4520001234"]),
            &json!("QUEUED")
        )
    );
    assert_eq!(data["conversation"]["messageCount"], 6);
    assert_eq!(app.count("jobs WHERE kind = 'message.deliver'").await, 2);
    let counted = app
        .data(
            &app.org.token,
            "query($id: ID!) { node(id: $id) { ... on AutoResponder { replyCount } } }",
            json!({ "id": hours["id"] }),
        )
        .await;
    assert_eq!(counted["node"]["replyCount"], 1);

    // Disabled: it no longer answers.
    let disabled = app
        .data(
            &app.org.token,
            UPDATE,
            json!({ "input": { "id": hours["id"], "enabled": false } }),
        )
        .await;
    assert_eq!(
        disabled["updateAutoResponder"],
        json!({ "autoResponder": { "enabled": false, "keywords": ["hours", "opening hours"] }, "userErrors": [] })
    );
    inbound_text(&app, &conversation, "hours").await;
    assert_eq!(thread(&app, &conversation).await.len(), 7);
}

#[tokio::test]
async fn first_message_and_out_of_hours_responders_answer_within_their_dates() {
    let app = TestApp::spawn().await;
    let (channel, contact) = sms(&app).await;
    responder(
        &app,
        json!({ "channelId": channel, "name": "Welcome", "trigger": "FIRST_MESSAGE", "body": "Thanks, we will answer soon." }),
    )
    .await;
    // Closed every day, all day, in its own hours: it answers every conversation, once per
    // quiet period.
    let night = responder(
        &app,
        json!({ "channelId": channel, "name": "Night", "trigger": "OUT_OF_HOURS", "body": "We are closed.",
                "businessHours": { "timezone": "Europe/Copenhagen", "days": [] } }),
    )
    .await;
    assert_eq!(
        night["businessHours"],
        json!({ "timezone": "Europe/Copenhagen" })
    );
    let conversation = fixtures::inbound(&app, &app.org.token, &channel, &contact, "Hello?").await;
    inbound_text(&app, &conversation, "Anyone?").await;
    assert_eq!(
        thread(&app, &conversation).await,
        pairs(&[
            ("INBOUND", "Hello?"),
            ("OUTBOUND", "We are closed."),
            ("INBOUND", "Anyone?"),
        ]),
        "out of hours goes before first message, and answers once"
    );
    // Ended: it no longer answers; the first-message responder does, in a new conversation.
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let ended = app
        .data(
            &app.org.token,
            "mutation($input: UpdateAutoResponderInput!) { updateAutoResponder(input: $input) { userErrors { message } } }",
            json!({ "input": { "id": night["id"], "startsAt": "2020-01-01T00:00:00Z", "endsAt": past } }),
        )
        .await;
    assert_eq!(ended["updateAutoResponder"]["userErrors"], json!([]));
    let other = fixtures::contact(&app, &app.org.token, json!({ "phone": "+4520005678" })).await;
    let second = fixtures::inbound(&app, &app.org.token, &channel, &other, "Hi").await;
    inbound_text(&app, &second, "Again").await;
    assert_eq!(
        thread(&app, &second).await,
        pairs(&[
            ("INBOUND", "Hi"),
            ("OUTBOUND", "Thanks, we will answer soon."),
            ("INBOUND", "Again"),
        ])
    );
    // Open around the clock by the channel's hours: an out-of-hours responder without its own
    // hours stays quiet.
    let open_all_day: Vec<Value> = [
        "MONDAY",
        "TUESDAY",
        "WEDNESDAY",
        "THURSDAY",
        "FRIDAY",
        "SATURDAY",
        "SUNDAY",
    ]
    .iter()
    .map(|d| json!({ "day": d, "intervals": [{ "open": "00:00", "close": "24:00" }] }))
    .collect();
    let staffed = fixtures::channel(&app, &app.org.token, "SMS", "Staffed", "+4520008888").await;
    let set = app
        .data(
            &app.org.token,
            "mutation($input: UpdateChannelInput!) { updateChannel(input: $input) { userErrors { message } } }",
            json!({ "input": { "id": staffed, "businessHours": { "timezone": "America/New_York", "days": open_all_day } } }),
        )
        .await;
    assert_eq!(set["updateChannel"]["userErrors"], json!([]), "{set}");
    responder(
        &app,
        json!({ "channelId": staffed, "name": "Closed", "trigger": "OUT_OF_HOURS", "body": "Closed." }),
    )
    .await;
    let third = fixtures::inbound(&app, &app.org.token, &staffed, &contact, "Open?").await;
    assert_eq!(thread(&app, &third).await, pairs(&[("INBOUND", "Open?")]));
}

#[tokio::test]
async fn sms_stop_and_start_set_consent_and_answer_with_the_confirmation() {
    let app = TestApp::spawn().await;
    let (channel, contact) = sms(&app).await;
    let conversation = fixtures::inbound(&app, &app.org.token, &channel, &contact, "Hi").await;
    inbound_text(&app, &conversation, " Stop ").await;
    let consent = app
        .data(&app.org.token, CONSENT, json!({ "id": contact }))
        .await;
    assert_eq!(
        consent["contact"]["consent"],
        json!([{ "channel": "SMS", "status": "OPTED_OUT", "source": "SMS_KEYWORD:STOP" }])
    );
    // The configured confirmation replaces the default one.
    responder(
        &app,
        json!({ "channelId": channel, "name": "Welcome back", "trigger": "OPT_IN", "body": "Welcome back!" }),
    )
    .await;
    inbound_text(&app, &conversation, "start").await;
    let consent = app
        .data(&app.org.token, CONSENT, json!({ "id": contact }))
        .await;
    assert_eq!(
        consent["contact"]["consent"],
        json!([{ "channel": "SMS", "status": "OPTED_IN", "source": "SMS_KEYWORD:START" }])
    );
    // A sentence with the word is not a keyword.
    inbound_text(&app, &conversation, "please stop the noise").await;
    assert_eq!(
        thread(&app, &conversation).await,
        pairs(&[
            ("INBOUND", "Hi"),
            ("INBOUND", " Stop "),
            (
                "OUTBOUND",
                "You have been unsubscribed and will receive no more messages. Reply START to resubscribe."
            ),
            ("INBOUND", "start"),
            ("OUTBOUND", "Welcome back!"),
            ("INBOUND", "please stop the noise"),
        ])
    );
    assert_eq!(
        app.count("events WHERE event_type = 'CONTACT_CONSENT_CHANGED' AND actor_user_id IS NULL")
            .await,
        2
    );
    // Not on other channel types.
    let chat = fixtures::channel(&app, &app.org.token, "CHAT", "Chat", "widget-key-1").await;
    let on_chat = fixtures::inbound(&app, &app.org.token, &chat, &contact, "STOP").await;
    assert_eq!(thread(&app, &on_chat).await, pairs(&[("INBOUND", "STOP")]));
}

#[tokio::test]
async fn bad_auto_responders_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let (channel, _) = sms(&app).await;
    let chat = fixtures::channel(&app, &app.org.token, "CHAT", "Chat", "widget-key-2").await;
    let cases = [
        (
            json!({ "channelId": channel, "name": "K", "trigger": "KEYWORD", "body": "x" }),
            json!([{ "field": ["input", "keywords"], "message": "a KEYWORD responder needs at least one keyword", "code": "REQUIRED" }]),
        ),
        (
            json!({ "channelId": channel, "name": "K", "trigger": "KEYWORD", "keywords": ["stop"], "body": "x" }),
            json!([{ "field": ["input", "keywords", "0"], "message": "\"stop\" is an SMS consent keyword: set its confirmation with an OPT_OUT or OPT_IN responder", "code": "INVALID" }]),
        ),
        (
            json!({ "channelId": channel, "name": "N", "trigger": "OUT_OF_HOURS", "body": "x" }),
            json!([{ "field": ["input", "businessHours"], "message": "an OUT_OF_HOURS responder needs business hours: give them, or set the channel's", "code": "REQUIRED" }]),
        ),
        (
            json!({ "channelId": chat, "name": "O", "trigger": "OPT_OUT", "body": "x" }),
            json!([{ "field": ["input", "trigger"], "message": "OPT_OUT and OPT_IN responders are for SMS channels", "code": "INVALID" }]),
        ),
        (
            json!({ "channelId": channel, "name": "F", "trigger": "FIRST_MESSAGE", "body": " ", "keywords": ["a"],
                    "startsAt": "2030-01-02T00:00:00Z", "endsAt": "2030-01-01T00:00:00Z" }),
            json!([
                { "field": ["input", "body"], "message": "body must not be empty", "code": "REQUIRED" },
                { "field": ["input", "keywords"], "message": "only KEYWORD responders have keywords and a match kind", "code": "INVALID" },
                { "field": ["input", "endsAt"], "message": "endsAt must be after startsAt", "code": "INVALID" },
            ]),
        ),
    ];
    for (input, errors) in cases {
        let data = app
            .data(&app.org.token, CREATE, json!({ "input": input }))
            .await;
        assert_eq!(
            data["createAutoResponder"],
            json!({ "autoResponder": null, "userErrors": errors }),
            "{input}"
        );
    }
    assert_eq!(app.count("auto_responders").await, 0);
    // A second OPT_OUT on one channel.
    responder(
        &app,
        json!({ "channelId": channel, "name": "Bye", "trigger": "OPT_OUT", "body": "Bye" }),
    )
    .await;
    let again = app
        .data(
            &app.org.token,
            CREATE,
            json!({ "input": { "channelId": channel, "name": "Bye 2", "trigger": "OPT_OUT", "body": "Bye" } }),
        )
        .await;
    assert_eq!(
        again["createAutoResponder"]["userErrors"],
        json!([{ "field": ["input", "trigger"], "message": "the channel already has an OPT_OUT responder", "code": "TAKEN" }])
    );
    // Agents read but do not manage them.
    let (_, agent) = app.user_with_token("agent@example.test", &["AGENT"]).await;
    let refused = app
        .gql(
            &agent,
            CREATE,
            json!({ "input": { "channelId": channel, "name": "K", "trigger": "KEYWORD", "keywords": ["x"], "body": "x" } }),
        )
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let listed = app
        .data(
            &agent,
            "{ autoResponders { totalCount nodes { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["autoResponders"],
        json!({ "totalCount": 1, "nodes": [{ "name": "Bye" }] })
    );
    assert_eq!(app.count("auto_responders").await, 1);
    // Another organization sees none of them.
    let other = app.create_org("Other", "other", "owner@other.test").await;
    let theirs = app
        .data(&other.token, "{ autoResponders { totalCount } }", json!({}))
        .await;
    assert_eq!(theirs["autoResponders"]["totalCount"], 0);
}
