//! Custom attribute definitions: types, nested select options, archive; validation and roles.

use serde_json::{Value, json};

use crate::common::{TestApp, codes};

const CREATE: &str = "mutation($input: CreateCustomAttributeDefinitionInput!) {
  createCustomAttributeDefinition(input: $input) {
    definition { id entity identifier label valueType required archived options { value label deactivated options { value label } } }
    userErrors { field message code }
  }
}";

async fn create(app: &TestApp, input: Value) -> Value {
    app.data(&app.org.token, CREATE, json!({ "input": input }))
        .await["createCustomAttributeDefinition"]
        .clone()
}

#[tokio::test]
async fn definitions_are_created_with_nested_options_and_listed() {
    let app = TestApp::spawn().await;
    let tier = create(
        &app,
        json!({ "entity": "CONTACT", "identifier": "tier", "label": "Tier", "valueType": "SELECT", "required": true,
                "options": [{ "value": "gold", "label": "Gold", "options": [{ "value": "gold_plus", "label": "Gold+" }] },
                            { "value": "silver", "label": "Silver" }] }),
    )
    .await;
    let definition = &tier["definition"];
    assert_eq!(tier["userErrors"], json!([]));
    assert_eq!(
        (
            definition["entity"].clone(),
            definition["valueType"].clone(),
            definition["required"].clone()
        ),
        (json!("CONTACT"), json!("SELECT"), json!(true))
    );
    assert_eq!(
        definition["options"],
        json!([{ "value": "gold", "label": "Gold", "deactivated": false, "options": [{ "value": "gold_plus", "label": "Gold+" }] },
               { "value": "silver", "label": "Silver", "deactivated": false, "options": [] }])
    );
    create(&app, json!({ "entity": "CONTACT", "identifier": "score", "label": "Score", "valueType": "NUMBER" })).await;
    create(&app, json!({ "entity": "CONVERSATION", "identifier": "order_id", "label": "Order", "valueType": "TEXT" })).await;
    let list = app
        .data(
            &app.org.token,
            "{ customAttributeDefinitions(entity: CONTACT) { identifier valueType } }",
            json!({}),
        )
        .await;
    assert_eq!(
        list,
        json!({ "customAttributeDefinitions": [{ "identifier": "score", "valueType": "NUMBER" }, { "identifier": "tier", "valueType": "SELECT" }] })
    );
}

#[tokio::test]
async fn bad_definitions_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    create(
        &app,
        json!({ "entity": "CONTACT", "identifier": "tier", "label": "Tier", "valueType": "TEXT" }),
    )
    .await;
    let events = app.count("events").await;
    let cases = [
        (
            json!({ "entity": "CONTACT", "identifier": "tier", "label": "Again", "valueType": "TEXT" }),
            json!([{ "field": ["input", "identifier"], "message": "an attribute \"tier\" exists", "code": "TAKEN" }]),
        ),
        (
            json!({ "entity": "CONTACT", "identifier": "Bad Name", "label": "X", "valueType": "SELECT" }),
            json!([
                { "field": ["input", "identifier"], "message": "\"Bad Name\" is not an identifier: lower-case letters, digits and _, starting with a letter", "code": "INVALID" },
                { "field": ["input", "options"], "message": "a SELECT attribute needs options", "code": "REQUIRED" }
            ]),
        ),
        (
            json!({ "entity": "CONTACT", "identifier": "plan", "label": "Plan", "valueType": "NUMBER", "options": [{ "value": "a", "label": "A" }] }),
            json!([{ "field": ["input", "options"], "message": "only SELECT attributes have options", "code": "INVALID" }]),
        ),
        (
            json!({ "entity": "CONTACT", "identifier": "plan", "label": "Plan", "valueType": "SELECT",
                    "options": [{ "value": "a", "label": "A", "options": [{ "value": "a", "label": "Again" }] }] }),
            json!([{ "field": ["input", "options", "0", "options", "0", "value"], "message": "option value \"a\" is used twice", "code": "TAKEN" }]),
        ),
    ];
    for (input, errors) in cases {
        let result = create(&app, input.clone()).await;
        assert_eq!(
            result,
            json!({ "definition": null, "userErrors": errors }),
            "{input}"
        );
    }
    assert_eq!(app.count("custom_attribute_definitions").await, 1);
    assert_eq!(app.count("events").await, events);
    // The same identifier is free for the other entity and in another organization.
    let conversation = create(&app, json!({ "entity": "CONVERSATION", "identifier": "tier", "label": "Tier", "valueType": "TEXT" })).await;
    assert_eq!(conversation["userErrors"], json!([]));
}

