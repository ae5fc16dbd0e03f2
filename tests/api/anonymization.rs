//! Contact anonymization: tracked requests, erasure of personal data and message bodies with
//! counts and timestamps kept, `CONFLICT` on open conversations unless forced, roles, tenancy.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{TestApp, codes};

const ANONYMIZE: &str = "mutation($input: AnonymizeContactInput!) { anonymizeContact(input: $input) {
  request { id targetType targetId status force requestedBy { id } closedConversations anonymizedConversations erasedMessages
            contact { id } processedAt requestedAt }
  contact { id name displayName firstName lastName email phone additionalEmails additionalPhones externalId company
            address { city } note birthDate consent { channel } customAttributes { identifier } tags { name } anonymizedAt }
  userErrors { field message code } } }";

fn uuid_of(id: &Value) -> Uuid {
    switchboard::graphql::relay::decode_any_id(id.as_str().expect("global id"))
        .expect("decodable id")
        .1
}

async fn contact(app: &TestApp, input: Value) -> Value {
    let data = app
        .data(
            &app.org.token,
            "mutation($input: ContactInput!) { createContact(input: $input) { contact { id } userErrors { code } } }",
            json!({ "input": input }),
        )
        .await;
    assert_eq!(data["createContact"]["userErrors"], json!([]));
    data["createContact"]["contact"]["id"].clone()
}

