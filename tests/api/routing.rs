//! Routing of queued conversations: offers by the queue's algorithm, timeouts on a controlled
//! clock, accept and decline, wrap-up, and one offer round per conversation.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::fixtures::inbound;
use crate::live::{Socket, connected, next, next_data, subscribe_to};

const OFFERED: &str = "subscription($after: String) { conversationOffered(after: $after) { cursor change offer { id status exclusive expiresAt user { email } conversation { id } } } }";

/// An agent online (a websocket open) and working on SMS, subscribed to their offers.
async fn agent(app: &TestApp, email: &str) -> (String, String, Socket) {
    let (id, token) = app.user_with_token(email, &["AGENT"]).await;
    let socket_token = token.clone();
    let mut socket = connected(app, &socket_token).await;
    let data = app
        .data(
            &token,
            "mutation($input: SetPresenceInput!) { setPresence(input: $input) { userErrors { message } } }",
            json!({ "input": { "activeChannels": ["SMS"] } }),
        )
        .await;
    assert_eq!(data["setPresence"]["userErrors"], json!([]));
    // From the log's end: no offer made from here on is missed, however late the server
    // starts the subscription.
    let after = app.log_end_cursor().await;
    subscribe_to(&mut socket, "o", OFFERED, json!({ "after": after })).await;
    (id, token, socket)
}

