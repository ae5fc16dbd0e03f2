//! Contact groups: static members, rules over contact fields and custom attributes (every
//! operator, all-of), counts and connections computed in SQL, the contacts list's group filter,
//! a contact's groups, anonymized contacts, events, roles, tenancy, bad input, and statement
//! counts.

use serde_json::{Value, json};

use crate::common::{TestApp, codes};

const CREATE: &str =
    "mutation($input: CreateContactGroupInput!) { createContactGroup(input: $input) {
  contactGroup { id name description rules { field operator value } contactCount }
  userErrors { field message code } } }";
const UPDATE: &str =
    "mutation($input: UpdateContactGroupInput!) { updateContactGroup(input: $input) {
  contactGroup { id name description rules { field operator value } contactCount }
  userErrors { field message code } } }";
const ADD: &str = "mutation($g: ID!, $c: [ID!]!) { addContactGroupMembers(input: { groupId: $g, contactIds: $c }) {
  contactGroup { contactCount } userErrors { field message code } } }";
const REMOVE: &str = "mutation($g: ID!, $c: [ID!]!) { removeContactGroupMembers(input: { groupId: $g, contactIds: $c }) {
  contactGroup { contactCount } userErrors { field message code } } }";
const DELETE: &str = "mutation($id: ID!) { deleteContactGroup(input: { id: $id }) {
  deletedContactGroupId userErrors { field message code } } }";
const MEMBERS: &str = "query($id: ID!) {
  contactGroup(id: $id) { contactCount contacts(first: 100) { totalCount nodes { id name } } }
  contacts(filter: { groupId: $id }, first: 100) { totalCount nodes { id name } } }";

async fn create_group(app: &TestApp, token: &str, input: Value) -> Value {
    app.data(token, CREATE, json!({ "input": input })).await["createContactGroup"].clone()
}

async fn group_id(app: &TestApp, input: Value) -> Value {
    let created = create_group(app, &app.org.token, input).await;
    assert_eq!(created["userErrors"], json!([]), "{created}");
    created["contactGroup"]["id"].clone()
}

async fn contact(app: &TestApp, input: Value) -> Value {
    let created = app
        .data(
            &app.org.token,
            "mutation($input: ContactInput!) { createContact(input: $input) { contact { id } userErrors { message } } }",
            json!({ "input": input }),
        )
        .await;
    assert_eq!(
        created["createContact"]["userErrors"],
        json!([]),
        "{created}"
    );
    created["createContact"]["contact"]["id"].clone()
}

async fn define(app: &TestApp, input: Value) {
    let data = app
        .data(
            &app.org.token,
            "mutation($input: CreateCustomAttributeDefinitionInput!) { createCustomAttributeDefinition(input: $input) { userErrors { message } } }",
            json!({ "input": input }),
        )
        .await;
    assert_eq!(
        data["createCustomAttributeDefinition"]["userErrors"],
        json!([])
    );
}

async fn set_attributes(app: &TestApp, id: &Value, values: Value) {
    let data = app
        .data(
            &app.org.token,
            "mutation($id: ID!, $values: [AttributeValueInput!]!) { setContactAttributes(input: { contactId: $id, values: $values }) { userErrors { message } } }",
            json!({ "id": id, "values": values }),
        )
        .await;
    assert_eq!(data["setContactAttributes"]["userErrors"], json!([]));
}

