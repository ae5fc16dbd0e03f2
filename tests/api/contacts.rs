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
    // Each type lands in its typed column, so rules can compare it in SQL.
    for (column, rows) in [
        ("text_value", 1),
        ("number_value", 0),
        ("bool_value", 1),
        ("date_value", 1),
    ] {
        let where_ = format!("contact_attribute_values WHERE {column} IS NOT NULL");
        assert_eq!(app.count(&where_).await, rows, "{column}");
    }
    let by_date = app
        .data(
            owner,
            "{ contacts(filter: { attribute: { identifier: \"since\", value: \"2024-02-29\" } }) { nodes { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(by_date["contacts"]["nodes"], json!([{ "name": "Carol" }]));
    // An archived attribute takes no values.
    let definitions = app
        .data(
            owner,
            "{ customAttributeDefinitions(entity: CONTACT) { id identifier } }",
            json!({}),
        )
        .await;
    let vip = definitions["customAttributeDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["identifier"] == "vip")
        .map(|d| d["id"].clone())
        .expect("the vip definition");
    app.data(owner, "mutation($id: ID!) { archiveCustomAttributeDefinition(input: { id: $id }) { userErrors { code } } }", json!({ "id": vip }))
        .await;
    let values = app.count("contact_attribute_values").await;
    let events = app.count("events").await;
    let archived = app
        .data(
            owner,
            set,
            json!({ "id": contact, "values": [{ "identifier": "vip", "value": false }] }),
        )
        .await;
    assert_eq!(
        archived["setContactAttributes"],
        json!({ "contact": null, "userErrors": [
            { "field": ["input", "values", "0", "identifier"], "message": "attribute \"vip\" is archived", "code": "INVALID_STATE" }
        ] })
    );
    assert_eq!(app.count("contact_attribute_values").await, values);
    assert_eq!(app.count("events").await, events);
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
async fn a_page_of_100_contacts_with_tags_groups_and_attributes_costs_the_same_statements_as_5() {
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
    // A static group of the second half, and two rule groups (an attribute and a name rule).
    let app = &app;
    let group = |input: Value| async move {
        app.data(
            owner,
            "mutation($input: CreateContactGroupInput!) { createContactGroup(input: $input) { contactGroup { id } } }",
            json!({ "input": input }),
        )
        .await["createContactGroup"]["contactGroup"]["id"]
            .clone()
    };
    let fixed = group(json!({ "name": "Static" })).await;
    app.data(owner, "mutation($g: ID!, $c: [ID!]!) { addContactGroupMembers(input: { groupId: $g, contactIds: $c }) { userErrors { code } } }", json!({ "g": fixed, "c": ids[50..] }))
        .await;
    group(json!({ "name": "Scored", "rules": [{ "field": "attributes.score", "operator": "GTE", "value": 1 }] })).await;
    group(json!({ "name": "Nineties", "rules": [{ "field": "name", "operator": "CONTAINS", "value": "contact 09" }] })).await;
    let page = |n: usize| {
        format!(
            "{{ contacts(first: {n}) {{ nodes {{ name tags {{ name }} contactGroups {{ name }} customAttributes {{ value definition {{ identifier }} }} }} }} }}"
        )
    };
    let (small, data) = app.statements_of(owner, &page(5)).await;
    assert_eq!(
        data["contacts"]["nodes"][0]["tags"],
        json!([{ "name": "VIP" }])
    );
    assert_eq!(
        data["contacts"]["nodes"][0]["contactGroups"],
        json!([{ "name": "Scored" }])
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
    for (i, groups) in [
        (9, json!([{ "name": "Scored" }])),
        (10, json!([])),
        (50, json!([{ "name": "Static" }])),
        (99, json!([{ "name": "Nineties" }, { "name": "Static" }])),
    ] {
        assert_eq!(data["contacts"]["nodes"][i]["contactGroups"], groups, "{i}");
    }
    assert_eq!(small, large);
}

/// Records a conversation with the contact the way conversations will: through the service helper
/// that keeps the sort keys in step.
async fn contacted(app: &TestApp, id: &Value, at: &str) {
    use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel};
    let uuid = switchboard::graphql::relay::decode_id(id.as_str().unwrap_or_default(), "Contact")
        .expect("a contact id");
    let model = entity::contact::Entity::find_by_id(uuid)
        .one(&app.state.db)
        .await
        .expect("contact query")
        .expect("contact row");
    let mut model = model.into_active_model();
    switchboard::contacts::service::set_last_contacted(
        &mut model,
        Some(at.parse().expect("a timestamp")),
    );
    model.update(&app.state.db).await.expect("contact update");
}

#[tokio::test]
async fn ordering_by_last_contacted_puts_never_contacted_last_both_ways_and_paginates() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let ann = contact_id(&app, json!({ "displayName": "Ann" })).await;
    let bob = contact_id(&app, json!({ "displayName": "Bob" })).await;
    contact_id(&app, json!({ "displayName": "Cid" })).await;
    let dan = contact_id(&app, json!({ "displayName": "Dan" })).await;
    contact_id(&app, json!({ "displayName": "Eve" })).await;
    contacted(&app, &ann, "2026-03-01T10:00:00Z").await;
    contacted(&app, &bob, "2026-01-01T10:00:00Z").await;
    contacted(&app, &dan, "2026-03-01T10:00:00Z").await;
    let query = "query($order: ContactOrder, $first: Int, $after: String, $last: Int, $before: String) {
      contacts(orderBy: $order, first: $first, after: $after, last: $last, before: $before) {
        nodes { name lastContactedAt } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";
    for (direction, expected) in [
        ("ASC", ["Bob", "Ann", "Dan", "Cid", "Eve"]),
        // Ties (Ann and Dan; the never contacted) follow the direction too, by id.
        ("DESC", ["Dan", "Ann", "Bob", "Eve", "Cid"]),
    ] {
        let order = json!({ "field": "LAST_CONTACTED_AT", "direction": direction });
        let all = app
            .data(owner, query, json!({ "order": order, "first": 10 }))
            .await;
        assert_eq!(names(&all), expected, "{direction}");
        // One by one forwards, then backwards from the end, across the null boundary.
        let mut seen = Vec::new();
        let mut after = Value::Null;
        loop {
            let page = app
                .data(
                    owner,
                    query,
                    json!({ "order": order, "first": 1, "after": after }),
                )
                .await;
            seen.extend(names(&page));
            let info = &page["contacts"]["pageInfo"];
            if info["hasNextPage"] != true {
                break;
            }
            after = info["endCursor"].clone();
        }
        assert_eq!(seen, expected, "{direction} forwards");
        let mut seen = Vec::new();
        let mut before = Value::Null;
        loop {
            let page = app
                .data(
                    owner,
                    query,
                    json!({ "order": order, "last": 2, "before": before }),
                )
                .await;
            let mut got = names(&page);
            got.extend(seen);
            seen = got;
            let info = &page["contacts"]["pageInfo"];
            if info["hasPreviousPage"] != true {
                break;
            }
            before = info["startCursor"].clone();
        }
        assert_eq!(seen, expected, "{direction} backwards");
    }
    let first = app
        .data(
            owner,
            query,
            json!({ "order": { "field": "LAST_CONTACTED_AT", "direction": "DESC" }, "first": 1 }),
        )
        .await;
    assert_eq!(
        first["contacts"]["nodes"][0]["lastContactedAt"],
        "2026-03-01T10:00:00+00:00"
    );
    // A cursor of one direction is not a cursor of the other.
    let cursor = first["contacts"]["pageInfo"]["endCursor"].clone();
    let body = app
        .gql(
            owner,
            query,
            json!({ "order": { "field": "LAST_CONTACTED_AT", "direction": "ASC" }, "first": 1, "after": cursor }),
        )
        .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"]);
}

const CONSENT: &str =
    "mutation($input: SetContactConsentInput!) { setContactConsent(input: $input) {
  contact { consent { channel status at source } } userErrors { field message code } } }";

