//! The `call-campaign` scenario (only when named): an RSVP call campaign to
//! `--call-campaign-receivers` contacts (10,000 by default) of one group, on a voice channel with
//! the simulator provider, no rate limit and an always-open window, through the real server.
//!
//! Seeding writes the contacts (each with a number the simulator answers: the callee presses the
//! number's last digit, so a tenth accept with `5`, a tenth decline with `9`, the rest press no
//! action button) and their membership of one static group directly in batches; the channel,
//! the group and the campaign are made through the API (`createCallCampaign` resolves the
//! receivers: its seconds and SQL statements are reported as **create**).
//!
//! The server runs without its own job runner (`job_workers = 0`); the benchmark runs the same
//! [`switchboard::jobs::runner::Runner`] with `--call-campaign-workers` workers on a pool of its
//! own whose statements it counts, so **statements per receiver** is everything the dialer costs:
//! job claims and ends, the campaign's batches, each call's row and events through the calls
//! service, each receiver's outcome, its event and the campaign's counters. **Dial** is from the
//! campaign's creation until it is `COMPLETE` (the campaign's row polled every 20 ms):
//! receivers finished per second.
//!
//! Reference, on the same database after the server stopped: the plain SQL the work minimally
//! needs, in transactions of 200 receivers (the dialer's batch): one multi-row `INSERT` of the
//! calls, one `UPDATE` of the receivers, one of the campaign's counters. It leaves out what the
//! server does besides: reading the due receivers, the keypad replies per receiver, events, the
//! job machinery.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
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

/// Rows per seeding transaction.
const SEED_BATCH: usize = 500;
/// Receivers per reference transaction (the dialer's batch).
const BATCH: usize = 200;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Receivers (contacts of the group).
    pub receivers: usize,
    /// The database (a fresh SQLite file in a temporary directory when `None`).
    pub database_url: Option<String>,
    /// SQLite `synchronous` level.
    pub sqlite_synchronous: Option<SqliteSync>,
    /// Job workers of the benchmark's runner.
    pub workers: usize,
    /// How long the whole campaign may take.
    pub timeout: Duration,
}

/// The measurements.
#[derive(Debug, Serialize)]
pub struct CallCampaignResult {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The durability settings read back from the database.
    pub durability: String,
    /// Receivers.
    pub receivers: usize,
    /// Job workers.
    pub workers: usize,
    /// Seconds seeding the contacts took.
    pub seed_seconds: f64,
    /// Seconds of `createCallCampaign` (receivers resolved and stored).
    pub create_seconds: f64,
    /// SQL statements of `createCallCampaign`.
    pub create_statements: u64,
    /// Seconds from creation to `COMPLETE`.
    pub dial_seconds: f64,
    /// Receivers finished per second.
    pub receivers_per_second: f64,
    /// SQL statements of the job runner (dialer, calls, outcomes) per receiver.
    pub statements_per_receiver: f64,
    /// Reference: seconds of the plain writes.
    pub reference_seconds: f64,
    /// Reference: receivers per second.
    pub reference_per_second: f64,
    /// Reference: statements per receiver.
    pub reference_statements_per_receiver: f64,
    /// `receivers_per_second / reference_per_second`.
    pub ratio: f64,
    /// Accepts, declines, no replies.
    pub replies: [i64; 3],
    /// Every receiver finished once with one answered call, and the stats add up.
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

/// The id in the payload field `field` of a mutation's answer, checked for user errors.
fn payload<'a>(data: &'a Value, mutation: &str, field: &str) -> anyhow::Result<&'a str> {
    if data[mutation]["userErrors"] != json!([]) {
        bail!("{mutation} refused: {}", data[mutation]["userErrors"]);
    }
    data[mutation][field]["id"]
        .as_str()
        .with_context(|| format!("{mutation} returned no {field}"))
}

/// A number the simulator answers, the callee pressing its last digit.
fn phone(i: usize) -> String {
    format!("+457{:03}{:04}", i / 9_000, 1_000 + i % 9_000)
}