fn names(nodes: &Value) -> Vec<String> {
    nodes
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| n["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The members of a group, checked three ways that must agree: the group's `contacts`
/// connection, its `contactCount`, and the contacts list filtered by the group.
async fn members(app: &TestApp, token: &str, group: &Value) -> Vec<String> {
    let data = app.data(token, MEMBERS, json!({ "id": group })).await;
    let via_group = &data["contactGroup"];
    let from_group = names(&via_group["contacts"]["nodes"]);
    assert_eq!(via_group["contactCount"], from_group.len(), "{data}");
    assert_eq!(
        via_group["contacts"]["totalCount"],
        from_group.len(),
        "{data}"
    );
    assert_eq!(
        data["contacts"]["nodes"], via_group["contacts"]["nodes"],
        "the groupId filter lists the same contacts"
    );
    assert_eq!(data["contacts"]["totalCount"], from_group.len(), "{data}");
    from_group
}

/// Records when the organization last talked with a contact, the way conversations will.
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

/// Four contacts with varied fields and attribute values: Ann Larsen, Bob, Cid, Dan Holm.
async fn people(app: &TestApp) -> [Value; 4] {
    define(app, json!({ "entity": "CONTACT", "identifier": "score", "label": "Score", "valueType": "NUMBER" })).await;
    define(app, json!({ "entity": "CONTACT", "identifier": "since", "label": "Since", "valueType": "DATE" })).await;
    define(
        app,
        json!({ "entity": "CONTACT", "identifier": "plan", "label": "Plan", "valueType": "TEXT" }),
    )
    .await;
    define(
        app,
        json!({ "entity": "CONTACT", "identifier": "vip", "label": "VIP", "valueType": "BOOLEAN" }),
    )
    .await;
    define(app, json!({ "entity": "CONTACT", "identifier": "tier", "label": "Tier", "valueType": "SELECT",
        "options": [{ "value": "gold", "label": "Gold" }, { "value": "silver", "label": "Silver" }] }))
    .await;
    let ann = contact(
        app,
        json!({ "firstName": "Ann", "lastName": "Larsen", "email": "ann@example.com",
            "additionalEmails": ["ann@work.example"], "phone": "+4520123456", "company": "Larsen ApS",
            "address": { "city": "Aarhus", "postalCode": "8000", "country": "DK" }, "birthDate": "1990-05-17" }),
    )
    .await;
    let bob = contact(
        app,
        json!({ "firstName": "Bob", "email": "bob@example.com", "phone": "+4530000000",
            "additionalPhones": ["+4520999999"], "company": "Acme",
            "address": { "city": "Odense", "postalCode": "5000" }, "birthDate": "1985-01-01" }),
    )
    .await;
    let cid = contact(
        app,
        json!({ "displayName": "Cid", "email": "cid@other.test", "company": "Globex" }),
    )
    .await;
    let dan = contact(app, json!({ "firstName": "Dan", "lastName": "Holm" })).await;
    set_attributes(
        app,
        &ann,
        json!([{ "identifier": "score", "value": 7 }, { "identifier": "since", "value": "2024-02-29" },
            { "identifier": "plan", "value": "gold plan" }, { "identifier": "vip", "value": true },
            { "identifier": "tier", "value": "gold" }]),
    )
    .await;
    set_attributes(
        app,
        &bob,
        json!([{ "identifier": "score", "value": 3 }, { "identifier": "since", "value": "2023-06-01" },
            { "identifier": "vip", "value": false }, { "identifier": "tier", "value": "silver" }]),
    )
    .await;
    set_attributes(
        app,
        &cid,
        json!([{ "identifier": "score", "value": 12.5 }, { "identifier": "plan", "value": "basic" }]),
    )
    .await;
    contacted(app, &ann, "2026-03-01T10:00:00Z").await;
    contacted(app, &bob, "2026-01-01T10:00:00Z").await;
    [ann, bob, cid, dan]
}

fn rule(field: &str, operator: &str, value: Value) -> Value {
    json!({ "field": field, "operator": operator, "value": value })
}

#[tokio::test]
async fn every_operator_matches_contact_fields_and_attributes_in_sql() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let [ann, _, cid, _] = people(&app).await;
    let created_at = |id: Value| {
        let app = &app;
        async move {
            app.data(
                &app.org.token,
                "query($id: ID!) { contact(id: $id) { createdAt } }",
                json!({ "id": id }),
            )
            .await["contact"]["createdAt"]
                .clone()
        }
    };
    let cid_created = created_at(cid.clone()).await;
    let group = group_id(&app, json!({ "name": "Segment" })).await;
    assert_eq!(members(&app, owner, &group).await, Vec::<String>::new());

    const ANN: &str = "Ann Larsen";
    const BOB: &str = "Bob";
    const CID: &str = "Cid";
    const DAN: &str = "Dan Holm";
    let cases: Vec<(Vec<Value>, Vec<&str>)> = vec![
        // Text columns.
        (vec![rule("firstName", "EQ", json!("Ann"))], vec![ANN]),
        (vec![rule("firstName", "EQ", json!("ann"))], vec![]),
        (
            vec![rule("firstName", "NE", json!("Ann"))],
            vec![BOB, CID, DAN],
        ),
        (
            vec![rule("firstName", "IN", json!(["Bob", "Dan"]))],
            vec![BOB, DAN],
        ),
        (
            vec![rule("firstName", "CONTAINS", json!("AN"))],
            vec![ANN, DAN],
        ),
        (
            vec![rule("lastName", "NE", json!("Larsen"))],
            vec![BOB, CID, DAN],
        ),
        (vec![rule("displayName", "EQ", json!("Cid"))], vec![CID]),
        (vec![rule("name", "EQ", json!("DAN HOLM"))], vec![DAN]),
        (vec![rule("name", "CONTAINS", json!("i"))], vec![CID]),
        (vec![rule("company", "CONTAINS", json!("aps"))], vec![ANN]),
        (
            vec![rule("company", "IN", json!(["Acme", "Globex"]))],
            vec![BOB, CID],
        ),
        (
            vec![rule("company", "NE", json!("Acme"))],
            vec![ANN, CID, DAN],
        ),
        (
            vec![rule("email", "EQ", json!("BOB@Example.com"))],
            vec![BOB],
        ),
        (
            vec![rule("email", "CONTAINS", json!("example"))],
            vec![ANN, BOB],
        ),
        (vec![rule("phone", "EQ", json!("+4520999999"))], vec![]),
        // LIKE wildcards in CONTAINS are plain characters.
        (vec![rule("company", "CONTAINS", json!("%"))], vec![]),
        (vec![rule("emails", "CONTAINS", json!("_"))], vec![]),
        // Text lists: the primary value and the additional ones.
        (
            vec![rule("emails", "EQ", json!("ann@work.example"))],
            vec![ANN],
        ),
        (
            vec![rule("emails", "EQ", json!("ANN@example.com"))],
            vec![ANN],
        ),
        (vec![rule("emails", "CONTAINS", json!("WORK"))], vec![ANN]),
        (
            vec![rule(
                "emails",
                "IN",
                json!(["cid@other.test", "ann@work.example"]),
            )],
            vec![ANN, CID],
        ),
        (
            vec![rule("emails", "NE", json!("ann@work.example"))],
            vec![BOB, CID, DAN],
        ),
        (vec![rule("phones", "EQ", json!("+4520999999"))], vec![BOB]),
        (
            vec![rule("phones", "CONTAINS", json!("4520"))],
            vec![ANN, BOB],
        ),
        // Address parts (a JSON object in the row).
        (vec![rule("address.city", "EQ", json!("Aarhus"))], vec![ANN]),
        (
            vec![rule("address.city", "IN", json!(["Aarhus", "Odense"]))],
            vec![ANN, BOB],
        ),
        (
            vec![rule("address.city", "NE", json!("Aarhus"))],
            vec![BOB, CID, DAN],
        ),
        (
            vec![rule("address.postalCode", "CONTAINS", json!("000"))],
            vec![ANN, BOB],
        ),
        (vec![rule("address.country", "EQ", json!("DK"))], vec![ANN]),
        // Dates.
        (
            vec![rule("birthDate", "GT", json!("1986-01-01"))],
            vec![ANN],
        ),
        (
            vec![rule("birthDate", "GTE", json!("1990-05-17"))],
            vec![ANN],
        ),
        (
            vec![rule("birthDate", "LT", json!("1990-05-17"))],
            vec![BOB],
        ),
        (
            vec![rule("birthDate", "LTE", json!("1990-05-17"))],
            vec![ANN, BOB],
        ),
        (
            vec![rule("birthDate", "EQ", json!("1985-01-01"))],
            vec![BOB],
        ),
        (
            vec![rule("birthDate", "NE", json!("1985-01-01"))],
            vec![ANN, CID, DAN],
        ),
        (
            vec![rule("birthDate", "IN", json!(["1985-01-01", "2000-01-01"]))],
            vec![BOB],
        ),
        // Timestamps, in any offset.
        (
            vec![rule("createdAt", "GTE", cid_created.clone())],
            vec![CID, DAN],
        ),
        (
            vec![rule("createdAt", "LT", cid_created.clone())],
            vec![ANN, BOB],
        ),
        (
            vec![rule("lastContactedAt", "GT", json!("2026-02-01T00:00:00Z"))],
            vec![ANN],
        ),
        (
            vec![rule(
                "lastContactedAt",
                "LTE",
                json!("2026-01-01T11:00:00+01:00"),
            )],
            vec![BOB],
        ),
        (
            vec![rule(
                "lastContactedAt",
                "LT",
                json!("2026-01-01T10:59:59+01:00"),
            )],
            vec![],
        ),
        (
            vec![rule("updatedAt", "GT", json!("2000-01-01T00:00:00Z"))],
            vec![ANN, BOB, CID, DAN],
        ),
        // NUMBER attribute.
        (
            vec![rule("attributes.score", "GT", json!(5))],
            vec![ANN, CID],
        ),
        (
            vec![rule("attributes.score", "GTE", json!(7))],
            vec![ANN, CID],
        ),
        (vec![rule("attributes.score", "LT", json!(7))], vec![BOB]),
        (
            vec![rule("attributes.score", "LTE", json!(7.0))],
            vec![ANN, BOB],
        ),
        (vec![rule("attributes.score", "EQ", json!(12.5))], vec![CID]),
        (
            vec![rule("attributes.score", "NE", json!(7))],
            vec![BOB, CID, DAN],
        ),
        (
            vec![rule("attributes.score", "IN", json!([3, 12.5]))],
            vec![BOB, CID],
        ),
        // DATE attribute.
        (
            vec![rule("attributes.since", "GT", json!("2024-01-01"))],
            vec![ANN],
        ),
        (
            vec![rule("attributes.since", "LTE", json!("2024-01-01"))],
            vec![BOB],
        ),
        (
            vec![rule("attributes.since", "GTE", json!("2023-06-01"))],
            vec![ANN, BOB],
        ),
        (
            vec![rule("attributes.since", "LT", json!("2023-06-01"))],
            vec![],
        ),
        (
            vec![rule("attributes.since", "EQ", json!("2024-02-29"))],
            vec![ANN],
        ),
        (
            vec![rule(
                "attributes.since",
                "IN",
                json!(["2023-06-01", "2024-02-29"]),
            )],
            vec![ANN, BOB],
        ),
        // TEXT, BOOLEAN and SELECT attributes.
        (
            vec![rule("attributes.plan", "CONTAINS", json!("PLAN"))],
            vec![ANN],
        ),
        (
            vec![rule("attributes.plan", "EQ", json!("basic"))],
            vec![CID],
        ),
        (
            vec![rule("attributes.plan", "IN", json!(["basic", "gold plan"]))],
            vec![ANN, CID],
        ),
        (
            vec![rule("attributes.plan", "NE", json!("basic"))],
            vec![ANN, BOB, DAN],
        ),
        (vec![rule("attributes.vip", "EQ", json!(true))], vec![ANN]),
        (vec![rule("attributes.vip", "EQ", json!(false))], vec![BOB]),
        (
            vec![rule("attributes.vip", "NE", json!(true))],
            vec![BOB, CID, DAN],
        ),
        (
            vec![rule("attributes.tier", "EQ", json!("gold"))],
            vec![ANN],
        ),
        (
            vec![rule("attributes.tier", "IN", json!(["gold", "silver"]))],
            vec![ANN, BOB],
        ),
        (
            vec![rule("attributes.tier", "CONTAINS", json!("ILV"))],
            vec![BOB],
        ),
        // All of the rules must hold.
        (
            vec![
                rule("company", "NE", json!("Acme")),
                rule("attributes.score", "GT", json!(5)),
            ],
            vec![ANN, CID],
        ),
        (
            vec![
                rule("company", "NE", json!("Acme")),
                rule("attributes.score", "GT", json!(5)),
                rule("emails", "CONTAINS", json!("example.com")),
            ],
            vec![ANN],
        ),
        (
            vec![
                rule("firstName", "EQ", json!("Ann")),
                rule("firstName", "EQ", json!("Bob")),
            ],
            vec![],
        ),
    ];
    for (rules, expected) in cases {
        let updated = app
            .data(
                owner,
                UPDATE,
                json!({ "input": { "id": group, "rules": rules } }),
            )
            .await;
        assert_eq!(
            updated["updateContactGroup"]["userErrors"],
            json!([]),
            "{rules:?}"
        );
        assert_eq!(
            updated["updateContactGroup"]["contactGroup"]["contactCount"],
            expected.len(),
            "{rules:?}"
        );
        assert_eq!(members(&app, owner, &group).await, expected, "{rules:?}");
    }

    // The connection returns the contacts themselves, with ids, and pages like any other.
    app.data(
        owner,
        UPDATE,
        json!({ "input": { "id": group, "rules": [rule("attributes.score", "GT", json!(5))] } }),
    )
    .await;
    let data = app.data(owner, MEMBERS, json!({ "id": group })).await;
    assert_eq!(
        data["contactGroup"]["contacts"]["nodes"],
        json!([{ "id": ann, "name": ANN }, { "id": cid, "name": CID }])
    );
    let paged = app
        .data(
            owner,
            "query($id: ID!, $after: String) { contactGroup(id: $id) { contacts(first: 1, after: $after) {
              nodes { name } pageInfo { hasNextPage endCursor } } } }",
            json!({ "id": group }),
        )
        .await;
    let page = &paged["contactGroup"]["contacts"];
    assert_eq!(page["nodes"], json!([{ "name": ANN }]));
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let paged = app
        .data(
            owner,
            "query($id: ID!, $after: String) { contactGroup(id: $id) { contacts(first: 1, after: $after) {
              nodes { name } pageInfo { hasNextPage } } } }",
            json!({ "id": group, "after": page["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(
        paged["contactGroup"]["contacts"],
        json!({ "nodes": [{ "name": CID }], "pageInfo": { "hasNextPage": false } })
    );
    // Stored rules read back as given, with lower-case fields lower-cased.
    let updated = app
        .data(
            owner,
            UPDATE,
            json!({ "input": { "id": group, "rules": [rule("emails", "IN", json!(["Ann@Example.com"])), rule("attributes.score", "GTE", json!(7))] } }),
        )
        .await;
    assert_eq!(
        updated["updateContactGroup"]["contactGroup"]["rules"],
        json!([
            { "field": "emails", "operator": "IN", "value": ["ann@example.com"] },
            { "field": "attributes.score", "operator": "GTE", "value": 7 }
        ])
    );
}

#[tokio::test]
async fn static_members_rules_and_a_contacts_groups_agree() {
    let app = TestApp::spawn().await;
    let (_, lead) = app.user_with_token("lead@acme.test", &["TEAM_LEAD"]).await;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let [ann, bob, cid, dan] = people(&app).await;
    let created = create_group(
        &app,
        &lead,
        json!({ "name": "Segment", "description": "High scores",
                "rules": [rule("attributes.score", "GT", json!(5))] }),
    )
    .await;
    assert_eq!(
        created,
        json!({ "contactGroup": { "id": created["contactGroup"]["id"], "name": "Segment", "description": "High scores",
            "rules": [{ "field": "attributes.score", "operator": "GT", "value": 5 }], "contactCount": 2 },
            "userErrors": [] })
    );
    let segment = created["contactGroup"]["id"].clone();
    let fixed =
        create_group(&app, &lead, json!({ "name": "Static" })).await["contactGroup"]["id"].clone();

    // Agents change static membership (as they tag contacts); duplicates are ignored.
    let added = app
        .data(&agent, ADD, json!({ "g": fixed, "c": [ann, dan, ann] }))
        .await;
    assert_eq!(
        added["addContactGroupMembers"],
        json!({ "contactGroup": { "contactCount": 2 }, "userErrors": [] })
    );
    let again = app
        .data(&agent, ADD, json!({ "g": fixed, "c": [dan] }))
        .await;
    assert_eq!(
        again["addContactGroupMembers"]["contactGroup"]["contactCount"],
        2
    );
    assert_eq!(app.count("contact_group_members").await, 2);
    assert_eq!(
        members(&app, &agent, &fixed).await,
        ["Ann Larsen", "Dan Holm"]
    );
    // A segment takes hand-picked extra members; its members are both.
    app.data(&agent, ADD, json!({ "g": segment, "c": [bob] }))
        .await;
    assert_eq!(
        members(&app, &agent, &segment).await,
        ["Ann Larsen", "Bob", "Cid"]
    );
    // Removing a contact that matches the rules removes no static membership: it stays a member.
    let removed = app
        .data(&agent, REMOVE, json!({ "g": segment, "c": [ann] }))
        .await;
    assert_eq!(
        removed["removeContactGroupMembers"],
        json!({ "contactGroup": { "contactCount": 3 }, "userErrors": [] })
    );
    let contact_groups = "{ contacts(first: 10) { nodes { name contactGroups { name } } } }";
    let data = app.data(&agent, contact_groups, json!({})).await;
    assert_eq!(
        data["contacts"]["nodes"],
        json!([
            { "name": "Ann Larsen", "contactGroups": [{ "name": "Segment" }, { "name": "Static" }] },
            { "name": "Bob", "contactGroups": [{ "name": "Segment" }] },
            { "name": "Cid", "contactGroups": [{ "name": "Segment" }] },
            { "name": "Dan Holm", "contactGroups": [{ "name": "Static" }] }
        ])
    );
    // The same through a single contact and through node(id:).
    let one = app
        .data(
            &agent,
            "query($id: ID!) { contact(id: $id) { contactGroups { id name } } node(id: $id) { ... on Contact { contactGroups { name } } } }",
            json!({ "id": dan }),
        )
        .await;
    assert_eq!(
        one,
        json!({ "contact": { "contactGroups": [{ "id": fixed, "name": "Static" }] },
                "node": { "contactGroups": [{ "name": "Static" }] } })
    );
    app.data(&agent, REMOVE, json!({ "g": segment, "c": [bob] }))
        .await;
    app.data(&agent, REMOVE, json!({ "g": fixed, "c": [ann, bob] }))
        .await;
    assert_eq!(members(&app, &agent, &segment).await, ["Ann Larsen", "Cid"]);
    assert_eq!(members(&app, &agent, &fixed).await, ["Dan Holm"]);
    // Rules removed: a segment becomes a static group with its static members only.
    app.data(&lead, ADD, json!({ "g": segment, "c": [cid] }))
        .await;
    let cleared = app
        .data(
            &lead,
            UPDATE,
            json!({ "input": { "id": segment, "rules": [] } }),
        )
        .await;
    assert_eq!(
        cleared["updateContactGroup"]["contactGroup"]["rules"],
        json!([])
    );
    assert_eq!(members(&app, &agent, &segment).await, ["Cid"]);

    // Groups list, by name, with counts; search by name.
    let list = app
        .data(
            &agent,
            "query($search: String) { contactGroups(search: $search) { totalCount nodes { name contactCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        list["contactGroups"],
        json!({ "totalCount": 2, "nodes": [{ "name": "Segment", "contactCount": 1 }, { "name": "Static", "contactCount": 1 }] })
    );
    let found = app
        .data(
            &agent,
            "query($search: String) { contactGroups(search: $search) { nodes { name } } }",
            json!({ "search": "STAT" }),
        )
        .await;
    assert_eq!(
        found["contactGroups"]["nodes"],
        json!([{ "name": "Static" }])
    );

    // Deleting a group keeps its contacts and drops its memberships.
    let contacts = app.count("contacts").await;
    let deleted = app.data(&lead, DELETE, json!({ "id": fixed })).await;
    assert_eq!(
        deleted["deleteContactGroup"],
        json!({ "deletedContactGroupId": fixed, "userErrors": [] })
    );
    assert_eq!(app.count("contacts").await, contacts);
    assert_eq!(app.count("contact_group_members").await, 1);
    let gone = app
        .data(
            &agent,
            "query($id: ID!) { contactGroup(id: $id) { name } node(id: $id) { id } }",
            json!({ "id": fixed }),
        )
        .await;
    assert_eq!(gone, json!({ "contactGroup": null, "node": null }));
    let filtered = app
        .data(
            &agent,
            "query($id: ID!) { contacts(filter: { groupId: $id }) { totalCount nodes { name } } }",
            json!({ "id": fixed }),
        )
        .await;
    assert_eq!(
        filtered["contacts"],
        json!({ "totalCount": 0, "nodes": [] })
    );
}

#[tokio::test]
async fn anonymized_contacts_belong_to_no_group() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let [ann, _, cid, dan] = people(&app).await;
    let segment = group_id(
        &app,
        json!({ "name": "Segment", "rules": [rule("attributes.score", "GT", json!(5))] }),
    )
    .await;
    let fixed = group_id(&app, json!({ "name": "Static" })).await;
    app.data(owner, ADD, json!({ "g": fixed, "c": [ann, cid] }))
        .await;
    assert_eq!(members(&app, owner, &segment).await, ["Ann Larsen", "Cid"]);
    assert_eq!(members(&app, owner, &fixed).await, ["Ann Larsen", "Cid"]);
    app.sql("UPDATE contacts SET anonymized_at = created_at WHERE display_name = 'Cid'")
        .await;
    assert_eq!(members(&app, owner, &segment).await, ["Ann Larsen"]);
    assert_eq!(members(&app, owner, &fixed).await, ["Ann Larsen"]);
    let data = app
        .data(
            owner,
            "query($id: ID!) { contact(id: $id) { contactGroups { name } } }",
            json!({ "id": cid }),
        )
        .await;
    assert_eq!(data["contact"]["contactGroups"], json!([]));
    // They cannot be added, and can be removed.
    let rows = app.count("contact_group_members").await;
    let events = app.count("events").await;
    let refused = app
        .data(owner, ADD, json!({ "g": fixed, "c": [dan, cid] }))
        .await;
    assert_eq!(
        refused["addContactGroupMembers"],
        json!({ "contactGroup": null, "userErrors": [
            { "field": ["input", "contactIds", "1"], "message": "the contact is anonymized", "code": "INVALID_STATE" }
        ] })
    );
    assert_eq!(app.count("contact_group_members").await, rows);
    assert_eq!(app.count("events").await, events);
    let removed = app
        .data(owner, REMOVE, json!({ "g": fixed, "c": [cid] }))
        .await;
    assert_eq!(
        removed["removeContactGroupMembers"]["userErrors"],
        json!([])
    );
    assert_eq!(app.count("contact_group_members").await, rows - 1);
}

