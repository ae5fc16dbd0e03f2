//! Subscriptions over websockets: transport, authentication, `messageAdded`, resume by cursor.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::common::TestApp;
use crate::fixtures::{inbound, sms_setup};

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const SUBSCRIBE: &str = "subscription($c: ID, $after: String) { messageAdded(conversationId: $c, after: $after) { cursor message { text } } }";

/// A websocket to `/graphql/ws` speaking `protocol`, with `token` on the upgrade request if given.
pub(crate) async fn open(app: &TestApp, protocol: &str, token: Option<&str>) -> Socket {
    let mut request = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().unwrap());
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let (socket, response) = connect_async(request).await.expect("websocket");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        protocol,
        "negotiated subprotocol"
    );
    socket
}

/// The close frame the server ends with: (code, reason), skipping other frames.
pub(crate) async fn closed(socket: &mut Socket) -> (u16, String) {
    // One deadline for the lot: pings and keep-alives do not extend it.
    let until = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let frame = tokio::time::timeout_at(until, socket.next())
            .await
            .expect("a frame within 60 s")
            .expect("a close frame before the end")
            .expect("a frame");
        if let Frame::Close(close) = frame {
            let close = close.expect("a close code");
            return (u16::from(close.code), close.reason.to_string());
        }
    }
}

pub(crate) async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Frame::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next text message (skipping pings and keep-alives); `None` when the socket closed.
pub(crate) async fn next(socket: &mut Socket) -> Option<Value> {
    // One deadline for the lot: pings and keep-alives do not extend it.
    let until = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let frame = tokio::time::timeout_at(until, socket.next())
            .await
            .expect("a frame within 60 s")?;
        match frame.ok()? {
            Frame::Text(text) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "ka" || value["type"] == "ping" {
                    continue;
                }
                return Some(value);
            }
            Frame::Close(_) => return None,
            _ => continue,
        }
    }
}

/// The next text message, pings and pongs included.
async fn next_any(socket: &mut Socket) -> Value {
    // One deadline for the lot: pings and keep-alives do not extend it.
    let until = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let frame = tokio::time::timeout_at(until, socket.next())
            .await
            .expect("a frame within 60 s")
            .expect("open")
            .expect("a frame");
        if let Frame::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// A `graphql-transport-ws` connection initialised with `token` in the payload.
pub(crate) async fn connected(app: &TestApp, token: &str) -> Socket {
    let mut socket = open(app, "graphql-transport-ws", None).await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } }),
    )
    .await;
    assert_eq!(
        next(&mut socket).await,
        Some(json!({ "type": "connection_ack" }))
    );
    socket
}

async fn subscribe(socket: &mut Socket, id: &str, variables: Value) {
    send(
        socket,
        json!({ "id": id, "type": "subscribe", "payload": { "query": SUBSCRIBE, "variables": variables } }),
    )
    .await;
}

/// The next `n` events of subscription `id`: (cursor, text).
async fn events(socket: &mut Socket, id: &str, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let message = next(socket).await.expect("socket open");
        assert_eq!(message["id"], id, "{message}");
        assert_eq!(message["type"], "next", "{message}");
        let event = &message["payload"]["data"]["messageAdded"];
        out.push((
            event["cursor"].as_str().unwrap().to_string(),
            event["message"]["text"].as_str().unwrap().to_string(),
        ));
    }
    out
}

async fn say(app: &TestApp, conversation: &str, text: &str) {
    let data = app
        .data(
            &app.org.token,
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) { userErrors { message } } }",
            json!({ "input": { "conversationId": conversation, "text": text } }),
        )
        .await;
    assert_eq!(data["sendMessage"]["userErrors"], json!([]));
}

async fn conversation(app: &TestApp) -> String {
    let (channel, contact) = sms_setup(app).await;
    inbound(app, &app.org.token, &channel, &contact, "hello").await
}

fn texts(events: &[(String, String)]) -> Vec<&str> {
    events.iter().map(|(_, t)| t.as_str()).collect()
}

#[tokio::test]
async fn message_added_reaches_a_graphql_transport_ws_subscriber() {
    let app = TestApp::spawn().await;
    let conversation = conversation(&app).await;
    let mut socket = connected(&app, &app.org.token).await;
    // From the log's end now: nothing said from here on is missed, however long the server
    // takes to start the subscription.
    let after = app.log_end_cursor().await;
    subscribe(
        &mut socket,
        "1",
        json!({ "c": conversation, "after": after }),
    )
    .await;
    say(&app, &conversation, "one").await;
    let first = events(&mut socket, "1", 1).await;
    assert_eq!(texts(&first), ["one"]);
    say(&app, &conversation, "two").await;
    say(&app, &conversation, "three").await;
    let more = events(&mut socket, "1", 2).await;
    assert_eq!(texts(&more), ["two", "three"]);
    assert!(first[0].0 != more[0].0 && more[0].0 != more[1].0);
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_works_with_the_token_on_the_upgrade_request() {
    let app = TestApp::spawn().await;
    let conversation = conversation(&app).await;
    let mut socket = open(&app, "graphql-ws", Some(&app.org.token)).await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": {} }),
    )
    .await;
    assert_eq!(
        next(&mut socket).await,
        Some(json!({ "type": "connection_ack" }))
    );
    let after = app.log_end_cursor().await;
    send(
        &mut socket,
        json!({ "id": "a", "type": "start", "payload": { "query": SUBSCRIBE, "variables": { "c": conversation, "after": after } } }),
    )
    .await;
    say(&app, &conversation, "legacy").await;
    let message = next(&mut socket).await.unwrap();
    assert_eq!(message["type"], "data");
    assert_eq!(message["id"], "a");
    assert_eq!(
        message["payload"]["data"]["messageAdded"]["message"]["text"],
        "legacy"
    );
}

