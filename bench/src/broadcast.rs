//! The `broadcast` scenario (only when named): a broadcast to `--broadcast-contacts` contacts
//! (100,000 by default) on an SMS channel with the simulator provider at the highest send rate
//! (1,000 messages per second, the most a channel allows), through the real server with its job
//! runner (`--broadcast-workers` workers).
//!
//! Seeding writes the contacts (each with a phone number the simulator delivers at once) and
//! their membership of one static group directly in batches; the channel, the group and the
//! broadcast (a text with `{{ contact.name }}`, audience: the group) are made through the API.
//! Then `sendBroadcast` is called and the broadcast's row is polled every 20 ms:
//! - **enqueue**: from `sendBroadcast` until every recipient has its message (`expandedAt`):
//!   each contact read, the body rendered, an outbound conversation started, the message
//!   appended with its status history, `MESSAGE_ADDED` event and `message.deliver` job, the
//!   recipient row written; contacts per second.
//! - **send**: from `sendBroadcast` until no message is still queued (all `SENT`), and until all
//!   are `DELIVERED`; messages per second overall, and sustained (between 10 % and 90 % of the
//!   messages sent, from the samples).
//!
//! Reference, on the same database and connection pool after the server stopped: the plain SQL
//! the work minimally needs, in transactions of 500 contacts: multi-row `INSERT`s of the same
//! conversations, messages, first status history rows, recipients and jobs (enqueue); then per
//! 500 messages `UPDATE messages` to `SENT`, its history rows, `UPDATE` to `DELIVERED`, its
//! history rows, the recipients' and jobs' statuses (status updates). It leaves out what the
//! server does besides: the audience query, rendering, events, counters, the channel throttle's
//! slot per message, one job claim and transaction per send and per report. The server's send
//! rate is capped by the channel's rate (1,000/s); the reference's is not.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::Serialize;
use serde_json::{Value, json};
use switchboard::Config;
use switchboard::config::SqliteSync;
use switchboard::graphql::relay::decode_id;
use tokio::net::TcpListener;
use tokio::sync::watch;
use uuid::Uuid;

use crate::load::{Target, send_once};
use crate::pin::run_on;
use crate::server::{app_error, durability, seed};

/// Rows per transaction when seeding and in the reference.
const BATCH: usize = 500;

/// The channel's send rate: the most a channel allows.
const RATE: f64 = 1_000.0;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Contacts in the audience.
    pub contacts: usize,
    /// The database (a fresh SQLite file in a temporary directory when `None`).
    pub database_url: Option<String>,
    /// SQLite `synchronous` level.
    pub sqlite_synchronous: Option<SqliteSync>,
    /// The server's job workers.
    pub workers: usize,
    /// How long the whole broadcast may take.
    pub timeout: Duration,
}

/// The measurements.
#[derive(Debug, Serialize)]
pub struct BroadcastResult {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The durability settings read back from the database.
    pub durability: String,
    /// Contacts in the audience.
    pub contacts: usize,
    /// Job workers of the server.
    pub workers: usize,
    /// The channel's send rate (messages per second).
    pub channel_rate: f64,
    /// Seconds seeding the contacts took.
    pub seed_seconds: f64,
    /// Seconds from `sendBroadcast` to every recipient's message enqueued.
    pub enqueue_seconds: f64,
    /// Contacts enqueued per second.
    pub enqueue_per_second: f64,
    /// Seconds from `sendBroadcast` to every message sent.
    pub sent_seconds: f64,
    /// Seconds from `sendBroadcast` to every message delivered.
    pub delivered_seconds: f64,
    /// Messages sent per second, overall.
    pub messages_per_second: f64,
    /// Messages sent per second between 10 % and 90 % sent.
    pub sustained_per_second: f64,
    /// Reference: seconds of the plain inserts of the same rows.
    pub reference_enqueue_seconds: f64,
    /// Reference: contacts per second.
    pub reference_enqueue_per_second: f64,
    /// Reference: seconds of the plain status updates (sent, delivered).
    pub reference_status_seconds: f64,
    /// Reference: messages per second through both statuses.
    pub reference_messages_per_second: f64,
    /// `enqueue_per_second / reference_enqueue_per_second`.
    pub enqueue_ratio: f64,
    /// `sustained_per_second / min(reference_messages_per_second, channel_rate)`: how close
    /// the server comes to what the channel's rate and the database allow.
    pub send_ratio: f64,
    /// Every contact got exactly one message and every message was delivered.
    pub valid: bool,
}

