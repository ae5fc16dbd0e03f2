//! GraphQL over HTTP: media types and `Accept` negotiation, status codes, malformed requests, GET,
//! GraphiQL, the body limit, batching and credentials. Every refused request that carries a
//! mutation is shown not to have run (the user count stays at Acme's one owner).

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{TestApp, codes};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// Creates `new@acme.test` when it runs.
const CREATE: &str =
    r#"mutation { createUser(input: {email: "new@acme.test"}) { user { email } } }"#;

/// What `CREATE` answers when it runs.
fn created() -> Value {
    json!({ "data": { "createUser": { "user": { "email": "new@acme.test" } } } })
}

fn create_user(email: &str) -> String {
    format!(r#"mutation {{ createUser(input: {{email: "{email}"}}) {{ user {{ email }} }} }}"#)
}

/// A request-level error body.
fn error(message: &str, code: &str) -> Value {
    json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, HeaderMap, Value) {
    let response = request.send().await.expect("send");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, value)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<missing>")
}

/// A POST to /graphql with the owner's token and a raw body of the given content type.
fn post_raw(
    app: &TestApp,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::RequestBuilder {
    app.client
        .post(app.url("/graphql"))
        .bearer_auth(&app.org.token)
        .header("content-type", content_type)
        .body(body)
}

/// A JSON POST to /graphql with the owner's token and the given `Accept`.
fn post_accepting(app: &TestApp, accept: &str, body: &Value) -> reqwest::RequestBuilder {
    app.client
        .post(app.url("/graphql"))
        .bearer_auth(&app.org.token)
        .header("accept", accept)
        .json(body)
}

/// One HTTP/1.1 exchange over a plain TCP stream, for requests reqwest cannot make (it always sends
/// `Accept`). Returns the status, the header block (lower-cased) and the body.
async fn raw_http(app: &TestApp, request: &str) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.expect("read");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test]
async fn post_with_json_runs_the_operation() {
    let app = TestApp::spawn().await;
    let (status, headers, body) = app
        .post(
            Some(&app.org.token),
            json!({ "query": "{ viewer { user { id email } } }" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), JSON);
    assert_eq!(
        body,
        json!({ "data": { "viewer": { "user": { "id": app.org.owner_id, "email": "owner@acme.test" } } } })
    );

    let (status, _, body) = app
        .post(Some(&app.org.token), json!({ "query": CREATE }))
        .await;
    assert_eq!((status, body), (StatusCode::OK, created()));
    assert_eq!(app.count("users").await, 2);
}

#[tokio::test]
async fn accept_header_picks_the_response_media_type() {
    let app = TestApp::spawn().await;
    let query = json!({ "query": "{ viewer { user { email } } }" });
    let expected = json!({ "data": { "viewer": { "user": { "email": "owner@acme.test" } } } });
    for (accept, media) in [
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (JSON, JSON),
        (
            "application/graphql-response+json; charset=utf-8",
            GRAPHQL_RESPONSE,
        ),
        (
            "text/html, application/graphql-response+json;q=0.9",
            GRAPHQL_RESPONSE,
        ),
        (
            "application/graphql-response+json;q=0, application/json",
            JSON,
        ),
        ("*/*", JSON),
        ("application/*", JSON),
        // Quality values decide; a tie goes to graphql-response+json.
        (
            "application/graphql-response+json;q=0.5, application/json;q=0.9",
            JSON,
        ),
        (
            "application/json, application/graphql-response+json",
            GRAPHQL_RESPONSE,
        ),
    ] {
        let (status, headers, body) = send(post_accepting(&app, accept, &query)).await;
        assert_eq!(status, StatusCode::OK, "Accept: {accept}");
        assert_eq!(header(&headers, "content-type"), media, "Accept: {accept}");
        assert_eq!(body, expected, "Accept: {accept}");
    }
}

#[tokio::test]
async fn no_accept_header_answers_application_json() {
    let app = TestApp::spawn().await;
    let body = json!({ "query": "{ viewer { user { email } } }" }).to_string();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        app.addr,
        app.org.token,
        body.len()
    );
    let (status, head, body) = raw_http(&app, &request).await;
    assert_eq!(status, 200);
    assert!(
        head.lines().any(|l| l == "content-type: application/json"),
        "{head}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON body"),
        json!({ "data": { "viewer": { "user": { "email": "owner@acme.test" } } } })
    );
}