#[tokio::test]
async fn resuming_replays_after_the_cursor_then_continues_live_without_gap_or_duplicate() {
    let app = TestApp::spawn().await;
    let conversation = conversation(&app).await;
    let mut socket = connected(&app, &app.org.token).await;
    let after = app.log_end_cursor().await;
    subscribe(
        &mut socket,
        "1",
        json!({ "c": conversation, "after": after }),
    )
    .await;
    for text in ["m1", "m2", "m3"] {
        say(&app, &conversation, text).await;
    }
    let seen = events(&mut socket, "1", 3).await;
    assert_eq!(texts(&seen), ["m1", "m2", "m3"]);
    drop(socket);

    // Written while nobody listens.
    say(&app, &conversation, "m4").await;
    say(&app, &conversation, "m5").await;

    let mut socket = connected(&app, &app.org.token).await;
    subscribe(
        &mut socket,
        "2",
        json!({ "c": conversation, "after": seen[1].0 }),
    )
    .await;
    let replayed = events(&mut socket, "2", 3).await;
    assert_eq!(texts(&replayed), ["m3", "m4", "m5"]);
    assert_eq!(replayed[0], seen[2], "the same event has the same cursor");
    say(&app, &conversation, "m6").await;
    let live = events(&mut socket, "2", 1).await;
    assert_eq!(texts(&live), ["m6"]);

    // Resume while messages are being committed: exactly m7..m26, in order.
    let writer = {
        let client = app.client.clone();
        let url = app.url("/graphql");
        let token = app.org.token.clone();
        let conversation = conversation.clone();
        tokio::spawn(async move {
            for n in 7..=26 {
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({
                        "query": "mutation($input: SendMessageInput!) { sendMessage(input: $input) { userErrors { message } } }",
                        "variables": { "input": { "conversationId": conversation, "text": format!("m{n}") } }
                    }))
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success());
            }
        })
    };
    let mut socket = connected(&app, &app.org.token).await;
    subscribe(
        &mut socket,
        "3",
        json!({ "c": conversation, "after": live[0].0 }),
    )
    .await;
    let resumed = events(&mut socket, "3", 20).await;
    writer.await.unwrap();
    let expected: Vec<String> = (7..=26).map(|n| format!("m{n}")).collect();
    assert_eq!(texts(&resumed), expected);
}

#[tokio::test]
async fn bad_subscriptions_get_clear_errors() {
    let app = TestApp::spawn().await;
    let conversation = conversation(&app).await;
    let other = app.create_org("Other", "other", "owner@other.test").await;
    let mut socket = connected(&app, &other.token).await;
    let cases = [
        (
            json!({ "c": conversation }),
            "NOT_FOUND",
            "conversation not found",
        ),
        (
            json!({ "after": "not-a-cursor" }),
            "BAD_USER_INPUT",
            "`after` is not an event cursor: \"not-a-cursor\"",
        ),
        (
            // "event:999999": well formed, but no such event yet.
            json!({ "after": "ZXZlbnQ6OTk5OTk5" }),
            "BAD_USER_INPUT",
            "`after` is a cursor from the future: no such event yet",
        ),
    ];
    for (n, (variables, code, text)) in cases.into_iter().enumerate() {
        let id = n.to_string();
        subscribe(&mut socket, &id, variables).await;
        // The subscription field fails: one result with the error, then `complete`.
        let message = next(&mut socket).await.unwrap();
        assert_eq!(message["id"], id.as_str());
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["payload"]["data"], Value::Null);
        let error = &message["payload"]["errors"][0];
        assert_eq!(error["message"], text);
        assert_eq!(error["extensions"]["code"], code);
        assert_eq!(
            next(&mut socket).await,
            Some(json!({ "id": id, "type": "complete" }))
        );
    }
}

#[tokio::test]
async fn a_connection_without_a_valid_token_is_refused() {
    let app = TestApp::spawn().await;
    let mut socket = open(&app, "graphql-transport-ws", None).await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "authorization": "Bearer sbt_wrong" } }),
    )
    .await;
    assert_eq!(
        closed(&mut socket).await,
        (4403, "Forbidden: invalid token".to_string())
    );
    // A bad token on the upgrade request: 401, no websocket.
    let mut request = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    headers.insert("authorization", "Bearer sbt_wrong".parse().unwrap());
    match connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401)
        }
        other => panic!("expected 401, got {other:?}"),
    }
}

