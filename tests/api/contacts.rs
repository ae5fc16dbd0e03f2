//! Contacts: create, patch and full update, list with filters and orderings, tags, custom
//! attribute values; validation, roles, tenancy and batched loading.

use serde_json::{Value, json};

use crate::common::{TestApp, codes};

const CREATE: &str = "mutation($input: ContactInput!) { createContact(input: $input) {
  contact { id name displayName firstName lastName email phone additionalEmails externalId company address { city country } note birthDate }
  userErrors { field message code } } }";

async fn create(app: &TestApp, token: &str, input: Value) -> Value {
    app.data(token, CREATE, json!({ "input": input })).await["createContact"].clone()
}

async fn contact_id(app: &TestApp, input: Value) -> Value {
    let created = create(app, &app.org.token, input).await;
    assert_eq!(created["userErrors"], json!([]), "{created}");
    created["contact"]["id"].clone()
}

#[tokio::test]
async fn agents_create_and_update_contacts_with_patch_and_full_semantics() {
    let app = TestApp::spawn().await;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let created = create(
        &app,
        &agent,
        json!({ "firstName": "Ann", "lastName": "Larsen", "email": "Ann@Example.COM", "phone": "+4520123456",
                "additionalEmails": ["ann@work.example"], "externalId": "crm-1", "company": "Larsen ApS",
                "address": { "city": "Aarhus", "country": "DK" }, "note": "VIP", "birthDate": "1990-05-17" }),
    )
    .await;
    let id = created["contact"]["id"].clone();
    assert_eq!(
        created,
        json!({ "contact": { "id": id, "name": "Ann Larsen", "displayName": null, "firstName": "Ann", "lastName": "Larsen",
            "email": "ann@example.com", "phone": "+4520123456", "additionalEmails": ["ann@work.example"], "externalId": "crm-1",
            "company": "Larsen ApS", "address": { "city": "Aarhus", "country": "DK" }, "note": "VIP", "birthDate": "1990-05-17" },
            "userErrors": [] })
    );
    let fields =
        "contact { name firstName lastName email phone company note } userErrors { field code }";
    let update = format!(
        "mutation($input: UpdateContactInput!) {{ updateContact(input: $input) {{ {fields} }} }}"
    );
    let replace = format!(
        "mutation($input: UpdateContactInput!) {{ replaceContact(input: $input) {{ {fields} }} }}"
    );
    let patched = app
        .data(
            &agent,
            &update,
            json!({ "input": { "id": id, "contact": { "company": "Larsen A/S", "note": null } } }),
        )
        .await;
    assert_eq!(
        patched["updateContact"],
        json!({ "contact": { "name": "Ann Larsen", "firstName": "Ann", "lastName": "Larsen", "email": "ann@example.com",
            "phone": "+4520123456", "company": "Larsen A/S", "note": null }, "userErrors": [] })
    );
    let replaced = app
        .data(&agent, &replace, json!({ "input": { "id": id, "contact": { "firstName": "Anne", "email": "anne@example.com" } } }))
        .await;
    assert_eq!(
        replaced["replaceContact"],
        json!({ "contact": { "name": "Anne", "firstName": "Anne", "lastName": null, "email": "anne@example.com",
            "phone": null, "company": null, "note": null }, "userErrors": [] })
    );
    assert_eq!(
        app.count("events WHERE event_type IN ('CONTACT_CREATED', 'CONTACT_UPDATED')")
            .await,
        3
    );
}

#[tokio::test]
async fn bad_contact_input_gets_user_errors_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    contact_id(
        &app,
        json!({ "email": "first@example.com", "externalId": "crm-1" }),
    )
    .await;
    let contacts = app.count("contacts").await;
    let events = app.count("events").await;
    let cases = [
        (
            json!({ "phone": "12ab" }),
            json!([{ "field": ["input", "phone"], "message": "\"12ab\" is not an E.164 phone number such as +14155550100", "code": "INVALID" }]),
        ),
        (
            json!({ "email": "not an email" }),
            json!([{ "field": ["input", "email"], "message": "\"not an email\" is not a valid email address", "code": "INVALID" }]),
        ),
        (
            json!({ "externalId": "crm-1" }),
            json!([{ "field": ["input", "externalId"], "message": "a contact with external id \"crm-1\" exists", "code": "TAKEN" }]),
        ),
        (
            json!({ "additionalPhones": ["+4520123456", "555"], "address": { "country": "Denmark" } }),
            json!([
                { "field": ["input", "additionalPhones", "1"], "message": "\"555\" is not an E.164 phone number such as +14155550100", "code": "INVALID" },
                { "field": ["input", "address", "country"], "message": "\"Denmark\" is not a country code such as DK", "code": "INVALID" }
            ]),
        ),
    ];
    for (input, errors) in cases {
        let result = create(&app, owner, input.clone()).await;
        assert_eq!(
            result,
            json!({ "contact": null, "userErrors": errors }),
            "{input}"
        );
    }
    assert_eq!(app.count("contacts").await, contacts);
    assert_eq!(app.count("events").await, events);
}

