//! Notes: add, bulk import with backdating and authors, list per conversation, change and
//! remove by the author or an admin, validation that writes nothing, tenancy, batching.

use serde_json::{Value, json};

use crate::channels::channel_id;
use crate::common::{TestApp, TestOrg, codes};

/// A contact and an inbound SMS conversation with it, created through the API as `org`'s owner;
/// returns the conversation's global id. Each call uses a new channel number `n`.
pub async fn conversation(app: &TestApp, org: &TestOrg, n: u32) -> String {
    let channel = channel_id(
        app,
        &org.token,
        json!({ "type": "SMS", "name": format!("Texts {n}"), "address": format!("+1415555{n:04}") }),
    )
    .await;
    let contact = app
        .data(
            &org.token,
            "mutation($input: ContactInput!) { createContact(input: $input) { contact { id } userErrors { message } } }",
            json!({ "input": { "displayName": format!("Contact {n}"), "phone": format!("+4520{n:06}") } }),
        )
        .await["createContact"]["contact"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let created = app
        .data(
            &org.token,
            "mutation($input: CreateConversationInput!) { createConversation(input: $input) { conversation { id } userErrors { field message code } } }",
            json!({ "input": { "channelId": channel, "requesterId": contact, "direction": "INBOUND", "message": { "text": "Hello" } } }),
        )
        .await;
    assert_eq!(
        created["createConversation"]["userErrors"],
        json!([]),
        "{created}"
    );
    created["createConversation"]["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

const ADD: &str = "mutation($input: AddNoteInput!) { addNote(input: $input) { note { id body author { email } conversation { id } } userErrors { field message code } } }";
const ADD_MANY: &str = "mutation($input: AddNotesInput!) { addNotes(input: $input) { succeeded failed userErrors { field message code } outcomes { index ok node { body createdAt author { email } } userErrors { field message code } } } }";
const LIST: &str = "query($id: ID!, $first: Int, $after: String, $direction: SortDirection) { conversation(id: $id) { notes(first: $first, after: $after, direction: $direction) { totalCount nodes { body } pageInfo { hasNextPage endCursor } } } }";

async fn add(app: &TestApp, token: &str, conversation: &str, body: &str) -> Value {
    app.data(
        token,
        ADD,
        json!({ "input": { "conversationId": conversation, "body": body } }),
    )
    .await["addNote"]
        .clone()
}

fn bodies(data: &Value) -> Vec<String> {
    data["conversation"]["notes"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["body"].as_str().unwrap().to_string())
        .collect()
}

fn error(field: &str, message: &str, code: &str) -> Value {
    let mut path = vec!["input".to_string()];
    path.extend(field.split('.').map(str::to_string));
    json!({ "field": path, "message": message, "code": code })
}

#[tokio::test]
async fn notes_are_added_and_listed_per_conversation() {
    let app = TestApp::spawn().await;
    let id = conversation(&app, &app.org, 1).await;
    let other = conversation(&app, &app.org, 2).await;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let added = add(
        &app,
        &agent,
        &id,
        "  Called back, waiting for the invoice.  ",
    )
    .await;
    let note_id = added["note"]["id"].clone();
    assert_eq!(
        added,
        json!({ "note": {
            "id": note_id, "body": "Called back, waiting for the invoice.",
            "author": { "email": "agent@acme.test" }, "conversation": { "id": id }
        }, "userErrors": [] })
    );
    for body in ["second", "third"] {
        add(&app, &agent, &id, body).await;
    }
    add(&app, &agent, &other, "elsewhere").await;
    let data = app.data(&agent, LIST, json!({ "id": id })).await;
    assert_eq!(
        bodies(&data),
        ["Called back, waiting for the invoice.", "second", "third"]
    );
    assert_eq!(data["conversation"]["notes"]["totalCount"], 3);
    let newest = app
        .data(
            &agent,
            LIST,
            json!({ "id": id, "direction": "DESC", "first": 2 }),
        )
        .await;
    assert_eq!(bodies(&newest), ["third", "second"]);
    let rest = app
        .data(
            &agent,
            LIST,
            json!({ "id": id, "direction": "DESC", "first": 2, "after": newest["conversation"]["notes"]["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(bodies(&rest), ["Called back, waiting for the invoice."]);
    assert_eq!(
        rest["conversation"]["notes"]["pageInfo"]["hasNextPage"],
        false
    );
    let node = app
        .data(
            &agent,
            "query($id: ID!) { node(id: $id) { id ... on Note { body } } }",
            json!({ "id": note_id }),
        )
        .await;
    assert_eq!(
        node,
        json!({ "node": { "id": note_id, "body": "Called back, waiting for the invoice." } })
    );
    assert_eq!(
        app.count("events WHERE event_type = 'NOTE_ADDED' AND subject_type = 'Conversation'")
            .await,
        4
    );
    let payload = crate::channels::last_payload(&app, "NOTE_ADDED").await;
    assert_eq!(payload["backdated"], false);
    assert!(payload["noteId"].is_string());
}

#[tokio::test]
async fn bad_notes_get_clear_errors_and_write_nothing() {
    let app = TestApp::spawn().await;
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let id = conversation(&app, &app.org, 1).await;
    let theirs = conversation(&app, &other, 1).await;
    let (notes, events) = (app.count("notes").await, app.count("events").await);
    let cases = [
        (
            json!({ "conversationId": id, "body": "   " }),
            error("body", "body must not be empty", "REQUIRED"),
        ),
        (
            json!({ "conversationId": id, "body": "x".repeat(10_001) }),
            error("body", "body must be at most 10000 characters", "TOO_LONG"),
        ),
        (
            json!({ "conversationId": theirs, "body": "hi" }),
            error("conversationId", "no such conversation", "NOT_FOUND"),
        ),
        (
            json!({ "conversationId": app.org.owner_id, "body": "hi" }),
            error(
                "conversationId",
                "expected an id of a Conversation, got an id of a User",
                "INVALID",
            ),
        ),
    ];
    for (input, expected) in cases {
        let refused = app
            .data(&app.org.token, ADD, json!({ "input": input }))
            .await;
        assert_eq!(
            refused["addNote"],
            json!({ "note": null, "userErrors": [expected] })
        );
    }
    let bulk = app
        .data(
            &app.org.token,
            ADD_MANY,
            json!({ "input": { "conversationId": theirs, "notes": [{ "body": "x" }] } }),
        )
        .await;
    assert_eq!(
        bulk["addNotes"],
        json!({ "succeeded": 0, "failed": 0, "outcomes": [],
                "userErrors": [error("conversationId", "no such conversation", "NOT_FOUND")] })
    );
    let many: Vec<Value> = (0..1001).map(|_| json!({ "body": "x" })).collect();
    let bulk = app
        .data(
            &app.org.token,
            ADD_MANY,
            json!({ "input": { "conversationId": id, "notes": many } }),
        )
        .await;
    assert_eq!(
        bulk["addNotes"]["userErrors"],
        json!([error(
            "notes",
            "at most 1000 notes per call; got 1001",
            "TOO_LONG"
        )])
    );
    assert_eq!(app.count("notes").await, notes);
    assert_eq!(app.count("events").await, events);

    // An anonymized conversation takes no notes, and its notes cannot be edited.
    let earlier = add(&app, &app.org.token, &id, "before erasure").await["note"]["id"].clone();
    let notes = app.count("notes").await;
    let anonymized = app
        .data(
            &app.org.token,
            "mutation($id: ID!) { anonymizeConversation(input: { conversationId: $id, force: true }) { userErrors { message } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(anonymized["anonymizeConversation"]["userErrors"], json!([]));
    let refused = add(&app, &app.org.token, &id, "too late").await;
    assert_eq!(refused["userErrors"][0]["code"], "INVALID_STATE");
    let edited = app
        .data(
            &app.org.token,
            "mutation($id: ID!) { updateNote(input: { id: $id, body: \"restored\" }) { userErrors { field code } } }",
            json!({ "id": earlier }),
        )
        .await;
    assert_eq!(
        edited["updateNote"]["userErrors"],
        json!([{ "field": ["input", "id"], "code": "INVALID_STATE" }])
    );
    assert_eq!(app.count("notes WHERE body = 'restored'").await, 0);
    assert_eq!(app.count("notes").await, notes);
}

#[tokio::test]
async fn notes_are_imported_in_bulk_with_backdating_and_authors() {
    let app = TestApp::spawn().await;
    let id = conversation(&app, &app.org, 1).await;
    let (agent_id, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let (_, admin) = app.user_with_token("admin@acme.test", &["ADMIN"]).await;
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let before = app.count("events").await;
    let imported = app
        .data(
            &agent,
            ADD_MANY,
            json!({ "input": { "conversationId": id, "notes": [
                { "body": "from the old system", "createdAt": "2020-01-01T10:00:00Z" },
                { "body": "from the future", "createdAt": "2999-01-01T00:00:00Z" },
                { "body": "" },
                { "body": "ghost written", "authorId": app.org.owner_id },
                { "body": "mine", "authorId": agent_id },
                { "body": "bad author", "authorId": "bm90LWFuLWlk" },
                { "body": "now" }
            ] } }),
        )
        .await["addNotes"]
        .clone();
    let now_note = imported["outcomes"][6]["node"].clone();
    let mine = imported["outcomes"][4]["node"].clone();
    assert_eq!(
        imported,
        json!({
            "succeeded": 3, "failed": 4, "userErrors": [],
            "outcomes": [
                { "index": 0, "ok": true, "node": { "body": "from the old system", "createdAt": "2020-01-01T10:00:00+00:00", "author": { "email": "agent@acme.test" } }, "userErrors": [] },
                { "index": 1, "ok": false, "node": null, "userErrors": [error("notes.1.createdAt", "createdAt must not be in the future", "INVALID")] },
                { "index": 2, "ok": false, "node": null, "userErrors": [error("notes.2.body", "body must not be empty", "REQUIRED")] },
                { "index": 3, "ok": false, "node": null, "userErrors": [error("notes.3.authorId", "adding notes in another user's name needs the ADMIN role", "FORBIDDEN")] },
                { "index": 4, "ok": true, "node": mine, "userErrors": [] },
                { "index": 5, "ok": false, "node": null, "userErrors": [error("notes.5.authorId", "\"bm90LWFuLWlk\" is not a valid id", "INVALID")] },
                { "index": 6, "ok": true, "node": now_note, "userErrors": [] }
            ]
        })
    );
    assert_eq!(mine["author"]["email"], "agent@acme.test");
    assert_eq!(app.count("events").await, before + 3);
    // The backdated note keeps its date; its event is dated when it was imported.
    assert_eq!(
        app.count("events WHERE event_type = 'NOTE_ADDED' AND created_at < '2021-01-01'")
            .await,
        0
    );
    let backdated: Vec<Value> = crate::channels::payloads(&app, "NOTE_ADDED")
        .await
        .iter()
        .map(|p| p["backdated"].clone())
        .collect();
    assert_eq!(backdated, [true, false, false]);
    // An admin may write in other users' names, of the organization only.
    let by_admin = app
        .data(
            &admin,
            ADD_MANY,
            json!({ "input": { "conversationId": id, "notes": [
                { "body": "by the agent, imported", "authorId": agent_id, "createdAt": "2021-06-01T00:00:00Z" },
                { "body": "stranger", "authorId": other.owner_id }
            ] } }),
        )
        .await["addNotes"]
        .clone();
    assert_eq!(by_admin["succeeded"], 1);
    assert_eq!(
        by_admin["outcomes"][0]["node"]["author"],
        json!({ "email": "agent@acme.test" })
    );
    assert_eq!(
        by_admin["outcomes"][1]["userErrors"],
        json!([error("notes.1.authorId", "no such user", "NOT_FOUND")])
    );
    // Listed by their own dates.
    let data = app.data(&agent, LIST, json!({ "id": id })).await;
    assert_eq!(
        bodies(&data),
        [
            "from the old system",
            "by the agent, imported",
            "mine",
            "now"
        ]
    );
}

#[tokio::test]
async fn only_the_author_or_an_admin_changes_a_note() {
    let app = TestApp::spawn().await;
    let id = conversation(&app, &app.org, 1).await;
    let (_, author) = app.user_with_token("author@acme.test", &["AGENT"]).await;
    let (_, colleague) = app.user_with_token("colleague@acme.test", &["AGENT"]).await;
    let (_, admin) = app.user_with_token("admin@acme.test", &["ADMIN"]).await;
    let note = add(&app, &author, &id, "draft").await["note"]["id"].clone();
    let update = "mutation($input: UpdateNoteInput!) { updateNote(input: $input) { note { body } userErrors { field message code } } }";
    let remove = "mutation($id: ID!) { removeNote(input: { id: $id }) { removedNoteId userErrors { field message code } } }";
    let forbidden = error(
        "id",
        "only the note's author or an ADMIN may change it",
        "FORBIDDEN",
    );
    let events = app.count("events").await;
    assert_eq!(
        app.data(
            &colleague,
            update,
            json!({ "input": { "id": note, "body": "mine now" } })
        )
        .await["updateNote"],
        json!({ "note": null, "userErrors": [forbidden.clone()] })
    );
    assert_eq!(
        app.data(&colleague, remove, json!({ "id": note })).await["removeNote"],
        json!({ "removedNoteId": null, "userErrors": [forbidden] })
    );
    assert_eq!(
        app.data(
            &author,
            update,
            json!({ "input": { "id": note, "body": "" } })
        )
        .await["updateNote"]["userErrors"],
        json!([error("body", "body must not be empty", "REQUIRED")])
    );
    assert_eq!(app.count("events").await, events);
    assert_eq!(app.count("notes WHERE body = 'draft'").await, 1);
    assert_eq!(
        app.data(
            &author,
            update,
            json!({ "input": { "id": note, "body": "final" } })
        )
        .await["updateNote"],
        json!({ "note": { "body": "final" }, "userErrors": [] })
    );
    assert_eq!(
        app.data(
            &admin,
            update,
            json!({ "input": { "id": note, "body": "edited by admin" } })
        )
        .await["updateNote"],
        json!({ "note": { "body": "edited by admin" }, "userErrors": [] })
    );
    assert_eq!(
        app.data(&author, remove, json!({ "id": note })).await["removeNote"],
        json!({ "removedNoteId": note, "userErrors": [] })
    );
    assert_eq!(app.count("notes").await, 0);
    assert_eq!(
        app.data(&author, remove, json!({ "id": note })).await["removeNote"]["userErrors"],
        json!([error("id", "no such note", "NOT_FOUND")])
    );
    for (event, n) in [("NOTE_UPDATED", 2), ("NOTE_REMOVED", 1)] {
        assert_eq!(
            app.count(&format!(
                "events WHERE event_type = '{event}' AND subject_type = 'Conversation'"
            ))
            .await,
            n
        );
    }
}

#[tokio::test]
async fn another_organization_cannot_see_or_touch_notes() {
    let app = TestApp::spawn().await;
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let id = conversation(&app, &app.org, 1).await;
    let note = add(&app, &app.org.token, &id, "secret plan").await["note"]["id"].clone();
    let data = app
        .data(
            &other.token,
            "query($id: ID!, $note: ID!) { node(id: $note) { id } conversation(id: $id) { id } }",
            json!({ "id": id, "note": note }),
        )
        .await;
    assert_eq!(data, json!({ "node": null, "conversation": null }));
    let update = app
        .data(
            &other.token,
            "mutation($id: ID!) { updateNote(input: { id: $id, body: \"x\" }) { userErrors { code } } removeNote(input: { id: $id }) { userErrors { code } } }",
            json!({ "id": note }),
        )
        .await;
    assert_eq!(
        update,
        json!({ "updateNote": { "userErrors": [{ "code": "NOT_FOUND" }] }, "removeNote": { "userErrors": [{ "code": "NOT_FOUND" }] } })
    );
    assert_eq!(app.count("notes WHERE body = 'secret plan'").await, 1);
    // Unauthenticated callers get nothing.
    let (_, _, body) = app
        .post(None, json!({ "query": ADD, "variables": { "input": { "conversationId": id, "body": "x" } } }))
        .await;
    assert_eq!(codes(&body), ["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn a_page_of_notes_with_authors_costs_fixed_statements() {
    let app = TestApp::spawn().await;
    let id = conversation(&app, &app.org, 1).await;
    let mut tokens = Vec::new();
    for i in 0..5 {
        tokens.push(
            app.user_with_token(&format!("agent{i}@acme.test"), &["AGENT"])
                .await
                .1,
        );
    }
    let query = format!(
        "{{ conversation(id: \"{id}\") {{ notes(first: 100) {{ nodes {{ body author {{ email }} conversation {{ number }} }} }} }} }}"
    );
    let mut counts = Vec::new();
    for total in [5, 50] {
        while app.count("notes").await < total {
            let n = app.count("notes").await as usize;
            add(&app, &tokens[n % 5], &id, &format!("note {n}")).await;
        }
        let (statements, data) = app.statements_of(&app.org.token, &query).await;
        assert_eq!(
            data["conversation"]["notes"]["nodes"]
                .as_array()
                .unwrap()
                .len(),
            total as usize
        );
        counts.push(statements);
    }
    assert_eq!(counts[0], counts[1], "statements for 5 and 50 notes");
}