/// A queue with `settings` and members (user id, priority).
async fn queue(app: &TestApp, settings: Value, members: &[(&str, i32)]) -> String {
    let data = app
        .data(
            &app.org.token,
            "mutation($input: QueueSettingsInput!) { createQueue(input: $input) { queue { id } userErrors { message } } }",
            json!({ "input": settings }),
        )
        .await;
    let id = data["createQueue"]["queue"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let members: Vec<Value> = members
        .iter()
        .map(|(user, priority)| json!({ "userId": user, "priority": priority }))
        .collect();
    let data = app
        .data(
            &app.org.token,
            "mutation($input: QueueMembersInput!) { addQueueMembers(input: $input) { userErrors { message } } }",
            json!({ "input": { "queueId": id, "members": members } }),
        )
        .await;
    assert_eq!(data["addQueueMembers"]["userErrors"], json!([]));
    id
}

/// A new inbound conversation moved into `queue`.
async fn queued(app: &TestApp, queue: &str, phone: &str) -> String {
    let token = app.org.token.clone();
    let line = phone.replace("+4520", "+4530");
    let channel = crate::fixtures::channel(app, &token, "SMS", "Line", &line).await;
    let contact = crate::fixtures::contact(app, &token, json!({ "phone": phone })).await;
    let conversation = inbound(app, &token, &channel, &contact, "help").await;
    let data = app
        .data(
            &token,
            "mutation($input: TransferConversationInput!) { transferConversation(input: $input) { userErrors { message } } }",
            json!({ "input": { "conversationId": conversation, "queueId": queue } }),
        )
        .await;
    assert_eq!(data["transferConversation"]["userErrors"], json!([]));
    conversation
}

/// The sequence number of an event cursor (`event:<seq>`, base64url without padding).
fn event_seq(cursor: &str) -> i64 {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .expect("base64url cursor");
    String::from_utf8(bytes)
        .ok()
        .and_then(|text| text.strip_prefix("event:")?.parse().ok())
        .unwrap_or_else(|| panic!("not an event cursor: {cursor}"))
}

/// The next offer event: (change, offer).
async fn offer_event(socket: &mut Socket) -> (String, Value) {
    let event = next_data(socket, "o").await["conversationOffered"].clone();
    (
        event["change"].as_str().unwrap().to_string(),
        event["offer"].clone(),
    )
}

async fn answer(app: &TestApp, token: &str, mutation: &str, offer: &str) -> Value {
    let query = format!(
        "mutation($input: OfferIdInput!) {{ {mutation}(input: $input) {{ offer {{ status }} userErrors {{ field code message }} }} }}"
    );
    app.data(token, &query, json!({ "input": { "offerId": offer } }))
        .await[mutation]
        .clone()
}

fn refused(code: &str, message: &str) -> Value {
    json!({ "offer": null, "userErrors": [{ "field": ["input", "offerId"], "code": code, "message": message }] })
}

#[tokio::test]
async fn one_at_a_time_by_priority_moves_on_when_an_offer_times_out() {
    let app = TestApp::spawn().await;
    // The clock stands at a whole second of today (closing a conversation stamps real time,
    // which wrap-up compares with).
    let t0 = Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap();
    app.state.clock.set(t0);
    let at = |seconds: i64| (t0 + chrono::Duration::seconds(seconds)).to_rfc3339();
    let (a, a_token, mut a_socket) = agent(&app, "a@acme.test").await;
    let (b, b_token, mut b_socket) = agent(&app, "b@acme.test").await;
    let q = queue(
        &app,
        json!({ "name": "Support", "offerAlgorithm": "AGENT_PRIORITY_ONE_AT_A_TIME_RANDOM", "offerTimeout": 20, "wrapupTimeout": 60 }),
        &[(&a, 0), (&b, 1)],
    )
    .await;
    let first = queued(&app, &q, "+4520000010").await;

    // A has the better priority: the offer is A's alone.
    let (change, offer) = offer_event(&mut a_socket).await;
    assert_eq!(change, "OFFERED");
    assert_eq!(
        offer,
        json!({
            "id": offer["id"], "status": "PENDING", "exclusive": true,
            "expiresAt": at(20),
            "user": { "email": "a@acme.test" }, "conversation": { "id": first },
        })
    );
    let a_offer = offer["id"].as_str().unwrap().to_string();

    // B cannot take A's offer; nothing changes.
    assert_eq!(
        answer(&app, &b_token, "acceptOffer", &a_offer).await,
        refused("FORBIDDEN", "this offer was made to another agent")
    );
    let mine = app
        .data(&a_token, "{ myOffers { id status } }", json!({}))
        .await;
    assert_eq!(
        mine["myOffers"],
        json!([{ "id": a_offer, "status": "PENDING" }])
    );

    // Twenty seconds pass: A's offer lapses and B gets one.
    app.state.clock.advance(chrono::Duration::seconds(21));
    switchboard::routing::tick(&app.state).await.unwrap();
    let (change, offer) = offer_event(&mut a_socket).await;
    assert_eq!(
        (change.as_str(), &offer["status"]),
        ("TIMED_OUT", &json!("TIMED_OUT"))
    );
    let (change, offer) = offer_event(&mut b_socket).await;
    assert_eq!(change, "OFFERED");
    assert_eq!(offer["expiresAt"], at(41));
    let b_offer = offer["id"].as_str().unwrap().to_string();
    assert_eq!(
        answer(&app, &a_token, "acceptOffer", &a_offer).await,
        refused("INVALID_STATE", "the offer is timed out")
    );

    // B accepts: the conversation is B's.
    let accepted = app
        .data(
            &b_token,
            "mutation($input: OfferIdInput!) { acceptOffer(input: $input) { offer { status } conversation { assignee { email } } userErrors { message } } }",
            json!({ "input": { "offerId": b_offer } }),
        )
        .await;
    assert_eq!(
        accepted["acceptOffer"],
        json!({ "offer": { "status": "ACCEPTED" }, "conversation": { "assignee": { "email": "b@acme.test" } }, "userErrors": [] })
    );
    assert_eq!(offer_event(&mut b_socket).await.0, "ACCEPTED");
    let timeline = app
        .data(
            &app.org.token,
            "query($id: ID!) { node(id: $id) { ... on Conversation { activity(first: 50) { nodes { type user { email } } } } } }",
            json!({ "id": first }),
        )
        .await;
    let routing: Vec<Value> = timeline["node"]["activity"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"].as_str().unwrap().starts_with("OFFER") || n["type"] == "CLAIMED")
        .cloned()
        .collect();
    assert_eq!(
        routing,
        [
            json!({ "type": "OFFERED", "user": { "email": "a@acme.test" } }),
            json!({ "type": "OFFER_TIMED_OUT", "user": { "email": "a@acme.test" } }),
            json!({ "type": "OFFERED", "user": { "email": "b@acme.test" } }),
            json!({ "type": "OFFER_ACCEPTED", "user": { "email": "b@acme.test" } }),
            json!({ "type": "CLAIMED", "user": { "email": "b@acme.test" } }),
        ]
    );

    // B closes it and is in wrap-up for a minute: the next conversation goes to A.
    let data = app
        .data(
            &b_token,
            "mutation($input: CloseConversationInput!) { closeConversation(input: $input) { userErrors { message } } }",
            json!({ "input": { "conversationId": first } }),
        )
        .await;
    assert_eq!(data["closeConversation"]["userErrors"], json!([]));
    let second = queued(&app, &q, "+4520000011").await;
    let (change, offer) = offer_event(&mut a_socket).await;
    assert_eq!(
        (change.as_str(), &offer["conversation"]["id"]),
        ("OFFERED", &json!(second))
    );
    // A declines; B is still wrapping up: nobody is offered it.
    let declined = answer(
        &app,
        &a_token,
        "declineOffer",
        offer["id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        declined,
        json!({ "offer": { "status": "DECLINED" }, "userErrors": [] })
    );
    assert_eq!(offer_event(&mut a_socket).await.0, "DECLINED");
    assert_eq!(switchboard::routing::tick(&app.state).await.unwrap(), 0);
    // After the wrap-up, B gets it.
    app.state.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(switchboard::routing::tick(&app.state).await.unwrap(), 1);
    let (change, offer) = offer_event(&mut b_socket).await;
    assert_eq!(
        (change.as_str(), &offer["conversation"]["id"]),
        ("OFFERED", &json!(second))
    );
}

#[tokio::test]
async fn all_at_once_offers_everyone_and_withdraws_the_rest_on_accept() {
    let app = TestApp::spawn().await;
    let (a, a_token, mut a_socket) = agent(&app, "a@acme.test").await;
    let (b, _, mut b_socket) = agent(&app, "b@acme.test").await;
    // C is a member but away: not offered.
    let (c, c_token, mut c_socket) = agent(&app, "c@acme.test").await;
    let data = app
        .data(
            &c_token,
            "mutation { setPresence(input: { presenceStatus: AWAY }) { userErrors { message } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["setPresence"]["userErrors"], json!([]));
    let q = queue(
        &app,
        json!({ "name": "Sales", "offerAlgorithm": "ALL_AT_ONCE" }),
        &[(&a, 0), (&b, 5), (&c, 0)],
    )
    .await;
    let conversation = queued(&app, &q, "+4520000012").await;
    let (change, a_offer) = offer_event(&mut a_socket).await;
    assert_eq!(
        (change.as_str(), &a_offer["exclusive"]),
        ("OFFERED", &json!(false))
    );
    let (change, _) = offer_event(&mut b_socket).await;
    assert_eq!(change, "OFFERED");
    let accepted = answer(
        &app,
        &a_token,
        "acceptOffer",
        a_offer["id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        accepted,
        json!({ "offer": { "status": "ACCEPTED" }, "userErrors": [] })
    );
    let (change, offer) = offer_event(&mut b_socket).await;
    assert_eq!(
        (change.as_str(), &offer["status"]),
        ("WITHDRAWN", &json!("WITHDRAWN"))
    );
    assert_eq!(offer["conversation"]["id"], conversation.as_str());
    // C never heard of it.
    let nothing = tokio::time::timeout(Duration::from_millis(300), next(&mut c_socket)).await;
    assert!(nothing.is_err(), "no offer for an agent who is away");
}

#[tokio::test]
async fn concurrent_routing_makes_one_offer_round() {
    let app = TestApp::spawn().await;
    let (a, _, mut a_socket) = agent(&app, "a@acme.test").await;
    let (b, _, mut b_socket) = agent(&app, "b@acme.test").await;
    let q = queue(
        &app,
        json!({ "name": "Support", "offerAlgorithm": "LONGEST_IDLE" }),
        &[(&a, 0), (&b, 0)],
    )
    .await;
    let conversation = queued(&app, &q, "+4520000013").await;
    // The router offers it to one of them (neither was ever assigned: the first by id).
    let (_, offer) = tokio::select! {
        event = offer_event(&mut a_socket) => event,
        event = offer_event(&mut b_socket) => event,
    };
    assert_eq!(offer["exclusive"], true);
    // Two more routings at once (as two instances would) add nothing.
    let id = switchboard::graphql::relay::decode_id(&conversation, "Conversation").unwrap();
    let now = app.state.clock.now();
    let (x, y) = tokio::join!(
        switchboard::routing::service::route(&app.state.db, id, now),
        switchboard::routing::service::route(&app.state.db, id, now),
    );
    assert_eq!((x.unwrap().len(), y.unwrap().len()), (0, 0));
    assert_eq!(app.count("conversation_offers").await, 1);
    // And the database itself refuses a second pending exclusive offer of it (to the other
    // agent). The same row as declined is accepted: it is the index that refuses.
    use sea_orm::ConnectionTrait;
    let insert = |id: &str, status: &str| {
        format!(
            "INSERT INTO conversation_offers \
             (id, org_id, conversation_id, queue_id, user_id, single, status, offered_at, expires_at) \
             SELECT o.{id}, o.org_id, o.conversation_id, o.queue_id, u.id, o.single, '{status}', \
             o.offered_at, o.expires_at FROM conversation_offers o JOIN users u \
             ON u.id <> o.user_id AND u.email IN ('a@acme.test', 'b@acme.test')"
        )
    };
    let db = &app.state.db;
    db.execute_unprepared(&insert("conversation_id", "DECLINED"))
        .await
        .unwrap();
    assert_eq!(app.count("conversation_offers").await, 2);
    let second = db.execute_unprepared(&insert("queue_id", "PENDING")).await;
    assert!(
        second.is_err(),
        "a second pending exclusive offer is refused"
    );
    assert_eq!(app.count("conversation_offers").await, 2);
}

#[tokio::test]
async fn queue_stats_follow_waiting_conversations_and_agents() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (a, a_token, _a_socket) = agent(&app, "a@acme.test").await;
    let q = queue(
        &app,
        json!({ "name": "Support", "offerAlgorithm": "ALL_AT_ONCE" }),
        &[(&a, 0)],
    )
    .await;
    let fields = "queue { name } waitingCount agentsOnline agentsAvailable";
    let query = format!(
        "query($q: [ID!]) {{ queueStats(queueIds: $q) {{ {fields} longestWaitSeconds }} }}"
    );
    let now = app.data(&token, &query, json!({ "q": [q] })).await;
    assert_eq!(
        now["queueStats"],
        json!([{ "queue": { "name": "Support" }, "waitingCount": 0, "agentsOnline": 1, "agentsAvailable": 1, "longestWaitSeconds": null }])
    );
    let mut socket = connected(&app, &token).await;
    let subscription = format!(
        "subscription($q: [ID!]) {{ queueStats(queueIds: $q) {{ cursor stats {{ {fields} longestWaitSeconds }} }} }}"
    );
    subscribe_to(&mut socket, "s", &subscription, json!({ "q": [q] })).await;
    let figures = |data: Value| {
        let stats = data["queueStats"]["stats"][0].clone();
        let wait = stats["longestWaitSeconds"].as_i64();
        assert!(
            wait.is_none() || wait.is_some_and(|w| (0..=5).contains(&w)),
            "{stats}"
        );
        (
            stats["waitingCount"].as_i64().unwrap(),
            stats["agentsOnline"].as_i64().unwrap(),
            stats["agentsAvailable"].as_i64().unwrap(),
            wait.is_some(),
        )
    };

    // Only changes from the figures read when the subscription started are delivered: one that
    // started late would miss a change made before. The agent steps away and back until the
    // return (the latest event) is delivered: then it is live, and nothing is left on its way.
    let presence = |status: &'static str| {
        let (app, a_token) = (&app, a_token.clone());
        async move {
            let query = format!(
                "mutation {{ setPresence(input: {{ presenceStatus: {status} }}) {{ userErrors {{ message }} }} }}"
            );
            let data = app.data(&a_token, &query, json!({})).await;
            assert_eq!(data["setPresence"]["userErrors"], json!([]));
        }
    };
    let mut live = false;
    for _ in 0..30 {
        presence("AWAY").await;
        presence("WORKING").await;
        let back = event_seq(&app.log_end_cursor().await);
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(data) = tokio::time::timeout_at(until, next_data(&mut socket, "s")).await {
            let seq = event_seq(data["queueStats"]["cursor"].as_str().expect("cursor"));
            let (waiting, online, available, _) = figures(data);
            assert_eq!((waiting, online), (0, 1));
            if seq >= back {
                assert_eq!(available, 1, "back at work");
                live = true;
                break;
            }
        }
        if live {
            break;
        }
    }
    assert!(live, "the subscription never reported the agent's return");

    // A conversation enters the queue (only changes are delivered: creating it elsewhere first
    // changes nothing here).
    let conversation = queued(&app, &q, "+4520000014").await;
    assert_eq!(figures(next_data(&mut socket, "s").await), (1, 1, 1, true));
    // The agent steps away.
    let data = app
        .data(
            &a_token,
            "mutation { setPresence(input: { presenceStatus: AWAY }) { userErrors { message } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["setPresence"]["userErrors"], json!([]));
    assert_eq!(figures(next_data(&mut socket, "s").await), (1, 1, 0, true));
    // Someone takes the conversation.
    let data = app
        .data(
            &token,
            "mutation($input: ClaimConversationInput!) { claimConversation(input: $input) { userErrors { message } } }",
            json!({ "input": { "conversationId": conversation } }),
        )
        .await;
    assert_eq!(data["claimConversation"]["userErrors"], json!([]));
    assert_eq!(figures(next_data(&mut socket, "s").await), (0, 1, 0, false));
}

#[tokio::test]
async fn the_sweep_withdraws_offers_gone_stale_and_offers_conversations_left_waiting() {
    let app = TestApp::spawn().await;
    let (a, _, mut a_socket) = agent(&app, "a@acme.test").await;
    let q = queue(
        &app,
        json!({ "name": "Sales", "offerAlgorithm": "ALL_AT_ONCE" }),
        &[(&a, 0)],
    )
    .await;
    let conversation = queued(&app, &q, "+4520000031").await;
    let (change, offer) = offer_event(&mut a_socket).await;
    assert_eq!(change, "OFFERED");
    let id = switchboard::graphql::relay::decode_id(&conversation, "Conversation").unwrap();
    let owner = switchboard::graphql::relay::decode_id(&app.org.owner_id, "User").unwrap();
    let sql = |statement: String| {
        let db = app.state.db.clone();
        async move {
            db.execute_unprepared(&statement).await.unwrap();
        }
    };
    let id_literal = |id: uuid::Uuid| match app.state.db.get_database_backend() {
        sea_orm::DbBackend::Postgres => format!("'{id}'"),
        _ => format!("X'{}'", id.simple()),
    };
    // Assigned behind routing's back (as by a change its hooks never saw).
    sql(format!(
        "UPDATE conversations SET assignee_id = {} WHERE id = {}",
        id_literal(owner),
        id_literal(id)
    ))
    .await;
    switchboard::routing::service::sweep(&app.state.db, Utc::now())
        .await
        .unwrap();
    let (change, withdrawn) = offer_event(&mut a_socket).await;
    assert_eq!(
        (change.as_str(), &withdrawn["id"], &withdrawn["status"]),
        ("WITHDRAWN", &offer["id"], &json!("WITHDRAWN"))
    );
    // Unassigned again behind its back: the sweep finds it waiting without an offer.
    sql(format!(
        "UPDATE conversations SET assignee_id = NULL WHERE id = {}",
        id_literal(id)
    ))
    .await;
    switchboard::routing::service::sweep(&app.state.db, Utc::now())
        .await
        .unwrap();
    let (change, again) = offer_event(&mut a_socket).await;
    assert_eq!(change, "OFFERED");
    assert_ne!(again["id"], offer["id"]);
    assert_eq!(again["conversation"]["id"], conversation.as_str());
    // Nothing stale or waiting is left: another sweep changes nothing.
    let made = switchboard::routing::service::sweep(&app.state.db, Utc::now())
        .await
        .unwrap();
    assert_eq!(made.len(), 0);
}