const LIST: &str = "query($filter: ContactFilterInput, $order: ContactOrder, $first: Int, $after: String) {
  contacts(filter: $filter, orderBy: $order, first: $first, after: $after) { totalCount nodes { name } pageInfo { hasNextPage endCursor } } }";

fn names(data: &Value) -> Vec<String> {
    data["contacts"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| n["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn contacts_list_filters_orders_and_paginates() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let carol = contact_id(
        &app,
        json!({ "displayName": "Carol", "phone": "+4511111111" }),
    )
    .await;
    let bob = contact_id(
        &app,
        json!({ "firstName": "Bob", "email": "bob@example.com", "externalId": "x-2" }),
    )
    .await;
    contact_id(&app, json!({ "email": "zed@example.com" })).await;
    let tag = app
        .data(
            owner,
            "mutation { createTag(input: { name: \"VIP\" }) { tag { id } } }",
            json!({}),
        )
        .await["createTag"]["tag"]["id"]
        .clone();
    app.data(owner, "mutation($c: [ID!]!, $t: [ID!]!) { tagContacts(input: { contactIds: $c, tagIds: $t }) { userErrors { code } } }", json!({ "c": [carol], "t": [tag] }))
        .await;
    app.data(owner, "mutation { createCustomAttributeDefinition(input: { entity: CONTACT, identifier: \"score\", label: \"Score\", valueType: NUMBER }) { userErrors { code } } }", json!({}))
        .await;
    app.data(owner, "mutation($id: ID!) { setContactAttributes(input: { contactId: $id, values: [{ identifier: \"score\", value: 7 }] }) { userErrors { code } } }", json!({ "id": bob }))
        .await;

    assert_eq!(
        names(&app.data(owner, LIST, json!({})).await),
        ["Bob", "Carol", "zed@example.com"]
    );
    let desc = app
        .data(
            owner,
            LIST,
            json!({ "order": { "field": "CREATED_AT", "direction": "DESC" } }),
        )
        .await;
    assert_eq!(names(&desc), ["zed@example.com", "Bob", "Carol"]);
    for (filter, expected) in [
        (json!({ "search": "111" }), vec!["Carol"]),
        (
            json!({ "search": "EXAMPLE" }),
            vec!["Bob", "zed@example.com"],
        ),
        (json!({ "tagIds": [tag] }), vec!["Carol"]),
        (json!({ "externalId": "x-2" }), vec!["Bob"]),
        (
            json!({ "attribute": { "identifier": "score", "value": 7 } }),
            vec!["Bob"],
        ),
        (
            json!({ "attribute": { "identifier": "score", "value": 8 } }),
            vec![],
        ),
    ] {
        let data = app.data(owner, LIST, json!({ "filter": filter })).await;
        assert_eq!(names(&data), expected, "{filter}");
        assert_eq!(data["contacts"]["totalCount"], expected.len(), "{filter}");
    }
    let page1 = app.data(owner, LIST, json!({ "first": 2 })).await;
    assert_eq!(names(&page1), ["Bob", "Carol"]);
    let after = page1["contacts"]["pageInfo"]["endCursor"].clone();
    let page2 = app
        .data(owner, LIST, json!({ "first": 2, "after": after }))
        .await;
    assert_eq!(names(&page2), ["zed@example.com"]);
    assert_eq!(page2["contacts"]["pageInfo"]["hasNextPage"], false);
}

async fn new_tag(app: &TestApp, name: &str) -> Value {
    app.data(
        &app.org.token,
        "mutation($n: String!) { createTag(input: { name: $n }) { tag { id } } }",
        json!({ "n": name }),
    )
    .await["createTag"]["tag"]["id"]
        .clone()
}

#[tokio::test]
async fn inactive_tags_cannot_be_applied_but_can_be_removed() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let contact = contact_id(&app, json!({ "displayName": "Carol" })).await;
    let vip = new_tag(&app, "VIP").await;
    let old = new_tag(&app, "Old").await;
    let apply = "mutation($c: [ID!]!, $t: [ID!]!) { tagContacts(input: { contactIds: $c, tagIds: $t }) { contacts { tags { name } } userErrors { field message code } } }";
    let remove = "mutation($c: [ID!]!, $t: [ID!]!) { untagContacts(input: { contactIds: $c, tagIds: $t }) { contacts { tags { name } } userErrors { field message code } } }";
    let applied = app
        .data(owner, apply, json!({ "c": [contact], "t": [vip, old] }))
        .await;
    assert_eq!(
        applied["tagContacts"],
        json!({ "contacts": [{ "tags": [{ "name": "VIP" }, { "name": "Old" }] }], "userErrors": [] })
    );
    app.data(
        owner,
        "mutation($id: ID!) { deactivateTag(input: { id: $id }) { userErrors { code } } }",
        json!({ "id": old }),
    )
    .await;
    let other = contact_id(&app, json!({ "displayName": "Dave" })).await;
    let rows = app.count("contact_tags").await;
    let events = app.count("events").await;
    let refused = app
        .data(owner, apply, json!({ "c": [other], "t": [vip, old] }))
        .await;
    assert_eq!(
        refused["tagContacts"],
        json!({ "contacts": [], "userErrors": [{ "field": ["input", "tagIds", "1"], "message": "tag \"Old\" is inactive and cannot be applied", "code": "INVALID_STATE" }] })
    );
    assert_eq!(app.count("contact_tags").await, rows);
    assert_eq!(app.count("events").await, events);
    let removed = app
        .data(owner, remove, json!({ "c": [contact], "t": [old] }))
        .await;
    assert_eq!(
        removed["untagContacts"],
        json!({ "contacts": [{ "tags": [{ "name": "VIP" }] }], "userErrors": [] })
    );
}

