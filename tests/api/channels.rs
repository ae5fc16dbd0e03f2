//! Channels: every type with its address rules and defaults, validation that writes nothing,
//! unique addresses, patch updates, archive, roles, tenancy, filters and pagination.

use serde_json::{Value, json};

use crate::common::{TestApp, codes};

const FIELDS: &str = "id type name address capabilities provider providerSettings sendRatePerSecond \
    defaultQueue { name } businessHours { timezone days { day intervals { open close } } } \
    autoReply status archivedAt";

fn create_mutation() -> String {
    format!(
        "mutation($input: CreateChannelInput!) {{ createChannel(input: $input) {{ channel {{ {FIELDS} }} userErrors {{ field message code }} }} }}"
    )
}

fn update_mutation() -> String {
    format!(
        "mutation($input: UpdateChannelInput!) {{ updateChannel(input: $input) {{ channel {{ {FIELDS} }} userErrors {{ field message code }} }} }}"
    )
}

/// Creates a channel as the owner; returns the payload.
async fn create(app: &TestApp, input: Value) -> Value {
    create_as(app, &app.org.token, input).await
}

async fn create_as(app: &TestApp, token: &str, input: Value) -> Value {
    app.data(token, &create_mutation(), json!({ "input": input }))
        .await["createChannel"]
        .clone()
}

/// Creates a channel and returns its id.
pub async fn channel_id(app: &TestApp, token: &str, input: Value) -> String {
    let created = create_as(app, token, input).await;
    assert_eq!(created["userErrors"], json!([]), "{created}");
    created["channel"]["id"].as_str().unwrap().to_string()
}

async fn update(app: &TestApp, input: Value) -> Value {
    app.data(
        &app.org.token,
        &update_mutation(),
        json!({ "input": input }),
    )
    .await["updateChannel"]
        .clone()
}

