//! Users: create, update, deactivate, reactivate, roles, listing, pagination, and the events they
//! write. Every refused input leaves the database unchanged.

use serde_json::{Value, json};

use crate::common::{TestApp, codes};

const CREATE: &str = "mutation($input: CreateUserInput!) {
  createUser(input: $input) {
    user { email displayName firstName lastName phone roles status timezone locale hasPassword additionalEmails }
    userErrors { field message code }
  }
}";

async fn create(app: &TestApp, token: &str, input: Value) -> Value {
    app.data(token, CREATE, json!({ "input": input })).await["createUser"].clone()
}

#[tokio::test]
async fn create_user_returns_the_user_and_records_an_event() {
    let app = TestApp::spawn().await;
    let events = app.count("events").await;
    let result = create(
        &app,
        &app.org.token,
        json!({
            "email": "Ann.Agent@Acme.test",
            "firstName": "Ann",
            "lastName": "Agent",
            "phone": "+4520123456",
            "roles": ["AGENT", "TEAM_LEAD"],
            "timezone": "Europe/Copenhagen",
            "locale": "da-DK",
            "additionalEmails": ["ann@home.test"],
            "password": "correct horse battery"
        }),
    )
    .await;
    assert_eq!(
        result,
        json!({
            "user": {
                "email": "ann.agent@acme.test",
                "displayName": "Ann Agent",
                "firstName": "Ann",
                "lastName": "Agent",
                "phone": "+4520123456",
                "roles": ["TEAM_LEAD", "AGENT"],
                "status": "ACTIVE",
                "timezone": "Europe/Copenhagen",
                "locale": "da-DK",
                "hasPassword": true,
                "additionalEmails": ["ann@home.test"]
            },
            "userErrors": []
        })
    );
    assert_eq!(app.count("users").await, 2);
    assert_eq!(app.count("events").await, events + 1);
}

#[tokio::test]
async fn bad_user_input_gets_user_errors_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let events = app.count("events").await;
    let cases = [
        (
            json!({ "email": "owner@acme.test" }),
            json!([{ "field": ["input", "email"], "message": "a user with email \"owner@acme.test\" exists", "code": "TAKEN" }]),
        ),
        (
            json!({ "email": "OWNER@ACME.TEST" }),
            json!([{ "field": ["input", "email"], "message": "a user with email \"owner@acme.test\" exists", "code": "TAKEN" }]),
        ),
        (
            json!({ "email": "not-an-email" }),
            json!([{ "field": ["input", "email"], "message": "\"not-an-email\" is not a valid email address", "code": "INVALID" }]),
        ),
        (
            json!({ "email": "tz@acme.test", "timezone": "Mars/Olympus_Mons" }),
            json!([{ "field": ["input", "timezone"], "message": "\"Mars/Olympus_Mons\" is not an IANA timezone", "code": "INVALID" }]),
        ),
        (
            json!({ "email": "bad", "phone": "12345", "password": "short" }),
            json!([
                { "field": ["input", "email"], "message": "\"bad\" is not a valid email address", "code": "INVALID" },
                { "field": ["input", "phone"], "message": "\"12345\" is not an E.164 phone number such as +14155550100", "code": "INVALID" },
                { "field": ["input", "password"], "message": "password must be at least 10 characters", "code": "TOO_SHORT" }
            ]),
        ),
    ];
    for (input, errors) in cases {
        let result = create(&app, &app.org.token, input.clone()).await;
        assert_eq!(
            result,
            json!({ "user": null, "userErrors": errors }),
            "input {input}"
        );
    }
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("events").await, events);
}

