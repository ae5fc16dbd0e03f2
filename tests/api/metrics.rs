//! Metrics: the catalog, the metric query over rollups and facts (presets, intervals, timezones
//! across daylight-saving changes, series, groups, percentiles), the bad-input errors (and that
//! they change nothing), records, counters; a randomized check of every metric against an
//! in-test computation; rollups agree with the facts they sum.

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::common::{TestApp, codes};
use crate::fixtures;

pub const METRIC: &str = "query($id: String!, $period: MetricPeriodInput!, $tz: String, $g: MetricGranularity,
  $f: [MetricFilterInput!], $gb: [MetricDimension!], $a: [MetricAggregation!]) {
  metric(id: $id, period: $period, timezone: $tz, granularity: $g, filters: $f, groupBy: $gb, aggregations: $a) {
    source start end timezone aggregations
    values { count sum avg min max p50 p90 stddev }
    series { start end values { count sum avg min max p50 p90 stddev } }
    groups { keys { dimension value } values { count sum avg min max p50 p90 stddev }
             series { start end values { count sum avg min max p50 p90 stddev } } } } }";

/// Runs `metric` with `vars` (merged over a TODAY/UTC default) and returns the whole body.
pub async fn metric(app: &TestApp, token: &str, vars: Value) -> Value {
    let mut all = json!({ "period": { "preset": "TODAY" }, "tz": "UTC" });
    for (k, v) in vars.as_object().expect("object").iter() {
        all[k] = v.clone();
    }
    app.gql(token, METRIC, all).await
}

async fn send(app: &TestApp, token: &str, conversation: &str, text: &str) -> Value {
    let data = app
        .data(
            token,
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id createdAt } userErrors { field message code } } }",
            json!({ "input": { "conversationId": conversation, "text": text } }),
        )
        .await;
    assert_eq!(data["sendMessage"]["userErrors"], json!([]), "{data}");
    data["sendMessage"]["message"].clone()
}

async fn act(app: &TestApp, token: &str, mutation: &str, input: Value) -> Value {
    let (name, input_type) = mutation.split_once(' ').expect("name and type");
    let data = app
        .data(
            token,
            &format!(
                "mutation($input: {input_type}!) {{ {name}(input: $input) {{ conversation {{ id status createdAt updatedAt closedAt }} userErrors {{ field message code }} }} }}"
            ),
            json!({ "input": input }),
        )
        .await;
    assert_eq!(data[name]["userErrors"], json!([]), "{data}");
    data[name]["conversation"].clone()
}

#[tokio::test]
async fn conversation_metrics_count_today_from_rollups() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (channel, contact) = fixtures::sms_setup(&app).await;
    let queue = fixtures::queue(&app, &token, "Support").await;
    let a = fixtures::create_conversation(
        &app,
        &token,
        json!({ "channelId": channel, "requesterId": contact, "queueId": queue, "message": { "text": "hi" } }),
    )
    .await["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = fixtures::inbound(&app, &token, &channel, &contact, "hello").await;
    send(&app, &token, &a, "first reply").await;
    send(&app, &token, &a, "second reply").await;
    act(
        &app,
        &token,
        "closeConversation CloseConversationInput",
        json!({ "conversationId": a }),
    )
    .await;
    act(
        &app,
        &token,
        "closeConversation CloseConversationInput",
        json!({ "conversationId": b }),
    )
    .await;
    act(
        &app,
        &token,
        "rateConversation RateConversationInput",
        json!({ "conversationId": a, "csat": 5 }),
    )
    .await;
    act(
        &app,
        &token,
        "rateConversation RateConversationInput",
        json!({ "conversationId": b, "csat": 2 }),
    )
    .await;

    let count = |body: &Value| body["data"]["metric"]["values"]["count"].clone();
    for (id, expected) in [
        ("conversations_created", 2),
        ("conversations_closed", 2),
        ("conversations_abandoned", 1),
        ("conversations_reopened", 0),
        ("messages_inbound", 2),
        ("messages_outbound", 2),
        ("first_response_time", 1),
        ("resolution_time", 2),
        ("csat_responses", 2),
        ("csat_score", 2),
        ("conversations_open", 0),
    ] {
        let body = metric(&app, &token, json!({ "id": id })).await;
        assert_eq!(count(&body), json!(expected), "{id}: {body}");
    }
    let body = metric(&app, &token, json!({ "id": "csat_score" })).await;
    assert_eq!(
        body["data"]["metric"]["values"]["avg"],
        json!(50.0),
        "{body}"
    );
    assert_eq!(body["data"]["metric"]["source"], json!("ROLLUPS"));

    // Grouped by queue: conversation a was in the queue, b had none.
    let body = metric(
        &app,
        &token,
        json!({ "id": "conversations_created", "gb": ["QUEUE"] }),
    )
    .await;
    let groups = &body["data"]["metric"]["groups"];
    assert_eq!(groups.as_array().unwrap().len(), 2, "{body}");
    let mut keys: Vec<Value> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| json!([g["keys"][0]["value"], g["values"]["count"]]))
        .collect();
    keys.sort_by_key(|k| k.to_string());
    assert_eq!(keys, vec![json!([queue, 1]), json!([null, 1])]);

    // Filtered by the queue; the series has one bucket per local hour of today.
    let body = metric(
        &app,
        &token,
        json!({ "id": "conversations_created", "g": "HOUR",
                "f": [{ "dimension": "QUEUE", "values": [queue] }] }),
    )
    .await;
    let m = &body["data"]["metric"];
    assert_eq!(m["values"]["count"], json!(1), "{body}");
    assert_eq!(m["series"].as_array().unwrap().len(), 24);
    let total: i64 = m["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["values"]["count"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 1);

    // Open now: reopen one.
    act(
        &app,
        &token,
        "reopenConversation ConversationIdInput",
        json!({ "conversationId": b }),
    )
    .await;
    let body = metric(&app, &token, json!({ "id": "conversations_open" })).await;
    assert_eq!(count(&body), json!(1), "{body}");
    assert_eq!(body["data"]["metric"]["source"], json!("LIVE"));
    let body = metric(&app, &token, json!({ "id": "conversations_reopened" })).await;
    assert_eq!(count(&body), json!(1), "{body}");
    // A reply after the reopen is a first response again.
    send(&app, &token, &b, "after reopen").await;
    let body = metric(&app, &token, json!({ "id": "first_response_time" })).await;
    assert_eq!(count(&body), json!(2), "{body}");
}

