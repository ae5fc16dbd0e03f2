//! The `metrics` scenario: metric queries over a large organization, against the SQL they run and
//! a brute-force scan of the conversations.
//!
//! Seeds `--metrics-conversations` conversations (1,000,000 by default) over the last 100 days
//! with `--metrics-messages-per-conversation` messages each (5 by default: 5,000,000), directly
//! with multi-row inserts in large transactions, plus their metric facts
//! (`conversations_created`, `first_response_time`) and the rollups rebuilt from them with the
//! app's own [`switchboard::metrics::rollup::rebuild_rollups`] (the event hook keeps exactly
//! these; the API tests check it). Then, for each query:
//!
//! - **graphql**: the `metric` query over HTTP (keep-alive, one at a time), p50 and p99;
//! - **resolver**: what the `metric` field runs, [`switchboard::metrics::query::run`], in
//!   process (validation, its SQL, buckets and groups), p50 and p99;
//! - **resolver SQL**: the statements the resolver runs (captured by running the same query
//!   through a recording connection), executed directly with every value of every row read
//!   (as a hand-written handler would; PostgreSQL's driver decodes a value only when it is read,
//!   so fetching alone would leave out work SQLite's driver does while fetching), p50 and p99 —
//!   the targets are
//!   `resolver_p50 / sql_p50 <= 1.1` and `graphql_p50 < 50 ms`; `graphql_p50 / sql_p50` is
//!   reported too (it adds authentication, parsing, validation, the JSON answer and the round
//!   trip);
//! - **brute force**: the same numbers computed from the conversations table by one scan.
//!
//! Queries: `first_response_time` as a daily series over 90 days grouped by queue in
//! Europe/Copenhagen, and `conversations_created` by hour over 7 days in America/New_York. The
//! run checks that the totals of the three agree.
//!
//! The SQLite file lives in a temporary directory under the current directory (not `/tmp`) and
//! is deleted at the end.

use std::sync::Mutex;

use sea_orm::sqlx::{Decode, TypeInfo, ValueRef};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, TimeZone, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, ExecResult, QueryResult,
    Set, Statement,
};
use serde_json::{Value, json};
use switchboard::config::Config;
use switchboard::metrics::query::{self, Limits, MetricQuery, Period};
use uuid::Uuid;

use crate::server::{app_error, durability, seed};

/// Options of the scenario.
pub struct Options {
    /// Database URL; a SQLite file under the current directory by default.
    pub database_url: Option<String>,
    /// Conversations to seed.
    pub conversations: usize,
    /// Messages per conversation.
    pub messages_per_conversation: usize,
    /// Measured requests per query and side.
    pub iterations: usize,
}

/// Latency figures of one side.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Timing {
    /// Median, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
}

/// One query's figures.
#[derive(Clone, Debug, serde::Serialize)]
pub struct QueryFigures {
    /// What was asked.
    pub name: &'static str,
    /// What the answer came from (`ROLLUPS`, `FACTS`).
    pub source: String,
    /// SQL statements the resolver runs.
    pub statements: usize,
    /// The GraphQL query over HTTP (authentication, parsing, validation, the resolver, the
    /// JSON answer and the round trip).
    pub graphql: Timing,
    /// The resolver: `switchboard::metrics::query::run`, what the `metric` field runs
    /// (validation, the SQL, buckets and groups), in process.
    pub resolver: Timing,
    /// The resolver's SQL alone.
    pub resolver_sql: Timing,
    /// The brute-force scan.
    pub brute_force: Timing,
    /// `resolver.p50 / resolver_sql.p50` (the target: at most 1.1).
    pub ratio: f64,
    /// `graphql.p50 / resolver_sql.p50`.
    pub graphql_ratio: f64,
}

/// The scenario's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MetricsResult {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Durability settings.
    pub durability: String,
    /// Conversations seeded.
    pub conversations: usize,
    /// Messages seeded.
    pub messages: usize,
    /// Seconds seeding took (rows, facts, rollups).
    pub seed_seconds: f64,
    /// Rollup rows.
    pub rollup_rows: i64,
    /// Per query.
    pub queries: Vec<QueryFigures>,
    /// Whether the three sides agreed on the totals.
    pub valid: bool,
}