#[tokio::test]
async fn attribute_values_are_validated_against_their_definitions() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let define = "mutation($input: CreateCustomAttributeDefinitionInput!) { createCustomAttributeDefinition(input: $input) { userErrors { code } } }";
    for input in [
        json!({ "entity": "CONTACT", "identifier": "score", "label": "Score", "valueType": "NUMBER" }),
        json!({ "entity": "CONTACT", "identifier": "vip", "label": "VIP", "valueType": "BOOLEAN" }),
        json!({ "entity": "CONTACT", "identifier": "since", "label": "Since", "valueType": "DATE", "required": true }),
        json!({ "entity": "CONTACT", "identifier": "tier", "label": "Tier", "valueType": "SELECT",
                "options": [{ "value": "gold", "label": "Gold", "options": [{ "value": "gold_plus", "label": "Gold+", "deactivated": true }] }] }),
    ] {
        app.data(owner, define, json!({ "input": input })).await;
    }
    let contact = contact_id(&app, json!({ "displayName": "Carol" })).await;
    let set = "mutation($id: ID!, $values: [AttributeValueInput!]!) { setContactAttributes(input: { contactId: $id, values: $values }) {
        contact { customAttributes { identifier value definition { valueType } } } userErrors { field message code } } }";
    let ok = app
        .data(owner, set, json!({ "id": contact, "values": [
            { "identifier": "score", "value": 7.5 }, { "identifier": "vip", "value": true },
            { "identifier": "since", "value": "2024-02-29" }, { "identifier": "tier", "value": "gold" }] }))
        .await;
    assert_eq!(
        ok["setContactAttributes"],
        json!({ "contact": { "customAttributes": [
            { "identifier": "score", "value": 7.5, "definition": { "valueType": "NUMBER" } },
            { "identifier": "since", "value": "2024-02-29", "definition": { "valueType": "DATE" } },
            { "identifier": "tier", "value": "gold", "definition": { "valueType": "SELECT" } },
            { "identifier": "vip", "value": true, "definition": { "valueType": "BOOLEAN" } }
        ] }, "userErrors": [] })
    );
    let values = app.count("contact_attribute_values").await;
    let events = app.count("events").await;
    let refused = app
        .data(owner, set, json!({ "id": contact, "values": [
            { "identifier": "score", "value": "high" }, { "identifier": "vip", "value": 1 },
            { "identifier": "since", "value": null }, { "identifier": "tier", "value": "gold_plus" },
            { "identifier": "color", "value": "red" }, { "identifier": "since", "value": "2024-02-30" }] }))
        .await;
    assert_eq!(
        refused["setContactAttributes"],
        json!({ "contact": null, "userErrors": [
            { "field": ["input", "values", "0", "value"], "message": "score expects a NUMBER value, got a string", "code": "INVALID" },
            { "field": ["input", "values", "1", "value"], "message": "vip expects a BOOLEAN value, got a number", "code": "INVALID" },
            { "field": ["input", "values", "2", "value"], "message": "attribute \"since\" is required and cannot be cleared", "code": "REQUIRED" },
            { "field": ["input", "values", "3", "value"], "message": "option \"gold_plus\" is deactivated", "code": "INVALID" },
            { "field": ["input", "values", "4", "identifier"], "message": "no contact attribute \"color\"", "code": "NOT_FOUND" },
            { "field": ["input", "values", "5", "value"], "message": "\"2024-02-30\" is not a date such as 2026-11-23", "code": "INVALID" }
        ] })
    );
    assert_eq!(app.count("contact_attribute_values").await, values);
    assert_eq!(app.count("events").await, events);
    // null clears an optional value.
    let cleared = app
        .data(
            owner,
            set,
            json!({ "id": contact, "values": [{ "identifier": "score", "value": null }] }),
        )
        .await;
    assert_eq!(cleared["setContactAttributes"]["userErrors"], json!([]));
    assert_eq!(app.count("contact_attribute_values").await, values - 1);
}