async fn queue(app: &TestApp, token: &str, name: &str) -> String {
    let data = app
        .data(
            token,
            "mutation($name: String!) { createQueue(input: { name: $name }) { queue { id } } }",
            json!({ "name": name }),
        )
        .await;
    data["createQueue"]["queue"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The channel without its id (ids are random).
fn without_id(mut channel: Value) -> Value {
    channel.as_object_mut().unwrap().remove("id");
    channel
}

fn expected(kind: &str, name: &str, address: &str, capabilities: Value, rate: f64) -> Value {
    json!({
        "type": kind, "name": name, "address": address, "capabilities": capabilities,
        "provider": "SIMULATOR", "providerSettings": {}, "sendRatePerSecond": rate,
        "defaultQueue": null, "businessHours": null, "autoReply": null,
        "status": "ACTIVE", "archivedAt": null
    })
}

#[tokio::test]
async fn every_type_is_created_with_its_address_and_defaults() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({ "type": "EMAIL", "name": "Support mail", "address": " Help@Acme.TEST " }),
            expected("EMAIL", "Support mail", "help@acme.test", json!([]), 10.0),
        ),
        (
            json!({ "type": "SMS", "name": "Texts", "address": "+14155550100" }),
            expected("SMS", "Texts", "+14155550100", json!(["SMS", "MMS"]), 1.0),
        ),
        (
            json!({ "type": "WHATSAPP", "name": "WhatsApp", "address": "+4520123456" }),
            expected(
                "WHATSAPP",
                "WhatsApp",
                "+4520123456",
                json!(["SMS", "MMS"]),
                1.0,
            ),
        ),
        (
            json!({ "type": "VOICE", "name": "Phone", "address": "+4520123456" }),
            expected(
                "VOICE",
                "Phone",
                "+4520123456",
                json!(["VOICE_INBOUND", "VOICE_OUTBOUND"]),
                10.0,
            ),
        ),
        (
            json!({ "type": "CHAT", "name": "Website", "address": "site-widget_01" }),
            expected("CHAT", "Website", "site-widget_01", json!([]), 10.0),
        ),
        (
            json!({ "type": "VIDEO", "name": "Video", "address": "video-room-key" }),
            expected("VIDEO", "Video", "video-room-key", json!([]), 10.0),
        ),
    ];
    for (input, want) in cases {
        let created = create(&app, input).await;
        assert_eq!(created["userErrors"], json!([]), "{created}");
        assert_eq!(without_id(created["channel"].clone()), want);
    }
    // Widget types get a key when none is given.
    let messenger = create(&app, json!({ "type": "MESSENGER", "name": "Messenger" })).await;
    let key = messenger["channel"]["address"].as_str().unwrap();
    assert_eq!(key.len(), 24);
    assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));

    // Everything given: capabilities deduplicated and ordered, settings, queue, hours, reply.
    let support = queue(&app, &app.org.token, "Support").await;
    let full = create(
        &app,
        json!({
            "type": "SMS", "name": "Full", "address": "+14155550199",
            "capabilities": ["VOICE_OUTBOUND", "SMS", "SMS"],
            "provider": "WEBHOOK",
            "providerSettings": { "url": "https://bridge.example/send", "region": "eu" },
            "sendRatePerSecond": 2.5, "defaultQueueId": support,
            "businessHours": { "timezone": "Europe/Copenhagen", "days": [
                { "day": "FRIDAY", "intervals": [{ "open": "13:00", "close": "24:00" }, { "open": "08:00", "close": "12:00" }] },
                { "day": "MONDAY", "intervals": [{ "open": "09:00", "close": "17:00" }] },
                { "day": "SUNDAY", "intervals": [] }
            ] },
            "autoReply": "  We reply within a day.  "
        }),
    )
    .await;
    assert_eq!(
        without_id(full["channel"].clone()),
        json!({
            "type": "SMS", "name": "Full", "address": "+14155550199",
            "capabilities": ["SMS", "VOICE_OUTBOUND"], "provider": "WEBHOOK",
            "providerSettings": { "url": "https://bridge.example/send", "region": "eu" },
            "sendRatePerSecond": 2.5, "defaultQueue": { "name": "Support" },
            "businessHours": { "timezone": "Europe/Copenhagen", "days": [
                { "day": "MONDAY", "intervals": [{ "open": "09:00", "close": "17:00" }] },
                { "day": "FRIDAY", "intervals": [{ "open": "08:00", "close": "12:00" }, { "open": "13:00", "close": "24:00" }] }
            ] },
            "autoReply": "We reply within a day.", "status": "ACTIVE", "archivedAt": null
        })
    );
    // SMTP for email.
    let smtp = create(
        &app,
        json!({ "type": "EMAIL", "name": "SMTP", "address": "out@acme.test", "provider": "SMTP",
                "providerSettings": { "host": "smtp.acme.test", "port": 587 } }),
    )
    .await;
    assert_eq!(smtp["channel"]["provider"], "SMTP");
    assert_eq!(
        app.count("events WHERE event_type = 'CHANNEL_CREATED' AND subject_type = 'Channel'")
            .await,
        9
    );
    assert_eq!(app.count("channels").await, 9);

    // Business hours: open Monday 09:00–17:00 Copenhagen time (UTC+1 in January).
    let id = full["channel"]["id"].clone();
    let open = app
        .data(
            &app.org.token,
            "query($id: ID!) { channel(id: $id) {
                monday: isOpen(at: \"2026-01-05T08:30:00Z\")
                early: isOpen(at: \"2026-01-05T07:59:00Z\")
                tuesday: isOpen(at: \"2026-01-06T08:30:00Z\")
                fridayNight: isOpen(at: \"2026-01-09T22:59:00Z\")
            } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        open,
        json!({ "channel": { "monday": true, "early": false, "tuesday": false, "fridayNight": true } })
    );
}

/// The payloads of the events of a type, oldest first.
pub async fn payloads(app: &TestApp, event_type: &str) -> Vec<Value> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = &app.state.db;
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT CAST(payload AS TEXT) AS p FROM events WHERE event_type = '{event_type}' ORDER BY seq"
            ),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| serde_json::from_str(&row.try_get::<String>("", "p").unwrap()).unwrap())
        .collect()
}

/// The payload of the latest event of a type.
pub async fn last_payload(app: &TestApp, event_type: &str) -> Value {
    payloads(app, event_type).await.pop().unwrap()
}