/// The orders the three sides (0 GraphQL, 1 resolver, 2 SQL) take turns in, one per iteration,
/// cycling: all six, arranged so that over the cycle (the last of one order followed by the
/// first of the next included) each side directly follows each other side three times and never
/// itself. A side inherits the allocator's state its predecessor leaves: glibc's `malloc` merges
/// the small blocks freed before it into larger ones on the next large request
/// (`malloc_consolidate`), so the side after the GraphQL request (which frees a whole JSON
/// answer) pays for that request's garbage. Rotating one order (`0 1 2`, `1 2 0`, `2 0 1`) put
/// the resolver after the GraphQL side two times in three and the SQL side one in three, which a
/// profile showed as the resolver's largest cost.
const ORDERS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [2, 1, 0],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
];

/// A connection that records the statements run through it (to time the resolver's SQL alone).
struct Recorder<'a> {
    db: &'a DatabaseConnection,
    seen: Mutex<Vec<Statement>>,
}

impl Recorder<'_> {
    fn note(&self, stmt: &Statement) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(stmt.clone());
        }
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Recorder<'_> {
    fn get_database_backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }
    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.note(&stmt);
        self.db.execute_raw(stmt).await
    }
    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.db.execute_unprepared(sql).await
    }
    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.note(&stmt);
        self.db.query_one_raw(stmt).await
    }
    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.note(&stmt);
        self.db.query_all_raw(stmt).await
    }
}

/// Reads every value of `rows` by its column's type (what any consumer of the SQL would do), and
/// returns how many non-null values there were.
fn read_values(rows: &[QueryResult]) -> anyhow::Result<usize> {
    let mut read = 0;
    for row in rows {
        if let Some(row) = row.try_as_pg_row() {
            read += read_row(row)?;
        } else if let Some(row) = row.try_as_sqlite_row() {
            read += read_row(row)?;
        }
    }
    Ok(read)
}

/// Keeps a decoded value from being optimised away.
fn keep<T>(value: T) {
    let _ = std::hint::black_box(value);
}

/// [`read_values`] of one driver row: each non-null value decoded as its column type's Rust type.
fn read_row<R>(row: &R) -> anyhow::Result<usize>
where
    R: sea_orm::sqlx::Row,
    usize: sea_orm::sqlx::ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database>,
    for<'r> i32: Decode<'r, R::Database>,
    for<'r> f64: Decode<'r, R::Database>,
    for<'r> Uuid: Decode<'r, R::Database>,
    for<'r> String: Decode<'r, R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database>,
{
    let mut read = 0;
    for i in 0..row.len() {
        let value = row.try_get_raw(i)?;
        if value.is_null() {
            continue;
        }
        /// The Rust type a column's values are read as.
        enum As {
            I64,
            I32,
            F64,
            Uuid,
            Text,
            Blob,
        }
        // PostgreSQL's type names, then SQLite's storage classes.
        let kind = match value.type_info().name() {
            "INT8" | "INTEGER" => As::I64,
            "INT4" => As::I32,
            "FLOAT8" | "REAL" => As::F64,
            "UUID" => As::Uuid,
            "TEXT" | "VARCHAR" => As::Text,
            "BLOB" => As::Blob,
            other => bail!("read_values: no reader for the column type {other}"),
        };
        match kind {
            As::I64 => Decode::decode(value).map(keep::<i64>),
            As::I32 => Decode::decode(value).map(keep::<i32>),
            As::F64 => Decode::decode(value).map(keep::<f64>),
            As::Uuid => Decode::decode(value).map(keep::<Uuid>),
            As::Text => Decode::decode(value).map(keep::<String>),
            As::Blob => Decode::decode(value).map(keep::<Vec<u8>>),
        }
        .map_err(|e| anyhow::anyhow!("read_values: {e}"))?;
        read += 1;
    }
    Ok(read)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn timing(mut samples: Vec<Duration>) -> Timing {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1000.0
    };
    Timing {
        p50_ms: at(0.5),
        p99_ms: at(0.99),
    }
}

