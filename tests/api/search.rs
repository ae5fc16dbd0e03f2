//! Conversation search: every source (subject, message, note, contact) with exact highlighted
//! snippets, the query language, exact words and diacritics, tenant isolation, updates and
//! removals reflected by the index in the writing transaction, ranking, pagination, filters, bad
//! queries, statement counts and the migration's backfill.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel, Set, Statement,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{TestApp, TestOrg, codes};

const SEARCH: &str =
    "query($q: String!, $filter: ConversationSearchFilter, $first: Int, $after: String) {
  searchConversations(query: $q, filter: $filter, first: $first, after: $after) {
    edges { node {
      conversation { id number }
      score
      highlights { source snippet message { id } noteId contact { id } }
    } }
  } }";

fn uuid_of(id: &str) -> Uuid {
    switchboard::graphql::relay::decode_any_id(id)
        .expect("decodable id")
        .1
}

fn gid(type_name: &str, id: Uuid) -> String {
    switchboard::graphql::relay::encode_id(type_name, id).0
}

/// An organization's inbox: a channel, and helpers that write through the API where it exists
/// (channels, contacts, conversations, anonymization) and through the core service or the
/// entities where it does not yet (messages, notes).
struct Inbox<'a> {
    app: &'a TestApp,
    org: TestOrg,
    channel: String,
}

impl<'a> Inbox<'a> {
    async fn new(app: &'a TestApp, org: &TestOrg) -> Inbox<'a> {
        let channel = Self::add_channel(app, org, "support@acme.test").await;
        Inbox {
            app,
            org: org.clone(),
            channel,
        }
    }

    async fn add_channel(app: &TestApp, org: &TestOrg, address: &str) -> String {
        crate::fixtures::channel(app, &org.token, "EMAIL", address, address).await
    }

    async fn contact(&self, input: Value) -> String {
        let data = self
            .app
            .data(
                &self.org.token,
                "mutation($input: ContactInput!) { createContact(input: $input) { contact { id } userErrors { message } } }",
                json!({ "input": input }),
            )
            .await;
        assert_eq!(data["createContact"]["userErrors"], json!([]));
        data["createContact"]["contact"]["id"]
            .as_str()
            .expect("contact id")
            .to_string()
    }

    /// Creates an inbound conversation through the API; returns its global id.
    async fn conversation(&self, requester: &str, subject: Option<&str>, text: &str) -> String {
        self.conversation_on(&self.channel, requester, subject, text)
            .await
    }

    async fn conversation_on(
        &self,
        channel: &str,
        requester: &str,
        subject: Option<&str>,
        text: &str,
    ) -> String {
        let data = self
            .app
            .data(
                &self.org.token,
                "mutation($input: CreateConversationInput!) { createConversation(input: $input) {
                   conversation { id } userErrors { field message } } }",
                json!({ "input": {
                    "channelId": channel, "requesterId": requester, "direction": "INBOUND",
                    "subject": subject, "message": { "text": text } } }),
            )
            .await;
        assert_eq!(data["createConversation"]["userErrors"], json!([]));
        data["createConversation"]["conversation"]["id"]
            .as_str()
            .expect("conversation id")
            .to_string()
    }

    async fn load(&self, conversation: &str) -> entity::conversation::Model {
        entity::conversation::Entity::find_by_id(uuid_of(conversation))
            .one(&self.app.state.db)
            .await
            .expect("load conversation")
            .expect("conversation exists")
    }

    /// Sends an outbound message (`sendMessage`); returns its global id.
    async fn message(&self, conversation: &str, email_subject: Option<&str>, text: &str) -> String {
        let data = self
            .app
            .data(
                &self.org.token,
                "mutation($input: SendMessageInput!) { sendMessage(input: $input) {
                   message { id } userErrors { field message } } }",
                json!({ "input": { "conversationId": conversation, "text": text,
                    "emailSubject": email_subject, "to": ["someone@example.test"] } }),
            )
            .await;
        assert_eq!(data["sendMessage"]["userErrors"], json!([]));
        data["sendMessage"]["message"]["id"]
            .as_str()
            .expect("message id")
            .to_string()
    }

    /// Runs a message mutation (`editMessage`, `redactMessage`, `removeMessage`).
    async fn message_action(&self, mutation: &str, input: Value) {
        let data = self
            .app
            .data(
                &self.org.token,
                &format!(
                    "mutation($input: {}Input!) {{ {mutation}(input: $input) {{ userErrors {{ message }} }} }}",
                    capitalized(mutation)
                ),
                json!({ "input": input }),
            )
            .await;
        assert_eq!(data[mutation]["userErrors"], json!([]), "{mutation}");
    }

    async fn note(&self, conversation: &str, body: &str) -> String {
        let now = Utc::now();
        let id = Uuid::now_v7();
        entity::note::ActiveModel {
            id: Set(id),
            org_id: Set(uuid_of(&self.org.org_id)),
            conversation_id: Set(uuid_of(conversation)),
            author_user_id: Set(Some(uuid_of(&self.org.owner_id))),
            body: Set(body.into()),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.app.state.db)
        .await
        .expect("insert note");
        gid("Note", id)
    }

    async fn gql(&self, query: &str, filter: Value) -> Value {
        self.app
            .gql(
                &self.org.token,
                SEARCH,
                json!({ "q": query, "filter": filter }),
            )
            .await
    }

    /// The results as `[{conversation id, highlights}]`, checking scores are positive and
    /// non-increasing.
    async fn search_with(&self, query: &str, filter: Value) -> Vec<Value> {
        let body = self.gql(query, filter).await;
        assert!(body.get("errors").is_none(), "{query}: {body}");
        let edges = body["data"]["searchConversations"]["edges"]
            .as_array()
            .expect("edges")
            .clone();
        let scores: Vec<f64> = edges
            .iter()
            .map(|e| e["node"]["score"].as_f64().expect("score"))
            .collect();
        assert!(scores.iter().all(|s| *s > 0.0), "{query}: {scores:?}");
        assert!(
            scores.windows(2).all(|w| w[0] >= w[1]),
            "{query}: {scores:?}"
        );
        edges
            .into_iter()
            .map(|e| {
                let node = &e["node"];
                let highlights: Vec<Value> = node["highlights"]
                    .as_array()
                    .expect("highlights")
                    .iter()
                    .map(|h| {
                        let mut h = h.as_object().expect("highlight").clone();
                        h.retain(|_, v| !v.is_null());
                        Value::Object(h)
                    })
                    .collect();
                json!({ "id": node["conversation"]["id"], "highlights": highlights })
            })
            .collect()
    }

    async fn search(&self, query: &str) -> Vec<Value> {
        self.search_with(query, Value::Null).await
    }

    /// Just the conversation ids found.
    async fn ids(&self, query: &str) -> Vec<String> {
        self.search(query)
            .await
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_string())
            .collect()
    }

    async fn ids_with(&self, query: &str, filter: Value) -> Vec<String> {
        self.search_with(query, filter)
            .await
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_string())
            .collect()
    }
}

