//! Query limits: depth, aliases, root fields, complexity, execution timeout, rate limit and
//! introspection. Each limit is configurable, and every refused operation is shown not to have run.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::common::{TestApp, codes};

/// One `createUser` field, optionally aliased.
fn create_field(alias: Option<&str>, email: &str, selection: &str) -> String {
    let alias = alias.map(|a| format!("{a}: ")).unwrap_or_default();
    format!(r#"{alias}createUser(input: {{email: "{email}"}}) {{ {selection} }}"#)
}

/// A mutation creating `n` users with aliased `createUser` fields.
fn aliased_creates(n: usize) -> String {
    let fields: Vec<String> = (0..n)
        .map(|i| {
            create_field(
                Some(&format!("u{i}")),
                &format!("u{i}@acme.test"),
                "user { id }",
            )
        })
        .collect();
    format!("mutation {{ {} }}", fields.join(" "))
}

/// `a { a { … id } }`: `depth` levels of `a` around `id`, so `depth + 1` fields deep.
fn nested(depth: usize) -> String {
    format!("{}id{}", "a { ".repeat(depth), " }".repeat(depth))
}

/// `mutation { createUser(…) { user { a { … id } } } }`, `depth` fields deep.
fn deep_create(depth: usize) -> String {
    format!(
        "mutation {{ {} }}",
        create_field(
            None,
            "deep@acme.test",
            &format!("user {{ {} }}", nested(depth - 3))
        )
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<missing>")
}

fn too_complex(message: &str) -> Value {
    json!({
        "data": null,
        "errors": [{ "message": message, "extensions": { "code": "QUERY_TOO_COMPLEX" } }],
    })
}

async fn post_accepting(app: &TestApp, accept: &str, body: Value) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&app.org.token)
        .header("accept", accept)
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test]
async fn a_200_deep_query_is_refused_as_too_complex() {
    let app = TestApp::spawn().await;
    let query = format!("{{ viewer {{ user {{ {} }} }} }}", nested(198));
    let expected = too_complex("query is nested deeper than the limit of 12");
    let (status, _, body) = app
        .post(Some(&app.org.token), json!({ "query": query }))
        .await;
    assert_eq!((status, body), (StatusCode::OK, expected.clone()));
    let (status, body) = post_accepting(
        &app,
        "application/graphql-response+json",
        json!({ "query": query }),
    )
    .await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, expected));
}

#[tokio::test]
async fn a_thousand_deep_query_is_refused_as_too_complex() {
    // Deep enough for the parser to run out of stack rather than hit its recursion limit.
    let app = TestApp::spawn().await;
    let query = format!("{{ viewer {{ user {{ {} }} }} }}", nested(998));
    let (status, _, body) = app
        .post(Some(&app.org.token), json!({ "query": query }))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            too_complex("query is nested deeper than the limit of 12")
        )
    );
}

#[tokio::test]
async fn a_deeply_nested_mutation_is_refused_and_does_not_run() {
    let app = TestApp::spawn().await;
    let events = app.count("events").await;
    for (depth, message) in [
        (13, "query is nested 13 levels deep; the limit is 12"),
        (50, "query is nested 50 levels deep; the limit is 12"),
        // Past its parser's recursion limit (64) as well.
        (200, "query is nested deeper than the limit of 12"),
    ] {
        let (status, _, body) = app
            .post(Some(&app.org.token), json!({ "query": deep_create(depth) }))
            .await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, too_complex(message)),
            "depth {depth}"
        );
    }
    // Depth counts through fragments.
    let fragments = format!(
        "mutation {{ createUser(input: {{email: \"deep@acme.test\"}}) {{ ...P }} }} \
         fragment P on UserPayload {{ user {{ ...U }} }} fragment U on User {{ {} }}",
        nested(10)
    );
    let (status, _, body) = app
        .post(Some(&app.org.token), json!({ "query": fragments }))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            too_complex("query is nested 13 levels deep; the limit is 12")
        )
    );
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("events").await, events);
}

