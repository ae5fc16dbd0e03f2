//! Teams: create, update, delete, members; roles, validation, tenancy, batched member loading.

use serde_json::{Value, json};

use crate::common::{TestApp, codes};

const CREATE: &str = "mutation($input: CreateTeamInput!) { createTeam(input: $input) { team { id name description } userErrors { field message code } } }";
const ADD: &str = "mutation($input: TeamMembersInput!) { addTeamMembers(input: $input) { team { name members { email } } userErrors { field message code } } }";
const REMOVE: &str = "mutation($input: TeamMembersInput!) { removeTeamMembers(input: $input) { team { name members { email } } userErrors { field message code } } }";

async fn create(app: &TestApp, token: &str, name: &str) -> Value {
    app.data(token, CREATE, json!({ "input": { "name": name } }))
        .await["createTeam"]["team"]["id"]
        .clone()
}

#[tokio::test]
async fn teams_have_members_and_users_know_their_teams() {
    let app = TestApp::spawn().await;
    let (lead_id, lead) = app.user_with_token("lead@acme.test", &["TEAM_LEAD"]).await;
    let (ann, _) = app.user_with_token("ann@acme.test", &["AGENT"]).await;
    let (bob, _) = app.user_with_token("bob@acme.test", &["AGENT"]).await;
    let created = app
        .data(
            &lead,
            CREATE,
            json!({ "input": { "name": "Support", "description": "First line" } }),
        )
        .await;
    assert_eq!(created["createTeam"]["team"]["name"], "Support");
    assert_eq!(created["createTeam"]["team"]["description"], "First line");
    let support = created["createTeam"]["team"]["id"].clone();
    let billing = create(&app, &lead, "Billing").await;

    let added = app
        .data(
            &lead,
            ADD,
            json!({ "input": { "teamId": support, "userIds": [ann, bob, ann] } }),
        )
        .await;
    assert_eq!(
        added["addTeamMembers"],
        json!({ "team": { "name": "Support", "members": [{ "email": "ann@acme.test" }, { "email": "bob@acme.test" }] }, "userErrors": [] })
    );
    // Adding again is a no-op, not an error.
    let again = app
        .data(
            &lead,
            ADD,
            json!({ "input": { "teamId": support, "userIds": [bob] } }),
        )
        .await;
    assert_eq!(again["addTeamMembers"]["userErrors"], json!([]));
    app.data(
        &lead,
        ADD,
        json!({ "input": { "teamId": billing, "userIds": [bob, lead_id] } }),
    )
    .await;

    let teams = app
        .data(
            &lead,
            "{ teams { totalCount nodes { name members { email } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        teams,
        json!({ "teams": { "totalCount": 2, "nodes": [
            { "name": "Billing", "members": [{ "email": "bob@acme.test" }, { "email": "lead@acme.test" }] },
            { "name": "Support", "members": [{ "email": "ann@acme.test" }, { "email": "bob@acme.test" }] }
        ] } })
    );
    let of_bob = app
        .data(
            &lead,
            "query($id: ID!) { user(id: $id) { teams { name } } }",
            json!({ "id": bob }),
        )
        .await;
    assert_eq!(
        of_bob,
        json!({ "user": { "teams": [{ "name": "Support" }, { "name": "Billing" }] } })
    );

    let removed = app
        .data(
            &lead,
            REMOVE,
            json!({ "input": { "teamId": support, "userIds": [ann] } }),
        )
        .await;
    assert_eq!(
        removed["removeTeamMembers"],
        json!({ "team": { "name": "Support", "members": [{ "email": "bob@acme.test" }] }, "userErrors": [] })
    );

    let deleted = app
        .data(&lead, "mutation($id: ID!) { deleteTeam(input: { id: $id }) { deletedTeamId userErrors { code } } }", json!({ "id": billing }))
        .await;
    assert_eq!(
        deleted["deleteTeam"],
        json!({ "deletedTeamId": billing, "userErrors": [] })
    );
    assert_eq!(app.count("team_members").await, 1);
    assert_eq!(
        app.count("events WHERE event_type LIKE 'TEAM_%'").await,
        // 2 created, 2 member additions (Support, Billing), 1 removal, 1 deletion.
        6
    );
}

