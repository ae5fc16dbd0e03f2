//! Presence: connection status from websocket connections (grace period, expiry of a crashed
//! instance's connections), `setPresence` with its permissions and validation, the team and
//! organization lists, the per-token connection cap, and `presenceChanged` live and replayed.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::graphql::relay::decode_id;
use switchboard::presence::service::{self, Connection};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use uuid::Uuid;

use crate::common::{TestApp, codes};
use crate::live::{closed, next};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const GRACE_SECONDS: i64 = 30;

const PRESENCE_CHANGED: &str = "subscription($team: ID, $users: [ID!], $after: String) {
    presenceChanged(teamId: $team, userIds: $users, after: $after) {
        cursor changes
        presence { user { id } connectionStatus presenceStatus activeChannels capacity { channelType conversations } }
    } }";

const PRESENCE: &str = "query($id: ID!) { presence(userId: $id) {
    user { id } connectionStatus presenceStatus activeChannels capacity { channelType conversations } lastSeen } }";

const SET_PRESENCE: &str = "mutation($input: SetPresenceInput!) { setPresence(input: $input) {
    presence { user { id } presenceStatus activeChannels capacity { channelType conversations } }
    userErrors { field message code } } }";

async fn app() -> TestApp {
    TestApp::spawn_with(|config| {
        config.presence_grace_seconds = GRACE_SECONDS as u64;
        config.ws_max_connections_per_token = 2;
    })
    .await
}

/// The cursor before every event.
fn from_the_start() -> String {
    URL_SAFE_NO_PAD.encode("event:0")
}

/// A websocket to `/graphql/ws` (`graphql-transport-ws`), with `token` on the upgrade request
/// if given; the HTTP error when the upgrade is refused.
async fn open(
    app: &TestApp,
    token: Option<&str>,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    connect_async(request).await.map(|(socket, _)| socket)
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Frame::Text(message.to_string().into()))
        .await
        .unwrap();
}

fn init(token: &str) -> Value {
    json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } })
}

/// A connection authenticated in the `connection_init` payload, acknowledged.
async fn connected(app: &TestApp, token: &str) -> Socket {
    let mut socket = open(app, None).await.expect("websocket");
    send(&mut socket, init(token)).await;
    assert_eq!(
        next(&mut socket).await,
        Some(json!({ "type": "connection_ack" }))
    );
    socket
}

/// A connection authenticated by the upgrade request's header, acknowledged.
async fn connected_by_header(app: &TestApp, token: &str) -> Socket {
    let mut socket = open(app, Some(token)).await.expect("websocket");
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(
        next(&mut socket).await,
        Some(json!({ "type": "connection_ack" }))
    );
    socket
}

/// Closes a socket as a client does.
async fn hang_up(mut socket: Socket) {
    socket.close(None).await.unwrap();
    while let Some(Ok(_)) = socket.next().await {}
}

/// Waits until the server has recorded exactly `n` connections (the end of a connection is
/// recorded right after the server sees it).
async fn recorded_connections(app: &TestApp, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        if app.count("presence_connections").await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "expected {n} recorded connections, found {}",
        app.count("presence_connections").await
    );
}

async fn subscribe(socket: &mut Socket, id: &str, variables: Value) {
    send(
        socket,
        json!({ "id": id, "type": "subscribe", "payload": { "query": PRESENCE_CHANGED, "variables": variables } }),
    )
    .await;
}

/// The next `n` events of subscription `id`.
async fn events(socket: &mut Socket, id: &str, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let message = next(socket).await.expect("socket open");
        assert_eq!(message["id"], id, "{message}");
        assert_eq!(message["type"], "next", "{message}");
        out.push(message["payload"]["data"]["presenceChanged"].clone());
    }
    out
}