#[tokio::test]
async fn unacceptable_accept_is_406_and_runs_nothing() {
    let app = TestApp::spawn().await;
    let refused = error(
        "this endpoint answers application/graphql-response+json or application/json",
        "NOT_ACCEPTABLE",
    );
    for accept in ["text/plain", "text/html", "application/json;q=0"] {
        let (status, _, body) =
            send(post_accepting(&app, accept, &json!({ "query": CREATE }))).await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "Accept: {accept}");
        assert_eq!(body, refused, "Accept: {accept}");
    }
    let (status, _, body) = send(
        app.client
            .get(app.url("/graphql"))
            .query(&[("query", "{ viewer { user { email } } }")])
            .bearer_auth(&app.org.token)
            .header("accept", "text/plain"),
    )
    .await;
    assert_eq!((status, body), (StatusCode::NOT_ACCEPTABLE, refused));
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn malformed_json_is_400_and_runs_nothing() {
    let app = TestApp::spawn().await;
    let complete = json!({ "query": CREATE }).to_string();
    let truncated = &complete[..complete.len() - 1];
    for raw in [
        truncated,
        "{'query': 'mutation { x }'}",
        "",
        "query=mutation",
    ] {
        let (status, headers, body) = send(post_raw(&app, JSON, raw.to_string())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "body {raw:?}");
        assert_eq!(header(&headers, "content-type"), JSON);
        assert_eq!(codes(&body), ["BAD_REQUEST"], "body {raw:?}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("the request body is not valid JSON: "),
            "{message}"
        );
    }
    assert_eq!(app.count("users").await, 1);
    // The same document, well-formed, runs.
    let (status, _, body) = send(post_raw(&app, JSON, complete)).await;
    assert_eq!((status, body), (StatusCode::OK, created()));
    assert_eq!(app.count("users").await, 2);
}