#[tokio::test]
async fn every_change_writes_an_event() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let ann = contact(&app, json!({ "displayName": "Ann" })).await;
    let bob = contact(&app, json!({ "displayName": "Bob" })).await;
    let group = group_id(
        &app,
        json!({ "name": "Newsletter", "rules": [rule("displayName", "EQ", json!("Ann"))] }),
    )
    .await;
    app.data(
        owner,
        UPDATE,
        json!({ "input": { "id": group, "name": "Weekly newsletter", "description": "Fridays" } }),
    )
    .await;
    app.data(owner, ADD, json!({ "g": group, "c": [ann, bob] }))
        .await;
    // Nothing new to add or remove: no event.
    app.data(owner, ADD, json!({ "g": group, "c": [bob] }))
        .await;
    app.data(owner, REMOVE, json!({ "g": group, "c": [bob] }))
        .await;
    app.data(owner, REMOVE, json!({ "g": group, "c": [bob] }))
        .await;
    app.data(owner, DELETE, json!({ "id": group })).await;
    let uuid = |id: &Value| {
        switchboard::graphql::relay::decode_id(id.as_str().unwrap_or_default(), "Contact")
            .expect("a contact id")
            .to_string()
    };
    for (event, payload, n) in [
        ("CONTACT_GROUP_CREATED", "Newsletter", 1),
        ("CONTACT_GROUP_UPDATED", "description", 1),
        ("CONTACT_GROUP_MEMBERS_ADDED", &uuid(&bob), 1),
        ("CONTACT_GROUP_MEMBERS_ADDED", &uuid(&ann), 1),
        ("CONTACT_GROUP_MEMBERS_REMOVED", &uuid(&bob), 1),
        ("CONTACT_GROUP_MEMBERS_REMOVED", &uuid(&ann), 0),
        ("CONTACT_GROUP_DELETED", "Weekly newsletter", 1),
    ] {
        let rows = format!(
            "events WHERE event_type = '{event}' AND subject_type = 'ContactGroup' AND CAST(payload AS TEXT) LIKE '%{payload}%'"
        );
        assert_eq!(app.count(&rows).await, n, "{event} {payload}");
    }
    assert_eq!(
        app.count("events WHERE event_type LIKE 'CONTACT_GROUP_%'")
            .await,
        5
    );
}