#[tokio::test]
async fn bad_input_is_refused_with_a_clear_error_and_changes_nothing() {
    let app = TestApp::spawn_with(|c| c.metrics_max_groups = 15).await;
    let token = app.org.token.clone();
    let (channel, contact) = fixtures::sms_setup(&app).await;
    fixtures::inbound(&app, &token, &channel, &contact, "hello").await;
    for i in 0..8 {
        app.user_with_token(&format!("agent{i}@acme.test"), &["AGENT"])
            .await;
    }
    let before = (
        app.count("metric_facts").await,
        app.count("metric_rollups").await,
        app.count("events").await,
    );
    let cases = [
        (
            json!({ "id": "no_such_metric" }),
            "unknown metric \"no_such_metric\": metricDefinitions lists the metrics",
        ),
        (
            json!({ "id": "conversations_created", "a": ["P90"] }),
            "metric conversations_created doesn't support the aggregation P90 (it supports COUNT)",
        ),
        (
            json!({ "id": "conversations_created", "period": { "interval": {
                "start": "2026-03-10T00:00:00Z", "end": "2026-03-01T00:00:00Z" } } }),
            "the period's end (2026-03-01T00:00:00+00:00) must be after its start (2026-03-10T00:00:00+00:00)",
        ),
        (
            json!({ "id": "conversations_created", "period": { "interval": {
                "start": "2025-01-01T00:00:00Z", "end": "2026-03-01T00:00:00Z" } } }),
            "the period spans 424.0 days; at most 400 are allowed",
        ),
        (
            json!({ "id": "conversations_created", "tz": "Mars/Olympus_Mons" }),
            "unknown timezone \"Mars/Olympus_Mons\": use an IANA name such as \"Europe/Copenhagen\"",
        ),
        (
            json!({ "id": "conversations_created", "g": "HOUR", "period": { "preset": "THIS_YEAR" } }),
            "granularity HOUR over this period makes more than 1000 buckets (the most a series may have): choose a coarser granularity or a shorter period",
        ),
        (
            json!({ "id": "campaign_accepts", "f": [{ "dimension": "QUEUE", "values": [] }] }),
            "metric campaign_accepts can't be filtered by QUEUE (its dimensions: none)",
        ),
        (
            json!({ "id": "campaign_accepts", "gb": ["USER"] }),
            "metric campaign_accepts can't be grouped by USER (its dimensions: none)",
        ),
        (
            json!({ "id": "conversations_created", "gb": ["USER", "CHANNEL"] }),
            "grouping by USER and CHANNEL may make up to 20 groups; at most 15 are allowed: group by fewer or smaller dimensions, or filter instead",
        ),
        (
            json!({ "id": "conversations_created", "f": [{ "dimension": "DIRECTION", "values": ["SIDEWAYS"] }] }),
            "\"SIDEWAYS\" is not a direction (INBOUND, OUTBOUND)",
        ),
    ];
    for (vars, message) in cases {
        let body = metric(&app, &token, vars.clone()).await;
        assert_eq!(codes(&body), vec!["BAD_USER_INPUT"], "{vars}: {body}");
        assert_eq!(body["errors"][0]["message"], json!(message), "{vars}");
        assert_eq!(body["data"], Value::Null);
    }
    let after = (
        app.count("metric_facts").await,
        app.count("metric_rollups").await,
        app.count("events").await,
    );
    assert_eq!(before, after);
}

