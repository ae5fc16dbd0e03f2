//! Queues: Dixa's fields, exactly one default queue, members with priority, roles and tenancy.

use serde_json::{Value, json};

use crate::common::{TestApp, codes};

const FIELDS: &str = "id name priority isDefault offerAlgorithm offerTimeout wrapupTimeout memberListType \
    thresholds { kind value } doNotOfferEnabled doNotOfferTimeouts { channelType seconds } \
    preferredAgentEnabled preferredAgentTimeouts { channelType seconds } offerAbandonedConversations \
    personalAgentOfflineTimeout preferredAgentOfflineTimeout callFunctionality slaCalculationMethod";

fn create_mutation() -> String {
    format!(
        "mutation($input: QueueSettingsInput!) {{ createQueue(input: $input) {{ queue {{ {FIELDS} }} userErrors {{ field message code }} }} }}"
    )
}

async fn create(app: &TestApp, input: Value) -> Value {
    app.data(
        &app.org.token,
        &create_mutation(),
        json!({ "input": input }),
    )
    .await["createQueue"]
        .clone()
}

const DEFAULTS: &str = "{ queues { nodes { name isDefault } } }";

#[tokio::test]
async fn queues_keep_dixa_settings_and_exactly_one_default() {
    let app = TestApp::spawn().await;
    let first = create(
        &app,
        json!({
            "name": "Support", "priority": 2, "offerAlgorithm": "AGENT_PRIORITY_LONGEST_IDLE",
            "offerTimeout": 45, "wrapupTimeout": 10, "memberListType": "SKILL_BASED",
            "thresholds": [{ "kind": "WAITING_CONVERSATIONS", "value": 10 }, { "kind": "SLA_PERCENTAGE", "value": 80 }],
            "doNotOfferEnabled": true, "doNotOfferTimeouts": [{ "channelType": "CHAT", "seconds": 1 }],
            "preferredAgentEnabled": true,
            "preferredAgentTimeouts": [{ "channelType": "EMAIL", "seconds": 43200 }, { "channelType": "SMS", "seconds": 300 }],
            "offerAbandonedConversations": true, "personalAgentOfflineTimeout": 600, "callFunctionality": true
        }),
    )
    .await;
    let id = first["queue"]["id"].clone();
    assert_eq!(
        first,
        json!({ "queue": {
            "id": id, "name": "Support", "priority": 2, "isDefault": true,
            "offerAlgorithm": "AGENT_PRIORITY_LONGEST_IDLE", "offerTimeout": 45, "wrapupTimeout": 10,
            "memberListType": "SKILL_BASED",
            "thresholds": [{ "kind": "SLA_PERCENTAGE", "value": 80 }, { "kind": "WAITING_CONVERSATIONS", "value": 10 }],
            "doNotOfferEnabled": true, "doNotOfferTimeouts": [{ "channelType": "CHAT", "seconds": 1 }],
            "preferredAgentEnabled": true,
            "preferredAgentTimeouts": [{ "channelType": "EMAIL", "seconds": 43200 }, { "channelType": "SMS", "seconds": 300 }],
            "offerAbandonedConversations": true, "personalAgentOfflineTimeout": 600,
            "preferredAgentOfflineTimeout": null, "callFunctionality": true,
            "slaCalculationMethod": "ABANDONED_IGNORED"
        }, "userErrors": [] })
    );
    // The second queue is not the default until made so; then the first stops being it.
    let second = create(&app, json!({ "name": "Billing", "priority": 1 })).await;
    assert_eq!(second["queue"]["isDefault"], false);
    assert_eq!(second["queue"]["offerAlgorithm"], "ALL_AT_ONCE");
    assert_eq!(second["queue"]["offerTimeout"], 30);
    let billing = second["queue"]["id"].clone();
    let update = "mutation($input: UpdateQueueInput!) { updateQueue(input: $input) { queue { name isDefault offerTimeout } userErrors { field message code } } }";
    let moved = app
        .data(&app.org.token, update, json!({ "input": { "id": billing, "settings": { "isDefault": true, "offerTimeout": null } } }))
        .await;
    assert_eq!(
        moved["updateQueue"],
        json!({ "queue": { "name": "Billing", "isDefault": true, "offerTimeout": null }, "userErrors": [] })
    );
    let listed = app.data(&app.org.token, DEFAULTS, json!({})).await;
    assert_eq!(
        listed,
        json!({ "queues": { "nodes": [{ "name": "Billing", "isDefault": true }, { "name": "Support", "isDefault": false }] } })
    );
    assert_eq!(
        app.count("events WHERE event_type = 'QUEUE_DEFAULT_CHANGED'")
            .await,
        1
    );
}