async fn seed_contacts(
    db: &DatabaseConnection,
    org_id: Uuid,
    group_id: Uuid,
    count: usize,
) -> anyhow::Result<()> {
    let now = Utc::now();
    for start in (0..count).step_by(SEED_BATCH) {
        let end = (start + SEED_BATCH).min(count);
        let mut people = Vec::with_capacity(end - start);
        let mut members = Vec::with_capacity(end - start);
        for i in start..end {
            let id = Uuid::now_v7();
            let name = format!("Receiver {i:06}");
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

/// Runs the scenario on `runtime`.
pub fn run(
    runtime: &tokio::runtime::Runtime,
    options: Options,
) -> anyhow::Result<CallCampaignResult> {
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
    config.job_poll_ms = 20;
    if let Some(level) = options.sqlite_synchronous {
        config.sqlite_synchronous = level;
    }
    let workers = options.workers.max(1);
    let backend = if config.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let result = run_on(runtime, async move {
        // The server's own runner stays idle; the benchmark's runs the jobs on a counted pool.
        let mut runner_config = config.clone();
        runner_config.job_workers = workers;
        let mut server_config = config.clone();
        server_config.job_workers = 0;
        let reference_config = config.clone();
        let app = switchboard::build_app(server_config)
            .await
            .context("cannot build the app")?;
        let db = app.state.db.clone();
        let durability = durability(&db).await?;
        let token = seed(&db, 0).await?;
        let owner = switchboard::auth::authenticate(&db, &token)
            .await
            .map_err(app_error)?;
        let mut jobs_db = switchboard::db::connect(&Config {
            db_max_connections: u32::try_from(workers * 2 + 1).unwrap_or(u32::MAX),
            ..runner_config.clone()
        })
        .await?;
        let runner_statements = Arc::new(AtomicU64::new(0));
        let counter = runner_statements.clone();
        jobs_db.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let runner = switchboard::jobs::runner::Runner {
            jobs: app.state.jobs.clone(),
            db: jobs_db.clone(),
            config: Arc::new(runner_config),
            clock: app.state.clock.clone(),
            bus: app.state.bus.clone(),
        };
        let (runner_stop, runner_stop_rx) = watch::channel(false);
        let metrics = app.state.metrics.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let (stop, mut stop_rx) = watch::channel(false);
        let server = tokio::spawn(app.serve(listener, async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        }));
        let runner = tokio::spawn(runner.run(runner_stop_rx));
        let target = Target::new(addr, "/graphql", &token);

        let data = graphql(
            &target,
            "mutation($input: CreateChannelInput!) { createChannel(input: $input) { channel { id } userErrors { field message } } }",
            json!({ "input": { "type": "VOICE", "name": "Bench calls", "address": "+4570000098" } }),
        )
        .await?;
        let channel = payload(&data, "createChannel", "channel")?.to_string();
        let data = graphql(
            &target,
            "mutation($input: CreateContactGroupInput!) { createContactGroup(input: $input) { contactGroup { id } userErrors { field message } } }",
            json!({ "input": { "name": "Invited" } }),
        )
        .await?;
        let group = payload(&data, "createContactGroup", "contactGroup")?.to_string();
        let group_id = decode_id(&group, "ContactGroup").map_err(app_error)?;
        let started = Instant::now();
        seed_contacts(&db, owner.org_id, group_id, options.receivers).await?;
        let seed_seconds = started.elapsed().as_secs_f64();
        switchboard::db::refresh_statistics(&db).await?;
        if db.get_database_backend() == sea_orm::DbBackend::Postgres {
            sea_orm::ConnectionTrait::execute_unprepared(&db, "ANALYZE").await?;
        }
        eprintln!(
            "bench: call campaign: {} contacts seeded in {seed_seconds:.1} s; dialling",
            options.receivers
        );

        let before_create = metrics.db_statements.get();
        let before_runner = runner_statements.load(Ordering::Relaxed);
        let started = Instant::now();
        let data = graphql(
            &target,
            "mutation($input: CreateCallCampaignInput!) { createCallCampaign(input: $input) { callCampaign { id } userErrors { field message } } }",
            json!({ "input": {
                "name": "Bench RSVP", "kind": "RSVP", "channelId": channel,
                "audio": { "textToSpeech": { "text": "You are invited. Press 5 to accept, 9 to decline.", "locale": "en-US" } },
                "receivers": { "groupIds": [group] },
                "endTime": (Utc::now() + chrono::Duration::days(1)).to_rfc3339(),
                "activeFrom": "00:00", "activeTo": "24:00",
                "activeWeekdays": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"],
                "maxRedials": 0,
                "actionButtons": [{ "button": "5", "action": "ACCEPT" }, { "button": "9", "action": "DECLINE" }],
            } }),
        )
        .await?;
        let create_seconds = started.elapsed().as_secs_f64();
        let create_statements = metrics.db_statements.get() - before_create;
        let campaign = payload(&data, "createCallCampaign", "callCampaign")?.to_string();
        let campaign_id = decode_id(&campaign, "CallCampaign").map_err(app_error)?;
        let row = loop {
            let row = entity::call_campaign::Entity::find_by_id(campaign_id)
                .one(&db)
                .await?
                .context("the campaign disappeared")?;
            if row.state == "COMPLETE" {
                break row;
            }
            if started.elapsed() > options.timeout {
                bail!(
                    "the campaign did not finish within {:?}: {row:?}",
                    options.timeout
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let dial_seconds = started.elapsed().as_secs_f64();
        // Let the runner end its last job before counting.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let statements = runner_statements.load(Ordering::Relaxed) - before_runner;
        let _ = runner_stop.send(true);
        let _ = stop.send(true);
        tokio::time::timeout(Duration::from_secs(10), runner)
            .await
            .context("the runner did not stop in time")?
            .context("the runner panicked")?;
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .context("the server did not stop in time")?
            .context("the server panicked")??;
        jobs_db.close().await?;

        let db = switchboard::db::connect(&reference_config).await?;
        let calls = entity::call::Entity::find()
            .filter(entity::call::Column::CampaignId.eq(campaign_id))
            .count(&db)
            .await?;
        let finished = entity::call_campaign_receiver::Entity::find()
            .filter(entity::call_campaign_receiver::Column::CampaignId.eq(campaign_id))
            .filter(entity::call_campaign_receiver::Column::Status.eq("FINISHED"))
            .filter(entity::call_campaign_receiver::Column::DialCount.eq(1))
            .count(&db)
            .await?;
        let n = options.receivers as i64;
        let valid = row.receivers == n
            && row.finished == n
            && row.dialed == n
            && row.answered == n
            && row.accepts + row.declines + row.no_replies == n
            && calls == options.receivers as u64
            && finished == options.receivers as u64;

        let (reference_seconds, reference_statements) =
            reference(&db, owner.org_id, campaign_id).await?;
        let receivers = options.receivers as f64;
        let per_second = |seconds: f64| {
            if seconds > 0.0 {
                receivers / seconds
            } else {
                0.0
            }
        };
        let receivers_per_second = per_second(dial_seconds);
        let reference_per_second = per_second(reference_seconds);
        Ok(CallCampaignResult {
            backend,
            durability,
            receivers: options.receivers,
            workers,
            seed_seconds,
            create_seconds,
            create_statements,
            dial_seconds,
            receivers_per_second,
            statements_per_receiver: statements as f64 / receivers,
            reference_seconds,
            reference_per_second,
            reference_statements_per_receiver: reference_statements as f64 / receivers,
            ratio: if reference_per_second > 0.0 {
                receivers_per_second / reference_per_second
            } else {
                0.0
            },
            replies: [row.accepts, row.declines, row.no_replies],
            valid,
        })
    });
    drop(dir);
    result
}

/// The reference: the campaign's receivers dialled again with plain statements, [`BATCH`] per
/// transaction: the calls inserted, the receivers and the campaign updated. Returns (seconds,
/// statements).
async fn reference(
    db: &DatabaseConnection,
    org_id: Uuid,
    campaign_id: Uuid,
) -> anyhow::Result<(f64, u64)> {
    use entity::call_campaign_receiver::Column as R;
    let receivers: Vec<(Uuid, Option<Uuid>, String)> =
        entity::call_campaign_receiver::Entity::find()
            .filter(R::CampaignId.eq(campaign_id))
            .order_by_asc(R::Id)
            .select_only()
            .columns([R::Id, R::ContactId, R::PhoneNumber])
            .into_tuple()
            .all(db)
            .await?;
    let campaign = entity::call_campaign::Entity::find_by_id(campaign_id)
        .one(db)
        .await?
        .context("the campaign disappeared")?;
    let channel_id = campaign.channel_id.context("the campaign has no channel")?;
    let mut statements = 0u64;
    let started = Instant::now();
    for chunk in receivers.chunks(BATCH) {
        let at = Utc::now();
        let calls: Vec<entity::call::ActiveModel> = chunk
            .iter()
            .map(
                |(receiver_id, contact_id, phone)| entity::call::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    org_id: Set(org_id),
                    channel_id: Set(channel_id),
                    conversation_id: Set(None),
                    kind: Set("CAMPAIGN".into()),
                    direction: Set("OUTBOUND".into()),
                    from_number: Set("+4570000098".into()),
                    to_number: Set(phone.clone()),
                    contact_id: Set(*contact_id),
                    user_id: Set(None),
                    queue_id: Set(None),
                    status: Set("COMPLETED".into()),
                    on_hold: Set(false),
                    hold_started_at: Set(None),
                    hold_seconds: Set(0),
                    created_at: Set(at),
                    ringing_at: Set(Some(at)),
                    answered_at: Set(Some(at)),
                    ended_at: Set(Some(at)),
                    updated_at: Set(at),
                    wait_seconds: Set(Some(5)),
                    talk_seconds: Set(Some(30)),
                    end_reason: Set(None),
                    keypad: Set(None),
                    recording_url: Set(None),
                    recording_seconds: Set(None),
                    transcription: Set(None),
                    transcription_status: Set(None),
                    price_micros: Set(None),
                    provider_call_id: Set(None),
                    campaign_id: Set(Some(campaign_id)),
                    campaign_receiver_id: Set(Some(*receiver_id)),
                    created_by: Set(None),
                    agent_to: Set(None),
                    agent_answered_at: Set(None),
                },
            )
            .collect();
        let ids: Vec<Uuid> = chunk.iter().map(|(id, _, _)| *id).collect();
        let txn = switchboard::db::begin_write(db).await.map_err(app_error)?;
        entity::call::Entity::insert_many(calls).exec(&txn).await?;
        entity::call_campaign_receiver::Entity::update_many()
            .col_expr(R::Status, Expr::value("FINISHED"))
            .col_expr(R::Answered, Expr::value(true))
            .col_expr(R::DialCount, Expr::value(2))
            .col_expr(R::FinishedAt, Expr::value(Some(at)))
            .filter(R::Id.is_in(ids))
            .exec(&txn)
            .await?;
        entity::call_campaign::Entity::update_many()
            .col_expr(
                entity::call_campaign::Column::Dialed,
                Expr::col(entity::call_campaign::Column::Dialed)
                    .add(i64::try_from(chunk.len()).unwrap_or(0)),
            )
            .filter(entity::call_campaign::Column::Id.eq(campaign_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        // BEGIN, three statements, COMMIT.
        statements += 5;
    }
    Ok((started.elapsed().as_secs_f64(), statements))
}

/// The result as a table.
pub fn table(r: &CallCampaignResult) -> String {
    format!(
        "call campaign (RSVP) to {} receivers ({} {}, {} job workers, simulator, no rate limit){}\n\
         {:<34} {:>10} {:>12} {:>14}\n\
         {:<34} {:>9.2}s {:>12} {:>14}\n\
         {:<34} {:>9.2}s {:>10.0}/s {:>14.2}\n\
         {:<34} {:>9.2}s {:>10.0}/s {:>14.3}\n\
         replies: {} accept, {} decline, {} no reply; ratio (server / reference): {:.3}\n",
        r.receivers,
        r.backend,
        r.durability,
        r.workers,
        if r.valid { "" } else { " INVALID" },
        "",
        "time",
        "receivers",
        "SQL/receiver",
        "create (resolve receivers)",
        r.create_seconds,
        "",
        format!("{} total", r.create_statements),
        "dial until COMPLETE (server)",
        r.dial_seconds,
        r.receivers_per_second,
        r.statements_per_receiver,
        "plain writes (reference SQL)",
        r.reference_seconds,
        r.reference_per_second,
        r.reference_statements_per_receiver,
        r.replies[0],
        r.replies[1],
        r.replies[2],
        r.ratio,
    )
}
