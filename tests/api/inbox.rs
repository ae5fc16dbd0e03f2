//! The inbox query: filters, orderings, pagination, and a statement count independent of page
//! size.

use serde_json::{Value, json};

use crate::common::TestApp;
use crate::fixtures::{contact, create_conversation, queue, sms_setup, tag};

async fn numbers(app: &TestApp, token: &str, args: &str) -> Vec<i64> {
    let args = if args.is_empty() {
        String::new()
    } else {
        format!("({args})")
    };
    let query = format!("{{ conversations{args} {{ nodes {{ number }} }} }}");
    let data = app.data(token, &query, json!({})).await;
    data["conversations"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["number"].as_i64().unwrap())
        .collect()
}

async fn run(app: &TestApp, token: &str, name: &str, input_type: &str, input: Value) {
    let query = format!(
        "mutation($input: {input_type}!) {{ {name}(input: $input) {{ userErrors {{ field message code }} }} }}"
    );
    let data = app.data(token, &query, json!({ "input": input })).await;
    assert_eq!(data[name]["userErrors"], json!([]), "{name}: {data}");
}

#[tokio::test]
async fn inbox_filters_and_orderings() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (sms, ann) = sms_setup(&app).await;
    let bob = contact(
        &app,
        &token,
        json!({ "firstName": "Bob", "phone": "+4520000004" }),
    )
    .await;
    let support = queue(&app, &token, "Support").await;
    let vip = tag(&app, &token, "VIP").await;
    let (agent_id, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;

    // 1: Ann, queued in Support. 2: Bob, outbound by the owner. 3: Ann, claimed by the agent,
    // urgent, VIP. 4: Bob, closed.
    let mut ids = Vec::new();
    for (requester, direction, queue_id) in [
        (&ann, "INBOUND", Some(&support)),
        (&bob, "OUTBOUND", None),
        (&ann, "INBOUND", None),
        (&bob, "INBOUND", None),
    ] {
        let payload = create_conversation(
            &app,
            &token,
            json!({ "channelId": sms, "requesterId": requester, "direction": direction,
                    "queueId": queue_id, "message": { "text": "hi" } }),
        )
        .await;
        assert_eq!(payload["userErrors"], json!([]));
        ids.push(payload["conversation"]["id"].as_str().unwrap().to_string());
    }
    run(
        &app,
        &agent,
        "claimConversation",
        "ClaimConversationInput",
        json!({ "conversationId": ids[2] }),
    )
    .await;
    run(
        &app,
        &token,
        "setConversationPriority",
        "SetConversationPriorityInput",
        json!({ "conversationId": ids[2], "priority": "URGENT" }),
    )
    .await;
    run(
        &app,
        &token,
        "tagConversation",
        "ConversationTagsInput",
        json!({ "conversationId": ids[2], "tagIds": [vip] }),
    )
    .await;
    run(
        &app,
        &token,
        "closeConversation",
        "CloseConversationInput",
        json!({ "conversationId": ids[3] }),
    )
    .await;

    assert_eq!(numbers(&app, &token, "").await, [4, 3, 2, 1]);
    assert_eq!(
        numbers(
            &app,
            &token,
            "orderBy: { field: CREATED_AT, direction: ASC }"
        )
        .await,
        [1, 2, 3, 4]
    );
    assert_eq!(
        numbers(&app, &token, "orderBy: { field: PRIORITY }").await[0],
        3
    );
    // Waiting: 1, 3, 4 wait (inbound, unanswered) in creation order; 2 doesn't.
    assert_eq!(
        numbers(&app, &token, "orderBy: { field: WAITING_TIME }").await,
        [1, 3, 4, 2]
    );
    assert_eq!(
        numbers(&app, &token, "filter: { status: [CLOSED] }").await,
        [4]
    );
    assert_eq!(
        numbers(&app, &token, "filter: { status: [OPEN, PENDING] }").await,
        [3, 2, 1]
    );
    assert_eq!(
        numbers(
            &app,
            &token,
            &format!("filter: {{ queueIds: [\"{support}\"] }}")
        )
        .await,
        [1]
    );
    assert_eq!(
        numbers(
            &app,
            &token,
            &format!("filter: {{ requesterId: \"{bob}\" }}")
        )
        .await,
        [4, 2]
    );
    assert_eq!(
        numbers(&app, &token, &format!("filter: {{ tagIds: [\"{vip}\"] }}")).await,
        [3]
    );
    assert_eq!(
        numbers(&app, &token, "filter: { priorities: [URGENT] }").await,
        [3]
    );
    assert_eq!(
        numbers(&app, &agent, "filter: { assignee: { me: true } }").await,
        [3]
    );
    assert_eq!(
        numbers(&app, &token, "filter: { assignee: { me: true } }").await,
        [2]
    );
    assert_eq!(
        numbers(&app, &token, "filter: { assignee: { unassigned: true } }").await,
        [4, 1]
    );
    assert_eq!(
        numbers(
            &app,
            &token,
            &format!("filter: {{ assignee: {{ userIds: [\"{agent_id}\"], unassigned: true }} }}")
        )
        .await,
        [4, 3, 1]
    );
    assert_eq!(
        numbers(
            &app,
            &token,
            &format!("filter: {{ channelIds: [\"{sms}\"], channelTypes: [SMS] }}")
        )
        .await,
        [4, 3, 2, 1]
    );
    assert_eq!(
        numbers(&app, &token, "filter: { channelTypes: [EMAIL] }").await,
        Vec::<i64>::new()
    );
    assert_eq!(
        numbers(
            &app,
            &token,
            "filter: { createdAfter: \"2100-01-01T00:00:00Z\" }"
        )
        .await,
        Vec::<i64>::new()
    );

    // Team filter: the agent joins a team.
    let team = app
        .data(
            &token,
            "mutation { createTeam(input: { name: \"Tier 1\" }) { team { id } } }",
            json!({}),
        )
        .await["createTeam"]["team"]["id"]
        .clone();
    run(
        &app,
        &token,
        "addTeamMembers",
        "TeamMembersInput",
        json!({ "teamId": team, "userIds": [agent_id] }),
    )
    .await;
    assert_eq!(
        numbers(&app, &token, &format!("filter: {{ teamId: {team} }}")).await,
        [3]
    );

    // Pagination with cursors, and totalCount.
    let page = app
        .data(&token, "{ conversations(first: 3) { totalCount pageInfo { hasNextPage endCursor } nodes { number } } }", json!({}))
        .await;
    assert_eq!(page["conversations"]["totalCount"], 4);
    assert_eq!(
        page["conversations"]["nodes"],
        json!([{ "number": 4 }, { "number": 3 }, { "number": 2 }])
    );
    let cursor = page["conversations"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap();
    assert_eq!(
        numbers(&app, &token, &format!("first: 3, after: \"{cursor}\"")).await,
        [1]
    );
}

#[tokio::test]
async fn inbox_page_costs_the_same_statements_whatever_its_size() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (sms, _) = sms_setup(&app).await;
    let support = queue(&app, &token, "Support").await;
    let vip = tag(&app, &token, "VIP").await;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    for i in 0..100 {
        let person = contact(
            &app,
            &token,
            json!({ "firstName": format!("P{i:03}"), "phone": format!("+45300{i:05}") }),
        )
        .await;
        let payload = create_conversation(
            &app,
            &token,
            json!({ "channelId": sms, "requesterId": person, "queueId": support,
                    "direction": if i % 2 == 0 { "INBOUND" } else { "OUTBOUND" },
                    "message": { "text": format!("message {i}") } }),
        )
        .await;
        let id = payload["conversation"]["id"].clone();
        if i % 3 == 0 {
            run(
                &app,
                &token,
                "tagConversation",
                "ConversationTagsInput",
                json!({ "conversationId": id, "tagIds": [vip] }),
            )
            .await;
        }
    }
    let inbox = |n: usize| {
        format!(
            "{{ conversations(first: {n}) {{ edges {{ node {{ number
                requester {{ name }} assignee {{ email }} queue {{ name }} channelType tags {{ name }}
                lastMessage {{ text author {{ __typename ... on Contact {{ name }} ... on User {{ email }} }} }}
                unreadCount }} }} }} }}"
        )
    };
    let (small, data) = app.statements_of(&agent, &inbox(5)).await;
    assert_eq!(
        data["conversations"]["edges"][0]["node"],
        json!({ "number": 100, "requester": { "name": "P099" }, "assignee": { "email": "owner@acme.test" },
                "queue": { "name": "Support" }, "channelType": "SMS", "tags": [{ "name": "VIP" }],
                "lastMessage": { "text": "message 99", "author": { "__typename": "User", "email": "owner@acme.test" } },
                "unreadCount": 1 })
    );
    assert_eq!(
        data["conversations"]["edges"][1]["node"]["lastMessage"]["author"],
        json!({ "__typename": "Contact", "name": "P098" })
    );
    let (large, data) = app.statements_of(&agent, &inbox(100)).await;
    assert_eq!(
        data["conversations"]["edges"].as_array().map(Vec::len),
        Some(100)
    );
    assert_eq!(small, large);
    // Beyond authenticating the request: the page joined with requesters, assignees, queues,
    // last messages with their authors, read positions and unread counts; and the page's tags
    // joined with their links.
    let (authentication, _) = app.statements_of(&agent, "{ __typename }").await;
    assert_eq!(small - authentication, 2);
}

