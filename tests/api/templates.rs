//! Message templates: variants per channel type and locale, rendering with contact fields and
//! variables, placeholder and variable errors, archive; roles and tenancy.

use serde_json::{Value, json};

use crate::common::{TestApp, codes};
use crate::fixtures;

const CREATE: &str = "mutation($input: CreateTemplateInput!) { createTemplate(input: $input) { template { id name channelType locale subject text html variables archivedAt } userErrors { field message code } } }";
const UPDATE: &str = "mutation($input: UpdateTemplateInput!) { updateTemplate(input: $input) { template { name locale text variables } userErrors { field message code } } }";
const RENDER: &str = "query($input: RenderTemplateInput!) { renderTemplate(input: $input) { rendered { template { name channelType locale } subject text html } userErrors { field message code } } }";
const ARCHIVE: &str = "mutation($id: ID!) { archiveTemplate(input: { id: $id }) { template { name archivedAt } userErrors { field message code } } }";
const UNARCHIVE: &str = "mutation($id: ID!) { unarchiveTemplate(input: { id: $id }) { template { name archivedAt } userErrors { field message code } } }";

async fn create(app: &TestApp, token: &str, input: Value) -> Value {
    app.data(token, CREATE, json!({ "input": input })).await["createTemplate"].clone()
}

async fn created(app: &TestApp, token: &str, input: Value) -> String {
    let result = create(app, token, input).await;
    assert_eq!(result["userErrors"], json!([]), "{result}");
    result["template"]["id"].as_str().unwrap().to_string()
}

async fn render(app: &TestApp, token: &str, input: Value) -> Value {
    app.data(token, RENDER, json!({ "input": input })).await["renderTemplate"].clone()
}

/// The rendered text of a successful rendering, with the variant it used.
fn text(rendered: &Value) -> (String, Value) {
    assert_eq!(rendered["userErrors"], json!([]), "{rendered}");
    (
        rendered["rendered"]["text"].as_str().unwrap().to_string(),
        rendered["rendered"]["template"].clone(),
    )
}

#[tokio::test]
async fn variants_are_chosen_by_channel_type_and_locale_and_rendered_with_contact_fields() {
    let app = TestApp::spawn().await;
    let (_, lead) = app.user_with_token("lead@acme.test", &["TEAM_LEAD"]).await;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let fallback = create(
        &app,
        &lead,
        json!({ "name": "Welcome", "text": "Hello {{ contact.firstName | \"there\" }}, this is {{ organization.name }}." }),
    )
    .await;
    assert_eq!(
        fallback,
        json!({ "template": {
            "id": fallback["template"]["id"], "name": "Welcome", "channelType": null, "locale": null,
            "subject": null, "text": "Hello {{ contact.firstName | \"there\" }}, this is {{ organization.name }}.",
            "html": null, "variables": ["contact.firstName", "organization.name"], "archivedAt": null
        }, "userErrors": [] })
    );
    created(
        &app,
        &lead,
        json!({ "name": "welcome", "channelType": "SMS", "locale": "en", "text": "Hi {{contact.firstName}}! Reply STOP to opt out." }),
    )
    .await;
    created(
        &app,
        &lead,
        json!({ "name": "WELCOME", "channelType": "SMS", "locale": "es", "text": "¡Hola {{contact.firstName}}!" }),
    )
    .await;
    let email = created(
        &app,
        &lead,
        json!({ "name": "Welcome", "channelType": "EMAIL", "locale": "en-us",
                "subject": "Welcome to {{ organization.name }}", "text": "Hello {{ contact.name }}",
                "html": "<p>Hello {{ contact.name }}, from {{ agent.name }}</p>" }),
    )
    .await;
    let ada = fixtures::contact(
        &app,
        &lead,
        json!({ "firstName": "Ada", "lastName": "Lovelace", "phone": "+15550001111" }),
    )
    .await;

    // SMS in es-MX: the Spanish variant (by its language).
    let es = render(
        &app,
        &agent,
        json!({ "name": "welcome", "channelType": "SMS", "locale": "es-MX", "contactId": ada }),
    )
    .await;
    assert_eq!(
        text(&es),
        (
            "¡Hola Ada!".into(),
            json!({ "name": "WELCOME", "channelType": "SMS", "locale": "es" })
        )
    );
    let en = render(
        &app,
        &agent,
        json!({ "name": "Welcome", "channelType": "SMS", "locale": "en-GB", "contactId": ada }),
    )
    .await;
    assert_eq!(text(&en).0, "Hi Ada! Reply STOP to opt out.");
    // No SMS variant in French and none without locale: the variant for any channel.
    let fr = render(
        &app,
        &agent,
        json!({ "name": "welcome", "channelType": "SMS", "locale": "fr", "contactId": ada }),
    )
    .await;
    assert_eq!(
        text(&fr),
        (
            "Hello Ada, this is Acme.".into(),
            json!({ "name": "Welcome", "channelType": null, "locale": null })
        )
    );
    // Without a contact the default applies.
    let chat = render(
        &app,
        &agent,
        json!({ "name": "welcome", "channelType": "CHAT" }),
    )
    .await;
    assert_eq!(text(&chat).0, "Hello there, this is Acme.");
    // Email: subject and HTML too; the locale is stored canonically.
    let mail = render(
        &app,
        &agent,
        json!({ "name": "welcome", "channelType": "EMAIL", "locale": "en-US", "contactId": ada }),
    )
    .await;
    assert_eq!(
        mail,
        json!({ "rendered": {
            "template": { "name": "Welcome", "channelType": "EMAIL", "locale": "en-US" },
            "subject": "Welcome to Acme", "text": "Hello Ada Lovelace",
            "html": "<p>Hello Ada Lovelace, from agent</p>"
        }, "userErrors": [] })
    );
    // Given variables take precedence over the contact's.
    let by_id = render(
        &app,
        &agent,
        json!({ "id": email, "contactId": ada, "variables": { "contact": { "name": "Countess" }, "agent": { "name": "Grace" } } }),
    )
    .await;
    assert_eq!(
        by_id["rendered"]["html"],
        "<p>Hello Countess, from Grace</p>"
    );

    let list = app
        .data(
            &agent,
            "{ templates(filter: { name: \"WELCOME\" }) { totalCount nodes { channelType locale } } }",
            json!({}),
        )
        .await;
    assert_eq!(list["templates"]["totalCount"], 4);
    let search = app
        .data(
            &agent,
            "{ a: templates(filter: { search: \"ELCO\" }) { totalCount } b: templates(filter: { search: \"bye\" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        search,
        json!({ "a": { "totalCount": 4 }, "b": { "totalCount": 0 } })
    );
    let sms = app
        .data(
            &agent,
            "{ templates(filter: { channelType: SMS, locale: \"ES\" }) { nodes { text } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        sms,
        json!({ "templates": { "nodes": [{ "text": "¡Hola {{contact.firstName}}!" }] } })
    );
    let node = app
        .data(
            &agent,
            "query($id: ID!) { node(id: $id) { ... on Template { name variables } } }",
            json!({ "id": email }),
        )
        .await;
    assert_eq!(
        node,
        json!({ "node": { "name": "Welcome", "variables": ["organization.name", "contact.name", "agent.name"] } })
    );
    let changed = app
        .data(
            &lead,
            UPDATE,
            json!({ "input": { "id": email, "locale": null, "text": "Dear {{ contact.lastName }}" } }),
        )
        .await;
    assert_eq!(
        changed["updateTemplate"],
        json!({ "template": { "name": "Welcome", "locale": null, "text": "Dear {{ contact.lastName }}",
                "variables": ["organization.name", "contact.lastName", "contact.name", "agent.name"] },
                "userErrors": [] })
    );
}