#[tokio::test]
async fn an_agent_cannot_call_admin_mutations() {
    let app = TestApp::spawn().await;
    let (agent_id, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let users = app.count("users").await;
    let events = app.count("events").await;
    let attempts = [
        (CREATE.to_string(), json!({ "input": { "email": "new@acme.test" } })),
        (
            "mutation($id: ID!) { setUserRoles(input: { id: $id, roles: [ADMIN] }) { user { id } } }".into(),
            json!({ "id": agent_id }),
        ),
        (
            "mutation($id: ID!) { deactivateUser(input: { id: $id }) { user { id } } }".into(),
            json!({ "id": app.org.owner_id }),
        ),
        (
            "mutation { updateOrganization(input: { name: \"Taken over\" }) { organization { name } } }".into(),
            json!({}),
        ),
        (
            "mutation($id: ID!) { updateUser(input: { id: $id, displayName: \"Boss\" }) { user { id } } }".into(),
            json!({ "id": app.org.owner_id }),
        ),
    ];
    for (query, variables) in attempts {
        let body = app.gql(&agent, &query, variables).await;
        assert_eq!(codes(&body), ["FORBIDDEN"], "{query}: {body}");
    }
    assert_eq!(app.count("users").await, users);
    assert_eq!(app.count("events").await, events);
    let name = app
        .data(&app.org.token, "{ organization { name } }", json!({}))
        .await;
    assert_eq!(name, json!({ "organization": { "name": "Acme" } }));
}

#[tokio::test]
async fn update_user_patches_only_given_fields_and_null_clears() {
    let app = TestApp::spawn().await;
    let (id, agent) = app.user_with_token("ann@acme.test", &["AGENT"]).await;
    let update = "mutation($input: UpdateUserInput!) {
      updateUser(input: $input) { user { displayName firstName phone timezone } userErrors { field code } }
    }";
    let first = app
        .data(
            &agent,
            update,
            json!({ "input": { "id": id, "firstName": "Ann", "phone": "+4520123456", "timezone": "UTC" } }),
        )
        .await;
    assert_eq!(
        first["updateUser"],
        json!({ "user": { "displayName": "ann", "firstName": "Ann", "phone": "+4520123456", "timezone": "UTC" }, "userErrors": [] })
    );
    let second = app
        .data(
            &agent,
            update,
            json!({ "input": { "id": id, "phone": null, "displayName": "Ann A." } }),
        )
        .await;
    assert_eq!(
        second["updateUser"],
        json!({ "user": { "displayName": "Ann A.", "firstName": "Ann", "phone": null, "timezone": "UTC" }, "userErrors": [] })
    );
    let taken = app
        .data(
            &agent,
            update,
            json!({ "input": { "id": id, "email": "owner@acme.test" } }),
        )
        .await;
    assert_eq!(
        taken["updateUser"],
        json!({ "user": null, "userErrors": [{ "field": ["input", "email"], "code": "TAKEN" }] })
    );
    let bad_tz = app
        .data(
            &agent,
            update,
            json!({ "input": { "id": id, "timezone": "Nowhere/Land", "firstName": "X" } }),
        )
        .await;
    assert_eq!(
        bad_tz["updateUser"],
        json!({ "user": null, "userErrors": [{ "field": ["input", "timezone"], "code": "INVALID" }] })
    );
    let unchanged = app
        .data(
            &agent,
            "query($id: ID!) { user(id: $id) { firstName timezone } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        unchanged,
        json!({ "user": { "firstName": "Ann", "timezone": "UTC" } })
    );
}

#[tokio::test]
async fn deactivation_blocks_tokens_and_reactivation_restores_them() {
    let app = TestApp::spawn().await;
    let (id, agent) = app.user_with_token("ann@acme.test", &["AGENT"]).await;
    let deactivate = "mutation($id: ID!) { deactivateUser(input: { id: $id }) { user { status deactivatedAt } userErrors { field message code } } }";
    let reactivate = "mutation($id: ID!) { reactivateUser(input: { id: $id }) { user { status deactivatedAt } userErrors { code } } }";
    let data = app
        .data(&app.org.token, deactivate, json!({ "id": id }))
        .await;
    assert_eq!(data["deactivateUser"]["user"]["status"], "DEACTIVATED");
    assert!(data["deactivateUser"]["user"]["deactivatedAt"].is_string());

    let (status, _, body) = app
        .post(
            Some(&agent),
            json!({ "query": "{ viewer { user { id } } }" }),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["message"], "user is deactivated");

    let again = app
        .data(&app.org.token, deactivate, json!({ "id": id }))
        .await;
    assert_eq!(
        again["deactivateUser"],
        json!({ "user": null, "userErrors": [{ "field": ["input", "id"], "message": "user is already deactivated", "code": "INVALID_STATE" }] })
    );

    let data = app
        .data(&app.org.token, reactivate, json!({ "id": id }))
        .await;
    assert_eq!(
        data["reactivateUser"],
        json!({ "user": { "status": "ACTIVE", "deactivatedAt": null }, "userErrors": [] })
    );
    let viewer = app
        .data(&agent, "{ viewer { user { id } } }", json!({}))
        .await;
    assert_eq!(viewer["viewer"]["user"]["id"], id);
}