#[tokio::test]
async fn records_and_counters() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let channel = fixtures::channel(&app, &token, "SMS", "Support line", "+4520000001").await;
    let email = fixtures::channel(&app, &token, "EMAIL", "Mail", "help@acme.test").await;
    let contact = fixtures::contact(
        &app,
        &token,
        json!({ "firstName": "Ann", "phone": "+4520000002", "email": "ann@example.test" }),
    )
    .await;
    let queue = fixtures::queue(&app, &token, "Support").await;
    let (agent_id, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    app.data(
        &token,
        "mutation($input: QueueMembersInput!) { addQueueMembers(input: $input) { userErrors { message } } }",
        json!({ "input": { "queueId": queue, "members": [{ "userId": agent_id }] } }),
    )
    .await;
    let tag = fixtures::tag(&app, &token, "vip").await;
    // a: queued, claimed by the agent, answered, closed, rated. b: queued, waiting. c: email.
    let a = fixtures::create_conversation(
        &app,
        &token,
        json!({ "channelId": channel, "requesterId": contact, "queueId": queue, "message": { "text": "a" } }),
    )
    .await["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = fixtures::create_conversation(
        &app,
        &token,
        json!({ "channelId": channel, "requesterId": contact, "queueId": queue, "message": { "text": "b" } }),
    )
    .await["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let c = fixtures::inbound(&app, &token, &email, &contact, "c").await;
    act(
        &app,
        &agent,
        "claimConversation ClaimConversationInput",
        json!({ "conversationId": a }),
    )
    .await;
    send(&app, &agent, &a, "hello").await;
    act(
        &app,
        &token,
        "tagConversation ConversationTagsInput",
        json!({ "conversationId": a, "tagIds": [tag] }),
    )
    .await;

    // Counters for the agent: b waits unassigned in their queue with 1 unread message; a is
    // theirs and they wrote the last message, but the contact's first message is unread.
    let counts = app
        .data(
            &agent,
            "{ myUnreadCounts { total mine mineMessages queues { queue { id } conversations messages } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        counts["myUnreadCounts"],
        json!({ "total": 2, "mine": 1, "mineMessages": 1,
                "queues": [{ "queue": { "id": queue }, "conversations": 1, "messages": 1 }] })
    );
    let open = app
        .data(
            &agent,
            "{ openConversationCounts { queue { id } status count } }",
            json!({}),
        )
        .await;
    let mut open = open["openConversationCounts"].as_array().unwrap().clone();
    open.sort_by_key(|v| v.to_string());
    assert_eq!(
        open,
        vec![
            json!({ "queue": null, "status": "OPEN", "count": 1 }),
            json!({ "queue": { "id": queue }, "status": "OPEN", "count": 2 }),
        ]
    );
    let summary = app
        .data(
            &agent,
            "query($id: ID!) { contactCommunicationSummary(contactId: $id) { conversations firstContactAt lastContactAt
               lastMessage { text } channels { channelType conversations messagesInbound messagesOutbound } } }",
            json!({ "id": contact }),
        )
        .await["contactCommunicationSummary"]
        .clone();
    assert_eq!(summary["conversations"], json!(3));
    assert_eq!(summary["lastMessage"], json!({ "text": "hello" }));
    assert_eq!(
        summary["channels"],
        json!([
            { "channelType": "EMAIL", "conversations": 1, "messagesInbound": 1, "messagesOutbound": 0 },
            { "channelType": "SMS", "conversations": 2, "messagesInbound": 2, "messagesOutbound": 1 },
        ])
    );
    // The agent may not read records or metrics.
    let denied = app
        .gql(&agent, "{ analyticsRecords { totalCount } }", json!({}))
        .await;
    assert_eq!(codes(&denied), vec!["FORBIDDEN"]);
    let denied = metric(&app, &agent, json!({ "id": "conversations_created" })).await;
    assert_eq!(codes(&denied), vec!["FORBIDDEN"]);

    act(
        &app,
        &agent,
        "closeConversation CloseConversationInput",
        json!({ "conversationId": a }),
    )
    .await;
    act(
        &app,
        &token,
        "rateConversation RateConversationInput",
        json!({ "conversationId": a, "csat": 4 }),
    )
    .await;
    let records = "query($f: AnalyticsRecordFilterInput) { analyticsRecords(filter: $f) { totalCount nodes {
        conversation { id } channelType direction status firstResponseSeconds resolutionSeconds waitSeconds
        handlingSeconds messagesInbound messagesOutbound ratingScore } } }";
    let all = app
        .data(
            &token,
            records,
            json!({ "f": { "period": { "preset": "TODAY" }, "timezone": "Europe/Copenhagen" } }),
        )
        .await;
    assert_eq!(all["analyticsRecords"]["totalCount"], json!(3));
    let ids: Vec<&str> = all["analyticsRecords"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["conversation"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![c.as_str(), b.as_str(), a.as_str()],
        "newest first"
    );
    let tagged = app
        .data(
            &token,
            records,
            json!({ "f": { "tagIds": [tag], "statuses": ["CLOSED"] } }),
        )
        .await;
    let nodes = tagged["analyticsRecords"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    let r = &nodes[0];
    assert_eq!(r["conversation"]["id"], json!(a));
    assert_eq!(
        (
            r["channelType"].clone(),
            r["direction"].clone(),
            r["status"].clone(),
            r["messagesInbound"].clone(),
            r["messagesOutbound"].clone(),
            r["ratingScore"].clone()
        ),
        (
            json!("SMS"),
            json!("INBOUND"),
            json!("CLOSED"),
            json!(1),
            json!(1),
            json!(4)
        )
    );
    for field in [
        "firstResponseSeconds",
        "resolutionSeconds",
        "waitSeconds",
        "handlingSeconds",
    ] {
        assert!(r[field].as_f64().unwrap() >= 0.0, "{field}: {r}");
    }
    let by_queue = app
        .data(
            &token,
            records,
            json!({ "f": { "queueIds": [queue], "rated": false } }),
        )
        .await;
    assert_eq!(by_queue["analyticsRecords"]["totalCount"], json!(1));
    let email_only = app
        .data(
            &token,
            records,
            json!({ "f": { "channelTypes": ["EMAIL"] } }),
        )
        .await;
    assert_eq!(
        email_only["analyticsRecords"]["nodes"][0]["conversation"]["id"],
        json!(c)
    );
}

// ---------------------------------------------------------------------------------------------
// Randomized correctness: random conversations, messages, claims, closes, reopens and ratings
// through the API; each conversation's facts are then moved in time (to random moments of 2026,
// many next to daylight-saving changes) and the rollups rebuilt from them; every metric is then
// checked, in several timezones, granularities, filters and groupings, against a plain in-test
// computation from what the test did.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

#[derive(Clone, Debug)]
struct Expected {
    metric: &'static str,
    at: i64,
    conv: usize,
    channel: String,
    channel_type: &'static str,
    queue: Option<String>,
    user: Option<String>,
    direction: &'static str,
    value: f64,
}

fn ms(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("time: {v}")))
        .unwrap()
        .timestamp_millis()
}

const CONV_FIELDS: &str =
    "conversation { id createdAt updatedAt closedAt assignedAt queuedAt rating { ratedAt } }";

async fn mutate(
    app: &TestApp,
    token: &str,
    name: &str,
    input_type: &str,
    input: Value,
    fields: &str,
) -> Value {
    let data = app
        .data(
            token,
            &format!("mutation($input: {input_type}!) {{ {name}(input: $input) {{ {fields} userErrors {{ field message code }} }} }}"),
            json!({ "input": input }),
        )
        .await;
    assert_eq!(data[name]["userErrors"], json!([]), "{name}: {data}");
    data[name].clone()
}

/// Nearest-rank percentile.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).max(1);
    Some(sorted[rank - 1])
}

