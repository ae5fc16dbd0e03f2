//! Bulk contact mutations (create, update, upsert) and CSV import: per-item outcomes in order,
//! valid items committed beside refused ones, whole-call limits, upsert matching, events, tenancy.

use serde_json::{Value, json};

use crate::common::{TestApp, codes};

const OUTCOME: &str = "outcomes { index ok action node { id email phone externalId firstName lastName company } userErrors { field message code } } succeeded failed userErrors { field message code }";

fn create_q() -> String {
    format!(
        "mutation($input: CreateContactsInput!) {{ createContacts(input: $input) {{ {OUTCOME} }} }}"
    )
}

fn update_q() -> String {
    format!(
        "mutation($input: UpdateContactsInput!) {{ updateContacts(input: $input) {{ {OUTCOME} }} }}"
    )
}

fn upsert_q() -> String {
    format!(
        "mutation($input: UpsertContactsInput!) {{ upsertContacts(input: $input) {{ {OUTCOME} }} }}"
    )
}

fn import_q() -> String {
    format!(
        "mutation($input: ImportContactsInput!) {{ importContacts(input: $input) {{ {OUTCOME} }} }}"
    )
}

async fn create_contacts(app: &TestApp, token: &str, items: Value) -> Value {
    app.data(token, &create_q(), json!({ "input": { "items": items } }))
        .await["createContacts"]
        .clone()
}

async fn upsert_contacts(app: &TestApp, token: &str, items: Value) -> Value {
    app.data(token, &upsert_q(), json!({ "input": { "items": items } }))
        .await["upsertContacts"]
        .clone()
}

async fn import(app: &TestApp, input: Value) -> Value {
    app.data(&app.org.token, &import_q(), json!({ "input": input }))
        .await["importContacts"]
        .clone()
}

