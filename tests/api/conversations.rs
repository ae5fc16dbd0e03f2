//! Conversations: creation, the status machine, routing actions, links, tags, attributes, ratings,
//! archive, participants, read positions, and their bad inputs.

use serde_json::{Value, json};

use crate::common::{TestApp, codes};
use crate::fixtures::{channel, contact, create_conversation, inbound, queue, sms_setup, tag};

const VIEW: &str = "query($id: ID!) { conversation(id: $id) {
    number status pendingUntil closeReason priority kind direction subject messageCount archived
    assignee { email } queue { name } parent { number } linkType
    rating { ratingType score comment } tags { name }
    customAttributes { identifier value }
    participants { participant { __typename ... on User { email } ... on Contact { name } } }
    unreadCount } }";

async fn view(app: &TestApp, token: &str, id: &str) -> Value {
    app.data(token, VIEW, json!({ "id": id })).await["conversation"].clone()
}

/// Runs a conversation mutation `name` with `input`; returns its payload.
async fn act(app: &TestApp, token: &str, name: &str, input_type: &str, input: Value) -> Value {
    let query = format!(
        "mutation($input: {input_type}!) {{ {name}(input: $input) {{
            conversation {{ number status assignee {{ email }} queue {{ name }} priority }}
            userErrors {{ field message code }} }} }}"
    );
    app.data(token, &query, json!({ "input": input })).await[name].clone()
}

async fn events(app: &TestApp, kind: &str) -> i64 {
    app.count(&format!("events WHERE event_type = '{kind}'"))
        .await
}

#[tokio::test]
async fn inbound_and_outbound_conversations_get_sequential_numbers() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (sms, ann) = sms_setup(&app).await;
    let support = queue(&app, &token, "Support").await;

    let first = create_conversation(
        &app,
        &token,
        json!({ "channelId": sms, "requesterId": ann, "subject": "Order 17",
                "queueId": support, "message": { "text": "Where is my order?" } }),
    )
    .await;
    assert_eq!(
        first,
        json!({
            "conversation": { "id": first["conversation"]["id"], "number": 1, "status": "OPEN",
                "direction": "INBOUND", "subject": "Order 17", "messageCount": 1 },
            "message": { "id": first["message"]["id"], "direction": "INBOUND", "text": "Where is my order?" },
            "userErrors": []
        })
    );
    let id = first["conversation"]["id"].as_str().unwrap();
    let data = app
        .data(
            &token,
            "query($id: ID!) { conversation(id: $id) { queue { name } assignee { email } waitingSince
                requester { name } channel { name } channelType lastMessage { text author { __typename ... on Contact { name } } } } }",
            json!({ "id": id }),
        )
        .await;
    let c = &data["conversation"];
    assert_eq!(c["queue"], json!({ "name": "Support" }));
    assert_eq!(c["assignee"], Value::Null);
    assert!(c["waitingSince"].is_string());
    assert_eq!(c["requester"], json!({ "name": "Ann Lee" }));
    assert_eq!(c["channelType"], "SMS");
    assert_eq!(c["channel"], json!({ "name": "Support line" }));
    assert_eq!(
        c["lastMessage"],
        json!({ "text": "Where is my order?", "author": { "__typename": "Contact", "name": "Ann Lee" } })
    );

    let second = create_conversation(
        &app,
        &token,
        json!({ "channelId": sms, "requesterId": ann, "direction": "OUTBOUND",
                "message": { "text": "Your order shipped" } }),
    )
    .await;
    assert_eq!(second["userErrors"], json!([]));
    assert_eq!(second["conversation"]["number"], 2);
    assert_eq!(second["conversation"]["direction"], "OUTBOUND");
    let id2 = second["conversation"]["id"].as_str().unwrap();
    let c = view(&app, &token, id2).await;
    assert_eq!(c["assignee"], json!({ "email": "owner@acme.test" }));
    assert_eq!(c["queue"], Value::Null);

    // Numbers are per organization.
    let other = app.create_org("Other", "other", "owner@other.test").await;
    let (o_sms, o_ann) = (
        channel(&app, &other.token, "SMS", "Other line", "+4520000001").await,
        contact(&app, &other.token, json!({ "phone": "+4520000009" })).await,
    );
    let payload = create_conversation(
        &app,
        &other.token,
        json!({ "channelId": o_sms, "requesterId": o_ann, "message": { "text": "hi" } }),
    )
    .await;
    assert_eq!(payload["conversation"]["number"], 1);

    let by_number = app
        .data(
            &token,
            "{ conversation(number: 2) { direction } }",
            json!({}),
        )
        .await;
    assert_eq!(
        by_number["conversation"],
        json!({ "direction": "OUTBOUND" })
    );
    let node = app
        .data(
            &token,
            "query($id: ID!) { node(id: $id) { ... on Conversation { number } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(node["node"], json!({ "number": 1 }));
    assert_eq!(events(&app, "CONVERSATION_CREATED").await, 3);
    assert_eq!(events(&app, "CONVERSATION_ENQUEUED").await, 1);
    assert_eq!(events(&app, "MESSAGE_ADDED").await, 3);
}