#[tokio::test]
async fn max_depth_is_configurable() {
    let mutation = format!(
        "mutation {{ {} }}",
        create_field(None, "d@acme.test", "user { email }")
    );
    // Three levels: createUser, user, email.
    let app = TestApp::spawn_with(|c| c.max_depth = 2).await;
    let (status, _, body) = app
        .post(Some(&app.org.token), json!({ "query": mutation }))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            too_complex("query is nested 3 levels deep; the limit is 2")
        )
    );
    assert_eq!(app.count("users").await, 1);

    let app = TestApp::spawn_with(|c| c.max_depth = 3).await;
    let data = app.data(&app.org.token, &mutation, json!({})).await;
    assert_eq!(
        data,
        json!({ "createUser": { "user": { "email": "d@acme.test" } } })
    );
    assert_eq!(app.count("users").await, 2);
}

#[tokio::test]
async fn a_thousand_aliases_are_refused_and_do_not_run() {
    let app = TestApp::spawn().await;
    let events = app.count("events").await;
    let (status, _, body) = app
        .post(
            Some(&app.org.token),
            json!({ "query": aliased_creates(1000) }),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            too_complex("query uses 1000 aliases; the limit is 50")
        )
    );
    // Aliases inside fragments count too.
    let fields: Vec<String> = (0..51).map(|i| format!("a{i}: roles")).collect();
    let query = format!(
        "{{ viewer {{ ...F }} }} fragment F on Viewer {{ {} }}",
        fields.join(" ")
    );
    let (status, _, body) = app
        .post(Some(&app.org.token), json!({ "query": query }))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            too_complex("query uses 51 aliases; the limit is 50")
        )
    );
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("events").await, events);
}

#[tokio::test]
async fn max_aliases_is_configurable_and_exact() {
    let app = TestApp::spawn_with(|c| c.max_aliases = 3).await;
    let (status, _, body) = app
        .post(Some(&app.org.token), json!({ "query": aliased_creates(4) }))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            too_complex("query uses 4 aliases; the limit is 3")
        )
    );
    assert_eq!(app.count("users").await, 1);

    let data = app
        .data(&app.org.token, &aliased_creates(3), json!({}))
        .await;
    assert_eq!(data.as_object().map(|o| o.len()), Some(3), "{data}");
    assert_eq!(app.count("users").await, 4);
}

#[tokio::test]
async fn too_many_root_fields_are_refused_and_do_not_run() {
    let app = TestApp::spawn().await;
    let (status, _, body) = app
        .post(
            Some(&app.org.token),
            json!({ "query": aliased_creates(21) }),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            too_complex("operation selects 21 root fields; the limit is 20")
        )
    );
    assert_eq!(app.count("users").await, 1);

    let data = app
        .data(&app.org.token, &aliased_creates(20), json!({}))
        .await;
    assert_eq!(data.as_object().map(|o| o.len()), Some(20), "{data}");
    assert_eq!(app.count("users").await, 21);
}

#[tokio::test]
async fn max_root_fields_is_configurable() {
    let app = TestApp::spawn_with(|c| c.max_root_fields = 2).await;
    // Root fields are counted whether aliased or not.
    let (status, _, body) = app
        .post(
            Some(&app.org.token),
            json!({ "query": format!(
                "mutation {{ {} {} {} }}",
                create_field(None, "r0@acme.test", "user { id }"),
                create_field(Some("b"), "r1@acme.test", "user { id }"),
                create_field(Some("c"), "r2@acme.test", "user { id }"),
            ) }),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            too_complex("operation selects 3 root fields; the limit is 2")
        )
    );
    let (status, _, body) = app
        .post(
            Some(&app.org.token),
            json!({ "query": "{ viewer { roles } organization { name } users { totalCount } }" }),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            too_complex("operation selects 3 root fields; the limit is 2")
        )
    );
    assert_eq!(app.count("users").await, 1);

    let data = app
        .data(&app.org.token, &aliased_creates(2), json!({}))
        .await;
    assert_eq!(data.as_object().map(|o| o.len()), Some(2), "{data}");
    assert_eq!(app.count("users").await, 3);
}

const USERS_PAGE: &str = "{ users(first: 100) { edges { node { id email displayName } } } }";

