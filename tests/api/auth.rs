//! Authentication: API tokens (shown once, hashed, revocable, expiring), login sessions, passwords.

use serde_json::{Value, json};

use crate::common::{TestApp, codes};

const VIEWER: &str = "{ viewer { user { email } roles } }";

async fn status_of(app: &TestApp, token: &str) -> (u16, Value) {
    let (status, _, body) = app.post(Some(token), json!({ "query": VIEWER })).await;
    (status.as_u16(), body)
}

#[tokio::test]
async fn api_tokens_are_shown_once_stored_hashed_and_revocable() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let created = app
        .data(
            owner,
            "mutation { createApiToken(input: { name: \"CI\" }) { token apiToken { id name kind prefix status user { email } createdBy { email } } userErrors { code } } }",
            json!({}),
        )
        .await;
    let secret = created["createApiToken"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(secret.starts_with("sbt_") && secret.len() == 44, "{secret}");
    let token = &created["createApiToken"]["apiToken"];
    assert_eq!(token["name"], "CI");
    assert_eq!(token["kind"], "API");
    assert_eq!(token["status"], "ACTIVE");
    assert_eq!(token["prefix"], secret[..10]);
    assert_eq!(token["user"]["email"], "owner@acme.test");
    assert_eq!(token["createdBy"]["email"], "owner@acme.test");

    // The database holds only the hash.
    assert_eq!(
        app.count(&format!("api_tokens WHERE token_hash = '{secret}'"))
            .await,
        0
    );
    let hash = switchboard::auth::secrets::hash_token(&secret);
    assert_eq!(
        app.count(&format!("api_tokens WHERE token_hash = '{hash}'"))
            .await,
        1
    );

    assert_eq!(status_of(&app, &secret).await.0, 200);
    let id = token["id"].clone();
    let revoked = app
        .data(
            owner,
            "mutation($id: ID!) { revokeApiToken(input: { id: $id }) { apiToken { status revokedAt } userErrors { code } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(revoked["revokeApiToken"]["apiToken"]["status"], "REVOKED");
    let (status, body) = status_of(&app, &secret).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({ "errors": [{ "message": "token has been revoked", "extensions": { "code": "UNAUTHENTICATED" } }] })
    );
    let again = app
        .data(
            owner,
            "mutation($id: ID!) { revokeApiToken(input: { id: $id }) { userErrors { code } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        again["revokeApiToken"]["userErrors"],
        json!([{ "code": "INVALID_STATE" }])
    );

    // Lists show active tokens by default and everything on request.
    let list = "query($all: Boolean!) { apiTokens(filter: { includeInactive: $all }) { totalCount nodes { name status } } }";
    let active = app.data(owner, list, json!({ "all": false })).await;
    assert_eq!(
        active,
        json!({ "apiTokens": { "totalCount": 1, "nodes": [{ "name": "owner token", "status": "ACTIVE" }] } })
    );
    let all = app.data(owner, list, json!({ "all": true })).await;
    assert_eq!(
        all,
        json!({ "apiTokens": { "totalCount": 2, "nodes": [{ "name": "CI", "status": "REVOKED" }, { "name": "owner token", "status": "ACTIVE" }] } })
    );
}

#[tokio::test]
async fn expired_and_unknown_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let past = app
        .data(owner, "mutation { createApiToken(input: { name: \"old\", expiresAt: \"2001-01-01T00:00:00Z\" }) { token userErrors { field message code } } }", json!({}))
        .await;
    assert_eq!(
        past["createApiToken"],
        json!({ "token": null, "userErrors": [{ "field": ["input", "expiresAt"], "message": "expiresAt must be in the future", "code": "INVALID" }] })
    );
    let soon = app
        .data(owner, "mutation { createApiToken(input: { name: \"soon\", expiresAt: \"2100-01-01T00:00:00Z\" }) { token } }", json!({}))
        .await;
    let secret = soon["createApiToken"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(status_of(&app, &secret).await.0, 200);
    app.sql("UPDATE api_tokens SET expires_at = '2001-01-01T00:00:00+00:00' WHERE name = 'soon'")
        .await;
    let (status, body) = status_of(&app, &secret).await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["message"], "token has expired");

    let (status, body) = status_of(&app, "sbt_not-a-real-token").await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["message"], "invalid token");
}