fn expected_values(values: &[f64]) -> Value {
    let n = values.len();
    if n == 0 {
        return json!({ "count": 0 });
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let sum: f64 = values.iter().sum();
    let mean = sum / n as f64;
    let var = values.iter().map(|v| v * v).sum::<f64>() / n as f64 - mean * mean;
    json!({
        "count": n, "sum": sum, "avg": mean, "min": sorted[0], "max": sorted[n - 1],
        "p50": percentile(&sorted, 0.5), "p90": percentile(&sorted, 0.9), "stddev": var.max(0.0).sqrt()
    })
}

/// Compares the values the API returned with the expected ones (only fields the API set).
fn same_values(got: &Value, want: &Value, what: &str) {
    let count = got["count"].as_i64().unwrap_or(-1);
    assert_eq!(
        count,
        want["count"].as_i64().unwrap(),
        "{what}: count: got {got}, want {want}"
    );
    for field in ["sum", "avg", "min", "max", "p50", "p90", "stddev"] {
        let Some(g) = got[field].as_f64() else {
            if count > 0 {
                assert!(got[field].is_null(), "{what}: {field}");
            }
            continue;
        };
        let w = want[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{what}: {field} expected: {want}"));
        assert!(
            (g - w).abs() <= 1e-6 * w.abs().max(1.0),
            "{what}: {field}: got {g}, want {w}"
        );
    }
}

#[tokio::test]
async fn every_metric_matches_an_in_test_computation_across_timezones() {
    use chrono::{Datelike, TimeZone};
    let seed: u64 = std::env::var("METRICS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_abcd);
    let mut rng = Rng(seed);
    let app = TestApp::spawn().await;
    let owner = app.org.token.clone();
    let sms = fixtures::channel(&app, &owner, "SMS", "SMS", "+4520000001").await;
    let mail = fixtures::channel(&app, &owner, "EMAIL", "Mail", "help@acme.test").await;
    let channels = [(sms.clone(), "SMS"), (mail.clone(), "EMAIL")];
    let contact = fixtures::contact(
        &app,
        &owner,
        json!({ "firstName": "Ann", "phone": "+4520000002", "email": "ann@example.test" }),
    )
    .await;
    let queues = [
        fixtures::queue(&app, &owner, "One").await,
        fixtures::queue(&app, &owner, "Two").await,
    ];
    let tags = [
        fixtures::tag(&app, &owner, "red").await,
        fixtures::tag(&app, &owner, "blue").await,
    ];
    let mut agents = Vec::new();
    for i in 0..3 {
        agents.push(
            app.user_with_token(&format!("agent{i}@acme.test"), &["AGENT"])
                .await,
        );
    }
    let team = app
        .data(
            &owner,
            "mutation($input: CreateTeamInput!) { createTeam(input: $input) { team { id } } }",
            json!({ "input": { "name": "Front" } }),
        )
        .await["createTeam"]["team"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.data(
        &owner,
        "mutation($input: TeamMembersInput!) { addTeamMembers(input: $input) { userErrors { message } } }",
        json!({ "input": { "teamId": team, "userIds": [agents[0].0, agents[1].0] } }),
    )
    .await;
    let teams_of = |user: &Option<String>| -> Vec<Option<String>> {
        match user {
            Some(u) if *u == agents[0].0 || *u == agents[1].0 => vec![Some(team.clone())],
            _ => vec![None],
        }
    };

    let mut facts: Vec<Expected> = Vec::new();
    let mut convs: Vec<(String, Vec<String>)> = Vec::new();
    for k in 0..36 {
        let (channel, channel_type) = channels[rng.below(2)].clone();
        let queue = [Some(queues[0].clone()), Some(queues[1].clone()), None][rng.below(3)].clone();
        let outbound = rng.chance(20);
        let fact = |metric: &'static str,
                    at: i64,
                    user: &Option<String>,
                    direction: &'static str,
                    value: f64| Expected {
            metric,
            at,
            conv: k,
            channel: channel.clone(),
            channel_type,
            queue: queue.clone(),
            user: user.clone(),
            direction,
            value,
        };
        let conv_dir = if outbound { "OUTBOUND" } else { "INBOUND" };
        let mut assignee: Option<String> = None;
        let mut input = json!({ "channelId": channel, "requesterId": contact, "message": { "text": format!("c{k}") } });
        if let Some(q) = &queue {
            input["queueId"] = json!(q);
        }
        let creator = if outbound {
            let a = rng.below(3);
            input["direction"] = json!("OUTBOUND");
            assignee = Some(agents[a].0.clone());
            agents[a].1.clone()
        } else {
            owner.clone()
        };
        let created = mutate(
            &app,
            &creator,
            "createConversation",
            "CreateConversationInput",
            input,
            &format!("{CONV_FIELDS} message {{ createdAt }}"),
        )
        .await;
        let id = created["conversation"]["id"].as_str().unwrap().to_string();
        let created_at = ms(&created["conversation"]["createdAt"]);
        let mut episode = created_at;
        let mut responded = false;
        let mut ever_responded = false;
        facts.push(fact(
            "conversations_created",
            created_at,
            &assignee,
            conv_dir,
            1.0,
        ));
        let first_msg = ms(&created["message"]["createdAt"]);
        if outbound {
            facts.push(fact(
                "messages_outbound",
                first_msg,
                &assignee,
                "OUTBOUND",
                1.0,
            ));
            if queue.is_some() {
                let c = &created["conversation"];
                facts.push(fact(
                    "queue_wait_time",
                    ms(&c["assignedAt"]),
                    &assignee,
                    conv_dir,
                    (ms(&c["assignedAt"]) - ms(&c["queuedAt"])) as f64 / 1000.0,
                ));
            }
        } else {
            facts.push(fact("messages_inbound", first_msg, &None, "INBOUND", 1.0));
            if rng.chance(60) {
                let a = rng.below(3);
                let claimed = mutate(
                    &app,
                    &agents[a].1,
                    "claimConversation",
                    "ClaimConversationInput",
                    json!({ "conversationId": id }),
                    CONV_FIELDS,
                )
                .await;
                assignee = Some(agents[a].0.clone());
                let c = &claimed["conversation"];
                if !c["queuedAt"].is_null() {
                    facts.push(fact(
                        "queue_wait_time",
                        ms(&c["assignedAt"]),
                        &assignee,
                        conv_dir,
                        (ms(&c["assignedAt"]) - ms(&c["queuedAt"])) as f64 / 1000.0,
                    ));
                }
            }
        }
        let reply = |facts: &mut Vec<Expected>,
                     agent: usize,
                     at: i64,
                     episode: i64,
                     responded: &mut bool| {
            let user = Some(agents[agent].0.clone());
            facts.push(fact("messages_outbound", at, &user, "OUTBOUND", 1.0));
            if !outbound && !*responded {
                facts.push(fact(
                    "first_response_time",
                    at,
                    &user,
                    conv_dir,
                    (at - episode) as f64 / 1000.0,
                ));
                *responded = true;
            }
        };
        for _ in 0..[0, 1, 1, 2][rng.below(4)] {
            let a = rng.below(3);
            let sent = send(&app, &agents[a].1, &id, "reply").await;
            reply(
                &mut facts,
                a,
                ms(&sent["createdAt"]),
                episode,
                &mut responded,
            );
            ever_responded = true;
        }
        let mut closed = false;
        if rng.chance(65) {
            let c = mutate(
                &app,
                &owner,
                "closeConversation",
                "CloseConversationInput",
                json!({ "conversationId": id }),
                CONV_FIELDS,
            )
            .await["conversation"]
                .clone();
            let at = ms(&c["closedAt"]);
            facts.push(fact("conversations_closed", at, &assignee, conv_dir, 1.0));
            facts.push(fact(
                "resolution_time",
                at,
                &assignee,
                conv_dir,
                (at - created_at) as f64 / 1000.0,
            ));
            if !outbound && !ever_responded && assignee.is_none() {
                facts.push(fact(
                    "conversations_abandoned",
                    at,
                    &assignee,
                    conv_dir,
                    1.0,
                ));
            }
            closed = true;
        }
        if closed && rng.chance(40) {
            let data = mutate(
                &app,
                &owner,
                "recordInboundMessage",
                "RecordInboundMessageInput",
                json!({ "conversationId": id, "text": "again" }),
                "message { createdAt }",
            )
            .await;
            let at = ms(&data["message"]["createdAt"]);
            facts.push(fact("messages_inbound", at, &None, "INBOUND", 1.0));
            facts.push(fact("conversations_reopened", at, &assignee, conv_dir, 1.0));
            episode = at;
            responded = false;
            closed = false;
        } else if closed && rng.chance(25) {
            let c = mutate(
                &app,
                &owner,
                "reopenConversation",
                "ConversationIdInput",
                json!({ "conversationId": id }),
                CONV_FIELDS,
            )
            .await["conversation"]
                .clone();
            let at = ms(&c["updatedAt"]);
            facts.push(fact("conversations_reopened", at, &assignee, conv_dir, 1.0));
            episode = at;
            responded = false;
            closed = false;
        }
        if !closed && rng.chance(50) {
            let a = rng.below(3);
            let sent = send(&app, &agents[a].1, &id, "again").await;
            reply(
                &mut facts,
                a,
                ms(&sent["createdAt"]),
                episode,
                &mut responded,
            );
        }
        if rng.chance(50) {
            let score = 1 + rng.below(5) as i64;
            let c = mutate(
                &app,
                &owner,
                "rateConversation",
                "RateConversationInput",
                json!({ "conversationId": id, "csat": score }),
                CONV_FIELDS,
            )
            .await["conversation"]
                .clone();
            let at = ms(&c["rating"]["ratedAt"]);
            facts.push(fact("csat_responses", at, &assignee, conv_dir, 1.0));
            facts.push(fact(
                "csat_score",
                at,
                &assignee,
                conv_dir,
                if score >= 4 { 100.0 } else { 0.0 },
            ));
        }
        let mut conv_tags = Vec::new();
        for t in &tags {
            if rng.chance(40) {
                conv_tags.push(t.clone());
            }
        }
        if !conv_tags.is_empty() {
            mutate(
                &app,
                &owner,
                "tagConversation",
                "ConversationTagsInput",
                json!({ "conversationId": id, "tagIds": conv_tags }),
                "conversation { id }",
            )
            .await;
        }
        convs.push((id, conv_tags));
    }

    // The rollups the event hook kept equal those rebuilt from the facts.
    let db = &app.state.db;
    let org = switchboard::graphql::relay::decode_any_id(&app.org.org_id)
        .unwrap()
        .1;
    let snapshot = || async {
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT metric, grain, hour, channel_id, queue_id, user_id, direction, \"count\", \"sum\", \"min\", \"max\" FROM metric_rollups ORDER BY 1, 2, 3, 4, 5, 6, 7",
            ))
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                format!(
                    "{} {} {} {:?} {:?} {:?} {} {} {:.3} {} {}",
                    r.try_get::<String>("", "metric").unwrap(),
                    r.try_get::<i16>("", "grain").unwrap(),
                    r.try_get::<i64>("", "hour").unwrap(),
                    r.try_get::<uuid::Uuid>("", "channel_id").unwrap(),
                    r.try_get::<uuid::Uuid>("", "queue_id").unwrap(),
                    r.try_get::<uuid::Uuid>("", "user_id").unwrap(),
                    r.try_get::<String>("", "direction").unwrap(),
                    r.try_get::<i64>("", "count").unwrap(),
                    r.try_get::<f64>("", "sum").unwrap(),
                    r.try_get::<f64>("", "min").unwrap(),
                    r.try_get::<f64>("", "max").unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let kept = snapshot().await;
    assert!(!kept.is_empty());
    switchboard::metrics::rollup::rebuild_rollups(db, org)
        .await
        .unwrap();
    assert_eq!(
        snapshot().await,
        kept,
        "rollups kept by the event hook == rebuilt from facts"
    );
    let stored: i64 = app.count("metric_facts").await;
    assert_eq!(
        stored as usize,
        facts.len(),
        "one fact per expected occurrence"
    );

    // Move each conversation's facts to a moment of 2026: half at random, half within three
    // hours of a daylight-saving change (Europe, United States).
    let edges = [
        "2026-03-08T07:00:00Z",
        "2026-03-29T01:00:00Z",
        "2026-10-25T01:00:00Z",
        "2026-11-01T06:00:00Z",
    ];
    let year_start = ms(&json!("2026-01-01T12:00:00Z"));
    for (k, (id, _)) in convs.iter().enumerate() {
        let created = facts
            .iter()
            .find(|f| f.conv == k && f.metric == "conversations_created")
            .unwrap()
            .at;
        let target = if rng.chance(50) {
            ms(&json!(edges[rng.below(edges.len())])) - 3 * 3_600_000
                + rng.below(6 * 3_600_000) as i64
        } else {
            year_start + rng.below(350 * 86_400_000) as i64
        };
        let delta = target - created;
        for f in facts.iter_mut().filter(|f| f.conv == k) {
            f.at += delta;
        }
        let uuid = switchboard::graphql::relay::decode_any_id(id).unwrap().1;
        db.execute_raw(sea_orm::Statement::from_sql_and_values(
            db.get_database_backend(),
            if db.get_database_backend() == sea_orm::DbBackend::Postgres {
                "UPDATE metric_facts SET at_ms = at_ms + $1 WHERE conversation_id = $2"
            } else {
                "UPDATE metric_facts SET at_ms = at_ms + ? WHERE conversation_id = ?"
            },
            [delta.into(), uuid.into()],
        ))
        .await
        .unwrap();
    }
    switchboard::metrics::rollup::rebuild_rollups(db, org)
        .await
        .unwrap();

    let tag_of = |k: usize| -> Vec<Option<String>> {
        if convs[k].1.is_empty() {
            vec![None]
        } else {
            convs[k].1.iter().cloned().map(Some).collect()
        }
    };
    let counting = [
        "conversations_created",
        "conversations_closed",
        "conversations_reopened",
        "conversations_abandoned",
        "messages_inbound",
        "messages_outbound",
        "csat_responses",
    ];
    let timing = ["queue_wait_time", "first_response_time", "resolution_time"];
    // The last set asks for some aggregates and not others (the statement computes only those).
    let sets: [(&[&str], Value); 4] = [
        (&counting, json!(["COUNT"])),
        (
            &timing,
            json!(["COUNT", "SUM", "AVG", "MIN", "MAX", "P50", "P90", "STDDEV"]),
        ),
        (&timing, json!(["COUNT", "MAX", "STDDEV"])),
        (&["csat_score"], json!(["AVG", "COUNT"])),
    ];
    let zones = [
        "UTC",
        "Europe/Copenhagen",
        "America/New_York",
        "Asia/Kolkata",
        "Asia/Kathmandu",
    ];
    let groupings: Vec<Vec<&str>> = vec![
        vec![],
        vec!["QUEUE"],
        vec!["USER"],
        vec!["TEAM"],
        vec!["TAG"],
        vec!["CHANNEL_TYPE", "DIRECTION"],
        vec!["QUEUE", "USER"],
    ];
    let filters: Vec<Value> = vec![
        json!([]),
        json!([{ "dimension": "QUEUE", "values": [queues[0]] }]),
        json!([{ "dimension": "TAG", "values": [tags[0]] }]),
        json!([{ "dimension": "TEAM", "values": [team] }]),
        json!([{ "dimension": "CHANNEL", "values": [mail] }, { "dimension": "DIRECTION", "values": ["INBOUND"] }]),
    ];
    let query = "query($ids: [String!]!, $period: MetricPeriodInput!, $tz: String, $g: MetricGranularity,
      $f: [MetricFilterInput!], $gb: [MetricDimension!], $a: [MetricAggregation!]) {
      metrics(ids: $ids, period: $period, timezone: $tz, granularity: $g, filters: $f, groupBy: $gb, aggregations: $a) {
        metric { id } source values { count sum avg min max p50 p90 stddev }
        series { start values { count sum avg min max p50 p90 stddev } }
        groups { keys { dimension value } values { count sum avg min max p50 p90 stddev }
                 series { start values { count sum avg min max p50 p90 stddev } } } } }";
    let mut checked = 0;
    let mut sources = std::collections::BTreeSet::new();
    for round in 0..24 {
        let zone = zones[round % zones.len()];
        let tz: chrono_tz::Tz = zone.parse().unwrap();
        let granularity = [None, Some("DAY"), Some("WEEK"), Some("MONTH")][rng.below(4)];
        let group_by = groupings[rng.below(groupings.len())].clone();
        let filter = filters[rng.below(filters.len())].clone();
        let local_midnight = |y: i32, m: u32, d: u32| {
            tz.with_ymd_and_hms(y, m, d, 0, 0, 0)
                .earliest()
                .unwrap()
                .timestamp_millis()
        };
        let (start, end) = (local_midnight(2026, 1, 1), local_midnight(2027, 1, 1));
        let bucket_of = |at: i64| -> i64 {
            let local = chrono::DateTime::from_timestamp_millis(at)
                .unwrap()
                .with_timezone(&tz)
                .date_naive();
            let day = match granularity {
                Some("WEEK") => {
                    local - chrono::Duration::days(local.weekday().num_days_from_monday() as i64)
                }
                Some("MONTH") => local.with_day(1).unwrap(),
                _ => local,
            };
            local_midnight(day.year(), day.month(), day.day()).max(start)
        };
        let passes = |f: &Expected| -> bool {
            if f.at < start || f.at >= end {
                return false;
            }
            filter.as_array().unwrap().iter().all(|c| {
                let values: Vec<&str> = c["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                match c["dimension"].as_str().unwrap() {
                    "QUEUE" => f.queue.as_deref().is_some_and(|q| values.contains(&q)),
                    "TAG" => convs[f.conv].1.iter().any(|t| values.contains(&t.as_str())),
                    "TEAM" => teams_of(&f.user)
                        .iter()
                        .flatten()
                        .any(|t| values.contains(&t.as_str())),
                    "CHANNEL" => values.contains(&f.channel.as_str()),
                    "DIRECTION" => values.contains(&f.direction),
                    other => panic!("{other}"),
                }
            })
        };
        let keys_of = |f: &Expected| -> Vec<Vec<Option<String>>> {
            let mut out: Vec<Vec<Option<String>>> = vec![vec![]];
            for d in &group_by {
                let options: Vec<Option<String>> = match *d {
                    "QUEUE" => vec![f.queue.clone()],
                    "USER" => vec![f.user.clone()],
                    "TEAM" => teams_of(&f.user),
                    "TAG" => tag_of(f.conv),
                    "CHANNEL_TYPE" => vec![Some(f.channel_type.to_string())],
                    "DIRECTION" => vec![Some(f.direction.to_string())],
                    other => panic!("{other}"),
                };
                out = out
                    .into_iter()
                    .flat_map(|prefix| {
                        options.iter().map(move |o| {
                            let mut p = prefix.clone();
                            p.push(o.clone());
                            p
                        })
                    })
                    .collect();
            }
            out
        };
        for (ids, aggregations) in &sets {
            let body = app
                .gql(
                    &owner,
                    query,
                    json!({ "ids": ids, "period": { "interval": {
                        "start": chrono::DateTime::from_timestamp_millis(start).unwrap().to_rfc3339(),
                        "end": chrono::DateTime::from_timestamp_millis(end).unwrap().to_rfc3339() } },
                        "tz": zone, "g": granularity, "f": filter, "gb": group_by, "a": aggregations }),
                )
                .await;
            assert!(
                body.get("errors").is_none(),
                "{body} {}",
                crate::common::logs()
            );
            for result in body["data"]["metrics"].as_array().unwrap() {
                let id = result["metric"]["id"].as_str().unwrap();
                sources.insert(result["source"].as_str().unwrap().to_string());
                let what = format!(
                    "{id} in {zone} by {granularity:?} grouped by {group_by:?} filtered by {filter}"
                );
                let mine: Vec<&Expected> = facts
                    .iter()
                    .filter(|f| f.metric == id && passes(f))
                    .collect();
                let values = |list: &[&Expected]| list.iter().map(|f| f.value).collect::<Vec<_>>();
                same_values(&result["values"], &expected_values(&values(&mine)), &what);
                let check_series = |series: &Value, list: &[&Expected], what: &str| {
                    let mut seen = 0;
                    for b in series.as_array().unwrap() {
                        let s = ms(&b["start"]);
                        let inside: Vec<&Expected> = list
                            .iter()
                            .copied()
                            .filter(|f| bucket_of(f.at) == s)
                            .collect();
                        seen += inside.len();
                        same_values(
                            &b["values"],
                            &expected_values(&values(&inside)),
                            &format!("{what} bucket {}", b["start"]),
                        );
                    }
                    if granularity.is_some() {
                        assert_eq!(seen, list.len(), "{what}: every fact in a bucket");
                    }
                };
                check_series(&result["series"], &mine, &what);
                let mut groups: std::collections::BTreeMap<Vec<Option<String>>, Vec<&Expected>> =
                    Default::default();
                if !group_by.is_empty() {
                    for f in &mine {
                        for key in keys_of(f) {
                            groups.entry(key).or_default().push(f);
                        }
                    }
                }
                let got = result["groups"].as_array().unwrap();
                assert_eq!(
                    got.len(),
                    groups.len(),
                    "{what}: groups {}",
                    result["groups"]
                );
                for g in got {
                    let key: Vec<Option<String>> = g["keys"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|k| k["value"].as_str().map(str::to_string))
                        .collect();
                    let list = groups
                        .get(&key)
                        .unwrap_or_else(|| panic!("{what}: unexpected group {key:?}"));
                    let what = format!("{what} group {key:?}");
                    same_values(&g["values"], &expected_values(&values(list)), &what);
                    check_series(&g["series"], list, &what);
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 200, "{checked}");
    assert_eq!(
        sources.into_iter().collect::<Vec<_>>(),
        vec!["FACTS".to_string(), "ROLLUPS".to_string()],
        "both sources were exercised"
    );
}

#[tokio::test]
async fn call_metrics_count_ended_calls_at_their_end() {
    let app = TestApp::spawn().await;
    let t0: chrono::DateTime<chrono::Utc> = "2026-11-24T09:00:00Z".parse().unwrap();
    app.state.clock.set(t0);
    let token = app.org.token.clone();
    let (channel, _) = crate::ingest::new_channel(
        &app,
        json!({ "type": "VOICE", "name": "Phones", "address": "+4570000000" }),
    )
    .await;
    let call = |input: Value, name: &'static str, input_type: &'static str| {
        let app = &app;
        let token = token.clone();
        async move {
            let data = app
                .data(
                    &token,
                    &format!("mutation($input: {input_type}!) {{ {name}(input: $input) {{ call {{ id status waitSeconds talkSeconds }} userErrors {{ message }} }} }}"),
                    json!({ "input": input }),
                )
                .await;
            assert_eq!(data[name]["userErrors"], json!([]), "{data}");
            data[name]["call"].clone()
        }
    };
    // Answered after 7 s, talks 30 s.
    let answered = call(
        json!({ "channelId": channel, "to": "+4520000004" }),
        "startCall",
        "StartCallInput",
    )
    .await;
    let id = answered["id"].as_str().unwrap().to_string();
    app.state.clock.advance(chrono::Duration::seconds(7));
    call(json!({ "id": id }), "answerCall", "CallIdInput").await;
    app.state.clock.advance(chrono::Duration::seconds(30));
    let ended = call(json!({ "id": id }), "endCall", "EndCallInput").await;
    assert_eq!(
        (ended["waitSeconds"].clone(), ended["talkSeconds"].clone()),
        (json!(7), json!(30))
    );
    // Not answered (the simulator's NO_ANSWER number): waited 5 s.
    let missed = call(
        json!({ "channelId": channel, "to": "+4520000001" }),
        "startCall",
        "StartCallInput",
    )
    .await;
    assert_eq!(missed["status"], json!("NO_ANSWER"));

    let period =
        json!({ "interval": { "start": "2026-11-24T08:00:00Z", "end": "2026-11-24T10:00:00Z" } });
    for (id, aggregations, expected) in [
        ("calls_outbound", json!(["COUNT"]), json!({ "count": 2 })),
        ("calls_inbound", json!(["COUNT"]), json!({ "count": 0 })),
        ("calls_answered", json!(["COUNT"]), json!({ "count": 1 })),
        ("calls_missed", json!(["COUNT"]), json!({ "count": 0 })),
        (
            "call_talk_time",
            json!(["COUNT", "SUM"]),
            json!({ "count": 1, "sum": 30.0 }),
        ),
        (
            "call_wait_time",
            json!(["COUNT", "SUM", "MAX"]),
            json!({ "count": 2, "sum": 12.0, "max": 7.0 }),
        ),
    ] {
        let body = metric(
            &app,
            &token,
            json!({ "id": id, "period": period, "a": aggregations }),
        )
        .await;
        let values = &body["data"]["metric"]["values"];
        for (k, v) in expected.as_object().unwrap() {
            assert_eq!(&values[k], v, "{id}.{k}: {body}");
        }
    }
    // Grouped by channel type: all VOICE.
    let body = metric(
        &app,
        &token,
        json!({ "id": "calls_outbound", "period": period, "gb": ["CHANNEL_TYPE"] }),
    )
    .await;
    assert_eq!(
        body["data"]["metric"]["groups"],
        json!([{ "keys": [{ "dimension": "CHANNEL_TYPE", "value": "VOICE" }],
                 "values": { "count": 2, "sum": null, "avg": null, "min": null, "max": null, "p50": null, "p90": null, "stddev": null },
                 "series": [] }])
    );
}

#[tokio::test]
async fn agent_online_time_counts_each_online_stretch_at_its_end() {
    use chrono::{Duration, SubsecRound, Utc};
    use switchboard::graphql::relay::decode_id;
    use switchboard::presence::service::{self as presence, Connection};

    let app = TestApp::spawn_with(|c| c.presence_grace_seconds = 30).await;
    let token = app.org.token.clone();
    let (ann, _) = app.user_with_token("ann@acme.test", &["AGENT"]).await;
    let (bob, _) = app.user_with_token("bob@acme.test", &["AGENT"]).await;
    let team = app
        .data(
            &token,
            "mutation($input: CreateTeamInput!) { createTeam(input: $input) { team { id } } }",
            json!({ "input": { "name": "Day shift" } }),
        )
        .await["createTeam"]["team"]["id"]
        .clone();
    let added = app
        .data(
            &token,
            "mutation($input: TeamMembersInput!) { addTeamMembers(input: $input) { userErrors { code } } }",
            json!({ "input": { "teamId": team, "userIds": [ann] } }),
        )
        .await;
    assert_eq!(added["addTeamMembers"]["userErrors"], json!([]));

    let org_id = decode_id(&app.org.org_id, "Organization").unwrap();
    let instance = uuid::Uuid::now_v7();
    let connection = |user: &str| Connection {
        id: uuid::Uuid::now_v7(),
        org_id,
        user_id: decode_id(user, "User").unwrap(),
        token_id: uuid::Uuid::now_v7(),
        instance_id: instance,
    };
    let db = &app.state.db;
    let grace = Duration::seconds(30);
    let t0 = Utc::now().trunc_subsecs(0) - Duration::hours(2);
    let ttl = Duration::minutes(1);
    // Ann: 10 minutes, ended by a disconnect without grace.
    let c = connection(&ann);
    presence::connect(db, &c, t0, ttl).await.unwrap();
    presence::disconnect(db, c.id, t0 + Duration::minutes(10), Duration::zero())
        .await
        .unwrap();
    // Ann again: her instance stopped renewing; the connection expired at +21 min and she went
    // offline when the grace period after it passed (+21.5 min): 90 seconds.
    presence::connect(db, &connection(&ann), t0 + Duration::minutes(20), ttl)
        .await
        .unwrap();
    let swept = presence::sweep(db, t0 + Duration::minutes(40), grace)
        .await
        .unwrap();
    assert_eq!((swept.expired, swept.offline), (1, 1));
    // Bob: 45 seconds; then online again and still online (not counted yet).
    let c = connection(&bob);
    presence::connect(db, &c, t0 + Duration::minutes(5), ttl)
        .await
        .unwrap();
    presence::disconnect(
        db,
        c.id,
        t0 + Duration::minutes(5) + Duration::seconds(45),
        Duration::zero(),
    )
    .await
    .unwrap();
    presence::connect(
        db,
        &connection(&bob),
        t0 + Duration::minutes(50),
        Duration::hours(5),
    )
    .await
    .unwrap();

    let period = json!({ "interval": { "start": (t0 - Duration::hours(1)).to_rfc3339(), "end": (Utc::now() + Duration::hours(1)).to_rfc3339() } });
    let all = ["COUNT", "SUM", "AVG", "MIN", "MAX"];
    let body = metric(
        &app,
        &token,
        json!({ "id": "agent_online_time", "period": period, "a": all, "gb": ["USER"] }),
    )
    .await;
    let m = &body["data"]["metric"];
    assert_eq!(
        m["values"],
        json!({ "count": 3, "sum": 735.0, "avg": 245.0, "min": 45.0, "max": 600.0,
                "p50": null, "p90": null, "stddev": null }),
        "{body}"
    );
    let groups: Vec<Value> = m["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            json!([
                g["keys"][0]["value"],
                g["values"]["count"],
                g["values"]["sum"]
            ])
        })
        .collect();
    assert_eq!(groups, [json!([ann, 2, 690.0]), json!([bob, 1, 45.0])]);
    // By team: only Ann is in it.
    let body = metric(
        &app,
        &token,
        json!({ "id": "agent_online_time", "period": period, "a": ["COUNT", "SUM"],
                "f": [{ "dimension": "TEAM", "values": [team] }] }),
    )
    .await;
    assert_eq!(
        (
            &body["data"]["metric"]["values"]["count"],
            &body["data"]["metric"]["values"]["sum"]
        ),
        (&json!(2), &json!(690.0)),
        "{body}"
    );
    // Conversation dimensions don't apply.
    let body = metric(
        &app,
        &token,
        json!({ "id": "agent_online_time", "period": period, "gb": ["QUEUE"] }),
    )
    .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"], "{body}");
}

#[tokio::test]
async fn broadcast_delivery_rate_counts_only_broadcast_messages() {
    let app = TestApp::spawn_with(|c| {
        c.job_workers = 2;
        c.job_poll_ms = 20;
        c.job_backoff_base_ms = 1;
    })
    .await;
    let token = app.org.token.clone();
    let channel = fixtures::channel(&app, &token, "SMS", "Promo", "+4520009999").await;
    let mut contacts = Vec::new();
    // Two deliver, `0000` fails at once, `0003` is sent and then fails.
    for phone in ["+4520001111", "+4520002222", "+4520000000", "+4520000003"] {
        contacts.push(fixtures::contact(&app, &token, json!({ "phone": phone })).await);
    }
    // A message outside the broadcast, delivered: in delivery_rate only.
    let other = fixtures::contact(&app, &token, json!({ "phone": "+4520005555" })).await;
    let conversation = fixtures::create_conversation(
        &app,
        &token,
        json!({ "channelId": channel, "requesterId": other, "direction": "OUTBOUND", "message": { "text": "Hello" } }),
    )
    .await;
    assert_eq!(conversation["userErrors"], json!([]), "{conversation}");

    let created = app
        .data(
            &token,
            "mutation($input: CreateBroadcastInput!) { createBroadcast(input: $input) { broadcast { id } userErrors { message } } }",
            json!({ "input": { "name": "Sale", "channelId": channel, "text": "Sale today",
                               "audience": { "contactIds": contacts } } }),
        )
        .await["createBroadcast"]
        .clone();
    assert_eq!(created["userErrors"], json!([]), "{created}");
    let id = created["broadcast"]["id"].clone();
    let sent = app
        .data(
            &token,
            "mutation($input: BroadcastIdInput!) { sendBroadcast(input: $input) { userErrors { message } } }",
            json!({ "input": { "id": id } }),
        )
        .await;
    assert_eq!(sent["sendBroadcast"]["userErrors"], json!([]), "{sent}");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let stats = app
            .data(
                &token,
                "query($id: ID!) { broadcast(id: $id) { stats { delivered failed } } }",
                json!({ "id": id }),
            )
            .await["broadcast"]["stats"]
            .clone();
        let other_done = app
            .count("messages WHERE direction = 'OUTBOUND' AND delivery_status = 'DELIVERED'")
            .await
            == 3;
        if stats == json!({ "delivered": 2, "failed": 2 }) && other_done {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{stats}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let values = |body: &Value| body["data"]["metric"]["values"].clone();
    let body = metric(&app, &token, json!({ "id": "broadcast_delivery_rate" })).await;
    assert_eq!(
        values(&body),
        json!({ "count": 4, "avg": 50.0, "sum": null, "min": null, "max": null,
                "p50": null, "p90": null, "stddev": null }),
        "{body}"
    );
    let body = metric(&app, &token, json!({ "id": "delivery_rate" })).await;
    assert_eq!(values(&body)["count"], 5, "{body}");
    assert_eq!(values(&body)["avg"], 60.0, "{body}");
    // By channel type; other channel types have none.
    let body = metric(
        &app,
        &token,
        json!({ "id": "broadcast_delivery_rate", "f": [{ "dimension": "CHANNEL_TYPE", "values": ["EMAIL"] }] }),
    )
    .await;
    assert_eq!(values(&body)["count"], 0, "{body}");
    let body = metric(
        &app,
        &token,
        json!({ "id": "broadcast_delivery_rate", "gb": ["USER"] }),
    )
    .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"], "{body}");
}
