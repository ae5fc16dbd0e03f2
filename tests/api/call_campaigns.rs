//! Call campaigns: receivers from contacts, groups and raw numbers (one per number); audio as an
//! uploaded file or text-to-speech; the dialer on the simulator run end to end with a clock that
//! stands still until moved: the active window in the organization's timezone, redials of
//! unanswered receivers, replies from the keypad, stats, completion (every receiver done, accepts
//! wanted, end time); halt and resume; events, webhook catalog and `callCampaignProgress`; bad
//! input changing nothing; roles and tenancy; the README's demo walk-through, word for word.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

use crate::common::{TestApp, codes};
use crate::fixtures;
use crate::live::{connected, next_data, subscribe_to};

const FIELDS: &str = "id name kind state editable startTime endTime activeFrom activeTo
  activeWeekdays maxRedials redialIntervalSeconds acceptsWanted metadata completionReason
  actionButtons { button action }
  audio { attachment { id } textToSpeech { text locale } }
  receiverSources { contactIds groupIds phoneNumbers }
  stats { receivers finished cancelled dialedCalls answeredCalls totalDuration acceptsReceived
    declinesReceived noRepliesReceived declinesAndNoRepliesReceived notAnswered }";

const RECEIVERS: &str = "query($id: ID!) { callCampaign(id: $id) { receivers(first: 100) { nodes {
  phoneNumber status answered reply keypad durationSeconds dialCount nextDialAt contact { id } } } } }";

fn mutation(name: &str, input: &str) -> String {
    format!(
        "mutation($input: {input}!) {{ {name}(input: $input) {{ callCampaign {{ {FIELDS} }} userErrors {{ field message code }} }} }}"
    )
}

/// Monday 2026-11-30 07:00 UTC: 08:00 in Copenhagen, an hour before the window opens.
fn monday_morning() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-30T07:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

/// An app with a job runner, a stopped clock at [`monday_morning`], the organization in
/// Copenhagen and a voice channel; returns the channel's id.
async fn app() -> (TestApp, String) {
    let app = TestApp::spawn_with(|c| {
        c.job_workers = 2;
        c.job_poll_ms = 20;
        c.job_backoff_base_ms = 1;
    })
    .await;
    app.state.clock.set(monday_morning());
    app.sql("UPDATE organizations SET timezone = 'Europe/Copenhagen'")
        .await;
    let channel = fixtures::channel(&app, &app.org.token, "VOICE", "Calls", "+4570000000").await;
    (app, channel)
}

/// Moves the clock to `at` and wakes the job runner.
fn move_to(app: &TestApp, at: DateTime<Utc>) {
    app.state.clock.set(at);
    app.state.jobs.wake();
}

async fn contact(app: &TestApp, name: &str, phone: Option<&str>) -> String {
    let mut fields = json!({ "firstName": name });
    if let Some(phone) = phone {
        fields["phone"] = json!(phone);
    }
    fixtures::contact(app, &app.org.token, fields).await
}

async fn group(app: &TestApp, name: &str, members: &[&str]) -> String {
    let data = app
        .data(
            &app.org.token,
            "mutation($input: CreateContactGroupInput!) { createContactGroup(input: $input) { contactGroup { id } userErrors { message } } }",
            json!({ "input": { "name": name } }),
        )
        .await;
    let id = data["createContactGroup"]["contactGroup"]["id"]
        .as_str()
        .expect("group")
        .to_string();
    let added = app
        .data(
            &app.org.token,
            "mutation($input: ContactGroupMembersInput!) { addContactGroupMembers(input: $input) { userErrors { message } } }",
            json!({ "input": { "groupId": id, "contactIds": members } }),
        )
        .await;
    assert_eq!(
        added["addContactGroupMembers"]["userErrors"],
        json!([]),
        "{added}"
    );
    id
}

/// A valid RSVP campaign input: weekdays 09:00–17:00, starting now, ending in three days.
fn rsvp(channel: &str, receivers: Value) -> Value {
    json!({
        "name": "Town hall",
        "kind": "RSVP",
        "channelId": channel,
        "audio": { "textToSpeech": { "text": "Press 5 to come, 9 if you cannot.", "locale": "en-US" } },
        "receivers": receivers,
        "endTime": (monday_morning() + Duration::days(3)).to_rfc3339(),
        "activeFrom": "09:00",
        "activeTo": "17:00",
        "activeWeekdays": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
        "maxRedials": 2,
        "redialIntervalSeconds": 600,
        "actionButtons": [{ "button": "9", "action": "DECLINE" }, { "button": "5", "action": "ACCEPT" }],
        "metadata": { "event": "town-hall" },
    })
}

async fn create(app: &TestApp, token: &str, input: Value) -> Value {
    app.data(
        token,
        &mutation("createCallCampaign", "CreateCallCampaignInput"),
        json!({ "input": input }),
    )
    .await["createCallCampaign"]
        .clone()
}

async fn created(app: &TestApp, input: Value) -> String {
    let payload = create(app, &app.org.token, input).await;
    assert_eq!(payload["userErrors"], json!([]), "{payload}");
    payload["callCampaign"]["id"]
        .as_str()
        .expect("campaign id")
        .to_string()
}

async fn set_state(app: &TestApp, id: &str, state: &str) -> Value {
    app.data(
        &app.org.token,
        &mutation("setCallCampaignState", "SetCallCampaignStateInput"),
        json!({ "input": { "id": id, "state": state } }),
    )
    .await["setCallCampaignState"]
        .clone()
}

async fn update(app: &TestApp, input: Value) -> Value {
    app.data(
        &app.org.token,
        &mutation("updateCallCampaign", "UpdateCallCampaignInput"),
        json!({ "input": input }),
    )
    .await["updateCallCampaign"]
        .clone()
}

async fn get(app: &TestApp, id: &str) -> Value {
    app.data(
        &app.org.token,
        &format!("query($id: ID!) {{ callCampaign(id: $id) {{ {FIELDS} }} }}"),
        json!({ "id": id }),
    )
    .await["callCampaign"]
        .clone()
}

async fn receivers(app: &TestApp, id: &str) -> Vec<Value> {
    app.data(&app.org.token, RECEIVERS, json!({ "id": id }))
        .await["callCampaign"]["receivers"]["nodes"]
        .as_array()
        .expect("receivers")
        .clone()
}