/// Inserts a conversation directly (the inbox API comes later); returns its id.
async fn conversation(app: &TestApp, requester: &Value, number: i64, status: &str) -> Uuid {
    let now = Utc::now();
    let org = uuid_of(&json!(app.org.org_id));
    let id = Uuid::now_v7();
    entity::conversation::ActiveModel {
        id: Set(id),
        org_id: Set(org),
        number: Set(number),
        requester_id: Set(uuid_of(requester)),
        channel_type: Set("EMAIL".into()),
        subject: Set(Some(format!("Order {number} for Ann"))),
        status: Set(status.into()),
        closed_at: Set((status == "CLOSED").then_some(now)),
        kind: Set("DIRECT".into()),
        direction: Set("INBOUND".into()),
        priority: Set("NORMAL".into()),
        priority_rank: Set(1),
        last_message_at: Set(now),
        waiting_key: Set(switchboard::conversations::NOT_WAITING),
        message_count: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .expect("insert conversation");
    id
}

/// Inserts a message directly; returns its id.
async fn message(app: &TestApp, conversation: Uuid, author: Option<&Value>, text: &str) -> Uuid {
    let now = Utc::now();
    let id = Uuid::now_v7();
    entity::message::ActiveModel {
        id: Set(id),
        org_id: Set(uuid_of(&json!(app.org.org_id))),
        conversation_id: Set(conversation),
        author_contact_id: Set(author.map(uuid_of)),
        author_kind: Set(if author.is_some() {
            "CONTACT"
        } else {
            "SYSTEM"
        }
        .into()),
        delivery_status: Set("DELIVERED".into()),
        direction: Set(if author.is_some() {
            "INBOUND"
        } else {
            "OUTBOUND"
        }
        .into()),
        text_body: Set(Some(text.into())),
        html_body: Set(Some(format!("<p>{text}</p>"))),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&app.state.db)
    .await
    .expect("insert message");
    id
}

async fn body(app: &TestApp, id: Uuid) -> (Option<String>, Option<String>, bool) {
    let m = entity::message::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .expect("query")
        .expect("message");
    (m.text_body, m.html_body, m.anonymized_at.is_some())
}

async fn conv(app: &TestApp, id: Uuid) -> entity::conversation::Model {
    entity::conversation::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .expect("query")
        .expect("conversation")
}

async fn full_contact(app: &TestApp) -> Value {
    let owner = &app.org.token;
    let ann = contact(
        app,
        json!({ "firstName": "Ann", "lastName": "Larsen", "displayName": "Ann L", "email": "ann@example.com",
                "phone": "+4520123456", "additionalEmails": ["ann@work.example"], "additionalPhones": ["+4520999999"],
                "externalId": "crm-1", "company": "Larsen ApS", "address": { "city": "Aarhus" }, "note": "VIP",
                "birthDate": "1990-05-17" }),
    )
    .await;
    let tag = app
        .data(
            owner,
            "mutation { createTag(input: { name: \"VIP\" }) { tag { id } } }",
            json!({}),
        )
        .await["createTag"]["tag"]["id"]
        .clone();
    app.data(owner, "mutation($c: [ID!]!, $t: [ID!]!) { tagContacts(input: { contactIds: $c, tagIds: $t }) { userErrors { code } } }", json!({ "c": [ann], "t": [tag] }))
        .await;
    app.data(owner, "mutation { createCustomAttributeDefinition(input: { entity: CONTACT, identifier: \"score\", label: \"Score\", valueType: NUMBER }) { userErrors { code } } }", json!({}))
        .await;
    app.data(owner, "mutation($id: ID!) { setContactAttributes(input: { contactId: $id, values: [{ identifier: \"score\", value: 7 }] }) { userErrors { code } } }", json!({ "id": ann }))
        .await;
    app.data(owner, "mutation($id: ID!) { setContactConsent(input: { contactId: $id, channel: SMS, status: OPTED_IN, source: \"form at shop.example/ann\" }) { userErrors { code } } }", json!({ "id": ann }))
        .await;
    ann
}

#[tokio::test]
async fn anonymizing_a_contact_erases_personal_data_and_bodies_and_keeps_counts() {
    let app = TestApp::spawn().await;
    let ann = full_contact(&app).await;
    let bob = contact(&app, json!({ "firstName": "Bob" })).await;
    let anns = conversation(&app, &ann, 1, "CLOSED").await;
    let from_ann = message(&app, anns, Some(&ann), "my card is 4111").await;
    let to_ann = message(&app, anns, None, "thanks Ann").await;
    let bobs = conversation(&app, &bob, 2, "OPEN").await;
    let ann_in_bobs = message(&app, bobs, Some(&ann), "Ann here too").await;
    let bob_in_bobs = message(&app, bobs, Some(&bob), "Bob speaking").await;
    let events_before = app.count("events").await;

    let data = app
        .data(
            &app.org.token,
            ANONYMIZE,
            json!({ "input": { "contactId": ann } }),
        )
        .await["anonymizeContact"]
        .clone();
    let request = &data["request"];
    assert_eq!(data["userErrors"], json!([]));
    assert_eq!(
        json!({ "targetType": request["targetType"], "targetId": request["targetId"], "status": request["status"],
                "force": request["force"], "requestedBy": request["requestedBy"], "closed": request["closedConversations"],
                "conversations": request["anonymizedConversations"], "messages": request["erasedMessages"],
                "contact": request["contact"], "processed": request["processedAt"] == request["requestedAt"] }),
        json!({ "targetType": "CONTACT", "targetId": ann, "status": "COMPLETED", "force": false,
                "requestedBy": { "id": app.org.owner_id }, "closed": 0, "conversations": 1, "messages": 3,
                "contact": { "id": ann }, "processed": true })
    );
    let anonymized_at = data["contact"]["anonymizedAt"].clone();
    assert!(anonymized_at.is_string());
    assert_eq!(
        data["contact"],
        json!({ "id": ann, "name": "", "displayName": null, "firstName": null, "lastName": null, "email": null,
                "phone": null, "additionalEmails": [], "additionalPhones": [], "externalId": null, "company": null,
                "address": null, "note": null, "birthDate": null, "consent": [], "customAttributes": [],
                "tags": [{ "name": "VIP" }], "anonymizedAt": anonymized_at })
    );

    // Bodies of Ann's conversation (both directions) and Ann's message elsewhere are gone; rows stay.
    assert_eq!(app.count("messages").await, 4);
    assert_eq!(body(&app, from_ann).await, (None, None, true));
    assert_eq!(body(&app, to_ann).await, (None, None, true));
    assert_eq!(body(&app, ann_in_bobs).await, (None, None, true));
    assert_eq!(
        body(&app, bob_in_bobs).await,
        (
            Some("Bob speaking".into()),
            Some("<p>Bob speaking</p>".into()),
            false
        )
    );
    let (a, b) = (conv(&app, anns).await, conv(&app, bobs).await);
    assert_eq!(
        (
            a.subject,
            a.number,
            a.status.as_str(),
            a.anonymized_at.is_some()
        ),
        (None, 1, "CLOSED", true)
    );
    assert_eq!(
        (
            b.subject.as_deref(),
            b.status.as_str(),
            b.anonymized_at.is_some()
        ),
        (Some("Order 2 for Ann"), "OPEN", false)
    );
    assert_eq!(app.count("contact_attribute_values").await, 0);
    assert_eq!(app.count("contact_tags").await, 1);

    // One new event; earlier events about Ann no longer quote her data.
    assert_eq!(app.count("events").await, events_before + 1);
    let ann_uuid = uuid_of(&ann);
    let about_ann = entity::event::Entity::find()
        .all(&app.state.db)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.subject_id == ann_uuid)
        .map(|e| (e.event_type, e.payload))
        .collect::<Vec<_>>();
    let types: Vec<&str> = about_ann.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "CONTACT_CREATED",
            "CONTACT_TAGGED",
            "CONTACT_ATTRIBUTES_SET",
            "CONTACT_CONSENT_CHANGED",
            "CONTACT_ANONYMIZED"
        ]
    );
    assert!(about_ann[..4].iter().all(|(_, p)| *p == json!({})));
    assert_eq!(
        about_ann[4].1,
        json!({ "requestId": uuid_of(&request["id"]), "force": false, "closedConversations": 0,
                "anonymizedConversations": 1, "erasedMessages": 3 })
    );

    // The request is queryable by id and as a node.
    let q = "query($id: ID!) { anonymizationRequest(id: $id) { id status erasedMessages } node(id: $id) { ... on AnonymizationRequest { targetType } } }";
    assert_eq!(
        app.data(&app.org.token, q, json!({ "id": request["id"] }))
            .await,
        json!({ "anonymizationRequest": { "id": request["id"], "status": "COMPLETED", "erasedMessages": 3 },
                "node": { "targetType": "CONTACT" } })
    );
}