#[tokio::test]
async fn body_without_a_query_is_400() {
    let app = TestApp::spawn().await;
    for request in [
        json!({}),
        json!({ "variables": {} }),
        json!({ "operationName": "A" }),
        json!({ "query": "" }),
        json!({ "query": "   " }),
        json!({ "query": null }),
        json!({ "mutation": CREATE }),
    ] {
        let (status, _, body) = app.post(Some(&app.org.token), request.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request}");
        assert_eq!(
            body,
            error("the request has no `query`", "BAD_REQUEST"),
            "{request}"
        );
    }
    for request in [
        json!({ "query": ["{ viewer { roles } }"] }),
        json!({ "query": 1 }),
    ] {
        let (status, _, body) = app.post(Some(&app.org.token), request.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request}");
        assert_eq!(
            body,
            error("`query` must be a string", "BAD_REQUEST"),
            "{request}"
        );
    }
    for request in [json!(42), json!("{ viewer { roles } }"), json!(null)] {
        let (status, _, body) = app.post(Some(&app.org.token), request.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request}");
        assert_eq!(
            body,
            error("the request body must be a JSON object", "BAD_REQUEST"),
            "{request}"
        );
    }
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn variables_that_are_not_an_object_are_400_and_run_nothing() {
    let app = TestApp::spawn().await;
    let query =
        "mutation($email: String!) { createUser(input: {email: $email}) { user { email } } }";
    for variables in [
        json!(["new@acme.test"]),
        json!(r#"{"email":"new@acme.test"}"#),
        json!(1),
        json!(true),
    ] {
        let (status, _, body) = app
            .post(
                Some(&app.org.token),
                json!({ "query": query, "variables": variables }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{variables}");
        assert_eq!(
            body,
            error("`variables` must be an object", "BAD_REQUEST"),
            "{variables}"
        );
    }
    let (status, _, body) = app
        .post(
            Some(&app.org.token),
            json!({ "query": query, "operationName": 7, "variables": { "email": "new@acme.test" } }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        error("`operationName` must be a string", "BAD_REQUEST")
    );
    assert_eq!(app.count("users").await, 1);

    // With an object it runs.
    let (status, _, body) = app
        .post(
            Some(&app.org.token),
            json!({ "query": query, "variables": { "email": "new@acme.test" } }),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, created()));
    assert_eq!(app.count("users").await, 2);
}

#[tokio::test]
async fn non_json_content_types_are_415_and_run_nothing() {
    let app = TestApp::spawn().await;
    let body = json!({ "query": CREATE }).to_string();
    let refused = error(
        "send the request as application/json (or multipart/form-data with files)",
        "UNSUPPORTED_MEDIA_TYPE",
    );
    // multipart/form-data is the GraphQL multipart request spec (see attachments tests).
    for content_type in [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "application/graphql",
        "application/graphql-response+json",
    ] {
        let (status, _, answer) = send(post_raw(&app, content_type, body.clone())).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type}");
        assert_eq!(answer, refused, "{content_type}");
    }
    // Form-encoded, as an HTML form (a CSRF vector) would send it.
    let (status, _, answer) = send(
        app.client
            .post(app.url("/graphql"))
            .bearer_auth(&app.org.token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("query={}", CREATE.replace(' ', "+"))),
    )
    .await;
    assert_eq!(
        (status, answer),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, refused.clone())
    );
    // No content type at all.
    let (status, _, answer) = send(
        app.client
            .post(app.url("/graphql"))
            .bearer_auth(&app.org.token)
            .body(body.clone()),
    )
    .await;
    assert_eq!(
        (status, answer),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, refused)
    );
    assert_eq!(app.count("users").await, 1);

    // JSON with parameters is JSON.
    let (status, _, answer) = send(post_raw(&app, "Application/JSON; charset=utf-8", body)).await;
    assert_eq!((status, answer), (StatusCode::OK, created()));
    assert_eq!(app.count("users").await, 2);
}

#[tokio::test]
async fn unparsable_document_is_400_with_either_media_type() {
    let app = TestApp::spawn().await;
    // `CREATE` without its last brace.
    let broken = &CREATE[..CREATE.len() - 1];
    for accept in [GRAPHQL_RESPONSE, JSON] {
        let (status, headers, body) =
            send(post_accepting(&app, accept, &json!({ "query": broken }))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "Accept: {accept}");
        assert_eq!(header(&headers, "content-type"), accept);
        assert_eq!(codes(&body), ["GRAPHQL_PARSE_FAILED"], "{body}");
        assert_eq!(body["data"], Value::Null, "{body}");
        assert_eq!(
            body["errors"][0]["locations"],
            json!([{ "line": 1, "column": 75 }])
        );
    }
    for garbage in [
        "}",
        "query {",
        "mutation",
        "createUser(input: {})",
        "{ viewer { user { id } } } }",
    ] {
        let (status, _, body) = app
            .post(Some(&app.org.token), json!({ "query": garbage }))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{garbage}");
        assert_eq!(codes(&body), ["GRAPHQL_PARSE_FAILED"], "{garbage}: {body}");
    }
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn validation_failure_is_400_for_graphql_response_json_and_200_for_json() {
    let app = TestApp::spawn().await;
    let events = app.count("events").await;
    let query =
        r#"mutation { createUser(input: {email: "new@acme.test"}) { user { email nope } } }"#;
    let expected = json!({
        "data": null,
        "errors": [{
            "message": "Unknown field \"nope\" on type \"User\".",
            "locations": [{ "line": 1, "column": 71 }],
            "extensions": { "code": "GRAPHQL_VALIDATION_FAILED" },
        }],
    });
    for (accept, status) in [
        (GRAPHQL_RESPONSE, StatusCode::BAD_REQUEST),
        (JSON, StatusCode::OK),
    ] {
        let (got, headers, body) =
            send(post_accepting(&app, accept, &json!({ "query": query }))).await;
        assert_eq!(got, status, "Accept: {accept}");
        assert_eq!(header(&headers, "content-type"), accept);
        assert_eq!(body, expected, "Accept: {accept}");
    }
    // A variable of the wrong type is a validation failure too.
    let (status, _, body) = send(post_accepting(
        &app,
        GRAPHQL_RESPONSE,
        &json!({
            "query": "mutation($input: CreateUserInput!) { createUser(input: $input) { user { email } } }",
            "variables": { "input": { "email": 5 } },
        }),
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(codes(&body), ["GRAPHQL_VALIDATION_FAILED"], "{body}");
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("events").await, events);

    // Without the unknown field the same mutation runs; with graphql-response+json it is 200.
    let (status, headers, body) = send(post_accepting(
        &app,
        GRAPHQL_RESPONSE,
        &json!({ "query": CREATE }),
    ))
    .await;
    assert_eq!((status, body), (StatusCode::OK, created()));
    assert_eq!(header(&headers, "content-type"), GRAPHQL_RESPONSE);
    assert_eq!(app.count("users").await, 2);
}

#[tokio::test]
async fn get_runs_queries() {
    let app = TestApp::spawn().await;
    let (status, headers, body) = send(
        app.client
            .get(app.url("/graphql"))
            .query(&[("query", "{ viewer { user { email } } }")])
            .bearer_auth(&app.org.token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), JSON);
    assert_eq!(
        body,
        json!({ "data": { "viewer": { "user": { "email": "owner@acme.test" } } } })
    );

    let (status, headers, body) = send(
        app.client
            .get(app.url("/graphql"))
            .query(&[
                ("query", "query Count($first: Int) { users(first: $first) { totalCount edges { node { email } } } }"),
                ("variables", r#"{"first": 1}"#),
                ("operationName", "Count"),
            ])
            .header("accept", GRAPHQL_RESPONSE)
            .bearer_auth(&app.org.token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), GRAPHQL_RESPONSE);
    assert_eq!(
        body,
        json!({ "data": { "users": { "totalCount": 1, "edges": [{ "node": { "email": "owner@acme.test" } }] } } })
    );

    // Bad GET requests.
    let (status, _, body) = send(
        app.client
            .get(app.url("/graphql"))
            .bearer_auth(&app.org.token),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        error("the request has no `query` parameter", "BAD_REQUEST")
    );
    let (status, _, body) = send(
        app.client
            .get(app.url("/graphql"))
            .query(&[("query", "{ viewer { roles } }"), ("variables", "[1]")])
            .bearer_auth(&app.org.token),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        error("`variables` must be a JSON object", "BAD_REQUEST")
    );
}

#[tokio::test]
async fn get_refuses_mutations_with_405_and_runs_nothing() {
    let app = TestApp::spawn().await;
    let events = app.count("events").await;
    let refused = json!({
        "data": null,
        "errors": [{
            "message": "only queries can be sent with GET; send mutations with POST",
            "extensions": { "code": "METHOD_NOT_ALLOWED" },
        }],
    });
    for accept in [JSON, GRAPHQL_RESPONSE] {
        let (status, headers, body) = send(
            app.client
                .get(app.url("/graphql"))
                .query(&[("query", CREATE)])
                .header("accept", accept)
                .bearer_auth(&app.org.token),
        )
        .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "Accept: {accept}");
        assert_eq!(header(&headers, "allow"), "POST");
        assert_eq!(body, refused);
    }
    // The mutation picked by operationName from a document that also has a query.
    let document = format!(
        "query Q {{ viewer {{ roles }} }} {}",
        CREATE.replacen("mutation", "mutation M", 1)
    );
    let (status, headers, body) = send(
        app.client
            .get(app.url("/graphql"))
            .query(&[("query", document.as_str()), ("operationName", "M")])
            .bearer_auth(&app.org.token),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&headers, "allow"), "POST");
    assert_eq!(body, refused);
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("events").await, events);

    // The query of the same document runs over GET; the mutation over POST.
    let (status, _, body) = send(
        app.client
            .get(app.url("/graphql"))
            .query(&[("query", document.as_str()), ("operationName", "Q")])
            .bearer_auth(&app.org.token),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({ "data": { "viewer": { "roles": ["OWNER"] } } })
        )
    );
    let (status, _, body) = app
        .post(
            Some(&app.org.token),
            json!({ "query": document, "operationName": "M" }),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, created()));
    assert_eq!(app.count("users").await, 2);
}