#[tokio::test]
async fn on_postgresql_a_message_sent_through_one_instance_reaches_a_subscriber_of_another() {
    if std::env::var("SWITCHBOARD_TEST_POSTGRES_URL").is_err() {
        // One SQLite file serves one instance; the cross-instance bus is PostgreSQL's.
        return;
    }
    let first = TestApp::spawn().await;
    let second = first.spawn_beside().await;
    let conversation = conversation(&first).await;
    let mut socket = connected(&second, &first.org.token).await;
    let after = first.log_end_cursor().await;
    subscribe(
        &mut socket,
        "1",
        json!({ "c": conversation, "after": after }),
    )
    .await;
    say(&first, &conversation, "across").await;
    say(&first, &conversation, "instances").await;
    let received = events(&mut socket, "1", 2).await;
    assert_eq!(texts(&received), ["across", "instances"]);

    // Typing, which is not stored, crosses instances too.
    subscribe_to(&mut socket, "t", TYPING, json!({ "c": conversation })).await;
    typing_live(&first, &mut socket, "t", &conversation).await;
    let input = json!({ "input": { "conversationId": conversation } });
    let set = first.data(&first.org.token, SET_TYPING, input).await;
    assert_eq!(set["setTyping"]["userErrors"], json!([]));
    let data = next_data(&mut socket, "t").await;
    assert_eq!(
        (&data["typing"]["typing"], &data["typing"]["expiresAt"]),
        (&json!(true), &set["setTyping"]["expiresAt"])
    );
}

#[tokio::test]
async fn transport_rule_breaks_close_the_connection_with_their_codes() {
    let app = TestApp::spawn_with(|config| config.ws_init_timeout_seconds = 1).await;
    let token = app.org.token.clone();
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    let subscription = json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIBE } });

    // 4400: not a protocol message.
    let mut socket = open(&app, "graphql-transport-ws", None).await;
    socket.send(Frame::Text("{not json".into())).await.unwrap();
    assert_eq!(
        closed(&mut socket).await,
        (4400, "Invalid message: not JSON".into())
    );
    let mut socket = connected(&app, &token).await;
    send(&mut socket, json!({ "type": "shout" })).await;
    assert_eq!(
        closed(&mut socket).await,
        (4400, "Invalid message: unknown type \"shout\"".into())
    );

    // 4401: subscribe before the acknowledgement.
    let mut socket = open(&app, "graphql-transport-ws", None).await;
    send(&mut socket, subscription.clone()).await;
    assert_eq!(closed(&mut socket).await, (4401, "Unauthorized".into()));

    // 4403: no token anywhere.
    let mut socket = open(&app, "graphql-transport-ws", None).await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    let (code, reason) = closed(&mut socket).await;
    assert_eq!(code, 4403);
    assert!(
        reason.starts_with("Forbidden: authentication required"),
        "{reason}"
    );

    // 4406: no subprotocol the server speaks.
    let mut socket = open(&app, "mqtt", None).await;
    assert_eq!(
        closed(&mut socket).await,
        (
            4406,
            "Subprotocol not acceptable: use graphql-transport-ws or graphql-ws".into()
        )
    );

    // 4408: no connection_init in time (1 s here).
    let mut socket = open(&app, "graphql-transport-ws", None).await;
    assert_eq!(
        closed(&mut socket).await,
        (4408, "Connection initialisation timeout".into())
    );

    // 4409: a running subscription's id again.
    let mut socket = connected(&app, &token).await;
    send(&mut socket, subscription.clone()).await;
    send(&mut socket, subscription.clone()).await;
    assert_eq!(
        closed(&mut socket).await,
        (4409, "Subscriber for 1 already exists".into())
    );

    // 4429: a second connection_init.
    let mut socket = connected(&app, &token).await;
    send(&mut socket, init).await;
    assert_eq!(
        closed(&mut socket).await,
        (4429, "Too many initialisation requests".into())
    );

    // After a subscription completes, its id may be used again.
    let mut socket = connected(&app, &token).await;
    send(&mut socket, subscription.clone()).await;
    send(&mut socket, json!({ "id": "1", "type": "complete" })).await;
    send(&mut socket, subscription).await;
    send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(
        next_any(&mut socket).await,
        json!({ "id": "1", "type": "complete" })
    );
    assert_eq!(
        next_any(&mut socket).await,
        json!({ "type": "pong" }),
        "still open"
    );
}

#[tokio::test]
async fn subscriptions_beyond_the_cap_are_refused_and_the_connection_stays() {
    let app = TestApp::spawn_with(|config| config.ws_max_subscriptions = 2).await;
    let conversation = conversation(&app).await;
    let mut socket = connected(&app, &app.org.token).await;
    let after = app.log_end_cursor().await;
    for id in ["1", "2", "3"] {
        subscribe(
            &mut socket,
            id,
            json!({ "c": conversation, "after": after }),
        )
        .await;
    }
    assert_eq!(
        next(&mut socket).await,
        Some(json!({ "id": "3", "type": "error", "payload": [{
            "message": "at most 2 subscriptions may run on one connection",
            "extensions": { "code": "QUERY_TOO_COMPLEX" }
        }] }))
    );
    say(&app, &conversation, "still here").await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let message = next(&mut socket).await.unwrap();
        assert_eq!(
            message["payload"]["data"]["messageAdded"]["message"]["text"],
            "still here"
        );
        ids.push(message["id"].as_str().unwrap().to_string());
    }
    ids.sort();
    assert_eq!(ids, ["1", "2"]);
}