#[tokio::test]
async fn complexity_counts_page_sizes() {
    // users(first: 100) costs 1 + 100 × (edges 1 + node (1 + 3 scalars)) = 501.
    let app = TestApp::spawn_with(|c| c.max_complexity = 500).await;
    let (status, _, body) = app
        .post(Some(&app.org.token), json!({ "query": USERS_PAGE }))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            too_complex("query costs 501; the limit is 500")
        )
    );
    let (status, body) = post_accepting(
        &app,
        "application/graphql-response+json",
        json!({ "query": USERS_PAGE }),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            too_complex("query costs 501; the limit is 500")
        )
    );
    // The default page size is 20: 1 + 20 × 5 = 101.
    let data = app
        .data(
            &app.org.token,
            "{ users { edges { node { id email displayName } } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["users"]["edges"].as_array().map(Vec::len), Some(1));
    // A page size from a variable counts as well.
    let (status, _, body) = app
        .post(
            Some(&app.org.token),
            json!({
                "query": "query($n: Int) { users(first: $n) { edges { node { id email displayName } } } }",
                "variables": { "n": 100 },
            }),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            too_complex("query costs 501; the limit is 500")
        )
    );

    let app = TestApp::spawn_with(|c| c.max_complexity = 501).await;
    let data = app.data(&app.org.token, USERS_PAGE, json!({})).await;
    assert_eq!(
        data,
        json!({ "users": { "edges": [{ "node": {
            "id": app.org.owner_id, "email": "owner@acme.test", "displayName": "Acme Owner",
        } }] } })
    );

    // With the default limit (20,000) it runs too.
    let app = TestApp::spawn().await;
    let data = app.data(&app.org.token, USERS_PAGE, json!({})).await;
    assert_eq!(data["users"]["edges"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn an_over_complex_mutation_does_not_run() {
    // createUser (1) + user (1 + 3 scalars) = 5.
    let mutation = format!(
        "mutation {{ {} }}",
        create_field(None, "c@acme.test", "user { id email displayName }")
    );
    let app = TestApp::spawn_with(|c| c.max_complexity = 4).await;
    let events = app.count("events").await;
    let (status, _, body) = app
        .post(Some(&app.org.token), json!({ "query": mutation }))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, too_complex("query costs 5; the limit is 4"))
    );
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("events").await, events);

    let app = TestApp::spawn().await;
    let data = app.data(&app.org.token, &mutation, json!({})).await;
    assert_eq!(data["createUser"]["user"]["email"], "c@acme.test");
    assert_eq!(app.count("users").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_timeout_stops_a_query_and_never_cuts_a_mutation_short() {
    let app = TestApp::spawn_with(|c| c.execution_timeout_ms = 1).await;
    // A query past the timeout is stopped: the full introspection of this schema (hundreds of
    // types) takes well over a millisecond.
    let introspection = "{ __schema { types { name description fields { name description args { name description type { name kind ofType { name kind } } } type { name kind ofType { name kind ofType { name } } } } inputFields { name type { name kind } } enumValues { name description } } } }";
    let (status, _, body) = app
        .post(Some(&app.org.token), json!({ "query": introspection }))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({
                "data": null,
                "errors": [{
                    "message": "the operation took longer than the execution timeout",
                    "extensions": { "code": "TIMEOUT" },
                }],
            })
        )
    );
    // A mutation is not cut short, whatever the timeout: one that committed is never answered as
    // failed. Hashing a password with argon2 takes tens of milliseconds, past the 1 ms timeout.
    let events = app.count("events").await;
    let (status, _, body) = app
        .post(
            Some(&app.org.token),
            json!({ "query": r#"mutation { createUser(input: {email: "slow@acme.test", password: "correct horse battery"}) { user { email } } }"# }),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({ "data": { "createUser": { "user": { "email": "slow@acme.test" } } } })
        )
    );
    assert_eq!(app.count("users").await, 2);
    assert_eq!(app.count("events").await, events + 1);
}

/// The rate-limit headers of a response.
fn rate(headers: &HeaderMap) -> (&str, &str) {
    (
        header(headers, "x-ratelimit-limit"),
        header(headers, "x-ratelimit-remaining"),
    )
}

/// Units of a 10-a-minute budget (one every 6 s) refilled at most since `start`.
fn refilled_since(start: std::time::Instant) -> u64 {
    start.elapsed().as_secs() / 6
}