#[tokio::test]
async fn token_permissions_follow_roles() {
    let app = TestApp::spawn().await;
    let (agent_id, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let (admin_id, admin) = app.user_with_token("admin@acme.test", &["ADMIN"]).await;
    let tokens_before = app.count("api_tokens").await;

    // Agents and admins manage only their own tokens; owners manage everyone's.
    let for_other =
        "mutation($id: ID!) { createApiToken(input: { name: \"x\", userId: $id }) { token } }";
    for (token, target) in [(&agent, &admin_id), (&admin, &agent_id)] {
        let body = app.gql(token, for_other, json!({ "id": target })).await;
        assert_eq!(codes(&body), ["FORBIDDEN"]);
        let body = app
            .gql(
                token,
                "query($id: ID!) { apiTokens(filter: { userId: $id }) { totalCount } }",
                json!({ "id": target }),
            )
            .await;
        assert_eq!(codes(&body), ["FORBIDDEN"]);
    }
    assert_eq!(app.count("api_tokens").await, tokens_before);
    let own = app
        .data(&agent, "{ apiTokens { totalCount } }", json!({}))
        .await;
    assert_eq!(own, json!({ "apiTokens": { "totalCount": 1 } }));
    let everyone = app
        .data(
            &app.org.token,
            "{ apiTokens(filter: { allUsers: true }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(everyone, json!({ "apiTokens": { "totalCount": 3 } }));

    // An agent cannot revoke the owner's token; node() hides it from them.
    let owner_tokens = app
        .data(&app.org.token, "{ apiTokens { nodes { id } } }", json!({}))
        .await;
    let owner_token_id = owner_tokens["apiTokens"]["nodes"][0]["id"].clone();
    let body = app
        .gql(
            &agent,
            "mutation($id: ID!) { revokeApiToken(input: { id: $id }) { userErrors { code } } }",
            json!({ "id": owner_token_id }),
        )
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"]);
    let hidden = app
        .data(
            &agent,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": owner_token_id }),
        )
        .await;
    assert_eq!(hidden, json!({ "node": null }));
    assert_eq!(status_of(&app, &app.org.token).await.0, 200);
}

const SET_PASSWORD: &str = "mutation($input: SetPasswordInput!) { setPassword(input: $input) { user { hasPassword } userErrors { field message code } } }";
const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) { token expiresAt user { email } userErrors { field message code } } }";

#[tokio::test]
async fn login_with_password_issues_a_session_and_logout_ends_it() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let set = app
        .data(
            owner,
            SET_PASSWORD,
            json!({ "input": { "newPassword": "correct horse battery" } }),
        )
        .await;
    assert_eq!(
        set["setPassword"],
        json!({ "user": { "hasPassword": true }, "userErrors": [] })
    );

    // login needs no token.
    let (status, _, body) = app
        .post(None, json!({ "query": LOGIN, "variables": { "input": { "email": "Owner@Acme.test", "password": "correct horse battery" } } }))
        .await;
    assert_eq!(status, 200);
    let login = &body["data"]["login"];
    assert_eq!(login["user"]["email"], "owner@acme.test");
    assert_eq!(login["userErrors"], json!([]));
    assert!(login["expiresAt"].is_string());
    let session = login["token"].as_str().unwrap_or_default().to_string();
    let (status, body) = status_of(&app, &session).await;
    assert_eq!(
        (status, body["data"].clone()),
        (
            200,
            json!({ "viewer": { "user": { "email": "owner@acme.test" }, "roles": ["OWNER"] } })
        )
    );

    let logout = app
        .data(
            &session,
            "mutation { logout { apiToken { kind status } userErrors { code } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        logout["logout"],
        json!({ "apiToken": { "kind": "SESSION", "status": "REVOKED" }, "userErrors": [] })
    );
    assert_eq!(status_of(&app, &session).await.0, 401);
}

