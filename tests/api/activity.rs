//! The activity log: a conversation's timeline and the organization's log, built from the event
//! log by real actions through the API; filters, pagination, tenancy and batching.

use serde_json::{Value, json};

use crate::channels::channel_id;
use crate::common::{TestApp, TestOrg, codes};

/// Runs mutation `spec` ("name InputType!") as `token` with `input` and asserts it had no
/// user errors; returns its payload.
async fn act(app: &TestApp, token: &str, spec: &str, input: Value) -> Value {
    let (name, input_type) = spec.split_once(' ').unwrap();
    let body = app
        .data(
            token,
            &format!(
                "mutation($input: {input_type}) {{ {name}(input: $input) {{ userErrors {{ field message code }} }} }}"
            ),
            json!({ "input": input }),
        )
        .await;
    assert_eq!(body[name]["userErrors"], json!([]), "{name}: {body}");
    body[name].clone()
}

async fn created_id(
    app: &TestApp,
    token: &str,
    mutation: &str,
    input: Value,
    path: &[&str],
) -> String {
    let data = app.data(token, mutation, json!({ "input": input })).await;
    let mut at = &data;
    for key in path {
        at = &at[*key];
    }
    at.as_str().unwrap_or_else(|| panic!("{data}")).to_string()
}

struct World {
    channel: String,
    contact: String,
    support: String,
    billing: String,
    vip: String,
}

async fn world(app: &TestApp, org: &TestOrg) -> World {
    let queue =
        "mutation($input: QueueSettingsInput!) { createQueue(input: $input) { queue { id } } }";
    let support = created_id(
        app,
        &org.token,
        queue,
        json!({ "name": "Support" }),
        &["createQueue", "queue", "id"],
    )
    .await;
    let billing = created_id(
        app,
        &org.token,
        queue,
        json!({ "name": "Billing" }),
        &["createQueue", "queue", "id"],
    )
    .await;
    let vip = created_id(
        app,
        &org.token,
        "mutation($input: CreateTagInput!) { createTag(input: $input) { tag { id } } }",
        json!({ "name": "vip" }),
        &["createTag", "tag", "id"],
    )
    .await;
    let contact = created_id(
        app,
        &org.token,
        "mutation($input: ContactInput!) { createContact(input: $input) { contact { id } } }",
        json!({ "displayName": "Ann", "phone": "+4520000001" }),
        &["createContact", "contact", "id"],
    )
    .await;
    let channel = channel_id(
        app,
        &org.token,
        json!({ "type": "SMS", "name": "Texts", "address": "+14155550100" }),
    )
    .await;
    World {
        channel,
        contact,
        support,
        billing,
        vip,
    }
}

async fn new_conversation(app: &TestApp, token: &str, w: &World, extra: Value) -> String {
    let mut input = json!({
        "channelId": w.channel, "requesterId": w.contact, "direction": "INBOUND",
        "queueId": w.support, "message": { "text": "My invoice is wrong" }
    });
    for (k, v) in extra.as_object().unwrap() {
        input[k] = v.clone();
    }
    created_id(
        app,
        token,
        "mutation($input: CreateConversationInput!) { createConversation(input: $input) { conversation { id } userErrors { message } } }",
        input,
        &["createConversation", "conversation", "id"],
    )
    .await
}

const ENTRY: &str = "id type actor { email } createdAt data message { text } note { body } tag { name } queue { name } user { email } conversation { id }";

/// An entry as `[type, actor, what it links]` for exact comparison.
fn brief(entry: &Value) -> Value {
    let mut links = serde_json::Map::new();
    for (field, key) in [
        ("message", "text"),
        ("note", "body"),
        ("tag", "name"),
        ("queue", "name"),
        ("user", "email"),
    ] {
        if !entry[field].is_null() {
            links.insert(field.into(), entry[field][key].clone());
        }
    }
    json!([entry["type"], entry["actor"]["email"], links])
}

