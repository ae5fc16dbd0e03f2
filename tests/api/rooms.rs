//! Rooms: create and schedule, invite, join with signed simulator credentials, mute and unmute,
//! leave, terminate; completion when empty past the grace period and at the planned end (by the
//! controllable clock); recordings; the provider's failure path; `roomChanged` over the
//! websocket; bad input refused with a clear error and nothing changed; tenant isolation.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::{Value, json};
use switchboard::graphql::relay::decode_id;
use switchboard::rooms::credentials::{self, TokenError};

use crate::common::{TestApp, codes};
use crate::fixtures;
use crate::live::{connected, next_data, subscribe_to};

const PARTICIPANT: &str = "id status audio user { email } contact { firstName } joinedAt leftAt";

fn room_fields() -> String {
    format!(
        "id kind name state scheduledStart durationMinutes endsAt maxParticipants recorded
         connectedCount openedAt endedAt failureReason conversation {{ id }} createdBy {{ email }}
         participants {{ {PARTICIPANT} }}
         recordings {{ status processingPercent durationSeconds sizeBytes completedAt }}"
    )
}

fn create_mutation() -> String {
    format!(
        "mutation($input: CreateRoomInput!) {{ createRoom(input: $input) {{ room {{ {} }} userErrors {{ field message code }} }} }}",
        room_fields()
    )
}

const INVITE: &str = "mutation($input: InviteToRoomInput!) { inviteToRoom(input: $input) {
    room { participants { status user { email } contact { firstName } } } userErrors { field message code } } }";
const JOIN: &str = "mutation($input: RoomPresenceInput!) { joinRoom(input: $input) {
    room { state connectedCount } participant { id status audio user { email } contact { firstName } }
    credentials { token expiresAt provider } userErrors { field message code } } }";
const LEAVE: &str = "mutation($input: RoomPresenceInput!) { leaveRoom(input: $input) {
    room { state connectedCount } participant { status leftAt } userErrors { field message code } } }";
const AUDIO: &str = "mutation($input: SetRoomAudioStateInput!) { setRoomAudioState(input: $input) {
    participant { audio user { email } } userErrors { field message code } } }";
const TERMINATE: &str = "mutation($input: RoomIdInput!) { terminateRoom(input: $input) {
    room { state endedAt connectedCount participants { status } } userErrors { field message code } } }";

async fn create(app: &TestApp, token: &str, input: Value) -> Value {
    app.data(token, &create_mutation(), json!({ "input": input }))
        .await["createRoom"]
        .clone()
}

async fn created(app: &TestApp, token: &str, input: Value) -> Value {
    let payload = create(app, token, input).await;
    assert_eq!(payload["userErrors"], json!([]), "{payload}");
    payload["room"].clone()
}

async fn get(app: &TestApp, token: &str, id: &str) -> Value {
    app.data(
        token,
        &format!(
            "query($id: ID!) {{ node(id: $id) {{ ... on Room {{ {} }} }} }}",
            room_fields()
        ),
        json!({ "id": id }),
    )
    .await["node"]
        .clone()
}

async fn join(app: &TestApp, token: &str, input: Value) -> Value {
    app.data(token, JOIN, json!({ "input": input })).await["joinRoom"].clone()
}

async fn leave(app: &TestApp, token: &str, input: Value) -> Value {
    app.data(token, LEAVE, json!({ "input": input })).await["leaveRoom"].clone()
}

async fn audio(app: &TestApp, token: &str, room: &str, participant: &Value, state: &str) -> Value {
    app.data(
        token,
        AUDIO,
        json!({ "input": { "roomId": room, "participantId": participant, "audio": state } }),
    )
    .await["setRoomAudioState"]
        .clone()
}