#[tokio::test]
async fn wrong_credentials_get_one_answer() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    app.data(
        owner,
        SET_PASSWORD,
        json!({ "input": { "newPassword": "correct horse battery" } }),
    )
    .await;
    let events = app.count("events").await;
    let tokens = app.count("api_tokens").await;
    let denied = json!({ "token": null, "expiresAt": null, "user": null, "userErrors": [
        { "field": ["input", "password"], "message": "email or password is wrong", "code": "INVALID_CREDENTIALS" }
    ] });
    for input in [
        json!({ "email": "owner@acme.test", "password": "wrong password!" }),
        json!({ "email": "nobody@acme.test", "password": "correct horse battery" }),
        json!({ "email": "owner@acme.test", "password": "correct horse battery", "organization": "globex" }),
    ] {
        let (_, _, body) = app
            .post(
                None,
                json!({ "query": LOGIN, "variables": { "input": input } }),
            )
            .await;
        assert_eq!(body["data"]["login"], denied, "{input}");
    }
    assert_eq!(app.count("events").await, events);
    assert_eq!(app.count("api_tokens").await, tokens);
}

#[tokio::test]
async fn an_email_in_two_organizations_needs_the_organization() {
    let app = TestApp::spawn().await;
    let other = app.create_org("Globex", "globex", "owner@acme.test").await;
    for token in [&app.org.token, &other.token] {
        app.data(
            token,
            SET_PASSWORD,
            json!({ "input": { "newPassword": "correct horse battery" } }),
        )
        .await;
    }
    let input = json!({ "email": "owner@acme.test", "password": "correct horse battery" });
    let (_, _, body) = app
        .post(
            None,
            json!({ "query": LOGIN, "variables": { "input": input } }),
        )
        .await;
    assert_eq!(body["data"]["login"]["userErrors"][0]["code"], "AMBIGUOUS");
    let input = json!({ "email": "owner@acme.test", "password": "correct horse battery", "organization": other.slug });
    let (_, _, body) = app
        .post(
            None,
            json!({ "query": LOGIN, "variables": { "input": input } }),
        )
        .await;
    let session = body["data"]["login"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let org = app
        .data(&session, "{ organization { slug } }", json!({}))
        .await;
    assert_eq!(org, json!({ "organization": { "slug": "globex" } }));
}

#[tokio::test]
async fn changing_a_password_checks_the_current_one_and_ends_other_sessions() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    app.data(
        owner,
        SET_PASSWORD,
        json!({ "input": { "newPassword": "first password 1" } }),
    )
    .await;
    let login = |password: &'static str| json!({ "query": LOGIN, "variables": { "input": { "email": "owner@acme.test", "password": password } } });
    let (_, _, body) = app.post(None, login("first password 1")).await;
    let session = body["data"]["login"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(status_of(&app, &session).await.0, 200);

    let wrong = app
        .data(owner, SET_PASSWORD, json!({ "input": { "currentPassword": "nope nope nope", "newPassword": "second password 2" } }))
        .await;
    assert_eq!(
        wrong["setPassword"]["userErrors"],
        json!([{ "field": ["input", "currentPassword"], "message": "the current password does not match", "code": "INVALID_CREDENTIALS" }])
    );
    let short = app
        .data(
            owner,
            SET_PASSWORD,
            json!({ "input": { "currentPassword": "first password 1", "newPassword": "short" } }),
        )
        .await;
    assert_eq!(short["setPassword"]["userErrors"][0]["code"], "TOO_SHORT");
    assert_eq!(
        status_of(&app, &session).await.0,
        200,
        "refused changes keep sessions"
    );

    let ok = app
        .data(owner, SET_PASSWORD, json!({ "input": { "currentPassword": "first password 1", "newPassword": "second password 2" } }))
        .await;
    assert_eq!(ok["setPassword"]["userErrors"], json!([]));
    assert_eq!(status_of(&app, &session).await.0, 401, "other sessions end");
    assert_eq!(status_of(&app, owner).await.0, 200, "API tokens stay");
    let (_, _, body) = app.post(None, login("first password 1")).await;
    assert_eq!(
        body["data"]["login"]["userErrors"][0]["code"],
        "INVALID_CREDENTIALS"
    );
    let (_, _, body) = app.post(None, login("second password 2")).await;
    assert!(body["data"]["login"]["token"].is_string());
}