async fn contact_id(app: &TestApp, token: &str, input: Value) -> Value {
    let created = app
        .data(
            token,
            "mutation($input: ContactInput!) { createContact(input: $input) { contact { id } userErrors { code } } }",
            json!({ "input": input }),
        )
        .await;
    assert_eq!(created["createContact"]["userErrors"], json!([]));
    created["createContact"]["contact"]["id"].clone()
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

/// Defines a contact attribute; `input` gives identifier, valueType and any options.
async fn define(app: &TestApp, mut input: Value) {
    input["entity"] = json!("CONTACT");
    input["label"] = input["identifier"].clone();
    let data = app
        .data(
            &app.org.token,
            "mutation($input: CreateCustomAttributeDefinitionInput!) { createCustomAttributeDefinition(input: $input) { userErrors { code } } }",
            json!({ "input": input }),
        )
        .await;
    assert_eq!(
        data["createCustomAttributeDefinition"]["userErrors"],
        json!([])
    );
}

/// A successful outcome's node with only the given fields compared.
fn node(email: Option<&str>, phone: Option<&str>, external_id: Option<&str>) -> Value {
    json!({ "email": email, "phone": phone, "externalId": external_id })
}

fn trimmed(outcome: &Value) -> Value {
    let mut o = outcome.clone();
    if let Some(n) = o.get_mut("node").filter(|n| n.is_object()) {
        *n = json!({ "email": n["email"], "phone": n["phone"], "externalId": n["externalId"] });
    }
    o
}

fn outcomes(payload: &Value) -> Vec<Value> {
    payload["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .map(trimmed)
        .collect()
}

fn ok(index: usize, action: &str, node: Value) -> Value {
    json!({ "index": index, "ok": true, "action": action, "node": node, "userErrors": [] })
}

fn failed(index: usize, errors: Value) -> Value {
    json!({ "index": index, "ok": false, "action": null, "node": null, "userErrors": errors })
}

#[tokio::test]
async fn create_contacts_commits_valid_items_and_reports_each_failure_in_order() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    contact_id(
        &app,
        owner,
        json!({ "email": "old@example.com", "externalId": "crm-0" }),
    )
    .await;
    let contacts = app.count("contacts").await;
    let events = app.count("events").await;
    let result = create_contacts(
        &app,
        owner,
        json!([
            { "firstName": "Ann", "email": "Ann@Example.com", "externalId": "crm-1" },
            { "firstName": "Bad phone", "phone": "12ab" },
            { "firstName": "Bad email", "email": "not an email" },
            { "firstName": "Taken", "externalId": "crm-0" },
            { "firstName": "Twice", "externalId": "crm-1" },
            { "firstName": "Bob", "phone": "+4520123456" },
            { "email": "x@example", "additionalPhones": ["555"], "address": { "country": "Denmark" } }
        ]),
    )
    .await;
    assert_eq!(
        outcomes(&result),
        vec![
            ok(
                0,
                "CREATED",
                node(Some("ann@example.com"), None, Some("crm-1"))
            ),
            failed(
                1,
                json!([{ "field": ["input", "items", "1", "phone"], "message": "\"12ab\" is not an E.164 phone number such as +14155550100", "code": "INVALID" }])
            ),
            failed(
                2,
                json!([{ "field": ["input", "items", "2", "email"], "message": "\"not an email\" is not a valid email address", "code": "INVALID" }])
            ),
            failed(
                3,
                json!([{ "field": ["input", "items", "3", "externalId"], "message": "a contact with external id \"crm-0\" exists", "code": "TAKEN" }])
            ),
            failed(
                4,
                json!([{ "field": ["input", "items", "4", "externalId"], "message": "a contact with external id \"crm-1\" exists", "code": "TAKEN" }])
            ),
            ok(5, "CREATED", node(None, Some("+4520123456"), None)),
            failed(
                6,
                json!([
                    { "field": ["input", "items", "6", "email"], "message": "\"x@example\" is not a valid email address", "code": "INVALID" },
                    { "field": ["input", "items", "6", "additionalPhones", "0"], "message": "\"555\" is not an E.164 phone number such as +14155550100", "code": "INVALID" },
                    { "field": ["input", "items", "6", "address", "country"], "message": "\"Denmark\" is not a country code such as DK", "code": "INVALID" }
                ])
            ),
        ]
    );
    assert_eq!(
        (
            &result["succeeded"],
            &result["failed"],
            &result["userErrors"]
        ),
        (&json!(2), &json!(5), &json!([]))
    );
    // The valid items are committed; the refused ones wrote nothing (no contact, no event).
    assert_eq!(app.count("contacts").await, contacts + 2);
    assert_eq!(app.count("events").await, events + 2);
    assert_eq!(
        app.count("events WHERE event_type = 'CONTACT_CREATED'")
            .await,
        3
    );
    for name in ["Bad phone", "Bad email", "Taken", "Twice"] {
        let where_ = format!("contacts WHERE first_name = '{name}'");
        assert_eq!(app.count(&where_).await, 0, "{name}");
    }
    // The outcome's contact is the stored one.
    let id = result["outcomes"][0]["node"]["id"].clone();
    let stored = app
        .data(
            owner,
            "query($id: ID!) { contact(id: $id) { firstName email externalId } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        stored["contact"],
        json!({ "firstName": "Ann", "email": "ann@example.com", "externalId": "crm-1" })
    );
}

#[tokio::test]
async fn a_bulk_call_over_1000_items_is_refused_whole_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let contacts = app.count("contacts").await;
    let events = app.count("events").await;
    let items: Vec<Value> = (0..1001)
        .map(|i| json!({ "email": format!("p{i}@example.com") }))
        .collect();
    for (query, name) in [
        (create_q(), "createContacts"),
        (upsert_q(), "upsertContacts"),
    ] {
        let data = app
            .data(owner, &query, json!({ "input": { "items": items } }))
            .await;
        assert_eq!(
            data[name],
            json!({ "outcomes": [], "succeeded": 0, "failed": 0, "userErrors": [
                { "field": ["input", "items"], "message": "at most 1000 items per call; got 1001", "code": "TOO_LONG" }
            ] }),
            "{name}"
        );
    }
    let rows: String = std::iter::once("email".to_string())
        .chain((0..1001).map(|i| format!("p{i}@example.com")))
        .collect::<Vec<_>>()
        .join("\n");
    let imported = import(&app, json!({ "csv": rows })).await;
    assert_eq!(
        imported,
        json!({ "outcomes": [], "succeeded": 0, "failed": 0, "userErrors": [
            { "field": ["input", "csv"], "message": "at most 1000 data rows per import", "code": "TOO_LONG" }
        ] })
    );
    assert_eq!(app.count("contacts").await, contacts);
    assert_eq!(app.count("events").await, events);
}

