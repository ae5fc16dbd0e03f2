//! Broadcasts: a deduplicated audience from contacts, groups and segments; opted-out and
//! unaddressable contacts skipped and counted; a template rendered per contact (a failed
//! rendering fails that recipient only); real outbound messages in the contacts' conversations,
//! sent at the channel's rate; stats following the simulator's reports and replies; schedule,
//! pause, resume, cancel; `campaignProgress` over the websocket; bad input changing nothing;
//! roles and tenancy.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::{Value, json};

use crate::common::{TestApp, codes};
use crate::fixtures;
use crate::live::{connected, next_data, subscribe_to};

const FIELDS: &str = "id name status scheduledAt startedAt completedAt cancelledAt failureReason
  audience { contactIds groupIds }
  stats { audienceSize recipients queued skipped sent delivered failed cancelled replied }";

fn create_mutation() -> String {
    format!(
        "mutation($input: CreateBroadcastInput!) {{ createBroadcast(input: $input) {{ broadcast {{ {FIELDS} }} userErrors {{ field message code }} }} }}"
    )
}

fn action(name: &str) -> String {
    let input = if name == "scheduleBroadcast" {
        "ScheduleBroadcastInput"
    } else {
        "BroadcastIdInput"
    };
    format!(
        "mutation($input: {input}!) {{ {name}(input: $input) {{ broadcast {{ {FIELDS} }} userErrors {{ field message code }} }} }}"
    )
}

async fn workers() -> TestApp {
    TestApp::spawn_with(|c| {
        c.job_workers = 4;
        c.job_poll_ms = 20;
        c.job_backoff_base_ms = 1;
    })
    .await
}

/// An SMS channel sending `rate` messages per second.
async fn sms_channel(app: &TestApp, token: &str, rate: f64) -> String {
    let data = app
        .data(
            token,
            "mutation($input: CreateChannelInput!) { createChannel(input: $input) { channel { id } userErrors { message } } }",
            json!({ "input": { "type": "SMS", "name": "Promo", "address": "+4520009999", "sendRatePerSecond": rate } }),
        )
        .await;
    assert_eq!(data["createChannel"]["userErrors"], json!([]), "{data}");
    data["createChannel"]["channel"]["id"]
        .as_str()
        .expect("channel")
        .to_string()
}

async fn create(app: &TestApp, token: &str, input: Value) -> Value {
    app.data(token, &create_mutation(), json!({ "input": input }))
        .await["createBroadcast"]
        .clone()
}

async fn created(app: &TestApp, token: &str, input: Value) -> String {
    let payload = create(app, token, input).await;
    assert_eq!(payload["userErrors"], json!([]), "{payload}");
    payload["broadcast"]["id"]
        .as_str()
        .expect("broadcast id")
        .to_string()
}

async fn act(app: &TestApp, token: &str, name: &str, input: Value) -> Value {
    app.data(token, &action(name), json!({ "input": input }))
        .await[name]
        .clone()
}

async fn get(app: &TestApp, id: &str) -> Value {
    app.data(
        &app.org.token,
        &format!("query($id: ID!) {{ broadcast(id: $id) {{ {FIELDS} }} }}"),
        json!({ "id": id }),
    )
    .await["broadcast"]
        .clone()
}