#[tokio::test]
async fn bad_group_input_gets_user_errors_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let [ann, ..] = people(&app).await;
    define(
        &app,
        json!({ "entity": "CONTACT", "identifier": "old", "label": "Old", "valueType": "TEXT" }),
    )
    .await;
    let definitions = app
        .data(
            owner,
            "{ customAttributeDefinitions(entity: CONTACT) { id identifier } }",
            json!({}),
        )
        .await;
    let old = definitions["customAttributeDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["identifier"] == "old")
        .map(|d| d["id"].clone())
        .expect("the old definition");
    app.data(owner, "mutation($id: ID!) { archiveCustomAttributeDefinition(input: { id: $id }) { userErrors { code } } }", json!({ "id": old }))
        .await;
    let group = group_id(
        &app,
        json!({ "name": "VIP", "rules": [rule("attributes.vip", "EQ", json!(true))] }),
    )
    .await;
    app.data(owner, ADD, json!({ "g": group, "c": [ann] }))
        .await;
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let theirs = app
        .data(
            &other.token,
            "mutation { createContact(input: { displayName: \"Zed\" }) { contact { id } } }",
            json!({}),
        )
        .await["createContact"]["contact"]["id"]
        .clone();
    let their_group = app
        .data(
            &other.token,
            "mutation { createContactGroup(input: { name: \"Theirs\" }) { contactGroup { id } } }",
            json!({}),
        )
        .await["createContactGroup"]["contactGroup"]["id"]
        .clone();
    let second = group_id(&app, json!({ "name": "Second" })).await;
    let snapshot = || async {
        (
            app.count("contact_groups").await,
            app.count("contact_group_members").await,
            app.count("events").await,
        )
    };
    let before = snapshot().await;

    let bad_rules = [
        (
            rule("company", "IN", json!("Acme")),
            json!({ "field": ["input", "rules", "0", "value"], "message": "IN needs a list of values, got a string; use EQ for one value", "code": "INVALID" }),
        ),
        (
            rule("attributes.score", "CONTAINS", json!("1")),
            json!({ "field": ["input", "rules", "0", "operator"], "message": "CONTAINS applies only to text fields; attributes.score is a number field", "code": "INVALID" }),
        ),
        (
            rule("nickname", "EQ", json!("Al")),
            json!({ "field": ["input", "rules", "0", "field"], "message": "\"nickname\" is not a contact field; use one of name, displayName, firstName, middleName, lastName, email, emails, phone, phones, company, externalId, note, address.street, address.city, address.postalCode, address.region, address.country, birthDate, createdAt, updatedAt, lastContactedAt or attributes.<identifier>", "code": "INVALID" }),
        ),
        (
            rule("attributes.color", "EQ", json!("red")),
            json!({ "field": ["input", "rules", "0", "field"], "message": "no contact attribute \"color\"", "code": "NOT_FOUND" }),
        ),
        (
            rule("attributes.old", "EQ", json!("x")),
            json!({ "field": ["input", "rules", "0", "field"], "message": "attribute \"old\" is archived", "code": "INVALID_STATE" }),
        ),
        (
            rule("company", "GT", json!("M")),
            json!({ "field": ["input", "rules", "0", "operator"], "message": "GT applies only to number, date and timestamp fields; company is a text field", "code": "INVALID" }),
        ),
        (
            rule("attributes.vip", "IN", json!([true])),
            json!({ "field": ["input", "rules", "0", "operator"], "message": "attributes.vip is a boolean field: use EQ or NE", "code": "INVALID" }),
        ),
        (
            rule("attributes.score", "IN", json!([1, "two"])),
            json!({ "field": ["input", "rules", "0", "value", "1"], "message": "expected a number, got a string", "code": "INVALID" }),
        ),
        (
            rule("attributes.score", "GT", json!("5")),
            json!({ "field": ["input", "rules", "0", "value"], "message": "expected a number, got a string", "code": "INVALID" }),
        ),
        (
            rule("attributes.since", "LT", json!("2024-02-30")),
            json!({ "field": ["input", "rules", "0", "value"], "message": "\"2024-02-30\" is not a date such as \"2026-11-23\"", "code": "INVALID" }),
        ),
        (
            rule("createdAt", "GT", json!("yesterday")),
            json!({ "field": ["input", "rules", "0", "value"], "message": "\"yesterday\" is not a timestamp such as \"2026-11-23T10:00:00Z\"", "code": "INVALID" }),
        ),
        (
            rule("attributes.tier", "EQ", json!("platinum")),
            json!({ "field": ["input", "rules", "0", "value"], "message": "\"platinum\" is not an option of tier", "code": "INVALID" }),
        ),
        (
            rule("firstName", "CONTAINS", json!("")),
            json!({ "field": ["input", "rules", "0", "value"], "message": "CONTAINS needs some text", "code": "INVALID" }),
        ),
        (
            rule("firstName", "IN", json!([])),
            json!({ "field": ["input", "rules", "0", "value"], "message": "IN needs 1 to 100 values", "code": "INVALID" }),
        ),
    ];
    for (bad, error) in bad_rules {
        let created = create_group(
            &app,
            owner,
            json!({ "name": "New", "rules": [bad.clone()] }),
        )
        .await;
        assert_eq!(
            created,
            json!({ "contactGroup": null, "userErrors": [error] }),
            "{bad}"
        );
        let updated = app
            .data(
                owner,
                UPDATE,
                json!({ "input": { "id": group, "name": "Renamed", "rules": [bad.clone()] } }),
            )
            .await;
        assert_eq!(
            updated["updateContactGroup"],
            json!({ "contactGroup": null, "userErrors": [error] }),
            "{bad}"
        );
    }
    // Every problem of an input is listed, at its index.
    let many = create_group(
        &app,
        owner,
        json!({ "name": " ", "rules": [rule("firstName", "EQ", json!("Ann")), rule("attributes.score", "CONTAINS", json!("1")), rule("x", "EQ", json!(1))] }),
    )
    .await;
    assert_eq!(
        many["userErrors"],
        json!([
            { "field": ["input", "name"], "message": "name must not be empty", "code": "REQUIRED" },
            { "field": ["input", "rules", "1", "operator"], "message": "CONTAINS applies only to text fields; attributes.score is a number field", "code": "INVALID" },
            { "field": ["input", "rules", "2", "field"], "message": "\"x\" is not a contact field; use one of name, displayName, firstName, middleName, lastName, email, emails, phone, phones, company, externalId, note, address.street, address.city, address.postalCode, address.region, address.country, birthDate, createdAt, updatedAt, lastContactedAt or attributes.<identifier>", "code": "INVALID" }
        ])
    );
    let too_many_rules: Vec<Value> = (0..21)
        .map(|_| rule("firstName", "EQ", json!("Ann")))
        .collect();
    let refused = create_group(
        &app,
        owner,
        json!({ "name": "Many", "rules": too_many_rules }),
    )
    .await;
    assert_eq!(
        refused["userErrors"],
        json!([{ "field": ["input", "rules"], "message": "a group has at most 20 rules", "code": "TOO_LONG" }])
    );
    // Names: required, unique per organization regardless of case.
    for (input, error) in [
        (
            json!({ "name": "" }),
            json!({ "field": ["input", "name"], "message": "name must not be empty", "code": "REQUIRED" }),
        ),
        (
            json!({ "name": "vip" }),
            json!({ "field": ["input", "name"], "message": "a contact group named \"vip\" exists", "code": "TAKEN" }),
        ),
    ] {
        let created = create_group(&app, owner, input.clone()).await;
        assert_eq!(
            created,
            json!({ "contactGroup": null, "userErrors": [error] }),
            "{input}"
        );
    }
    let renamed = app
        .data(
            owner,
            UPDATE,
            json!({ "input": { "id": second, "name": "VIP" } }),
        )
        .await;
    assert_eq!(
        renamed["updateContactGroup"]["userErrors"],
        json!([{ "field": ["input", "name"], "message": "a contact group named \"VIP\" exists", "code": "TAKEN" }])
    );

    // Membership: other organizations' contacts and groups, unknown ids, too many ids.
    let added = app
        .data(owner, ADD, json!({ "g": group, "c": [ann, theirs] }))
        .await;
    assert_eq!(
        added["addContactGroupMembers"],
        json!({ "contactGroup": null, "userErrors": [
            { "field": ["input", "contactIds", "1"], "message": "no such contact", "code": "NOT_FOUND" }
        ] })
    );
    let unknown_group =
        switchboard::graphql::relay::encode_id("ContactGroup", uuid::Uuid::now_v7());
    for (mutation, name) in [
        (ADD, "addContactGroupMembers"),
        (REMOVE, "removeContactGroupMembers"),
    ] {
        for g in [their_group.clone(), json!(unknown_group)] {
            let refused = app
                .data(owner, mutation, json!({ "g": g, "c": [ann] }))
                .await;
            assert_eq!(
                refused[name],
                json!({ "contactGroup": null, "userErrors": [
                    { "field": ["input", "groupId"], "message": "no such contact group", "code": "NOT_FOUND" }
                ] }),
                "{name}"
            );
        }
        let too_many: Vec<Value> = (0..1001).map(|_| ann.clone()).collect();
        let refused = app
            .data(owner, mutation, json!({ "g": group, "c": too_many }))
            .await;
        assert_eq!(
            refused[name],
            json!({ "contactGroup": null, "userErrors": [
                { "field": ["input", "contactIds"], "message": "at most 1000 contacts per call", "code": "TOO_LONG" }
            ] }),
            "{name}"
        );
        let not_a_contact = app
            .data(owner, mutation, json!({ "g": group, "c": [group] }))
            .await;
        assert_eq!(
            not_a_contact[name]["userErrors"][0]["field"],
            json!(["input", "contactIds", "0"]),
            "{name}"
        );
    }
    let removed = app
        .data(owner, REMOVE, json!({ "g": group, "c": [theirs] }))
        .await;
    assert_eq!(
        removed["removeContactGroupMembers"]["userErrors"],
        json!([{ "field": ["input", "contactIds", "0"], "message": "no such contact", "code": "NOT_FOUND" }])
    );
    for mutation in [UPDATE, DELETE] {
        let input = if mutation == UPDATE {
            json!({ "input": { "id": unknown_group, "name": "X" } })
        } else {
            json!({ "id": unknown_group })
        };
        let body = app.data(owner, mutation, input).await;
        let payload = body
            .as_object()
            .and_then(|o| o.values().next())
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            payload["userErrors"],
            json!([{ "field": ["input", "id"], "message": "no such contact group", "code": "NOT_FOUND" }])
        );
    }
    assert_eq!(snapshot().await, before);
    // The group is as it was.
    let data = app
        .data(
            owner,
            "query($id: ID!) { contactGroup(id: $id) { name rules { field operator value } contactCount } }",
            json!({ "id": group }),
        )
        .await;
    assert_eq!(
        data["contactGroup"],
        json!({ "name": "VIP", "rules": [{ "field": "attributes.vip", "operator": "EQ", "value": true }], "contactCount": 1 })
    );
}