#[tokio::test]
async fn the_default_queue_cannot_be_deleted_or_unset() {
    let app = TestApp::spawn().await;
    let default = create(&app, json!({ "name": "Support" })).await["queue"]["id"].clone();
    let other = create(&app, json!({ "name": "Billing" })).await["queue"]["id"].clone();
    let queues = app.count("queues").await;
    let events = app.count("events").await;
    let delete = "mutation($id: ID!) { deleteQueue(input: { id: $id }) { deletedQueueId userErrors { field message code } } }";
    let refused = app
        .data(&app.org.token, delete, json!({ "id": default }))
        .await;
    assert_eq!(
        refused["deleteQueue"],
        json!({ "deletedQueueId": null, "userErrors": [{ "field": ["input", "id"], "message": "the default queue cannot be deleted", "code": "INVALID_STATE" }] })
    );
    let unset = app
        .data(
            &app.org.token,
            "mutation($id: ID!) { updateQueue(input: { id: $id, settings: { isDefault: false } }) { userErrors { field code } } }",
            json!({ "id": default }),
        )
        .await;
    assert_eq!(
        unset["updateQueue"]["userErrors"],
        json!([{ "field": ["input", "isDefault"], "code": "INVALID_STATE" }])
    );
    let bad = create(&app, json!({ "priority": -1, "offerTimeout": -5, "thresholds": [{ "kind": "LONGEST_WAIT", "value": 1 }, { "kind": "LONGEST_WAIT", "value": 2 }] })).await;
    assert_eq!(
        bad,
        json!({ "queue": null, "userErrors": [
            { "field": ["input", "name"], "message": "name must not be empty", "code": "REQUIRED" },
            { "field": ["input", "priority"], "message": "priority must not be negative", "code": "INVALID" },
            { "field": ["input", "offerTimeout"], "message": "offerTimeout must not be negative", "code": "INVALID" },
            { "field": ["input", "thresholds", "1"], "message": "LONGEST_WAIT is listed twice", "code": "INVALID" }
        ] })
    );
    assert_eq!(app.count("queues").await, queues);
    assert_eq!(app.count("events").await, events);
    let listed = app.data(&app.org.token, DEFAULTS, json!({})).await;
    assert_eq!(
        listed,
        json!({ "queues": { "nodes": [{ "name": "Support", "isDefault": true }, { "name": "Billing", "isDefault": false }] } })
    );
    // A queue that is not the default can be deleted.
    let deleted = app
        .data(&app.org.token, delete, json!({ "id": other }))
        .await;
    assert_eq!(
        deleted["deleteQueue"],
        json!({ "deletedQueueId": other, "userErrors": [] })
    );
}