const ROWS_PER_INSERT: usize = 500;
const ROWS_PER_TRANSACTION: usize = 50_000;

async fn gql(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let answer: Value = http
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await?
        .json()
        .await?;
    if answer.get("errors").is_some() {
        bail!("GraphQL errors: {answer}");
    }
    Ok(answer["data"].clone())
}

struct Seeded {
    org_id: Uuid,
    queues: Vec<Uuid>,
}

/// Seeds conversations, messages, facts and rollups; returns the queues.
async fn seed_rows(
    db: &DatabaseConnection,
    http: &reqwest::Client,
    url: &str,
    token: &str,
    org_id: Uuid,
    options: &Options,
) -> anyhow::Result<Seeded> {
    let mut channels = Vec::new();
    for (i, (kind, address)) in [
        ("SMS", "+4520000001"),
        ("EMAIL", "help@bench.example.com"),
        ("CHAT", "widget-1"),
        ("WHATSAPP", "+4520000002"),
    ]
    .iter()
    .enumerate()
    {
        let data = gql(http, url, token,
            "mutation($input: CreateChannelInput!) { createChannel(input: $input) { channel { id } } }",
            json!({ "input": { "type": kind, "name": format!("Channel {i}"), "address": address } })).await?;
        let id = data["createChannel"]["channel"]["id"]
            .as_str()
            .context("channel id")?;
        channels.push((
            switchboard::graphql::relay::decode_id(id, "Channel").map_err(app_error)?,
            *kind,
        ));
    }
    let mut queues = Vec::new();
    for i in 0..10 {
        let data = gql(
            http,
            url,
            token,
            "mutation($input: QueueSettingsInput!) { createQueue(input: $input) { queue { id } } }",
            json!({ "input": { "name": format!("Queue {i}") } }),
        )
        .await?;
        let id = data["createQueue"]["queue"]["id"]
            .as_str()
            .context("queue id")?;
        queues.push(switchboard::graphql::relay::decode_id(id, "Queue").map_err(app_error)?);
    }
    let data = gql(
        http,
        url,
        token,
        "mutation($input: ContactInput!) { createContact(input: $input) { contact { id } } }",
        json!({ "input": { "firstName": "Bench", "phone": "+4520000003" } }),
    )
    .await?;
    let contact = switchboard::graphql::relay::decode_id(
        data["createContact"]["contact"]["id"]
            .as_str()
            .context("contact id")?,
        "Contact",
    )
    .map_err(app_error)?;
    let users: Vec<Uuid> = entity::user::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .filter(|u| u.org_id == org_id)
        .map(|u| u.id)
        .collect();

    let end = Utc::now();
    let span_ms: u64 = 100 * 86_400_000;
    let mut rng = Rng(0x0b5e_55ed_1234_5678);
    let started = Instant::now();
    let mut done = 0;
    while done < options.conversations {
        let batch = (options.conversations - done).min(ROWS_PER_TRANSACTION);
        let txn = switchboard::db::begin_write(db).await.map_err(app_error)?;
        let mut conversations = Vec::with_capacity(batch);
        let mut facts = Vec::with_capacity(batch * 2);
        let mut messages = Vec::with_capacity(batch * options.messages_per_conversation);
        for i in 0..batch {
            let id = Uuid::now_v7();
            let created = end - chrono::Duration::milliseconds(rng.below(span_ms) as i64);
            let (channel, kind) = channels[rng.below(channels.len() as u64) as usize];
            let queue = queues[rng.below(queues.len() as u64) as usize];
            let user = users[rng.below(users.len() as u64) as usize];
            let inbound = rng.below(100) < 85;
            let responded = inbound && rng.below(100) < 90;
            let first_response = responded
                .then(|| created + chrono::Duration::seconds(10 + rng.below(4 * 3_600) as i64));
            let closed = (rng.below(100) < 80).then(|| {
                first_response.unwrap_or(created)
                    + chrono::Duration::seconds(60 + rng.below(86_400) as i64)
            });
            conversations.push(entity::conversation::ActiveModel {
                id: Set(id),
                org_id: Set(org_id),
                number: Set((done + i + 1) as i64),
                channel_id: Set(Some(channel)),
                channel_type: Set(kind.into()),
                kind: Set("DIRECT".into()),
                direction: Set(if inbound { "INBOUND" } else { "OUTBOUND" }.into()),
                subject: Set(None),
                status: Set(if closed.is_some() { "CLOSED" } else { "OPEN" }.into()),
                pending_until: Set(None),
                close_reason: Set(None),
                closed_at: Set(closed),
                requester_id: Set(contact),
                assignee_id: Set(Some(user)),
                assigned_at: Set(Some(created)),
                queue_id: Set(Some(queue)),
                queued_at: Set(Some(created)),
                priority: Set("NORMAL".into()),
                priority_rank: Set(1),
                parent_id: Set(None),
                link_type: Set(None),
                rating_type: Set(None),
                rating_score: Set(None),
                rating_comment: Set(None),
                rated_at: Set(None),
                first_response_at: Set(first_response),
                last_message_at: Set(created),
                last_message_id: Set(None),
                waiting_since: Set(None),
                waiting_key: Set(switchboard::conversations::NOT_WAITING),
                message_count: Set(options.messages_per_conversation as i64),
                archived_at: Set(None),
                anonymized_at: Set(None),
                created_at: Set(created),
                updated_at: Set(created),
            });
            let fact =
                |metric: &str, at: DateTime<Utc>, value: f64| entity::metric_fact::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    org_id: Set(org_id),
                    metric: Set(metric.into()),
                    at_ms: Set(at.timestamp_millis()),
                    conversation_id: Set(Some(id)),
                    channel_id: Set(Some(channel)),
                    channel_type: Set(Some(kind.into())),
                    queue_id: Set(Some(queue)),
                    user_id: Set(Some(user)),
                    direction: Set(Some(if inbound { "INBOUND" } else { "OUTBOUND" }.into())),
                    value: Set(value),
                };
            facts.push(fact("conversations_created", created, 1.0));
            if let Some(at) = first_response {
                facts.push(fact(
                    "first_response_time",
                    at,
                    (at.timestamp_millis() - created.timestamp_millis()) as f64 / 1000.0,
                ));
            }
            for m in 0..options.messages_per_conversation {
                let outbound = m % 2 == 1;
                let at = created + chrono::Duration::seconds(m as i64 * 60);
                messages.push(entity::message::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    org_id: Set(org_id),
                    conversation_id: Set(id),
                    author_kind: Set(if outbound { "USER" } else { "CONTACT" }.into()),
                    author_contact_id: Set((!outbound).then_some(contact)),
                    author_user_id: Set(outbound.then_some(user)),
                    direction: Set(if outbound { "OUTBOUND" } else { "INBOUND" }.into()),
                    text_body: Set(Some(format!("Message {m} of the benchmark conversation"))),
                    html_body: Set(None),
                    email_subject: Set(None),
                    from_address: Set(None),
                    to_addresses: Set(None),
                    cc_addresses: Set(None),
                    bcc_addresses: Set(None),
                    external_id: Set(None),
                    delivery_status: Set("DELIVERED".into()),
                    delivery_reason: Set(None),
                    scheduled_at: Set(None),
                    edited_at: Set(None),
                    redacted_at: Set(None),
                    removed_at: Set(None),
                    anonymized_at: Set(None),
                    provider_channel_id: Set(None),
                    provider_message_id: Set(None),
                    message_id_header: Set(None),
                    created_at: Set(at),
                    updated_at: Set(at),
                });
            }
        }
        for chunk in conversations.chunks(ROWS_PER_INSERT / 2) {
            entity::conversation::Entity::insert_many(chunk.to_vec())
                .exec(&txn)
                .await?;
        }
        for chunk in messages.chunks(ROWS_PER_INSERT) {
            entity::message::Entity::insert_many(chunk.to_vec())
                .exec(&txn)
                .await?;
        }
        for chunk in facts.chunks(ROWS_PER_INSERT * 2) {
            entity::metric_fact::Entity::insert_many(chunk.to_vec())
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        done += batch;
        eprintln!(
            "bench: metrics: {done} conversations seeded ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
    }
    let txn = switchboard::db::begin_write(db).await.map_err(app_error)?;
    switchboard::metrics::rollup::rebuild_rollups(&txn, org_id)
        .await
        .map_err(app_error)?;
    txn.commit().await?;
    switchboard::db::refresh_statistics(db).await?;
    Ok(Seeded { org_id, queues })
}