#[tokio::test]
async fn rate_limit_spends_query_cost_per_token() {
    // 10 per minute refills one unit every 6 s: the remaining budget read below is exact when
    // the test takes less than 6 s, and otherwise higher by at most the units refilled since the
    // first request (measured). The refusals hold while it takes less than 18 s.
    let app = TestApp::spawn_with(|c| c.rate_limit_per_minute = 10).await;
    let token = app.org.token.clone();
    // A second token of the same owner, issued directly (every API call would spend the budget).
    let principal = switchboard::auth::authenticate(&app.state.db, &token)
        .await
        .map_err(|e| e.public_message())
        .expect("owner principal");
    let (_, other_token) = switchboard::tokens::service::issue(
        &app.state.db,
        &principal.user,
        switchboard::tokens::service::TokenKind::Api,
        "second",
        None,
        None,
    )
    .await
    .map_err(|e| e.public_message())
    .expect("second token");
    let events = app.count("events").await;
    // Before the budget is first spent (its refill starts then).
    let start = std::time::Instant::now();
    let remaining = |headers: &HeaderMap, spent_down_to: u64| {
        let (limit, remaining) = rate(headers);
        assert_eq!(limit, "10");
        let remaining: u64 = remaining.parse().expect("remaining");
        let most = (spent_down_to + refilled_since(start)).min(10);
        assert!(
            (spent_down_to..=most).contains(&remaining),
            "remaining {remaining}, expected {spent_down_to}..={most}"
        );
    };

    // viewer (1) + user (1) + id (1) = 3.
    let (status, headers, body) = app
        .post(
            Some(&token),
            json!({ "query": "{ viewer { user { id } } }" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(rate(&headers), ("10", "7"));

    // A refused operation spends nothing.
    let (status, headers, body) = app
        .post(Some(&token), json!({ "query": "{ viewer { nope } }" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(codes(&body), ["GRAPHQL_VALIDATION_FAILED"]);
    assert_eq!(rate(&headers), ("<missing>", "<missing>"));

    // users(first: 2) costs 1 + 2 × (edges 1 + node (1 + id 1)) = 7.
    let (status, headers, body) = app
        .post(
            Some(&token),
            json!({ "query": "{ users(first: 2) { edges { node { id } } } }" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    remaining(&headers, 0);

    // The budget is spent: the mutation (cost 3) is refused with 429 and does not run.
    let (status, headers, body) = app
        .post(
            Some(&token),
            json!({ "query": r#"mutation { createUser(input: {email: "late@acme.test"}) { user { id } } }"# }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    remaining(&headers, 0);
    let retry_after: u64 = header(&headers, "retry-after")
        .parse()
        .expect("Retry-After seconds");
    // Three units at one per 6 s, less what refilled since the budget was spent: 18 s less
    // the seconds since the first request at most (under one unit, 13..=18, when it ran fast).
    let soonest = 18_u64
        .saturating_sub(start.elapsed().as_secs() + 1)
        .clamp(1, 13);
    assert!(
        (soonest..=18).contains(&retry_after),
        "Retry-After: {retry_after}, expected {soonest}..=18"
    );
    assert_eq!(
        body,
        json!({
            "data": null,
            "errors": [{
                "message": format!("rate limit exceeded; retry after {retry_after} s"),
                "extensions": { "code": "RATE_LIMITED", "retryAfter": retry_after },
            }],
        })
    );
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("events").await, events);

    // Another token of the same user has its own budget.
    let (status, headers, body) = app
        .post(
            Some(&other_token),
            json!({ "query": r#"mutation { createUser(input: {email: "other@acme.test"}) { user { email } } }"# }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "data": { "createUser": { "user": { "email": "other@acme.test" } } } })
    );
    assert_eq!(rate(&headers), ("10", "7"));
    assert_eq!(app.count("users").await, 2);

    // The first token is still refused.
    let (status, _, body) = app
        .post(
            Some(&token),
            json!({ "query": "{ viewer { user { id } } }" }),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(codes(&body), ["RATE_LIMITED"]);
}

#[tokio::test]
async fn rate_limit_applies_to_every_operation_of_a_batch() {
    let app = TestApp::spawn_with(|c| c.rate_limit_per_minute = 10).await;
    let create = |email: &str| json!({ "query": format!("mutation {{ {} }}", create_field(None, email, "user { id }")) });
    // Each costs 3: the first three run (budget 10 → 1), the fourth is refused (while the batch
    // takes less than 12 s; what refilled meanwhile, one unit per 6 s, is measured).
    let start = std::time::Instant::now();
    let (status, headers, body) = app
        .post(
            Some(&app.org.token),
            json!([
                create("a@acme.test"),
                create("b@acme.test"),
                create("c@acme.test"),
                create("d@acme.test")
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let batch_codes: Vec<Vec<String>> = body.as_array().expect("array").iter().map(codes).collect();
    assert_eq!(
        batch_codes,
        [vec![], vec![], vec![], vec!["RATE_LIMITED".to_string()]]
    );
    let most = (1 + refilled_since(start)).min(10);
    let (limit, remaining) = rate(&headers);
    assert_eq!(limit, "10");
    let remaining: u64 = remaining.parse().expect("remaining");
    assert!(
        (1..=most).contains(&remaining),
        "remaining {remaining}, expected 1..={most}"
    );
    assert!(headers.get("retry-after").is_some());
    assert_eq!(app.count("users").await, 4);
}

/// The introspection query GraphiQL sends (graphql-js `getIntrospectionQuery` with
/// `specifiedByUrl`, `directiveIsRepeatable`, `schemaDescription` and `inputValueDeprecation`).
const INTROSPECTION_QUERY: &str = r#"
query IntrospectionQuery {
  __schema {
    description
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types {
      ...FullType
    }
    directives {
      name
      description
      isRepeatable
      locations
      args(includeDeprecated: true) {
        ...InputValue
      }
    }
  }
}

fragment FullType on __Type {
  kind
  name
  description
  specifiedByURL
  fields(includeDeprecated: true) {
    name
    description
    args(includeDeprecated: true) {
      ...InputValue
    }
    type {
      ...TypeRef
    }
    isDeprecated
    deprecationReason
  }
  inputFields(includeDeprecated: true) {
    ...InputValue
  }
  interfaces {
    ...TypeRef
  }
  enumValues(includeDeprecated: true) {
    name
    description
    isDeprecated
    deprecationReason
  }
  possibleTypes {
    ...TypeRef
  }
}

fragment InputValue on __InputValue {
  name
  description
  type { ...TypeRef }
  defaultValue
  isDeprecated
  deprecationReason
}

fragment TypeRef on __Type {
  kind
  name
  ofType {
    kind
    name
    ofType {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType {
                kind
                name
                ofType {
                  kind
                  name
                  ofType {
                    kind
                    name
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}
"#;

async fn assert_introspection_works(app: &TestApp) {
    let data = app
        .data(&app.org.token, INTROSPECTION_QUERY, json!({}))
        .await;
    let schema = &data["__schema"];
    assert_eq!(schema["queryType"], json!({ "name": "Query" }));
    assert_eq!(schema["mutationType"], json!({ "name": "Mutation" }));
    let types: Vec<&str> = schema["types"]
        .as_array()
        .expect("types")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for name in ["Query", "Mutation", "User", "CreateUserInput", "Node"] {
        assert!(types.contains(&name), "{name} missing from {types:?}");
    }
}

#[tokio::test]
async fn graphiql_introspection_works_under_default_limits() {
    let app = TestApp::spawn().await;
    assert_introspection_works(&app).await;
    // GraphiQL also sends it without a token.
    let (status, _, body) = app
        .post(None, json!({ "query": INTROSPECTION_QUERY }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn graphiql_introspection_works_with_a_small_max_depth() {
    let app = TestApp::spawn_with(|c| c.max_depth = 5).await;
    assert_introspection_works(&app).await;
    // The limit still holds for the rest of the query.
    let (status, _, body) = app
        .post(
            Some(&app.org.token),
            json!({ "query": format!("{{ viewer {{ user {{ {} }} }} }}", nested(4)) }),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            too_complex("query is nested 7 levels deep; the limit is 5")
        )
    );
}

#[tokio::test]
async fn introspection_can_be_turned_off_and_then_suggests_nothing() {
    let misspelled = json!({ "query": "{ viewr { user { id } } }" });

    let app = TestApp::spawn().await;
    let (status, _, body) = app.post(Some(&app.org.token), misspelled.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(codes(&body), ["GRAPHQL_VALIDATION_FAILED"]);
    assert_eq!(
        body["errors"][0]["message"],
        "Unknown field \"viewr\" on type \"Query\". Did you mean \"viewer\"?"
    );

    let app = TestApp::spawn_with(|c| c.introspection = false).await;
    let (status, _, body) = app.post(Some(&app.org.token), misspelled).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(codes(&body), ["GRAPHQL_VALIDATION_FAILED"]);
    assert_eq!(
        body["errors"][0]["message"],
        "Unknown field \"viewr\" on type \"Query\"."
    );

    // Introspection fields answer null: nothing of the schema is revealed.
    for (query, expected) in [
        (INTROSPECTION_QUERY, json!({ "data": { "__schema": null } })),
        (
            "{ __schema { queryType { name } } }",
            json!({ "data": { "__schema": null } }),
        ),
        (
            "{ __type(name: \"User\") { fields { name } } }",
            json!({ "data": { "__type": null } }),
        ),
    ] {
        let (status, _, body) = app
            .post(Some(&app.org.token), json!({ "query": query }))
            .await;
        assert_eq!((status, body), (StatusCode::OK, expected), "{query}");
    }
    // The API itself still answers.
    let data = app
        .data(&app.org.token, "{ viewer { roles } }", json!({}))
        .await;
    assert_eq!(data, json!({ "viewer": { "roles": ["OWNER"] } }));
}

#[tokio::test]
async fn aliases_inside_introspection_count() {
    let app = TestApp::spawn().await;
    let fields: Vec<String> = (0..51)
        .map(|i| format!("a{i}: types {{ name fields {{ name }} }}"))
        .collect();
    let query = format!("{{ __schema {{ {} }} }}", fields.join(" "));
    let (status, _, body) = app
        .post(Some(&app.org.token), json!({ "query": query }))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            too_complex("query uses 51 aliases; the limit is 50")
        )
    );
}

/// `{ <head> { ...F0 } }` where each of `n` fragments on `on` selects `field` and spreads the next
/// one twice: about 2^n fields once expanded, in a document of a few kilobytes.
fn fragment_bomb(head: &str, on: &str, field: &str, n: usize) -> String {
    let mut document = format!("{head} ");
    for i in 0..n {
        document.push_str(&format!(
            "fragment F{i} on {on} {{ {field} ...F{next} ...F{next} }} ",
            next = i + 1
        ));
    }
    document.push_str(&format!("fragment F{n} on {on} {{ {field} }}"));
    document
}

/// Runs `request` against a fresh app on a runtime of its own, so that a server stuck in CPU-bound
/// work (which no async timeout can interrupt) fails this test instead of hanging the test binary.
/// The guard is not a performance measure: a fixed server answers in milliseconds, the faulty one
/// needs about 2^35 steps.
fn answer_or_hang(query: String) -> Option<(StatusCode, Value, i64)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let app = TestApp::spawn().await;
            let (status, _, body) = app
                .post(Some(&app.org.token), json!({ "query": query }))
                .await;
            let users = app.count("users").await;
            let _ = tx.send((status, body, users));
        });
    });
    rx.recv_timeout(std::time::Duration::from_secs(120)).ok()
}

#[test]
fn fragment_bomb_is_refused_before_it_is_expanded() {
    let bomb = fragment_bomb(
        r#"mutation { createUser(input: {email: "bomb@acme.test"}) { ...F0 } }"#,
        "UserPayload",
        "user { id }",
        34,
    );
    assert!(bomb.len() < 4096, "{}", bomb.len());
    let (status, body, users) = answer_or_hang(bomb).expect("no answer to a 3 KB document");
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            too_complex("query expands to more than 5000 selections")
        )
    );
    assert_eq!(users, 1);
}

#[test]
fn fragment_bomb_inside_introspection_is_refused() {
    let bomb = fragment_bomb("{ __schema { queryType { ...F0 } } }", "__Type", "name", 34);
    let (status, body, _) = answer_or_hang(bomb).expect("no answer to a 2 KB document");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(codes(&body), ["QUERY_TOO_COMPLEX"], "{body}");
}

#[tokio::test]
async fn an_operation_costing_more_than_the_whole_budget_is_too_complex_and_spends_nothing() {
    let app = TestApp::spawn_with(|c| c.rate_limit_per_minute = 10).await;
    // 1 + 20 × (nodes 1 + email 1): the default page of 20 users, 41 > 10.
    let (status, _, body) = app
        .post(
            Some(&app.org.token),
            json!({ "query": "{ users { nodes { email } } }" }),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            too_complex("query costs 41, more than the rate limit of 10 per minute")
        )
    );
    let (status, headers, _) = app
        .post(
            Some(&app.org.token),
            json!({ "query": "{ viewer { roles } }" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header_value(&headers, "x-ratelimit-remaining"), "8");
}

fn header_value(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}