#[tokio::test]
async fn open_conversations_block_anonymization_unless_forced() {
    let app = TestApp::spawn().await;
    let ann = full_contact(&app).await;
    let open = conversation(&app, &ann, 1, "OPEN").await;
    let pending = conversation(&app, &ann, 2, "PENDING").await;
    let closed = conversation(&app, &ann, 3, "CLOSED").await;
    let msg = message(&app, open, Some(&ann), "hello").await;
    let events_before = app.count("events").await;

    let refused = app
        .data(
            &app.org.token,
            ANONYMIZE,
            json!({ "input": { "contactId": ann } }),
        )
        .await["anonymizeContact"]
        .clone();
    assert_eq!(
        refused,
        json!({ "request": null, "contact": null, "userErrors": [{ "field": ["input", "force"],
            "message": "the contact has 2 conversation(s) not closed; close them or pass force", "code": "CONFLICT" }] })
    );
    // Nothing changed.
    assert_eq!(app.count("anonymization_requests").await, 0);
    assert_eq!(app.count("events").await, events_before);
    assert_eq!(app.count("contact_attribute_values").await, 1);
    assert_eq!(
        app.count("contacts WHERE anonymized_at IS NULL AND first_name = 'Ann'")
            .await,
        1
    );
    assert_eq!(
        body(&app, msg).await,
        (Some("hello".into()), Some("<p>hello</p>".into()), false)
    );
    assert_eq!(conv(&app, open).await.status, "OPEN");

    let forced = app
        .data(
            &app.org.token,
            ANONYMIZE,
            json!({ "input": { "contactId": ann, "force": true } }),
        )
        .await["anonymizeContact"]
        .clone();
    assert_eq!(forced["userErrors"], json!([]));
    assert_eq!(
        (
            &forced["request"]["force"],
            &forced["request"]["closedConversations"],
            &forced["request"]["anonymizedConversations"],
            &forced["request"]["erasedMessages"]
        ),
        (&json!(true), &json!(2), &json!(3), &json!(1))
    );
    for id in [open, pending] {
        let c = conv(&app, id).await;
        assert_eq!(
            (
                c.status.as_str(),
                c.close_reason.as_deref(),
                c.closed_at.is_some(),
                c.subject
            ),
            ("CLOSED", Some("ANONYMIZED"), true, None)
        );
    }
    assert_eq!(conv(&app, closed).await.close_reason, None);
    assert_eq!(body(&app, msg).await, (None, None, true));
    // Two CONVERSATION_CLOSED events and the CONTACT_ANONYMIZED one.
    assert_eq!(app.count("events").await, events_before + 3);
    assert_eq!(
        app.count("events WHERE event_type = 'CONVERSATION_CLOSED'")
            .await,
        2
    );
}