async fn graphql(target: &Target, query: &str, variables: Value) -> anyhow::Result<Value> {
    let body = Bytes::from(json!({ "query": query, "variables": variables }).to_string());
    let (status, answer) = send_once(target, body).await?;
    let json: Value = serde_json::from_slice(&answer).context("the answer is not JSON")?;
    if !status.is_success() || json.get("errors").is_some() {
        bail!("{query} failed ({status}): {json}");
    }
    Ok(json["data"].clone())
}

/// The payload field `field` of a mutation's answer, checked for user errors.
fn payload<'a>(data: &'a Value, mutation: &str, field: &str) -> anyhow::Result<&'a str> {
    if data[mutation]["userErrors"] != json!([]) {
        bail!("{mutation} refused: {}", data[mutation]["userErrors"]);
    }
    data[mutation][field]["id"]
        .as_str()
        .with_context(|| format!("{mutation} returned no {field}"))
}

/// A phone number the simulator delivers at once (its last four digits are never 0000-0003).
fn phone(i: usize) -> String {
    format!("+456{:03}{:04}", i / 9_000, 1_000 + i % 9_000)
}

async fn seed_contacts(
    db: &DatabaseConnection,
    org_id: Uuid,
    group_id: Uuid,
    count: usize,
) -> anyhow::Result<()> {
    let now = Utc::now();
    for start in (0..count).step_by(BATCH) {
        let end = (start + BATCH).min(count);
        let mut people = Vec::with_capacity(end - start);
        let mut members = Vec::with_capacity(end - start);
        for i in start..end {
            let id = Uuid::now_v7();
            let name = format!("Contact {i:06}");
            let mut model = entity::contact::ActiveModel {
                id: Set(id),
                org_id: Set(org_id),
                display_name: Set(Some(name.clone())),
                first_name: Set(None),
                last_name: Set(None),
                middle_name: Set(None),
                email: Set(None),
                phone: Set(Some(phone(i))),
                additional_emails: Set(json!([])),
                additional_phones: Set(json!([])),
                avatar_url: Set(None),
                external_id: Set(None),
                company: Set(None),
                address: Set(json!({})),
                note: Set(None),
                birth_date: Set(None),
                consent: Set(json!({})),
                sort_name: Set(name.to_lowercase()),
                anonymized_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            };
            switchboard::contacts::service::set_last_contacted(&mut model, None);
            people.push(model);
            members.push(entity::contact_group_member::ActiveModel {
                group_id: Set(group_id),
                contact_id: Set(id),
                org_id: Set(org_id),
                added_at: Set(now),
            });
        }
        let txn = switchboard::db::begin_write(db).await.map_err(app_error)?;
        entity::contact::Entity::insert_many(people)
            .exec(&txn)
            .await?;
        entity::contact_group_member::Entity::insert_many(members)
            .exec(&txn)
            .await?;
        txn.commit().await?;
    }
    Ok(())
}

/// Polled progress: (seconds since send, messages sent or failed).
type Samples = Vec<(f64, i64)>;

/// The rate between the samples where 10 % and 90 % of `total` were sent.
fn sustained(samples: &Samples, total: i64) -> f64 {
    let at = |share: f64| {
        let goal = (total as f64 * share).ceil() as i64;
        samples.iter().find(|(_, sent)| *sent >= goal).copied()
    };
    match (at(0.1), at(0.9)) {
        (Some((t1, s1)), Some((t2, s2))) if t2 > t1 => (s2 - s1) as f64 / (t2 - t1),
        _ => 0.0,
    }
}