#[tokio::test]
async fn each_event_is_resolved_with_fresh_data_not_what_the_connection_saw_before() {
    let app = TestApp::spawn().await;
    let conversation = conversation(&app).await;
    let mut socket = connected(&app, &app.org.token).await;
    let query = "subscription($c: ID, $after: String) { messageAdded(conversationId: $c, after: $after) { message { text author { ... on User { displayName } } } } }";
    let after = app.log_end_cursor().await;
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": { "c": conversation, "after": after } } }),
    )
    .await;
    let author = |message: &Value| {
        message["payload"]["data"]["messageAdded"]["message"]["author"]["displayName"].clone()
    };
    say(&app, &conversation, "before").await;
    assert_eq!(author(&next(&mut socket).await.unwrap()), "Acme Owner");
    let renamed = app
        .data(
            &app.org.token,
            "mutation($input: UpdateUserInput!) { updateUser(input: $input) { userErrors { message } } }",
            json!({ "input": { "id": app.org.owner_id, "displayName": "Renamed Owner" } }),
        )
        .await;
    assert_eq!(renamed["updateUser"]["userErrors"], json!([]));
    say(&app, &conversation, "after").await;
    assert_eq!(author(&next(&mut socket).await.unwrap()), "Renamed Owner");
}

#[tokio::test]
async fn message_updated_delivers_edits_reactions_and_removal_in_order() {
    let app = TestApp::spawn().await;
    let conversation = conversation(&app).await;
    let token = app.org.token.clone();
    let sent = app
        .data(
            &token,
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id } } }",
            json!({ "input": { "conversationId": conversation, "text": "draft" } }),
        )
        .await;
    let message = sent["sendMessage"]["message"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut socket = connected(&app, &token).await;
    let query = "subscription($c: ID, $after: String) { messageUpdated(conversationId: $c, after: $after) { change message { id text reactionCounts { reaction count } removedAt } } }";
    let after = app.log_end_cursor().await;
    send(
        &mut socket,
        json!({ "id": "u", "type": "subscribe", "payload": { "query": query, "variables": { "c": conversation, "after": after } } }),
    )
    .await;
    let run = |query: &'static str, input: Value| {
        let app = &app;
        let token = token.clone();
        async move {
            let data = app.data(&token, query, json!({ "input": input })).await;
            let payload = data.as_object().unwrap().values().next().unwrap().clone();
            assert_eq!(payload["userErrors"], json!([]), "{payload}");
        }
    };
    run(
        "mutation($input: EditMessageInput!) { editMessage(input: $input) { userErrors { message } } }",
        json!({ "messageId": message, "text": "final" }),
    )
    .await;
    run(
        "mutation($input: ReactionInput!) { addReaction(input: $input) { userErrors { message } } }",
        json!({ "messageId": message, "reaction": "LIKE" }),
    )
    .await;
    run(
        "mutation($input: RemoveMessageInput!) { removeMessage(input: $input) { userErrors { message } } }",
        json!({ "messageId": message }),
    )
    .await;
    let mut changes = Vec::new();
    for _ in 0..3 {
        let event = next(&mut socket).await.unwrap();
        let update = event["payload"]["data"]["messageUpdated"].clone();
        assert_eq!(update["message"]["id"], message.as_str());
        changes.push(update["change"].as_str().unwrap().to_string());
    }
    assert_eq!(changes, ["EDITED", "REACTION_ADDED", "REMOVED"]);
    // A new message is not an update.
    say(&app, &conversation, "new").await;
    run(
        "mutation($input: ReactionInput!) { removeReaction(input: $input) { userErrors { message } } }",
        json!({ "messageId": message, "reaction": "LIKE" }),
    )
    .await;
    let event = next(&mut socket).await.unwrap();
    let update = &event["payload"]["data"]["messageUpdated"];
    assert_eq!(update["change"], "REACTION_REMOVED");
    assert_eq!(update["message"]["reactionCounts"], json!([]));
    assert!(update["message"]["removedAt"].is_string());
    assert_eq!(
        update["message"]["text"],
        Value::Null,
        "removed content stays hidden"
    );
}