/// (user id, changes, connection status, presence status) of each event.
fn summary(events: &[Value]) -> Vec<(String, Value, String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["presence"]["user"]["id"].as_str().unwrap().to_string(),
                e["changes"].clone(),
                e["presence"]["connectionStatus"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                e["presence"]["presenceStatus"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

async fn presence(app: &TestApp, user: &str) -> Value {
    app.data(&app.org.token, PRESENCE, json!({ "id": user }))
        .await["presence"]
        .clone()
}

async fn connection_status(app: &TestApp, user: &str) -> String {
    presence(app, user).await["connectionStatus"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn set_presence(app: &TestApp, token: &str, input: Value) -> Value {
    app.gql(token, SET_PRESENCE, json!({ "input": input }))
        .await
}

async fn presence_events(app: &TestApp) -> i64 {
    app.count("events WHERE event_type = 'PRESENCE_CHANGED'")
        .await
}

/// Runs the heartbeat (renewal and sweep) as if it were `ahead` from now.
async fn heartbeat_at(app: &TestApp, ahead: chrono::Duration) -> service::Swept {
    app.state
        .presence
        .heartbeat(chrono::Utc::now() + ahead)
        .await
        .map_err(|e| e.public_message())
        .unwrap()
}

#[tokio::test]
async fn connecting_makes_a_user_online_and_another_subscriber_is_told() {
    let app = app().await;
    let (agent, agent_token) = app.user_with_token("ann@acme.test", &["AGENT"]).await;
    assert_eq!(
        presence(&app, &agent).await,
        json!({ "user": { "id": agent }, "connectionStatus": "OFFLINE", "presenceStatus": "WORKING",
                "activeChannels": [], "capacity": [], "lastSeen": null })
    );

    // From the start of the log, so that nothing depends on when the subscription starts.
    let mut watcher = connected(&app, &app.org.token).await;
    subscribe(&mut watcher, "p", json!({ "after": from_the_start() })).await;
    let set = set_presence(&app, &app.org.token, json!({ "presenceStatus": "BUSY" })).await;
    assert_eq!(set["data"]["setPresence"]["userErrors"], json!([]));
    let first = events(&mut watcher, "p", 2).await;
    assert_eq!(
        summary(&first),
        [
            (
                app.org.owner_id.clone(),
                json!(["CONNECTION_STATUS"]),
                "ONLINE".into(),
                "WORKING".into()
            ),
            (
                app.org.owner_id.clone(),
                json!(["PRESENCE_STATUS"]),
                "ONLINE".into(),
                "BUSY".into()
            )
        ]
    );

    let _agent_socket = connected(&app, &agent_token).await;
    let online = events(&mut watcher, "p", 1).await;
    assert_eq!(
        summary(&online),
        [(
            agent.clone(),
            json!(["CONNECTION_STATUS"]),
            "ONLINE".into(),
            "WORKING".into()
        )]
    );
    assert_ne!(online[0]["cursor"], first[1]["cursor"]);
    let now = presence(&app, &agent).await;
    assert_eq!(now["connectionStatus"], "ONLINE");
    assert!(now["lastSeen"].is_string(), "{now}");
    // Through the User type too.
    let data = app
        .data(
            &app.org.token,
            "query($id: ID!) { user(id: $id) { presence { connectionStatus presenceStatus } } }",
            json!({ "id": agent }),
        )
        .await;
    assert_eq!(
        data["user"]["presence"],
        json!({ "connectionStatus": "ONLINE", "presenceStatus": "WORKING" })
    );
}

#[tokio::test]
async fn a_user_stays_online_for_the_grace_period_after_the_last_connection_then_goes_offline() {
    let app = app().await;
    let (agent, token) = app.user_with_token("ann@acme.test", &["AGENT"]).await;

    let first = connected(&app, &token).await;
    let second = connected_by_header(&app, &token).await;
    recorded_connections(&app, 2).await;
    hang_up(first).await;
    recorded_connections(&app, 1).await;
    assert_eq!(connection_status(&app, &agent).await, "ONLINE");
    hang_up(second).await;
    recorded_connections(&app, 0).await;
    assert_eq!(
        connection_status(&app, &agent).await,
        "ONLINE",
        "within the grace period"
    );
    let swept = heartbeat_at(&app, chrono::Duration::zero()).await;
    assert_eq!((swept.expired, swept.offline), (0, 0));
    assert_eq!(connection_status(&app, &agent).await, "ONLINE");

    // Back within the grace period: nothing changed, nothing to tell.
    let again = connected(&app, &token).await;
    hang_up(again).await;
    recorded_connections(&app, 0).await;
    // Well within the grace period after that hang-up, however slowly this runs.
    let swept = heartbeat_at(&app, chrono::Duration::seconds(5)).await;
    assert_eq!((swept.expired, swept.offline), (0, 0));
    assert_eq!(connection_status(&app, &agent).await, "ONLINE");

    let swept = heartbeat_at(&app, chrono::Duration::seconds(GRACE_SECONDS + 1)).await;
    assert_eq!((swept.expired, swept.offline), (0, 1));
    assert_eq!(connection_status(&app, &agent).await, "OFFLINE");
    let swept = heartbeat_at(&app, chrono::Duration::seconds(GRACE_SECONDS + 2)).await;
    assert_eq!(swept, service::Swept::default(), "nothing left to do");

    // The whole story, replayed from the log: online once, offline once.
    let mut socket = connected(&app, &app.org.token).await;
    subscribe(
        &mut socket,
        "r",
        json!({ "users": [agent], "after": from_the_start() }),
    )
    .await;
    let replayed = events(&mut socket, "r", 2).await;
    assert_eq!(
        summary(&replayed),
        [
            (
                agent.clone(),
                json!(["CONNECTION_STATUS"]),
                "ONLINE".into(),
                "WORKING".into()
            ),
            (
                agent.clone(),
                json!(["CONNECTION_STATUS"]),
                "OFFLINE".into(),
                "WORKING".into()
            ),
        ]
    );
}

#[tokio::test]
async fn the_connections_of_a_crashed_instance_expire_and_a_live_instance_keeps_its_own() {
    let app = app().await;
    let (crashed_user, _) = app.user_with_token("ann@acme.test", &["AGENT"]).await;
    let (live_user, live_token) = app.user_with_token("bob@acme.test", &["AGENT"]).await;
    let org_id = decode_id(&app.org.org_id, "Organization").unwrap();

    // An instance that recorded a connection ten minutes ago, renewed it for a minute and
    // stopped: its record expired nine minutes ago and nobody will remove it.
    let now = chrono::Utc::now();
    let went_online = service::connect(
        &app.state.db,
        &Connection {
            id: Uuid::now_v7(),
            org_id,
            user_id: decode_id(&crashed_user, "User").unwrap(),
            token_id: Uuid::now_v7(),
            instance_id: Uuid::now_v7(),
        },
        now - chrono::Duration::minutes(10),
        chrono::Duration::minutes(1),
    )
    .await
    .map_err(|e| e.public_message())
    .unwrap();
    assert!(went_online);
    let _live = connected(&app, &live_token).await;
    recorded_connections(&app, 2).await;
    assert_eq!(connection_status(&app, &crashed_user).await, "ONLINE");

    // Any instance's sweep: the expired connection ended at its expiry, and so did the grace
    // period after it.
    let swept = heartbeat_at(&app, chrono::Duration::zero()).await;
    assert_eq!((swept.expired, swept.offline), (1, 1));
    assert_eq!(connection_status(&app, &crashed_user).await, "OFFLINE");
    assert_eq!(connection_status(&app, &live_user).await, "ONLINE");
    recorded_connections(&app, 1).await;

    // Were this instance stalled past its connections' expiry, another's sweep would take them
    // offline; its next heartbeat records them again and the user is back online.
    let stalled = service::sweep(
        &app.state.db,
        chrono::Utc::now() + chrono::Duration::hours(2),
        app.state.presence.grace(),
    )
    .await
    .map_err(|e| e.public_message())
    .unwrap();
    assert_eq!((stalled.expired, stalled.offline), (1, 1));
    assert_eq!(connection_status(&app, &live_user).await, "OFFLINE");
    heartbeat_at(&app, chrono::Duration::zero()).await;
    recorded_connections(&app, 1).await;
    assert_eq!(connection_status(&app, &live_user).await, "ONLINE");
}

#[tokio::test]
async fn the_heartbeat_renews_one_instance_record_that_keeps_all_its_connections() {
    let app = app().await;
    let (agent, token) = app.user_with_token("ann@acme.test", &["AGENT"]).await;
    let _first = connected(&app, &token).await;
    let _second = connected_by_header(&app, &token).await;
    recorded_connections(&app, 2).await;
    assert_eq!(app.count("presence_instances").await, 1);
    let ttl = chrono::Duration::seconds(app.state.config.presence_connection_ttl_seconds as i64);
    let grace = app.state.presence.grace();
    let start = chrono::Utc::now();

    // Renewed a minute on: both connections now live until a minute past their first expiry.
    let minute = chrono::Duration::minutes(1);
    heartbeat_at(&app, minute).await;
    assert_eq!(app.count("presence_instances").await, 1);
    let swept = service::sweep(
        &app.state.db,
        start + ttl + chrono::Duration::seconds(5),
        grace,
    )
    .await
    .map_err(|e| e.public_message())
    .unwrap();
    assert_eq!(swept, service::Swept::default());
    recorded_connections(&app, 2).await;
    assert_eq!(connection_status(&app, &agent).await, "ONLINE");

    // Past the renewed expiry (the instance stalled): both end with it, and the grace after.
    let late = chrono::Utc::now() + minute + ttl + grace + chrono::Duration::seconds(1);
    let swept = service::sweep(&app.state.db, late, grace)
        .await
        .map_err(|e| e.public_message())
        .unwrap();
    assert_eq!((swept.expired, swept.offline), (2, 1));
    recorded_connections(&app, 0).await;
    assert_eq!(app.count("presence_instances").await, 0);
    assert_eq!(connection_status(&app, &agent).await, "OFFLINE");

    // The instance's next heartbeat records itself and both connections again.
    heartbeat_at(&app, chrono::Duration::zero()).await;
    recorded_connections(&app, 2).await;
    assert_eq!(app.count("presence_instances").await, 1);
    assert_eq!(connection_status(&app, &agent).await, "ONLINE");
}

#[tokio::test]
async fn set_presence_changes_ones_own_and_an_admin_may_change_anothers() {
    let app = app().await;
    let (agent, agent_token) = app.user_with_token("ann@acme.test", &["AGENT"]).await;
    let (_, admin_token) = app.user_with_token("adam@acme.test", &["ADMIN"]).await;
    let (_, lead_token) = app.user_with_token("lea@acme.test", &["TEAM_LEAD"]).await;

    let body = set_presence(
        &app,
        &agent_token,
        json!({ "presenceStatus": "AWAY", "activeChannels": ["CHAT", "EMAIL"],
                "capacity": [{ "channelType": "CHAT", "conversations": 5 }, { "channelType": "EMAIL", "conversations": 0 }] }),
    )
    .await;
    assert_eq!(
        body["data"]["setPresence"],
        json!({ "presence": { "user": { "id": agent }, "presenceStatus": "AWAY", "activeChannels": ["EMAIL", "CHAT"],
                              "capacity": [{ "channelType": "EMAIL", "conversations": 0 }, { "channelType": "CHAT", "conversations": 5 }] },
                "userErrors": [] })
    );
    assert_eq!(presence_events(&app).await, 1);
    // The same again changes nothing and tells nobody.
    let body = set_presence(&app, &agent_token, json!({ "presenceStatus": "AWAY" })).await;
    assert_eq!(body["data"]["setPresence"]["userErrors"], json!([]));
    assert_eq!(presence_events(&app).await, 1);

    // Someone else's presence: FORBIDDEN below ADMIN, and nothing changes.
    for token in [&agent_token, &lead_token] {
        let body = set_presence(
            &app,
            token,
            json!({ "userId": app.org.owner_id, "presenceStatus": "BUSY" }),
        )
        .await;
        assert_eq!(codes(&body), ["FORBIDDEN"], "{body}");
        assert_eq!(body["data"]["setPresence"], Value::Null);
    }
    assert_eq!(
        presence(&app, &app.org.owner_id).await["presenceStatus"],
        "WORKING"
    );
    assert_eq!(presence_events(&app).await, 1);

    let body = set_presence(
        &app,
        &admin_token,
        json!({ "userId": agent, "presenceStatus": "WORKING", "activeChannels": ["SMS"] }),
    )
    .await;
    assert_eq!(
        body["data"]["setPresence"],
        json!({ "presence": { "user": { "id": agent }, "presenceStatus": "WORKING", "activeChannels": ["SMS"],
                              "capacity": [{ "channelType": "EMAIL", "conversations": 0 }, { "channelType": "CHAT", "conversations": 5 }] },
                "userErrors": [] })
    );
    assert_eq!(presence_events(&app).await, 2);

    // A user of another organization is not found.
    let other = app.create_org("Other", "other", "owner@other.test").await;
    let body = set_presence(
        &app,
        &admin_token,
        json!({ "userId": other.owner_id, "presenceStatus": "AWAY" }),
    )
    .await;
    assert_eq!(
        body["data"]["setPresence"],
        json!({ "presence": null, "userErrors": [{ "field": ["input", "userId"], "message": "no such user", "code": "NOT_FOUND" }] })
    );
}

#[tokio::test]
async fn bad_channels_and_capacity_are_refused_and_change_nothing() {
    let app = app().await;
    let (agent, token) = app.user_with_token("ann@acme.test", &["AGENT"]).await;
    let set = set_presence(
        &app,
        &token,
        json!({ "activeChannels": ["EMAIL"], "capacity": [{ "channelType": "EMAIL", "conversations": 2 }] }),
    )
    .await;
    assert_eq!(set["data"]["setPresence"]["userErrors"], json!([]));
    let before = presence(&app, &agent).await;

    let body = set_presence(
        &app,
        &token,
        json!({ "presenceStatus": "BUSY", "activeChannels": ["SMS", "CHAT", "SMS"],
                "capacity": [{ "channelType": "EMAIL", "conversations": -1 },
                             { "channelType": "SMS", "conversations": 1001 },
                             { "channelType": "EMAIL", "conversations": 3 }] }),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(
        body["data"]["setPresence"],
        json!({ "presence": null, "userErrors": [
            { "field": ["input", "activeChannels", "2"], "message": "SMS is listed twice", "code": "INVALID" },
            { "field": ["input", "capacity", "0", "conversations"], "message": "must be between 0 and 1000", "code": "INVALID" },
            { "field": ["input", "capacity", "1", "conversations"], "message": "must be between 0 and 1000", "code": "INVALID" },
            { "field": ["input", "capacity", "2", "channelType"], "message": "EMAIL is listed twice", "code": "INVALID" },
        ] })
    );
    assert_eq!(presence(&app, &agent).await, before);
    assert_eq!(presence_events(&app).await, 1);

    // An unknown channel type is not even a valid request.
    let body = set_presence(&app, &token, json!({ "activeChannels": ["PIGEON"] })).await;
    assert_eq!(codes(&body), ["GRAPHQL_VALIDATION_FAILED"], "{body}");
    assert_eq!(presence(&app, &agent).await, before);
}

const AGENT_PRESENCE: &str = "query($filter: PresenceFilterInput, $first: Int) {
    agentPresence(filter: $filter, first: $first) {
        totalCount pageInfo { hasNextPage }
        nodes { user { displayName } connectionStatus presenceStatus activeChannels } } }";

const TEAM_PRESENCE: &str = "query($team: ID!, $filter: PresenceFilterInput) {
    teamPresence(teamId: $team, filter: $filter) { nodes { user { displayName } connectionStatus presenceStatus } } }";

fn names(list: &Value) -> Vec<String> {
    list["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["user"]["displayName"].as_str().unwrap().to_string())
        .collect()
}

async fn team_with(app: &TestApp, members: &[&str]) -> String {
    let data = app
        .data(
            &app.org.token,
            "mutation($input: CreateTeamInput!) { createTeam(input: $input) { team { id } } }",
            json!({ "input": { "name": "Support" } }),
        )
        .await;
    let team = data["createTeam"]["team"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let data = app
        .data(
            &app.org.token,
            "mutation($input: TeamMembersInput!) { addTeamMembers(input: $input) { userErrors { message } } }",
            json!({ "input": { "teamId": team, "userIds": members } }),
        )
        .await;
    assert_eq!(data["addTeamMembers"]["userErrors"], json!([]));
    team
}

#[tokio::test]
async fn team_presence_and_agent_presence_list_with_filters() {
    let app = app().await;
    let (ann, ann_token) = app.user_with_token("ann@acme.test", &["AGENT"]).await;
    let (_, bob_token) = app.user_with_token("bob@acme.test", &["AGENT"]).await;
    let team = team_with(&app, &[&ann, &app.org.owner_id]).await;
    let _ann_socket = connected(&app, &ann_token).await;
    let set = set_presence(
        &app,
        &bob_token,
        json!({ "presenceStatus": "AWAY", "activeChannels": ["SMS", "VOICE"] }),
    )
    .await;
    assert_eq!(set["data"]["setPresence"]["userErrors"], json!([]));

    let all = app.data(&app.org.token, AGENT_PRESENCE, json!({})).await;
    assert_eq!(
        all["agentPresence"],
        json!({ "totalCount": 3, "pageInfo": { "hasNextPage": false }, "nodes": [
            { "user": { "displayName": "Acme Owner" }, "connectionStatus": "OFFLINE", "presenceStatus": "WORKING", "activeChannels": [] },
            { "user": { "displayName": "ann" }, "connectionStatus": "ONLINE", "presenceStatus": "WORKING", "activeChannels": [] },
            { "user": { "displayName": "bob" }, "connectionStatus": "OFFLINE", "presenceStatus": "AWAY", "activeChannels": ["SMS", "VOICE"] },
        ] })
    );
    let cases = [
        (json!({ "connectionStatus": "ONLINE" }), vec!["ann"]),
        (
            json!({ "connectionStatus": "OFFLINE" }),
            vec!["Acme Owner", "bob"],
        ),
        (
            json!({ "presenceStatus": "WORKING" }),
            vec!["Acme Owner", "ann"],
        ),
        (json!({ "presenceStatus": "AWAY" }), vec!["bob"]),
        (json!({ "presenceStatus": "BUSY" }), vec![]),
        (json!({ "channelType": "VOICE" }), vec!["bob"]),
        (json!({ "channelType": "EMAIL" }), vec![]),
        (json!({ "teamId": team }), vec!["Acme Owner", "ann"]),
        (
            json!({ "teamId": team, "connectionStatus": "OFFLINE" }),
            vec!["Acme Owner"],
        ),
    ];
    for (filter, expected) in cases {
        let data = app
            .data(&app.org.token, AGENT_PRESENCE, json!({ "filter": filter }))
            .await;
        assert_eq!(names(&data["agentPresence"]), expected, "{filter}");
    }
    let page = app
        .data(&app.org.token, AGENT_PRESENCE, json!({ "first": 1 }))
        .await;
    assert_eq!(names(&page["agentPresence"]), ["Acme Owner"]);
    assert_eq!(page["agentPresence"]["pageInfo"]["hasNextPage"], true);

    // A team's members, also for an agent.
    let data = app
        .data(&bob_token, TEAM_PRESENCE, json!({ "team": team }))
        .await;
    assert_eq!(
        data["teamPresence"],
        json!({ "nodes": [
            { "user": { "displayName": "Acme Owner" }, "connectionStatus": "OFFLINE", "presenceStatus": "WORKING" },
            { "user": { "displayName": "ann" }, "connectionStatus": "ONLINE", "presenceStatus": "WORKING" },
        ] })
    );
    let data = app
        .data(
            &app.org.token,
            TEAM_PRESENCE,
            json!({ "team": team, "filter": { "connectionStatus": "ONLINE" } }),
        )
        .await;
    assert_eq!(names(&data["teamPresence"]), ["ann"]);

    // Another organization sees neither the team nor the users.
    let other = app.create_org("Other", "other", "owner@other.test").await;
    let body = app
        .gql(&other.token, TEAM_PRESENCE, json!({ "team": team }))
        .await;
    assert_eq!(codes(&body), ["NOT_FOUND"], "{body}");
    assert_eq!(body["errors"][0]["message"], "team not found");
    let data = app.data(&other.token, AGENT_PRESENCE, json!({})).await;
    assert_eq!(names(&data["agentPresence"]), ["Other Owner"]);
    let data = app.data(&other.token, PRESENCE, json!({ "id": ann })).await;
    assert_eq!(data["presence"], Value::Null);
}

#[tokio::test]
async fn a_token_holds_at_most_the_cap_of_connections_and_a_closed_one_frees_its_place() {
    let app = app().await;
    let (agent, token) = app.user_with_token("ann@acme.test", &["AGENT"]).await;
    let first = connected(&app, &token).await;
    let _second = connected_by_header(&app, &token).await;

    // Over the cap by header: 429 with a GraphQL-style error, no websocket.
    match open(&app, Some(&token)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(
                body,
                json!({ "errors": [{ "message": "connection limit reached: at most 2 websocket connections per API token",
                                      "extensions": { "code": "RATE_LIMITED" } }] })
            );
        }
        Ok(_) => panic!("expected 429, got a websocket"),
        Err(other) => panic!("expected 429, got {other:?}"),
    }
    // Over the cap in connection_init: closed with 4403 and the reason.
    let mut socket = open(&app, None).await.unwrap();
    send(&mut socket, init(&token)).await;
    assert_eq!(
        closed(&mut socket).await,
        (
            4403,
            "Forbidden: connection limit reached: at most 2 websocket connections per API token"
                .into()
        )
    );
    // Refused connections were never recorded.
    recorded_connections(&app, 2).await;

    // The cap is per token: another token of the same user connects.
    let data = app
        .data(
            &app.org.token,
            "mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token } }",
            json!({ "input": { "name": "second", "userId": agent } }),
        )
        .await;
    let other_token = data["createApiToken"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let third = connected(&app, &other_token).await;
    recorded_connections(&app, 3).await;
    hang_up(third).await;

    // A closed connection frees its place.
    hang_up(first).await;
    recorded_connections(&app, 1).await;
    let mut again = connected_by_header(&app, &token).await;
    let mut socket = open(&app, None).await.unwrap();
    send(&mut socket, init(&token)).await;
    assert_eq!(closed(&mut socket).await.0, 4403);

    // So does one the server closes (here for breaking the protocol).
    again.send(Frame::Text("{not json".into())).await.unwrap();
    assert_eq!(closed(&mut again).await.0, 4400);
    recorded_connections(&app, 1).await;
    let _last = connected(&app, &token).await;
    recorded_connections(&app, 2).await;
}

#[tokio::test]
async fn presence_changed_replays_after_a_cursor_filtered_by_team_and_users_then_goes_live() {
    let app = app().await;
    let (ann, ann_token) = app.user_with_token("ann@acme.test", &["AGENT"]).await;
    let (bob, bob_token) = app.user_with_token("bob@acme.test", &["AGENT"]).await;
    let team = team_with(&app, &[&ann]).await;
    let changes = [
        (&ann_token, json!({ "presenceStatus": "BUSY" })),
        (&bob_token, json!({ "presenceStatus": "AWAY" })),
        (
            &ann_token,
            json!({ "activeChannels": ["CHAT"], "capacity": [{ "channelType": "CHAT", "conversations": 4 }] }),
        ),
    ];
    for (token, input) in changes {
        let body = set_presence(&app, token, input).await;
        assert_eq!(
            body["data"]["setPresence"]["userErrors"],
            json!([]),
            "{body}"
        );
    }

    let mut socket = connected(&app, &app.org.token).await;
    subscribe(
        &mut socket,
        "team",
        json!({ "team": team, "after": from_the_start() }),
    )
    .await;
    let of_team = events(&mut socket, "team", 2).await;
    assert_eq!(
        summary(&of_team),
        [
            (
                ann.clone(),
                json!(["PRESENCE_STATUS"]),
                "OFFLINE".into(),
                "BUSY".into()
            ),
            (
                ann.clone(),
                json!(["ACTIVE_CHANNELS", "CAPACITY"]),
                "OFFLINE".into(),
                "BUSY".into()
            ),
        ]
    );
    assert_eq!(of_team[1]["presence"]["activeChannels"], json!(["CHAT"]));
    assert_eq!(
        of_team[1]["presence"]["capacity"],
        json!([{ "channelType": "CHAT", "conversations": 4 }])
    );

    subscribe(
        &mut socket,
        "bob",
        json!({ "users": [bob], "after": from_the_start() }),
    )
    .await;
    let of_bob = events(&mut socket, "bob", 1).await;
    assert_eq!(
        summary(&of_bob),
        [(
            bob.clone(),
            json!(["PRESENCE_STATUS"]),
            "OFFLINE".into(),
            "AWAY".into()
        )]
    );

    // After the first team event: everyone's changes since, the same cursors, then live.
    subscribe(&mut socket, "all", json!({ "after": of_team[0]["cursor"] })).await;
    let since = events(&mut socket, "all", 3).await;
    assert_eq!(since[0]["presence"]["user"]["id"], bob.as_str());
    assert_eq!(since[1], of_team[1]);
    // The subscriber's own connection.
    assert_eq!(
        summary(&since[2..]),
        [(
            app.org.owner_id.clone(),
            json!(["CONNECTION_STATUS"]),
            "ONLINE".into(),
            "WORKING".into()
        )]
    );
    let body = set_presence(&app, &bob_token, json!({ "presenceStatus": "WORKING" })).await;
    assert_eq!(body["data"]["setPresence"]["userErrors"], json!([]));
    // Bob is not in the team: only the unfiltered and Bob's subscriptions hear it.
    let mut heard = Vec::new();
    for _ in 0..2 {
        let message = next(&mut socket).await.unwrap();
        let presence = &message["payload"]["data"]["presenceChanged"]["presence"];
        assert_eq!(presence["user"]["id"], bob.as_str(), "{message}");
        assert_eq!(presence["presenceStatus"], "WORKING");
        heard.push(message["id"].as_str().unwrap().to_string());
    }
    heard.sort();
    assert_eq!(heard, ["all", "bob"]);

    // Another organization replays none of it, and cannot name these users.
    let other = app.create_org("Other", "other", "owner@other.test").await;
    let mut socket = connected(&app, &other.token).await;
    subscribe(
        &mut socket,
        "x",
        json!({ "users": [ann], "after": from_the_start() }),
    )
    .await;
    let message = next(&mut socket).await.unwrap();
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"],
        "NOT_FOUND"
    );
    assert_eq!(
        next(&mut socket).await,
        Some(json!({ "id": "x", "type": "complete" }))
    );
    subscribe(&mut socket, "y", json!({ "after": from_the_start() })).await;
    // The other owner's own connection is the first and only event it sees.
    let own = events(&mut socket, "y", 1).await;
    assert_eq!(
        summary(&own),
        [(
            other.owner_id.clone(),
            json!(["CONNECTION_STATUS"]),
            "ONLINE".into(),
            "WORKING".into()
        )]
    );
    let body = set_presence(&app, &bob_token, json!({ "presenceStatus": "BUSY" })).await;
    assert_eq!(body["data"]["setPresence"]["userErrors"], json!([]));
    let body = set_presence(&app, &other.token, json!({ "presenceStatus": "AWAY" })).await;
    assert_eq!(body["data"]["setPresence"]["userErrors"], json!([]));
    let next_own = events(&mut socket, "y", 1).await;
    assert_eq!(
        next_own[0]["presence"]["user"]["id"],
        other.owner_id.as_str(),
        "Acme's change was not delivered"
    );
}