/// Runs the scenario on `runtime`.
pub fn run(runtime: &tokio::runtime::Runtime, options: Options) -> anyhow::Result<BroadcastResult> {
    let (dir, url) = match options.database_url.clone() {
        Some(url) => (None, url),
        None => {
            let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
            let path = dir
                .path()
                .join("bench.db")
                .to_str()
                .context("the temporary directory's path is not UTF-8")?
                .to_string();
            (Some(dir), path)
        }
    };
    let mut config = Config::with_database(url);
    config.rate_limit_per_minute = 0;
    config.demo = false;
    config.shutdown_grace_seconds = 1;
    config.job_workers = options.workers.max(1);
    config.job_poll_ms = 20;
    if let Some(level) = options.sqlite_synchronous {
        config.sqlite_synchronous = level;
    }
    let backend = if config.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let result = run_on(runtime, async move {
        let reference_config = config.clone();
        let app = switchboard::build_app(config)
            .await
            .context("cannot build the app")?;
        let db = app.state.db.clone();
        let durability = durability(&db).await?;
        let token = seed(&db, 0).await?;
        let owner = switchboard::auth::authenticate(&db, &token)
            .await
            .map_err(app_error)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let (stop, mut stop_rx) = watch::channel(false);
        let server = tokio::spawn(app.serve(listener, async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        }));
        let target = Target::new(addr, "/graphql", &token);

        let data = graphql(
            &target,
            "mutation($input: CreateChannelInput!) { createChannel(input: $input) { channel { id } userErrors { field message } } }",
            json!({ "input": { "type": "SMS", "name": "Bench promotions", "address": "+4570000099", "sendRatePerSecond": RATE } }),
        )
        .await?;
        let channel = payload(&data, "createChannel", "channel")?.to_string();
        let data = graphql(
            &target,
            "mutation($input: CreateContactGroupInput!) { createContactGroup(input: $input) { contactGroup { id } userErrors { field message } } }",
            json!({ "input": { "name": "Everyone" } }),
        )
        .await?;
        let group = payload(&data, "createContactGroup", "contactGroup")?.to_string();
        let group_id = decode_id(&group, "ContactGroup").map_err(app_error)?;
        let started = Instant::now();
        seed_contacts(&db, owner.org_id, group_id, options.contacts).await?;
        let seed_seconds = started.elapsed().as_secs_f64();
        switchboard::db::refresh_statistics(&db).await?;
        if db.get_database_backend() == sea_orm::DbBackend::Postgres {
            sea_orm::ConnectionTrait::execute_unprepared(&db, "ANALYZE").await?;
        }
        let data = graphql(
            &target,
            "mutation($input: CreateBroadcastInput!) { createBroadcast(input: $input) { broadcast { id } userErrors { field message } } }",
            json!({ "input": { "name": "Bench sale", "channelId": channel,
                "text": "Hi {{ contact.name }}, our spring sale starts today: 20% off everything. Reply STOP to opt out.",
                "audience": { "groupIds": [group] } } }),
        )
        .await?;
        let broadcast = payload(&data, "createBroadcast", "broadcast")?.to_string();
        let broadcast_id = decode_id(&broadcast, "Broadcast").map_err(app_error)?;
        eprintln!(
            "bench: broadcast: {} contacts seeded in {seed_seconds:.1} s; sending",
            options.contacts
        );

        let started = Instant::now();
        let data = graphql(
            &target,
            "mutation($input: BroadcastIdInput!) { sendBroadcast(input: $input) { broadcast { id } userErrors { field message } } }",
            json!({ "input": { "id": broadcast } }),
        )
        .await?;
        payload(&data, "sendBroadcast", "broadcast")?;
        let mut samples: Samples = Vec::new();
        let (mut enqueued, mut sent, mut delivered) = (None, None, None);
        let mut last = None;
        while delivered.is_none() {
            let row = entity::broadcast::Entity::find_by_id(broadcast_id)
                .one(&db)
                .await?
                .context("the broadcast disappeared")?;
            let elapsed = started.elapsed().as_secs_f64();
            samples.push((elapsed, row.sent + row.failed));
            if enqueued.is_none() && row.expanded_at.is_some() {
                enqueued = Some(elapsed);
            }
            if sent.is_none() && row.expanded_at.is_some() && row.queued == 0 {
                sent = Some(elapsed);
            }
            if sent.is_some() && row.delivered + row.failed >= row.recipients - row.skipped {
                delivered = Some(elapsed);
            }
            if row.status == "FAILED" {
                bail!("the broadcast failed: {:?}", row.failure_reason);
            }
            if started.elapsed() > options.timeout {
                bail!(
                    "the broadcast did not finish within {:?}: {row:?}",
                    options.timeout
                );
            }
            last = Some(row);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let row = last.context("no progress read")?;
        let _ = stop.send(true);
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .context("the server did not stop in time")?
            .context("the server panicked")??;

        let messages = row.sent;
        // The server closed its pool: the reference and the checks get their own.
        let db = switchboard::db::connect(&reference_config).await?;
        let stored = entity::broadcast_recipient::Entity::find()
            .filter(entity::broadcast_recipient::Column::BroadcastId.eq(broadcast_id))
            .filter(entity::broadcast_recipient::Column::MessageId.is_not_null())
            .count(&db)
            .await?;
        let valid = row.recipients == options.contacts as i64
            && row.delivered == options.contacts as i64
            && row.failed == 0
            && stored == options.contacts as u64;

        let (reference_enqueue_seconds, reference_status_seconds) =
            reference(&db, owner.org_id, group_id, channel_id(&channel)?).await?;
        let enqueue_seconds = enqueued.unwrap_or_default();
        let sent_seconds = sent.unwrap_or_default();
        let contacts = options.contacts as f64;
        let per_second = |seconds: f64| {
            if seconds > 0.0 {
                contacts / seconds
            } else {
                0.0
            }
        };
        let sustained_per_second = sustained(&samples, messages);
        let reference_messages_per_second = per_second(reference_status_seconds);
        let enqueue_per_second = per_second(enqueue_seconds);
        let reference_enqueue_per_second = per_second(reference_enqueue_seconds);
        let ceiling = reference_messages_per_second.min(RATE);
        Ok(BroadcastResult {
            backend,
            durability,
            contacts: options.contacts,
            workers: options.workers.max(1),
            channel_rate: RATE,
            seed_seconds,
            enqueue_seconds,
            enqueue_per_second,
            sent_seconds,
            delivered_seconds: delivered.unwrap_or_default(),
            messages_per_second: per_second(sent_seconds),
            sustained_per_second,
            reference_enqueue_seconds,
            reference_enqueue_per_second,
            reference_status_seconds,
            reference_messages_per_second,
            enqueue_ratio: if reference_enqueue_per_second > 0.0 {
                enqueue_per_second / reference_enqueue_per_second
            } else {
                0.0
            },
            send_ratio: if ceiling > 0.0 {
                sustained_per_second / ceiling
            } else {
                0.0
            },
            valid,
        })
    });
    drop(dir);
    result
}