#[tokio::test]
async fn options_can_be_deactivated_and_definitions_archived() {
    let app = TestApp::spawn().await;
    let created = create(
        &app,
        json!({ "entity": "CONTACT", "identifier": "tier", "label": "Tier", "valueType": "SELECT",
                "options": [{ "value": "gold", "label": "Gold" }, { "value": "silver", "label": "Silver" }] }),
    )
    .await;
    let id = created["definition"]["id"].clone();
    let update = "mutation($input: UpdateCustomAttributeDefinitionInput!) { updateCustomAttributeDefinition(input: $input) { definition { label options { value deactivated } } userErrors { field code } } }";
    let updated = app
        .data(&app.org.token, update, json!({ "input": { "id": id, "label": "Customer tier",
            "options": [{ "value": "gold", "label": "Gold" }, { "value": "silver", "label": "Silver", "deactivated": true }] } }))
        .await;
    assert_eq!(
        updated["updateCustomAttributeDefinition"],
        json!({ "definition": { "label": "Customer tier", "options": [{ "value": "gold", "deactivated": false }, { "value": "silver", "deactivated": true }] }, "userErrors": [] })
    );
    let archive = "mutation($id: ID!) { archiveCustomAttributeDefinition(input: { id: $id }) { definition { archived } userErrors { field message code } } }";
    let archived = app.data(&app.org.token, archive, json!({ "id": id })).await;
    assert_eq!(
        archived["archiveCustomAttributeDefinition"],
        json!({ "definition": { "archived": true }, "userErrors": [] })
    );
    let again = app.data(&app.org.token, archive, json!({ "id": id })).await;
    assert_eq!(
        again["archiveCustomAttributeDefinition"]["userErrors"],
        json!([{ "field": ["input", "archived"], "message": "the attribute is already archived", "code": "INVALID_STATE" }])
    );
    let listed = app
        .data(&app.org.token, "{ active: customAttributeDefinitions(entity: CONTACT) { identifier } all: customAttributeDefinitions(entity: CONTACT, includeArchived: true) { identifier } }", json!({}))
        .await;
    assert_eq!(
        listed,
        json!({ "active": [], "all": [{ "identifier": "tier" }] })
    );
    let unarchive = "mutation($id: ID!) { unarchiveCustomAttributeDefinition(input: { id: $id }) { definition { archived } userErrors { code } } }";
    let restored = app
        .data(&app.org.token, unarchive, json!({ "id": id }))
        .await;
    assert_eq!(
        restored["unarchiveCustomAttributeDefinition"],
        json!({ "definition": { "archived": false }, "userErrors": [] })
    );
    for (event, n) in [
        ("CUSTOM_ATTRIBUTE_DEFINITION_CREATED", 1),
        ("CUSTOM_ATTRIBUTE_DEFINITION_UPDATED", 1),
        ("CUSTOM_ATTRIBUTE_DEFINITION_ARCHIVED", 1),
        ("CUSTOM_ATTRIBUTE_DEFINITION_UNARCHIVED", 1),
    ] {
        let where_ = format!(
            "events WHERE event_type = '{event}' AND subject_type = 'CustomAttributeDefinition'"
        );
        assert_eq!(app.count(&where_).await, n, "{event}");
    }
}

#[tokio::test]
async fn only_admins_define_attributes_and_other_orgs_see_none() {
    let app = TestApp::spawn().await;
    create(
        &app,
        json!({ "entity": "CONTACT", "identifier": "tier", "label": "Tier", "valueType": "TEXT" }),
    )
    .await;
    let (_, lead) = app.user_with_token("lead@acme.test", &["TEAM_LEAD"]).await;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let definitions = app.count("custom_attribute_definitions").await;
    let events = app.count("events").await;
    for token in [&lead, &agent] {
        let body = app
            .gql(token, CREATE, json!({ "input": { "entity": "CONTACT", "identifier": "x", "label": "X", "valueType": "TEXT" } }))
            .await;
        assert_eq!(codes(&body), ["FORBIDDEN"]);
    }
    assert_eq!(app.count("custom_attribute_definitions").await, definitions);
    assert_eq!(app.count("events").await, events);
    let read = app
        .data(
            &agent,
            "{ customAttributeDefinitions(entity: CONTACT) { identifier } }",
            json!({}),
        )
        .await;
    assert_eq!(
        read,
        json!({ "customAttributeDefinitions": [{ "identifier": "tier" }] })
    );
    let read = app
        .data(
            &lead,
            "{ customAttributeDefinitions(entity: CONTACT) { identifier } }",
            json!({}),
        )
        .await;
    assert_eq!(
        read,
        json!({ "customAttributeDefinitions": [{ "identifier": "tier" }] })
    );
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let theirs = app
        .data(
            &other.token,
            "{ customAttributeDefinitions(entity: CONTACT) { identifier } }",
            json!({}),
        )
        .await;
    assert_eq!(theirs, json!({ "customAttributeDefinitions": [] }));
    // Our definition's id is missing for them.
    let ours = app
        .data(
            &app.org.token,
            "{ customAttributeDefinitions(entity: CONTACT) { id } }",
            json!({}),
        )
        .await["customAttributeDefinitions"][0]["id"]
        .clone();
    let events = app.count("events").await;
    let hidden = app
        .data(
            &other.token,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": ours }),
        )
        .await;
    assert_eq!(hidden, json!({ "node": null }));
    let refused = app
        .data(&other.token, "mutation($id: ID!) { archiveCustomAttributeDefinition(input: { id: $id }) { definition { archived } userErrors { field code } } }", json!({ "id": ours }))
        .await;
    assert_eq!(
        refused["archiveCustomAttributeDefinition"],
        json!({ "definition": null, "userErrors": [{ "field": ["input", "id"], "code": "NOT_FOUND" }] })
    );
    assert_eq!(app.count("events").await, events);
}