#[tokio::test]
async fn contacts_are_private_to_their_organization() {
    let app = TestApp::spawn().await;
    let contact = contact_id(&app, json!({ "displayName": "Carol" })).await;
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let hidden = app
        .data(&other.token, "query($id: ID!) { contact(id: $id) { name } node(id: $id) { id } contacts { totalCount } }", json!({ "id": contact }))
        .await;
    assert_eq!(
        hidden,
        json!({ "contact": null, "node": null, "contacts": { "totalCount": 0 } })
    );
    let update = app
        .data(&other.token, "mutation($id: ID!) { updateContact(input: { id: $id, contact: { note: \"x\" } }) { userErrors { field code } } }", json!({ "id": contact }))
        .await;
    assert_eq!(
        update["updateContact"]["userErrors"],
        json!([{ "field": ["input", "id"], "code": "NOT_FOUND" }])
    );
    // External ids are unique per organization only.
    let theirs = create(&app, &other.token, json!({ "externalId": "shared" })).await;
    assert_eq!(theirs["userErrors"], json!([]));
    let ours = create(&app, &app.org.token, json!({ "externalId": "shared" })).await;
    assert_eq!(ours["userErrors"], json!([]));
    let body = app
        .gql(&other.token, "{ contacts { totalCount } }", json!({}))
        .await;
    assert_eq!(codes(&body), Vec::<String>::new());
}

#[tokio::test]
async fn a_page_of_100_contacts_with_tags_and_attributes_costs_the_same_statements_as_5() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let tag = app
        .data(
            owner,
            "mutation { createTag(input: { name: \"VIP\" }) { tag { id } } }",
            json!({}),
        )
        .await["createTag"]["tag"]["id"]
        .clone();
    app.data(owner, "mutation { createCustomAttributeDefinition(input: { entity: CONTACT, identifier: \"score\", label: \"Score\", valueType: NUMBER }) { userErrors { code } } }", json!({}))
        .await;
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(contact_id(&app, json!({ "displayName": format!("Contact {i:03}") })).await);
    }
    app.data(owner, "mutation($c: [ID!]!, $t: [ID!]!) { tagContacts(input: { contactIds: $c, tagIds: $t }) { userErrors { code } } }", json!({ "c": ids, "t": [tag] }))
        .await;
    for id in ids.iter().take(10) {
        app.data(owner, "mutation($id: ID!) { setContactAttributes(input: { contactId: $id, values: [{ identifier: \"score\", value: 1 }] }) { userErrors { code } } }", json!({ "id": id }))
            .await;
    }
    let page = |n: usize| {
        format!(
            "{{ contacts(first: {n}) {{ nodes {{ name tags {{ name }} customAttributes {{ value definition {{ identifier }} }} }} }} }}"
        )
    };
    let (small, data) = app.statements_of(owner, &page(5)).await;
    assert_eq!(
        data["contacts"]["nodes"][0]["tags"],
        json!([{ "name": "VIP" }])
    );
    let (large, data) = app.statements_of(owner, &page(100)).await;
    assert_eq!(
        data["contacts"]["nodes"].as_array().map(Vec::len),
        Some(100)
    );
    assert_eq!(
        data["contacts"]["nodes"][0]["customAttributes"],
        json!([{ "value": 1.0, "definition": { "identifier": "score" } }])
    );
    assert_eq!(small, large);
}