#[tokio::test]
async fn bad_conversation_inputs_change_nothing() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (sms, ann) = sms_setup(&app).await;
    let other = app.create_org("Other", "other", "owner@other.test").await;
    let foreign_channel = channel(&app, &other.token, "SMS", "Theirs", "+4520000003").await;
    let foreign_queue = queue(&app, &other.token, "Theirs").await;

    let cases = [
        (
            json!({ "channelId": foreign_channel, "requesterId": ann, "message": { "text": "x" } }),
            json!([{ "field": ["input", "channelId"], "message": "no such channel", "code": "NOT_FOUND" }]),
        ),
        (
            json!({ "channelId": sms, "requesterId": ann, "queueId": foreign_queue, "message": { "text": "x" } }),
            json!([{ "field": ["input", "queueId"], "message": "no such queue", "code": "NOT_FOUND" }]),
        ),
        (
            json!({ "channelId": sms, "requesterId": ann, "message": {} }),
            json!([{ "field": ["input", "message"], "message": "the first message needs text or HTML", "code": "REQUIRED" }]),
        ),
        (
            json!({ "channelId": sms, "requesterId": ann, "subject": "s".repeat(501), "message": { "text": "x" } }),
            json!([{ "field": ["input", "subject"], "message": "subject must be at most 500 characters", "code": "TOO_LONG" }]),
        ),
        (
            json!({ "channelId": sms, "requesterId": sms, "message": { "text": "x" } }),
            json!([{ "field": ["input", "requesterId"], "message": "expected an id of a Contact, got an id of a Channel", "code": "INVALID" }]),
        ),
    ];
    for (input, errors) in cases {
        let payload = create_conversation(&app, &token, input).await;
        assert_eq!(payload["userErrors"], errors, "{payload}");
        assert_eq!(payload["conversation"], Value::Null);
    }

    // An archived channel takes no new conversations.
    let archived = app
        .data(
            &token,
            "mutation($id: ID!) { archiveChannel(input: { id: $id }) { userErrors { code } } }",
            json!({ "id": sms }),
        )
        .await;
    assert_eq!(archived["archiveChannel"]["userErrors"], json!([]));
    let payload = create_conversation(
        &app,
        &token,
        json!({ "channelId": sms, "requesterId": ann, "message": { "text": "x" } }),
    )
    .await;
    assert_eq!(
        payload["userErrors"],
        json!([{ "field": ["input", "channelId"], "message": "the channel is archived", "code": "INVALID_STATE" }])
    );
    assert_eq!(app.count("conversations").await, 0);
    assert_eq!(app.count("messages").await, 0);
    assert_eq!(events(&app, "CONVERSATION_CREATED").await, 0);
}