fn error(field: &str, message: &str, code: &str) -> Value {
    let mut path = vec!["input".to_string()];
    path.extend(field.split('.').map(str::to_string));
    json!({ "field": path, "message": message, "code": code })
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let foreign_queue = queue(&app, &other.token, "Theirs").await;
    let hours = |days: Value| json!({ "timezone": "Europe/Copenhagen", "days": days });
    let sms = |extra: Value| {
        let mut input = json!({ "type": "SMS", "name": "Texts", "address": "+14155550100" });
        for (k, v) in extra.as_object().unwrap() {
            input[k] = v.clone();
        }
        input
    };
    let cases: Vec<(Value, Vec<Value>)> = vec![
        (
            sms(json!({ "address": "555-0100" })),
            vec![error(
                "address",
                "\"555-0100\" is not an E.164 phone number such as +14155550100",
                "INVALID",
            )],
        ),
        (
            json!({ "type": "VOICE", "name": "Phone", "address": "+0045123456" }),
            vec![error(
                "address",
                "\"+0045123456\" is not an E.164 phone number such as +14155550100",
                "INVALID",
            )],
        ),
        (
            json!({ "type": "EMAIL", "name": "Mail", "address": "not-an-email" }),
            vec![error(
                "address",
                "\"not-an-email\" is not a valid email address",
                "INVALID",
            )],
        ),
        (
            json!({ "type": "EMAIL", "name": "Mail" }),
            vec![error("address", "address must not be empty", "REQUIRED")],
        ),
        (
            json!({ "type": "CHAT", "name": "Chat", "address": "short" }),
            vec![error(
                "address",
                "\"short\" is not a widget key: 8 to 64 letters, digits, `_` or `-`",
                "INVALID",
            )],
        ),
        (
            sms(json!({ "name": "  " })),
            vec![error("name", "name must not be empty", "REQUIRED")],
        ),
        (
            sms(json!({ "name": "x".repeat(201) })),
            vec![error(
                "name",
                "name must be at most 200 characters",
                "TOO_LONG",
            )],
        ),
        (
            json!({ "type": "EMAIL", "name": "Mail", "address": "a@acme.test", "capabilities": ["SMS"] }),
            vec![error(
                "capabilities.0",
                "EMAIL channels cannot have the SMS capability",
                "INVALID",
            )],
        ),
        (
            json!({ "type": "WHATSAPP", "name": "WA", "address": "+4520123456", "capabilities": ["SMS", "VOICE_INBOUND"] }),
            vec![error(
                "capabilities.1",
                "WHATSAPP channels cannot have the VOICE_INBOUND capability",
                "INVALID",
            )],
        ),
        (
            json!({ "type": "VOICE", "name": "Phone", "address": "+4520123456", "capabilities": ["MMS"] }),
            vec![error(
                "capabilities.0",
                "VOICE channels cannot have the MMS capability",
                "INVALID",
            )],
        ),
        (
            sms(json!({ "provider": "SMTP", "providerSettings": { "host": "smtp.acme.test" } })),
            vec![error(
                "provider",
                "the SMTP provider is only for EMAIL channels",
                "INVALID",
            )],
        ),
        (
            sms(json!({ "provider": "WEBHOOK" })),
            vec![error(
                "providerSettings.url",
                "the WEBHOOK provider needs providerSettings.url (http or https)",
                "REQUIRED",
            )],
        ),
        (
            sms(json!({ "provider": "WEBHOOK", "providerSettings": { "url": "ftp://bridge" } })),
            vec![error(
                "providerSettings.url",
                "\"ftp://bridge\" is not an http(s) URL",
                "INVALID",
            )],
        ),
        (
            sms(json!({ "providerSettings": { "apiKey": "k", "region": "eu" } })),
            vec![error(
                "providerSettings.apiKey",
                "\"apiKey\" looks like a secret: secrets belong in the server configuration, not in providerSettings",
                "INVALID",
            )],
        ),
        (
            sms(json!({ "providerSettings": [1, 2] })),
            vec![error(
                "providerSettings",
                "providerSettings must be a JSON object",
                "INVALID",
            )],
        ),
        (
            sms(json!({ "providerSettings": { "note": "x".repeat(5000) } })),
            vec![error(
                "providerSettings",
                "providerSettings must be at most 4096 bytes of JSON",
                "TOO_LONG",
            )],
        ),
        (
            json!({ "type": "EMAIL", "name": "Mail", "address": "a@acme.test", "provider": "SMTP", "providerSettings": { "port": 70000 } }),
            vec![
                error(
                    "providerSettings.host",
                    "the SMTP provider needs providerSettings.host",
                    "REQUIRED",
                ),
                error(
                    "providerSettings.port",
                    "providerSettings.port must be a number from 1 to 65535",
                    "INVALID",
                ),
            ],
        ),
        (
            sms(json!({ "sendRatePerSecond": 0 })),
            vec![error(
                "sendRatePerSecond",
                "sendRatePerSecond must be more than 0 and at most 1000",
                "INVALID",
            )],
        ),
        (
            sms(json!({ "sendRatePerSecond": 1000.5 })),
            vec![error(
                "sendRatePerSecond",
                "sendRatePerSecond must be more than 0 and at most 1000",
                "INVALID",
            )],
        ),
        (
            sms(json!({ "defaultQueueId": foreign_queue })),
            vec![error("defaultQueueId", "no such queue", "NOT_FOUND")],
        ),
        (
            sms(json!({ "defaultQueueId": "bm90LWFuLWlk" })),
            vec![error(
                "defaultQueueId",
                "\"bm90LWFuLWlk\" is not a valid id",
                "INVALID",
            )],
        ),
        (
            sms(json!({ "businessHours": { "timezone": "Mars/Olympus", "days": [] } })),
            vec![error(
                "businessHours.timezone",
                "\"Mars/Olympus\" is not an IANA timezone",
                "INVALID",
            )],
        ),
        (
            sms(json!({ "businessHours": hours(json!([
                { "day": "MONDAY", "intervals": [{ "open": "18:00", "close": "09:00" }, { "open": "9:00", "close": "25:00" }] },
                { "day": "TUESDAY", "intervals": [{ "open": "08:00", "close": "12:00" }, { "open": "11:00", "close": "13:00" }] },
                { "day": "MONDAY", "intervals": [{ "open": "08:00", "close": "09:00" }] }
            ])) })),
            vec![
                error(
                    "businessHours.days.0.intervals.0",
                    "an interval must open before it closes",
                    "INVALID",
                ),
                error(
                    "businessHours.days.0.intervals.1.open",
                    "\"9:00\" is not a time HH:MM",
                    "INVALID",
                ),
                error(
                    "businessHours.days.0.intervals.1.close",
                    "\"25:00\" is not a time HH:MM (up to 24:00)",
                    "INVALID",
                ),
                error(
                    "businessHours.days.1.intervals.1",
                    "the interval overlaps another one of the same day",
                    "INVALID",
                ),
                error(
                    "businessHours.days.2.day",
                    "Monday is listed twice",
                    "INVALID",
                ),
            ],
        ),
        (
            sms(json!({ "autoReply": "x".repeat(2001) })),
            vec![error(
                "autoReply",
                "autoReply must be at most 2000 characters",
                "TOO_LONG",
            )],
        ),
        // Several problems at once are all reported.
        (
            json!({ "type": "SMS", "name": "", "address": "12345", "sendRatePerSecond": -1, "capabilities": ["SMS"] }),
            vec![
                error("name", "name must not be empty", "REQUIRED"),
                error(
                    "address",
                    "\"12345\" is not an E.164 phone number such as +14155550100",
                    "INVALID",
                ),
                error(
                    "sendRatePerSecond",
                    "sendRatePerSecond must be more than 0 and at most 1000",
                    "INVALID",
                ),
            ],
        ),
    ];
    let (channels, events) = (app.count("channels").await, app.count("events").await);
    for (input, errors) in cases {
        let refused = create(&app, input.clone()).await;
        assert_eq!(
            refused,
            json!({ "channel": null, "userErrors": errors }),
            "input: {input}"
        );
    }
    assert_eq!(app.count("channels").await, channels);
    assert_eq!(app.count("events").await, events);
}