fn capitalized(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn snippet(source: &str, text: &str) -> Value {
    json!({ "source": source, "snippet": text })
}

fn with(mut highlight: Value, key: &str, id: &str) -> Value {
    highlight[key] = json!({ "id": id });
    highlight
}

#[tokio::test]
async fn every_source_matches_with_an_exactly_highlighted_escaped_snippet() {
    let app = TestApp::spawn().await;
    let inbox = Inbox::new(&app, &app.org).await;
    let ann = inbox
        .contact(
            json!({ "displayName": "Ann Smith", "firstName": "Ann", "lastName": "Smith",
            "email": "ann@example.com", "additionalEmails": ["ann.smith@work.test"],
            "phone": "+4520123456" }),
        )
        .await;
    let conversation = inbox
        .conversation(
            &ann,
            Some("Broken kettle"),
            "The toaster <b>stopped</b> working & smells",
        )
        .await;
    let first_message = entity::message::Entity::find()
        .one(&app.state.db)
        .await
        .expect("query")
        .expect("first message");
    let first_message = gid("Message", first_message.id);
    let reply = inbox
        .message(
            &conversation,
            Some("Re: order 1234"),
            "Replacement shipped today",
        )
        .await;
    let note = inbox
        .note(
            &conversation,
            "Customer is a VIP: offer a \"replacement\" it's fine",
        )
        .await;

    let only = |highlight: Value| vec![json!({ "id": conversation, "highlights": [highlight] })];
    assert_eq!(
        inbox.search("kettle").await,
        only(snippet("SUBJECT", "Broken <em>kettle</em>"))
    );
    assert_eq!(
        inbox.search("STOPPED").await,
        only(with(
            snippet(
                "MESSAGE",
                "The toaster &lt;b&gt;<em>stopped</em>&lt;/b&gt; working &amp; smells"
            ),
            "message",
            &first_message
        ))
    );
    assert_eq!(
        inbox.search("shipped").await,
        only(with(
            snippet(
                "MESSAGE",
                "Re: order 1234 Replacement <em>shipped</em> today"
            ),
            "message",
            &reply
        ))
    );
    let mut note_highlight = snippet(
        "NOTE",
        "Customer is a <em>VIP</em>: offer a &quot;replacement&quot; it&#39;s fine",
    );
    note_highlight["noteId"] = json!(note);
    assert_eq!(inbox.search("vip").await, only(note_highlight));
    assert_eq!(
        inbox.search("smith").await,
        only(with(
            snippet(
                "CONTACT",
                "Ann <em>Smith</em> · ann@example.com · ann.<em>smith</em>@work.test · +4520123456"
            ),
            "contact",
            &ann
        ))
    );
    assert_eq!(
        inbox.search("ann@example.com").await,
        only(with(
            snippet(
                "CONTACT",
                "Ann Smith · <em>ann</em>@<em>example</em>.<em>com</em> · ann.smith@work.test · +4520123456"
            ),
            "contact",
            &ann
        ))
    );
    assert_eq!(
        inbox.search("+4520123456").await,
        only(with(
            snippet(
                "CONTACT",
                "Ann Smith · ann@example.com · ann.smith@work.test · +<em>4520123456</em>"
            ),
            "contact",
            &ann
        ))
    );

    // A word in several texts: one result, at most three highlights, best first (the shortest
    // text with the word wins on both backends).
    let results = inbox.search("replacement").await;
    assert_eq!(results.len(), 1);
    let sources: Vec<&str> = results[0]["highlights"]
        .as_array()
        .expect("highlights")
        .iter()
        .map(|h| h["source"].as_str().expect("source"))
        .collect();
    assert_eq!(sources, ["MESSAGE", "NOTE"]);
    inbox.note(&conversation, "replacement ordered").await;
    inbox.note(&conversation, "replacement arrived").await;
    let results = inbox.search("replacement").await;
    assert_eq!(results[0]["highlights"].as_array().map(Vec::len), Some(3));

    // Nothing found is an empty page.
    assert_eq!(inbox.search("dishwasher").await, Vec::<Value>::new());
}

#[tokio::test]
async fn words_are_exact_and_case_and_diacritics_do_not_matter() {
    let app = TestApp::spawn().await;
    let inbox = Inbox::new(&app, &app.org).await;
    let jose = inbox
        .contact(json!({ "firstName": "José", "lastName": "Müller" }))
        .await;
    let conversation = inbox
        .conversation(&jose, Some("Refunds requested"), "Crème brûlée à la carte")
        .await;
    let found = vec![conversation.clone()];

    // No stemming: a different form of the word is another word; a prefix finds both.
    assert!(inbox.ids("refund").await.is_empty());
    assert!(inbox.ids("requests").await.is_empty());
    assert_eq!(inbox.ids("refunds").await, found);
    assert_eq!(inbox.ids("REFUNDS").await, found);
    assert_eq!(
        inbox.search("refund* request*").await,
        vec![json!({ "id": conversation, "highlights": [
            snippet("SUBJECT", "<em>Refunds</em> <em>requested</em>")
        ] })]
    );
    // Diacritics fold both ways.
    assert_eq!(
        inbox.search("jose MULLER").await,
        vec![json!({ "id": conversation, "highlights": [
            with(snippet("CONTACT", "<em>José</em> <em>Müller</em>"), "contact", &jose)
        ] })]
    );
    assert_eq!(inbox.ids("JOSÉ").await, found);
    assert_eq!(
        inbox.search("creme brulee").await[0]["highlights"][0]["snippet"],
        json!("<em>Crème</em> <em>brûlée</em> à la carte")
    );
    assert_eq!(inbox.ids("crème").await, found);
    assert!(inbox.ids("brule").await.is_empty());
    // Symbols, emoji, other scripts and quotes in words are searched safely.
    for query in ["² ½ 日本語 🙂", "o'brien", "a\\b", "x:* & y", "'refunds'"] {
        let expected: &[&str] = if query == "'refunds'" {
            &[conversation.as_str()]
        } else {
            &[]
        };
        assert_eq!(inbox.ids(query).await, expected, "{query}");
    }
}

#[tokio::test]
async fn words_match_anywhere_in_a_conversation_with_phrases_or_prefixes_and_exclusions() {
    let app = TestApp::spawn().await;
    let inbox = Inbox::new(&app, &app.org).await;
    let ann = inbox.contact(json!({ "displayName": "Ann" })).await;
    let bob = inbox.contact(json!({ "displayName": "Bob" })).await;
    let carl = inbox.contact(json!({ "displayName": "Carl" })).await;
    let a = inbox
        .conversation(&ann, Some("Invoice for March"), "Payment received")
        .await;
    let b = inbox
        .conversation(
            &bob,
            Some("Invoice for April"),
            "Late delivery of the order",
        )
        .await;
    let c = inbox
        .conversation(&carl, Some("Delivery late"), "A spam offer")
        .await;
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };

    // Words in different texts of one conversation (subject and requester).
    assert_eq!(
        inbox.search("invoice ann").await,
        vec![json!({ "id": a, "highlights": [
            with(snippet("CONTACT", "<em>Ann</em>"), "contact", &ann),
            snippet("SUBJECT", "<em>Invoice</em> for March"),
        ] })]
    );
    assert_eq!(inbox.ids("invoice carl").await, Vec::<String>::new());
    // Equal relevance: the most recent conversation first.
    assert_eq!(inbox.ids("invoice").await, [b.clone(), a.clone()]);
    // A phrase needs its words in order, next to each other.
    assert_eq!(inbox.ids("\"late delivery\"").await, [b.as_str()]);
    assert_eq!(
        sorted(inbox.ids("late delivery").await),
        sorted(vec![b.clone(), c.clone()])
    );
    assert_eq!(
        sorted(inbox.ids("march OR april").await),
        sorted(vec![a.clone(), b.clone()])
    );
    assert_eq!(
        sorted(inbox.ids("deliv*").await),
        sorted(vec![b.clone(), c.clone()])
    );
    // Exclusions apply to the whole conversation, requester included.
    assert_eq!(inbox.ids("invoice -april").await, [a.as_str()]);
    assert_eq!(inbox.ids("invoice NOT bob").await, [a.as_str()]);
    assert_eq!(inbox.ids("late -\"spam offer\"").await, [b.as_str()]);
    // Operators and punctuation around words are ignored.
    assert_eq!(inbox.ids("(invoice AND march)").await, [a.as_str()]);
}