#[tokio::test]
async fn agents_read_groups_and_change_members_but_only_team_leads_define_groups() {
    let app = TestApp::spawn().await;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let ann = contact(&app, json!({ "displayName": "Ann" })).await;
    let group = group_id(&app, json!({ "name": "Newsletter" })).await;
    let rows = (app.count("contact_groups").await, app.count("events").await);
    let body = app
        .gql(&agent, CREATE, json!({ "input": { "name": "Mine" } }))
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"]);
    let body = app
        .gql(
            &agent,
            UPDATE,
            json!({ "input": { "id": group, "name": "Mine" } }),
        )
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"]);
    let body = app.gql(&agent, DELETE, json!({ "id": group })).await;
    assert_eq!(codes(&body), ["FORBIDDEN"]);
    assert_eq!(
        (app.count("contact_groups").await, app.count("events").await),
        rows
    );
    let added = app
        .data(&agent, ADD, json!({ "g": group, "c": [ann] }))
        .await;
    assert_eq!(
        added["addContactGroupMembers"],
        json!({ "contactGroup": { "contactCount": 1 }, "userErrors": [] })
    );
    let read = app
        .data(
            &agent,
            "{ contactGroups { nodes { name contactCount contacts { nodes { name } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        read["contactGroups"]["nodes"],
        json!([{ "name": "Newsletter", "contactCount": 1, "contacts": { "nodes": [{ "name": "Ann" }] } }])
    );
}