#[tokio::test]
async fn exactly_1000_items_are_created_then_upserted_in_one_call_each() {
    // Body size, cost and rate limits are the defaults. The execution timeout is raised: this
    // checks results and statement counts, not time (debug builds on a shared 2-core machine
    // vary too much); the printed durations are for information.
    let app = TestApp::spawn_with(|c| c.execution_timeout_ms = 120_000).await;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    define(
        &app,
        json!({ "identifier": "score", "valueType": "NUMBER" }),
    )
    .await;
    let tag = new_tag(&app, "VIP").await;
    let items: Vec<Value> = (0..1000)
        .map(|i| json!({ "firstName": format!("P{i}"), "email": format!("p{i}@example.com"), "phone": format!("+4520{i:06}"), "externalId": format!("ext-{i}") }))
        .collect();
    let query = "mutation($input: CreateContactsInput!) { createContacts(input: $input) { outcomes { index ok action node { externalId } } succeeded failed userErrors { code } } }";
    let statements = app.statements();
    let started = std::time::Instant::now();
    let data = app
        .data(&agent, query, json!({ "input": { "items": items } }))
        .await;
    let statements = app.statements() - statements;
    eprintln!(
        "createContacts with 1000 items: {} ms, {statements} SQL statements",
        started.elapsed().as_millis()
    );
    let payload = &data["createContacts"];
    assert_eq!(
        (
            &payload["succeeded"],
            &payload["failed"],
            &payload["userErrors"]
        ),
        (&json!(1000), &json!(0), &json!([]))
    );
    let outcomes = payload["outcomes"].as_array().expect("outcomes");
    assert_eq!(outcomes.len(), 1000);
    for (i, outcome) in outcomes.iter().enumerate() {
        assert_eq!(
            outcome,
            &json!({ "index": i, "ok": true, "action": "CREATED", "node": { "externalId": format!("ext-{i}") } })
        );
    }
    assert_eq!(app.count("contacts").await, 1000);
    assert_eq!(
        app.count("events WHERE event_type = 'CONTACT_CREATED'")
            .await,
        1000
    );
    // A constant number of statements per item (external id check, insert, event; the counter
    // does not see savepoints), plus a few for the call.
    assert!(statements <= 3 * 1000 + 20, "{statements} statements");

    // Upserting them all again by external id updates each, with an attribute value and a tag.
    let items: Vec<Value> = (0..1000)
        .map(|i| json!({ "externalId": format!("ext-{i}"), "company": "Acme", "customAttributes": [{ "identifier": "score", "value": i }], "tagIds": [tag] }))
        .collect();
    let query = "mutation($input: UpsertContactsInput!) { upsertContacts(input: $input) { outcomes { action } succeeded failed userErrors { code } } }";
    let statements = app.statements();
    let started = std::time::Instant::now();
    let data = app
        .data(&agent, query, json!({ "input": { "items": items } }))
        .await;
    let statements = app.statements() - statements;
    eprintln!(
        "upsertContacts updating 1000 items with a value and a tag: {} ms, {statements} SQL statements",
        started.elapsed().as_millis()
    );
    let payload = &data["upsertContacts"];
    assert_eq!(
        (&payload["succeeded"], &payload["failed"]),
        (&json!(1000), &json!(0))
    );
    assert!(
        payload["outcomes"]
            .as_array()
            .expect("outcomes")
            .iter()
            .all(|o| o["action"] == "UPDATED")
    );
    assert_eq!(app.count("contacts").await, 1000);
    assert_eq!(app.count("contacts WHERE company = 'Acme'").await, 1000);
    assert_eq!(app.count("contact_attribute_values").await, 1000);
    assert_eq!(app.count("contact_tags").await, 1000);
    // Matching and the tags already applied take one query each for all items; each item
    // updates, sets its value, adds its tag and records three events.
    assert!(statements <= 6 * 1000 + 20, "{statements} statements");
}