#[tokio::test]
async fn the_other_organizations_identical_text_is_never_found() {
    let app = TestApp::spawn().await;
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let acme = Inbox::new(&app, &app.org).await;
    let globex = Inbox::new(&app, &other).await;
    let mut found = Vec::new();
    let mut contacts = Vec::new();
    for inbox in [&acme, &globex] {
        let contact = inbox
            .contact(json!({ "displayName": "Zelda Quux", "email": "zelda@quux.test" }))
            .await;
        let conversation = inbox
            .conversation(&contact, Some("Wobbly turbine"), "Turbine wobbles")
            .await;
        inbox.note(&conversation, "turbine note").await;
        found.push(vec![conversation]);
        contacts.push(contact);
    }
    for query in ["turbine", "zelda", "quux.test", "wobbl*", "note"] {
        assert_eq!(acme.ids(query).await, found[0], "{query}");
        assert_eq!(globex.ids(query).await, found[1], "{query}");
    }
    // Naming the other organization's contact finds nothing rather than its conversations.
    assert!(
        acme.ids_with("turbine", json!({ "requesterId": contacts[1] }))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn subject_contact_message_and_note_changes_are_reflected_at_once() {
    let app = TestApp::spawn().await;
    let inbox = Inbox::new(&app, &app.org).await;
    let contact = inbox
        .contact(json!({ "displayName": "Olga Old", "email": "olga@old.test" }))
        .await;
    let conversation = inbox
        .conversation(&contact, Some("Printer jammed"), "Paper stuck")
        .await;
    let note = inbox.note(&conversation, "Check the tray").await;
    let found = vec![conversation.clone()];

    // The subject changes.
    let mut model = inbox.load(&conversation).await.into_active_model();
    model.subject = Set(Some("Scanner offline".into()));
    model.update(&app.state.db).await.expect("update subject");
    assert!(inbox.ids("printer").await.is_empty());
    assert_eq!(
        inbox.search("scanner").await[0]["highlights"],
        json!([snippet("SUBJECT", "<em>Scanner</em> offline")])
    );

    // The contact is renamed through the API.
    let data = app
        .data(
            &app.org.token,
            "mutation($input: UpdateContactInput!) { updateContact(input: $input) { userErrors { message } } }",
            json!({ "input": { "id": contact, "contact": {
                "displayName": "Olga New", "email": "olga@new.test", "additionalPhones": ["+4533445566"] } } }),
        )
        .await;
    assert_eq!(data["updateContact"]["userErrors"], json!([]));
    assert!(inbox.ids("old").await.is_empty());
    assert_eq!(
        inbox.search("new").await[0]["highlights"],
        json!([with(
            snippet(
                "CONTACT",
                "Olga <em>New</em> · olga@<em>new</em>.test · +4533445566"
            ),
            "contact",
            &contact
        )])
    );
    assert_eq!(inbox.ids("4533445566").await, found);

    // A note and a message are edited.
    let mut model = entity::note::Entity::find_by_id(uuid_of(&note))
        .one(&app.state.db)
        .await
        .expect("load note")
        .expect("note")
        .into_active_model();
    model.body = Set("Replace the drum".into());
    model.update(&app.state.db).await.expect("update note");
    assert!(inbox.ids("tray").await.is_empty());
    assert_eq!(inbox.ids("drum").await, found);
    let message = inbox.message(&conversation, None, "Cartridge low").await;
    assert_eq!(inbox.ids("cartridge").await, found);
    inbox
        .message_action(
            "editMessage",
            json!({ "messageId": message, "text": "Toner empty" }),
        )
        .await;
    assert!(inbox.ids("cartridge").await.is_empty());
    assert_eq!(inbox.ids("toner").await, found);
    // Unrelated writes (delivery status, last contact) leave the documents alone (an update of a
    // source re-indexes by replacing its document, which would change its id).
    let before = document_ids(&app).await;
    app.sql("UPDATE messages SET delivery_status = 'READ'")
        .await;
    app.sql("UPDATE contacts SET company = 'Acme'").await;
    app.sql("UPDATE conversations SET priority_rank = 3").await;
    assert_eq!(document_ids(&app).await, before);
    integrity_check(&app).await;
}

/// The ids of all documents, in order.
async fn document_ids(app: &TestApp) -> Vec<i64> {
    let db = &app.state.db;
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT id FROM search_documents ORDER BY id",
    ))
    .await
    .expect("document ids")
    .iter()
    .map(|row| row.try_get::<i64>("", "id").expect("id"))
    .collect()
}