struct Case {
    name: &'static str,
    query: MetricQuery,
    variables: Value,
    brute: Statement,
}

fn brute_force(
    backend: DbBackend,
    org: Uuid,
    case: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Statement {
    let sql = match (case, backend) {
        ("frt", DbBackend::Postgres) => {
            "SELECT queue_id, date_trunc('day', first_response_at AT TIME ZONE 'Europe/Copenhagen') AS d, \
             COUNT(*) AS c, SUM(EXTRACT(EPOCH FROM first_response_at - created_at))::float8 AS s \
             FROM conversations WHERE org_id = $1 AND direction = 'INBOUND' \
             AND first_response_at >= $2 AND first_response_at < $3 GROUP BY 1, 2"
        }
        // SQLite has no IANA zones: a fixed +1 hour (the cost is what counts here).
        ("frt", _) => {
            "SELECT queue_id, date(first_response_at, '+1 hours') AS d, COUNT(*) AS c, \
             SUM((julianday(first_response_at) - julianday(created_at)) * 86400.0) AS s \
             FROM conversations WHERE org_id = ? AND direction = 'INBOUND' \
             AND first_response_at >= ? AND first_response_at < ? GROUP BY 1, 2"
        }
        (_, DbBackend::Postgres) => {
            "SELECT date_trunc('hour', created_at) AS h, COUNT(*) AS c, \
             CAST(COUNT(*) AS DOUBLE PRECISION) AS s FROM conversations \
             WHERE org_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY 1"
        }
        _ => {
            "SELECT strftime('%Y-%m-%d %H', created_at) AS h, COUNT(*) AS c, \
             CAST(COUNT(*) AS REAL) AS s FROM conversations \
             WHERE org_id = ? AND created_at >= ? AND created_at < ? GROUP BY 1"
        }
    };
    Statement::from_sql_and_values(backend, sql, [org.into(), start.into(), end.into()])
}

const METRIC: &str =
    "query($id: String!, $period: MetricPeriodInput!, $tz: String, $g: MetricGranularity,
  $gb: [MetricDimension!], $a: [MetricAggregation!]) {
  metric(id: $id, period: $period, timezone: $tz, granularity: $g, groupBy: $gb, aggregations: $a) {
    source values { count sum avg }
    series { start values { count avg } }
    groups { keys { value } values { count avg } series { start values { count avg } } } } }";