#[tokio::test]
async fn update_contacts_patches_or_replaces_each_item_alone() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let ann = contact_id(
        &app,
        owner,
        json!({ "firstName": "Ann", "email": "ann@example.com", "company": "Acme" }),
    )
    .await;
    let bob = contact_id(
        &app,
        owner,
        json!({ "firstName": "Bob", "email": "bob@example.com", "externalId": "b-1" }),
    )
    .await;
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let theirs = contact_id(&app, &other.token, json!({ "firstName": "Theirs" })).await;
    let events = app.count("events").await;
    let items = json!([
        { "id": ann, "company": "Acme A/S", "phone": "+4520123456" },
        { "id": "not-an-id", "company": "x" },
        { "id": theirs, "company": "x" },
        { "id": bob, "email": "bad" },
        { "id": ann, "externalId": "b-1" },
        { "id": bob, "lastName": "Berg", "note": null }
    ]);
    let data = app
        .data(owner, &update_q(), json!({ "input": { "items": items } }))
        .await;
    let result = &data["updateContacts"];
    assert_eq!(
        outcomes(result),
        vec![
            ok(
                0,
                "UPDATED",
                node(Some("ann@example.com"), Some("+4520123456"), None)
            ),
            failed(
                1,
                json!([{ "field": ["input", "items", "1", "id"], "message": "\"not-an-id\" is not a valid id", "code": "INVALID" }])
            ),
            failed(
                2,
                json!([{ "field": ["input", "items", "2", "id"], "message": "no such contact", "code": "NOT_FOUND" }])
            ),
            failed(
                3,
                json!([{ "field": ["input", "items", "3", "email"], "message": "\"bad\" is not a valid email address", "code": "INVALID" }])
            ),
            failed(
                4,
                json!([{ "field": ["input", "items", "4", "externalId"], "message": "a contact with external id \"b-1\" exists", "code": "TAKEN" }])
            ),
            ok(
                5,
                "UPDATED",
                node(Some("bob@example.com"), None, Some("b-1"))
            ),
        ]
    );
    assert_eq!(result["outcomes"][0]["node"]["company"], "Acme A/S");
    assert_eq!(result["outcomes"][5]["node"]["lastName"], "Berg");
    assert_eq!(app.count("events").await, events + 2);
    assert_eq!(
        app.count("contacts WHERE first_name = 'Theirs' AND company IS NULL")
            .await,
        1
    );
    // With replace, omitted fields are cleared.
    let replaced = app
        .data(
            owner,
            &update_q(),
            json!({ "input": { "replace": true, "items": [{ "id": ann, "firstName": "Anne" }] } }),
        )
        .await;
    assert_eq!(
        replaced["updateContacts"]["outcomes"][0]["node"],
        json!({ "id": ann, "email": null, "phone": null, "externalId": null, "firstName": "Anne", "lastName": null, "company": null })
    );
}