/// FTS5's own check of the index against its content (SQLite only).
async fn integrity_check(app: &TestApp) {
    if app.state.db.get_database_backend() == DbBackend::Sqlite {
        app.sql("INSERT INTO search_fts (search_fts, rank) VALUES ('integrity-check', 1)")
            .await;
    }
}

#[tokio::test]
async fn removed_redacted_anonymized_and_deleted_content_leaves_the_index() {
    let app = TestApp::spawn().await;
    let inbox = Inbox::new(&app, &app.org).await;
    let contact = inbox
        .contact(json!({ "displayName": "Rita Private", "phone": "+4511223344" }))
        .await;
    let conversation = inbox
        .conversation(&contact, Some("Secret subject"), "Confidential opening")
        .await;
    let removable = inbox
        .message(&conversation, None, "Removable sentence")
        .await;
    let redactable = inbox
        .message(&conversation, None, "Redactable sentence")
        .await;
    let deletable = inbox
        .message(&conversation, None, "Deletable sentence")
        .await;
    inbox.note(&conversation, "Internal remark").await;
    let found = vec![conversation.clone()];
    for query in ["removable", "redactable", "deletable", "sentence"] {
        assert_eq!(inbox.ids(query).await, found, "{query}");
    }

    // Removal and redaction through the message actions.
    inbox
        .message_action("removeMessage", json!({ "messageId": removable }))
        .await;
    inbox
        .message_action("redactMessage", json!({ "messageId": redactable }))
        .await;
    let db = &app.state.db;
    assert!(inbox.ids("removable").await.is_empty());
    assert!(inbox.ids("redactable").await.is_empty());
    assert_eq!(
        inbox.search("sentence").await[0]["highlights"],
        json!([with(
            snippet("MESSAGE", "Deletable <em>sentence</em>"),
            "message",
            &deletable
        )])
    );
    // A deleted message row takes its document with it.
    entity::message::Entity::delete_by_id(uuid_of(&deletable))
        .exec(db)
        .await
        .expect("delete message");
    assert!(inbox.ids("sentence").await.is_empty());

    // Anonymizing the contact erases its names and phones, the subject, message bodies and the
    // notes of its conversations.
    let data = app
        .data(
            &app.org.token,
            "mutation($input: AnonymizeContactInput!) { anonymizeContact(input: $input) { userErrors { message } } }",
            json!({ "input": { "contactId": contact, "force": true } }),
        )
        .await;
    assert_eq!(data["anonymizeContact"]["userErrors"], json!([]));
    for query in [
        "rita",
        "private",
        "4511223344",
        "secret",
        "confidential",
        "remark",
    ] {
        assert!(inbox.ids(query).await.is_empty(), "{query}");
    }
    assert_eq!(app.count("search_documents").await, 0);

    // Deleting a conversation takes all its documents; its requester's stay.
    let other = inbox.contact(json!({ "displayName": "Otto" })).await;
    let deleted = inbox
        .conversation(&other, Some("Doomed subject"), "Doomed message")
        .await;
    inbox.note(&deleted, "Doomed note").await;
    assert_eq!(app.count("search_documents").await, 4);
    entity::conversation::Entity::delete_by_id(uuid_of(&deleted))
        .exec(db)
        .await
        .expect("delete conversation");
    assert_eq!(
        app.count("search_documents WHERE source = 'CONTACT'").await,
        1
    );
    assert_eq!(app.count("search_documents").await, 1);
    assert!(inbox.ids("doomed").await.is_empty());
    integrity_check(&app).await;
}