fn briefs(connection: &Value) -> Vec<Value> {
    connection["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(brief)
        .collect()
}

async fn timeline(app: &TestApp, token: &str, id: &str) -> Value {
    app.data(
        token,
        &format!("query($id: ID!) {{ conversation(id: $id) {{ activity(first: 100) {{ totalCount nodes {{ {ENTRY} }} }} }} }}"),
        json!({ "id": id }),
    )
    .await["conversation"]["activity"]
        .clone()
}

#[tokio::test]
async fn a_conversation_timeline_lists_every_action_in_order() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let w = world(&app, &app.org).await;
    let (agent_id, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    app.data(
        owner,
        "mutation { createCustomAttributeDefinition(input: { entity: CONVERSATION, identifier: \"order\", label: \"Order\", valueType: TEXT }) { userErrors { code } } }",
        json!({}),
    )
    .await;
    let id = new_conversation(&app, owner, &w, json!({})).await;
    let parent = new_conversation(&app, owner, &w, json!({})).await;
    let c = |extra: Value| {
        let mut input = json!({ "conversationId": id });
        for (k, v) in extra.as_object().unwrap() {
            input[k] = v.clone();
        }
        input
    };
    act(
        &app,
        &agent,
        "addNote AddNoteInput!",
        json!({ "conversationId": id, "body": "Looking into it" }),
    )
    .await;
    act(
        &app,
        &agent,
        "claimConversation ClaimConversationInput!",
        c(json!({})),
    )
    .await;
    act(
        &app,
        &agent,
        "tagConversation ConversationTagsInput!",
        c(json!({ "tagIds": [w.vip] })),
    )
    .await;
    act(
        &app,
        &agent,
        "untagConversation ConversationTagsInput!",
        c(json!({ "tagIds": [w.vip] })),
    )
    .await;
    act(
        &app,
        &agent,
        "setConversationPriority SetConversationPriorityInput!",
        c(json!({ "priority": "HIGH" })),
    )
    .await;
    act(
        &app,
        &agent,
        "setConversationAttributes SetConversationAttributesInput!",
        c(json!({ "values": [{ "identifier": "order", "value": "A-17" }] })),
    )
    .await;
    act(
        &app,
        &agent,
        "transferConversation TransferConversationInput!",
        c(json!({ "queueId": w.billing })),
    )
    .await;
    act(
        &app,
        owner,
        "assignConversation AssignConversationInput!",
        c(json!({ "userId": agent_id })),
    )
    .await;
    act(
        &app,
        owner,
        "unassignConversation ConversationIdInput!",
        c(json!({})),
    )
    .await;
    act(
        &app,
        &agent,
        "setConversationPending SetConversationPendingInput!",
        c(json!({ "pendingUntil": "2999-01-01T00:00:00Z" })),
    )
    .await;
    act(
        &app,
        &agent,
        "closeConversation CloseConversationInput!",
        c(json!({ "reason": "solved" })),
    )
    .await;
    act(
        &app,
        &agent,
        "reopenConversation ConversationIdInput!",
        c(json!({})),
    )
    .await;
    act(
        &app,
        &agent,
        "linkConversation LinkConversationInput!",
        c(json!({ "parentId": parent, "linkType": "FOLLOW_UP" })),
    )
    .await;
    act(
        &app,
        &agent,
        "archiveConversation ConversationIdInput!",
        c(json!({})),
    )
    .await;
    act(
        &app,
        &agent,
        "unarchiveConversation ConversationIdInput!",
        c(json!({})),
    )
    .await;
    act(
        &app,
        &agent,
        "rateConversation RateConversationInput!",
        c(json!({ "csat": 5 })),
    )
    .await;
    act(
        &app,
        &agent,
        "setConversationPending SetConversationPendingInput!",
        c(json!({ "pendingUntil": "2998-01-01T00:00:00Z" })),
    )
    .await;
    // The expiry sweep reopens it, as the system.
    let reopened = switchboard::conversations::service::expire_pending(
        &app.state.db,
        chrono::DateTime::parse_from_rfc3339("2998-06-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc),
    )
    .await
    .map_err(|e| e.public_message())
    .unwrap();
    assert_eq!(reopened, 1);
    act(
        &app,
        owner,
        "anonymizeConversation AnonymizeConversationInput!",
        c(json!({ "force": true })),
    )
    .await;

    let owner_email = json!("owner@acme.test");
    let agent_email = json!("agent@acme.test");
    let activity = timeline(&app, &agent, &id).await;
    let expected = vec![
        json!(["CREATED", owner_email, {}]),
        json!(["ENQUEUED", owner_email, { "queue": "Support" }]),
        // Message bodies are erased by the anonymization at the end.
        json!(["MESSAGE_ADDED", owner_email, { "message": null }]),
        json!(["NOTE_ADDED", agent_email, { "note": "" }]),
        json!(["CLAIMED", agent_email, { "user": agent_email }]),
        json!(["TAG_ADDED", agent_email, { "tag": "vip" }]),
        json!(["TAG_REMOVED", agent_email, { "tag": "vip" }]),
        json!(["PRIORITY_CHANGED", agent_email, {}]),
        json!(["ATTRIBUTES_SET", agent_email, {}]),
        json!(["TRANSFERRED", agent_email, { "queue": "Billing" }]),
        json!(["ASSIGNED", owner_email, { "user": agent_email }]),
        json!(["UNASSIGNED", owner_email, {}]),
        json!(["PENDING", agent_email, {}]),
        json!(["CLOSED", agent_email, {}]),
        // Unanswered and unassigned when closed: abandoned.
        json!(["ABANDONED", agent_email, { "queue": "Billing" }]),
        json!(["REOPENED", agent_email, {}]),
        json!(["LINKED", agent_email, {}]),
        json!(["ARCHIVED", agent_email, {}]),
        json!(["UNARCHIVED", agent_email, {}]),
        json!(["RATED", agent_email, {}]),
        json!(["PENDING", agent_email, {}]),
        json!(["PENDING_EXPIRED", null, {}]),
        json!(["CLOSED", owner_email, {}]),
        json!(["ANONYMIZED", owner_email, {}]),
    ];
    let got = briefs(&activity);
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (i, (got, expected)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(got, expected, "entry {i}");
    }
    assert_eq!(activity["totalCount"], expected.len());
    // The recorded details come along, and every entry names its conversation.
    let nodes = activity["nodes"].as_array().unwrap();
    assert_eq!(nodes[7]["data"], json!({ "from": "NORMAL", "to": "HIGH" }));
    assert_eq!(
        nodes[13]["data"],
        json!({ "reason": "solved", "from": "PENDING", "abandoned": true })
    );
    assert_eq!(
        nodes[19]["data"],
        json!({ "ratingType": "CSAT", "score": 5 })
    );
    assert_eq!(nodes[3]["data"]["backdated"], false);
    assert!(nodes.iter().all(|n| n["conversation"]["id"] == json!(id)));
    let times: Vec<&str> = nodes
        .iter()
        .map(|n| n["createdAt"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by_key(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap());
    assert_eq!(times, sorted);

    // Filter by type; page forward through the timeline.
    let typed = app
        .data(
            &agent,
            "query($id: ID!) { conversation(id: $id) { activity(filter: { types: [CLOSED, TAG_ADDED] }) { totalCount nodes { type } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        typed["conversation"]["activity"],
        json!({ "totalCount": 3, "nodes": [{ "type": "TAG_ADDED" }, { "type": "CLOSED" }, { "type": "CLOSED" }] })
    );
    let page = "query($id: ID!, $after: String) { conversation(id: $id) { activity(first: 10, after: $after) { nodes { type } pageInfo { hasNextPage endCursor } } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = app
            .data(&agent, page, json!({ "id": id, "after": after }))
            .await;
        let activity = &data["conversation"]["activity"];
        seen.extend(
            activity["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["type"].clone()),
        );
        if activity["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = activity["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(
        seen,
        expected.iter().map(|e| e[0].clone()).collect::<Vec<_>>()
    );
    // The parent has its own timeline only.
    assert_eq!(
        briefs(&timeline(&app, &agent, &parent).await),
        [
            json!(["CREATED", owner_email, {}]),
            json!(["ENQUEUED", owner_email, { "queue": "Support" }]),
            json!(["MESSAGE_ADDED", owner_email, { "message": "My invoice is wrong" }]),
        ]
    );
}

#[tokio::test]
async fn group_participants_notes_and_backdated_imports_appear() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let w = world(&app, &app.org).await;
    let (agent_id, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let id = new_conversation(
        &app,
        owner,
        &w,
        json!({ "kind": "GROUP", "direction": "OUTBOUND", "queueId": null }),
    )
    .await;
    act(
        &app,
        owner,
        "addConversationParticipants AddConversationParticipantsInput!",
        json!({ "conversationId": id, "userIds": [agent_id] }),
    )
    .await;
    act(
        &app,
        owner,
        "removeConversationParticipants RemoveConversationParticipantsInput!",
        json!({ "conversationId": id, "participantIds": [agent_id] }),
    )
    .await;
    let imported = app
        .data(
            &agent,
            "mutation($input: AddNotesInput!) { addNotes(input: $input) { succeeded } }",
            json!({ "input": { "conversationId": id, "notes": [{ "body": "from 2020", "createdAt": "2020-01-01T10:00:00Z" }] } }),
        )
        .await;
    assert_eq!(imported["addNotes"]["succeeded"], 1);
    let activity = timeline(&app, &agent, &id).await;
    let owner_email = json!("owner@acme.test");
    let got = briefs(&activity);
    // Creating a group with the caller assigned and as participant; then the agent joins and
    // leaves; then the import.
    let tail: Vec<Value> = got[got.len() - 3..].to_vec();
    assert_eq!(
        tail,
        [
            json!(["PARTICIPANT_ADDED", owner_email, { "user": "agent@acme.test" }]),
            json!(["PARTICIPANT_REMOVED", owner_email, { "user": "agent@acme.test" }]),
            json!(["NOTE_ADDED", "agent@acme.test", { "note": "from 2020" }]),
        ]
    );
    assert_eq!(got[0], json!(["CREATED", owner_email, {}]));
    // The import is logged when it happened; the note keeps its own date.
    let last = activity["nodes"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["data"]["backdated"], true);
    assert!(last["createdAt"].as_str().unwrap() > "2021");
    let note = app
        .data(
            &agent,
            "query($id: ID!) { node(id: $id) { ... on ActivityLogEntry { note { createdAt } } } }",
            json!({ "id": last["id"] }),
        )
        .await;
    assert_eq!(
        note,
        json!({ "node": { "note": { "createdAt": "2020-01-01T10:00:00+00:00" } } })
    );
}

#[tokio::test]
async fn the_organization_log_filters_by_type_actor_conversation_and_time() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let w = world(&app, &app.org).await;
    let (agent_id, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let first = new_conversation(&app, owner, &w, json!({})).await;
    let second = new_conversation(&app, owner, &w, json!({})).await;
    act(
        &app,
        &agent,
        "addNote AddNoteInput!",
        json!({ "conversationId": first, "body": "one" }),
    )
    .await;
    act(
        &app,
        &agent,
        "claimConversation ClaimConversationInput!",
        json!({ "conversationId": second }),
    )
    .await;
    act(
        &app,
        owner,
        "addNote AddNoteInput!",
        json!({ "conversationId": second, "body": "two" }),
    )
    .await;
    act(
        &app,
        &agent,
        "closeConversation CloseConversationInput!",
        json!({ "conversationId": second }),
    )
    .await;

    let log = "query($filter: ActivityLogFilterInput, $first: Int, $after: String) { activityLog(filter: $filter, first: $first, after: $after) { totalCount nodes { id type createdAt actor { email } conversation { id } } pageInfo { hasNextPage endCursor } } }";
    let run = |filter: Value| app.data(&agent, log, json!({ "filter": filter }));
    let types = |data: &Value| -> Vec<String> {
        data["activityLog"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap().to_string())
            .collect()
    };
    // Newest first; channel, queue, tag and contact events are not activity.
    let all = run(Value::Null).await;
    assert_eq!(
        types(&all),
        [
            "CLOSED",
            "NOTE_ADDED",
            "CLAIMED",
            "NOTE_ADDED",
            "MESSAGE_ADDED",
            "ENQUEUED",
            "CREATED",
            "MESSAGE_ADDED",
            "ENQUEUED",
            "CREATED"
        ]
    );
    assert_eq!(all["activityLog"]["totalCount"], 10);
    assert_eq!(
        types(&run(json!({ "types": ["NOTE_ADDED"] })).await),
        ["NOTE_ADDED", "NOTE_ADDED"]
    );
    assert_eq!(
        types(&run(json!({ "actorId": agent_id })).await),
        ["CLOSED", "CLAIMED", "NOTE_ADDED"]
    );
    assert_eq!(
        types(&run(json!({ "actorId": agent_id, "conversationId": second })).await),
        ["CLOSED", "CLAIMED"]
    );
    assert_eq!(
        types(&run(json!({ "types": ["NOTE_ADDED", "CLOSED"], "conversationId": first })).await),
        ["NOTE_ADDED"]
    );
    // Time range: from is included, to is not.
    let nodes = all["activityLog"]["nodes"].as_array().unwrap();
    let claimed_at = nodes[2]["createdAt"].clone();
    let closed_at = nodes[0]["createdAt"].clone();
    assert_eq!(
        types(&run(json!({ "from": claimed_at, "to": closed_at })).await),
        ["NOTE_ADDED", "CLAIMED"]
    );
    let body = app
        .gql(
            &agent,
            log,
            json!({ "filter": { "from": closed_at, "to": claimed_at } }),
        )
        .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"]);
    let body = app
        .gql(&agent, log, json!({ "filter": { "actorId": first } }))
        .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"]);
    // Pages.
    let page = app.data(&agent, log, json!({ "first": 4 })).await;
    assert_eq!(
        types(&page),
        ["CLOSED", "NOTE_ADDED", "CLAIMED", "NOTE_ADDED"]
    );
    let next = app
        .data(
            &agent,
            log,
            json!({ "first": 4, "after": page["activityLog"]["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(
        types(&next),
        ["MESSAGE_ADDED", "ENQUEUED", "CREATED", "MESSAGE_ADDED"]
    );
    let back_log = "query($last: Int, $before: String) { activityLog(last: $last, before: $before) { nodes { type } pageInfo { hasPreviousPage hasNextPage } } }";
    let back = app
        .data(
            &agent,
            back_log,
            json!({ "last": 3, "before": page["activityLog"]["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(
        back["activityLog"],
        json!({ "nodes": [{ "type": "CLOSED" }, { "type": "NOTE_ADDED" }, { "type": "CLAIMED" }],
                "pageInfo": { "hasPreviousPage": false, "hasNextPage": true } })
    );
    let body = app
        .gql(
            &agent,
            back_log,
            json!({ "last": 3, "before": "bm90LWEtY3Vyc29y" }),
        )
        .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"]);
    let body = app.gql(&agent, log, json!({ "first": 101 })).await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"]);
    // An entry by id.
    let entry_id = nodes[0]["id"].clone();
    let node = app
        .data(
            &agent,
            "query($id: ID!) { node(id: $id) { id ... on ActivityLogEntry { type } } }",
            json!({ "id": entry_id }),
        )
        .await;
    assert_eq!(
        node,
        json!({ "node": { "id": entry_id, "type": "CLOSED" } })
    );

    // Another organization sees none of it.
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let theirs = app.data(&other.token, log, json!({})).await;
    assert_eq!(theirs["activityLog"]["totalCount"], 0);
    let node = app
        .data(
            &other.token,
            "query($id: ID!, $c: ID!) { node(id: $id) { id } conversation(id: $c) { id } }",
            json!({ "id": entry_id, "c": first }),
        )
        .await;
    assert_eq!(node, json!({ "node": null, "conversation": null }));
    let filtered = app
        .data(
            &other.token,
            log,
            json!({ "filter": { "conversationId": first } }),
        )
        .await;
    assert_eq!(filtered["activityLog"]["totalCount"], 0);
    let (_, _, body) = app.post(None, json!({ "query": log })).await;
    assert_eq!(codes(&body), ["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn a_page_of_activity_costs_fixed_statements() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let w = world(&app, &app.org).await;
    let mut agents = Vec::new();
    for i in 0..3 {
        agents.push(
            app.user_with_token(&format!("agent{i}@acme.test"), &["AGENT"])
                .await,
        );
    }
    // A long conversation: every kind of linked object, by several actors.
    let long = new_conversation(&app, owner, &w, json!({})).await;
    for round in 0..6 {
        for (i, (agent_id, token)) in agents.iter().enumerate() {
            act(
                &app,
                owner,
                "assignConversation AssignConversationInput!",
                json!({ "conversationId": long, "userId": agent_id }),
            )
            .await;
            act(
                &app,
                token,
                "addNote AddNoteInput!",
                json!({ "conversationId": long, "body": format!("note {round}.{i}") }),
            )
            .await;
            let tags = json!({ "conversationId": long, "tagIds": [w.vip] });
            let spec = if (round * 3 + i) % 2 == 0 {
                "tagConversation ConversationTagsInput!"
            } else {
                "untagConversation ConversationTagsInput!"
            };
            act(&app, token, spec, tags).await;
        }
    }
    // The newest entries of the organization are of every kind too.
    let short = new_conversation(&app, owner, &w, json!({})).await;
    act(
        &app,
        &agents[1].1,
        "addNote AddNoteInput!",
        json!({ "conversationId": short, "body": "latest" }),
    )
    .await;
    act(
        &app,
        &agents[1].1,
        "tagConversation ConversationTagsInput!",
        json!({ "conversationId": short, "tagIds": [w.vip] }),
    )
    .await;
    act(
        &app,
        owner,
        "assignConversation AssignConversationInput!",
        json!({ "conversationId": short, "userId": agents[2].0 }),
    )
    .await;

    let token = &agents[0].1;
    let mut log = Vec::new();
    let mut timeline = Vec::new();
    for n in [5, 50] {
        let (statements, data) = app
            .statements_of(
                token,
                &format!("{{ activityLog(first: {n}) {{ nodes {{ {ENTRY} }} }} }}"),
            )
            .await;
        let nodes = data["activityLog"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), n);
        for field in ["message", "note", "tag", "queue", "user", "actor"] {
            assert!(nodes.iter().any(|e| !e[field].is_null()), "{field} in {n}");
        }
        log.push(statements);
        let (statements, data) = app
            .statements_of(
                token,
                &format!("{{ conversation(id: \"{long}\") {{ activity(first: {n}, filter: {{ types: [ENQUEUED, MESSAGE_ADDED, ASSIGNED, NOTE_ADDED, TAG_ADDED, TAG_REMOVED] }}) {{ nodes {{ {ENTRY} }} }} }} }}"),
            )
            .await;
        let nodes = data["conversation"]["activity"]["nodes"]
            .as_array()
            .unwrap();
        assert_eq!(nodes.len(), n);
        for field in ["message", "note", "tag", "queue", "user", "actor"] {
            assert!(nodes.iter().any(|e| !e[field].is_null()), "{field} in {n}");
        }
        timeline.push(statements);
    }
    assert_eq!(
        log[0], log[1],
        "activityLog statements for 5 and 50 entries"
    );
    assert_eq!(
        timeline[0], timeline[1],
        "activity statements for 5 and 50 entries"
    );
}

#[tokio::test]
async fn message_actions_appear_in_the_timeline() {
    use sea_orm::EntityTrait;
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let w = world(&app, &app.org).await;
    let (agent_id, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let id = new_conversation(&app, owner, &w, json!({})).await;
    let sent = created_id(
        &app,
        &agent,
        "mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id } userErrors { field message code } } }",
        json!({ "conversationId": id, "text": "We are on it" }),
        &["sendMessage", "message", "id"],
    )
    .await;
    act(
        &app,
        &agent,
        "editMessage EditMessageInput!",
        json!({ "messageId": sent, "text": "We are on it!" }),
    )
    .await;
    act(
        &app,
        &agent,
        "addReaction ReactionInput!",
        json!({ "messageId": sent, "reaction": "LIKE" }),
    )
    .await;
    act(
        &app,
        &agent,
        "removeReaction ReactionInput!",
        json!({ "messageId": sent, "reaction": "LIKE" }),
    )
    .await;
    // The provider reports delivery (as the system).
    let message_id = switchboard::graphql::relay::decode_id(&sent, "Message")
        .map_err(|e| e.public_message())
        .unwrap();
    let message = entity::message::Entity::find_by_id(message_id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    switchboard::messages::service::record_delivery_status(
        &app.state.db,
        message,
        switchboard::messages::service::DeliveryStatus::Delivered,
        None,
        chrono::Utc::now(),
    )
    .await
    .map_err(|e| e.public_message())
    .unwrap();
    act(
        &app,
        &agent,
        "recordInboundMessage RecordInboundMessageInput!",
        json!({ "conversationId": id, "text": "Thanks" }),
    )
    .await;
    // A staff reader's position (markConversationRead records no event yet; the messages core
    // records one when a user reads through it).
    let conversation_id = switchboard::graphql::relay::decode_id(&id, "Conversation")
        .map_err(|e| e.public_message())
        .unwrap();
    let conversation = entity::conversation::Entity::find_by_id(conversation_id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let agent_uuid = switchboard::graphql::relay::decode_id(&agent_id, "User")
        .map_err(|e| e.public_message())
        .unwrap();
    switchboard::messages::service::mark_read(
        &app.state.db,
        &conversation,
        switchboard::conversations::Party::User(agent_uuid),
        chrono::Utc::now(),
        Some(agent_uuid),
    )
    .await
    .map_err(|e| e.public_message())
    .unwrap();
    act(
        &app,
        &agent,
        "recordReadReceipt RecordReadReceiptInput!",
        json!({ "conversationId": id, "contactId": w.contact }),
    )
    .await;
    act(
        &app,
        &agent,
        "redactMessage RedactMessageInput!",
        json!({ "messageId": sent, "reason": "typo" }),
    )
    .await;
    act(
        &app,
        &agent,
        "removeMessage RemoveMessageInput!",
        json!({ "messageId": sent }),
    )
    .await;

    let activity = timeline(&app, &agent, &id).await;
    let got = briefs(&activity);
    let owner_email = json!("owner@acme.test");
    let agent_email = json!("agent@acme.test");
    let expected = vec![
        json!(["CREATED", owner_email, {}]),
        json!(["ENQUEUED", owner_email, { "queue": "Support" }]),
        json!(["MESSAGE_ADDED", owner_email, { "message": "My invoice is wrong" }]),
        // The sent message was redacted, then removed: its content is gone.
        json!(["MESSAGE_ADDED", agent_email, { "message": null }]),
        json!(["MESSAGE_EDITED", agent_email, { "message": null }]),
        json!(["REACTION_ADDED", agent_email, { "message": null }]),
        json!(["REACTION_REMOVED", agent_email, { "message": null }]),
        json!(["MESSAGE_STATUS_CHANGED", null, { "message": null }]),
        json!(["MESSAGE_ADDED", agent_email, { "message": "Thanks" }]),
        json!(["READ", agent_email, { "user": agent_email }]),
        json!(["READ", agent_email, {}]),
        json!(["MESSAGE_REDACTED", agent_email, { "message": null }]),
        json!(["MESSAGE_REMOVED", agent_email, { "message": null }]),
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (i, (got, expected)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(got, expected, "entry {i}");
    }
    let nodes = activity["nodes"].as_array().unwrap();
    assert_eq!(nodes[5]["data"]["reaction"], "LIKE");
    assert_eq!(nodes[7]["data"]["status"], "DELIVERED");
    assert_eq!(nodes[10]["data"]["readerKind"], "CONTACT");
}