#[tokio::test]
async fn upsert_matches_on_external_id_then_email_then_phone() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let c1 = contact_id(
        &app,
        owner,
        json!({ "externalId": "x-1", "email": "one@example.com" }),
    )
    .await;
    let c2 = contact_id(&app, owner, json!({ "email": "two@example.com" })).await;
    let c3 = contact_id(&app, owner, json!({ "phone": "+4511111111" })).await;
    contact_id(&app, owner, json!({ "email": "dup@example.com" })).await;
    contact_id(
        &app,
        owner,
        json!({ "email": "dup@example.com", "phone": "+4522222222" }),
    )
    .await;
    let contacts = app.count("contacts").await;
    let result = upsert_contacts(
        &app,
        owner,
        json!([
            { "externalId": "x-1", "company": "One" },
            { "email": "TWO@example.com", "firstName": "Two" },
            { "phone": "+4511111111", "lastName": "Three" },
            { "email": "dup@example.com", "company": "?" },
            { "externalId": "x-9", "email": "one@example.com" },
            { "firstName": "No key" },
            { "email": "new@example.com", "firstName": "New" },
            { "email": "new@example.com", "lastName": "Again" },
            { "phone": "+4522222222", "company": "By phone" },
            { "externalId": "x-1", "phone": "12ab" }
        ]),
    )
    .await;
    assert_eq!(
        outcomes(&result),
        vec![
            ok(
                0,
                "UPDATED",
                node(Some("one@example.com"), None, Some("x-1"))
            ),
            ok(1, "UPDATED", node(Some("two@example.com"), None, None)),
            ok(2, "UPDATED", node(None, Some("+4511111111"), None)),
            failed(
                3,
                json!([{ "field": ["input", "items", "3", "email"], "message": "2 contacts have email \"dup@example.com\"; give an externalId, or update one by id", "code": "AMBIGUOUS" }])
            ),
            ok(
                4,
                "CREATED",
                node(Some("one@example.com"), None, Some("x-9"))
            ),
            failed(
                5,
                json!([{ "field": ["input", "items", "5"], "message": "an upsert item needs externalId, email or phone to match on", "code": "REQUIRED" }])
            ),
            ok(6, "CREATED", node(Some("new@example.com"), None, None)),
            ok(7, "UPDATED", node(Some("new@example.com"), None, None)),
            ok(
                8,
                "UPDATED",
                node(Some("dup@example.com"), Some("+4522222222"), None)
            ),
            failed(
                9,
                json!([{ "field": ["input", "items", "9", "phone"], "message": "\"12ab\" is not an E.164 phone number such as +14155550100", "code": "INVALID" }])
            ),
        ]
    );
    let o = &result["outcomes"];
    assert_eq!(o[0]["node"]["id"], c1);
    assert_eq!(o[0]["node"]["company"], "One");
    assert_eq!(o[1]["node"]["id"], c2);
    assert_eq!(o[1]["node"]["firstName"], "Two");
    assert_eq!(o[2]["node"]["id"], c3);
    // A later item sees the contact an earlier item created, and patches it.
    assert_eq!(o[7]["node"]["id"], o[6]["node"]["id"]);
    assert_eq!(o[7]["node"]["firstName"], "New");
    assert_eq!(o[7]["node"]["lastName"], "Again");
    assert_eq!(
        (&result["succeeded"], &result["failed"]),
        (&json!(7), &json!(3))
    );
    assert_eq!(app.count("contacts").await, contacts + 2);
    assert_eq!(
        app.count("events WHERE event_type = 'CONTACT_UPDATED'")
            .await,
        5
    );
}

#[tokio::test]
async fn upsert_and_update_never_reach_another_organizations_contacts() {
    let app = TestApp::spawn().await;
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    contact_id(
        &app,
        &other.token,
        json!({ "externalId": "shared", "email": "shared@example.com", "phone": "+4533333333", "company": "Globex" }),
    )
    .await;
    let result = upsert_contacts(
        &app,
        &app.org.token,
        json!([
            { "externalId": "shared", "company": "Acme" },
            { "email": "shared@example.com", "company": "Acme" },
            { "phone": "+4533333333", "company": "Acme" }
        ]),
    )
    .await;
    let actions: Vec<&Value> = result["outcomes"]
        .as_array()
        .expect("outcomes")
        .iter()
        .map(|o| &o["action"])
        .collect();
    assert_eq!(
        actions,
        [&json!("CREATED"), &json!("CREATED"), &json!("CREATED")]
    );
    assert_eq!(app.count("contacts WHERE company = 'Globex'").await, 1);
    assert_eq!(app.count("contacts WHERE company = 'Acme'").await, 3);
    let theirs = app
        .data(
            &other.token,
            "{ contacts { nodes { company } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        theirs["contacts"]["nodes"],
        json!([{ "company": "Globex" }])
    );
}

