//! Tenant isolation: two organizations; neither can read, list, mutate or `node(id:)` the other's
//! rows.

use serde_json::json;

use crate::common::{TestApp, codes};

#[tokio::test]
async fn organizations_cannot_see_or_touch_each_other() {
    let app = TestApp::spawn().await;
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let acme = &app.org;

    // Each lists only its own users.
    let list = "{ users { totalCount nodes { email } } }";
    assert_eq!(
        app.data(&acme.token, list, json!({})).await,
        json!({ "users": { "totalCount": 1, "nodes": [{ "email": "owner@acme.test" }] } })
    );
    assert_eq!(
        app.data(&other.token, list, json!({})).await,
        json!({ "users": { "totalCount": 1, "nodes": [{ "email": "owner@globex.test" }] } })
    );

    // node, nodes and user by id answer null for the other organization's rows.
    let lookup = "query($user: ID!, $org: ID!) {
      node(id: $user) { id }
      nodes(ids: [$user, $org]) { id }
      user(id: $user) { id }
      org: node(id: $org) { id }
    }";
    let data = app
        .data(
            &acme.token,
            lookup,
            json!({ "user": other.owner_id, "org": other.org_id }),
        )
        .await;
    assert_eq!(
        data,
        json!({ "node": null, "nodes": [null, null], "user": null, "org": null })
    );

    // The other organization's tokens are invisible too.
    let tokens = app
        .data(&other.token, "{ apiTokens { nodes { id } } }", json!({}))
        .await;
    let token_id = tokens["apiTokens"]["nodes"][0]["id"].clone();
    let data = app
        .data(
            &acme.token,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": token_id }),
        )
        .await;
    assert_eq!(data, json!({ "node": null }));
    let body = app
        .gql(
            &acme.token,
            "query($id: ID!) { apiTokens(filter: { userId: $id }) { nodes { id } } }",
            json!({ "id": other.owner_id }),
        )
        .await;
    assert_eq!(
        body["data"],
        json!({ "apiTokens": { "nodes": [] } }),
        "an owner listing a foreign user's tokens sees none"
    );

    // Mutations naming the other organization's rows find nothing and change nothing.
    let events = app.count("events").await;
    let attempts = [
        (
            "mutation($id: ID!) { updateUser(input: { id: $id, displayName: \"Hacked\" }) { userErrors { field code } } }",
            other.owner_id.clone(),
            "updateUser",
        ),
        (
            "mutation($id: ID!) { deactivateUser(input: { id: $id }) { userErrors { field code } } }",
            other.owner_id.clone(),
            "deactivateUser",
        ),
        (
            "mutation($id: ID!) { setUserRoles(input: { id: $id, roles: [AGENT] }) { userErrors { field code } } }",
            other.owner_id.clone(),
            "setUserRoles",
        ),
        (
            "mutation($id: ID!) { setPassword(input: { userId: $id, newPassword: \"0123456789abc\" }) { userErrors { field code } } }",
            other.owner_id.clone(),
            "setPassword",
        ),
        (
            "mutation($id: ID!) { revokeApiToken(input: { id: $id }) { userErrors { field code } } }",
            token_id.as_str().unwrap_or_default().to_string(),
            "revokeApiToken",
        ),
        (
            "mutation($id: ID!) { createApiToken(input: { name: \"x\", userId: $id }) { userErrors { field code } } }",
            other.owner_id.clone(),
            "createApiToken",
        ),
    ];
    for (mutation, id, field) in attempts {
        let data = app.data(&acme.token, mutation, json!({ "id": id })).await;
        let errors = &data[field]["userErrors"];
        assert_eq!(errors[0]["code"], "NOT_FOUND", "{field}: {data}");
    }
    assert_eq!(app.count("events").await, events);

    // The other organization is untouched and its token still works.
    let data = app
        .data(
            &other.token,
            "{ viewer { user { displayName roles status } organization { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data,
        json!({ "viewer": { "user": { "displayName": "Globex Owner", "roles": ["OWNER"], "status": "ACTIVE" }, "organization": { "name": "Globex" } } })
    );
}

#[tokio::test]
async fn anonymous_callers_see_nothing() {
    let app = TestApp::spawn().await;
    let (status, _, body) = app
        .post(
            None,
            json!({ "query": "{ users { totalCount } organization { name } }" }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], serde_json::Value::Null);
    assert_eq!(codes(&body), ["UNAUTHENTICATED", "UNAUTHENTICATED"]);
}