#[tokio::test]
async fn queue_members_have_priorities() {
    let app = TestApp::spawn().await;
    let queue = create(&app, json!({ "name": "Support" })).await["queue"]["id"].clone();
    let (ann, _) = app.user_with_token("ann@acme.test", &["AGENT"]).await;
    let (bob, _) = app.user_with_token("bob@acme.test", &["AGENT"]).await;
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let members = "queue { members { priority user { email } } } userErrors { field message code }";
    let add = format!(
        "mutation($input: QueueMembersInput!) {{ addQueueMembers(input: $input) {{ {members} }} }}"
    );
    let update = format!(
        "mutation($input: QueueMembersInput!) {{ updateQueueMembers(input: $input) {{ {members} }} }}"
    );
    let remove = format!(
        "mutation($input: RemoveQueueMembersInput!) {{ removeQueueMembers(input: $input) {{ {members} }} }}"
    );
    let owner = &app.org.token;

    let added = app
        .data(owner, &add, json!({ "input": { "queueId": queue, "members": [{ "userId": ann, "priority": 2 }, { "userId": bob, "priority": 1 }] } }))
        .await;
    assert_eq!(
        added["addQueueMembers"],
        json!({ "queue": { "members": [
            { "priority": 1, "user": { "email": "bob@acme.test" } },
            { "priority": 2, "user": { "email": "ann@acme.test" } }
        ] }, "userErrors": [] })
    );
    let rows = app.count("queue_members").await;
    let events = app.count("events").await;
    let foreign = app
        .data(
            owner,
            &add,
            json!({ "input": { "queueId": queue, "members": [{ "userId": other.owner_id }] } }),
        )
        .await;
    assert_eq!(
        foreign["addQueueMembers"]["userErrors"],
        json!([{ "field": ["input", "members", "0", "userId"], "message": "no such user", "code": "NOT_FOUND" }])
    );
    let not_member = app
        .data(owner, &update, json!({ "input": { "queueId": queue, "members": [{ "userId": app.org.owner_id, "priority": 0 }] } }))
        .await;
    assert_eq!(
        not_member["updateQueueMembers"]["userErrors"],
        json!([{ "field": ["input", "members", "0", "userId"], "message": "the user is not a member of this queue", "code": "NOT_FOUND" }])
    );
    assert_eq!(app.count("queue_members").await, rows);
    assert_eq!(app.count("events").await, events);

    let updated = app
        .data(
            owner,
            &update,
            json!({ "input": { "queueId": queue, "members": [{ "userId": ann, "priority": 0 }] } }),
        )
        .await;
    assert_eq!(
        updated["updateQueueMembers"]["queue"]["members"][0],
        json!({ "priority": 0, "user": { "email": "ann@acme.test" } })
    );
    let removed = app
        .data(
            owner,
            &remove,
            json!({ "input": { "queueId": queue, "userIds": [ann] } }),
        )
        .await;
    assert_eq!(
        removed["removeQueueMembers"],
        json!({ "queue": { "members": [{ "priority": 1, "user": { "email": "bob@acme.test" } }] }, "userErrors": [] })
    );
}

#[tokio::test]
async fn agents_read_queues_and_other_orgs_see_none() {
    let app = TestApp::spawn().await;
    let queue = create(&app, json!({ "name": "Support" })).await["queue"]["id"].clone();
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let body = app
        .gql(
            &agent,
            &create_mutation(),
            json!({ "input": { "name": "Mine" } }),
        )
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"]);
    assert_eq!(app.count("queues").await, 1);
    let read = app
        .data(
            &agent,
            "{ queues { totalCount nodes { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        read,
        json!({ "queues": { "totalCount": 1, "nodes": [{ "name": "Support" }] } })
    );
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let hidden = app
        .data(&other.token, "query($id: ID!) { queue(id: $id) { name } node(id: $id) { id } queues { totalCount } }", json!({ "id": queue }))
        .await;
    assert_eq!(
        hidden,
        json!({ "queue": null, "node": null, "queues": { "totalCount": 0 } })
    );
    // Their first queue is their default; ours stays ours.
    let theirs = app
        .data(
            &other.token,
            &create_mutation(),
            json!({ "input": { "name": "Theirs" } }),
        )
        .await;
    assert_eq!(theirs["createQueue"]["queue"]["isDefault"], true);
    let ours = app.data(&app.org.token, DEFAULTS, json!({})).await;
    assert_eq!(
        ours,
        json!({ "queues": { "nodes": [{ "name": "Support", "isDefault": true }] } })
    );
}