#[tokio::test]
async fn the_server_pings_and_closes_a_client_that_stays_silent() {
    let app = TestApp::spawn_with(|config| {
        config.ws_ping_interval_seconds = 1;
        config.ws_idle_timeout_seconds = 2;
    })
    .await;
    let token = app.org.token.clone();
    // Made before any socket opens: `alive` must be read all along, or it is idle too.
    let conversation = conversation(&app).await;
    let after = app.log_end_cursor().await;

    // A client that reads answers pings by itself (tungstenite replies with pongs): it stays.
    let mut alive = connected(&app, &token).await;
    // One that never reads never answers: it is closed after the idle timeout.
    let mut silent = connected(&app, &token).await;
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while pings < 3 {
        let frame = tokio::time::timeout_at(until, alive.next())
            .await
            .unwrap_or_else(|_| panic!("a ping a second: {pings} in 10 s"))
            .expect("open")
            .expect("a frame");
        match frame {
            Frame::Ping(_) => pings += 1,
            other => panic!("unexpected frame {other:?}"),
        }
    }
    // `alive` is read (and answers) while the silent one's close is awaited.
    let close = {
        let close = raw_close(&mut silent);
        tokio::pin!(close);
        loop {
            tokio::select! {
                close = &mut close => break close,
                frame = alive.next() => match frame.expect("open").expect("a frame") {
                    Frame::Ping(_) => {}
                    other => panic!("unexpected frame {other:?}"),
                },
            }
        }
    };
    assert_eq!(
        close,
        (4504, "idle timeout: nothing received for 2 s".into())
    );
    // The reading client is still served; it is read while the message is sent.
    subscribe(
        &mut alive,
        "1",
        json!({ "c": conversation, "after": after }),
    )
    .await;
    let ((), received) = tokio::join!(
        say(&app, &conversation, "still here"),
        events(&mut alive, "1", 1)
    );
    assert_eq!(texts(&received), ["still here"]);
}

/// The close frame of a socket read below the websocket library (which would answer the
/// queued pings on the closed socket first): the server's frames read as they came, unparsed by
/// anything else.
async fn raw_close(socket: &mut Socket) -> (u16, String) {
    use tokio::io::AsyncReadExt;
    let MaybeTlsStream::Plain(stream) = socket.get_mut() else {
        panic!("plain TCP");
    };
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut bytes))
        .await
        .expect("closed within 60 s")
        .unwrap();
    // Server frames are unmasked and short here: [opcode, length, payload…].
    let mut at = 0;
    while at + 2 <= bytes.len() {
        let (opcode, length) = (bytes[at] & 0x0f, usize::from(bytes[at + 1] & 0x7f));
        let payload = &bytes[at + 2..at + 2 + length];
        if opcode == 8 {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            return (code, String::from_utf8(payload[2..].to_vec()).unwrap());
        }
        at += 2 + length;
    }
    panic!("no close frame in {bytes:?}");
}

/// Subscribes `id` to `query` with `variables`.
pub(crate) async fn subscribe_to(socket: &mut Socket, id: &str, query: &str, variables: Value) {
    send(
        socket,
        json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }),
    )
    .await;
}

/// The data of the next `next` message of subscription `id`.
pub(crate) async fn next_data(socket: &mut Socket, id: &str) -> Value {
    let message = next(socket).await.expect("socket open");
    assert_eq!(message["id"], id, "{message}");
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"].clone()
}

/// Waits until typing subscription `id` of `socket` (on `conversation`) is live. Typing is not
/// stored, so a signal sent before the server started the subscription is lost for it:
/// `setTyping` is sent until one arrives. The last one sent arriving means none sent before is
/// still on its way.
async fn typing_live(app: &TestApp, socket: &mut Socket, id: &str, conversation: &str) {
    let input = json!({ "input": { "conversationId": conversation } });
    for _ in 0..30 {
        let set = app.data(&app.org.token, SET_TYPING, input.clone()).await;
        let sent = &set["setTyping"]["expiresAt"];
        assert!(sent.is_string(), "{set}");
        let until = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(message) = tokio::time::timeout_at(until, next(socket)).await {
            let message = message.expect("socket open");
            assert_eq!(message["id"], id, "{message}");
            assert_eq!(message["type"], "next", "{message}");
            if &message["payload"]["data"]["typing"]["expiresAt"] == sent {
                return;
            }
        }
    }
    panic!("typing subscription {id} still not live after 30 signals");
}

const TYPING: &str = "subscription($c: ID!) { typing(conversationId: $c) { conversationId user { email } typing expiresAt } }";
const SET_TYPING: &str = "mutation($input: SetTypingInput!) { setTyping(input: $input) { conversation { id } expiresAt userErrors { field code message } } }";