/// Runs the scenario.
pub fn run(runtime: &tokio::runtime::Runtime, options: Options) -> anyhow::Result<MetricsResult> {
    let dir = tempfile::Builder::new()
        .prefix("metrics-bench-")
        .tempdir_in(".")
        .context("cannot create a directory under the current one")?;
    let url = match options.database_url.clone() {
        Some(url) => url,
        None => dir
            .path()
            .join("metrics.db")
            .to_str()
            .context("the directory's path is not UTF-8")?
            .to_string(),
    };
    let mut config = Config::with_database(url);
    config.rate_limit_per_minute = 0;
    config.demo = false;
    config.shutdown_grace_seconds = 1;
    config.job_workers = 0;
    config.pending_sweep_seconds = 0;
    config.routing_sweep_seconds = 0;
    config.presence_heartbeat_seconds = 0;
    let backend_name = if config.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let limits = Limits {
        max_interval_days: config.metrics_max_interval_days,
        max_buckets: config.metrics_max_buckets,
        max_groups: config.metrics_max_groups,
    };
    runtime.block_on(async move {
        let app = switchboard::build_app(config.clone()).await.context("cannot build the app")?;
        let db = app.state.db.clone();
        let token = seed(&db, 20).await?;
        let owner = switchboard::auth::authenticate(&db, &token).await.map_err(app_error)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let mut stop_wait = stop_rx.clone();
        let served = tokio::spawn(app.serve(listener, async move {
            let _ = stop_wait.wait_for(|s| *s).await;
        }));
        let url = format!("http://{addr}/graphql");
        let http = reqwest::Client::new();
        let started = Instant::now();
        let seeded = seed_rows(&db, &http, &url, &token, owner.org_id, &options).await?;
        let seed_seconds = started.elapsed().as_secs_f64();
        let backend = db.get_database_backend();
        let rollup_rows: i64 = db
            .query_one_raw(Statement::from_string(backend, "SELECT COUNT(*) AS n FROM metric_rollups"))
            .await?
            .context("count")?
            .try_get("", "n")?;
        eprintln!("bench: metrics: seeded in {seed_seconds:.0} s; {rollup_rows} rollup rows");

        let now = Utc::now();
        let cph: chrono_tz::Tz = chrono_tz::Europe::Copenhagen;
        let ny: chrono_tz::Tz = chrono_tz::America::New_York;
        let midnight = |tz: chrono_tz::Tz, days_back: i64| -> DateTime<Utc> {
            let date = now.with_timezone(&tz).date_naive() - chrono::Duration::days(days_back);
            tz.from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(now)
        };
        let (frt_start, frt_end) = (midnight(cph, 89), midnight(cph, -1));
        let (cc_start, cc_end) = (midnight(ny, 6), midnight(ny, -1));
        let interval = |s: DateTime<Utc>, e: DateTime<Utc>| json!({ "interval": { "start": s.to_rfc3339(), "end": e.to_rfc3339() } });
        let cases = vec![
            Case {
                name: "first_response_time, daily over 90 days by queue, Europe/Copenhagen",
                query: MetricQuery {
                    ids: vec!["first_response_time".into()],
                    period: Period::Interval { start: frt_start, end: frt_end },
                    timezone: "Europe/Copenhagen".into(),
                    granularity: Some(query::Granularity::Day),
                    filters: vec![],
                    group_by: vec![switchboard::metrics::catalog::Dimension::Queue],
                    aggregations: Some(vec![
                        switchboard::metrics::catalog::Aggregation::Count,
                        switchboard::metrics::catalog::Aggregation::Avg,
                    ]),
                },
                variables: json!({ "id": "first_response_time", "period": interval(frt_start, frt_end),
                    "tz": "Europe/Copenhagen", "g": "DAY", "gb": ["QUEUE"], "a": ["COUNT", "AVG"] }),
                brute: brute_force(backend, seeded.org_id, "frt", frt_start, frt_end),
            },
            Case {
                name: "conversations_created, hourly over 7 days, America/New_York",
                query: MetricQuery {
                    ids: vec!["conversations_created".into()],
                    period: Period::Interval { start: cc_start, end: cc_end },
                    timezone: "America/New_York".into(),
                    granularity: Some(query::Granularity::Hour),
                    filters: vec![],
                    group_by: vec![],
                    aggregations: None,
                },
                variables: json!({ "id": "conversations_created", "period": interval(cc_start, cc_end),
                    "tz": "America/New_York", "g": "HOUR" }),
                brute: brute_force(backend, seeded.org_id, "created", cc_start, cc_end),
            },
        ];
        let _ = &seeded.queues;
        let mut figures = Vec::new();
        let mut valid = true;
        for case in cases {
            // The statements the resolver runs.
            let recorder = Recorder { db: &db, seen: Mutex::new(Vec::new()) };
            query::run(&recorder, seeded.org_id, now, limits, &case.query)
                .await
                .map_err(app_error)?;
            let statements = recorder.seen.lock().map(|s| s.clone()).unwrap_or_default();
            // The three sides take turns in the orders of `ORDERS`, so that drift in the
            // machine's load or the database's caches falls on all of them alike, and each side
            // follows each other side equally often (see there).
            let mut answer = Value::Null;
            let (mut graphql, mut resolver, mut sql) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..options.iterations + ORDERS.len() {
                for side in ORDERS[i % ORDERS.len()] {
                    let t = Instant::now();
                    match side {
                        0 => {
                            answer =
                                gql(&http, &url, &token, METRIC, case.variables.clone()).await?;
                        }
                        1 => {
                            let results = query::run(&db, seeded.org_id, now, limits, &case.query)
                                .await
                                .map_err(app_error)?;
                            drop(results);
                        }
                        _ => {
                            for s in &statements {
                                read_values(&db.query_all_raw(s.clone()).await?)?;
                            }
                        }
                    }
                    let elapsed = t.elapsed();
                    if i >= ORDERS.len() {
                        [&mut graphql, &mut resolver, &mut sql][side].push(elapsed);
                    }
                }
            }
            let mut brute = Vec::new();
            let mut brute_rows = Vec::new();
            for i in 0..options.iterations.min(20) + 2 {
                let t = Instant::now();
                brute_rows = db.query_all_raw(case.brute.clone()).await?;
                if i >= 2 {
                    brute.push(t.elapsed());
                }
            }
            let mut brute_count = 0i64;
            let mut brute_sum = 0f64;
            for row in &brute_rows {
                brute_count += row.try_get::<i64>("", "c")?;
                brute_sum += row.try_get::<Option<f64>>("", "s")?.unwrap_or(0.0);
            }
            let m = &answer["metric"];
            let count = m["values"]["count"].as_i64().unwrap_or(-1);
            let sum = m["values"]["avg"].as_f64().map(|a| a * count as f64).unwrap_or(count as f64);
            let agrees = count == brute_count && (sum - brute_sum).abs() <= 1e-6 * brute_sum.abs().max(1.0) + 1.0;
            if !agrees {
                eprintln!("bench: metrics: {}: graphql count {count} sum {sum}, brute force count {brute_count} sum {brute_sum}", case.name);
            }
            valid &= agrees;
            let (graphql, resolver, resolver_sql) =
                (timing(graphql), timing(resolver), timing(sql));
            figures.push(QueryFigures {
                name: case.name,
                source: m["source"].as_str().unwrap_or_default().to_string(),
                statements: statements.len(),
                ratio: resolver.p50_ms / resolver_sql.p50_ms,
                graphql_ratio: graphql.p50_ms / resolver_sql.p50_ms,
                graphql,
                resolver,
                resolver_sql,
                brute_force: timing(brute),
            });
        }
        let durability = durability(&db).await?;
        let _ = stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), served).await;
        drop(dir);
        Ok(MetricsResult {
            backend: backend_name,
            durability,
            conversations: options.conversations,
            messages: options.conversations * options.messages_per_conversation,
            seed_seconds,
            rollup_rows,
            queries: figures,
            valid,
        })
    })
}

/// The result as a table.
pub fn table(result: &MetricsResult) -> String {
    let mut out = format!(
        "metrics ({}; {}): {} conversations, {} messages, {} rollup rows (seeded in {:.0} s)\n\
         | query | source | statements | resolver SQL p50 / p99 ms | resolver p50 / p99 ms | resolver / SQL (target <= 1.1) | GraphQL over HTTP p50 / p99 ms | HTTP / SQL | brute force p50 / p99 ms |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        result.backend,
        result.durability,
        result.conversations,
        result.messages,
        result.rollup_rows,
        result.seed_seconds,
    );
    for q in &result.queries {
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} | {:.2} / {:.2} | {:.2} | {:.1} / {:.1} |\n",
            q.name,
            q.source,
            q.statements,
            q.resolver_sql.p50_ms,
            q.resolver_sql.p99_ms,
            q.resolver.p50_ms,
            q.resolver.p99_ms,
            q.ratio,
            q.graphql.p50_ms,
            q.graphql.p99_ms,
            q.graphql_ratio,
            q.brute_force.p50_ms,
            q.brute_force.p99_ms,
        ));
    }
    if !result.valid {
        out.push_str("INVALID: the GraphQL answer and the brute-force scan disagree\n");
    }
    out
}