#[tokio::test]
async fn an_anonymized_conversation_keeps_only_its_requester_findable() {
    let app = TestApp::spawn().await;
    let inbox = Inbox::new(&app, &app.org).await;
    let contact = inbox
        .contact(json!({ "displayName": "Vera Visible" }))
        .await;
    let conversation = inbox
        .conversation(&contact, Some("Hidden subject"), "Hidden message")
        .await;
    inbox
        .message(&conversation, Some("Hidden mail"), "More")
        .await;
    inbox.note(&conversation, "Hidden note").await;
    assert_eq!(app.count("search_documents").await, 5);
    let data = app
        .data(
            &app.org.token,
            "mutation($input: AnonymizeConversationInput!) { anonymizeConversation(input: $input) { userErrors { message } } }",
            json!({ "input": { "conversationId": conversation, "force": true } }),
        )
        .await;
    assert_eq!(data["anonymizeConversation"]["userErrors"], json!([]));
    assert!(inbox.ids("hidden").await.is_empty());
    assert!(inbox.ids("more").await.is_empty());
    assert_eq!(
        app.count("search_documents WHERE source <> 'CONTACT'")
            .await,
        0
    );
    // The contact is not anonymized: their name still leads to their conversations.
    assert_eq!(inbox.ids("vera").await, [conversation.as_str()]);
    integrity_check(&app).await;
}