#[tokio::test]
async fn users_of_another_org_or_unknown_ids_change_nothing() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let team = create(&app, owner, "Support").await;
    let (ann, _) = app.user_with_token("ann@acme.test", &["AGENT"]).await;
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let members = app.count("team_members").await;
    let events = app.count("events").await;

    let foreign = app
        .data(
            owner,
            ADD,
            json!({ "input": { "teamId": team, "userIds": [ann, other.owner_id] } }),
        )
        .await;
    assert_eq!(
        foreign["addTeamMembers"],
        json!({ "team": null, "userErrors": [{ "field": ["input", "userIds", "1"], "message": "no such user", "code": "NOT_FOUND" }] })
    );
    let wrong_type = app
        .data(
            owner,
            ADD,
            json!({ "input": { "teamId": team, "userIds": [team] } }),
        )
        .await;
    assert_eq!(
        wrong_type["addTeamMembers"]["userErrors"][0]["field"],
        json!(["input", "userIds", "0"])
    );
    assert_eq!(
        wrong_type["addTeamMembers"]["userErrors"][0]["code"],
        "INVALID"
    );
    let empty_name = app
        .data(owner, CREATE, json!({ "input": { "name": "" } }))
        .await;
    assert_eq!(
        empty_name["createTeam"],
        json!({ "team": null, "userErrors": [{ "field": ["input", "name"], "message": "name must not be empty", "code": "REQUIRED" }] })
    );
    // Another organization can neither see nor change the team.
    let hidden = app
        .data(
            &other.token,
            "query($id: ID!) { team(id: $id) { name } teams { totalCount } }",
            json!({ "id": team }),
        )
        .await;
    assert_eq!(
        hidden,
        json!({ "team": null, "teams": { "totalCount": 0 } })
    );
    let theirs = app
        .data(
            &other.token,
            ADD,
            json!({ "input": { "teamId": team, "userIds": [other.owner_id] } }),
        )
        .await;
    assert_eq!(
        theirs["addTeamMembers"]["userErrors"][0]["code"],
        "NOT_FOUND"
    );
    assert_eq!(app.count("team_members").await, members);
    assert_eq!(app.count("events").await, events);
}

#[tokio::test]
async fn agents_read_teams_but_cannot_change_them() {
    let app = TestApp::spawn().await;
    let team = create(&app, &app.org.token, "Support").await;
    let (agent_id, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let events = app.count("events").await;
    for (query, variables) in [
        (CREATE, json!({ "input": { "name": "Mine" } })),
        (
            ADD,
            json!({ "input": { "teamId": team, "userIds": [agent_id] } }),
        ),
        (
            "mutation($id: ID!) { deleteTeam(input: { id: $id }) { deletedTeamId } }",
            json!({ "id": team }),
        ),
    ] {
        let body = app.gql(&agent, query, variables).await;
        assert_eq!(codes(&body), ["FORBIDDEN"], "{query}");
    }
    assert_eq!(app.count("events").await, events);
    let read = app
        .data(&agent, "{ teams { nodes { name } } }", json!({}))
        .await;
    assert_eq!(
        read,
        json!({ "teams": { "nodes": [{ "name": "Support" }] } })
    );
}

#[tokio::test]
async fn members_of_many_teams_load_in_constant_statements() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let (ann, _) = app.user_with_token("ann@acme.test", &["AGENT"]).await;
    for i in 0..12 {
        let team = create(&app, owner, &format!("Team {i:02}")).await;
        app.data(
            owner,
            ADD,
            json!({ "input": { "teamId": team, "userIds": [ann, app.org.owner_id] } }),
        )
        .await;
    }
    let query = |n: usize| {
        format!(
            "{{ teams(first: {n}) {{ nodes {{ name members {{ email teams {{ name }} }} }} }} }}"
        )
    };
    let (few, data) = app.statements_of(owner, &query(2)).await;
    assert_eq!(
        data["teams"]["nodes"][1]["members"][0]["teams"]
            .as_array()
            .map(Vec::len),
        Some(12)
    );
    let (many, data) = app.statements_of(owner, &query(12)).await;
    assert_eq!(data["teams"]["nodes"].as_array().map(Vec::len), Some(12));
    assert_eq!(few, many);
}