#[tokio::test]
async fn bulk_items_set_attribute_values_and_tags_with_per_item_errors() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    define(
        &app,
        json!({ "identifier": "score", "valueType": "NUMBER" }),
    )
    .await;
    define(&app, json!({ "identifier": "plan", "valueType": "TEXT" })).await;
    let vip = new_tag(&app, "VIP").await;
    let old = new_tag(&app, "Old").await;
    app.data(
        owner,
        "mutation($id: ID!) { deactivateTag(input: { id: $id }) { userErrors { code } } }",
        json!({ "id": old }),
    )
    .await;
    let events = app.count("events").await;
    let query = "mutation($input: CreateContactsInput!) { createContacts(input: $input) {
        outcomes { ok node { firstName tags { name } customAttributes { identifier value } } userErrors { field message code } } } }";
    let items = json!([
        { "firstName": "A", "customAttributes": [{ "identifier": "score", "value": 7 }, { "identifier": "plan", "value": "pro" }], "tagIds": [vip] },
        { "firstName": "B", "customAttributes": [{ "identifier": "score", "value": "high" }, { "identifier": "color", "value": "red" }] },
        { "firstName": "C", "tagIds": [vip, old, "bogus"] }
    ]);
    let data = app
        .data(owner, query, json!({ "input": { "items": items } }))
        .await;
    assert_eq!(
        data["createContacts"]["outcomes"],
        json!([
            { "ok": true, "node": { "firstName": "A", "tags": [{ "name": "VIP" }],
              "customAttributes": [{ "identifier": "plan", "value": "pro" }, { "identifier": "score", "value": 7.0 }] }, "userErrors": [] },
            { "ok": false, "node": null, "userErrors": [
                { "field": ["input", "items", "1", "customAttributes", "0", "value"], "message": "score expects a NUMBER value, got a string", "code": "INVALID" },
                { "field": ["input", "items", "1", "customAttributes", "1", "identifier"], "message": "no contact attribute \"color\"", "code": "NOT_FOUND" }
            ] },
            { "ok": false, "node": null, "userErrors": [
                { "field": ["input", "items", "2", "tagIds", "2"], "message": "\"bogus\" is not a valid id", "code": "INVALID" },
                { "field": ["input", "items", "2", "tagIds", "1"], "message": "tag \"Old\" is inactive and cannot be applied", "code": "INVALID_STATE" }
            ] }
        ])
    );
    // The valid item wrote its contact, values and tag, each with its event; the others nothing.
    assert_eq!(app.count("contacts").await, 1);
    assert_eq!(app.count("contact_attribute_values").await, 2);
    assert_eq!(app.count("contact_tags").await, 1);
    assert_eq!(app.count("events").await, events + 3);
    for event in [
        "CONTACT_CREATED",
        "CONTACT_ATTRIBUTES_SET",
        "CONTACT_TAGGED",
    ] {
        let where_ = format!("events WHERE event_type = '{event}'");
        assert_eq!(app.count(&where_).await, 1, "{event}");
    }
    // An inactive tag is refused on its item.
    let data = app
        .data(
            owner,
            query,
            json!({ "input": { "items": [{ "firstName": "D", "tagIds": [vip, old] }] } }),
        )
        .await;
    assert_eq!(
        data["createContacts"]["outcomes"][0]["userErrors"],
        json!([{ "field": ["input", "items", "0", "tagIds", "1"], "message": "tag \"Old\" is inactive and cannot be applied", "code": "INVALID_STATE" }])
    );
    assert_eq!(app.count("contacts").await, 1);
}