/// Polls the broadcast until `done` holds (60 s at most: the whole suite shares the machine).
async fn until(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(60);
    loop {
        let broadcast = get(app, id).await;
        if done(&broadcast) {
            return broadcast;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the broadcast never got there: {broadcast}"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

#[allow(clippy::too_many_arguments)]
fn stats(
    audience: i64,
    recipients: i64,
    queued: i64,
    skipped: i64,
    sent: i64,
    delivered: i64,
    failed: i64,
    cancelled: i64,
    replied: i64,
) -> Value {
    json!({ "audienceSize": audience, "recipients": recipients, "queued": queued,
            "skipped": skipped, "sent": sent, "delivered": delivered, "failed": failed,
            "cancelled": cancelled, "replied": replied })
}

const RECIPIENTS: &str = "query($id: ID!, $s: [BroadcastRecipientStatus!]) { broadcast(id: $id) {
  recipients(statuses: $s, first: 50) { totalCount nodes { contact { name } status reason detail
    message { text deliveryStatus direction } conversation { id direction } repliedAt } } } }";

async fn recipients(app: &TestApp, id: &str, statuses: Value) -> Value {
    app.data(
        &app.org.token,
        RECIPIENTS,
        json!({ "id": id, "s": statuses }),
    )
    .await["broadcast"]["recipients"]
        .clone()
}

async fn group(app: &TestApp, token: &str, input: Value) -> String {
    let data = app
        .data(
            token,
            "mutation($input: CreateContactGroupInput!) { createContactGroup(input: $input) { contactGroup { id } userErrors { message } } }",
            json!({ "input": input }),
        )
        .await;
    assert_eq!(
        data["createContactGroup"]["userErrors"],
        json!([]),
        "{data}"
    );
    data["createContactGroup"]["contactGroup"]["id"]
        .as_str()
        .expect("group id")
        .to_string()
}

async fn add_members(app: &TestApp, token: &str, group: &str, contacts: &[&str]) {
    let data = app
        .data(
            token,
            "mutation($g: ID!, $c: [ID!]!) { addContactGroupMembers(input: { groupId: $g, contactIds: $c }) { userErrors { message } } }",
            json!({ "g": group, "c": contacts }),
        )
        .await;
    assert_eq!(data["addContactGroupMembers"]["userErrors"], json!([]));
}

async fn opt_out(app: &TestApp, token: &str, contact: &str) {
    let data = app
        .data(
            token,
            "mutation($input: SetContactConsentInput!) { setContactConsent(input: $input) { userErrors { message } } }",
            json!({ "input": { "contactId": contact, "channel": "SMS", "status": "OPTED_OUT", "at": "2026-01-01T00:00:00Z", "source": "keyword STOP" } }),
        )
        .await;
    assert_eq!(data["setContactConsent"]["userErrors"], json!([]));
}

async fn template(app: &TestApp, token: &str, text: &str) -> String {
    let data = app
        .data(
            token,
            "mutation($input: CreateTemplateInput!) { createTemplate(input: $input) { template { id } userErrors { message } } }",
            json!({ "input": { "name": "Promo", "channelType": "SMS", "text": text } }),
        )
        .await;
    assert_eq!(data["createTemplate"]["userErrors"], json!([]), "{data}");
    data["createTemplate"]["template"]["id"]
        .as_str()
        .expect("template id")
        .to_string()
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("time"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

#[tokio::test]
async fn a_broadcast_reaches_its_deduplicated_audience_with_messages_rendered_per_contact() {
    let app = workers().await;
    let token = app.org.token.clone();
    let (_, lead) = app.user_with_token("lead@acme.test", &["TEAM_LEAD"]).await;
    let channel = sms_channel(&app, &token, 100.0).await;
    let ann = fixtures::contact(
        &app,
        &token,
        json!({ "firstName": "Ann", "phone": "+4520001111", "company": "Acme" }),
    )
    .await;
    let bob = fixtures::contact(
        &app,
        &token,
        json!({ "firstName": "Bob", "phone": "+4520002222", "company": "Acme" }),
    )
    .await;
    let carol = fixtures::contact(
        &app,
        &token,
        json!({ "firstName": "Carol", "phone": "+4520003333" }),
    )
    .await;
    opt_out(&app, &token, &carol).await;
    let _dave = fixtures::contact(
        &app,
        &token,
        json!({ "firstName": "Dave", "email": "dave@example.com", "company": "Acme" }),
    )
    .await;
    let erin = fixtures::contact(
        &app,
        &token,
        json!({ "displayName": "Erin", "phone": "+4520000003" }),
    )
    .await;
    // Not in the audience.
    fixtures::contact(
        &app,
        &token,
        json!({ "firstName": "Finn", "phone": "+4520006666" }),
    )
    .await;
    // Bob already talks to us on the channel: his message goes into that conversation.
    let bobs = fixtures::inbound(&app, &token, &channel, &bob, "Any deals?").await;
    let vip = group(&app, &token, json!({ "name": "VIP" })).await;
    add_members(&app, &token, &vip, &[&ann, &carol]).await;
    let acme = group(
        &app,
        &token,
        json!({ "name": "Acme people", "rules": [{ "field": "company", "operator": "EQ", "value": "Acme" }] }),
    )
    .await;
    let promo = template(&app, &lead, "Hi {{ contact.firstName }}, {{ offer }}").await;

    let payload = create(
        &app,
        &lead,
        json!({ "name": "Spring sale", "channelId": channel, "templateId": promo,
                "variables": { "offer": "20% off today" },
                "audience": { "contactIds": [ann, erin, ann], "groupIds": [vip, acme] } }),
    )
    .await;
    assert_eq!(payload["userErrors"], json!([]), "{payload}");
    let id = payload["broadcast"]["id"].as_str().expect("id").to_string();
    assert_eq!(payload["broadcast"]["status"], "DRAFT");
    assert_eq!(
        payload["broadcast"]["audience"],
        json!({ "contactIds": [ann, erin], "groupIds": [vip, acme] })
    );

    let sent = act(&app, &lead, "sendBroadcast", json!({ "id": id })).await;
    assert_eq!(sent["userErrors"], json!([]), "{sent}");
    assert_eq!(sent["broadcast"]["status"], "SENDING");
    // Ann, Bob, Carol, Dave, Erin: each once.
    assert_eq!(sent["broadcast"]["stats"]["audienceSize"], 5);

    let done = until(&app, &id, |b| {
        b["status"] == "COMPLETED" && b["stats"]["delivered"] == 2
    })
    .await;
    // Dave has no phone, Carol opted out; Erin has no first name: her rendering failed.
    assert_eq!(done["stats"], stats(5, 5, 0, 2, 2, 2, 1, 0, 0));
    assert!(done["completedAt"].is_string());

    let all = recipients(&app, &id, Value::Null).await;
    assert_eq!(all["totalCount"], 5);
    let by_name = |name: &str| -> Value {
        all["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .find(|n| n["contact"]["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no recipient {name}: {all}"))
    };
    let ann_row = by_name("Ann");
    assert_eq!(ann_row["status"], "DELIVERED");
    assert_eq!(
        ann_row["message"],
        json!({ "text": "Hi Ann, 20% off today", "deliveryStatus": "DELIVERED", "direction": "OUTBOUND" })
    );
    assert_eq!(ann_row["conversation"]["direction"], "OUTBOUND");
    let bob_row = by_name("Bob");
    assert_eq!(bob_row["message"]["text"], "Hi Bob, 20% off today");
    assert_eq!(bob_row["conversation"]["id"], bobs.as_str());
    let carol_row = by_name("Carol");
    assert_eq!(
        (
            carol_row["status"].clone(),
            carol_row["reason"].clone(),
            carol_row["message"].clone()
        ),
        (json!("SKIPPED"), json!("OPTED_OUT"), Value::Null)
    );
    let dave_row = by_name("Dave");
    assert_eq!(
        (dave_row["status"].clone(), dave_row["reason"].clone()),
        (json!("SKIPPED"), json!("NO_ADDRESS"))
    );
    let erin_row = by_name("Erin");
    assert_eq!(
        (erin_row["status"].clone(), erin_row["reason"].clone()),
        (json!("FAILED"), json!("RENDER_FAILED"))
    );
    assert!(
        erin_row["detail"]
            .as_str()
            .is_some_and(|d| d.contains("contact.firstName")),
        "{erin_row}"
    );
    let skipped = recipients(&app, &id, json!(["SKIPPED"])).await;
    assert_eq!(skipped["totalCount"], 2);

    // Two real messages: Ann's in a new outbound conversation, Bob's in his.
    assert_eq!(
        app.count("messages WHERE direction = 'OUTBOUND' AND author_kind = 'SYSTEM'")
            .await,
        2
    );
    assert_eq!(
        app.count("conversations WHERE direction = 'OUTBOUND'")
            .await,
        1
    );
    assert_eq!(app.count("jobs WHERE kind = 'message.deliver'").await, 2);

    // Bob writes back: a reply.
    let reply = app
        .data(
            &token,
            "mutation($input: RecordInboundMessageInput!) { recordInboundMessage(input: $input) { userErrors { message } } }",
            json!({ "input": { "conversationId": bobs, "text": "I'll take it" } }),
        )
        .await;
    assert_eq!(reply["recordInboundMessage"]["userErrors"], json!([]));
    let replied = get(&app, &id).await;
    assert_eq!(replied["stats"]["replied"], 1);
    assert!(
        recipients(&app, &id, json!(["DELIVERED"])).await["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .any(|n| n["contact"]["name"] == "Bob" && n["repliedAt"].is_string())
    );
    // A second reply counts once.
    app.data(
        &token,
        "mutation($input: RecordInboundMessageInput!) { recordInboundMessage(input: $input) { userErrors { message } } }",
        json!({ "input": { "conversationId": bobs, "text": "Really" } }),
    )
    .await;
    assert_eq!(get(&app, &id).await["stats"]["replied"], 1);

    for event in [
        "BROADCAST_CREATED",
        "BROADCAST_STARTED",
        "BROADCAST_COMPLETED",
    ] {
        assert_eq!(
            app.count(&format!(
                "events WHERE event_type = '{event}' AND subject_type = 'Broadcast'"
            ))
            .await,
            1,
            "{event}"
        );
    }
    // A completed broadcast cannot be paused, cancelled, sent or deleted; nothing changes.
    let events = app.count("events").await;
    for name in [
        "pauseBroadcast",
        "cancelBroadcast",
        "sendBroadcast",
        "resumeBroadcast",
    ] {
        let refused = act(&app, &lead, name, json!({ "id": id })).await;
        assert_eq!(refused["broadcast"], Value::Null);
        assert_eq!(refused["userErrors"][0]["code"], "INVALID_STATE", "{name}");
        assert_eq!(refused["userErrors"][0]["field"], json!(["input", "id"]));
    }
    let paused = act(&app, &lead, "pauseBroadcast", json!({ "id": id })).await;
    assert_eq!(
        paused["userErrors"][0]["message"],
        "the broadcast is COMPLETED: only a SENDING broadcast can be paused"
    );
    // Nor changed or deleted.
    let changed = app
        .data(
            &lead,
            "mutation($input: UpdateBroadcastInput!) { updateBroadcast(input: $input) { broadcast { id } userErrors { field message code } } }",
            json!({ "input": { "id": id, "name": "Renamed" } }),
        )
        .await;
    assert_eq!(
        changed["updateBroadcast"],
        json!({ "broadcast": null, "userErrors": [{ "field": ["input", "id"], "code": "INVALID_STATE",
            "message": "the broadcast is COMPLETED: only a DRAFT or SCHEDULED broadcast can be changed" }] })
    );
    let deleted = app
        .data(
            &lead,
            "mutation($input: BroadcastIdInput!) { deleteBroadcast(input: $input) { deletedBroadcastId userErrors { code } } }",
            json!({ "input": { "id": id } }),
        )
        .await;
    assert_eq!(
        deleted["deleteBroadcast"],
        json!({ "deletedBroadcastId": null, "userErrors": [{ "code": "INVALID_STATE" }] })
    );
    let after = get(&app, &id).await;
    assert_eq!(
        (after["status"].clone(), after["name"].clone()),
        (json!("COMPLETED"), json!("Spring sale"))
    );
    assert_eq!(app.count("events").await, events);
    assert_eq!(app.count("broadcast_recipients").await, 5);
}

#[tokio::test]
async fn messages_go_out_at_the_channel_rate() {
    let app = workers().await;
    let token = app.org.token.clone();
    let channel = sms_channel(&app, &token, 5.0).await;
    let mut contacts = Vec::new();
    for n in 0..6 {
        contacts.push(
            fixtures::contact(
                &app,
                &token,
                json!({ "firstName": format!("C{n}"), "phone": format!("+452000{n}{n}{n}9") }),
            )
            .await,
        );
    }
    let id = created(
        &app,
        &token,
        json!({ "name": "Burst", "channelId": channel, "text": "Hello {{ contact.firstName }}",
                "audience": { "contactIds": contacts } }),
    )
    .await;
    act(&app, &token, "sendBroadcast", json!({ "id": id })).await;
    let done = until(&app, &id, |b| b["stats"]["delivered"] == 6).await;
    assert_eq!(done["status"], "COMPLETED");
    let data = app
        .data(
            &token,
            "query($id: ID!) { broadcast(id: $id) { recipients(first: 10) { nodes { message { text deliveryHistory { status at } } } } } }",
            json!({ "id": id }),
        )
        .await;
    let mut sent: Vec<DateTime<Utc>> = data["broadcast"]["recipients"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .flat_map(|n| {
            n["message"]["deliveryHistory"]
                .as_array()
                .expect("history")
                .iter()
                .filter(|s| s["status"] == "SENT")
                .map(|s| time(&s["at"]))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(sent.len(), 6);
    sent.sort();
    let gaps: Vec<i64> = sent
        .windows(2)
        .map(|w| (w[1] - w[0]).num_microseconds().unwrap_or_default())
        .collect();
    assert!(
        gaps.iter().all(|gap| *gap >= 200_000),
        "sends closer than 1/rate: {gaps:?}"
    );
}

#[tokio::test]
async fn schedule_pause_resume_and_cancel() {
    let app = workers().await;
    let token = app.org.token.clone();
    let channel = sms_channel(&app, &token, 0.5).await;
    let mut contacts = Vec::new();
    for n in 1..=3 {
        contacts.push(
            fixtures::contact(
                &app,
                &token,
                json!({ "firstName": format!("P{n}"), "phone": format!("+45300000{n}5") }),
            )
            .await,
        );
    }
    let input = json!({ "name": "Later", "channelId": channel, "text": "News",
                        "audience": { "contactIds": contacts } });
    // The runner's clock stands an hour back: nothing enqueued now is due.
    let now = Utc::now().trunc_subsecs(6);
    app.state.clock.set(now - Duration::hours(1));

    // Scheduling in the past is refused and changes nothing.
    let id = created(&app, &token, input.clone()).await;
    let (jobs, events) = (app.count("jobs").await, app.count("events").await);
    let past = act(
        &app,
        &token,
        "scheduleBroadcast",
        json!({ "id": id, "scheduledAt": (Utc::now() - Duration::minutes(1)).to_rfc3339() }),
    )
    .await;
    assert_eq!(
        past["userErrors"],
        json!([{ "field": ["input", "scheduledAt"], "message": "scheduledAt must be in the future", "code": "INVALID" }])
    );
    assert_eq!(
        (app.count("jobs").await, app.count("events").await),
        (jobs, events)
    );
    assert_eq!(get(&app, &id).await["status"], "DRAFT");

    let at = now + Duration::hours(2);
    let scheduled = act(
        &app,
        &token,
        "scheduleBroadcast",
        json!({ "id": id, "scheduledAt": at.to_rfc3339() }),
    )
    .await;
    assert_eq!(scheduled["userErrors"], json!([]));
    assert_eq!(scheduled["broadcast"]["status"], "SCHEDULED");
    assert_eq!(time(&scheduled["broadcast"]["scheduledAt"]), at);
    // Still changeable while scheduled.
    let renamed = app
        .data(
            &token,
            "mutation($input: UpdateBroadcastInput!) { updateBroadcast(input: $input) { broadcast { name status } userErrors { code } } }",
            json!({ "input": { "id": id, "name": "Later, renamed" } }),
        )
        .await;
    assert_eq!(
        renamed["updateBroadcast"],
        json!({ "broadcast": { "name": "Later, renamed", "status": "SCHEDULED" }, "userErrors": [] })
    );
    // Paused only while sending.
    let early = act(&app, &token, "pauseBroadcast", json!({ "id": id })).await;
    assert_eq!(early["userErrors"][0]["code"], "INVALID_STATE");

    // Its time comes: it starts and sends.
    app.state.clock.set(at);
    app.state.jobs.wake();
    let started = until(&app, &id, |b| b["status"] != "SCHEDULED").await;
    assert_eq!(started["stats"]["audienceSize"], 3);
    let expanded = until(&app, &id, |b| b["stats"]["recipients"] == 3).await;
    assert!(expanded["startedAt"].is_string());

    // Sent now, but paused before its job ran: the job finds it paused and makes nothing;
    // resuming goes on.
    let second = created(&app, &token, input.clone()).await;
    app.state.clock.set(now - Duration::hours(1));
    // A claim that read the clock before it went back may still be under way: let it end.
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    let sending = act(&app, &token, "sendBroadcast", json!({ "id": second })).await;
    assert_eq!(sending["broadcast"]["status"], "SENDING");
    let paused = act(&app, &token, "pauseBroadcast", json!({ "id": second })).await;
    assert_eq!(paused["userErrors"], json!([]));
    assert_eq!(paused["broadcast"]["status"], "PAUSED");
    app.state.clock.set(at + Duration::seconds(1));
    app.state.jobs.wake();
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(get(&app, &second).await["stats"]["recipients"], 0);
    let resumed = act(&app, &token, "resumeBroadcast", json!({ "id": second })).await;
    assert_eq!(resumed["broadcast"]["status"], "SENDING");
    let expanded = until(&app, &second, |b| b["stats"]["recipients"] == 3).await;
    assert_eq!(expanded["stats"]["audienceSize"], 3);
    // Each event once.
    for event in [
        "BROADCAST_PAUSED",
        "BROADCAST_RESUMED",
        "BROADCAST_SCHEDULED",
    ] {
        assert_eq!(
            app.count(&format!("events WHERE event_type = '{event}'"))
                .await,
            1,
            "{event}"
        );
    }

    // Cancelled while its messages wait for the channel (one every 2 s): those not sent yet
    // are canceled and their recipients are CANCELLED.
    let cancelled = act(&app, &token, "cancelBroadcast", json!({ "id": second })).await;
    assert_eq!(cancelled["userErrors"], json!([]), "{cancelled}");
    assert_eq!(cancelled["broadcast"]["status"], "CANCELLED");
    let done = until(&app, &second, |b| b["stats"]["queued"] == 0).await;
    let cancelled_count = done["stats"]["cancelled"].as_i64().expect("cancelled");
    assert!(cancelled_count >= 1, "{done}");
    assert_eq!(
        done["stats"]["sent"].as_i64().expect("sent") + cancelled_count,
        3,
        "{done}"
    );
    let rows = recipients(&app, &second, json!(["CANCELLED"])).await;
    assert_eq!(rows["totalCount"], cancelled_count);
    for row in rows["nodes"].as_array().expect("nodes") {
        assert_eq!(row["message"]["deliveryStatus"], "CANCELED");
        assert_eq!(row["detail"], "the broadcast was cancelled");
    }
    assert_eq!(
        app.count("message_status_events WHERE reason = 'the broadcast was cancelled'")
            .await,
        cancelled_count
    );
    // A cancelled broadcast cannot be resumed or deleted.
    for name in ["resumeBroadcast", "deleteBroadcast"] {
        let refused = app
            .data(
                &token,
                &format!("mutation($input: BroadcastIdInput!) {{ {name}(input: $input) {{ userErrors {{ code }} }} }}"),
                json!({ "input": { "id": second } }),
            )
            .await;
        assert_eq!(refused[name]["userErrors"][0]["code"], "INVALID_STATE");
    }
    assert_eq!(get(&app, &second).await["status"], "CANCELLED");
}

#[tokio::test]
async fn campaign_progress_reaches_subscribers_and_resumes_after_a_cursor() {
    let app = workers().await;
    let token = app.org.token.clone();
    let channel = sms_channel(&app, &token, 100.0).await;
    let ann = fixtures::contact(
        &app,
        &token,
        json!({ "firstName": "Ann", "phone": "+4520001111" }),
    )
    .await;
    let id = created(
        &app,
        &token,
        json!({ "name": "Live", "channelId": channel, "text": "Hi", "audience": { "contactIds": [ann] } }),
    )
    .await;
    const SUB: &str = "subscription($id: ID!, $after: String) { campaignProgress(broadcastId: $id, after: $after) {
      cursor change broadcast { status stats { recipients sent delivered } } } }";
    let mut socket = connected(&app, &token).await;
    // From the log's end: no change from here on is missed, however late the server starts
    // the subscription.
    let after = app.log_end_cursor().await;
    subscribe_to(&mut socket, "p", SUB, json!({ "id": id, "after": after })).await;
    act(&app, &token, "sendBroadcast", json!({ "id": id })).await;
    let mut changes = Vec::new();
    let mut first_cursor = None;
    loop {
        let data = tokio::time::timeout(StdDuration::from_secs(60), next_data(&mut socket, "p"))
            .await
            .expect("progress within 60 s");
        let event = &data["campaignProgress"];
        first_cursor.get_or_insert_with(|| event["cursor"].as_str().expect("cursor").to_string());
        changes.push(event["change"].as_str().expect("change").to_string());
        // Until the completion itself: every event shows the broadcast as it is when delivered,
        // so an earlier one delivered late may already show it completed.
        if event["change"] == "COMPLETED" {
            assert_eq!(
                (
                    &event["broadcast"]["status"],
                    &event["broadcast"]["stats"]["delivered"]
                ),
                (&json!("COMPLETED"), &json!(1)),
                "{event}"
            );
            break;
        }
    }
    assert_eq!(changes[0], "STARTED");
    assert!(changes.contains(&"COMPLETED".to_string()), "{changes:?}");

    // Resumed after the first event: the rest again, from the log.
    let mut again = connected(&app, &token).await;
    subscribe_to(
        &mut again,
        "r",
        SUB,
        json!({ "id": id, "after": first_cursor }),
    )
    .await;
    let data = tokio::time::timeout(StdDuration::from_secs(60), next_data(&mut again, "r"))
        .await
        .expect("replayed");
    assert_eq!(data["campaignProgress"]["change"], changes[1].as_str());

    // Another organization's broadcast is not found.
    let other = app.create_org("Other", "other", "owner@other.test").await;
    let mut theirs = connected(&app, &other.token).await;
    subscribe_to(&mut theirs, "x", SUB, json!({ "id": id })).await;
    let message = crate::live::next(&mut theirs).await.expect("answer");
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{message}"
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_a_clear_error_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let channel = sms_channel(&app, &token, 10.0).await;
    let ann = fixtures::contact(
        &app,
        &token,
        json!({ "firstName": "Ann", "phone": "+4520001111" }),
    )
    .await;
    let empty_group = group(&app, &token, json!({ "name": "Nobody" })).await;
    let archived = fixtures::channel(&app, &token, "SMS", "Old", "+4520008888").await;
    let data = app
        .data(
            &token,
            "mutation($id: ID!) { archiveChannel(input: { id: $id }) { userErrors { code } } }",
            json!({ "id": archived }),
        )
        .await;
    assert_eq!(data["archiveChannel"]["userErrors"], json!([]));
    let promo = template(&app, &token, "Hi {{ contact.firstName }}").await;
    let draft = created(
        &app,
        &token,
        json!({ "name": "Empty", "channelId": channel, "text": "Hi", "audience": { "groupIds": [empty_group] } }),
    )
    .await;

    let counts = || async {
        (
            app.count("broadcasts").await,
            app.count("broadcast_recipients").await,
            app.count("jobs").await,
            app.count("events").await,
            app.count("messages").await,
        )
    };
    let before = counts().await;
    let cases = [
        (
            json!({ "name": "x", "channelId": channel, "text": "Hi", "audience": {} }),
            json!([{ "field": ["input", "audience"], "message": "the audience is empty: give contactIds or groupIds", "code": "REQUIRED" }]),
        ),
        (
            json!({ "name": "x", "channelId": archived, "text": "Hi", "audience": { "contactIds": [ann] } }),
            json!([{ "field": ["input", "channelId"], "message": "the channel is archived", "code": "INVALID_STATE" }]),
        ),
        (
            json!({ "name": "x", "channelId": channel, "templateId": promo, "text": "Hi", "audience": { "contactIds": [ann] } }),
            json!([{ "field": ["input", "text"], "message": "give either templateId or a body, not both", "code": "INVALID" }]),
        ),
        (
            json!({ "name": "x", "channelId": channel, "audience": { "contactIds": [ann] } }),
            json!([{ "field": ["input", "text"], "message": "a broadcast needs a templateId, text or html", "code": "REQUIRED" }]),
        ),
        (
            json!({ "name": "x", "channelId": channel, "html": "<p>Hi</p>", "audience": { "contactIds": [ann] } }),
            json!([{ "field": ["input", "html"], "message": "SMS and WhatsApp messages are plain text; give `text` instead of `html`", "code": "INVALID" }]),
        ),
        (
            json!({ "name": "x", "channelId": channel, "text": "Hi {{ oops", "audience": { "contactIds": [ann] } }),
            json!([{ "field": ["input", "text"], "message": "unclosed placeholder: `{{` without `}}` at line 1, column 4", "code": "INVALID" }]),
        ),
        (
            json!({ "name": " ", "channelId": channel, "text": "Hi", "audience": { "contactIds": [ann] } }),
            json!([{ "field": ["input", "name"], "message": "name must not be blank", "code": "REQUIRED" }]),
        ),
    ];
    for (input, errors) in cases {
        let payload = create(&app, &token, input.clone()).await;
        assert_eq!(payload["broadcast"], Value::Null, "{input}");
        // Compare field and code exactly, the message where it is ours.
        let got = &payload["userErrors"];
        assert_eq!(got.as_array().map(Vec::len), Some(1), "{input}: {got}");
        assert_eq!(got[0]["field"], errors[0]["field"], "{input}: {got}");
        assert_eq!(got[0]["code"], errors[0]["code"], "{input}: {got}");
        if !errors[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("placeholder")
            && errors[0]["field"] != json!(["input", "name"])
        {
            assert_eq!(got[0]["message"], errors[0]["message"], "{input}");
        }
    }
    // An unknown contact.
    let unknown = create(
        &app,
        &token,
        json!({ "name": "x", "channelId": channel, "text": "Hi", "audience": { "contactIds": [ann, "Q29udGFjdDowMTk0MDAwMC0wMDAwLTcwMDAtODAwMC0wMDAwMDAwMDAwMDA"] } }),
    )
    .await;
    assert_eq!(unknown["userErrors"][0]["code"], "NOT_FOUND", "{unknown}");
    assert_eq!(counts().await, before);

    // A group without members: sending is refused, the draft stays.
    let empty = act(&app, &token, "sendBroadcast", json!({ "id": draft })).await;
    assert_eq!(
        empty["userErrors"],
        json!([{ "field": ["input", "audience"], "message": "the audience is empty: none of its contacts and group members can be reached", "code": "INVALID_STATE" }])
    );
    // Its only contact anonymized counts as empty too.
    let lone = created(
        &app,
        &token,
        json!({ "name": "Lone", "channelId": channel, "text": "Hi", "audience": { "contactIds": [ann] } }),
    )
    .await;
    let gone = app
        .data(
            &token,
            "mutation($input: AnonymizeContactInput!) { anonymizeContact(input: $input) { userErrors { message } } }",
            json!({ "input": { "contactId": ann } }),
        )
        .await;
    assert_eq!(gone["anonymizeContact"]["userErrors"], json!([]));
    let before = counts().await;
    let anonymized = act(&app, &token, "sendBroadcast", json!({ "id": lone })).await;
    assert_eq!(
        anonymized["userErrors"][0]["field"],
        json!(["input", "audience"])
    );
    assert_eq!(anonymized["userErrors"][0]["code"], "INVALID_STATE");
    // The channel archived after the draft was made.
    let bob = fixtures::contact(
        &app,
        &token,
        json!({ "firstName": "Bob", "phone": "+4520002222" }),
    )
    .await;
    let later = created(
        &app,
        &token,
        json!({ "name": "Later", "channelId": channel, "text": "Hi", "audience": { "contactIds": [bob] } }),
    )
    .await;
    let before_archive = counts().await;
    app.data(
        &token,
        "mutation($id: ID!) { archiveChannel(input: { id: $id }) { userErrors { code } } }",
        json!({ "id": channel }),
    )
    .await;
    let events_archived = app.count("events").await;
    let on_archived = act(&app, &token, "sendBroadcast", json!({ "id": later })).await;
    assert_eq!(
        on_archived["userErrors"],
        json!([{ "field": ["input", "channelId"], "message": "the channel is archived", "code": "INVALID_STATE" }])
    );
    assert_eq!(app.count("events").await, events_archived);
    assert_eq!(app.count("jobs").await, before_archive.2);
    for id in [&draft, &lone, &later] {
        assert_eq!(get(&app, id).await["status"], "DRAFT");
    }
    assert_eq!(
        (
            app.count("broadcasts").await,
            app.count("broadcast_recipients").await,
            app.count("messages").await
        ),
        (before.0 + 1, before.1, before.4)
    );
    // Deleting a draft works; an unknown id is NOT_FOUND.
    let deleted = app
        .data(
            &token,
            "mutation($input: BroadcastIdInput!) { deleteBroadcast(input: $input) { deletedBroadcastId userErrors { code } } }",
            json!({ "input": { "id": draft } }),
        )
        .await;
    assert_eq!(
        deleted["deleteBroadcast"]["deletedBroadcastId"],
        draft.as_str()
    );
    let gone = act(&app, &token, "sendBroadcast", json!({ "id": draft })).await;
    assert_eq!(gone["userErrors"][0]["code"], "NOT_FOUND");
}

#[tokio::test]
async fn agents_are_refused_and_organizations_are_isolated() {
    let app = TestApp::spawn().await;
    let token = app.org.token.clone();
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let channel = sms_channel(&app, &token, 10.0).await;
    let ann = fixtures::contact(
        &app,
        &token,
        json!({ "firstName": "Ann", "phone": "+4520001111" }),
    )
    .await;
    let input = json!({ "name": "Mine", "channelId": channel, "text": "Hi", "audience": { "contactIds": [ann] } });
    let id = created(&app, &token, input.clone()).await;
    let before = app.count("broadcasts").await;

    let body = app
        .gql(&agent, &create_mutation(), json!({ "input": input }))
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"]);
    for name in ["sendBroadcast", "pauseBroadcast", "cancelBroadcast"] {
        let body = app
            .gql(&agent, &action(name), json!({ "input": { "id": id } }))
            .await;
        assert_eq!(codes(&body), ["FORBIDDEN"], "{name}: {body}");
    }
    let body = app
        .gql(&agent, "{ broadcasts(first: 5) { totalCount } }", json!({}))
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"]);
    assert_eq!(app.count("broadcasts").await, before);
    assert_eq!(get(&app, &id).await["status"], "DRAFT");

    // Another organization sees none of it and cannot use our channel or contacts.
    let other = app.create_org("Other", "other", "owner@other.test").await;
    let listed = app
        .data(
            &other.token,
            "{ broadcasts(first: 5) { totalCount nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["broadcasts"],
        json!({ "totalCount": 0, "nodes": [] })
    );
    let seen = app
        .data(
            &other.token,
            "query($id: ID!) { broadcast(id: $id) { id } node(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(seen, json!({ "broadcast": null, "node": null }));
    let theirs = act(&app, &other.token, "sendBroadcast", json!({ "id": id })).await;
    assert_eq!(theirs["userErrors"][0]["code"], "NOT_FOUND");
    let borrowed = create(&app, &other.token, input).await;
    assert_eq!(
        borrowed["userErrors"][0]["field"],
        json!(["input", "channelId"])
    );
    assert_eq!(borrowed["userErrors"][0]["code"], "NOT_FOUND");
    assert_eq!(app.count("broadcasts").await, before);

    // Ours, listed and filtered.
    let listed = app
        .data(
            &token,
            "query($c: ID) { all: broadcasts(first: 5) { totalCount nodes { id name } }
              drafts: broadcasts(filter: { statuses: [DRAFT], channelId: $c }, first: 5) { totalCount }
              sending: broadcasts(filter: { statuses: [SENDING] }, first: 5) { totalCount } }",
            json!({ "c": channel }),
        )
        .await;
    assert_eq!(
        listed,
        json!({ "all": { "totalCount": 1, "nodes": [{ "id": id, "name": "Mine" }] },
                "drafts": { "totalCount": 1 }, "sending": { "totalCount": 0 } })
    );
}

#[tokio::test]
async fn a_large_audience_is_expanded_in_batches_each_contact_once() {
    let app = workers().await;
    let token = app.org.token.clone();
    let channel = sms_channel(&app, &token, 1_000.0).await;
    let items: Vec<Value> = (0..450)
        .map(|i| json!({ "firstName": format!("B{i}"), "phone": format!("+4561{:06}", 100_100 + i), "company": "Bulk" }))
        .collect();
    let data = app
        .data(
            &token,
            "mutation($input: CreateContactsInput!) { createContacts(input: $input) { succeeded failed } }",
            json!({ "input": { "items": items } }),
        )
        .await;
    assert_eq!(
        data["createContacts"],
        json!({ "succeeded": 450, "failed": 0 })
    );
    let segment = group(
        &app,
        &token,
        json!({ "name": "Bulk", "rules": [{ "field": "company", "operator": "EQ", "value": "Bulk" }] }),
    )
    .await;
    let every_tenth: Vec<String> = app
        .data(
            &token,
            "{ contacts(first: 100) { nodes { id } } }",
            json!({}),
        )
        .await["contacts"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .step_by(10)
        .map(|n| n["id"].as_str().expect("id").to_string())
        .collect();
    let id = created(
        &app,
        &token,
        json!({ "name": "Everyone", "channelId": channel, "text": "Hello {{ contact.firstName }}",
                "audience": { "contactIds": every_tenth, "groupIds": [segment] } }),
    )
    .await;
    act(&app, &token, "sendBroadcast", json!({ "id": id })).await;
    let done = until(&app, &id, |b| b["stats"]["delivered"] == 450).await;
    assert_eq!(done["status"], "COMPLETED");
    assert_eq!(done["stats"], stats(450, 450, 0, 0, 450, 450, 0, 0, 0));
    assert_eq!(
        app.count("broadcast_recipients WHERE message_id IS NOT NULL")
            .await,
        450
    );
    assert_eq!(
        app.count("messages WHERE direction = 'OUTBOUND' AND author_kind = 'SYSTEM'")
            .await,
        450
    );
    // One job, deferred from batch to batch (200, 200, 50), each batch a progress event.
    assert_eq!(
        app.count("jobs WHERE kind = 'broadcast.expand' AND status = 'SUCCEEDED'")
            .await,
        1
    );
    assert!(
        app.count("events WHERE event_type = 'BROADCAST_PROGRESS'")
            .await
            >= 2
    );
}