#[tokio::test]
async fn groups_are_private_to_their_organization() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let ann = contact(&app, json!({ "displayName": "Ann" })).await;
    let group = group_id(
        &app,
        json!({ "name": "Everyone", "rules": [rule("createdAt", "GT", json!("2000-01-01T00:00:00Z"))] }),
    )
    .await;
    app.data(owner, ADD, json!({ "g": group, "c": [ann] }))
        .await;
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let zed = app
        .data(
            &other.token,
            "mutation { createContact(input: { displayName: \"Zed\" }) { contact { id } } }",
            json!({}),
        )
        .await["createContact"]["contact"]["id"]
        .clone();
    // Same name in another organization is fine.
    let theirs = app
        .data(
            &other.token,
            "mutation { createContactGroup(input: { name: \"Everyone\", rules: [{ field: \"createdAt\", operator: GT, value: \"2000-01-01T00:00:00Z\" }] }) {
              contactGroup { id contactCount contacts { nodes { name } } } userErrors { code } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        theirs["createContactGroup"]["contactGroup"]["contacts"],
        json!({ "nodes": [{ "name": "Zed" }] })
    );
    assert_eq!(
        theirs["createContactGroup"]["contactGroup"]["contactCount"],
        1
    );
    let hidden = app
        .data(
            &other.token,
            "query($id: ID!) { contactGroup(id: $id) { name } node(id: $id) { id } nodes(ids: [$id]) { id }
              contactGroups { totalCount nodes { name } }
              contacts(filter: { groupId: $id }) { totalCount nodes { name } } }",
            json!({ "id": group }),
        )
        .await;
    assert_eq!(
        hidden,
        json!({ "contactGroup": null, "node": null, "nodes": [null],
                "contactGroups": { "totalCount": 1, "nodes": [{ "name": "Everyone" }] },
                "contacts": { "totalCount": 0, "nodes": [] } })
    );
    let rows = (
        app.count("contact_groups").await,
        app.count("contact_group_members").await,
        app.count("events").await,
    );
    let attempts = [
        (
            ADD,
            json!({ "g": group, "c": [zed] }),
            "addContactGroupMembers",
        ),
        (
            REMOVE,
            json!({ "g": group, "c": [ann] }),
            "removeContactGroupMembers",
        ),
        (
            UPDATE,
            json!({ "input": { "id": group, "rules": [] } }),
            "updateContactGroup",
        ),
        (DELETE, json!({ "id": group }), "deleteContactGroup"),
    ];
    for (mutation, variables, name) in attempts {
        let refused = app.data(&other.token, mutation, variables).await;
        assert_eq!(
            refused[name]["userErrors"][0]["code"], "NOT_FOUND",
            "{name}: {refused}"
        );
    }
    assert_eq!(
        (
            app.count("contact_groups").await,
            app.count("contact_group_members").await,
            app.count("events").await,
        ),
        rows
    );
    // Each organization's contacts see only their own groups.
    let ours = app
        .data(
            owner,
            "{ contacts { nodes { name contactGroups { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        ours["contacts"]["nodes"],
        json!([{ "name": "Ann", "contactGroups": [{ "name": "Everyone" }] }])
    );
    assert_eq!(members(&app, owner, &group).await, ["Ann"]);
}