#[tokio::test]
async fn csv_import_fills_fields_attributes_of_each_type_and_tags() {
    let app = TestApp::spawn().await;
    define(
        &app,
        json!({ "identifier": "score", "valueType": "NUMBER" }),
    )
    .await;
    define(&app, json!({ "identifier": "vip", "valueType": "BOOLEAN" })).await;
    define(&app, json!({ "identifier": "since", "valueType": "DATE" })).await;
    define(&app, json!({ "identifier": "plan", "valueType": "TEXT" })).await;
    define(
        &app,
        json!({ "identifier": "tier", "valueType": "SELECT", "options": [{ "value": "gold", "label": "Gold" }, { "value": "silver", "label": "Silver" }] }),
    )
    .await;
    new_tag(&app, "VIP").await;
    new_tag(&app, "Newsletter").await;
    let csv = "\u{feff}First Name,last_name,E-mail,Phone,externalId,Company Name,Note,City,Country,tags,score,attributes.vip,since,plan,tier\r\n\
Ann,Larsen,ANN@example.com,+4520123456,crm-1,\"Larsen, Sons & Co\",\"line one\nline two, with comma\",Aarhus,DK,VIP;newsletter,12.5,yes,2024-02-29,\"said \"\"hi\"\"\",Gold\r\n\
\r\n\
Bob,,bob@example.com,12ab,crm-2,,,,,,lots,maybe,2024-02-30,,bronze\r\n\
Cid,,,,,,,,,Unknown,,,,,\r\n\
,,,,,,,,,,,,,,\r\n\
Dee,,dee@example.com,,,,,,,,0,0,,,silver\r\n";
    let contacts = app.count("contacts").await;
    let result = import(&app, json!({ "csv": csv })).await;
    assert_eq!(
        outcomes(&result),
        vec![
            ok(
                0,
                "CREATED",
                node(Some("ann@example.com"), Some("+4520123456"), Some("crm-1"))
            ),
            failed(
                1,
                json!([
                    { "field": ["input", "csv", "1", "score"], "message": "\"lots\" is not a number such as 12.5", "code": "INVALID" },
                    { "field": ["input", "csv", "1", "attributes.vip"], "message": "\"maybe\" is not a boolean (true or false)", "code": "INVALID" },
                    { "field": ["input", "csv", "1", "Phone"], "message": "\"12ab\" is not an E.164 phone number such as +14155550100", "code": "INVALID" },
                    { "field": ["input", "csv", "1", "since"], "message": "\"2024-02-30\" is not a date such as 2026-11-23", "code": "INVALID" },
                    { "field": ["input", "csv", "1", "tier"], "message": "\"bronze\" is not an option of tier", "code": "INVALID" }
                ])
            ),
            failed(
                2,
                json!([{ "field": ["input", "csv", "2", "tags"], "message": "no tag named \"Unknown\"", "code": "NOT_FOUND" }])
            ),
            failed(
                3,
                json!([{ "field": ["input", "csv", "3"], "message": "the row is empty", "code": "REQUIRED" }])
            ),
            ok(4, "CREATED", node(Some("dee@example.com"), None, None)),
        ]
    );
    assert_eq!(app.count("contacts").await, contacts + 2);
    let ann = result["outcomes"][0]["node"]["id"].clone();
    let stored = app
        .data(
            &app.org.token,
            "query($id: ID!) { contact(id: $id) { firstName lastName company note address { city country } tags { name } customAttributes { identifier value } } }",
            json!({ "id": ann }),
        )
        .await;
    assert_eq!(
        stored["contact"],
        json!({ "firstName": "Ann", "lastName": "Larsen", "company": "Larsen, Sons & Co",
            "note": "line one\nline two, with comma", "address": { "city": "Aarhus", "country": "DK" },
            "tags": [{ "name": "VIP" }, { "name": "Newsletter" }],
            "customAttributes": [
                { "identifier": "plan", "value": "said \"hi\"" },
                { "identifier": "score", "value": 12.5 },
                { "identifier": "since", "value": "2024-02-29" },
                { "identifier": "tier", "value": "gold" },
                { "identifier": "vip", "value": true }
            ] })
    );
    let dee = result["outcomes"][4]["node"]["id"].clone();
    let stored = app
        .data(
            &app.org.token,
            "query($id: ID!) { contact(id: $id) { customAttributes { identifier value } } }",
            json!({ "id": dee }),
        )
        .await;
    assert_eq!(
        stored["contact"]["customAttributes"],
        json!([
            { "identifier": "score", "value": 0.0 },
            { "identifier": "tier", "value": "silver" },
            { "identifier": "vip", "value": false }
        ])
    );
    // Errors the value checks find land on their columns too.
    let result = import(
        &app,
        json!({ "csv": "email,phone,since,tier\nerin@example.com,12ab,2024-02-30,bronze\n" }),
    )
    .await;
    assert_eq!(
        outcomes(&result),
        vec![failed(
            0,
            json!([
                { "field": ["input", "csv", "0", "phone"], "message": "\"12ab\" is not an E.164 phone number such as +14155550100", "code": "INVALID" },
                { "field": ["input", "csv", "0", "since"], "message": "\"2024-02-30\" is not a date such as 2026-11-23", "code": "INVALID" },
                { "field": ["input", "csv", "0", "tier"], "message": "\"bronze\" is not an option of tier", "code": "INVALID" }
            ])
        )]
    );
}

#[tokio::test]
async fn csv_import_upserts_with_mapping_delimiter_and_tags() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let tag = new_tag(&app, "Imported").await;
    let existing = contact_id(
        &app,
        owner,
        json!({ "email": "ann@example.com", "firstName": "Ann", "company": "Old" }),
    )
    .await;
    let csv = "Mail;Firma;Ignore me\nann@example.com;New;x\nbob@example.com;;y\n";
    let result = import(
        &app,
        json!({ "csv": csv, "upsert": true, "delimiter": ";", "tagIds": [tag],
                "mapping": [{ "column": "Mail", "field": "email" }, { "column": "Firma", "field": "company" }, { "column": "Ignore me", "field": null }] }),
    )
    .await;
    assert_eq!(
        outcomes(&result),
        vec![
            ok(0, "UPDATED", node(Some("ann@example.com"), None, None)),
            ok(1, "CREATED", node(Some("bob@example.com"), None, None)),
        ]
    );
    let ann = &result["outcomes"][0]["node"];
    assert_eq!(
        (&ann["id"], &ann["firstName"], &ann["company"]),
        (&existing, &json!("Ann"), &json!("New"))
    );
    assert_eq!(app.count("contact_tags").await, 2);
    assert_eq!(
        app.count("events WHERE event_type = 'CONTACT_TAGGED'")
            .await,
        2
    );
}