#[tokio::test]
async fn consent_is_recorded_per_channel_with_time_and_source() {
    let app = TestApp::spawn().await;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let contact = contact_id(
        &app,
        json!({ "displayName": "Carol", "phone": "+4511111111" }),
    )
    .await;
    let events = app.count("events").await;
    let sms = app
        .data(
            &agent,
            CONSENT,
            json!({ "input": { "contactId": contact, "channel": "SMS", "status": "OPTED_IN",
            "at": "2026-01-02T03:04:05Z", "source": "web form" } }),
        )
        .await;
    assert_eq!(
        sms["setContactConsent"],
        json!({ "contact": { "consent": [
            { "channel": "SMS", "status": "OPTED_IN", "at": "2026-01-02T03:04:05+00:00", "source": "web form" }
        ] }, "userErrors": [] })
    );
    app.data(
        &agent,
        CONSENT,
        json!({ "input": { "contactId": contact, "channel": "EMAIL", "status": "OPTED_IN",
        "at": "2026-01-01T00:00:00Z" } }),
    )
    .await;
    let stop = app
        .data(
            &agent,
            CONSENT,
            json!({ "input": { "contactId": contact, "channel": "SMS", "status": "OPTED_OUT",
            "at": "2026-02-01T00:00:00Z", "source": "keyword STOP" } }),
        )
        .await;
    assert_eq!(
        stop["setContactConsent"],
        json!({ "contact": { "consent": [
            { "channel": "EMAIL", "status": "OPTED_IN", "at": "2026-01-01T00:00:00+00:00", "source": null },
            { "channel": "SMS", "status": "OPTED_OUT", "at": "2026-02-01T00:00:00+00:00", "source": "keyword STOP" }
        ] }, "userErrors": [] })
    );
    assert_eq!(app.count("events").await, events + 3);
    assert_eq!(
        app.count("events WHERE event_type = 'CONTACT_CONSENT_CHANGED' AND CAST(payload AS TEXT) LIKE '%OPTED_OUT%'")
            .await,
        1
    );

    // Bad input: a time in the future, an overlong source, another org's contact.
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let events = app.count("events").await;
    let refused = app
        .data(
            &agent,
            CONSENT,
            json!({ "input": { "contactId": contact, "channel": "SMS", "status": "OPTED_IN",
            "at": "2999-01-01T00:00:00Z", "source": "x".repeat(201) } }),
        )
        .await;
    assert_eq!(
        refused["setContactConsent"],
        json!({ "contact": null, "userErrors": [
            { "field": ["input", "source"], "message": "source must be at most 200 characters", "code": "TOO_LONG" },
            { "field": ["input", "at"], "message": "at is in the future", "code": "INVALID" }
        ] })
    );
    let hidden = app
        .data(
            &other.token,
            CONSENT,
            json!({ "input": { "contactId": contact, "channel": "SMS", "status": "OPTED_IN" } }),
        )
        .await;
    assert_eq!(
        hidden["setContactConsent"],
        json!({ "contact": null, "userErrors": [
            { "field": ["input", "contactId"], "message": "no such contact", "code": "NOT_FOUND" }
        ] })
    );
    let unchanged = app
        .data(
            &agent,
            "query($id: ID!) { contact(id: $id) { consent { channel status } } }",
            json!({ "id": contact }),
        )
        .await;
    assert_eq!(
        unchanged["contact"]["consent"],
        json!([{ "channel": "EMAIL", "status": "OPTED_IN" }, { "channel": "SMS", "status": "OPTED_OUT" }])
    );
    assert_eq!(app.count("events").await, events);
}