#[tokio::test]
async fn owners_are_protected() {
    let app = TestApp::spawn().await;
    let (admin_id, admin) = app.user_with_token("admin@acme.test", &["ADMIN"]).await;
    let roles = "mutation($id: ID!, $roles: [Role!]!) { setUserRoles(input: { id: $id, roles: $roles }) { user { roles } userErrors { field message code } } }";
    let deactivate = "mutation($id: ID!) { deactivateUser(input: { id: $id }) { user { status } userErrors { field message code } } }";

    // An admin cannot grant OWNER, nor touch an owner.
    let body = app
        .gql(&admin, roles, json!({ "id": admin_id, "roles": ["OWNER"] }))
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"]);
    let body = app
        .gql(&admin, deactivate, json!({ "id": app.org.owner_id }))
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"]);

    // The owner cannot deactivate themself, nor drop the last OWNER role.
    let data = app
        .data(
            &app.org.token,
            deactivate,
            json!({ "id": app.org.owner_id }),
        )
        .await;
    assert_eq!(
        data["deactivateUser"]["userErrors"],
        json!([{ "field": ["input", "id"], "message": "you cannot deactivate yourself", "code": "INVALID_STATE" }])
    );
    let data = app
        .data(
            &app.org.token,
            roles,
            json!({ "id": app.org.owner_id, "roles": ["ADMIN"] }),
        )
        .await;
    assert_eq!(
        data["setUserRoles"]["userErrors"],
        json!([{ "field": ["input", "roles"], "message": "the last active owner must keep the OWNER role", "code": "INVALID_STATE" }])
    );
    let data = app
        .data(
            &app.org.token,
            roles,
            json!({ "id": admin_id, "roles": [] }),
        )
        .await;
    assert_eq!(
        data["setUserRoles"]["userErrors"],
        json!([{ "field": ["input", "roles"], "message": "a user needs at least one role", "code": "REQUIRED" }])
    );

    // With a second owner, the first may step down.
    let data = app
        .data(
            &app.org.token,
            roles,
            json!({ "id": admin_id, "roles": ["OWNER", "ADMIN"] }),
        )
        .await;
    assert_eq!(
        data["setUserRoles"],
        json!({ "user": { "roles": ["OWNER", "ADMIN"] }, "userErrors": [] })
    );
    let data = app
        .data(
            &app.org.token,
            roles,
            json!({ "id": app.org.owner_id, "roles": ["ADMIN"] }),
        )
        .await;
    assert_eq!(
        data["setUserRoles"],
        json!({ "user": { "roles": ["ADMIN"] }, "userErrors": [] })
    );
}

const LIST: &str = "query($filter: UserFilterInput, $order: UserOrder, $first: Int, $after: String, $last: Int, $before: String) {
  users(filter: $filter, orderBy: $order, first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { email } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}";