#[tokio::test]
async fn bad_templates_get_user_errors_and_change_nothing() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let id = created(
        &app,
        owner,
        json!({ "name": "Reminder", "channelType": "SMS", "text": "See you {{ when }}" }),
    )
    .await;
    let templates = app.count("templates").await;
    let events = app.count("events").await;

    assert_eq!(
        create(
            &app,
            owner,
            json!({ "name": "Broken", "text": "Hi {{ contact.firstName,\nbye" })
        )
        .await,
        json!({ "template": null, "userErrors": [{ "field": ["input", "text"],
            "message": "text: unclosed placeholder `{{` at line 1, column 4", "code": "INVALID" }] })
    );
    assert_eq!(
        create(
            &app,
            owner,
            json!({ "name": "Odd", "text": "{{ }} and {{ 9lives }}" })
        )
        .await["userErrors"],
        json!([{ "field": ["input", "text"], "message": "text: empty placeholder `{{}}` at line 1, column 1", "code": "INVALID" }])
    );
    assert_eq!(
        create(
            &app,
            owner,
            json!({ "name": "reminder", "channelType": "SMS", "text": "again" })
        )
        .await["userErrors"],
        json!([{ "field": ["input", "name"], "message": "template \"reminder\" already has a variant for SMS and no locale", "code": "TAKEN" }])
    );
    assert_eq!(
        create(
            &app,
            owner,
            json!({ "name": " ", "channelType": "SMS", "locale": "english", "subject": "Hi", "text": "" })
        )
        .await["userErrors"],
        json!([
            { "field": ["input", "name"], "message": "name must not be empty", "code": "REQUIRED" },
            { "field": ["input", "locale"], "message": "\"english\" is not a locale such as en-US", "code": "INVALID" },
            { "field": ["input", "subject"], "message": "subject is only for email templates (or those for any channel)", "code": "INVALID" },
            { "field": ["input", "text"], "message": "text must not be empty", "code": "REQUIRED" }
        ])
    );
    let update = app
        .data(
            owner,
            UPDATE,
            json!({ "input": { "id": id, "text": "See you {{ when" } }),
        )
        .await;
    assert_eq!(
        update["updateTemplate"]["userErrors"],
        json!([{ "field": ["input", "text"], "message": "text: unclosed placeholder `{{` at line 1, column 9", "code": "INVALID" }])
    );
    let denied = app
        .gql(
            &agent,
            CREATE,
            json!({ "input": { "name": "Mine", "text": "hello" } }),
        )
        .await;
    assert_eq!(codes(&denied), ["FORBIDDEN"]);
    let denied = app.gql(&agent, ARCHIVE, json!({ "id": id })).await;
    assert_eq!(codes(&denied), ["FORBIDDEN"]);
    let not_archived = app.data(owner, UNARCHIVE, json!({ "id": id })).await;
    assert_eq!(
        not_archived["unarchiveTemplate"],
        json!({ "template": null, "userErrors": [{ "field": ["input", "id"], "message": "template is not archived", "code": "INVALID_STATE" }] })
    );

    assert_eq!(app.count("templates").await, templates);
    assert_eq!(app.count("events").await, events);
    let stored = app
        .data(
            owner,
            "query($id: ID!) { template(id: $id) { text } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        stored,
        json!({ "template": { "text": "See you {{ when }}" } })
    );
    // Another organization sees none of it.
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let theirs = app
        .data(
            &other.token,
            "query($id: ID!) { template(id: $id) { text } templates { totalCount } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        theirs,
        json!({ "template": null, "templates": { "totalCount": 0 } })
    );
    assert_eq!(
        render(&app, &other.token, json!({ "id": id })).await,
        json!({ "rendered": null, "userErrors": [{ "field": ["input", "id"], "message": "no such template", "code": "NOT_FOUND" }] })
    );
}