#[tokio::test]
async fn an_address_is_unique_per_type_in_an_organization() {
    let app = TestApp::spawn().await;
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let number = json!({ "type": "SMS", "name": "Texts", "address": "+14155550100" });
    let first = channel_id(&app, &app.org.token, number.clone()).await;
    let taken = error(
        "address",
        "another SMS channel of the organization (perhaps archived) has this address",
        "TAKEN",
    );
    assert_eq!(
        create(&app, number.clone()).await,
        json!({ "channel": null, "userErrors": [taken.clone()] })
    );
    // Another type, or another organization, may use the same number.
    channel_id(
        &app,
        &app.org.token,
        json!({ "type": "VOICE", "name": "Calls", "address": "+14155550100" }),
    )
    .await;
    channel_id(&app, &other.token, number.clone()).await;
    // Email addresses compare in lower case.
    channel_id(
        &app,
        &app.org.token,
        json!({ "type": "EMAIL", "name": "Mail", "address": "help@acme.test" }),
    )
    .await;
    let mail = create(
        &app,
        json!({ "type": "EMAIL", "name": "Mail 2", "address": "HELP@acme.test" }),
    )
    .await;
    assert_eq!(mail["userErrors"][0]["code"], "TAKEN");
    // An archived channel keeps its address.
    app.data(
        &app.org.token,
        "mutation($id: ID!) { archiveChannel(input: { id: $id }) { userErrors { code } } }",
        json!({ "id": first }),
    )
    .await;
    assert_eq!(
        create(&app, number).await["userErrors"],
        json!([taken.clone()])
    );
    // Updating another channel to the address is refused too; keeping its own is fine.
    let second = channel_id(
        &app,
        &app.org.token,
        json!({ "type": "SMS", "name": "Second", "address": "+14155550101" }),
    )
    .await;
    let events = app.count("events").await;
    assert_eq!(
        update(&app, json!({ "id": second, "address": "+14155550100" })).await,
        json!({ "channel": null, "userErrors": [taken] })
    );
    assert_eq!(app.count("events").await, events);
    let same = update(
        &app,
        json!({ "id": second, "address": "+14155550101", "name": "Renamed" }),
    )
    .await;
    assert_eq!(same["userErrors"], json!([]));
    assert_eq!(same["channel"]["name"], "Renamed");
    assert_eq!(
        app.count("channels WHERE address = '+14155550100'").await,
        3
    );
}

