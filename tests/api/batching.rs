//! Nested lookups of routing lists are prefetched per page: a page of 30 teams, queues or users
//! with their members or teams costs the same SQL statements as a page of 2.

use serde_json::{Value, json};

use crate::common::TestApp;

async fn user(app: &TestApp, i: usize) -> Value {
    app.data(
        &app.org.token,
        "mutation($input: CreateUserInput!) { createUser(input: $input) { user { id } } }",
        json!({ "input": { "email": format!("agent{i:02}@acme.test"), "roles": ["AGENT"] } }),
    )
    .await["createUser"]["user"]["id"]
        .clone()
}

#[tokio::test]
async fn pages_of_teams_queues_and_users_cost_the_same_statements_at_any_size() {
    let app = TestApp::spawn().await;
    let owner = &app.org.token;
    let mut users = Vec::new();
    for i in 0..30 {
        users.push(user(&app, i).await);
    }
    for i in 0..30 {
        let team = app
            .data(
                owner,
                "mutation($input: CreateTeamInput!) { createTeam(input: $input) { team { id } } }",
                json!({ "input": { "name": format!("Team {i:02}") } }),
            )
            .await["createTeam"]["team"]["id"]
            .clone();
        // Each team gets three users; each user ends up in three teams.
        let members: Vec<Value> = (0..3).map(|k| users[(i + k) % 30].clone()).collect();
        let added = app
            .data(
                owner,
                "mutation($input: TeamMembersInput!) { addTeamMembers(input: $input) { userErrors { code } } }",
                json!({ "input": { "teamId": team, "userIds": members } }),
            )
            .await;
        assert_eq!(added["addTeamMembers"]["userErrors"], json!([]));
        let queue = app
            .data(
                owner,
                "mutation($input: QueueSettingsInput!) { createQueue(input: $input) { queue { id } userErrors { code } } }",
                json!({ "input": { "name": format!("Queue {i:02}") } }),
            )
            .await["createQueue"]["queue"]["id"]
            .clone();
        let members: Vec<Value> = (0..2)
            .map(|k| json!({ "userId": users[(i + k) % 30], "priority": k + 1 }))
            .collect();
        let added = app
            .data(
                owner,
                "mutation($input: QueueMembersInput!) { addQueueMembers(input: $input) { userErrors { code } } }",
                json!({ "input": { "queueId": queue, "members": members } }),
            )
            .await;
        assert_eq!(added["addQueueMembers"]["userErrors"], json!([]));
    }

    let teams =
        |n: usize| format!("{{ teams(first: {n}) {{ nodes {{ name members {{ email }} }} }} }}");
    let (small, data) = app.statements_of(owner, &teams(2)).await;
    assert_eq!(
        data["teams"]["nodes"][0],
        json!({ "name": "Team 00", "members": [
            { "email": "agent00@acme.test" }, { "email": "agent01@acme.test" }, { "email": "agent02@acme.test" }
        ] })
    );
    let (large, data) = app.statements_of(owner, &teams(30)).await;
    assert_eq!(data["teams"]["nodes"].as_array().map(Vec::len), Some(30));
    assert_eq!(
        data["teams"]["nodes"][29]["members"],
        json!([{ "email": "agent29@acme.test" }, { "email": "agent00@acme.test" }, { "email": "agent01@acme.test" }])
    );
    assert_eq!(small, large, "teams with members");

    let queues = |n: usize| {
        format!(
            "{{ queues(first: {n}) {{ edges {{ node {{ name members {{ priority user {{ email }} }} }} }} }} }}"
        )
    };
    let (small, _) = app.statements_of(owner, &queues(2)).await;
    let (large, data) = app.statements_of(owner, &queues(31)).await;
    let edges = data["queues"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let queue_05 = edges
        .iter()
        .find(|e| e["node"]["name"] == "Queue 05")
        .map(|e| e["node"]["members"].clone());
    assert_eq!(
        queue_05,
        Some(
            json!([{ "priority": 1, "user": { "email": "agent05@acme.test" } },
                    { "priority": 2, "user": { "email": "agent06@acme.test" } }])
        )
    );
    assert_eq!(small, large, "queues with members");

    let people = |n: usize| {
        format!(
            "{{ users(first: {n}, filter: {{ roles: [AGENT] }}) {{ nodes {{ email teams {{ name }} }} }} }}"
        )
    };
    let (small, _) = app.statements_of(owner, &people(2)).await;
    let (large, data) = app.statements_of(owner, &people(30)).await;
    let nodes = data["users"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(nodes.len(), 30);
    let agent_00 = nodes.iter().find(|n| n["email"] == "agent00@acme.test");
    assert_eq!(
        agent_00.map(|n| n["teams"].clone()),
        Some(json!([{ "name": "Team 00" }, { "name": "Team 28" }, { "name": "Team 29" }]))
    );
    assert_eq!(small, large, "users with teams");
}