#[tokio::test]
async fn tagging_and_attributes_refuse_other_orgs_ids_and_record_events() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let contact = contact_id(&app, json!({ "displayName": "Carol" })).await;
    let vip = new_tag(&app, "VIP").await;
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let theirs = app
        .data(
            &other.token,
            "mutation { createTag(input: { name: \"Theirs\" }) { tag { id } } }",
            json!({}),
        )
        .await["createTag"]["tag"]["id"]
        .clone();
    app.data(&other.token, "mutation { createCustomAttributeDefinition(input: { entity: CONTACT, identifier: \"plan\", label: \"Plan\", valueType: TEXT }) { userErrors { code } } }", json!({}))
        .await;
    let their_contact =
        create(&app, &other.token, json!({ "displayName": "Zed" })).await["contact"]["id"].clone();
    let apply = "mutation($c: [ID!]!, $t: [ID!]!) { tagContacts(input: { contactIds: $c, tagIds: $t }) { contacts { name } userErrors { field message code } } }";
    let remove = "mutation($c: [ID!]!, $t: [ID!]!) { untagContacts(input: { contactIds: $c, tagIds: $t }) { contacts { name } userErrors { field message code } } }";
    let set = "mutation($id: ID!, $values: [AttributeValueInput!]!) { setContactAttributes(input: { contactId: $id, values: $values }) {
        contact { name } userErrors { field message code } } }";
    let rows = (
        app.count("contact_tags").await,
        app.count("contact_attribute_values").await,
        app.count("events").await,
    );
    for (mutation, name) in [(apply, "tagContacts"), (remove, "untagContacts")] {
        let refused = app
            .data(
                owner,
                mutation,
                json!({ "c": [contact, their_contact], "t": [vip, theirs] }),
            )
            .await;
        assert_eq!(
            refused[name],
            json!({ "contacts": [], "userErrors": [
                { "field": ["input", "contactIds", "1"], "message": "no such contact", "code": "NOT_FOUND" },
                { "field": ["input", "tagIds", "1"], "message": "no such tag", "code": "NOT_FOUND" }
            ] }),
            "{name}"
        );
    }
    let refused = app
        .data(
            owner,
            set,
            json!({ "id": contact, "values": [{ "identifier": "plan", "value": "gold" }] }),
        )
        .await;
    assert_eq!(
        refused["setContactAttributes"],
        json!({ "contact": null, "userErrors": [
            { "field": ["input", "values", "0", "identifier"], "message": "no contact attribute \"plan\"", "code": "NOT_FOUND" }
        ] })
    );
    let refused = app
        .data(owner, set, json!({ "id": their_contact, "values": [] }))
        .await;
    assert_eq!(
        refused["setContactAttributes"]["userErrors"],
        json!([{ "field": ["input", "contactId"], "message": "no such contact", "code": "NOT_FOUND" }])
    );
    assert_eq!(
        (
            app.count("contact_tags").await,
            app.count("contact_attribute_values").await,
            app.count("events").await,
        ),
        rows
    );

    // Events: one per contact that changed, naming the tags really added or removed.
    let second = contact_id(&app, json!({ "displayName": "Dave" })).await;
    app.data(owner, apply, json!({ "c": [contact], "t": [vip] }))
        .await;
    app.data(owner, apply, json!({ "c": [contact, second], "t": [vip] }))
        .await;
    app.data(
        owner,
        remove,
        json!({ "c": [contact, second], "t": [vip, vip] }),
    )
    .await;
    app.data(owner, remove, json!({ "c": [contact], "t": [vip] }))
        .await;
    assert_eq!(
        app.count("events WHERE event_type = 'CONTACT_TAGGED'")
            .await,
        2
    );
    assert_eq!(
        app.count("events WHERE event_type = 'CONTACT_UNTAGGED'")
            .await,
        2
    );
    app.data(owner, "mutation { createCustomAttributeDefinition(input: { entity: CONTACT, identifier: \"plan\", label: \"Plan\", valueType: TEXT }) { userErrors { code } } }", json!({}))
        .await;
    let ok = app
        .data(
            owner,
            set,
            json!({ "id": contact, "values": [{ "identifier": "plan", "value": "gold" }] }),
        )
        .await;
    assert_eq!(ok["setContactAttributes"]["userErrors"], json!([]));
    assert_eq!(
        app.count("events WHERE event_type = 'CONTACT_ATTRIBUTES_SET' AND CAST(payload AS TEXT) LIKE '%plan%'")
            .await,
        1
    );
}