fn channel_id(id: &str) -> anyhow::Result<Uuid> {
    decode_id(id, "Channel").map_err(app_error)
}

/// The reference: the same rows written and moved with plain multi-row statements, 500 contacts
/// per transaction. Returns (seconds inserting, seconds updating statuses).
async fn reference(
    db: &DatabaseConnection,
    org_id: Uuid,
    group_id: Uuid,
    channel_id: Uuid,
) -> anyhow::Result<(f64, f64)> {
    let contacts: Vec<Uuid> = entity::contact_group_member::Entity::find()
        .filter(entity::contact_group_member::Column::GroupId.eq(group_id))
        .order_by_asc(entity::contact_group_member::Column::ContactId)
        .select_only()
        .column(entity::contact_group_member::Column::ContactId)
        .into_tuple()
        .all(db)
        .await?;
    let now = Utc::now();
    let broadcast_id = Uuid::now_v7();
    entity::broadcast::Entity::insert(entity::broadcast::ActiveModel {
        id: Set(broadcast_id),
        org_id: Set(org_id),
        name: Set("Reference".into()),
        channel_id: Set(Some(channel_id)),
        variables: Set(json!({})),
        audience: Set(json!({ "groupIds": [group_id] })),
        status: Set("COMPLETED".into()),
        progress_pending: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(db)
    .await?;
    let text =
        "Hi Contact, our spring sale starts today: 20% off everything. Reply STOP to opt out.";
    let mut batches: Vec<(Vec<Uuid>, Vec<Uuid>)> = Vec::new();
    let started = Instant::now();
    for (b, chunk) in contacts.chunks(BATCH).enumerate() {
        let mut conversations = Vec::with_capacity(chunk.len());
        let mut messages = Vec::with_capacity(chunk.len());
        let mut history = Vec::with_capacity(chunk.len());
        let mut recipients = Vec::with_capacity(chunk.len());
        let mut jobs = Vec::with_capacity(chunk.len());
        let (mut message_ids, mut job_ids) = (Vec::new(), Vec::new());
        for (i, contact_id) in chunk.iter().enumerate() {
            let at = Utc::now();
            let conversation_id = Uuid::now_v7();
            let message_id = Uuid::now_v7();
            let job_id = Uuid::now_v7();
            message_ids.push(message_id);
            job_ids.push(job_id);
            conversations.push(entity::conversation::ActiveModel {
                id: Set(conversation_id),
                org_id: Set(org_id),
                number: Set(1_000_000_000 + (b * BATCH + i) as i64),
                channel_id: Set(Some(channel_id)),
                channel_type: Set("SMS".into()),
                kind: Set("DIRECT".into()),
                direction: Set("OUTBOUND".into()),
                subject: Set(None),
                status: Set("OPEN".into()),
                pending_until: Set(None),
                close_reason: Set(None),
                closed_at: Set(None),
                requester_id: Set(*contact_id),
                assignee_id: Set(None),
                assigned_at: Set(None),
                queue_id: Set(None),
                queued_at: Set(None),
                priority: Set("NORMAL".into()),
                priority_rank: Set(1),
                parent_id: Set(None),
                link_type: Set(None),
                rating_type: Set(None),
                rating_score: Set(None),
                rating_comment: Set(None),
                rated_at: Set(None),
                first_response_at: Set(None),
                last_message_at: Set(at),
                last_message_id: Set(Some(message_id)),
                waiting_since: Set(None),
                waiting_key: Set(switchboard::conversations::NOT_WAITING),
                message_count: Set(1),
                archived_at: Set(None),
                anonymized_at: Set(None),
                created_at: Set(at),
                updated_at: Set(at),
            });
            messages.push(entity::message::ActiveModel {
                id: Set(message_id),
                org_id: Set(org_id),
                conversation_id: Set(conversation_id),
                author_kind: Set("SYSTEM".into()),
                author_contact_id: Set(None),
                author_user_id: Set(None),
                direction: Set("OUTBOUND".into()),
                text_body: Set(Some(text.into())),
                html_body: Set(None),
                email_subject: Set(None),
                from_address: Set(Some("+4570000099".into())),
                to_addresses: Set(Some(json!([phone(b * BATCH + i)]))),
                cc_addresses: Set(None),
                bcc_addresses: Set(None),
                external_id: Set(None),
                provider_channel_id: Set(None),
                provider_message_id: Set(None),
                message_id_header: Set(None),
                delivery_status: Set("QUEUED".into()),
                delivery_reason: Set(None),
                scheduled_at: Set(None),
                edited_at: Set(None),
                redacted_at: Set(None),
                removed_at: Set(None),
                anonymized_at: Set(None),
                created_at: Set(at),
                updated_at: Set(at),
            });
            history.push(entity::message_status_event::ActiveModel {
                id: Set(Uuid::now_v7()),
                org_id: Set(org_id),
                message_id: Set(message_id),
                status: Set("QUEUED".into()),
                reason: Set(None),
                created_at: Set(at),
            });
            recipients.push(entity::broadcast_recipient::ActiveModel {
                id: Set(Uuid::now_v7()),
                org_id: Set(org_id),
                broadcast_id: Set(broadcast_id),
                contact_id: Set(*contact_id),
                conversation_id: Set(Some(conversation_id)),
                message_id: Set(Some(message_id)),
                status: Set("QUEUED".into()),
                reason: Set(None),
                detail: Set(None),
                replied_at: Set(None),
                created_at: Set(at),
                updated_at: Set(at),
            });
            jobs.push(entity::job::ActiveModel {
                id: Set(job_id),
                org_id: Set(Some(org_id)),
                kind: Set("bench.reference".into()),
                payload: Set(json!({ "messageId": message_id })),
                status: Set("QUEUED".into()),
                run_at: Set(at),
                attempts: Set(0),
                max_attempts: Set(8),
                lease_owner: Set(None),
                lease_expires_at: Set(None),
                last_error: Set(None),
                created_at: Set(at),
                updated_at: Set(at),
                finished_at: Set(None),
            });
        }
        let txn = switchboard::db::begin_write(db).await.map_err(app_error)?;
        entity::conversation::Entity::insert_many(conversations)
            .exec(&txn)
            .await?;
        entity::message::Entity::insert_many(messages)
            .exec(&txn)
            .await?;
        entity::message_status_event::Entity::insert_many(history)
            .exec(&txn)
            .await?;
        entity::broadcast_recipient::Entity::insert_many(recipients)
            .exec(&txn)
            .await?;
        entity::job::Entity::insert_many(jobs).exec(&txn).await?;
        txn.commit().await?;
        batches.push((message_ids, job_ids));
    }
    let enqueue = started.elapsed().as_secs_f64();

    let started = Instant::now();
    for (message_ids, job_ids) in batches {
        let txn = switchboard::db::begin_write(db).await.map_err(app_error)?;
        for status in ["SENT", "DELIVERED"] {
            let at = Utc::now();
            entity::message::Entity::update_many()
                .col_expr(entity::message::Column::DeliveryStatus, Expr::value(status))
                .col_expr(entity::message::Column::UpdatedAt, Expr::value(at))
                .filter(entity::message::Column::Id.is_in(message_ids.clone()))
                .exec(&txn)
                .await?;
            entity::message_status_event::Entity::insert_many(message_ids.iter().map(|id| {
                entity::message_status_event::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    org_id: Set(org_id),
                    message_id: Set(*id),
                    status: Set(status.into()),
                    reason: Set(None),
                    created_at: Set(at),
                }
            }))
            .exec(&txn)
            .await?;
        }
        entity::broadcast_recipient::Entity::update_many()
            .col_expr(
                entity::broadcast_recipient::Column::Status,
                Expr::value("DELIVERED"),
            )
            .filter(entity::broadcast_recipient::Column::MessageId.is_in(message_ids))
            .exec(&txn)
            .await?;
        entity::job::Entity::update_many()
            .col_expr(entity::job::Column::Status, Expr::value("SUCCEEDED"))
            .col_expr(
                entity::job::Column::FinishedAt,
                Expr::value(Some(Utc::now())),
            )
            .filter(entity::job::Column::Id.is_in(job_ids))
            .exec(&txn)
            .await?;
        txn.commit().await?;
    }
    Ok((enqueue, started.elapsed().as_secs_f64()))
}

/// The result as a table.
pub fn table(r: &BroadcastResult) -> String {
    format!(
        "broadcast to {} contacts ({} {}, {} job workers, channel rate {}/s){}\n\
         {:<34} {:>10} {:>12}\n\
         {:<34} {:>9.2}s {:>10.0}/s\n\
         {:<34} {:>9.2}s {:>10.0}/s\n\
         {:<34} {:>9.2}s {:>10.0}/s  (sustained 10-90 %: {:.0}/s)\n\
         {:<34} {:>9.2}s\n\
         {:<34} {:>9.2}s {:>10.0}/s\n\
         enqueue ratio (server / reference): {:.3}; send ratio (sustained / min(reference, channel rate)): {:.3}\n",
        r.contacts,
        r.backend,
        r.durability,
        r.workers,
        r.channel_rate,
        if r.valid { "" } else { " INVALID" },
        "",
        "time",
        "rate",
        "enqueue (server)",
        r.enqueue_seconds,
        r.enqueue_per_second,
        "enqueue (reference SQL)",
        r.reference_enqueue_seconds,
        r.reference_enqueue_per_second,
        "all sent (server)",
        r.sent_seconds,
        r.messages_per_second,
        r.sustained_per_second,
        "all delivered (server)",
        r.delivered_seconds,
        "sent + delivered (reference SQL)",
        r.reference_status_seconds,
        r.reference_messages_per_second,
        r.enqueue_ratio,
        r.send_ratio,
    )
}