#[tokio::test]
async fn typing_reaches_the_conversations_subscribers_and_is_not_stored() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let conversation = conversation(&app).await;
    let other = app.create_org("Other", "other", "owner@other.test").await;
    let other_conversation = elsewhere(&app, &other.token, "+4520000009").await;
    let second = elsewhere(&app, &token, "+4520000008").await;
    let mut socket = connected(&app, &token).await;
    let events_before = app.count("events").await;
    subscribe_to(&mut socket, "t", TYPING, json!({ "c": conversation })).await;
    typing_live(&app, &mut socket, "t", &conversation).await;

    let set = |input: Value| {
        let app = &app;
        let token = token.clone();
        async move {
            app.data(&token, SET_TYPING, json!({ "input": input }))
                .await["setTyping"]
                .clone()
        }
    };
    // Typing in another conversation of the organization is not this subscription's.
    let started = set(json!({ "conversationId": second })).await;
    assert_eq!(started["userErrors"], json!([]));
    let before = chrono::Utc::now();
    let started = set(json!({ "conversationId": conversation })).await;
    let after = chrono::Utc::now();
    assert_eq!(started["userErrors"], json!([]));
    assert_eq!(started["conversation"]["id"], conversation.as_str());
    let data = next_data(&mut socket, "t").await;
    assert_eq!(
        data["typing"],
        json!({
            "conversationId": conversation,
            "user": { "email": "owner@acme.test" },
            "typing": true,
            "expiresAt": started["expiresAt"],
        })
    );
    // Lapses 6 s after the server handled it.
    let expires = chrono::DateTime::parse_from_rfc3339(started["expiresAt"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let (six, ms) = (
        chrono::Duration::seconds(6),
        chrono::Duration::milliseconds(1),
    );
    assert!(
        before + six - ms <= expires && expires <= after + six + ms,
        "lapses 6 s after it was set: {expires} not within {before}..{after} + 6 s"
    );

    // Another organization's conversation: NOT_FOUND, nothing sent.
    let refused = app
        .data(
            &token,
            SET_TYPING,
            json!({ "input": { "conversationId": other_conversation } }),
        )
        .await["setTyping"]
        .clone();
    assert_eq!(
        refused,
        json!({
            "conversation": null,
            "expiresAt": null,
            "userErrors": [{ "field": ["input", "conversationId"], "code": "NOT_FOUND", "message": "no such conversation" }],
        })
    );
    let stopped = set(json!({ "conversationId": conversation, "typing": false })).await;
    let data = next_data(&mut socket, "t").await;
    assert_eq!(
        data["typing"]["typing"], false,
        "the refused one never arrived"
    );
    assert_eq!(data["typing"]["expiresAt"], stopped["expiresAt"]);
    assert_eq!(
        app.count("events").await,
        events_before,
        "typing is not stored"
    );

    // Subscribing to another organization's conversation: NOT_FOUND.
    subscribe_to(&mut socket, "x", TYPING, json!({ "c": other_conversation })).await;
    let message = next(&mut socket).await.unwrap();
    assert_eq!(message["id"], "x");
    assert_eq!(message["payload"]["data"], Value::Null, "{message}");
    assert_eq!(
        (
            &message["payload"]["errors"][0]["extensions"]["code"],
            &message["payload"]["errors"][0]["message"]
        ),
        (&json!("NOT_FOUND"), &json!("conversation not found"))
    );
}

/// An inbound conversation of `token`'s organization from a new contact with phone `phone`.
async fn elsewhere(app: &TestApp, token: &str, phone: &str) -> String {
    let channel = crate::fixtures::channel(app, token, "SMS", "Line", "+4520000100").await;
    let contact = crate::fixtures::contact(app, token, json!({ "phone": phone })).await;
    inbound(app, token, &channel, &contact, "elsewhere").await
}

const CHANGED: &str = "subscription($f: ConversationFilterInput, $after: String) { conversationChanged(filter: $f, after: $after) { cursor membership activity { type } conversation { id status unreadCount } } }";

/// Runs a conversation mutation `name` with `input`, expecting no user errors.
async fn act(app: &TestApp, name: &str, input_type: &str, input: Value) {
    let query = format!(
        "mutation($input: {input_type}!) {{ {name}(input: $input) {{ userErrors {{ message }} }} }}"
    );
    let data = app
        .data(&app.org.token, &query, json!({ "input": input }))
        .await;
    assert_eq!(data[name]["userErrors"], json!([]), "{name}: {data}");
}

/// The next `n` conversationChanged events of `id`: (membership, activity, status, unread).
async fn changes(socket: &mut Socket, id: &str, n: usize) -> Vec<(String, String, String, i64)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let event = next_data(socket, id).await["conversationChanged"].clone();
        out.push((
            event["membership"].as_str().unwrap().to_string(),
            event["activity"]["type"].as_str().unwrap().to_string(),
            event["conversation"]["status"]
                .as_str()
                .unwrap()
                .to_string(),
            event["conversation"]["unreadCount"].as_i64().unwrap(),
        ));
    }
    out
}

fn change(
    membership: &str,
    activity: &str,
    status: &str,
    unread: i64,
) -> (String, String, String, i64) {
    (membership.into(), activity.into(), status.into(), unread)
}