#[tokio::test]
async fn claim_assign_and_transfer_follow_the_rules() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (sms, ann) = sms_setup(&app).await;
    let id = inbound(&app, &token, &sms, &ann, "hello").await;
    let (agent_id, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let (_, other_agent) = app.user_with_token("agent2@acme.test", &["AGENT"]).await;

    let claimed = act(
        &app,
        &agent,
        "claimConversation",
        "ClaimConversationInput",
        json!({ "conversationId": id }),
    )
    .await;
    assert_eq!(claimed["userErrors"], json!([]));
    assert_eq!(
        claimed["conversation"]["assignee"],
        json!({ "email": "agent@acme.test" })
    );

    // Claiming again as the assignee changes nothing and records nothing.
    act(
        &app,
        &agent,
        "claimConversation",
        "ClaimConversationInput",
        json!({ "conversationId": id }),
    )
    .await;
    assert_eq!(events(&app, "CONVERSATION_CLAIMED").await, 1);

    let refused = act(
        &app,
        &other_agent,
        "claimConversation",
        "ClaimConversationInput",
        json!({ "conversationId": id }),
    )
    .await;
    assert_eq!(
        refused,
        json!({ "conversation": null, "userErrors": [{ "field": ["input", "conversationId"],
            "message": "conversation 1 is assigned to someone else: claim with force to take it", "code": "CONFLICT" }] })
    );
    assert_eq!(
        view(&app, &token, &id).await["assignee"],
        json!({ "email": "agent@acme.test" })
    );
    assert_eq!(events(&app, "CONVERSATION_CLAIMED").await, 1);

    let forced = act(
        &app,
        &other_agent,
        "claimConversation",
        "ClaimConversationInput",
        json!({ "conversationId": id, "force": true }),
    )
    .await;
    assert_eq!(
        forced["conversation"]["assignee"],
        json!({ "email": "agent2@acme.test" })
    );

    let assigned = act(
        &app,
        &token,
        "assignConversation",
        "AssignConversationInput",
        json!({ "conversationId": id, "userId": agent_id }),
    )
    .await;
    assert_eq!(
        assigned["conversation"]["assignee"],
        json!({ "email": "agent@acme.test" })
    );
    let unassigned = act(
        &app,
        &token,
        "unassignConversation",
        "ConversationIdInput",
        json!({ "conversationId": id }),
    )
    .await;
    assert_eq!(unassigned["conversation"]["assignee"], Value::Null);
    let again = act(
        &app,
        &token,
        "unassignConversation",
        "ConversationIdInput",
        json!({ "conversationId": id }),
    )
    .await;
    assert_eq!(
        again["userErrors"],
        json!([{ "field": ["input", "conversationId"], "message": "conversation 1 is not assigned", "code": "INVALID_STATE" }])
    );

    // Transfer: another organization's queue is unknown; a real one unassigns.
    let other = app.create_org("Other", "other", "owner@other.test").await;
    let foreign = queue(&app, &other.token, "Theirs").await;
    let billing = queue(&app, &token, "Billing").await;
    act(
        &app,
        &token,
        "assignConversation",
        "AssignConversationInput",
        json!({ "conversationId": id, "userId": agent_id }),
    )
    .await;
    let refused = act(
        &app,
        &token,
        "transferConversation",
        "TransferConversationInput",
        json!({ "conversationId": id, "queueId": foreign }),
    )
    .await;
    assert_eq!(
        refused["userErrors"],
        json!([{ "field": ["input", "queueId"], "message": "no such queue", "code": "NOT_FOUND" }])
    );
    assert_eq!(events(&app, "CONVERSATION_TRANSFERRED").await, 0);
    let moved = act(
        &app,
        &token,
        "transferConversation",
        "TransferConversationInput",
        json!({ "conversationId": id, "queueId": billing }),
    )
    .await;
    assert_eq!(
        moved["conversation"],
        json!({ "number": 1, "status": "OPEN", "assignee": null, "queue": { "name": "Billing" }, "priority": "NORMAL" })
    );

    // Another organization can't act on it.
    let foreign_claim = act(
        &app,
        &other.token,
        "claimConversation",
        "ClaimConversationInput",
        json!({ "conversationId": id }),
    )
    .await;
    assert_eq!(
        foreign_claim["userErrors"],
        json!([{ "field": ["input", "conversationId"], "message": "no such conversation", "code": "NOT_FOUND" }])
    );
    let seen = app
        .data(
            &other.token,
            "query($id: ID!) { conversation(id: $id) { number } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(seen["conversation"], Value::Null);
}

#[tokio::test]
async fn status_machine_close_reopen_pending_and_expiry() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (sms, ann) = sms_setup(&app).await;
    let id = inbound(&app, &token, &sms, &ann, "hello").await;

    let reopen = act(
        &app,
        &token,
        "reopenConversation",
        "ConversationIdInput",
        json!({ "conversationId": id }),
    )
    .await;
    assert_eq!(
        reopen["userErrors"],
        json!([{ "field": ["input", "conversationId"], "message": "conversation 1 is already open", "code": "INVALID_STATE" }])
    );
    let closed = act(
        &app,
        &token,
        "closeConversation",
        "CloseConversationInput",
        json!({ "conversationId": id, "reason": "Solved" }),
    )
    .await;
    assert_eq!(closed["conversation"]["status"], "CLOSED");
    assert_eq!(view(&app, &token, &id).await["closeReason"], "Solved");
    let twice = act(
        &app,
        &token,
        "closeConversation",
        "CloseConversationInput",
        json!({ "conversationId": id }),
    )
    .await;
    assert_eq!(
        twice["userErrors"],
        json!([{ "field": ["input", "conversationId"], "message": "conversation 1 is already closed", "code": "INVALID_STATE" }])
    );
    let claim = act(
        &app,
        &token,
        "claimConversation",
        "ClaimConversationInput",
        json!({ "conversationId": id }),
    )
    .await;
    assert_eq!(claim["userErrors"][0]["code"], "INVALID_STATE");
    assert_eq!(events(&app, "CONVERSATION_CLOSED").await, 1);

    let reopened = act(
        &app,
        &token,
        "reopenConversation",
        "ConversationIdInput",
        json!({ "conversationId": id }),
    )
    .await;
    assert_eq!(reopened["conversation"]["status"], "OPEN");
    assert_eq!(view(&app, &token, &id).await["closeReason"], Value::Null);

    let past = act(
        &app,
        &token,
        "setConversationPending",
        "SetConversationPendingInput",
        json!({ "conversationId": id, "pendingUntil": "2020-01-01T00:00:00Z" }),
    )
    .await;
    assert_eq!(
        past["userErrors"],
        json!([{ "field": ["input", "pendingUntil"], "message": "pendingUntil must be in the future", "code": "INVALID" }])
    );
    let until = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let pending = act(
        &app,
        &token,
        "setConversationPending",
        "SetConversationPendingInput",
        json!({ "conversationId": id, "pendingUntil": until }),
    )
    .await;
    assert_eq!(pending["conversation"]["status"], "PENDING");
    assert_eq!(view(&app, &token, &id).await["pendingUntil"], json!(until));

    // The sweep reopens it once its time has come, not before.
    let db = &app.state.db;
    let sweep = switchboard::conversations::service::expire_pending;
    assert_eq!(sweep(db, chrono::Utc::now()).await.unwrap(), 0);
    assert_eq!(
        sweep(db, chrono::Utc::now() + chrono::Duration::hours(2))
            .await
            .unwrap(),
        1
    );
    let c = view(&app, &token, &id).await;
    assert_eq!(
        (c["status"].clone(), c["pendingUntil"].clone()),
        (json!("OPEN"), Value::Null)
    );
    assert_eq!(events(&app, "CONVERSATION_PENDING_EXPIRED").await, 1);

    // An inbound message reopens a pending conversation.
    act(
        &app,
        &token,
        "setConversationPending",
        "SetConversationPendingInput",
        json!({ "conversationId": id }),
    )
    .await;
    let conversation =
        switchboard::conversations::service::find(db, org_uuid(&app), conversation_uuid(&id), "id")
            .await
            .unwrap();
    let contact_id = conversation.requester_id;
    switchboard::messages::service::append(
        db,
        conversation,
        switchboard::messages::service::NewMessage::text(
            switchboard::conversations::Party::Contact(contact_id),
            switchboard::messages::service::Direction::Inbound,
            "any news?",
        ),
        None,
    )
    .await
    .unwrap();
    let c = view(&app, &token, &id).await;
    assert_eq!(
        (c["status"].clone(), c["messageCount"].clone()),
        (json!("OPEN"), json!(2))
    );
    assert_eq!(
        app.count("events WHERE event_type = 'CONVERSATION_REOPENED' AND CAST(payload AS TEXT) LIKE '%INBOUND_MESSAGE%'").await,
        1
    );
}