#[tokio::test]
async fn a_bad_csv_is_refused_whole_and_writes_nothing() {
    let app = TestApp::spawn().await;
    define(
        &app,
        json!({ "identifier": "score", "valueType": "NUMBER" }),
    )
    .await;
    let contacts = app.count("contacts").await;
    let events = app.count("events").await;
    let cases = [
        (
            json!({ "csv": "email,Shoe Size,score\na@example.com,42,1\n" }),
            json!([{ "field": ["input", "csv"], "message": "unknown column \"Shoe Size\": not a contact field, `tags` or a contact attribute; map it with `mapping`, or ignore it with a null field", "code": "INVALID" }]),
        ),
        (
            json!({ "csv": "email,firstName\na@example.com,Ann\nb@example.com\n" }),
            json!([{ "field": ["input", "csv"], "message": "the CSV is malformed: line 3 has 1 fields; the header has 2", "code": "INVALID" }]),
        ),
        (
            json!({ "csv": "" }),
            json!([{ "field": ["input", "csv"], "message": "the CSV is empty: its first row must name the columns", "code": "REQUIRED" }]),
        ),
        (
            json!({ "csv": "email,E-Mail\na@example.com,b@example.com\n" }),
            json!([{ "field": ["input", "csv"], "message": "columns \"email\" and \"E-Mail\" both fill email", "code": "INVALID" }]),
        ),
        (
            json!({ "csv": "email\na@example.com\n", "mapping": [{ "column": "Mail", "field": "email" }, { "column": "email", "field": "shoe" }] }),
            json!([
                { "field": ["input", "mapping", "0", "column"], "message": "the CSV has no column \"Mail\"", "code": "NOT_FOUND" },
                { "field": ["input", "mapping", "1", "field"], "message": "\"shoe\" is not a contact field, `tags` or `attributes.<identifier>` of a contact attribute", "code": "INVALID" }
            ]),
        ),
        (
            json!({ "csv": "email\na@example.com\n", "delimiter": "::" }),
            json!([{ "field": ["input", "delimiter"], "message": "\"::\" is not a delimiter: give one character such as , or ;", "code": "INVALID" }]),
        ),
    ];
    for (input, errors) in cases {
        let result = import(&app, input.clone()).await;
        assert_eq!(
            result,
            json!({ "outcomes": [], "succeeded": 0, "failed": 0, "userErrors": errors }),
            "{input}"
        );
    }
    assert_eq!(app.count("contacts").await, contacts);
    assert_eq!(app.count("events").await, events);
}

#[tokio::test]
async fn agents_may_bulk_write_and_anonymous_callers_may_not() {
    let app = TestApp::spawn().await;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let created = create_contacts(&app, &agent, json!([{ "email": "a@example.com" }])).await;
    assert_eq!(created["succeeded"], 1);
    let upserted = upsert_contacts(
        &app,
        &agent,
        json!([{ "email": "a@example.com", "firstName": "A" }]),
    )
    .await;
    assert_eq!(upserted["outcomes"][0]["action"], "UPDATED");
    let imported = app
        .data(
            &agent,
            &import_q(),
            json!({ "input": { "csv": "email\nb@example.com\n" } }),
        )
        .await;
    assert_eq!(imported["importContacts"]["succeeded"], 1);
    let contacts = app.count("contacts").await;
    let (_, _, body) = app
        .post(
            None,
            json!({ "query": create_q(), "variables": { "input": { "items": [{ "email": "c@example.com" }] } } }),
        )
        .await;
    assert_eq!(codes(&body), ["UNAUTHENTICATED"]);
    assert_eq!(app.count("contacts").await, contacts);
}