#[tokio::test]
async fn conversation_changed_follows_an_inbox_filter_in_and_out() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (channel, contact) = sms_setup(&app).await;
    let first = inbound(&app, &token, &channel, &contact, "hello").await;
    let mut socket = connected(&app, &token).await;
    // From the log's end: the close below is seen however late the subscription starts (a
    // replayed close of a conversation now closed leaves the filter, as a live one does).
    let after = app.log_end_cursor().await;
    let open = json!({ "f": { "status": ["OPEN"] }, "after": after });
    subscribe_to(&mut socket, "c", CHANGED, open.clone()).await;

    // Each event is resolved when delivered (the conversation as it is then): wait for each.
    let id = json!({ "conversationId": first });
    act(
        &app,
        "closeConversation",
        "CloseConversationInput",
        id.clone(),
    )
    .await;
    assert_eq!(
        changes(&mut socket, "c", 1).await,
        [change("LEFT", "CLOSED", "CLOSED", 1)]
    );
    // Out of the filter: a note on the closed conversation is not delivered.
    act(
        &app,
        "addNote",
        "AddNoteInput",
        json!({ "conversationId": first, "body": "closed" }),
    )
    .await;
    act(
        &app,
        "reopenConversation",
        "ConversationIdInput",
        id.clone(),
    )
    .await;
    reopened_after_note(&mut socket, "c").await;
    // Reading is live: the unread count drops.
    act(
        &app,
        "markConversationRead",
        "MarkConversationReadInput",
        id.clone(),
    )
    .await;
    assert_eq!(
        changes(&mut socket, "c", 1).await,
        [change("CHANGED", "READ", "OPEN", 0)]
    );
    // So are the contact's read receipts.
    let receipt = json!({ "conversationId": first, "contactId": contact });
    act(&app, "recordReadReceipt", "RecordReadReceiptInput", receipt).await;
    assert_eq!(
        changes(&mut socket, "c", 1).await,
        [change("CHANGED", "READ", "OPEN", 0)]
    );
    // A new conversation enters.
    let second = elsewhere(&app, &token, "+4520000008").await;
    let created = changes(&mut socket, "c", 1).await;
    assert_eq!(created, [change("ENTERED", "CREATED", "OPEN", 1)]);
    let added = next_data(&mut socket, "c").await["conversationChanged"].clone();
    assert_eq!(
        (
            &added["membership"],
            &added["activity"]["type"],
            &added["conversation"]["id"]
        ),
        (&json!("CHANGED"), &json!("MESSAGE_ADDED"), &json!(second))
    );
    let cursor = added["cursor"].as_str().unwrap().to_string();

    // Resuming: what changed meanwhile, as it is now. The second conversation closed: a client
    // that had it drops it (LEFT, once); the first one's note is not in the filter.
    let id = json!({ "conversationId": second });
    act(
        &app,
        "closeConversation",
        "CloseConversationInput",
        id.clone(),
    )
    .await;
    act(
        &app,
        "addNote",
        "AddNoteInput",
        json!({ "conversationId": second, "body": "x" }),
    )
    .await;
    drop(socket);
    let mut socket = connected(&app, &token).await;
    subscribe_to(
        &mut socket,
        "r",
        CHANGED,
        json!({ "f": { "status": ["OPEN"] }, "after": cursor }),
    )
    .await;
    assert_eq!(
        changes(&mut socket, "r", 1).await,
        [change("LEFT", "CLOSED", "CLOSED", 1)]
    );
    act(&app, "reopenConversation", "ConversationIdInput", id).await;
    reopened_after_note(&mut socket, "r").await;
}

/// After a close (which, with no reply and no assignee, also records `ABANDONED`), a note on the
/// closed conversation and its reopening: the conversation enters the filter. Events are checked
/// against the conversation as it is when delivered, so those reached only after the reopening
/// committed find it open: the first of them enters and the rest, up to the reopening, are
/// changes; those reached before it are skipped. Either way the activities received are the
/// last ones of `ABANDONED, NOTE_ADDED, REOPENED`, in order.
async fn reopened_after_note(socket: &mut Socket, id: &str) {
    let all = ["ABANDONED", "NOTE_ADDED", "REOPENED"];
    let entered = changes(socket, id, 1).await;
    let first = entered[0].1.clone();
    assert_eq!(entered, [change("ENTERED", &first, "OPEN", 1)]);
    let from = all
        .iter()
        .position(|a| *a == first)
        .unwrap_or_else(|| panic!("unexpected activity {first}"));
    for activity in &all[from + 1..] {
        assert_eq!(
            changes(socket, id, 1).await,
            [change("CHANGED", activity, "OPEN", 1)]
        );
    }
}