#[tokio::test]
async fn update_changes_only_the_given_fields() {
    let app = TestApp::spawn().await;
    let support = queue(&app, &app.org.token, "Support").await;
    let id = channel_id(
        &app,
        &app.org.token,
        json!({
            "type": "SMS", "name": "Texts", "address": "+14155550100", "defaultQueueId": support,
            "autoReply": "Hi", "businessHours": { "timezone": "UTC", "days": [
                { "day": "MONDAY", "intervals": [{ "open": "09:00", "close": "17:00" }] }] }
        }),
    )
    .await;
    let updated = update(
        &app,
        json!({ "id": id, "name": "Main number", "capabilities": ["SMS", "VOICE_INBOUND"],
                "defaultQueueId": null, "autoReply": null, "sendRatePerSecond": 30 }),
    )
    .await;
    assert_eq!(
        without_id(updated["channel"].clone()),
        json!({
            "type": "SMS", "name": "Main number", "address": "+14155550100",
            "capabilities": ["SMS", "VOICE_INBOUND"], "provider": "SIMULATOR",
            "providerSettings": {}, "sendRatePerSecond": 30.0, "defaultQueue": null,
            "businessHours": { "timezone": "UTC", "days": [
                { "day": "MONDAY", "intervals": [{ "open": "09:00", "close": "17:00" }] }] },
            "autoReply": null, "status": "ACTIVE", "archivedAt": null
        })
    );
    assert_eq!(updated["userErrors"], json!([]));
    let payload =
        |event: &str| format!("events WHERE event_type = '{event}' AND subject_type = 'Channel'");
    assert_eq!(app.count(&payload("CHANNEL_UPDATED")).await, 1);
    assert_eq!(
        last_payload(&app, "CHANNEL_UPDATED").await,
        json!({ "changed": ["name", "capabilities", "sendRatePerSecond", "defaultQueue", "autoReply"] })
    );

    // A provider needs settings that suit it; the channel stays as it was.
    let events = app.count("events").await;
    let refused = update(&app, json!({ "id": id, "provider": "WEBHOOK" })).await;
    assert_eq!(
        refused,
        json!({ "channel": null, "userErrors": [error(
            "providerSettings.url",
            "the WEBHOOK provider needs providerSettings.url (http or https)",
            "REQUIRED",
        )] })
    );
    let refused = update(
        &app,
        json!({ "id": id, "capabilities": ["MMS", "SMS"], "address": "+1", "businessHours": null }),
    )
    .await;
    assert_eq!(
        refused["userErrors"],
        json!([error(
            "address",
            "\"+1\" is not an E.164 phone number such as +14155550100",
            "INVALID",
        )])
    );
    assert_eq!(app.count("events").await, events);
    let moved = update(
        &app,
        json!({ "id": id, "provider": "WEBHOOK", "providerSettings": { "url": "https://bridge.example" }, "businessHours": null }),
    )
    .await;
    assert_eq!(moved["channel"]["provider"], "WEBHOOK");
    assert_eq!(moved["channel"]["businessHours"], Value::Null);
    assert_eq!(
        moved["channel"]["capabilities"],
        json!(["SMS", "VOICE_INBOUND"])
    );
    // A change to nothing records nothing.
    let events = app.count("events").await;
    let same = update(&app, json!({ "id": id, "name": "Main number" })).await;
    assert_eq!(same["userErrors"], json!([]));
    assert_eq!(app.count("events").await, events);
    // Unknown and malformed ids.
    assert_eq!(
        update(&app, json!({ "id": support, "name": "X" })).await["userErrors"],
        json!([error(
            "id",
            "expected an id of a Channel, got an id of a Queue",
            "INVALID"
        )])
    );
}