#[tokio::test]
async fn results_are_ranked_then_recent_first_and_paginate_with_cursors() {
    let app = TestApp::spawn().await;
    let inbox = Inbox::new(&app, &app.org).await;
    let contact = inbox.contact(json!({ "displayName": "Pat" })).await;
    let mut ids = Vec::new();
    for subject in [
        "kettle kettle kettle",
        "kettle kettle toaster",
        "kettle toaster toaster",
        "kettle toaster toaster",
        "kettle toaster toaster",
    ] {
        ids.push(inbox.conversation(&contact, Some(subject), "hello").await);
    }
    // More occurrences rank higher; equal relevance goes to the most recent.
    let expected = vec![
        ids[0].clone(),
        ids[1].clone(),
        ids[4].clone(),
        ids[3].clone(),
        ids[2].clone(),
    ];
    assert_eq!(inbox.ids("kettle").await, expected);

    let page = "query($q: String!, $first: Int, $after: String) {
      searchConversations(query: $q, first: $first, after: $after) {
        totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        nodes { conversation { id } } } }";
    let mut after = Value::Null;
    let mut seen = Vec::new();
    for (size, next, previous) in [(2, true, false), (2, true, true), (1, false, true)] {
        let data = app
            .data(
                &app.org.token,
                page,
                json!({ "q": "kettle", "first": 2, "after": after }),
            )
            .await;
        let connection = &data["searchConversations"];
        assert_eq!(connection["totalCount"], json!(5));
        let nodes = connection["nodes"].as_array().expect("nodes");
        assert_eq!(nodes.len(), size);
        assert_eq!(connection["pageInfo"]["hasNextPage"], json!(next));
        assert_eq!(connection["pageInfo"]["hasPreviousPage"], json!(previous));
        seen.extend(
            nodes
                .iter()
                .map(|n| n["conversation"]["id"].as_str().expect("id").to_string()),
        );
        after = connection["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, expected);

    // Cursors belong to their query; page sizes are 1-100.
    let cursor = after;
    let body = app
        .gql(
            &app.org.token,
            page,
            json!({ "q": "toaster", "after": cursor }),
        )
        .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"]);
    assert_eq!(
        body["errors"][0]["message"],
        json!(format!(
            "{} is not a cursor of this search",
            serde_json::to_string(&cursor).expect("json")
        ))
    );
    for first in [0, 101] {
        let body = app
            .gql(
                &app.org.token,
                page,
                json!({ "q": "kettle", "first": first }),
            )
            .await;
        assert_eq!(codes(&body), ["BAD_USER_INPUT"]);
        assert_eq!(
            body["errors"][0]["message"],
            json!(format!("page size must be between 1 and 100, got {first}"))
        );
    }
}

#[tokio::test]
async fn filters_narrow_the_conversations_searched() {
    let app = TestApp::spawn().await;
    let inbox = Inbox::new(&app, &app.org).await;
    let other_channel = Inbox::add_channel(&app, &app.org, "sales@acme.test").await;
    let ann = inbox.contact(json!({ "displayName": "Ann" })).await;
    let bob = inbox.contact(json!({ "displayName": "Bob" })).await;
    let a = inbox.conversation(&ann, Some("Umbrella"), "one").await;
    let b = inbox.conversation(&bob, Some("Umbrella"), "two").await;
    let c = inbox
        .conversation_on(&other_channel, &ann, Some("Umbrella"), "three")
        .await;
    let (agent, _) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let data = app
        .data(
            &app.org.token,
            "mutation($a: AssignConversationInput!, $c: CloseConversationInput!) {
               assignConversation(input: $a) { userErrors { message } }
               closeConversation(input: $c) { userErrors { message } } }",
            json!({ "a": { "conversationId": b, "userId": agent },
                    "c": { "conversationId": c } }),
        )
        .await;
    assert_eq!(data["assignConversation"]["userErrors"], json!([]));
    assert_eq!(data["closeConversation"]["userErrors"], json!([]));
    let created_b = inbox.load(&b).await.created_at;

    let cases = [
        (json!({}), vec![c.clone(), b.clone(), a.clone()]),
        (json!({ "status": ["CLOSED"] }), vec![c.clone()]),
        (
            json!({ "status": ["OPEN", "PENDING"] }),
            vec![b.clone(), a.clone()],
        ),
        (json!({ "channelId": other_channel }), vec![c.clone()]),
        (json!({ "requesterId": ann }), vec![c.clone(), a.clone()]),
        (json!({ "assigneeId": agent }), vec![b.clone()]),
        (
            json!({ "createdAfter": created_b }),
            vec![c.clone(), b.clone()],
        ),
        (json!({ "createdBefore": created_b }), vec![a.clone()]),
        (
            json!({ "requesterId": ann, "status": ["OPEN"] }),
            vec![a.clone()],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            inbox.ids_with("umbrella", filter.clone()).await,
            expected,
            "{filter}"
        );
    }
    // A contact's conversations are found by the contact's name through every filter.
    assert_eq!(
        inbox
            .ids_with("ann", json!({ "channelId": other_channel }))
            .await,
        [c.as_str()]
    );
    // An id of the wrong type is refused.
    let body = inbox.gql("umbrella", json!({ "channelId": ann })).await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"]);
    assert_eq!(
        body["errors"][0]["message"],
        json!("expected an id of a Channel, got an id of a Contact")
    );
}