fn conversation_uuid(id: &str) -> uuid::Uuid {
    switchboard::graphql::relay::decode_id(id, "Conversation").unwrap()
}

fn org_uuid(app: &TestApp) -> uuid::Uuid {
    switchboard::graphql::relay::decode_id(&app.org.org_id, "Organization").unwrap()
}

#[tokio::test]
async fn links_refuse_self_and_cycles() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (sms, ann) = sms_setup(&app).await;
    let a = inbound(&app, &token, &sms, &ann, "a").await;
    let b = inbound(&app, &token, &sms, &ann, "b").await;
    let c = inbound(&app, &token, &sms, &ann, "c").await;
    let link = |child: &str, parent: &str, kind: &str| json!({ "conversationId": child, "parentId": parent, "linkType": kind });
    let own = act(
        &app,
        &token,
        "linkConversation",
        "LinkConversationInput",
        link(&a, &a, "FOLLOW_UP"),
    )
    .await;
    assert_eq!(
        own["userErrors"],
        json!([{ "field": ["input", "parentId"], "message": "a conversation can't be linked to itself", "code": "INVALID" }])
    );
    assert_eq!(
        act(
            &app,
            &token,
            "linkConversation",
            "LinkConversationInput",
            link(&b, &a, "FOLLOW_UP")
        )
        .await["userErrors"],
        json!([])
    );
    assert_eq!(
        act(
            &app,
            &token,
            "linkConversation",
            "LinkConversationInput",
            link(&c, &b, "SIDE_CONVERSATION")
        )
        .await["userErrors"],
        json!([])
    );
    let cycle = act(
        &app,
        &token,
        "linkConversation",
        "LinkConversationInput",
        link(&a, &c, "FORWARD"),
    )
    .await;
    assert_eq!(
        cycle["userErrors"],
        json!([{ "field": ["input", "parentId"], "message": "conversation 3 is linked below conversation 1: linking would make a cycle", "code": "INVALID" }])
    );
    assert_eq!(view(&app, &token, &a).await["parent"], Value::Null);
    let cv = view(&app, &token, &c).await;
    assert_eq!(
        (cv["parent"].clone(), cv["linkType"].clone()),
        (json!({ "number": 2 }), json!("SIDE_CONVERSATION"))
    );
    assert_eq!(events(&app, "CONVERSATION_LINKED").await, 2);
}

