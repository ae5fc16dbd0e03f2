//! Tags: create, rename, recolor, activate, deactivate; roles, validation and tenancy.

use serde_json::{Value, json};

use crate::common::{TestApp, codes};

const CREATE: &str = "mutation($input: CreateTagInput!) { createTag(input: $input) { tag { id name color status } userErrors { field message code } } }";
const UPDATE: &str = "mutation($input: UpdateTagInput!) { updateTag(input: $input) { tag { name color status } userErrors { field message code } } }";
const DEACTIVATE: &str = "mutation($id: ID!) { deactivateTag(input: { id: $id }) { tag { name status } userErrors { field message code } } }";
const ACTIVATE: &str = "mutation($id: ID!) { activateTag(input: { id: $id }) { tag { name status } userErrors { field message code } } }";

async fn create(app: &TestApp, token: &str, input: Value) -> Value {
    app.data(token, CREATE, json!({ "input": input })).await["createTag"].clone()
}

#[tokio::test]
async fn tags_are_created_renamed_recolored_and_listed_by_name() {
    let app = TestApp::spawn().await;
    let (_, lead) = app.user_with_token("lead@acme.test", &["TEAM_LEAD"]).await;
    let vip = create(&app, &lead, json!({ "name": "VIP", "color": "#FF0000" })).await;
    assert_eq!(vip["userErrors"], json!([]));
    assert_eq!(
        (
            &vip["tag"]["name"],
            &vip["tag"]["color"],
            &vip["tag"]["status"]
        ),
        (&json!("VIP"), &json!("#ff0000"), &json!("ACTIVE"))
    );
    let id = vip["tag"]["id"].clone();
    create(&app, &lead, json!({ "name": "billing" })).await;
    create(
        &app,
        &lead,
        json!({ "name": "Angry customer", "color": "#000000" }),
    )
    .await;

    let renamed = app
        .data(
            &lead,
            UPDATE,
            json!({ "input": { "id": id, "name": "Very important", "color": null } }),
        )
        .await;
    assert_eq!(
        renamed["updateTag"],
        json!({ "tag": { "name": "Very important", "color": null, "status": "ACTIVE" }, "userErrors": [] })
    );

    let list = app
        .data(&lead, "{ tags { totalCount nodes { name } } }", json!({}))
        .await;
    assert_eq!(
        list,
        json!({ "tags": { "totalCount": 3, "nodes": [{ "name": "Angry customer" }, { "name": "billing" }, { "name": "Very important" }] } })
    );
    let search = app
        .data(
            &lead,
            "{ tags(filter: { search: \"BILL\" }) { nodes { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        search,
        json!({ "tags": { "nodes": [{ "name": "billing" }] } })
    );
    let node = app
        .data(
            &lead,
            "query($id: ID!) { node(id: $id) { ... on Tag { name } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(node, json!({ "node": { "name": "Very important" } }));
}

#[tokio::test]
async fn bad_tag_input_gets_user_errors_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let first = create(&app, owner, json!({ "name": "VIP" })).await;
    let other = create(&app, owner, json!({ "name": "Other" })).await;
    let tags = app.count("tags").await;
    let events = app.count("events").await;
    assert_eq!(
        create(&app, owner, json!({ "name": "vip" })).await,
        json!({ "tag": null, "userErrors": [{ "field": ["input", "name"], "message": "a tag named \"vip\" exists", "code": "TAKEN" }] })
    );
    assert_eq!(
        create(&app, owner, json!({ "name": " ", "color": "red" })).await,
        json!({ "tag": null, "userErrors": [
            { "field": ["input", "name"], "message": "name must not be empty", "code": "REQUIRED" },
            { "field": ["input", "color"], "message": "\"red\" is not a color such as #1a2b3c", "code": "INVALID" }
        ] })
    );
    let rename = app
        .data(
            owner,
            UPDATE,
            json!({ "input": { "id": other["tag"]["id"], "name": "VIP" } }),
        )
        .await;
    assert_eq!(rename["updateTag"]["userErrors"][0]["code"], "TAKEN");
    let active = app
        .data(owner, ACTIVATE, json!({ "id": first["tag"]["id"] }))
        .await;
    assert_eq!(
        active["activateTag"],
        json!({ "tag": null, "userErrors": [{ "field": ["input", "id"], "message": "tag is already active", "code": "INVALID_STATE" }] })
    );
    assert_eq!(app.count("tags").await, tags);
    assert_eq!(app.count("events").await, events);
    let names = app
        .data(owner, "{ tags { nodes { name } } }", json!({}))
        .await;
    assert_eq!(
        names,
        json!({ "tags": { "nodes": [{ "name": "Other" }, { "name": "VIP" }] } })
    );
}

#[tokio::test]
async fn deactivation_and_activation_toggle_status_and_record_events() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let id = create(&app, owner, json!({ "name": "VIP" })).await["tag"]["id"].clone();
    let events = app.count("events").await;
    let off = app.data(owner, DEACTIVATE, json!({ "id": id })).await;
    assert_eq!(
        off["deactivateTag"],
        json!({ "tag": { "name": "VIP", "status": "INACTIVE" }, "userErrors": [] })
    );
    let inactive = app
        .data(
            owner,
            "{ tags(filter: { status: INACTIVE }) { nodes { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        inactive,
        json!({ "tags": { "nodes": [{ "name": "VIP" }] } })
    );
    let on = app.data(owner, ACTIVATE, json!({ "id": id })).await;
    assert_eq!(
        on["activateTag"],
        json!({ "tag": { "name": "VIP", "status": "ACTIVE" }, "userErrors": [] })
    );
    assert_eq!(
        app.count("events WHERE event_type IN ('TAG_DEACTIVATED', 'TAG_ACTIVATED')")
            .await,
        2
    );
    assert_eq!(app.count("events").await, events + 2);
}

#[tokio::test]
async fn agents_read_tags_but_cannot_change_them_and_other_orgs_cannot_see_them() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let id = create(&app, owner, json!({ "name": "VIP" })).await["tag"]["id"].clone();
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let tags = app.count("tags").await;
    let body = app
        .gql(&agent, CREATE, json!({ "input": { "name": "Mine" } }))
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"]);
    let body = app.gql(&agent, DEACTIVATE, json!({ "id": id })).await;
    assert_eq!(codes(&body), ["FORBIDDEN"]);
    let read = app
        .data(&agent, "{ tags { nodes { name status } } }", json!({}))
        .await;
    assert_eq!(
        read,
        json!({ "tags": { "nodes": [{ "name": "VIP", "status": "ACTIVE" }] } })
    );
    assert_eq!(app.count("tags").await, tags);

    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let hidden = app
        .data(
            &other.token,
            "query($id: ID!) { tag(id: $id) { name } node(id: $id) { id } tags { totalCount } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        hidden,
        json!({ "tag": null, "node": null, "tags": { "totalCount": 0 } })
    );
    let change = app
        .data(&other.token, DEACTIVATE, json!({ "id": id }))
        .await;
    assert_eq!(
        change["deactivateTag"]["userErrors"][0]["code"],
        "NOT_FOUND"
    );
    // The same name is free in another organization.
    let theirs = create(&app, &other.token, json!({ "name": "VIP" })).await;
    assert_eq!(theirs["userErrors"], json!([]));
}