#[tokio::test]
async fn rendering_names_each_missing_variable_and_archived_variants_are_not_chosen() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let id = created(
        &app,
        owner,
        json!({ "name": "Order", "channelType": "SMS",
                "text": "Order {{ order.id }} for {{ contact.firstName }}: {{ status }} ({{ status }})" }),
    )
    .await;
    assert_eq!(
        render(
            &app,
            owner,
            json!({ "name": "order", "channelType": "SMS", "variables": { "order": { "id": 7 } } })
        )
        .await,
        json!({ "rendered": null, "userErrors": [
            { "field": ["input", "variables", "contact", "firstName"], "message": "missing variable `contact.firstName` (in the text)", "code": "REQUIRED" },
            { "field": ["input", "variables", "status"], "message": "missing variable `status` (in the text)", "code": "REQUIRED" }
        ] })
    );
    assert_eq!(
        render(&app, owner, json!({ "id": id, "variables": { "order": { "id": 7 }, "contact": { "firstName": "Ada" }, "status": { "code": 1 } } })).await["userErrors"],
        json!([{ "field": ["input", "variables", "status"], "message": "variable `status` is not a text, number or boolean (in the text)", "code": "INVALID" }])
    );
    assert_eq!(
        render(&app, owner, json!({ "id": id, "variables": [1, 2] })).await["userErrors"],
        json!([{ "field": ["input", "variables"], "message": "variables must be a JSON object", "code": "INVALID" }])
    );
    assert_eq!(
        render(&app, owner, json!({ "channelType": "SMS" })).await["userErrors"],
        json!([{ "field": ["input", "id"], "message": "give either `id` or `name`", "code": "INVALID" }])
    );
    let ok = render(
        &app,
        owner,
        json!({ "id": id, "variables": { "order": { "id": "A-7" }, "contact": { "firstName": "Ada" }, "status": "shipped" } }),
    )
    .await;
    assert_eq!(text(&ok).0, "Order A-7 for Ada: shipped (shipped)");

    // Archived: no longer chosen by name (still readable by id).
    let before = app.count("events").await;
    let archived = app.data(owner, ARCHIVE, json!({ "id": id })).await;
    assert_eq!(app.count("events").await, before + 1);
    assert_eq!(archived["archiveTemplate"]["userErrors"], json!([]));
    assert!(archived["archiveTemplate"]["template"]["archivedAt"].is_string());
    assert_eq!(
        render(
            &app,
            owner,
            json!({ "name": "Order", "channelType": "SMS" })
        )
        .await,
        json!({ "rendered": null, "userErrors": [{ "field": ["input", "name"], "message": "no template named \"Order\" for this channel type and locale", "code": "NOT_FOUND" }] })
    );
    let listed = app
        .data(
            owner,
            "{ active: templates { totalCount } archived: templates(filter: { archived: true }) { nodes { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed,
        json!({ "active": { "totalCount": 0 }, "archived": { "nodes": [{ "name": "Order" }] } })
    );
    let events = app.count("events").await;
    let again = app.data(owner, UNARCHIVE, json!({ "id": id })).await;
    assert_eq!(
        again["unarchiveTemplate"],
        json!({ "template": { "name": "Order", "archivedAt": null }, "userErrors": [] })
    );
    assert_eq!(app.count("events").await, events + 1);
    assert_eq!(
        text(&render(&app, owner, json!({ "name": "Order", "channelType": "SMS", "variables": { "order": { "id": 1 }, "contact": { "firstName": "B" }, "status": "new" } })).await).0,
        "Order 1 for B: new (new)"
    );
}