#[tokio::test]
async fn priority_tags_attributes_rating_and_archive() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (sms, ann) = sms_setup(&app).await;
    let id = inbound(&app, &token, &sms, &ann, "hello").await;

    let urgent = act(
        &app,
        &token,
        "setConversationPriority",
        "SetConversationPriorityInput",
        json!({ "conversationId": id, "priority": "URGENT" }),
    )
    .await;
    assert_eq!(urgent["conversation"]["priority"], "URGENT");

    let vip = tag(&app, &token, "VIP").await;
    let billing = tag(&app, &token, "Billing").await;
    let tagged = act(
        &app,
        &token,
        "tagConversation",
        "ConversationTagsInput",
        json!({ "conversationId": id, "tagIds": [vip, billing, vip] }),
    )
    .await;
    assert_eq!(tagged["userErrors"], json!([]));
    assert_eq!(
        view(&app, &token, &id).await["tags"],
        json!([{ "name": "Billing" }, { "name": "VIP" }])
    );
    act(
        &app,
        &token,
        "untagConversation",
        "ConversationTagsInput",
        json!({ "conversationId": id, "tagIds": [vip] }),
    )
    .await;
    assert_eq!(
        view(&app, &token, &id).await["tags"],
        json!([{ "name": "Billing" }])
    );
    assert_eq!(events(&app, "CONVERSATION_TAG_ADDED").await, 2);
    assert_eq!(events(&app, "CONVERSATION_TAG_REMOVED").await, 1);

    let defined = app
        .data(
            &token,
            "mutation { createCustomAttributeDefinition(input: { entity: CONVERSATION, identifier: \"order\", label: \"Order\", valueType: NUMBER }) { userErrors { message } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        defined["createCustomAttributeDefinition"]["userErrors"],
        json!([])
    );
    let bad = act(&app, &token, "setConversationAttributes", "SetConversationAttributesInput",
        json!({ "conversationId": id, "values": [{ "identifier": "order", "value": "seventeen" }, { "identifier": "color", "value": "red" }] })).await;
    assert_eq!(
        bad["userErrors"],
        json!([
            { "field": ["input", "values", "0", "value"], "message": "order expects a NUMBER value, got a string", "code": "INVALID" },
            { "field": ["input", "values", "1", "identifier"], "message": "no conversation attribute \"color\"", "code": "NOT_FOUND" }
        ])
    );
    act(
        &app,
        &token,
        "setConversationAttributes",
        "SetConversationAttributesInput",
        json!({ "conversationId": id, "values": [{ "identifier": "order", "value": 17 }] }),
    )
    .await;
    assert_eq!(
        view(&app, &token, &id).await["customAttributes"],
        json!([{ "identifier": "order", "value": 17.0 }])
    );

    let rate = |input: Value| {
        act(
            &app,
            &token,
            "rateConversation",
            "RateConversationInput",
            input,
        )
    };
    let bad = rate(json!({ "conversationId": id, "csat": 6 })).await;
    assert_eq!(
        bad["userErrors"],
        json!([{ "field": ["input", "csat"], "message": "a CSAT score is 1 to 5, got 6", "code": "INVALID" }])
    );
    let both = rate(json!({ "conversationId": id, "csat": 4, "thumbs": "UP" })).await;
    assert_eq!(
        both["userErrors"][0]["message"],
        "give exactly one of csat and thumbs"
    );
    assert_eq!(
        rate(json!({ "conversationId": id, "csat": 4, "comment": "Quick!" })).await["userErrors"],
        json!([])
    );
    let twice = rate(json!({ "conversationId": id, "thumbs": "DOWN" })).await;
    assert_eq!(
        twice["userErrors"],
        json!([{ "field": ["input", "conversationId"], "message": "conversation 1 is already rated", "code": "INVALID_STATE" }])
    );
    assert_eq!(
        view(&app, &token, &id).await["rating"],
        json!({ "ratingType": "CSAT", "score": 4, "comment": "Quick!" })
    );
    assert_eq!(events(&app, "CONVERSATION_RATED").await, 1);

    let inbox = "{ conversations { nodes { number } } archived: conversations(filter: { archived: true }) { nodes { number } } }";
    act(
        &app,
        &token,
        "archiveConversation",
        "ConversationIdInput",
        json!({ "conversationId": id }),
    )
    .await;
    assert_eq!(
        app.data(&token, inbox, json!({})).await,
        json!({ "conversations": { "nodes": [] }, "archived": { "nodes": [{ "number": 1 }] } })
    );
    let again = act(
        &app,
        &token,
        "archiveConversation",
        "ConversationIdInput",
        json!({ "conversationId": id }),
    )
    .await;
    assert_eq!(
        again["userErrors"][0]["message"],
        "conversation 1 is already archived"
    );
    act(
        &app,
        &token,
        "unarchiveConversation",
        "ConversationIdInput",
        json!({ "conversationId": id }),
    )
    .await;
    assert_eq!(
        app.data(&token, inbox, json!({})).await["conversations"]["nodes"],
        json!([{ "number": 1 }])
    );
}