async fn terminate(app: &TestApp, token: &str, room: &str) -> Value {
    app.data(token, TERMINATE, json!({ "input": { "roomId": room } }))
        .await["terminateRoom"]
        .clone()
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("time"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

fn uuid_of(id: &str, type_name: &str) -> uuid::Uuid {
    decode_id(id, type_name)
        .map_err(|e| e.public_message())
        .expect("global id")
}

/// The room's secret, read from the database (it is never exposed by the API).
async fn secret_of(app: &TestApp, room: &str) -> String {
    use sea_orm::EntityTrait;
    entity::room::Entity::find_by_id(uuid_of(room, "Room"))
        .one(&app.state.db)
        .await
        .expect("query")
        .expect("room")
        .secret
}

/// Rows and events, to show that a refused operation changed nothing.
async fn snapshot(app: &TestApp) -> (i64, i64, i64, i64, String) {
    let states = {
        use sea_orm::{EntityTrait, QueryOrder};
        let rows = entity::room_participant::Entity::find()
            .order_by_asc(entity::room_participant::Column::Id)
            .all(&app.state.db)
            .await
            .expect("participants");
        rows.iter()
            .map(|p| format!("{}:{}:{}", p.id, p.status, p.audio))
            .collect::<Vec<_>>()
            .join(",")
    };
    (
        app.count("rooms").await,
        app.count("room_participants").await,
        app.count("events").await,
        app.count("jobs").await,
        states,
    )
}

/// The event types recorded about rooms, in order.
async fn room_events(app: &TestApp) -> Vec<String> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    entity::event::Entity::find()
        .filter(entity::event::Column::SubjectType.eq("Room"))
        .order_by_asc(entity::event::Column::Seq)
        .all(&app.state.db)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

async fn workers() -> TestApp {
    TestApp::spawn_with(|c| {
        c.job_workers = 2;
        c.job_poll_ms = 20;
        c.room_empty_grace_seconds = 60;
    })
    .await
}

/// Polls the room until `done` holds (at most 20 s).
async fn until(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(20);
    loop {
        let room = get(app, &app.org.token, id).await;
        if done(&room) {
            return room;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the room never got there: {room}"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_room_is_joined_with_signed_credentials_muted_left_and_terminated() {
    let app = TestApp::spawn().await;
    let owner = app.org.token.clone();
    let (agent_id, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let (_, other_agent) = app.user_with_token("other@acme.test", &["AGENT"]).await;
    let ann = fixtures::contact(&app, &owner, json!({ "firstName": "Ann" })).await;
    let t0 = Utc::now().trunc_subsecs(0);
    app.state.clock.set(t0);

    let room = created(
        &app,
        &owner,
        json!({ "kind": "VIDEO", "name": " Consultation ", "maxParticipants": 2,
                "userIds": [agent_id], "contactIds": [ann] }),
    )
    .await;
    let id = room["id"].as_str().unwrap().to_string();
    assert_eq!(
        room,
        json!({
            "id": id, "kind": "VIDEO", "name": "Consultation", "state": "OPEN",
            "scheduledStart": room["scheduledStart"], "durationMinutes": 60,
            "endsAt": room["endsAt"], "maxParticipants": 2, "recorded": false,
            "connectedCount": 0, "openedAt": room["openedAt"], "endedAt": null,
            "failureReason": null, "conversation": null,
            "createdBy": { "email": "owner@acme.test" },
            "participants": [
                { "id": room["participants"][0]["id"], "status": "INVITED", "audio": "UNMUTED",
                  "user": { "email": "agent@acme.test" }, "contact": null, "joinedAt": null, "leftAt": null },
                { "id": room["participants"][1]["id"], "status": "INVITED", "audio": "UNMUTED",
                  "user": null, "contact": { "firstName": "Ann" }, "joinedAt": null, "leftAt": null },
            ],
            "recordings": [],
        })
    );
    assert_eq!(time(&room["scheduledStart"]), t0);
    assert_eq!(time(&room["openedAt"]), t0);
    assert_eq!(time(&room["endsAt"]), t0 + Duration::minutes(60));

    // The invited agent joins: connected, with a token the room's secret signed.
    let joined = join(&app, &agent, json!({ "roomId": id })).await;
    assert_eq!(joined["userErrors"], json!([]));
    assert_eq!(
        joined["room"],
        json!({ "state": "OPEN", "connectedCount": 1 })
    );
    assert_eq!(
        joined["participant"],
        json!({ "id": room["participants"][0]["id"], "status": "CONNECTED", "audio": "UNMUTED",
                "user": { "email": "agent@acme.test" }, "contact": null })
    );
    let agent_participant = joined["participant"]["id"].clone();
    assert_eq!(joined["credentials"]["provider"], "simulator");
    let expires = time(&joined["credentials"]["expiresAt"]);
    assert_eq!(expires, t0 + Duration::minutes(60));
    let token = joined["credentials"]["token"].as_str().unwrap();
    let secret = secret_of(&app, &id).await;
    let claims = credentials::verify(&secret, token, t0).expect("a valid token");
    assert_eq!(claims.room, uuid_of(&id, "Room"));
    assert_eq!(
        claims.participant,
        uuid_of(agent_participant.as_str().unwrap(), "RoomParticipant")
    );
    assert_eq!(claims.exp, expires.timestamp());
    assert_eq!(
        credentials::verify(&secret, token, expires),
        Err(TokenError::Expired)
    );
    // The secret is not a field of the room.
    let fields = app
        .data(
            &owner,
            "{ __type(name: \"Room\") { fields { name } } }",
            json!({}),
        )
        .await;
    assert!(
        !fields.to_string().to_lowercase().contains("secret"),
        "the room's secret leaked into the schema"
    );

    // The owner joins without an invitation: the room is full.
    let owner_joined = join(&app, &owner, json!({ "roomId": id })).await;
    assert_eq!(owner_joined["userErrors"], json!([]));
    assert_eq!(owner_joined["room"]["connectedCount"], 2);
    let owner_participant = owner_joined["participant"]["id"].clone();

    // Joining a full room is refused and changes nothing.
    let before = snapshot(&app).await;
    let full = join(&app, &owner, json!({ "roomId": id, "contactId": ann })).await;
    assert_eq!(
        full,
        json!({ "room": null, "participant": null, "credentials": null, "userErrors": [
            { "field": ["input", "roomId"], "message": "the room is full: 2 participants are connected, its maximum", "code": "LIMIT_EXCEEDED" }
        ] })
    );
    assert_eq!(snapshot(&app).await, before);
    // Joining again while connected hands out fresh credentials and changes nothing.
    let again = join(&app, &agent, json!({ "roomId": id })).await;
    assert_eq!(again["userErrors"], json!([]));
    assert_eq!(again["participant"]["id"], agent_participant);
    assert_eq!(snapshot(&app).await, before);

    // An agent mutes themselves, but not someone else (only the creator or a TEAM_LEAD may).
    let muted = audio(&app, &agent, &id, &agent_participant, "MUTED").await;
    assert_eq!(
        muted,
        json!({ "participant": { "audio": "MUTED", "user": { "email": "agent@acme.test" } }, "userErrors": [] })
    );
    let before = snapshot(&app).await;
    let not_theirs = audio(&app, &agent, &id, &owner_participant, "MUTED").await;
    assert_eq!(
        not_theirs,
        json!({ "participant": null, "userErrors": [
            { "field": ["input", "participantId"], "message": "only the room's creator or a TEAM_LEAD can mute or unmute another participant", "code": "FORBIDDEN" }
        ] })
    );
    // Someone not in the room cannot mute anyone.
    let outsider = audio(&app, &other_agent, &id, &agent_participant, "UNMUTED").await;
    assert_eq!(
        outsider,
        json!({ "participant": null, "userErrors": [
            { "field": ["input", "roomId"], "message": "you are not connected to this room: only its connected participants can mute or unmute", "code": "FORBIDDEN" }
        ] })
    );
    assert_eq!(snapshot(&app).await, before);
    let unmuted = audio(&app, &owner, &id, &agent_participant, "UNMUTED").await;
    assert_eq!(unmuted["participant"]["audio"], "UNMUTED");
    // The same state again records nothing.
    let events = app.count("events").await;
    let same = audio(&app, &owner, &id, &agent_participant, "UNMUTED").await;
    assert_eq!(same["userErrors"], json!([]));
    assert_eq!(app.count("events").await, events);

    // The agent leaves; leaving again is refused.
    let left = leave(&app, &agent, json!({ "roomId": id })).await;
    assert_eq!(left["userErrors"], json!([]));
    assert_eq!(
        left["room"],
        json!({ "state": "OPEN", "connectedCount": 1 })
    );
    assert_eq!(left["participant"]["status"], "DISCONNECTED");
    assert_eq!(time(&left["participant"]["leftAt"]), t0);
    let before = snapshot(&app).await;
    let twice = leave(&app, &agent, json!({ "roomId": id })).await;
    assert_eq!(
        twice["userErrors"],
        json!([{ "field": ["input", "roomId"], "message": "you are not connected to this room", "code": "INVALID_STATE" }])
    );
    // A disconnected participant cannot mute anyone either.
    let gone = audio(&app, &agent, &id, &owner_participant, "MUTED").await;
    assert_eq!(gone["userErrors"][0]["code"], "FORBIDDEN");
    // Only the creator or a TEAM_LEAD terminates.
    let refused = terminate(&app, &other_agent, &id).await;
    assert_eq!(
        refused,
        json!({ "room": null, "userErrors": [
            { "field": ["input", "roomId"], "message": "only the room's creator or a TEAM_LEAD can terminate it", "code": "FORBIDDEN" }
        ] })
    );
    assert_eq!(snapshot(&app).await, before);

    let terminated = terminate(&app, &owner, &id).await;
    assert_eq!(terminated["userErrors"], json!([]));
    assert_eq!(
        terminated["room"],
        json!({ "state": "TERMINATED", "endedAt": terminated["room"]["endedAt"], "connectedCount": 0,
                "participants": [{ "status": "DISCONNECTED" }, { "status": "INVITED" }, { "status": "DISCONNECTED" }] })
    );
    assert_eq!(time(&terminated["room"]["endedAt"]), t0);

    // A terminated room cannot be joined, invited to or terminated again; nothing changes.
    let before = snapshot(&app).await;
    let late = join(&app, &agent, json!({ "roomId": id })).await;
    assert_eq!(
        late["userErrors"],
        json!([{ "field": ["input", "roomId"], "message": "the room is TERMINATED: it can no longer be joined", "code": "INVALID_STATE" }])
    );
    assert_eq!(late["credentials"], Value::Null);
    let invited = app
        .data(
            &owner,
            INVITE,
            json!({ "input": { "roomId": id, "contactIds": [ann] } }),
        )
        .await;
    assert_eq!(
        invited["inviteToRoom"]["userErrors"],
        json!([{ "field": ["input", "roomId"], "message": "the room is TERMINATED: nobody can be invited any more", "code": "INVALID_STATE" }])
    );
    let again = terminate(&app, &owner, &id).await;
    assert_eq!(
        again["userErrors"],
        json!([{ "field": ["input", "roomId"], "message": "the room is TERMINATED: only a SCHEDULED or OPEN room can be terminated", "code": "INVALID_STATE" }])
    );
    assert_eq!(snapshot(&app).await, before);
    // Not recorded: no recording.
    assert_eq!(app.count("room_recordings").await, 0);

    assert_eq!(
        room_events(&app).await,
        [
            "ROOM_CREATED",
            "ROOM_PARTICIPANT_INVITED",
            "ROOM_PARTICIPANT_INVITED",
            "ROOM_PARTICIPANT_JOINED",
            "ROOM_PARTICIPANT_JOINED",
            "ROOM_AUDIO_CHANGED",
            "ROOM_AUDIO_CHANGED",
            "ROOM_PARTICIPANT_LEFT",
            "ROOM_TERMINATED",
        ]
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_a_clear_error_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let t0 = Utc::now().trunc_subsecs(0);
    app.state.clock.set(t0);
    let before = snapshot(&app).await;

    let refused = create(
        &app,
        &token,
        json!({ "kind": "VOICE", "name": "  ", "durationMinutes": 0, "maxParticipants": 1,
                "scheduledStart": (t0 - Duration::minutes(1)).to_rfc3339() }),
    )
    .await;
    assert_eq!(
        refused,
        json!({ "room": null, "userErrors": [
            { "field": ["input", "name"], "message": "name must not be empty", "code": "REQUIRED" },
            { "field": ["input", "durationMinutes"], "message": "durationMinutes must be between 1 and 1440", "code": "INVALID" },
            { "field": ["input", "maxParticipants"], "message": "maxParticipants must be between 2 and 100", "code": "INVALID" },
            { "field": ["input", "scheduledStart"], "message": "scheduledStart must be in the future; leave it out to open the room now", "code": "INVALID" },
        ] })
    );
    let too_many = create(
        &app,
        &token,
        json!({ "kind": "VOICE", "name": "Big", "durationMinutes": 1441, "maxParticipants": 101 }),
    )
    .await;
    assert_eq!(
        too_many["userErrors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["code"].clone())
            .collect::<Vec<_>>(),
        [json!("INVALID"), json!("INVALID")]
    );

    // Ids: malformed, of another type, unknown, or another organization's.
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let theirs = fixtures::contact(&app, &other.token, json!({ "firstName": "Zed" })).await;
    let (deactivated, _) = app.user_with_token("gone@acme.test", &["AGENT"]).await;
    app.sql("UPDATE users SET status = 'DEACTIVATED' WHERE email = 'gone@acme.test'")
        .await;
    let bad_ids = create(
        &app,
        &token,
        json!({ "kind": "VIDEO", "name": "Ids", "conversationId": "nope",
                "userIds": [app.org.owner_id], "contactIds": [] }),
    )
    .await;
    assert_eq!(
        bad_ids["userErrors"],
        json!([{ "field": ["input", "conversationId"], "message": "\"nope\" is not a valid id", "code": "INVALID" }])
    );
    let wrong = create(
        &app,
        &token,
        json!({ "kind": "VIDEO", "name": "Ids", "userIds": [deactivated, theirs], "contactIds": [theirs] }),
    )
    .await;
    assert_eq!(
        wrong["userErrors"][0]["field"],
        json!(["input", "userIds", "1"])
    );
    assert_eq!(wrong["userErrors"][0]["code"], "INVALID");
    let unknown = create(
        &app,
        &token,
        json!({ "kind": "VIDEO", "name": "Ids", "userIds": [deactivated], "contactIds": [theirs],
                "conversationId": switchboard::graphql::relay::encode_id("Conversation", uuid::Uuid::now_v7()).0 }),
    )
    .await;
    assert_eq!(
        unknown["userErrors"],
        json!([{ "field": ["input", "conversationId"], "message": "no such conversation", "code": "NOT_FOUND" }])
    );
    let invitees = create(
        &app,
        &token,
        json!({ "kind": "VIDEO", "name": "Ids", "userIds": [deactivated], "contactIds": [theirs] }),
    )
    .await;
    assert_eq!(
        invitees["userErrors"],
        json!([
            { "field": ["input", "userIds", "0"], "message": "the user is deactivated", "code": "INVALID_STATE" },
            { "field": ["input", "contactIds", "0"], "message": "no such contact", "code": "NOT_FOUND" },
        ])
    );
    assert_eq!(app.count("rooms").await, before.0);
    assert_eq!(app.count("jobs").await, before.3);

    // A scheduled room is not joinable long before its start.
    let start = t0 + Duration::hours(2);
    let room = created(
        &app,
        &token,
        json!({ "kind": "VOICE", "name": "Later", "scheduledStart": start.to_rfc3339(), "durationMinutes": 30 }),
    )
    .await;
    assert_eq!(room["state"], "SCHEDULED");
    assert_eq!(room["openedAt"], Value::Null);
    assert_eq!(time(&room["endsAt"]), start + Duration::minutes(30));
    let id = room["id"].as_str().unwrap().to_string();
    let before = snapshot(&app).await;
    let early = join(&app, &token, json!({ "roomId": id })).await;
    assert_eq!(
        early["userErrors"],
        json!([{ "field": ["input", "roomId"], "code": "INVALID_STATE", "message": format!(
            "the room is SCHEDULED for {}: it can be joined from {}",
            start.to_rfc3339(), (start - Duration::minutes(10)).to_rfc3339()) }])
    );
    // Unknown room, participant, contact; another organization's room; nothing to invite.
    let nowhere = switchboard::graphql::relay::encode_id("Room", uuid::Uuid::now_v7()).0;
    let missing = join(&app, &token, json!({ "roomId": nowhere })).await;
    assert_eq!(
        missing["userErrors"],
        json!([{ "field": ["input", "roomId"], "message": "no such room", "code": "NOT_FOUND" }])
    );
    let foreign = join(&app, &other.token, json!({ "roomId": id })).await;
    assert_eq!(foreign["userErrors"][0]["code"], "NOT_FOUND");
    let their_contact = join(&app, &token, json!({ "roomId": id, "contactId": theirs })).await;
    assert_eq!(
        their_contact["userErrors"],
        json!([{ "field": ["input", "contactId"], "message": "no such contact", "code": "NOT_FOUND" }])
    );
    let nothing = app
        .data(&token, INVITE, json!({ "input": { "roomId": id } }))
        .await;
    assert_eq!(
        nothing["inviteToRoom"]["userErrors"],
        json!([{ "field": ["input", "userIds"], "message": "give userIds or contactIds to invite", "code": "REQUIRED" }])
    );
    let mute_nobody = audio(&app, &token, &id, &json!("RoomParticipant:x"), "MUTED").await;
    assert_eq!(mute_nobody["userErrors"][0]["code"], "INVALID");
    let not_theirs = terminate(&app, &other.token, &id).await;
    assert_eq!(not_theirs["userErrors"][0]["code"], "NOT_FOUND");
    assert_eq!(snapshot(&app).await, before);
    // Another organization does not see it.
    let hidden = app
        .data(
            &other.token,
            "query($id: ID!) { node(id: $id) { id } rooms { totalCount } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        hidden,
        json!({ "node": null, "rooms": { "totalCount": 0 } })
    );
    // Unauthenticated callers get nothing.
    let (_, _, body) = app
        .post(None, json!({ "query": "{ rooms { totalCount } }" }))
        .await;
    assert_eq!(codes(&body), ["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn inviting_skips_those_already_in_and_rooms_are_listed_by_filter() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (agent_id, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let ann = fixtures::contact(&app, &token, json!({ "firstName": "Ann" })).await;
    let bob = fixtures::contact(&app, &token, json!({ "firstName": "Bob" })).await;
    let voice = created(&app, &token, json!({ "kind": "VOICE", "name": "Standup" })).await;
    let video = created(
        &app,
        &token,
        json!({ "kind": "VIDEO", "name": "Visit", "contactIds": [ann] }),
    )
    .await;
    let invited = app
        .data(
            &agent,
            INVITE,
            json!({ "input": { "roomId": video["id"], "userIds": [agent_id, agent_id], "contactIds": [ann, bob] } }),
        )
        .await;
    assert_eq!(
        invited["inviteToRoom"],
        json!({ "room": { "participants": [
            { "status": "INVITED", "user": null, "contact": { "firstName": "Ann" } },
            { "status": "INVITED", "user": { "email": "agent@acme.test" }, "contact": null },
            { "status": "INVITED", "user": null, "contact": { "firstName": "Bob" } },
        ] }, "userErrors": [] })
    );
    // An agent joins a contact on their behalf.
    let ann_in = join(
        &app,
        &agent,
        json!({ "roomId": video["id"], "contactId": ann }),
    )
    .await;
    assert_eq!(
        ann_in["participant"]["contact"],
        json!({ "firstName": "Ann" })
    );
    assert_eq!(ann_in["participant"]["status"], "CONNECTED");
    let ann_out = leave(
        &app,
        &agent,
        json!({ "roomId": video["id"], "contactId": ann }),
    )
    .await;
    assert_eq!(ann_out["participant"]["status"], "DISCONNECTED");
    let bob_out = leave(
        &app,
        &agent,
        json!({ "roomId": video["id"], "contactId": bob }),
    )
    .await;
    assert_eq!(
        bob_out["userErrors"],
        json!([{ "field": ["input", "contactId"], "message": "the contact is not connected to this room", "code": "INVALID_STATE" }])
    );
    // A TEAM_LEAD who did not create the room may mute another participant.
    let (_, lead) = app.user_with_token("lead@acme.test", &["TEAM_LEAD"]).await;
    let agent_in = join(&app, &agent, json!({ "roomId": video["id"] })).await;
    join(&app, &lead, json!({ "roomId": video["id"] })).await;
    let muted = audio(
        &app,
        &lead,
        video["id"].as_str().unwrap(),
        &agent_in["participant"]["id"],
        "MUTED",
    )
    .await;
    assert_eq!(
        muted,
        json!({ "participant": { "audio": "MUTED", "user": { "email": "agent@acme.test" } }, "userErrors": [] })
    );
    // Someone no longer connected cannot be muted.
    let ann_participant = ann_in["participant"]["id"].clone();
    let gone = audio(
        &app,
        &lead,
        video["id"].as_str().unwrap(),
        &ann_participant,
        "MUTED",
    )
    .await;
    assert_eq!(
        gone["userErrors"],
        json!([{ "field": ["input", "participantId"], "message": "the participant is not connected", "code": "INVALID_STATE" }])
    );
    terminate(&app, &token, voice["id"].as_str().unwrap()).await;

    let list = |filter: Value| {
        let app = &app;
        let token = token.clone();
        async move {
            app.data(
                &token,
                "query($filter: RoomFilterInput) { rooms(filter: $filter, first: 10) { totalCount nodes { name } } }",
                json!({ "filter": filter }),
            )
            .await["rooms"]
                .clone()
        }
    };
    assert_eq!(
        list(json!(null)).await,
        json!({ "totalCount": 2, "nodes": [{ "name": "Visit" }, { "name": "Standup" }] })
    );
    assert_eq!(
        list(json!({ "states": ["OPEN"] })).await,
        json!({ "totalCount": 1, "nodes": [{ "name": "Visit" }] })
    );
    assert_eq!(
        list(json!({ "kind": "VOICE" })).await,
        json!({ "totalCount": 1, "nodes": [{ "name": "Standup" }] })
    );
    assert_eq!(
        list(json!({ "participantUserId": agent_id })).await,
        json!({ "totalCount": 1, "nodes": [{ "name": "Visit" }] })
    );
    // Participants and recordings of a page load with a constant number of statements.
    let query = "{ rooms(first: 10) { nodes { name participants { status user { email } contact { firstName } } recordings { status } } } }";
    let (two, _) = app.statements_of(&token, query).await;
    for n in 0..3 {
        created(
            &app,
            &token,
            json!({ "kind": "VIDEO", "name": format!("More {n}"), "contactIds": [ann, bob], "userIds": [agent_id] }),
        )
        .await;
    }
    let (five, data) = app.statements_of(&token, query).await;
    assert_eq!(data["rooms"]["nodes"].as_array().unwrap().len(), 5);
    assert_eq!(two, five, "statements grow with the page");
}

#[tokio::test]
async fn a_room_completes_when_empty_past_the_grace_period_and_at_its_end() {
    let app = workers().await;
    let token = app.org.token.clone();
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    // The clock stands still: nothing is due until it is moved.
    let t0 = Utc::now().trunc_subsecs(0);
    app.state.clock.set(t0);

    // Scheduled: it opens at its start.
    let start = t0 + Duration::hours(1);
    let room = created(
        &app,
        &token,
        json!({ "kind": "VIDEO", "name": "Visit", "scheduledStart": start.to_rfc3339(),
                "durationMinutes": 30, "recorded": true }),
    )
    .await;
    let id = room["id"].as_str().unwrap().to_string();
    app.state.clock.set(start);
    app.state.jobs.wake();
    let opened = until(&app, &id, |r| r["state"] == "OPEN").await;
    assert_eq!(time(&opened["openedAt"]), start);

    // Someone joins and leaves: the room completes once the grace period is over.
    join(&app, &agent, json!({ "roomId": id })).await;
    let left_at = start + Duration::minutes(5);
    app.state.clock.set(left_at);
    let left = leave(&app, &agent, json!({ "roomId": id })).await;
    assert_eq!(
        left["room"],
        json!({ "state": "OPEN", "connectedCount": 0 })
    );
    {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let job = entity::job::Entity::find()
            .filter(entity::job::Column::Kind.eq("room.empty"))
            .one(&app.state.db)
            .await
            .unwrap()
            .expect("the grace job");
        assert_eq!(job.run_at, left_at + Duration::seconds(60));
        assert_eq!(job.status, "QUEUED");
    }
    app.state.clock.set(left_at + Duration::seconds(60));
    app.state.jobs.wake();
    let completed = until(&app, &id, |r| r["state"] == "COMPLETED").await;
    assert_eq!(time(&completed["endedAt"]), left_at + Duration::seconds(60));
    // Recorded: its recording is processed (the connected span: 5 minutes and the grace).
    let processed = until(&app, &id, |r| r["recordings"][0]["status"] == "COMPLETED").await;
    let seconds = 5 * 60 + 60;
    assert_eq!(
        processed["recordings"],
        json!([{ "status": "COMPLETED", "processingPercent": 100, "durationSeconds": seconds,
                 "sizeBytes": seconds * 187_500, "completedAt": processed["recordings"][0]["completedAt"] }])
    );
    assert_eq!(
        room_events(&app).await,
        [
            "ROOM_CREATED",
            "ROOM_OPENED",
            "ROOM_PARTICIPANT_JOINED",
            "ROOM_PARTICIPANT_LEFT",
            "ROOM_COMPLETED",
            "ROOM_RECORDING_READY",
        ]
    );
    // Completed: nobody joins again.
    let late = join(&app, &agent, json!({ "roomId": id })).await;
    assert_eq!(late["userErrors"][0]["code"], "INVALID_STATE");
    assert_eq!(
        late["userErrors"][0]["message"],
        "the room is COMPLETED: it can no longer be joined"
    );

    // Someone rejoins within the grace period: the room stays open.
    let now = left_at + Duration::minutes(10);
    app.state.clock.set(now);
    let second = created(
        &app,
        &token,
        json!({ "kind": "VOICE", "name": "Huddle", "durationMinutes": 15 }),
    )
    .await;
    let second_id = second["id"].as_str().unwrap().to_string();
    join(&app, &agent, json!({ "roomId": second_id })).await;
    leave(&app, &agent, json!({ "roomId": second_id })).await;
    app.state.clock.set(now + Duration::seconds(30));
    let back = join(&app, &agent, json!({ "roomId": second_id })).await;
    assert_eq!(back["room"]["connectedCount"], 1);
    app.state.clock.set(now + Duration::seconds(61));
    app.state.jobs.wake();
    // The grace job ran and left the room open.
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(20);
    while app
        .count("jobs WHERE kind = 'room.empty' AND status = 'SUCCEEDED'")
        .await
        < 2
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the grace job never ran"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    assert_eq!(get(&app, &token, &second_id).await["state"], "OPEN");

    // At its end it completes, disconnecting whoever is still connected.
    let ends_at = now + Duration::minutes(15);
    app.state.clock.set(ends_at);
    app.state.jobs.wake();
    let ended = until(&app, &second_id, |r| r["state"] == "COMPLETED").await;
    assert_eq!(time(&ended["endedAt"]), ends_at);
    assert_eq!(ended["connectedCount"], 0);
    assert_eq!(ended["participants"][0]["status"], "DISCONNECTED");
    assert_eq!(time(&ended["participants"][0]["leftAt"]), ends_at);
    // Not recorded: no recording.
    assert_eq!(ended["recordings"], json!([]));
}

#[tokio::test]
async fn the_provider_can_fail_a_room() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    // The provider reports on a channel's ingest endpoint, signed with its secret.
    let (bridge, secret) = crate::ingest::new_channel(
        &app,
        json!({ "type": "VOICE", "name": "Bridge", "address": "+4570009999" }),
    )
    .await;
    // A room tied to a conversation.
    let (channel, contact) = fixtures::sms_setup(&app).await;
    let conversation = fixtures::inbound(&app, &token, &channel, &contact, "Can we talk?").await;
    let room = created(
        &app,
        &token,
        json!({ "kind": "VOICE", "name": "Bridge", "conversationId": conversation }),
    )
    .await;
    assert_eq!(room["conversation"], json!({ "id": conversation }));
    let id = room["id"].as_str().unwrap().to_string();
    join(&app, &token, json!({ "roomId": id })).await;

    // Bad reports: refused with the field, nothing changes.
    let before = snapshot(&app).await;
    for (report, field, code) in [
        (
            json!({ "type": "room", "roomId": id, "status": "OPEN" }),
            "status",
            "INVALID",
        ),
        (
            json!({ "type": "room", "roomId": id }),
            "status",
            "REQUIRED",
        ),
        (
            json!({ "type": "room", "roomId": "nope", "status": "FAILED" }),
            "roomId",
            "INVALID",
        ),
        (
            json!({ "type": "room", "roomId": id, "recordingStatus": "FAILED" }),
            "recordingId",
            "REQUIRED",
        ),
    ] {
        let (status, answer) = crate::ingest::ingest(&app, &bridge, &secret, report).await;
        assert_eq!(
            status,
            reqwest::StatusCode::UNPROCESSABLE_ENTITY,
            "{answer}"
        );
        assert_eq!(
            answer["errors"][0]["extensions"]["field"], field,
            "{answer}"
        );
        assert_eq!(answer["errors"][0]["extensions"]["code"], code, "{answer}");
    }
    let (status, _) = crate::ingest::ingest(
        &app,
        &bridge,
        &secret,
        json!({ "type": "room", "roomId": uuid::Uuid::now_v7().to_string(), "status": "FAILED" }),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    assert_eq!(snapshot(&app).await, before);

    let (status, answer) = crate::ingest::ingest(
        &app,
        &bridge,
        &secret,
        json!({ "type": "room", "roomId": id, "status": "FAILED", "reason": "the media server went away" }),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(
        answer,
        json!({ "result": "UPDATED", "roomId": id, "state": "FAILED", "recordingId": null,
                "recordingStatus": null, "reason": null })
    );
    let room = get(&app, &token, &id).await;
    assert_eq!(room["state"], "FAILED");
    assert_eq!(room["failureReason"], "the media server went away");
    assert_eq!(room["connectedCount"], 0);
    assert_eq!(room["recordings"], json!([]));
    // Failing it again changes nothing; joining is refused.
    let events = app.count("events").await;
    let (status, again) = crate::ingest::ingest(
        &app,
        &bridge,
        &secret,
        json!({ "type": "room", "roomId": id, "status": "FAILED", "reason": "again" }),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(
        (&again["result"], &again["reason"]),
        (&json!("IGNORED"), &json!("the room is FAILED already"))
    );
    assert_eq!(app.count("events").await, events);
    let late = join(&app, &token, json!({ "roomId": id })).await;
    assert_eq!(
        late["userErrors"][0]["message"],
        "the room is FAILED: it can no longer be joined"
    );
    assert_eq!(room_events(&app).await.last().unwrap(), "ROOM_FAILED");

    // A recording the provider could not process fails (no job runner here: it stays
    // PROCESSING until reported).
    let recorded = created(
        &app,
        &token,
        json!({ "kind": "VIDEO", "name": "Recorded", "recorded": true }),
    )
    .await;
    let recorded = recorded["id"].as_str().unwrap().to_string();
    join(&app, &token, json!({ "roomId": recorded })).await;
    terminate(&app, &token, &recorded).await;
    let recording = app
        .data(
            &token,
            "query($id: ID!) { node(id: $id) { ... on Room { recordings { id status } } } }",
            json!({ "id": recorded }),
        )
        .await["node"]["recordings"][0]
        .clone();
    assert_eq!(recording["status"], "PROCESSING");
    let (status, answer) = crate::ingest::ingest(
        &app,
        &bridge,
        &secret,
        json!({ "type": "room", "roomId": recorded, "recordingId": recording["id"],
                "recordingStatus": "FAILED", "reason": "the file was truncated" }),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(
        answer,
        json!({ "result": "UPDATED", "roomId": recorded, "state": "TERMINATED",
                "recordingId": recording["id"], "recordingStatus": "FAILED", "reason": null })
    );
    assert_eq!(
        get(&app, &token, &recorded).await["recordings"][0]["status"],
        "FAILED"
    );
    assert_eq!(
        room_events(&app).await.last().unwrap(),
        "ROOM_RECORDING_FAILED"
    );
}

#[tokio::test]
async fn room_changed_streams_a_rooms_changes_and_resumes_after_a_cursor() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let room = created(&app, &token, json!({ "kind": "VIDEO", "name": "Live" })).await;
    let id = room["id"].as_str().unwrap().to_string();
    const SUB: &str = "subscription($id: ID!, $after: String) { roomChanged(roomId: $id, after: $after) {
        cursor change participant { status audio user { email } } room { state connectedCount } } }";
    let mut socket = connected(&app, &agent).await;
    // From the log's end: no change from here on is missed, however late the server starts
    // the subscription.
    let after = app.log_end_cursor().await;
    subscribe_to(&mut socket, "r", SUB, json!({ "id": id, "after": after })).await;

    let joined = join(&app, &agent, json!({ "roomId": id })).await;
    let participant = joined["participant"]["id"].clone();
    audio(&app, &agent, &id, &participant, "MUTED").await;
    terminate(&app, &token, &id).await;

    let mut seen = Vec::new();
    for _ in 0..3 {
        let data = tokio::time::timeout(StdDuration::from_secs(60), next_data(&mut socket, "r"))
            .await
            .expect("an event within 60 s");
        seen.push(data["roomChanged"].clone());
    }
    let cursor = seen[0]["cursor"].as_str().unwrap().to_string();
    // Each event carries the room and participant as they are when delivered (so their state
    // depends on how far the test went by then); the last one comes after everything.
    let changes: Vec<&Value> = seen.iter().map(|e| &e["change"]).collect();
    assert_eq!(
        changes,
        [
            &json!("PARTICIPANT_JOINED"),
            &json!("AUDIO_CHANGED"),
            &json!("TERMINATED")
        ]
    );
    for event in &seen[..2] {
        assert_eq!(event["participant"]["user"]["email"], "agent@acme.test");
    }
    assert_eq!(
        seen[2],
        json!({ "cursor": seen[2]["cursor"], "change": "TERMINATED", "participant": null,
                "room": { "state": "TERMINATED", "connectedCount": 0 } })
    );

    // Resumed after the first event: the rest again, from the log.
    let mut again = connected(&app, &agent).await;
    subscribe_to(&mut again, "a", SUB, json!({ "id": id, "after": cursor })).await;
    let data = tokio::time::timeout(StdDuration::from_secs(60), next_data(&mut again, "a"))
        .await
        .expect("replayed");
    assert_eq!(data["roomChanged"]["change"], "AUDIO_CHANGED");

    // Another organization's room is not found.
    let other = app.create_org("Other", "other", "owner@other.test").await;
    let mut theirs = connected(&app, &other.token).await;
    subscribe_to(&mut theirs, "x", SUB, json!({ "id": id })).await;
    let message = crate::live::next(&mut theirs).await.expect("answer");
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{message}"
    );
}