#[tokio::test]
async fn a_page_of_groups_with_counts_costs_the_same_statements_as_a_smaller_one() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let ann = contact(
        &app,
        json!({ "displayName": "Ann", "email": "ann@example.com" }),
    )
    .await;
    contact(&app, json!({ "displayName": "Bob" })).await;
    for i in 0..30 {
        let rules = if i % 2 == 0 {
            json!([rule("emails", "CONTAINS", json!("example"))])
        } else {
            json!([])
        };
        let group = group_id(
            &app,
            json!({ "name": format!("Group {i:02}"), "rules": rules }),
        )
        .await;
        app.data(owner, ADD, json!({ "g": group, "c": [ann] }))
            .await;
    }
    let page = |n: usize| {
        format!(
            "{{ contactGroups(first: {n}) {{ nodes {{ name contactCount rules {{ field }} }} }} }}"
        )
    };
    let (small, data) = app.statements_of(owner, &page(3)).await;
    assert_eq!(
        data["contactGroups"]["nodes"][0],
        json!({ "name": "Group 00", "contactCount": 1, "rules": [{ "field": "emails" }] })
    );
    let (large, data) = app.statements_of(owner, &page(30)).await;
    assert_eq!(
        data["contactGroups"]["nodes"].as_array().map(Vec::len),
        Some(30)
    );
    assert_eq!(
        data["contactGroups"]["nodes"][29],
        json!({ "name": "Group 29", "contactCount": 1, "rules": [] })
    );
    assert_eq!(small, large);
}