#[tokio::test]
async fn group_conversations_have_participants() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (sms, ann) = sms_setup(&app).await;
    let bob = contact(
        &app,
        &token,
        json!({ "firstName": "Bob", "phone": "+4520000004" }),
    )
    .await;
    let (agent_id, _) = app.user_with_token("agent@acme.test", &["AGENT"]).await;

    let direct = inbound(&app, &token, &sms, &ann, "hi").await;
    let refused = act(
        &app,
        &token,
        "addConversationParticipants",
        "AddConversationParticipantsInput",
        json!({ "conversationId": direct, "contactIds": [bob] }),
    )
    .await;
    assert_eq!(
        refused["userErrors"],
        json!([{ "field": ["input", "conversationId"], "message": "conversation 1 is not a GROUP conversation", "code": "INVALID_STATE" }])
    );

    let group = create_conversation(
        &app,
        &token,
        json!({ "channelId": sms, "requesterId": ann, "kind": "GROUP", "direction": "OUTBOUND",
                "participants": { "contactIds": [bob] }, "message": { "text": "Welcome both" } }),
    )
    .await;
    assert_eq!(group["userErrors"], json!([]));
    let group = group["conversation"]["id"].as_str().unwrap().to_string();
    act(
        &app,
        &token,
        "addConversationParticipants",
        "AddConversationParticipantsInput",
        json!({ "conversationId": group, "userIds": [agent_id], "contactIds": [bob] }),
    )
    .await;
    assert_eq!(
        view(&app, &token, &group).await["participants"],
        json!([
            { "participant": { "__typename": "Contact", "name": "Bob" } },
            { "participant": { "__typename": "User", "email": "agent@acme.test" } }
        ])
    );
    let missing = act(
        &app,
        &token,
        "removeConversationParticipants",
        "RemoveConversationParticipantsInput",
        json!({ "conversationId": group, "participantIds": [ann] }),
    )
    .await;
    assert_eq!(
        missing["userErrors"],
        json!([{ "field": ["input", "participantIds", "0"], "message": "not a participant of this conversation", "code": "NOT_FOUND" }])
    );
    act(
        &app,
        &token,
        "removeConversationParticipants",
        "RemoveConversationParticipantsInput",
        json!({ "conversationId": group, "participantIds": [bob] }),
    )
    .await;
    assert_eq!(
        view(&app, &token, &group).await["participants"],
        json!([{ "participant": { "__typename": "User", "email": "agent@acme.test" } }])
    );
    assert_eq!(events(&app, "PARTICIPANT_ADDED").await, 2);
    assert_eq!(events(&app, "PARTICIPANT_REMOVED").await, 1);
}