/// An app whose background work (pending sweep, SQLite statistics) is off, so that the statements
/// a request runs can be counted.
async fn quiet_app() -> TestApp {
    TestApp::spawn_with(|config| {
        config.pending_sweep_seconds = 0;
        config.sqlite_analyze_minutes = 0;
    })
    .await
}

/// Statements a request runs (after a warm-up that records the token's use).
async fn statements_of_request(app: &TestApp, query: &str, variables: Value) -> (u64, Value) {
    app.statements_of(&app.org.token, "{ __typename }").await;
    let before = app.statements();
    let body = app.gql(&app.org.token, query, variables).await;
    (app.statements() - before, body)
}

#[tokio::test]
async fn overlong_and_wordless_queries_get_a_clear_error_and_run_nothing() {
    let app = quiet_app().await;
    let inbox = Inbox::new(&app, &app.org).await;
    let contact = inbox.contact(json!({ "displayName": "Ann" })).await;
    inbox.conversation(&contact, Some("Anything"), "and").await;
    let (baseline, _) = statements_of_request(&app, "{ __typename }", json!({})).await;
    let documents = app.count("search_documents").await;

    let long = "word ".repeat(2_000);
    assert_eq!(long.chars().count(), 10_000);
    for (query, message) in [
        (
            long.as_str(),
            "the search query is longer than 256 characters",
        ),
        (r#"AND OR NOT * " - ( )"#, "the search query has no words"),
        ("", "the search query has no words"),
        (
            "-spam",
            "the search query only excludes words: add a word to look for",
        ),
    ] {
        let (statements, body) = statements_of_request(&app, SEARCH, json!({ "q": query })).await;
        assert_eq!(
            body,
            json!({ "data": null, "errors": [{
                "message": message,
                "locations": [{ "line": 2, "column": 3 }],
                "path": ["searchConversations"],
                "extensions": { "code": "BAD_USER_INPUT" } }] }),
            "{query:.40}"
        );
        assert_eq!(statements, baseline, "no SQL ran for {query:.40}");
    }
    assert_eq!(app.count("search_documents").await, documents);
    // 256 characters are fine.
    let longest = format!("{} anything", "x".repeat(247));
    assert_eq!(longest.chars().count(), 256);
    assert!(inbox.ids(&longest).await.is_empty());
}

#[tokio::test]
async fn a_page_of_results_costs_the_same_statements_whatever_its_size() {
    let app = quiet_app().await;
    let inbox = Inbox::new(&app, &app.org).await;
    for i in 0..6 {
        let contact = inbox
            .contact(json!({ "displayName": format!("Walrus {i}") }))
            .await;
        let conversation = inbox
            .conversation(&contact, Some("Walrus sighting"), "a walrus")
            .await;
        inbox.note(&conversation, "walrus note").await;
    }
    let query = |first: u32| {
        format!(
            "{{ searchConversations(query: \"walrus\", first: {first}) {{ totalCount edges {{ cursor node {{
                conversation {{ id number subject }} score
                highlights {{ source snippet message {{ id text }} noteId contact {{ id name }} }} }} }} }} }}"
        )
    };
    let (one, data) = app.statements_of(&app.org.token, &query(1)).await;
    assert_eq!(
        data["searchConversations"]["edges"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let (six, data) = app.statements_of(&app.org.token, &query(6)).await;
    let edges = data["searchConversations"]["edges"]
        .as_array()
        .expect("edges");
    assert_eq!(edges.len(), 6);
    assert!(
        edges
            .iter()
            .all(|e| { e["node"]["highlights"].as_array().map(Vec::len) == Some(3) })
    );
    assert_eq!(one, six);
}

#[tokio::test]
async fn the_migration_indexes_rows_that_already_exist() {
    use migration::{Migrator, MigratorTrait};

    let app = TestApp::spawn().await;
    let inbox = Inbox::new(&app, &app.org).await;
    let contact = inbox
        .contact(json!({ "displayName": "Bertha Backfill", "additionalEmails": ["b@fill.test"] }))
        .await;
    let conversation = inbox
        .conversation(&contact, Some("Existing subject"), "Existing message")
        .await;
    inbox.note(&conversation, "Existing note").await;
    inbox
        .message(&conversation, Some("Mail subject"), "Second message")
        .await;
    let documents = app.count("search_documents").await;
    assert_eq!(documents, 5);

    // Undo the search migration (and any after it), then apply them again.
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    let position = names
        .iter()
        .position(|n| n == "m20261123_000010_search")
        .expect("search migration");
    let db = &app.state.db;
    Migrator::down(db, Some((names.len() - position) as u32))
        .await
        .expect("down");
    let gone = db
        .execute_unprepared("SELECT COUNT(*) FROM search_documents")
        .await;
    assert!(gone.is_err(), "the table is dropped");
    Migrator::up(db, None).await.expect("up");

    assert_eq!(app.count("search_documents").await, documents);
    assert_eq!(
        inbox.search("existing").await,
        // Equally good texts: the one indexed last first (the backfill goes subjects, messages,
        // notes).
        vec![json!({ "id": conversation, "highlights": [
            json!({ "source": "NOTE", "snippet": "<em>Existing</em> note",
                    "noteId": gid("Note", entity::note::Entity::find().one(db).await.expect("q").expect("n").id) }),
            with(snippet("MESSAGE", "<em>Existing</em> message"), "message",
                &gid("Message", entity::message::Entity::find().one(db).await.expect("q").expect("m").id)),
            snippet("SUBJECT", "<em>Existing</em> subject"),
        ] })]
    );
    assert_eq!(inbox.ids("fill.test").await, [conversation.as_str()]);
    assert_eq!(inbox.ids("\"mail subject\"").await, [conversation]);
    integrity_check(&app).await;
}