/// Polls the campaign until `done` holds (60 s at most: the jobs run in the background).
async fn until(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(60);
    loop {
        let campaign = get(app, id).await;
        if done(&campaign) {
            return campaign;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the campaign never got there: {campaign}"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

/// Waits until no dialer job is due or running by the current clock.
async fn settled(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(60);
    loop {
        let jobs = entity::job::Entity::find()
            .filter(entity::job::Column::Kind.starts_with("call_campaign."))
            .filter(entity::job::Column::Status.is_in(["QUEUED", "RUNNING"]))
            .all(&app.state.db)
            .await
            .expect("jobs");
        let now = app.state.clock.now();
        if !jobs
            .iter()
            .any(|j| j.status == "RUNNING" || j.run_at <= now)
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "jobs never settled");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

#[allow(clippy::too_many_arguments)]
fn stats(
    receivers: i64,
    finished: i64,
    cancelled: i64,
    dialed: i64,
    answered: i64,
    duration: i64,
    accepts: i64,
    declines: i64,
    no_replies: i64,
    not_answered: i64,
) -> Value {
    json!({
        "receivers": receivers, "finished": finished, "cancelled": cancelled,
        "dialedCalls": dialed, "answeredCalls": answered, "totalDuration": duration,
        "acceptsReceived": accepts, "declinesReceived": declines,
        "noRepliesReceived": no_replies, "declinesAndNoRepliesReceived": declines + no_replies,
        "notAnswered": not_answered,
    })
}

#[tokio::test]
async fn an_rsvp_campaign_dials_inside_its_window_redials_and_completes_when_everyone_is_done() {
    let (app, channel) = app().await;
    let ann = contact(&app, "Ann", Some("+4520001005")).await; // answers, presses 5: accept
    let bob = contact(&app, "Bob", Some("+4520001009")).await; // answers, presses 9: decline
    let cat = contact(&app, "Cat", Some("+4520002000")).await; // answers, presses nothing
    let dan = contact(&app, "Dan", None).await; // no phone: not a receiver
    let team = group(&app, "Team", &[&ann, &dan, &cat]).await;
    let payload = create(
        &app,
        &app.org.token,
        rsvp(
            &channel,
            json!({
                "contactIds": [ann, bob],
                "groupIds": [team],
                // No answer every time; busy every time; Ann's number again.
                "phoneNumbers": ["+4520000001", "+4520000000", "+4520001005"],
            }),
        ),
    )
    .await;
    assert_eq!(payload["userErrors"], json!([]));
    let campaign = &payload["callCampaign"];
    let id = campaign["id"].as_str().expect("id").to_string();
    // Waiting until the dialer's first run (at once: no start time).
    assert_eq!(campaign["state"], "WAITING_TO_ACTIVE");
    assert_eq!(campaign["editable"], true);
    assert_eq!(campaign["activeFrom"], "09:00:00");
    assert_eq!(campaign["activeTo"], "17:00:00");
    assert_eq!(
        campaign["actionButtons"],
        json!([{ "button": "5", "action": "ACCEPT" }, { "button": "9", "action": "DECLINE" }])
    );
    assert_eq!(
        campaign["audio"],
        json!({ "attachment": null, "textToSpeech": { "text": "Press 5 to come, 9 if you cannot.", "locale": "en-US" } })
    );
    assert_eq!(campaign["stats"], stats(5, 0, 0, 0, 0, 0, 0, 0, 0, 0));

    // Started (no start time), but 08:00 in Copenhagen is before the window: nobody is called.
    app.state.jobs.wake();
    until(&app, &id, |c| c["state"] == "ACTIVE").await;
    settled(&app).await;
    assert_eq!(get(&app, &id).await["stats"]["dialedCalls"], 0);
    assert_eq!(app.count("calls").await, 0);

    // 09:00 in Copenhagen: everyone is dialled once; the three who answered are done.
    move_to(&app, monday_morning() + Duration::hours(1));
    let campaign = until(&app, &id, |c| c["stats"]["dialedCalls"] == 5).await;
    assert_eq!(
        campaign["stats"],
        stats(5, 3, 0, 5, 3, 35 + 39 + 30, 1, 1, 1, 0)
    );
    assert_eq!(campaign["editable"], false);
    assert_eq!(
        app.count("calls WHERE kind = 'CAMPAIGN' AND campaign_id IS NOT NULL")
            .await,
        5
    );

    // Two redials of the two who did not answer, ten minutes after each call ended.
    move_to(&app, monday_morning() + Duration::minutes(71));
    until(&app, &id, |c| c["stats"]["dialedCalls"] == 7).await;
    move_to(&app, monday_morning() + Duration::minutes(82));
    let campaign = until(&app, &id, |c| c["state"] == "COMPLETE").await;
    assert_eq!(campaign["completionReason"], "ALL_DONE");
    assert_eq!(campaign["stats"], stats(5, 5, 0, 9, 3, 104, 1, 1, 1, 2));

    let rows = receivers(&app, &id).await;
    let by_number = |n: &str| -> Value {
        let r = rows
            .iter()
            .find(|r| r["phoneNumber"] == n)
            .expect("receiver")
            .clone();
        json!({
            "status": r["status"], "answered": r["answered"], "reply": r["reply"],
            "keypad": r["keypad"], "duration": r["durationSeconds"], "dials": r["dialCount"],
        })
    };
    assert_eq!(rows.len(), 5);
    assert_eq!(
        by_number("+4520001005"),
        json!({ "status": "FINISHED", "answered": true, "reply": "ACCEPT", "keypad": "5", "duration": 35, "dials": 1 })
    );
    assert_eq!(
        by_number("+4520001009"),
        json!({ "status": "FINISHED", "answered": true, "reply": "DECLINE", "keypad": "9", "duration": 39, "dials": 1 })
    );
    assert_eq!(
        by_number("+4520002000"),
        json!({ "status": "FINISHED", "answered": true, "reply": "NO_REPLY", "keypad": null, "duration": 30, "dials": 1 })
    );
    for number in ["+4520000001", "+4520000000"] {
        assert_eq!(
            by_number(number),
            json!({ "status": "FINISHED", "answered": false, "reply": "NO_REPLY", "keypad": null, "duration": 0, "dials": 3 })
        );
    }
    // Ann's number came from her contact (named, in the group and raw): one receiver.
    let ann_row = rows
        .iter()
        .find(|r| r["phoneNumber"] == "+4520001005")
        .expect("ann");
    assert_eq!(ann_row["contact"]["id"], json!(ann));

    // Events: one per finished receiver (with the campaign's metadata), the start and the end.
    assert_eq!(
        app.count("events WHERE event_type = 'CALL_CAMPAIGN_RECEIVER_FINISHED'")
            .await,
        5
    );
    assert_eq!(
        app.count("events WHERE event_type = 'CALL_CAMPAIGN_STATE_CHANGED'")
            .await,
        1
    );
    assert_eq!(
        app.count("events WHERE event_type = 'CALL_CAMPAIGN_COMPLETED'")
            .await,
        1
    );
    let finished = entity_events(&app, "CALL_CAMPAIGN_RECEIVER_FINISHED").await;
    let accept = finished
        .iter()
        .find(|p| p["phoneNumber"] == "+4520001005")
        .expect("accept event");
    assert_eq!(accept["reply"], "ACCEPT");
    assert_eq!(accept["answered"], true);
    assert_eq!(accept["dialCount"], 1);
    assert_eq!(accept["durationSeconds"], 35);
    assert_eq!(accept["metadata"], json!({ "event": "town-hall" }));
}

/// The payloads of the events of `event_type`, oldest first.
async fn entity_events(app: &TestApp, event_type: &str) -> Vec<Value> {
    use sea_orm::QueryOrder;
    entity::event::Entity::find()
        .filter(entity::event::Column::EventType.eq(event_type))
        .order_by_asc(entity::event::Column::Seq)
        .all(&app.state.db)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.payload)
        .collect()
}

#[tokio::test]
async fn a_redial_outside_the_window_waits_for_the_next_opening_and_weekends_are_skipped() {
    let (app, channel) = app().await;
    // Friday 16:55 in Copenhagen (15:55 UTC): five minutes of window left this week.
    let friday = monday_morning() - Duration::days(3) + Duration::hours(8) + Duration::minutes(55);
    app.state.clock.set(friday);
    let mut input = rsvp(&channel, json!({ "phoneNumbers": ["+4520000001"] }));
    input["endTime"] = json!((friday + Duration::days(7)).to_rfc3339());
    input["maxRedials"] = json!(1);
    let id = created(&app, input).await;
    app.state.jobs.wake();
    until(&app, &id, |c| c["stats"]["dialedCalls"] == 1).await;
    settled(&app).await;
    let rows = receivers(&app, &id).await;
    assert_eq!(rows[0]["status"], "PENDING");
    assert_eq!(rows[0]["nextDialAt"], "2026-11-27T16:05:05+00:00");

    // The redial time comes at 17:05 local, after the window: nothing over the weekend.
    move_to(&app, friday + Duration::minutes(11));
    settled(&app).await;
    move_to(&app, friday + Duration::days(2));
    settled(&app).await;
    assert_eq!(get(&app, &id).await["stats"]["dialedCalls"], 1);
    // Monday 09:00 in Copenhagen: redialled, and done.
    move_to(&app, monday_morning() + Duration::hours(1));
    let campaign = until(&app, &id, |c| c["state"] == "COMPLETE").await;
    assert_eq!(campaign["stats"], stats(1, 1, 0, 2, 0, 0, 0, 0, 0, 1));
    let rows = receivers(&app, &id).await;
    assert_eq!(rows[0]["dialCount"], 2);
}

#[tokio::test]
async fn accepts_wanted_completes_the_campaign_and_cancels_the_rest() {
    let (app, channel) = app().await;
    move_to(&app, monday_morning() + Duration::hours(2));
    let mut input = rsvp(
        &channel,
        json!({ "phoneNumbers": ["+4520001105", "+4520001205", "+4520001305", "+4520001405"] }),
    );
    input["acceptsWanted"] = json!(2);
    let id = created(&app, input).await;
    app.state.jobs.wake();
    let campaign = until(&app, &id, |c| c["state"] == "COMPLETE").await;
    assert_eq!(campaign["completionReason"], "ACCEPTS_WANTED_REACHED");
    assert_eq!(campaign["stats"], stats(4, 2, 2, 2, 2, 70, 2, 0, 0, 0));
    assert_eq!(app.count("calls").await, 2);
    let statuses: Vec<Value> = receivers(&app, &id)
        .await
        .iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        vec![
            json!("FINISHED"),
            json!("FINISHED"),
            json!("CANCELLED"),
            json!("CANCELLED")
        ]
    );
}

#[tokio::test]
async fn halting_stops_dialling_until_resumed_and_the_end_time_completes_it() {
    let (app, channel) = app().await;
    let start = monday_morning() + Duration::hours(2);
    let mut input = rsvp(
        &channel,
        json!({ "phoneNumbers": ["+4520000001", "+4520001005"] }),
    );
    input["startTime"] = json!(start.to_rfc3339());
    input["endTime"] = json!((start + Duration::hours(1)).to_rfc3339());
    let id = created(&app, input).await;

    // Halted before it starts: it stays halted past its start time.
    let halted = set_state(&app, &id, "HALTED").await;
    assert_eq!(halted["userErrors"], json!([]));
    assert_eq!(halted["callCampaign"]["state"], "HALTED");
    assert_eq!(halted["callCampaign"]["editable"], true);
    move_to(&app, start + Duration::minutes(1));
    settled(&app).await;
    assert_eq!(get(&app, &id).await["state"], "HALTED");
    assert_eq!(app.count("calls").await, 0);

    // Resumed: it starts now.
    let resumed = set_state(&app, &id, "ACTIVE").await;
    assert_eq!(resumed["callCampaign"]["state"], "ACTIVE");
    app.state.jobs.wake();
    until(&app, &id, |c| c["stats"]["dialedCalls"] == 2).await;
    settled(&app).await;
    // Halted again: the redial is not placed.
    assert_eq!(
        set_state(&app, &id, "HALTED").await["callCampaign"]["state"],
        "HALTED"
    );
    move_to(&app, start + Duration::minutes(20));
    settled(&app).await;
    assert_eq!(get(&app, &id).await["stats"]["dialedCalls"], 2);
    // The end time passes: complete, the pending receiver cancelled.
    move_to(&app, start + Duration::hours(1));
    let campaign = until(&app, &id, |c| c["state"] == "COMPLETE").await;
    assert_eq!(campaign["completionReason"], "END_TIME_PASSED");
    assert_eq!(campaign["stats"], stats(2, 1, 1, 2, 1, 35, 1, 0, 0, 0));
    // Complete is final.
    let again = set_state(&app, &id, "ACTIVE").await;
    assert_eq!(again["callCampaign"], Value::Null);
    assert_eq!(again["userErrors"][0]["code"], "INVALID_STATE");
}

#[tokio::test]
async fn a_campaign_is_editable_until_it_starts_and_plays_an_uploaded_audio_file() {
    let (app, channel) = app().await;
    let audio = attachment(&app, "audio/mpeg").await;
    let image = attachment(&app, "image/png").await;
    let start = monday_morning() + Duration::days(1);
    let mut input = rsvp(&channel, json!({ "phoneNumbers": ["+4520001005"] }));
    input["startTime"] = json!(start.to_rfc3339());
    input["audio"] = json!({ "attachmentId": audio });
    input["kind"] = json!("SURVEY");
    let id = created(&app, input).await;
    assert_eq!(
        get(&app, &id).await["audio"]["attachment"]["id"],
        json!(audio)
    );

    let ann = contact(&app, "Ann", Some("+4520001009")).await;
    let changed = update(
        &app,
        json!({ "id": id, "name": "Survey", "receivers": { "contactIds": [ann], "phoneNumbers": ["+4520001005"] },
                "activeFrom": "08:30", "activeTo": "24:00", "acceptsWanted": 1, "metadata": null }),
    )
    .await;
    assert_eq!(changed["userErrors"], json!([]), "{changed}");
    let c = &changed["callCampaign"];
    assert_eq!(c["name"], "Survey");
    assert_eq!(c["activeTo"], "24:00:00");
    assert_eq!(c["metadata"], json!({}));
    assert_eq!(c["stats"]["receivers"], 2);
    assert_eq!(app.count("call_campaign_receivers").await, 2);

    // An image is not audio: refused, nothing changed.
    let refused = update(
        &app,
        json!({ "id": id, "audio": { "attachmentId": image } }),
    )
    .await;
    assert_eq!(
        refused["userErrors"],
        json!([{ "field": ["input", "audio", "attachmentId"], "message": "the attachment is image/png, not audio", "code": "INVALID" }])
    );
    assert_eq!(
        get(&app, &id).await["audio"]["attachment"]["id"],
        json!(audio)
    );

    // Set ACTIVE early: it starts now, and can no longer be edited.
    move_to(&app, monday_morning() + Duration::hours(3));
    let started = set_state(&app, &id, "ACTIVE").await;
    assert_eq!(started["callCampaign"]["state"], "ACTIVE");
    until(&app, &id, |c| c["state"] == "COMPLETE").await;
    let before = get(&app, &id).await;
    let refused = update(&app, json!({ "id": id, "name": "Late" })).await;
    assert_eq!(refused["callCampaign"], Value::Null);
    assert_eq!(refused["userErrors"][0]["code"], "INVALID_STATE");
    assert_eq!(get(&app, &id).await, before);
}

async fn attachment(app: &TestApp, content_type: &str) -> String {
    let org = entity::organization::Entity::find()
        .one(&app.state.db)
        .await
        .expect("org")
        .expect("an org");
    let id = uuid::Uuid::now_v7();
    entity::attachment::ActiveModel {
        id: Set(id),
        org_id: Set(org.id),
        message_id: Set(None),
        filename: Set("greeting".into()),
        content_type: Set(content_type.into()),
        size_bytes: Set(10),
        sha256: Set("00".into()),
        storage_key: Set(format!("test/{id}")),
        uploaded_by: Set(None),
        created_at: Set(Utc::now()),
    }
    .insert(&app.state.db)
    .await
    .expect("attachment");
    switchboard::graphql::relay::encode_id("Attachment", id).0
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let (app, channel) = app().await;
    let nophone = contact(&app, "Nophone", None).await;
    let sms = fixtures::channel(&app, &app.org.token, "SMS", "Texts", "+4570000009").await;
    let refused = |input: Value| {
        let app = &app;
        async move {
            let payload = create(app, &app.org.token, input).await;
            assert_eq!(payload["callCampaign"], Value::Null, "{payload}");
            payload["userErrors"].clone()
        }
    };
    let base = || rsvp(&channel, json!({ "phoneNumbers": ["+4520001005"] }));

    // An active window whose end is before its start.
    let mut input = base();
    input["activeFrom"] = json!("17:00");
    input["activeTo"] = json!("09:00");
    assert_eq!(
        refused(input).await,
        json!([{ "field": ["input", "activeTo"], "message": "the active window must end after it starts (activeTo after activeFrom)", "code": "INVALID" }])
    );
    // Zero receivers: none given, or none with a phone number.
    let mut input = base();
    input["receivers"] = json!({});
    assert_eq!(
        refused(input).await,
        json!([{ "field": ["input", "receivers"], "message": "a campaign needs receivers: give contactIds, groupIds or phoneNumbers", "code": "REQUIRED" }])
    );
    let mut input = base();
    input["receivers"] = json!({ "contactIds": [nophone] });
    assert_eq!(
        refused(input).await,
        json!([{ "field": ["input", "receivers"], "message": "the campaign has no receivers: none of its contacts and group members has a phone number it may be called on", "code": "INVALID" }])
    );
    // A start more than an hour in the past; an end before the start.
    let mut input = base();
    input["startTime"] = json!((monday_morning() - Duration::minutes(61)).to_rfc3339());
    assert_eq!(
        refused(input).await,
        json!([{ "field": ["input", "startTime"], "message": "startTime may not be more than an hour in the past", "code": "INVALID" }])
    );
    let mut input = base();
    input["endTime"] = json!((monday_morning() - Duration::minutes(1)).to_rfc3339());
    assert_eq!(
        refused(input).await[0]["field"],
        json!(["input", "endTime"])
    );
    // Keypad, numbers, redials, RSVP without an accept button, metadata, audio, channel.
    let mut input = base();
    input["actionButtons"] =
        json!([{ "button": "*", "action": "ACCEPT" }, { "button": "9", "action": "DECLINE" }]);
    input["receivers"] = json!({ "phoneNumbers": ["12345"] });
    input["maxRedials"] = json!(11);
    input["acceptsWanted"] = json!(0);
    input["metadata"] = json!([1]);
    input["audio"] = json!({ "textToSpeech": { "text": " ", "locale": "english!" } });
    input["activeWeekdays"] = json!([]);
    assert_eq!(
        codes_by_field(&refused(input).await),
        vec![
            ("audio.textToSpeech.text".into(), "REQUIRED".into()),
            ("audio.textToSpeech.locale".into(), "INVALID".into()),
            ("receivers.phoneNumbers.0".into(), "INVALID".into()),
            ("activeWeekdays".into(), "REQUIRED".into()),
            ("maxRedials".into(), "INVALID".into()),
            ("actionButtons.0.button".into(), "INVALID".into()),
            ("actionButtons".into(), "REQUIRED".into()),
            ("acceptsWanted".into(), "INVALID".into()),
            ("metadata".into(), "INVALID".into()),
        ]
    );
    let mut input = base();
    input["channelId"] = json!(sms);
    assert_eq!(
        refused(input).await,
        json!([{ "field": ["input", "channelId"], "message": "the channel cannot place calls: it needs the VOICE_OUTBOUND capability", "code": "INVALID" }])
    );
    assert_eq!(app.count("call_campaigns").await, 0);
    assert_eq!(app.count("call_campaign_receivers").await, 0);
    assert_eq!(
        app.count("events WHERE subject_type = 'CallCampaign'")
            .await,
        0
    );

    // Setting COMPLETE or WAITING_TO_ACTIVE; editing an active campaign.
    move_to(&app, monday_morning() + Duration::hours(2));
    let mut input = base();
    input["receivers"] = json!({ "phoneNumbers": ["+4520000001"] });
    let id = created(&app, input).await;
    for state in ["COMPLETE", "WAITING_TO_ACTIVE"] {
        let payload = set_state(&app, &id, state).await;
        assert_eq!(
            payload["userErrors"],
            json!([{ "field": ["input", "state"], "message": format!("a campaign can only be set ACTIVE or HALTED; it is {state} by its start time and the dialer"), "code": "INVALID" }])
        );
    }
    app.state.jobs.wake();
    let active = until(&app, &id, |c| c["stats"]["dialedCalls"] == 1).await;
    assert_eq!(active["state"], "ACTIVE");
    let events = app
        .count("events WHERE subject_type = 'CallCampaign'")
        .await;
    let payload = update(
        &app,
        json!({ "id": id, "name": "Changed", "maxRedials": 0 }),
    )
    .await;
    assert_eq!(
        payload,
        json!({ "callCampaign": null, "userErrors": [{ "field": ["input", "id"], "message": "the campaign is ACTIVE and has started: only a campaign that has not started can be edited", "code": "INVALID_STATE" }] })
    );
    assert_eq!(
        set_state(&app, &id, "ACTIVE").await["userErrors"][0]["code"],
        "INVALID_STATE"
    );
    let deleted = app
        .data(
            &app.org.token,
            "mutation($id: ID!) { deleteCallCampaign(input: { id: $id }) { deletedCallCampaignId userErrors { code } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        deleted["deleteCallCampaign"]["userErrors"][0]["code"],
        "INVALID_STATE"
    );
    assert_eq!(get(&app, &id).await, active);
    assert_eq!(
        app.count("events WHERE subject_type = 'CallCampaign'")
            .await,
        events
    );
}

fn codes_by_field(errors: &Value) -> Vec<(String, String)> {
    errors
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            let field: Vec<String> = e["field"]
                .as_array()
                .expect("field")
                .iter()
                .skip(1)
                .map(|p| p.as_str().expect("part").to_string())
                .collect();
            (
                field.join("."),
                e["code"].as_str().expect("code").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn agents_cannot_manage_campaigns_and_other_organizations_cannot_see_them() {
    let (app, channel) = app().await;
    let mut input = rsvp(&channel, json!({ "phoneNumbers": ["+4520001005"] }));
    input["startTime"] = json!((monday_morning() + Duration::days(1)).to_rfc3339());
    let id = created(&app, input).await;
    let (_, agent) = app.user_with_token("agent@example.com", &["AGENT"]).await;
    let body = app
        .gql(
            &agent,
            &mutation("createCallCampaign", "CreateCallCampaignInput"),
            json!({ "input": rsvp(&channel, json!({ "phoneNumbers": ["+4520001005"] })) }),
        )
        .await;
    assert_eq!(codes(&body), vec!["FORBIDDEN"]);
    let body = app
        .gql(
            &agent,
            "query($id: ID!) { callCampaign(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(codes(&body), vec!["FORBIDDEN"]);

    let other = app
        .create_org("Other", "other", "owner@other.example")
        .await;
    let theirs = app
        .data(
            &other.token,
            "query($id: ID!) { callCampaign(id: $id) { id } callCampaigns { totalCount } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        theirs,
        json!({ "callCampaign": null, "callCampaigns": { "totalCount": 0 } })
    );
    let payload = app
        .data(
            &other.token,
            &mutation("setCallCampaignState", "SetCallCampaignStateInput"),
            json!({ "input": { "id": id, "state": "HALTED" } }),
        )
        .await;
    assert_eq!(
        payload["setCallCampaignState"]["userErrors"],
        json!([{ "field": ["input", "id"], "message": "no such call campaign", "code": "NOT_FOUND" }])
    );
    assert_eq!(get(&app, &id).await["state"], "WAITING_TO_ACTIVE");
    let listed = app
        .data(
            &app.org.token,
            "{ callCampaigns(filter: { states: [WAITING_TO_ACTIVE], kinds: [RSVP] }) { totalCount nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["callCampaigns"],
        json!({ "totalCount": 1, "nodes": [{ "id": id }] })
    );
    let node = app
        .data(
            &app.org.token,
            "query($id: ID!) { node(id: $id) { ... on CallCampaign { name } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(node["node"]["name"], "Town hall");
}

#[tokio::test]
async fn call_campaign_progress_streams_state_changes_and_finished_receivers() {
    let (app, channel) = app().await;
    let start = monday_morning() + Duration::hours(2);
    let mut input = rsvp(
        &channel,
        json!({ "phoneNumbers": ["+4520001005", "+4520001009"] }),
    );
    input["startTime"] = json!(start.to_rfc3339());
    let id = created(&app, input).await;
    let mut ws = connected(&app, &app.org.token).await;
    subscribe_to(
        &mut ws,
        "1",
        "subscription($id: ID!, $after: String) { callCampaignProgress(campaignId: $id, after: $after) { change receiver { phoneNumber reply } callCampaign { state } } }",
        // From the start of the log: changes committed before the subscription is live are
        // replayed, none is missed.
        json!({ "id": id, "after": "ZXZlbnQ6MA" }),
    )
    .await;
    move_to(&app, start);
    let mut seen = Vec::new();
    for _ in 0..4 {
        let data = next_data(&mut ws, "1").await;
        let event = &data["callCampaignProgress"];
        seen.push(json!([event["change"], event["receiver"]["reply"]]));
    }
    assert_eq!(
        seen,
        vec![
            json!(["STATE_CHANGED", null]),
            json!(["RECEIVER_FINISHED", "ACCEPT"]),
            json!(["RECEIVER_FINISHED", "DECLINE"]),
            json!(["COMPLETED", null]),
        ]
    );
    // The webhook catalog offers the campaign events.
    let catalog = app
        .data(&app.org.token, "{ webhookEventTypes { name } }", json!({}))
        .await;
    let names: Vec<&str> = catalog["webhookEventTypes"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    for name in [
        "CALL_CAMPAIGN_STATE_CHANGED",
        "CALL_CAMPAIGN_COMPLETED",
        "CALL_CAMPAIGN_RECEIVER_FINISHED",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
}

#[tokio::test]
async fn a_call_that_ends_later_through_the_calls_api_finishes_its_receiver_or_redials_it() {
    let (app, channel) = app().await;
    move_to(&app, monday_morning() + Duration::hours(2));
    let mut input = rsvp(&channel, json!({ "phoneNumbers": ["+4520000004"] })); // rings until ended
    input["maxRedials"] = json!(1);
    let id = created(&app, input).await;
    app.state.jobs.wake();
    until(&app, &id, |c| c["stats"]["dialedCalls"] == 1).await;
    settled(&app).await;
    let receiver = latest_receiver(&app, &id).await;
    assert_eq!(receiver["status"], "DIALING");
    assert_eq!(receiver["latestCall"]["status"], "RINGING");
    assert_eq!(receiver["latestCall"]["kind"], "CAMPAIGN");
    assert_eq!(receiver["latestCall"]["campaignId"], json!(id));
    // Voicemail is not an answer: redialled after the interval (a new dialer job is queued).
    let voicemail = app
        .data(
            &app.org.token,
            "mutation($id: ID!) { sendCallToVoicemail(input: { id: $id }) { call { status } userErrors { code } } }",
            json!({ "id": receiver["latestCall"]["id"] }),
        )
        .await;
    assert_eq!(
        voicemail["sendCallToVoicemail"]["call"]["status"],
        "VOICEMAIL"
    );
    assert_eq!(latest_receiver(&app, &id).await["status"], "PENDING");
    move_to(
        &app,
        monday_morning() + Duration::hours(2) + Duration::minutes(11),
    );
    until(&app, &id, |c| c["stats"]["dialedCalls"] == 2).await;
    settled(&app).await;
    let receiver = latest_receiver(&app, &id).await;
    assert_eq!(receiver["status"], "DIALING");
    assert_eq!(receiver["dialCount"], 2);
    // Hung up before it was answered, after its last redial: done, and so is the campaign.
    let ended = app
        .data(
            &app.org.token,
            "mutation($id: ID!) { endCall(input: { id: $id }) { call { status } userErrors { code } } }",
            json!({ "id": receiver["latestCall"]["id"] }),
        )
        .await;
    assert_eq!(ended["endCall"]["call"]["status"], "CANCELED");
    let campaign = get(&app, &id).await;
    assert_eq!(campaign["state"], "COMPLETE");
    assert_eq!(campaign["completionReason"], "ALL_DONE");
    assert_eq!(campaign["stats"], stats(1, 1, 0, 2, 0, 0, 0, 0, 0, 1));
    assert_eq!(app.count("events WHERE event_type = 'CALL_ENDED'").await, 2);
}

async fn latest_receiver(app: &TestApp, id: &str) -> Value {
    app.data(
        &app.org.token,
        "query($id: ID!) { callCampaign(id: $id) { receivers { nodes { status dialCount latestCall { id status kind campaignId } } } } }",
        json!({ "id": id }),
    )
    .await["callCampaign"]["receivers"]["nodes"][0]
        .clone()
}

#[tokio::test]
async fn anonymizing_a_contact_erases_its_number_from_campaigns_and_cancels_its_pending_call() {
    let (app, channel) = app().await;
    let ann = contact(&app, "Ann", Some("+4520001005")).await;
    let bob = contact(&app, "Bob", Some("+4520001009")).await;
    let mut input = rsvp(&channel, json!({ "contactIds": [ann, bob] }));
    input["startTime"] = json!((monday_morning() + Duration::hours(3)).to_rfc3339());
    let id = created(&app, input).await;
    let done = app
        .data(
            &app.org.token,
            "mutation($input: AnonymizeContactInput!) { anonymizeContact(input: $input) { userErrors { message } } }",
            json!({ "input": { "contactId": ann, "force": true } }),
        )
        .await;
    assert_eq!(done["anonymizeContact"]["userErrors"], json!([]));
    let rows = receivers(&app, &id).await;
    let ann_row = rows
        .iter()
        .find(|r| r["contact"]["id"] == json!(ann))
        .expect("ann's receiver");
    assert!(
        ann_row["phoneNumber"]
            .as_str()
            .is_some_and(|n| n.starts_with("anonymized-")),
        "{ann_row}"
    );
    assert_eq!(ann_row["status"], "CANCELLED");
    // Bob is still called; the campaign completes with Ann cancelled.
    move_to(&app, monday_morning() + Duration::hours(3));
    let campaign = until(&app, &id, |c| c["state"] == "COMPLETE").await;
    assert_eq!(campaign["stats"], stats(2, 1, 1, 1, 1, 39, 0, 1, 0, 0));
    assert_eq!(app.count("calls").await, 1);
}

#[tokio::test]
async fn a_call_ending_after_the_campaign_completed_finishes_its_receiver_instead_of_redialling() {
    let (app, channel) = app().await;
    move_to(&app, monday_morning() + Duration::hours(2));
    // `…0004` rings until ended; `…1005` answers and accepts, which is all the campaign wants.
    let mut input = rsvp(
        &channel,
        json!({ "phoneNumbers": ["+4520000004", "+4520001005"] }),
    );
    input["acceptsWanted"] = json!(1);
    let id = created(&app, input).await;
    app.state.jobs.wake();
    let campaign = until(&app, &id, |c| c["state"] == "COMPLETE").await;
    settled(&app).await;
    assert_eq!(campaign["completionReason"], "ACCEPTS_WANTED_REACHED");
    let ringing = latest_receiver(&app, &id).await;
    assert_eq!(
        (&ringing["status"], &ringing["latestCall"]["status"]),
        (&json!("DIALING"), &json!("RINGING"))
    );
    // Hung up unanswered with redials left: the campaign is complete, so no redial: finished.
    let ended = app
        .data(
            &app.org.token,
            "mutation($id: ID!) { endCall(input: { id: $id }) { call { status } userErrors { code } } }",
            json!({ "id": ringing["latestCall"]["id"] }),
        )
        .await;
    assert_eq!(ended["endCall"]["call"]["status"], "CANCELED");
    let finished = receivers(&app, &id).await;
    let statuses: Vec<(&Value, &Value, &Value)> = finished
        .iter()
        .map(|r| (&r["phoneNumber"], &r["status"], &r["nextDialAt"]))
        .collect();
    assert_eq!(
        statuses,
        [
            (&json!("+4520000004"), &json!("FINISHED"), &Value::Null),
            (&json!("+4520001005"), &json!("FINISHED"), &Value::Null),
        ]
    );
    let campaign = get(&app, &id).await;
    assert_eq!(campaign["state"], "COMPLETE");
    assert_eq!(campaign["stats"], stats(2, 2, 0, 2, 1, 35, 1, 0, 0, 1));
    assert_eq!(
        app.count("events WHERE event_type = 'CALL_CAMPAIGN_RECEIVER_FINISHED'")
            .await,
        2
    );
    assert_eq!(
        app.count("events WHERE event_type = 'CALL_CAMPAIGN_COMPLETED'")
            .await,
        1
    );
    assert_eq!(
        app.count("jobs WHERE kind = 'call_campaign.dial' AND status = 'QUEUED'")
            .await,
        0
    );
}

#[tokio::test]
async fn an_end_time_moved_earlier_before_the_start_completes_the_campaign_then() {
    let (app, channel) = app().await;
    let start = monday_morning() + Duration::hours(2);
    let mut input = rsvp(&channel, json!({ "phoneNumbers": ["+4520001005"] }));
    input["startTime"] = json!(start.to_rfc3339());
    input["endTime"] = json!((start + Duration::hours(3)).to_rfc3339());
    let id = created(&app, input).await;

    // Clients cannot set COMPLETE or WAITING_TO_ACTIVE: refused, nothing changes.
    for state in ["COMPLETE", "WAITING_TO_ACTIVE"] {
        let events = app.count("events").await;
        let refused = set_state(&app, &id, state).await;
        assert_eq!(refused["callCampaign"], Value::Null, "{state}");
        assert_eq!(
            refused["userErrors"][0]["field"],
            json!(["input", "state"]),
            "{refused}"
        );
        assert_eq!(get(&app, &id).await["state"], "WAITING_TO_ACTIVE");
        assert_eq!(app.count("events").await, events);
    }

    // Halted before it starts, then rescheduled: a later start and an earlier end.
    assert_eq!(
        set_state(&app, &id, "HALTED").await["callCampaign"]["state"],
        "HALTED"
    );
    let moved = update(
        &app,
        json!({ "id": id,
                "startTime": (start + Duration::minutes(30)).to_rfc3339(),
                "endTime": (start + Duration::hours(1)).to_rfc3339() }),
    )
    .await;
    assert_eq!(moved["userErrors"], json!([]));
    let time = |v: &Value| DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default()).ok();
    assert_eq!(
        (
            time(&moved["callCampaign"]["startTime"]),
            time(&moved["callCampaign"]["endTime"])
        ),
        (
            Some((start + Duration::minutes(30)).fixed_offset()),
            Some((start + Duration::hours(1)).fixed_offset())
        )
    );
    // An end before the start is refused and changes nothing.
    let events = app.count("events").await;
    let refused = update(
        &app,
        json!({ "id": id, "endTime": (start + Duration::minutes(10)).to_rfc3339() }),
    )
    .await;
    assert_eq!(refused["callCampaign"], Value::Null);
    assert_eq!(
        refused["userErrors"][0]["field"],
        json!(["input", "endTime"]),
        "{refused}"
    );
    assert_eq!(app.count("events").await, events);
    assert_eq!(
        time(&get(&app, &id).await["endTime"]),
        Some((start + Duration::hours(1)).fixed_offset())
    );

    // The new end time passes (the old one is two hours away): complete, never dialled.
    move_to(&app, start + Duration::hours(1));
    let campaign = until(&app, &id, |c| c["state"] == "COMPLETE").await;
    assert_eq!(campaign["completionReason"], "END_TIME_PASSED");
    assert_eq!(campaign["stats"], stats(1, 0, 1, 0, 0, 0, 0, 0, 0, 0));
    assert_eq!(app.count("calls").await, 0);
    // The old end time changes nothing more.
    move_to(&app, start + Duration::hours(3));
    settled(&app).await;
    assert_eq!(
        app.count("events WHERE event_type = 'CALL_CAMPAIGN_COMPLETED'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_broadcast_plays_text_to_speech_redials_the_unanswered_and_completes_when_all_are_done() {
    let (app, channel) = app().await;
    // Monday 10:00 in Copenhagen: inside the window.
    let start = monday_morning() + Duration::hours(2);
    move_to(&app, start);
    let id = created(
        &app,
        json!({
            "name": "Closing early",
            "kind": "BROADCAST",
            "channelId": channel,
            "audio": { "textToSpeech": { "text": "We close at noon today.", "locale": "da-DK" } },
            "receivers": { "phoneNumbers": [
                "+4520002010", // answered, talks 40 s
                "+4520001007", // answered, presses 7 (no button: no reply)
                "+4520000002", // voicemail: redialled
                "+4520000003", // fails: redialled
            ] },
            "endTime": (start + Duration::days(1)).to_rfc3339(),
            "activeFrom": "09:00",
            "activeTo": "17:00",
            "activeWeekdays": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
            "maxRedials": 1,
            "redialIntervalSeconds": 300,
        }),
    )
    .await;
    let campaign = get(&app, &id).await;
    assert_eq!(campaign["kind"], "BROADCAST");
    assert_eq!(campaign["actionButtons"], json!([]));
    assert_eq!(campaign["acceptsWanted"], Value::Null);
    assert_eq!(
        campaign["audio"],
        json!({ "attachment": null, "textToSpeech": { "text": "We close at noon today.", "locale": "da-DK" } })
    );
    assert_eq!(campaign["stats"], stats(4, 0, 0, 0, 0, 0, 0, 0, 0, 0));

    // Everyone is dialled once: the two who answered are done.
    app.state.jobs.wake();
    let campaign = until(&app, &id, |c| c["stats"]["dialedCalls"] == 4).await;
    settled(&app).await;
    assert_eq!(campaign["state"], "ACTIVE");
    assert_eq!(campaign["stats"], stats(4, 2, 0, 4, 2, 77, 0, 0, 2, 0));
    // Five minutes after each unanswered call ended (it rang 5 s): redialled, and done.
    move_to(&app, start + Duration::seconds(304));
    settled(&app).await;
    assert_eq!(get(&app, &id).await["stats"]["dialedCalls"], 4);
    move_to(&app, start + Duration::seconds(305));
    let campaign = until(&app, &id, |c| c["state"] == "COMPLETE").await;
    assert_eq!(campaign["completionReason"], "ALL_DONE");
    assert_eq!(campaign["stats"], stats(4, 4, 0, 6, 2, 77, 0, 0, 2, 2));

    let rows: Vec<Value> = receivers(&app, &id)
        .await
        .iter()
        .map(|r| {
            json!([
                r["phoneNumber"],
                r["status"],
                r["answered"],
                r["reply"],
                r["keypad"],
                r["durationSeconds"],
                r["dialCount"],
                r["nextDialAt"]
            ])
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            json!([
                "+4520002010",
                "FINISHED",
                true,
                "NO_REPLY",
                null,
                40,
                1,
                null
            ]),
            json!([
                "+4520001007",
                "FINISHED",
                true,
                "NO_REPLY",
                "7",
                37,
                1,
                null
            ]),
            json!([
                "+4520000002",
                "FINISHED",
                false,
                "NO_REPLY",
                null,
                0,
                2,
                null
            ]),
            json!([
                "+4520000003",
                "FINISHED",
                false,
                "NO_REPLY",
                null,
                0,
                2,
                null
            ]),
        ]
    );
    let calls = app
        .data(
            &app.org.token,
            "query($id: ID!) { calls(filter: { campaignId: $id }) { totalCount nodes { to status kind } } }",
            json!({ "id": id }),
        )
        .await;
    let mut outcomes: Vec<(String, String)> = calls["calls"]["nodes"]
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| {
            assert_eq!(c["kind"], "CAMPAIGN");
            (
                c["to"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    outcomes.sort();
    assert_eq!(calls["calls"]["totalCount"], 6);
    assert_eq!(
        outcomes,
        [
            ("+4520000002", "VOICEMAIL"),
            ("+4520000002", "VOICEMAIL"),
            ("+4520000003", "FAILED"),
            ("+4520000003", "FAILED"),
            ("+4520001007", "COMPLETED"),
            ("+4520002010", "COMPLETED"),
        ]
        .map(|(to, status)| (to.to_string(), status.to_string()))
    );
    assert_eq!(
        app.count("events WHERE event_type = 'CALL_CAMPAIGN_RECEIVER_FINISHED'")
            .await,
        4
    );
    let completed = entity_events(&app, "CALL_CAMPAIGN_COMPLETED").await;
    assert_eq!(completed.len(), 1);
    assert_eq!(
        (&completed[0]["reason"], &completed[0]["from"]),
        (&json!("ALL_DONE"), &json!("ACTIVE")),
        "{}",
        completed[0]
    );
}

#[tokio::test]
async fn a_survey_keeps_each_receivers_keypad_digits() {
    let (app, channel) = app().await;
    move_to(&app, monday_morning() + Duration::hours(2));
    let mut input = rsvp(
        &channel,
        // Presses 3; presses 0; answers and presses nothing.
        json!({ "phoneNumbers": ["+4520001003", "+4520001000", "+4520002222"] }),
    );
    input["name"] = json!("Satisfaction");
    input["kind"] = json!("SURVEY");
    input["audio"] =
        json!({ "textToSpeech": { "text": "Press 3 if you are happy.", "locale": "en-GB" } });
    input["actionButtons"] = json!([{ "button": "3", "action": "ACCEPT" }]);
    input["metadata"] = json!({ "survey": "q4" });
    let id = created(&app, input).await;
    app.state.jobs.wake();
    let campaign = until(&app, &id, |c| c["state"] == "COMPLETE").await;
    assert_eq!(campaign["kind"], "SURVEY");
    assert_eq!(campaign["completionReason"], "ALL_DONE");
    assert_eq!(
        campaign["stats"],
        stats(3, 3, 0, 3, 3, 33 + 30 + 52, 1, 0, 2, 0)
    );
    let rows: Vec<Value> = receivers(&app, &id)
        .await
        .iter()
        .map(|r| {
            json!([
                r["phoneNumber"],
                r["keypad"],
                r["reply"],
                r["durationSeconds"]
            ])
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            json!(["+4520001003", "3", "ACCEPT", 33]),
            json!(["+4520001000", "0", "NO_REPLY", 30]),
            json!(["+4520002222", null, "NO_REPLY", 52]),
        ]
    );
    // The receiver events carry the digits too, with the campaign's metadata.
    let finished: Vec<Value> = entity_events(&app, "CALL_CAMPAIGN_RECEIVER_FINISHED")
        .await
        .iter()
        .map(|p| json!([p["phoneNumber"], p["keypad"], p["reply"], p["metadata"]]))
        .collect();
    assert_eq!(
        finished,
        vec![
            json!(["+4520001003", "3", "ACCEPT", { "survey": "q4" }]),
            json!(["+4520001000", "0", "NO_REPLY", { "survey": "q4" }]),
            json!(["+4520002222", null, "NO_REPLY", { "survey": "q4" }]),
        ]
    );
    // Only answered receivers can have pressed anything: filtered by reply.
    let accepted = app
        .data(
            &app.org.token,
            "query($id: ID!) { callCampaign(id: $id) { receivers(replies: [ACCEPT]) { totalCount nodes { phoneNumber keypad } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        accepted["callCampaign"]["receivers"],
        json!({ "totalCount": 1, "nodes": [{ "phoneNumber": "+4520001003", "keypad": "3" }] })
    );
}

#[tokio::test]
async fn receivers_leave_out_opted_out_phoneless_and_anonymized_contacts_and_take_each_number_once()
{
    let (app, channel) = app().await;
    let ann = contact(&app, "Ann", Some("+4520001005")).await;
    let opted_out = contact(&app, "Olga", Some("+4520001006")).await;
    let no_phone = contact(&app, "Nils", None).await;
    let anonymized = contact(&app, "Anja", Some("+4520001007")).await;
    let texts_only = contact(&app, "Tim", Some("+4520001008")).await; // opted out of SMS only
    let bob = contact(&app, "Bob", Some("+4520001009")).await; // only by his raw number
    for (who, channel_type) in [(&opted_out, "VOICE"), (&texts_only, "SMS")] {
        let consent = app
            .data(
                &app.org.token,
                "mutation($input: SetContactConsentInput!) { setContactConsent(input: $input) { userErrors { message } } }",
                json!({ "input": { "contactId": who, "channel": channel_type, "status": "OPTED_OUT" } }),
            )
            .await;
        assert_eq!(consent["setContactConsent"]["userErrors"], json!([]));
    }
    let team = group(
        &app,
        "Team",
        &[&ann, &opted_out, &no_phone, &anonymized, &texts_only],
    )
    .await;
    let done = app
        .data(
            &app.org.token,
            "mutation($input: AnonymizeContactInput!) { anonymizeContact(input: $input) { userErrors { message } } }",
            json!({ "input": { "contactId": anonymized, "force": true } }),
        )
        .await;
    assert_eq!(done["anonymizeContact"]["userErrors"], json!([]));

    let mut input = rsvp(
        &channel,
        json!({
            "contactIds": [ann, opted_out, no_phone, anonymized],
            "groupIds": [team],
            "phoneNumbers": [
                "+4520003000", // nobody's
                "+4520001005", // Ann's: she is a receiver already
                "+4520003000", // again
                "+4520001006", // Olga's: she opted out of calls
                "+4520001009", // Bob's: his receiver
            ],
        }),
    );
    input["startTime"] = json!((monday_morning() + Duration::days(1)).to_rfc3339());
    let id = created(&app, input).await;
    let campaign = get(&app, &id).await;
    assert_eq!(campaign["stats"]["receivers"], 4);
    // The sources are kept as given (each raw number once).
    assert_eq!(
        campaign["receiverSources"]["phoneNumbers"],
        json!(["+4520003000", "+4520001005", "+4520001006", "+4520001009"])
    );
    let rows: Vec<Value> = receivers(&app, &id)
        .await
        .iter()
        .map(|r| {
            json!([
                r["phoneNumber"],
                r["contact"]["id"],
                r["status"],
                r["dialCount"]
            ])
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            json!(["+4520001005", ann, "PENDING", 0]),
            json!(["+4520001008", texts_only, "PENDING", 0]),
            json!(["+4520003000", null, "PENDING", 0]),
            json!(["+4520001009", bob, "PENDING", 0]),
        ]
    );
    let total = app
        .data(
            &app.org.token,
            "query($id: ID!) { callCampaign(id: $id) { receivers { totalCount } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(total["callCampaign"]["receivers"]["totalCount"], 4);
    assert_eq!(app.count("call_campaign_receivers").await, 4);

    // The same rules when the receivers are replaced before the start: only the group now.
    let changed = update(
        &app,
        json!({ "id": id, "receivers": { "groupIds": [team] } }),
    )
    .await;
    assert_eq!(changed["userErrors"], json!([]), "{changed}");
    assert_eq!(changed["callCampaign"]["stats"]["receivers"], 2);
    let rows: Vec<Value> = receivers(&app, &id)
        .await
        .iter()
        .map(|r| json!([r["phoneNumber"], r["contact"]["id"]]))
        .collect();
    assert_eq!(
        rows,
        vec![
            json!(["+4520001005", ann]),
            json!(["+4520001008", texts_only]),
        ]
    );
    assert_eq!(app.count("call_campaign_receivers").await, 2);
}

/// The README's "Try it on the demo server" walk-through, word for word (the test checks that the
/// README still holds each of these).
const README: &str = include_str!("../../README.md");

/// (a) A voice channel that can dial out, on the simulator.
const DEMO_CHANNEL: &str = r#"mutation {
  createChannel(input: { type: VOICE, name: "Demo calls", address: "+15550100100",
                         capabilities: [VOICE_INBOUND, VOICE_OUTBOUND], provider: SIMULATOR }) {
    channel { id capabilities provider }
    userErrors { field message code }
  }
}"#;

/// (b) An RSVP campaign to five numbers, waiting for its start time far ahead.
const DEMO_CAMPAIGN: &str = r#"mutation($channel: ID!) {
  createCallCampaign(input: {
    name: "Open day", kind: RSVP, channelId: $channel,
    audio: { textToSpeech: { text: "Join our open day on Friday. Press 1 to come, 2 if you cannot.", locale: "en-US" } },
    receivers: { phoneNumbers: ["+15550001001", "+15550001002", "+15550002000", "+15550000000", "+15550000001"] },
    startTime: "2099-01-01T00:00:00Z", endTime: "2099-12-31T00:00:00Z",
    activeFrom: "00:00", activeTo: "24:00",
    activeWeekdays: [MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY],
    maxRedials: 0,
    actionButtons: [{ button: "1", action: ACCEPT }, { button: "2", action: DECLINE }]
  }) {
    callCampaign { id state editable }
    userErrors { field message code }
  }
}"#;

/// (c) Start it now.
const DEMO_START: &str = r#"mutation($id: ID!) {
  setCallCampaignState(input: { id: $id, state: ACTIVE }) {
    callCampaign { state }
    userErrors { field message code }
  }
}"#;

/// (d) Its state, stats and receivers.
const DEMO_PROGRESS: &str = r#"query($id: ID!) {
  callCampaign(id: $id) {
    state completionReason
    stats { receivers finished dialedCalls answeredCalls totalDuration acceptsReceived declinesReceived noRepliesReceived notAnswered }
    receivers(first: 10) { nodes { phoneNumber answered reply keypad durationSeconds dialCount } }
  }
}"#;

/// The answer the README promises to (d).
const DEMO_ANSWER: &str = r#"{
  "data": {
    "callCampaign": {
      "state": "COMPLETE",
      "completionReason": "ALL_DONE",
      "stats": {
        "receivers": 5, "finished": 5, "dialedCalls": 5, "answeredCalls": 3, "totalDuration": 93,
        "acceptsReceived": 1, "declinesReceived": 1, "noRepliesReceived": 1, "notAnswered": 2
      },
      "receivers": {
        "nodes": [
          { "phoneNumber": "+15550001001", "answered": true, "reply": "ACCEPT", "keypad": "1", "durationSeconds": 31, "dialCount": 1 },
          { "phoneNumber": "+15550001002", "answered": true, "reply": "DECLINE", "keypad": "2", "durationSeconds": 32, "dialCount": 1 },
          { "phoneNumber": "+15550002000", "answered": true, "reply": "NO_REPLY", "keypad": null, "durationSeconds": 30, "dialCount": 1 },
          { "phoneNumber": "+15550000000", "answered": false, "reply": "NO_REPLY", "keypad": null, "durationSeconds": 0, "dialCount": 1 },
          { "phoneNumber": "+15550000001", "answered": false, "reply": "NO_REPLY", "keypad": null, "durationSeconds": 0, "dialCount": 1 }
        ]
      }
    }
  }
}"#;

#[tokio::test]
async fn the_readme_demo_campaign_runs_end_to_end() {
    for document in [
        DEMO_CHANNEL,
        DEMO_CAMPAIGN,
        DEMO_START,
        DEMO_PROGRESS,
        DEMO_ANSWER,
    ] {
        assert!(
            README.contains(document),
            "the README's demo walk-through no longer holds:\n{document}"
        );
    }
    let expected: Value = serde_json::from_str(DEMO_ANSWER).expect("the README's answer");

    // The demo organization `cargo run` seeds (UTC), with its owner's token, on a stopped clock.
    let app = TestApp::spawn_with(|c| {
        c.job_workers = 2;
        c.job_poll_ms = 20;
        c.job_backoff_base_ms = 1;
    })
    .await;
    let now = monday_morning();
    move_to(&app, now);
    let token = switchboard::cli::seed_demo(&app.state.db, true)
        .await
        .expect("seed")
        .expect("the demo owner's token");

    // (a)
    let body = app.gql(&token, DEMO_CHANNEL, json!({})).await;
    let channel = &body["data"]["createChannel"];
    assert_eq!(channel["userErrors"], json!([]), "{body}");
    assert_eq!(
        channel["channel"]["capabilities"],
        json!(["VOICE_INBOUND", "VOICE_OUTBOUND"])
    );
    assert_eq!(channel["channel"]["provider"], "SIMULATOR");
    let channel = channel["channel"]["id"].as_str().expect("channel id");

    // (b) Waiting for its start time, editable.
    let body = app
        .gql(&token, DEMO_CAMPAIGN, json!({ "channel": channel }))
        .await;
    let created = &body["data"]["createCallCampaign"];
    assert_eq!(created["userErrors"], json!([]), "{body}");
    assert_eq!(created["callCampaign"]["state"], "WAITING_TO_ACTIVE");
    assert_eq!(created["callCampaign"]["editable"], true);
    let id = created["callCampaign"]["id"]
        .as_str()
        .expect("campaign id")
        .to_string();
    let progress = || async { app.gql(&token, DEMO_PROGRESS, json!({ "id": id })).await };
    app.state.jobs.wake();
    settled(&app).await;
    assert_eq!(
        progress().await["data"]["callCampaign"]["state"],
        "WAITING_TO_ACTIVE"
    );
    assert_eq!(app.count("calls").await, 0);

    // (c) Started now: the dialer calls everyone at once, on the same instant of the clock.
    let body = app.gql(&token, DEMO_START, json!({ "id": id })).await;
    assert_eq!(
        body,
        json!({ "data": { "setCallCampaignState": { "callCampaign": { "state": "ACTIVE" }, "userErrors": [] } } })
    );
    app.state.jobs.wake();
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(60);
    let answer = loop {
        let answer = progress().await;
        if answer["data"]["callCampaign"]["state"] == "COMPLETE" {
            break answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the demo campaign never completed: {answer}"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    };

    // (d) Exactly the README's answer, with the clock not moved: one call per number.
    assert_eq!(answer, expected);
    assert_eq!(app.count("calls WHERE kind = 'CAMPAIGN'").await, 5);

    // And still once the simulated calls have ended (the longest, 5 s ringing and 32 s talking)
    // and any redial would have been due: nothing more happens.
    move_to(&app, now + Duration::hours(1));
    settled(&app).await;
    assert_eq!(progress().await, expected);
    assert_eq!(app.count("calls WHERE kind = 'CAMPAIGN'").await, 5);
}