#[tokio::test]
async fn channels_are_archived_and_unarchived_once() {
    let app = TestApp::spawn().await;
    let id = channel_id(
        &app,
        &app.org.token,
        json!({ "type": "CHAT", "name": "Website", "address": "website-key" }),
    )
    .await;
    let archive = "mutation($id: ID!) { archiveChannel(input: { id: $id }) { channel { status archivedAt } userErrors { field message code } } }";
    let unarchive = "mutation($id: ID!) { unarchiveChannel(input: { id: $id }) { channel { status archivedAt } userErrors { field message code } } }";
    let archived =
        app.data(&app.org.token, archive, json!({ "id": id })).await["archiveChannel"].clone();
    assert_eq!(archived["channel"]["status"], "ARCHIVED");
    assert!(archived["channel"]["archivedAt"].is_string());
    assert_eq!(archived["userErrors"], json!([]));
    let events = app.count("events").await;
    assert_eq!(
        app.data(&app.org.token, archive, json!({ "id": id })).await,
        json!({ "archiveChannel": { "channel": null, "userErrors": [error("id", "the channel is already archived", "INVALID_STATE")] } })
    );
    assert_eq!(
        update(&app, json!({ "id": id, "name": "Renamed" })).await,
        json!({ "channel": null, "userErrors": [error("id", "the channel is archived: unarchive it to change it", "INVALID_STATE")] })
    );
    assert_eq!(app.count("events").await, events);
    assert_eq!(app.count("channels WHERE name = 'Website'").await, 1);
    assert_eq!(
        app.data(&app.org.token, unarchive, json!({ "id": id }))
            .await,
        json!({ "unarchiveChannel": { "channel": { "status": "ACTIVE", "archivedAt": null }, "userErrors": [] } })
    );
    assert_eq!(
        app.data(&app.org.token, unarchive, json!({ "id": id }))
            .await,
        json!({ "unarchiveChannel": { "channel": null, "userErrors": [error("id", "the channel is not archived", "INVALID_STATE")] } })
    );
    for event in ["CHANNEL_ARCHIVED", "CHANNEL_UNARCHIVED"] {
        assert_eq!(
            app.count(&format!(
                "events WHERE event_type = '{event}' AND subject_type = 'Channel'"
            ))
            .await,
            1
        );
    }
}