#[tokio::test]
async fn an_inbox_page_shows_what_each_conversation_shows_alone() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (sms, ann) = sms_setup(&app).await;
    let support = queue(&app, &token, "Support").await;
    let vip = tag(&app, &token, "VIP").await;
    let urgent = tag(&app, &token, "Urgent").await;
    let (agent_id, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let bob = contact(
        &app,
        &token,
        json!({ "firstName": "Bob", "phone": "+4520000003" }),
    )
    .await;
    // 1: queued inbound, unassigned, two tags, read by the agent and then written to again.
    let first = create_conversation(
        &app,
        &token,
        json!({ "channelId": sms, "requesterId": ann, "queueId": support,
                "message": { "text": "first" } }),
    )
    .await["conversation"]["id"]
        .clone();
    // 2: outbound by the owner, no queue, assigned to the owner; its last message is removed.
    let second = create_conversation(
        &app,
        &token,
        json!({ "channelId": sms, "requesterId": bob, "direction": "OUTBOUND",
                "message": { "text": "hello Bob" } }),
    )
    .await;
    let removed = second["message"]["id"].clone();
    let second = second["conversation"]["id"].clone();
    // 3: inbound, assigned to the agent, who answered last.
    let third = create_conversation(
        &app,
        &token,
        json!({ "channelId": sms, "requesterId": bob, "message": { "text": "help" } }),
    )
    .await["conversation"]["id"]
        .clone();
    run(
        &app,
        &token,
        "tagConversation",
        "ConversationTagsInput",
        json!({ "conversationId": first, "tagIds": [vip, urgent] }),
    )
    .await;
    run(
        &app,
        &agent,
        "markConversationRead",
        "MarkConversationReadInput",
        json!({ "conversationId": first }),
    )
    .await;
    run(
        &app,
        &token,
        "recordInboundMessage",
        "RecordInboundMessageInput",
        json!({ "conversationId": first, "text": "anyone?" }),
    )
    .await;
    run(
        &app,
        &token,
        "removeMessage",
        "RemoveMessageInput",
        json!({ "messageId": removed }),
    )
    .await;
    run(
        &app,
        &token,
        "assignConversation",
        "AssignConversationInput",
        json!({ "conversationId": third, "userId": agent_id }),
    )
    .await;
    run(
        &app,
        &agent,
        "sendMessage",
        "SendMessageInput",
        json!({ "conversationId": third, "text": "on it" }),
    )
    .await;

    let fields = "id number requester { name } assignee { email } queue { name }
        channel { name } channelType tags { name }
        lastMessage { text removedAt author { __typename ... on Contact { name } ... on User { email } } }
        unreadCount lastReadAt";
    let page = app
        .data(
            &agent,
            &format!("{{ conversations(first: 10) {{ nodes {{ {fields} }} }} }}"),
            json!({}),
        )
        .await;
    let nodes = page["conversations"]["nodes"].as_array().unwrap().clone();
    assert_eq!(nodes.len(), 3);
    for node in &nodes {
        let alone = app
            .data(
                &agent,
                &format!("query($id: ID!) {{ conversation(id: $id) {{ {fields} }} }}"),
                json!({ "id": node["id"] }),
            )
            .await;
        assert_eq!(node, &alone["conversation"]);
    }
    let by_id = |id: &Value| nodes.iter().find(|n| &n["id"] == id).unwrap().clone();
    let first = by_id(&first);
    assert_eq!(
        first["tags"],
        json!([{ "name": "Urgent" }, { "name": "VIP" }])
    );
    assert_eq!(first["queue"], json!({ "name": "Support" }));
    assert_eq!(first["assignee"], Value::Null);
    assert_eq!(first["unreadCount"], 1);
    assert!(first["lastReadAt"].is_string());
    assert_eq!(
        first["lastMessage"]["author"],
        json!({ "__typename": "Contact", "name": "Ann Lee" })
    );
    let second = by_id(&second);
    assert_eq!(second["queue"], Value::Null);
    assert_eq!(second["assignee"], json!({ "email": "owner@acme.test" }));
    assert_eq!(second["unreadCount"], 0);
    assert_eq!(second["lastReadAt"], Value::Null);
    assert!(second["lastMessage"]["removedAt"].is_string());
    assert_eq!(second["channel"], json!({ "name": "Support line" }));
    let third = by_id(&third);
    assert_eq!(third["assignee"], json!({ "email": "agent@acme.test" }));
    assert_eq!(third["tags"], json!([]));
    assert_eq!(
        third["lastMessage"]["author"],
        json!({ "__typename": "User", "email": "agent@acme.test" })
    );
    // The contact's message is unread, the agent's own answer is not.
    assert_eq!(third["unreadCount"], 1);
}