#[tokio::test]
async fn unread_counts_are_per_viewer() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (sms, ann) = sms_setup(&app).await;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let id = inbound(&app, &token, &sms, &ann, "one").await;
    let read = "query($id: ID!) { conversation(id: $id) { unreadCount lastReadAt } }";
    assert_eq!(
        app.data(&agent, read, json!({ "id": id })).await["conversation"]["unreadCount"],
        1
    );
    let marked = act(
        &app,
        &agent,
        "markConversationRead",
        "MarkConversationReadInput",
        json!({ "conversationId": id }),
    )
    .await;
    assert_eq!(marked["userErrors"], json!([]));
    let after = app.data(&agent, read, json!({ "id": id })).await;
    assert_eq!(after["conversation"]["unreadCount"], 0);
    assert!(after["conversation"]["lastReadAt"].is_string());
    // The owner has not read it.
    assert_eq!(
        app.data(&token, read, json!({ "id": id })).await["conversation"]["unreadCount"],
        1
    );
    // Reading "up to" an earlier time never moves the position back.
    act(
        &app,
        &agent,
        "markConversationRead",
        "MarkConversationReadInput",
        json!({ "conversationId": id, "readAt": "2020-01-01T00:00:00Z" }),
    )
    .await;
    assert_eq!(app.data(&agent, read, json!({ "id": id })).await, after);
}