#[tokio::test]
async fn graphiql_is_served_and_the_root_redirects_to_it() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/graphiql"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(response.headers(), "content-type"),
        "text/html; charset=utf-8"
    );
    let page = response.text().await.expect("body");
    assert!(
        page.contains("<title>Switchboard GraphiQL</title>"),
        "{page}"
    );
    assert!(page.contains("/graphql"), "{page}");

    let response = app
        .client
        .get(app.url("/graphql"))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(response.headers(), "content-type"),
        "text/html; charset=utf-8"
    );
    assert_eq!(response.text().await.expect("body"), page);

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = no_redirects.get(app.url("/")).send().await.expect("send");
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(header(response.headers(), "location"), "/graphiql");
}

#[tokio::test]
async fn graphiql_can_be_turned_off() {
    let app = TestApp::spawn_with(|c| c.graphiql = false).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for path in ["/graphiql", "/"] {
        let response = no_redirects.get(app.url(path)).send().await.expect("send");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let (status, headers, body) = send(
        app.client
            .get(app.url("/graphql"))
            .header("accept", "text/html"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(header(&headers, "content-type"), JSON);
    assert_eq!(codes(&body), ["NOT_ACCEPTABLE"]);
    // The API itself still answers.
    let data = app
        .data(&app.org.token, "{ viewer { roles } }", json!({}))
        .await;
    assert_eq!(data, json!({ "viewer": { "roles": ["OWNER"] } }));
}

#[tokio::test]
async fn ten_megabyte_body_is_413_and_runs_nothing() {
    let app = TestApp::spawn().await;
    let events = app.count("events").await;
    // A valid request that would create a user, padded with an unused variable to 10 MB.
    let body = json!({
        "query": CREATE,
        "variables": { "padding": "x".repeat(10 * 1024 * 1024) },
    })
    .to_string();
    assert!(body.len() > 10 * 1024 * 1024);
    let (status, headers, answer) = send(post_raw(&app, JSON, body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(header(&headers, "content-type"), JSON);
    assert_eq!(
        answer,
        error(
            "the request body is larger than 1048576 bytes",
            "PAYLOAD_TOO_LARGE"
        )
    );
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("events").await, events);
}

#[tokio::test]
async fn body_limit_is_configurable_and_exact() {
    let app = TestApp::spawn_with(|c| c.max_body_bytes = 300).await;
    let request = json!({ "query": CREATE }).to_string();
    // JSON allows trailing whitespace: pad the same request to an exact size.
    let padded = |size: usize| format!("{request}{}", " ".repeat(size - request.len()));

    let (status, _, answer) = send(post_raw(&app, JSON, padded(301))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        answer,
        error(
            "the request body is larger than 300 bytes",
            "PAYLOAD_TOO_LARGE"
        )
    );
    assert_eq!(app.count("users").await, 1);

    let (status, _, answer) = send(post_raw(&app, JSON, padded(300))).await;
    assert_eq!((status, answer), (StatusCode::OK, created()));
    assert_eq!(app.count("users").await, 2);
}

#[tokio::test]
async fn batch_returns_results_in_order() {
    let app = TestApp::spawn().await;
    let (status, headers, body) = app
        .post(
            Some(&app.org.token),
            json!([
                { "query": "{ users { totalCount } }" },
                { "query": CREATE },
                { "query": "query($n: Int) { users(first: $n) { totalCount } }", "variables": { "n": 5 } },
                { "query": "{ viewer { nope } }" },
                { "query": "query A { viewer { roles } } query B { viewer { user { email } } }", "operationName": "B" },
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), JSON);
    assert_eq!(
        body,
        json!([
            { "data": { "users": { "totalCount": 1 } } },
            { "data": { "createUser": { "user": { "email": "new@acme.test" } } } },
            { "data": { "users": { "totalCount": 2 } } },
            {
                "data": null,
                "errors": [{
                    "message": "Unknown field \"nope\" on type \"Viewer\".",
                    "locations": [{ "line": 1, "column": 12 }],
                    "extensions": { "code": "GRAPHQL_VALIDATION_FAILED" },
                }],
            },
            { "data": { "viewer": { "user": { "email": "owner@acme.test" } } } },
        ])
    );
    assert_eq!(app.count("users").await, 2);
}

#[tokio::test]
async fn batch_over_the_limit_is_400_and_runs_nothing() {
    let app = TestApp::spawn().await;
    let events = app.count("events").await;
    let batch: Vec<Value> = (0..11)
        .map(|i| json!({ "query": create_user(&format!("b{i}@acme.test")) }))
        .collect();
    let (status, _, body) = app
        .post(Some(&app.org.token), Value::Array(batch.clone()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        error(
            "the batch has 11 operations; the limit is 10",
            "QUERY_TOO_COMPLEX"
        )
    );
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("events").await, events);

    // Exactly at the limit runs them all.
    let (status, _, body) = app
        .post(Some(&app.org.token), Value::Array(batch[..10].to_vec()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().map(Vec::len), Some(10));
    assert_eq!(
        body[9],
        json!({ "data": { "createUser": { "user": { "email": "b9@acme.test" } } } })
    );
    assert_eq!(app.count("users").await, 11);
}

#[tokio::test]
async fn batch_limit_is_configurable() {
    let app = TestApp::spawn_with(|c| c.max_batch = 2).await;
    let batch: Vec<Value> = (0..3)
        .map(|i| json!({ "query": create_user(&format!("b{i}@acme.test")) }))
        .collect();
    let (status, _, body) = app
        .post(Some(&app.org.token), Value::Array(batch.clone()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        error(
            "the batch has 3 operations; the limit is 2",
            "QUERY_TOO_COMPLEX"
        )
    );
    assert_eq!(app.count("users").await, 1);

    let (status, _, body) = app
        .post(Some(&app.org.token), Value::Array(batch[..2].to_vec()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!([
            { "data": { "createUser": { "user": { "email": "b0@acme.test" } } } },
            { "data": { "createUser": { "user": { "email": "b1@acme.test" } } } },
        ])
    );
    assert_eq!(app.count("users").await, 3);
}

#[tokio::test]
async fn empty_or_malformed_batch_is_400_and_runs_nothing() {
    let app = TestApp::spawn().await;
    let events = app.count("events").await;
    let (status, _, body) = app.post(Some(&app.org.token), json!([])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, error("the batch is empty", "BAD_REQUEST"));

    // One bad item refuses the whole batch before any of it runs.
    for (bad, message) in [
        (json!({ "variables": {} }), "the request has no `query`"),
        (
            json!({ "query": "{ viewer { roles } }", "variables": [] }),
            "`variables` must be an object",
        ),
        (
            json!("{ viewer { roles } }"),
            "the request body must be a JSON object",
        ),
    ] {
        let (status, _, body) = app
            .post(Some(&app.org.token), json!([{ "query": CREATE }, bad]))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body, error(message, "BAD_REQUEST"), "{bad}");
    }
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("events").await, events);
}

#[tokio::test]
async fn missing_token_is_unauthenticated_and_runs_nothing() {
    let app = TestApp::spawn().await;
    let events = app.count("events").await;
    let expected = json!({
        "data": null,
        "errors": [{
            "message": "authentication required: send `Authorization: Bearer <token>`",
            "locations": [{ "line": 1, "column": 3 }],
            "path": ["viewer"],
            "extensions": { "code": "UNAUTHENTICATED" },
        }],
    });
    let (status, _, body) = app
        .post(None, json!({ "query": "{ viewer { user { id } } }" }))
        .await;
    assert_eq!((status, body), (StatusCode::OK, expected.clone()));
    // Execution started, so graphql-response+json answers 200 as well.
    let (status, headers, body) = send(
        app.client
            .post(app.url("/graphql"))
            .header("accept", GRAPHQL_RESPONSE)
            .json(&json!({ "query": "{ viewer { user { id } } }" })),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, expected));
    assert_eq!(header(&headers, "content-type"), GRAPHQL_RESPONSE);

    let (status, _, body) = app.post(None, json!({ "query": CREATE })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(codes(&body), ["UNAUTHENTICATED"], "{body}");
    assert_eq!(body["data"], Value::Null);
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("events").await, events);
}

#[tokio::test]
async fn wrong_token_is_401_with_www_authenticate_and_runs_nothing() {
    let app = TestApp::spawn().await;
    let events = app.count("events").await;
    let refused = error("invalid token", "UNAUTHENTICATED");
    let wrong = format!("{}x", app.org.token);
    let (status, headers, body) = app.post(Some(&wrong), json!({ "query": CREATE })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(header(&headers, "www-authenticate"), "Bearer");
    assert_eq!(header(&headers, "content-type"), JSON);
    assert_eq!(body, refused);

    let (status, headers, body) = send(
        app.client
            .get(app.url("/graphql"))
            .query(&[("query", "{ viewer { roles } }")])
            .bearer_auth("sbt_not_a_token"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(header(&headers, "www-authenticate"), "Bearer");
    assert_eq!(body, refused);

    // In a batch, nothing of it runs.
    let (status, _, body) = app
        .post(
            Some(&wrong),
            json!([{ "query": CREATE }, { "query": "{ viewer { roles } }" }]),
        )
        .await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, refused));
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("events").await, events);
}

#[tokio::test]
async fn x_api_key_works_like_bearer() {
    let app = TestApp::spawn().await;
    let (status, _, body) = send(
        app.client
            .post(app.url("/graphql"))
            .header("x-api-key", &app.org.token)
            .json(&json!({ "query": "{ viewer { user { email } } }" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "data": { "viewer": { "user": { "email": "owner@acme.test" } } } })
    );

    let (status, headers, body) = send(
        app.client
            .post(app.url("/graphql"))
            .header("x-api-key", "sbt_not_a_token")
            .json(&json!({ "query": CREATE })),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(header(&headers, "www-authenticate"), "Bearer");
    assert_eq!(body, error("invalid token", "UNAUTHENTICATED"));
    assert_eq!(app.count("users").await, 1);

    let (status, _, body) = send(
        app.client
            .post(app.url("/graphql"))
            .header("x-api-key", &app.org.token)
            .json(&json!({ "query": CREATE })),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, created()));
    assert_eq!(app.count("users").await, 2);
}

#[tokio::test]
async fn malformed_authorization_header_is_401_and_runs_nothing() {
    let app = TestApp::spawn().await;
    let refused = error(
        "the Authorization header must be `Bearer <token>`",
        "UNAUTHENTICATED",
    );
    let basic = format!("Basic {}", app.org.token);
    let bare = app.org.token.clone();
    for value in [
        "Basic abc",
        basic.as_str(),
        bare.as_str(),
        "Bearer",
        "Token abc",
    ] {
        let (status, headers, body) = send(
            app.client
                .post(app.url("/graphql"))
                .header("authorization", value)
                .json(&json!({ "query": CREATE })),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "Authorization: {value}");
        assert_eq!(header(&headers, "www-authenticate"), "Bearer");
        assert_eq!(body, refused, "Authorization: {value}");
    }
    // A malformed Authorization header is not rescued by a valid X-Api-Key.
    let (status, _, body) = send(
        app.client
            .post(app.url("/graphql"))
            .header("authorization", "Basic abc")
            .header("x-api-key", &app.org.token)
            .json(&json!({ "query": CREATE })),
    )
    .await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, refused));
    assert_eq!(app.count("users").await, 1);
    // The scheme is case-insensitive.
    let (status, _, body) = send(
        app.client
            .post(app.url("/graphql"))
            .header("authorization", format!("bearer {}", app.org.token))
            .json(&json!({ "query": CREATE })),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, created()));
    assert_eq!(app.count("users").await, 2);
}