#[tokio::test]
async fn identical_subscriptions_run_once_and_share_their_results() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let conversation = conversation(&app).await;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let cohorts = || app.state.cohorts.len();
    // The cohorts running once the server handled every `subscribe` (polled, 60 s at most),
    // then a moment for them to start reading the log.
    let settled = |expected: usize| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while cohorts() != expected && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        cohorts()
    };

    // Two connections, the same subscription: one cohort.
    let mut a = connected(&app, &token).await;
    let mut b = connected(&app, &token).await;
    subscribe(&mut a, "1", json!({ "c": conversation })).await;
    subscribe(&mut b, "7", json!({ "c": conversation })).await;
    // Different variables, or another role: cohorts of their own.
    let mut c = connected(&app, &token).await;
    subscribe(&mut c, "1", json!({})).await;
    let mut d = connected(&app, &agent).await;
    subscribe(&mut d, "1", json!({ "c": conversation })).await;
    // Resuming from a cursor: a cohort of its own.
    let resume = json!({ "c": conversation, "after": "ZXZlbnQ6MQ" });
    let mut e = connected(&app, &token).await;
    subscribe(&mut e, "1", resume.clone()).await;
    assert_eq!(settled(4).await, 4);

    say(&app, &conversation, "shared").await;
    assert_eq!(texts(&events(&mut a, "1", 1).await), ["shared"]);
    assert_eq!(texts(&events(&mut b, "7", 1).await), ["shared"]);
    assert_eq!(texts(&events(&mut c, "1", 1).await), ["shared"]);
    assert_eq!(texts(&events(&mut d, "1", 1).await), ["shared"]);
    let replayed = events(&mut e, "1", 2).await;
    assert_eq!(texts(&replayed), ["hello", "shared"]);
    // Resuming later from the same cursor joins it: everything since the cursor first, from
    // the cohort's history, then what comes next, with the same cursors.
    let mut f = connected(&app, &token).await;
    subscribe(&mut f, "3", resume).await;
    assert_eq!(events(&mut f, "3", 2).await, replayed);
    assert_eq!(settled(4).await, 4);
    say(&app, &conversation, "together").await;
    assert_eq!(texts(&events(&mut e, "1", 1).await), ["together"]);
    assert_eq!(texts(&events(&mut f, "3", 1).await), ["together"]);
    for socket in [&mut a, &mut c, &mut d] {
        assert_eq!(texts(&events(socket, "1", 1).await), ["together"]);
    }
    assert_eq!(texts(&events(&mut b, "7", 1).await), ["together"]);

    // A member that stops gets `complete`; the others go on.
    send(&mut a, json!({ "id": "1", "type": "complete" })).await;
    assert_eq!(
        next(&mut a).await,
        Some(json!({ "id": "1", "type": "complete" }))
    );
    // A member whose connection ends leaves too.
    drop(c);
    say(&app, &conversation, "after").await;
    assert_eq!(texts(&events(&mut b, "7", 1).await), ["after"]);
    assert_eq!(texts(&events(&mut d, "1", 1).await), ["after"]);
    // The id is free again: subscribing with it rejoins. A `subscribe` joins a running cohort
    // before the server reads the next frame: the answer to a ping after it means `a` is in.
    subscribe(&mut a, "1", json!({ "c": conversation })).await;
    send(&mut a, json!({ "type": "ping" })).await;
    assert_eq!(next(&mut a).await, Some(json!({ "type": "pong" })));
    say(&app, &conversation, "again").await;
    assert_eq!(texts(&events(&mut a, "1", 1).await), ["again"]);
    assert_eq!(texts(&events(&mut b, "7", 1).await), ["again"]);

    // Once nobody is left, the cohorts stop.
    drop((a, b, d, e, f));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while cohorts() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cohorts(), 0);
}

#[tokio::test]
async fn a_replay_longer_than_the_client_queue_arrives_whole_to_every_resumer() {
    // Four frames may wait per client: the replay of 31 events is read at the clients' pace.
    let app = TestApp::spawn_with(|c| c.ws_max_queued = 4).await;
    let token = app.org.token.clone();
    let conversation = conversation(&app).await;
    let sent: Vec<String> = (0..30).map(|n| format!("m{n}")).collect();
    for text in &sent {
        say(&app, &conversation, text).await;
    }
    let mut expected = vec!["hello".to_string()];
    expected.extend(sent);
    let resume = json!({ "c": conversation, "after": "ZXZlbnQ6MQ" });
    let mut a = connected(&app, &token).await;
    subscribe(&mut a, "1", resume.clone()).await;
    // `a` does not read for a while; `b` resumes from the same cursor meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut b = connected(&app, &token).await;
    subscribe(&mut b, "1", resume).await;
    let replayed_a = events(&mut a, "1", 31).await;
    let replayed_b = events(&mut b, "1", 31).await;
    assert_eq!(texts(&replayed_a), expected);
    assert_eq!(replayed_a, replayed_b);
    assert_eq!(app.state.cohorts.len(), 1);
    say(&app, &conversation, "live").await;
    for socket in [&mut a, &mut b] {
        assert_eq!(texts(&events(socket, "1", 1).await), ["live"]);
    }
}

#[tokio::test]
async fn a_thousand_subscriptions_on_one_connection_stop_at_the_default_cap() {
    let app = TestApp::spawn().await;
    let conversation = conversation(&app).await;
    let mut socket = connected(&app, &app.org.token).await;
    let after = app.log_end_cursor().await;
    for n in 0..1_000 {
        subscribe(
            &mut socket,
            &n.to_string(),
            json!({ "c": conversation, "after": after }),
        )
        .await;
    }
    // The first 100 run; the other 900 are refused one by one, the connection stays open.
    let mut refused = Vec::new();
    while refused.len() < 900 {
        let message = next(&mut socket).await.expect("still open");
        assert_eq!(message["type"], "error", "{message}");
        assert_eq!(
            message["payload"][0]["message"],
            "at most 100 subscriptions may run on one connection"
        );
        refused.push(message["id"].as_str().unwrap().parse::<u32>().unwrap());
    }
    assert_eq!(refused, (100..1_000).collect::<Vec<_>>());
    say(&app, &conversation, "to the hundred").await;
    let mut delivered = Vec::new();
    for _ in 0..100 {
        let message = next(&mut socket).await.unwrap();
        assert_eq!(message["type"], "next");
        delivered.push(message["id"].as_str().unwrap().parse::<u32>().unwrap());
    }
    delivered.sort_unstable();
    assert_eq!(delivered, (0..100).collect::<Vec<_>>());
}