#[tokio::test]
async fn anonymizing_a_conversation_needs_closing_or_force() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (sms, ann) = sms_setup(&app).await;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let id = create_conversation(&app, &token,
        json!({ "channelId": sms, "requesterId": ann, "subject": "Ann's address", "message": { "text": "I live at 1 Main St" } })).await;
    let id = id["conversation"]["id"].as_str().unwrap().to_string();
    let anonymize =
        "mutation($input: AnonymizeConversationInput!) { anonymizeConversation(input: $input) {
        request { targetType status force erasedMessages closedConversations }
        conversation { status closeReason subject anonymizedAt lastMessage { text } }
        userErrors { field message code } } }";

    let body = app
        .gql(
            &agent,
            anonymize,
            json!({ "input": { "conversationId": id } }),
        )
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"]);
    let refused = app
        .data(
            &token,
            anonymize,
            json!({ "input": { "conversationId": id } }),
        )
        .await;
    assert_eq!(
        refused["anonymizeConversation"]["userErrors"],
        json!([{ "field": ["input", "force"], "message": "conversation 1 is not closed; close it or pass force", "code": "CONFLICT" }])
    );
    assert_eq!(view(&app, &token, &id).await["subject"], "Ann's address");

    let done = app
        .data(
            &token,
            anonymize,
            json!({ "input": { "conversationId": id, "force": true } }),
        )
        .await;
    let done = &done["anonymizeConversation"];
    assert_eq!(done["userErrors"], json!([]));
    assert_eq!(
        done["request"],
        json!({ "targetType": "CONVERSATION", "status": "COMPLETED", "force": true, "erasedMessages": 1, "closedConversations": 1 })
    );
    assert_eq!(done["conversation"]["status"], "CLOSED");
    assert_eq!(done["conversation"]["closeReason"], "ANONYMIZED");
    assert_eq!(done["conversation"]["subject"], Value::Null);
    assert_eq!(done["conversation"]["lastMessage"], json!({ "text": null }));
    let again = app
        .data(
            &token,
            anonymize,
            json!({ "input": { "conversationId": id, "force": true } }),
        )
        .await;
    assert_eq!(
        again["anonymizeConversation"]["userErrors"],
        json!([{ "field": ["input", "conversationId"], "message": "the conversation is already anonymized", "code": "INVALID_STATE" }])
    );
    let reopen = act(
        &app,
        &token,
        "reopenConversation",
        "ConversationIdInput",
        json!({ "conversationId": id }),
    )
    .await;
    assert_eq!(
        reopen["userErrors"][0]["message"],
        "conversation 1 is anonymized"
    );
    assert_eq!(events(&app, "CONVERSATION_ANONYMIZED").await, 1);
}

#[tokio::test]
async fn outbound_conversations_respect_opt_outs_and_address_the_contact() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (sms, ann) = sms_setup(&app).await;
    let started = create_conversation(
        &app,
        &token,
        json!({ "channelId": sms, "requesterId": ann, "direction": "OUTBOUND", "message": { "text": "Your code is 1234" } }),
    )
    .await;
    let message = started["message"]["id"].clone();
    let data = app
        .data(
            &token,
            "query($id: ID!) { message(id: $id) { from to deliveryStatus } conversation(number: 1) { requester { lastContactedAt } } }",
            json!({ "id": message }),
        )
        .await;
    assert_eq!(
        data["message"],
        json!({ "from": "+4520000001", "to": ["+4520000002"], "deliveryStatus": "QUEUED" })
    );
    assert!(data["conversation"]["requester"]["lastContactedAt"].is_string());

    let consent = app
        .data(
            &token,
            "mutation($input: SetContactConsentInput!) { setContactConsent(input: $input) { userErrors { code } } }",
            json!({ "input": { "contactId": ann, "channel": "SMS", "status": "OPTED_OUT", "source": "STOP" } }),
        )
        .await;
    assert_eq!(consent["setContactConsent"]["userErrors"], json!([]));
    let refused = create_conversation(
        &app,
        &token,
        json!({ "channelId": sms, "requesterId": ann, "direction": "OUTBOUND", "message": { "text": "Sale!" } }),
    )
    .await;
    assert_eq!(
        refused["userErrors"],
        json!([{ "field": ["input", "requesterId"], "code": "INVALID_STATE",
            "message": "the contact opted out of SMS messages; nothing can be sent to them there until they opt in again" }])
    );
    assert_eq!(app.count("conversations").await, 1);
    assert_eq!(app.count("messages").await, 1);
    // The contact can still write in.
    inbound(&app, &token, &sms, &ann, "STOP means stop").await;
}