#[tokio::test]
async fn agents_read_channels_admins_manage_them_and_organizations_are_apart() {
    let app = TestApp::spawn().await;
    let other = app
        .create_org("Globex", "globex", "owner@globex.test")
        .await;
    let id = channel_id(
        &app,
        &app.org.token,
        json!({ "type": "SMS", "name": "Texts", "address": "+14155550100" }),
    )
    .await;
    let (_, agent) = app.user_with_token("agent@acme.test", &["AGENT"]).await;
    let (_, lead) = app.user_with_token("lead@acme.test", &["TEAM_LEAD"]).await;
    let (_, admin) = app.user_with_token("admin@acme.test", &["ADMIN"]).await;
    let read = "query($id: ID!) { channel(id: $id) { name } node(id: $id) { id ... on Channel { address } } channels { totalCount nodes { name } } }";
    assert_eq!(
        app.data(&agent, read, json!({ "id": id })).await,
        json!({
            "channel": { "name": "Texts" }, "node": { "id": id, "address": "+14155550100" },
            "channels": { "totalCount": 1, "nodes": [{ "name": "Texts" }] }
        })
    );
    let input = json!({ "type": "EMAIL", "name": "Mail", "address": "mail@acme.test" });
    for token in [&agent, &lead] {
        let body = app
            .gql(token, &create_mutation(), json!({ "input": input }))
            .await;
        assert_eq!(codes(&body), ["FORBIDDEN"]);
        for mutation in [
            "mutation($id: ID!) { updateChannel(input: { id: $id, name: \"X\" }) { userErrors { code } } }",
            "mutation($id: ID!) { archiveChannel(input: { id: $id }) { userErrors { code } } }",
        ] {
            let body = app.gql(token, mutation, json!({ "id": id })).await;
            assert_eq!(codes(&body), ["FORBIDDEN"]);
        }
    }
    assert_eq!(app.count("channels").await, 1);
    assert_eq!(
        create_as(&app, &admin, input).await["userErrors"],
        json!([])
    );

    // Another organization sees none of it and cannot change it.
    assert_eq!(
        app.data(&other.token, read, json!({ "id": id })).await,
        json!({ "channel": null, "node": null, "channels": { "totalCount": 0, "nodes": [] } })
    );
    let not_found = json!([error("id", "no such channel", "NOT_FOUND")]);
    let changed = app
        .data(
            &other.token,
            "mutation($id: ID!) { updateChannel(input: { id: $id, name: \"Mine\" }) { userErrors { field message code } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(changed["updateChannel"]["userErrors"], not_found);
    let archived = app
        .data(
            &other.token,
            "mutation($id: ID!) { archiveChannel(input: { id: $id }) { userErrors { field message code } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(archived["archiveChannel"]["userErrors"], not_found);
    assert_eq!(
        app.count("channels WHERE name = 'Texts' AND status = 'ACTIVE'")
            .await,
        1
    );
}

#[tokio::test]
async fn channels_filter_order_and_paginate() {
    let app = TestApp::spawn().await;
    for (kind, name, address) in [
        ("SMS", "b-texts", "+14155550100"),
        ("VOICE", "d-phone", "+14155550100"),
        ("EMAIL", "a-mail", "help@acme.test"),
        ("CHAT", "e-web", "website-key"),
        ("SMS", "c-texts", "+14155550177"),
    ] {
        channel_id(
            &app,
            &app.org.token,
            json!({ "type": kind, "name": name, "address": address }),
        )
        .await;
    }
    let archived = channel_id(
        &app,
        &app.org.token,
        json!({ "type": "EMAIL", "name": "f-old", "address": "old@acme.test" }),
    )
    .await;
    app.data(
        &app.org.token,
        "mutation($id: ID!) { archiveChannel(input: { id: $id }) { userErrors { code } } }",
        json!({ "id": archived }),
    )
    .await;
    let list = "query($filter: ChannelFilterInput, $order: ChannelOrder, $first: Int, $after: String, $last: Int, $before: String) {
        channels(filter: $filter, orderBy: $order, first: $first, after: $after, last: $last, before: $before) {
            totalCount nodes { name } pageInfo { hasNextPage hasPreviousPage endCursor startCursor } } }";
    let names = |data: &Value| -> Vec<String> {
        data["channels"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect()
    };
    let run = |vars: Value| app.data(&app.org.token, list, vars);
    assert_eq!(
        names(&run(json!({})).await),
        ["a-mail", "b-texts", "c-texts", "d-phone", "e-web", "f-old"]
    );
    assert_eq!(
        names(&run(json!({ "filter": { "types": ["SMS", "VOICE"] } })).await),
        ["b-texts", "c-texts", "d-phone"]
    );
    assert_eq!(
        names(&run(json!({ "filter": { "status": "ARCHIVED" } })).await),
        ["f-old"]
    );
    assert_eq!(
        names(&run(json!({ "filter": { "status": "ACTIVE", "types": ["EMAIL"] } })).await),
        ["a-mail"]
    );
    assert_eq!(
        names(&run(json!({ "filter": { "search": "555010" } })).await),
        ["b-texts", "d-phone"]
    );
    assert_eq!(
        names(&run(json!({ "filter": { "search": "TEXTS" } })).await),
        ["b-texts", "c-texts"]
    );
    assert_eq!(
        names(&run(json!({ "filter": { "search": "100%" } })).await),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&run(json!({ "order": { "field": "NAME", "direction": "DESC" } })).await),
        ["f-old", "e-web", "d-phone", "c-texts", "b-texts", "a-mail"]
    );
    assert_eq!(
        names(&run(json!({ "order": { "field": "CREATED_AT", "direction": "ASC" } })).await),
        ["b-texts", "d-phone", "a-mail", "e-web", "c-texts", "f-old"]
    );
    // Forward and backward pages.
    let page = run(json!({ "first": 2 })).await;
    assert_eq!(names(&page), ["a-mail", "b-texts"]);
    assert_eq!(page["channels"]["totalCount"], 6);
    assert_eq!(page["channels"]["pageInfo"]["hasNextPage"], true);
    let next = run(json!({ "first": 3, "after": page["channels"]["pageInfo"]["endCursor"] })).await;
    assert_eq!(names(&next), ["c-texts", "d-phone", "e-web"]);
    assert_eq!(next["channels"]["pageInfo"]["hasPreviousPage"], true);
    let back =
        run(json!({ "last": 2, "before": next["channels"]["pageInfo"]["startCursor"] })).await;
    assert_eq!(names(&back), ["a-mail", "b-texts"]);
    assert_eq!(back["channels"]["pageInfo"]["hasPreviousPage"], false);
    let filtered = run(json!({ "first": 1, "filter": { "types": ["SMS"] } })).await;
    assert_eq!(filtered["channels"]["totalCount"], 2);
    // A cursor of another order is refused.
    let body = app
        .gql(
            &app.org.token,
            list,
            json!({ "after": page["channels"]["pageInfo"]["endCursor"], "order": { "field": "CREATED_AT" } }),
        )
        .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"]);
}

#[tokio::test]
async fn a_page_of_channels_loads_default_queues_in_fixed_statements() {
    let app = TestApp::spawn().await;
    let query = "{ channels(first: 100) { nodes { name defaultQueue { name } } } }";
    let mut counts = Vec::new();
    for (round, size) in [(0, 2), (1, 10)] {
        for i in 0..size {
            let queue = queue(&app, &app.org.token, &format!("Q{round}-{i}")).await;
            channel_id(
                &app,
                &app.org.token,
                json!({ "type": "CHAT", "name": format!("web {round}-{i}"), "address": format!("widget-{round}-{i}"), "defaultQueueId": queue }),
            )
            .await;
        }
        let (statements, data) = app.statements_of(&app.org.token, query).await;
        assert!(data["channels"]["nodes"][0]["defaultQueue"]["name"].is_string());
        counts.push(statements);
    }
    assert_eq!(counts[0], counts[1], "statements for 2 and 12 channels");
}