#[tokio::test]
async fn an_anonymized_contact_cannot_be_anonymized_or_changed_again() {
    let app = TestApp::spawn().await;
    let ann = contact(&app, json!({ "firstName": "Ann" })).await;
    let first = app
        .data(
            &app.org.token,
            ANONYMIZE,
            json!({ "input": { "contactId": ann } }),
        )
        .await;
    assert_eq!(first["anonymizeContact"]["userErrors"], json!([]));
    let events = app.count("events").await;
    let again = app
        .data(
            &app.org.token,
            ANONYMIZE,
            json!({ "input": { "contactId": ann, "force": true } }),
        )
        .await;
    assert_eq!(
        again["anonymizeContact"],
        json!({ "request": null, "contact": null, "userErrors": [{ "field": ["input", "contactId"],
            "message": "the contact is already anonymized", "code": "INVALID_STATE" }] })
    );
    let update = app
        .data(
            &app.org.token,
            "mutation($id: ID!) { updateContact(input: { id: $id, contact: { firstName: \"Ann\" } }) { contact { id } userErrors { code } } }",
            json!({ "id": ann }),
        )
        .await;
    assert_eq!(
        update["updateContact"],
        json!({ "contact": null, "userErrors": [{ "code": "INVALID_STATE" }] })
    );
    assert_eq!(app.count("anonymization_requests").await, 1);
    assert_eq!(app.count("events").await, events);
    assert_eq!(app.count("contacts WHERE first_name IS NOT NULL").await, 0);
}

#[tokio::test]
async fn only_admins_of_the_same_organization_anonymize_and_read_requests() {
    let app = TestApp::spawn().await;
    let ann = contact(&app, json!({ "firstName": "Ann" })).await;
    let input = json!({ "input": { "contactId": ann } });
    for role in ["AGENT", "TEAM_LEAD"] {
        let (_, token) = app
            .user_with_token(&format!("{}@acme.test", role.to_lowercase()), &[role])
            .await;
        let body = app.gql(&token, ANONYMIZE, input.clone()).await;
        assert_eq!(codes(&body), ["FORBIDDEN"], "{role}");
    }
    assert_eq!(app.count("anonymization_requests").await, 0);
    assert_eq!(
        app.count("contacts WHERE anonymized_at IS NOT NULL").await,
        0
    );

    // Another organization's owner sees no such contact, nor the request.
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let foreign = app.data(&other.token, ANONYMIZE, input.clone()).await;
    assert_eq!(
        foreign["anonymizeContact"]["userErrors"],
        json!([{ "field": ["input", "contactId"], "message": "no such contact", "code": "NOT_FOUND" }])
    );
    assert_eq!(
        app.count("contacts WHERE anonymized_at IS NOT NULL").await,
        0
    );

    let (_, admin) = app.user_with_token("admin@acme.test", &["ADMIN"]).await;
    let done = app.data(&admin, ANONYMIZE, input).await;
    let request = done["anonymizeContact"]["request"]["id"].clone();
    let q = "query($id: ID!) { anonymizationRequest(id: $id) { id } node(id: $id) { id } }";
    assert_eq!(
        app.data(&other.token, q, json!({ "id": request })).await,
        json!({ "anonymizationRequest": null, "node": null })
    );
    let (_, agent) = app.user_with_token("agent2@acme.test", &["AGENT"]).await;
    assert_eq!(
        codes(&app.gql(&agent, q, json!({ "id": request })).await),
        ["FORBIDDEN"]
    );
    let node_only = "query($id: ID!) { node(id: $id) { id } }";
    assert_eq!(
        app.data(&agent, node_only, json!({ "id": request })).await,
        json!({ "node": null })
    );

    let bad = app
        .data(
            &app.org.token,
            ANONYMIZE,
            json!({ "input": { "contactId": "not-an-id" } }),
        )
        .await;
    assert_eq!(
        bad["anonymizeContact"]["userErrors"][0]["field"],
        json!(["input", "contactId"])
    );
}