fn emails(data: &Value) -> Vec<String> {
    data["users"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["node"]["email"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn users_list_filters_orders_and_paginates() {
    let app = TestApp::spawn().await;
    for (email, name, roles) in [
        ("carol@acme.test", "Carol", json!(["AGENT"])),
        ("bob@acme.test", "Bob", json!(["ADMIN"])),
        ("dave@acme.test", "Dave", json!(["TEAM_LEAD", "AGENT"])),
        ("erin@acme.test", "Erin 100%_", json!(["AGENT"])),
    ] {
        let result = create(
            &app,
            &app.org.token,
            json!({ "email": email, "displayName": name, "roles": roles }),
        )
        .await;
        assert_eq!(result["userErrors"], json!([]));
    }
    let owner = &app.org.token;

    let all = app.data(owner, LIST, json!({ "first": 10 })).await;
    assert_eq!(
        emails(&all),
        [
            "owner@acme.test",
            "carol@acme.test",
            "bob@acme.test",
            "dave@acme.test",
            "erin@acme.test"
        ]
    );
    let by_name = app
        .data(
            owner,
            LIST,
            json!({ "order": { "field": "DISPLAY_NAME", "direction": "DESC" } }),
        )
        .await;
    assert_eq!(
        emails(&by_name),
        [
            "erin@acme.test",
            "dave@acme.test",
            "carol@acme.test",
            "bob@acme.test",
            "owner@acme.test"
        ]
    );
    let agents = app
        .data(owner, LIST, json!({ "filter": { "roles": ["AGENT"] } }))
        .await;
    assert_eq!(
        emails(&agents),
        ["carol@acme.test", "dave@acme.test", "erin@acme.test"]
    );
    let search = app
        .data(owner, LIST, json!({ "filter": { "search": "CAR" } }))
        .await;
    assert_eq!(emails(&search), ["carol@acme.test"]);
    let literal = app
        .data(owner, LIST, json!({ "filter": { "search": "0%_" } }))
        .await;
    assert_eq!(emails(&literal), ["erin@acme.test"]);

    // Forward pages of two, then back.
    let page1 = app.data(owner, LIST, json!({ "first": 2 })).await;
    assert_eq!(emails(&page1), ["owner@acme.test", "carol@acme.test"]);
    assert_eq!(page1["users"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(page1["users"]["pageInfo"]["hasPreviousPage"], false);
    let after = page1["users"]["pageInfo"]["endCursor"].clone();
    let page2 = app
        .data(owner, LIST, json!({ "first": 2, "after": after }))
        .await;
    assert_eq!(emails(&page2), ["bob@acme.test", "dave@acme.test"]);
    assert_eq!(page2["users"]["pageInfo"]["hasPreviousPage"], true);
    let after = page2["users"]["pageInfo"]["endCursor"].clone();
    let page3 = app
        .data(owner, LIST, json!({ "first": 2, "after": after }))
        .await;
    assert_eq!(emails(&page3), ["erin@acme.test"]);
    assert_eq!(page3["users"]["pageInfo"]["hasNextPage"], false);
    let before = page3["users"]["pageInfo"]["startCursor"].clone();
    let back = app
        .data(owner, LIST, json!({ "last": 3, "before": before }))
        .await;
    assert_eq!(
        emails(&back),
        ["carol@acme.test", "bob@acme.test", "dave@acme.test"]
    );
    assert_eq!(back["users"]["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(back["users"]["pageInfo"]["hasNextPage"], true);

    let counted = app
        .data(
            owner,
            "{ users(filter: { roles: [AGENT] }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(counted, json!({ "users": { "totalCount": 3 } }));
}

#[tokio::test]
async fn bad_page_sizes_and_cursors_are_refused() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    for (variables, message) in [
        (
            json!({ "first": 0 }),
            "page size must be between 1 and 100, got 0",
        ),
        (
            json!({ "first": 101 }),
            "page size must be between 1 and 100, got 101",
        ),
        (
            json!({ "last": -1 }),
            "page size must be between 1 and 100, got -1",
        ),
        (
            json!({ "first": 1, "last": 1 }),
            "pass either `first` or `last`, not both",
        ),
        (
            json!({ "after": "forged" }),
            "\"forged\" is not a cursor of this list",
        ),
    ] {
        let body = app.gql(owner, LIST, variables.clone()).await;
        assert_eq!(codes(&body), ["BAD_USER_INPUT"], "{variables}");
        assert_eq!(body["errors"][0]["message"], message);
        assert_eq!(body["data"], Value::Null);
    }
    // A cursor of another connection, and one of another ordering of this connection.
    let tokens = app
        .data(
            owner,
            "{ apiTokens(first: 1) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let foreign = tokens["apiTokens"]["pageInfo"]["endCursor"].clone();
    let body = app.gql(owner, LIST, json!({ "after": foreign })).await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"]);
    let by_email = app
        .data(owner, LIST, json!({ "order": { "field": "EMAIL" } }))
        .await;
    let email_cursor = by_email["users"]["pageInfo"]["endCursor"].clone();
    let body = app.gql(owner, LIST, json!({ "after": email_cursor })).await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"]);
}

#[tokio::test]
async fn ids_of_another_type_or_malformed_are_refused() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let update = "mutation($id: ID!) { updateUser(input: { id: $id, displayName: \"X\" }) { user { id } userErrors { field message code } } }";
    let data = app
        .data(owner, update, json!({ "id": app.org.org_id }))
        .await;
    assert_eq!(
        data["updateUser"],
        json!({ "user": null, "userErrors": [{ "field": ["input", "id"], "message": "expected an id of a User, got an id of a Organization", "code": "INVALID" }] })
    );
    let data = app.data(owner, update, json!({ "id": "garbage" })).await;
    assert_eq!(data["updateUser"]["userErrors"][0]["code"], "INVALID");
    let body = app
        .gql(
            owner,
            "query($id: ID!) { user(id: $id) { id } }",
            json!({ "id": app.org.org_id }),
        )
        .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"]);
    let node = app
        .data(
            owner,
            "query($id: ID!) { node(id: $id) { id ... on Organization { slug } } }",
            json!({ "id": app.org.org_id }),
        )
        .await;
    assert_eq!(
        node,
        json!({ "node": { "id": app.org.org_id, "slug": "acme" } })
    );
}

#[tokio::test]
async fn update_organization_validates_and_records() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let mutation = "mutation($input: UpdateOrganizationInput!) {
      updateOrganization(input: $input) {
        organization { name displayName timezone locale settings { defaultChannelTitle initialSmsMessage } }
        userErrors { field message code }
      }
    }";
    let events = app.count("events").await;
    let data = app
        .data(
            owner,
            mutation,
            json!({ "input": { "timezone": "Atlantis/Deep", "locale": "!!", "name": " " } }),
        )
        .await;
    assert_eq!(
        data["updateOrganization"],
        json!({ "organization": null, "userErrors": [
            { "field": ["input", "name"], "message": "name must not be empty", "code": "REQUIRED" },
            { "field": ["input", "timezone"], "message": "\"Atlantis/Deep\" is not an IANA timezone", "code": "INVALID" },
            { "field": ["input", "locale"], "message": "\"!!\" is not a locale such as en-US", "code": "INVALID" }
        ] })
    );
    assert_eq!(app.count("events").await, events);
    let data = app
        .data(
            owner,
            mutation,
            json!({ "input": { "name": "Acme Inc", "displayName": "Acme Support", "timezone": "America/New_York", "locale": "en-GB",
                    "settings": { "defaultChannelTitle": "Support", "initialSmsMessage": "Hi from Acme" } } }),
        )
        .await;
    assert_eq!(
        data["updateOrganization"],
        json!({ "organization": { "name": "Acme Inc", "displayName": "Acme Support", "timezone": "America/New_York", "locale": "en-GB",
                "settings": { "defaultChannelTitle": "Support", "initialSmsMessage": "Hi from Acme" } }, "userErrors": [] })
    );
    let data = app
        .data(
            owner,
            mutation,
            json!({ "input": { "displayName": null, "settings": { "initialSmsMessage": null } } }),
        )
        .await;
    assert_eq!(
        data["updateOrganization"]["organization"],
        json!({ "name": "Acme Inc", "displayName": "Acme Inc", "timezone": "America/New_York", "locale": "en-GB",
                "settings": { "defaultChannelTitle": "Support", "initialSmsMessage": null } })
    );
    assert_eq!(app.count("events").await, events + 2);
}

#[tokio::test]
async fn mutations_write_events_with_actor_subject_and_payload() {
    use sea_orm::{EntityTrait, QueryOrder};

    let app = TestApp::spawn().await;
    let (id, _) = app.user_with_token("ann@acme.test", &["AGENT"]).await;
    app.data(
        &app.org.token,
        "mutation($id: ID!) { setUserRoles(input: { id: $id, roles: [ADMIN] }) { userErrors { code } } }",
        json!({ "id": id }),
    )
    .await;
    let events = entity::event::Entity::find()
        .order_by_asc(entity::event::Column::Seq)
        .all(&app.state.db)
        .await
        .expect("events");
    let owner = events
        .iter()
        .find(|e| e.event_type == "ORGANIZATION_CREATED")
        .map(|e| e.org_id)
        .expect("ORGANIZATION_CREATED");
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| (e.event_type.clone(), e.subject_type.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            ("ORGANIZATION_CREATED", "Organization"),
            ("USER_CREATED", "User"),
            ("USER_CREATED", "User"),
            ("API_TOKEN_CREATED", "ApiToken"),
            ("USER_ROLES_CHANGED", "User"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert!(events.iter().all(|e| e.org_id == owner));
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    let last = events.last().expect("last event");
    let owner_user = switchboard::graphql::relay::decode_id(&app.org.owner_id, "User").ok();
    assert_eq!(last.actor_user_id, owner_user);
    assert_eq!(
        Some(last.subject_id),
        switchboard::graphql::relay::decode_id(&id, "User").ok()
    );
    assert_eq!(last.payload, json!({ "before": "AGENT", "after": "ADMIN" }));
}

#[tokio::test]
async fn statements_per_request_do_not_grow_with_the_page_size() {
    let app = TestApp::spawn().await;
    for i in 0..30 {
        let token = app
            .data(
                &app.org.token,
                "mutation($name: String!) { createApiToken(input: { name: $name }) { token } }",
                json!({ "name": format!("token {i}") }),
            )
            .await;
        assert!(token["createApiToken"]["token"].is_string());
    }
    let page = |n: usize| {
        format!(
            "{{ apiTokens(first: {n}) {{ nodes {{ name user {{ email }} createdBy {{ displayName }} }} }} \
               users(first: {n}) {{ nodes {{ email }} }} }}"
        )
    };
    let (small, data) = app.statements_of(&app.org.token, &page(2)).await;
    assert_eq!(data["apiTokens"]["nodes"].as_array().map(Vec::len), Some(2));
    let (large, data) = app.statements_of(&app.org.token, &page(30)).await;
    assert_eq!(
        data["apiTokens"]["nodes"].as_array().map(Vec::len),
        Some(30)
    );
    // Authentication, two pages and one batched user load.
    assert_eq!(small, 4);
    assert_eq!(large, small);
}
