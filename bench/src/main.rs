//! `bench`: load benchmark of the GraphQL server against a plain axum handler doing the same work.
//!
//! ```text
//! cargo run --release -p bench -- [--scenario viewer,contacts,inbox,send] [--seconds 10]
//!     [--warmup 2] [--rounds 3] [--concurrency 1,32] [--server-threads 1] [--client-threads 1]
//!     [--no-pin] [--json] [--database-url postgres://...] [--fresh-database] [--keep-database]
//!     [--sqlite-synchronous normal|full] [--users 50] [--contacts 100000]
//!     [--conversations 100000] [--messages-per-conversation 10]
//! cargo run --release -p bench -- --scenario broadcast [--broadcast-contacts 100000]
//!     [--broadcast-workers 4] [--broadcast-timeout 1800] [--json] [--database-url postgres://...]
//! cargo run --release -p bench -- --scenario fanout,replay [--subscribers 1000,5000,10000]
//!     [--rate 5] [--seconds 10] [--rounds 3] [--hold-seconds 0] [--hold-rate 0]
//!     [--sample-seconds 10] [--connect-concurrency 200] [--drain-seconds 60]
//!     [--replay-subscribers 1000] [--replay-events 10000] [--replay-timeout 600]
//!     [--ws-max-queued N] [--event-bus-capacity N]
//! cargo run --release -p bench -- --scenario webhooks [--webhook-events 10000]
//!     [--webhook-timeout 600] [--database-url postgres://...]
//! cargo run --release -p bench -- --scenario call-campaign [--call-campaign-receivers 10000]
//!     [--call-campaign-workers 2] [--call-campaign-timeout 1800] [--database-url postgres://...]
//! cargo run --release -p bench -- --scenario metrics [--metrics-conversations 1000000]
//!     [--metrics-messages-per-conversation 5] [--metrics-iterations 50]
//!     [--database-url postgres://... --fresh-database]
//! ```
//!
//! The websocket scenarios `fanout` and `replay` (GraphQL subscriptions against a plain
//! websocket broadcast) run only when named; they start the server as a separate process of this
//! binary so that its CPU time and memory can be measured alone: see `live.rs`. Everything below
//! is about the HTTP scenarios.
//!
//! In one process it
//! 1. starts the real server ([`switchboard::build_app`], rate limit off, no demo data) on
//!    `127.0.0.1:0` over a fresh SQLite file in a temporary directory (or `--database-url`), seeds
//!    one organization with its owner token and `--users` more users;
//! 2. starts a reference server on another port with plain axum handlers, one per scenario, that do
//!    the same work on the same connection pool (for `viewer`: [`switchboard::auth::authenticate`]
//!    and the same JSON), wrapped in the same middleware ([`switchboard::http::with_middleware`]);
//! 3. checks that both answer the same JSON (aborting if not), then loads each for `--warmup`
//!    seconds (not counted) and `--seconds` seconds with `--concurrency` keep-alive HTTP/1.1
//!    connections, GraphQL first, and prints requests/s, latency percentiles, errors and the ratio
//!    `graphql_rps / plain_rps` (target >= 0.7; for `inbox` the target is `graphql_p50 /
//!    plain_p50 <= 1.5`). Any error (transport, non-200, or a body other than the checked one)
//!    makes the run invalid and the exit status non-zero.
//!
//! Each scenario runs at each of its concurrency levels (`--concurrency` overrides them all):
//! `viewer` and `contacts` at 32, `inbox` at 1 (latency) and 32 (throughput), `send` at 1, 8 and
//! 64. Read scenarios send a fixed set of bodies in rotation and every answer must equal the
//! checked one byte for byte; `send` makes a new body (a new `externalId`) for every request,
//! checks every answer, and after each load counts the messages stored in its conversations:
//! exactly one per answered request, or the run is invalid. For `send` it also runs the plain
//! handler's transaction without HTTP (`raw-db`, the database's own rate).
//!
//! The durability settings in effect are read back from the database and printed (`SQLite`:
//! `journal_mode`, `synchronous`, by default the server's default, `--sqlite-synchronous` to
//! choose; PostgreSQL: `synchronous_commit`, `fsync`). With `--fresh-database` and a PostgreSQL
//! URL the benchmark creates a new database `bench_<time>` on that server, runs there and drops it
//! at the end (unless `--keep-database`).
//!
//! The server and the load generator run on separate tokio runtimes (`--server-threads` and
//! `--client-threads` workers, 1 each by default). Unless `--no-pin`, the server's threads are
//! pinned to core `--server-core` (0) and the load generator's to `--client-core` (1), with the
//! `core_affinity` crate; threads started from the server's threads, such as the SQLite worker
//! thread of each pooled connection, inherit the pinning. To pin the whole process from outside
//! instead, use `taskset`, e.g. `taskset -c 0,1 cargo run --release -p bench -- --no-pin`.
//!
//! No `tracing` subscriber is installed, so the request spans of the middleware cost next to
//! nothing, on both servers alike.

mod broadcast;
mod call_campaign;
mod contacts;
mod inbox;
mod live;
mod live_server;
mod load;

mod metrics;
mod pin;
mod process;
mod scenario;
mod send;
mod server;
mod stats;
mod webhooks;
mod wsclient;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use axum::body::Bytes;
use clap::Parser;
use sea_orm::ConnectionTrait;
use switchboard::config::SqliteSync;

use load::{Load, Requests, Target};
use scenario::{Plan, Scenario};
use stats::{ScenarioResult, Summary};

/// Load benchmark: the GraphQL server against a plain axum handler doing the same work.
#[derive(Parser, Debug)]
#[command(name = "bench")]
struct Args {
    /// Scenarios to run (comma-separated); all by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    scenario: Vec<Scenario>,

    /// Concurrent keep-alive connections (comma-separated levels); by default each scenario's
    /// own levels (viewer, contacts: 32; inbox: 1,32; send: 1,8,64).
    #[arg(long, value_delimiter = ',')]
    concurrency: Vec<usize>,

    /// Seconds measured per server in each round.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,

    /// Rounds per scenario and level. Each round loads both servers, alternating which goes
    /// first; the reported ratio is the median of the rounds' ratios, so a burst of noise on a
    /// shared machine moves one round, not the result.
    #[arg(long, default_value_t = 3)]
    rounds: usize,

    /// Seconds of warm-up per server, not measured.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,

    /// Worker threads of the server runtime.
    #[arg(long, default_value_t = 1)]
    server_threads: usize,

    /// Worker threads of the load generator runtime.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,

    /// Do not pin threads to cores.
    #[arg(long)]
    no_pin: bool,

    /// Core for the server's threads.
    #[arg(long, default_value_t = 0)]
    server_core: usize,

    /// Core for the load generator's threads.
    #[arg(long, default_value_t = 1)]
    client_core: usize,

    /// Database URL (e.g. `postgres://...`); a fresh SQLite file in a temporary directory by
    /// default. The benchmark adds an organization to it.
    #[arg(long)]
    database_url: Option<String>,

    /// With a PostgreSQL `--database-url`: create a new database `bench_<time>` on that server
    /// and run there (dropped at the end unless `--keep-database`).
    #[arg(long)]
    fresh_database: bool,

    /// Keep the database `--fresh-database` created.
    #[arg(long)]
    keep_database: bool,

    /// SQLite `synchronous` level (the server's default unless given).
    #[arg(long, value_enum)]
    sqlite_synchronous: Option<SqliteSync>,

    /// Users seeded besides the owner.
    #[arg(long, default_value_t = 50)]
    users: usize,

    /// Contacts seeded for the `contacts` scenario (none when it does not run).
    #[arg(long, default_value_t = 100_000)]
    contacts: usize,

    /// Conversations seeded for the `inbox` and `send` scenarios (none when neither runs).
    #[arg(long, default_value_t = 100_000)]
    conversations: usize,

    /// Messages per seeded conversation.
    #[arg(long, default_value_t = 10)]
    messages_per_conversation: usize,

    /// Print the results as one JSON object instead of a table.
    #[arg(long)]
    json: bool,

    /// After seeding, print the owner's token and wait this many seconds before loading, to
    /// probe the servers by hand (e.g. with curl).
    #[arg(long, default_value_t = 0)]
    hold: u64,

    /// `fanout`: subscriber levels (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 5_000, 10_000])]
    subscribers: Vec<usize>,

    /// `fanout`: messages per second sent during the measured `--seconds`.
    #[arg(long, default_value_t = 5.0)]
    rate: f64,

    /// `fanout`: after measuring, keep the subscribers connected this long, sampling the
    /// server's resident memory.
    #[arg(long, default_value_t = 0.0)]
    hold_seconds: f64,

    /// `fanout`: messages per second while holding (0: idle connections).
    #[arg(long, default_value_t = 0.0)]
    hold_rate: f64,

    /// `fanout`: seconds between memory samples while holding.
    #[arg(long, default_value_t = 10.0)]
    sample_seconds: f64,

    /// `fanout`, `replay`: websocket clients connecting at once.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,

    /// `fanout`: seconds to wait for deliveries after the last send before counting what is
    /// missing.
    #[arg(long, default_value_t = 60.0)]
    drain_seconds: f64,

    /// `replay`: subscribers resuming.
    #[arg(long, default_value_t = 1_000)]
    replay_subscribers: usize,

    /// `replay`: events each subscriber resumes through.
    #[arg(long, default_value_t = 10_000)]
    replay_events: usize,

    /// `replay`: seconds a replay may take before what is missing is counted.
    #[arg(long, default_value_t = 600.0)]
    replay_timeout: f64,

    /// `fanout`, `replay`: the server's `ws_max_queued` (its default unless given).
    #[arg(long)]
    ws_max_queued: Option<usize>,

    /// `fanout`, `replay`: the server's `event_bus_capacity` (its default unless given).
    #[arg(long)]
    event_bus_capacity: Option<usize>,

    /// `webhooks`: events committed for the subscription (one delivery each).
    #[arg(long, default_value_t = 10_000)]
    webhook_events: usize,

    /// `webhooks`: seconds the deliveries may take before what is missing is counted.
    #[arg(long, default_value_t = 600.0)]
    webhook_timeout: f64,

    /// `broadcast`: contacts in the broadcast's audience.
    #[arg(long, default_value_t = 100_000)]
    broadcast_contacts: usize,

    /// `broadcast`: the server's job workers.
    #[arg(long, default_value_t = 4)]
    broadcast_workers: usize,

    /// `broadcast`: seconds the whole broadcast may take.
    #[arg(long, default_value_t = 1_800.0)]
    broadcast_timeout: f64,

    /// `call-campaign`: receivers of the RSVP campaign.
    #[arg(long, default_value_t = 10_000)]
    call_campaign_receivers: usize,

    /// `call-campaign`: job workers of the runner.
    #[arg(long, default_value_t = 2)]
    call_campaign_workers: usize,

    /// `call-campaign`: seconds the whole campaign may take.
    #[arg(long, default_value_t = 1_800.0)]
    call_campaign_timeout: f64,

    /// `metrics`: conversations seeded.
    #[arg(long, default_value_t = 1_000_000)]
    metrics_conversations: usize,

    /// `metrics`: messages per seeded conversation.
    #[arg(long, default_value_t = 5)]
    metrics_messages_per_conversation: usize,

    /// `metrics`: measured requests per query and side.
    #[arg(long, default_value_t = 50)]
    metrics_iterations: usize,

    /// Internal: run as the server process of `fanout` and `replay`.
    #[arg(long, hide = true)]
    live_server: bool,
}

fn seconds(value: f64, name: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).with_context(|| format!("--{name} must be a duration"))
}

/// What the check before loading found.
struct Checked {
    /// What to send the GraphQL server and how to check its answers.
    graphql: Requests,
    /// The same for the plain server.
    plain: Requests,
    /// Whether both sides' answers were byte-identical (`None` for writes).
    identical_bytes: Option<bool>,
    /// SQL statements of one request: GraphQL, plain.
    statements: [u64; 2],
    /// Writes: SQL statements of one raw-db transaction.
    raw_statements: u64,
}

/// Sends `body` `times` times; returns the last answer and the fewest statements one took (the
/// first request of a token also records the token's use, a write made at most once a minute).
async fn probe(
    target: &Target,
    body: &Bytes,
    times: usize,
    counter: &server::Statements,
    name: &str,
) -> anyhow::Result<(Bytes, u64)> {
    let mut fewest = u64::MAX;
    let mut answer = None;
    for _ in 0..times {
        let before = counter.get();
        let (status, answer_body) = load::send_once(target, body.clone())
            .await
            .with_context(|| format!("the {name} check request failed"))?;
        fewest = fewest.min(counter.get() - before);
        if status != hyper::StatusCode::OK {
            bail!(
                "the {name} server answered {status}: {}",
                String::from_utf8_lossy(&answer_body)
            );
        }
        answer = Some(answer_body);
    }
    let answer = answer.with_context(|| format!("no {name} check request was sent"))?;
    Ok((answer, fewest))
}

/// Checks both sides before loading: for fixed requests, that both answer each with equal JSON
/// and no errors (the answers become the expected ones); for writes, that every answer passes
/// the check. Counts the SQL statements of one request of each side.
async fn verify(plan: &Plan, counter: server::Statements) -> anyhow::Result<Checked> {
    match &plan.requests {
        scenario::Requests::Fixed(bodies) => {
            let mut graphql_pairs = Vec::new();
            let mut plain_pairs = Vec::new();
            let mut statements = [0; 2];
            let mut identical = true;
            for body in bodies {
                let (graphql_body, graphql_statements) =
                    probe(&plan.graphql, body, 5, &counter, "graphql").await?;
                let (plain_body, plain_statements) =
                    probe(&plan.plain, body, 5, &counter, "plain").await?;
                statements[0] = statements[0].max(graphql_statements);
                statements[1] = statements[1].max(plain_statements);
                let graphql_json: serde_json::Value = serde_json::from_slice(&graphql_body)
                    .context("the GraphQL answer is not JSON")?;
                let plain_json: serde_json::Value =
                    serde_json::from_slice(&plain_body).context("the plain answer is not JSON")?;
                if graphql_json != plain_json {
                    bail!(
                        "the answers differ for {}:\n  graphql: {}\n  plain:   {}",
                        String::from_utf8_lossy(body),
                        String::from_utf8_lossy(&graphql_body),
                        String::from_utf8_lossy(&plain_body)
                    );
                }
                if graphql_json.get("errors").is_some() || graphql_json.get("data").is_none() {
                    bail!(
                        "the GraphQL answer has errors: {}",
                        String::from_utf8_lossy(&graphql_body)
                    );
                }
                identical &= graphql_body == plain_body;
                graphql_pairs.push((body.clone(), graphql_body));
                plain_pairs.push((body.clone(), plain_body));
            }
            Ok(Checked {
                graphql: Requests::Rotate(Arc::new(graphql_pairs)),
                plain: Requests::Rotate(Arc::new(plain_pairs)),
                identical_bytes: Some(identical),
                statements,
                raw_statements: 0,
            })
        }
        scenario::Requests::Generate { body, check } => {
            let mut statements = [0; 2];
            for (i, name, target) in [(0, "graphql", &plan.graphql), (1, "plain", &plan.plain)] {
                let mut fewest = u64::MAX;
                for _ in 0..5 {
                    let (answer, count) = probe(target, &body(0), 1, &counter, name).await?;
                    check(&answer).map_err(|why| {
                        anyhow::anyhow!(
                            "the {name} answer is wrong ({why}): {}",
                            String::from_utf8_lossy(&answer)
                        )
                    })?;
                    fewest = fewest.min(count);
                }
                statements[i] = fewest;
            }
            let requests = Requests::Generate {
                body: body.clone(),
                check: check.clone(),
            };
            Ok(Checked {
                graphql: requests.clone(),
                plain: requests,
                identical_bytes: None,
                statements,
                raw_statements: 0,
            })
        }
    }
}

/// A new database on the PostgreSQL server of `url`; returns its URL and name.
fn create_database(
    runtime: &tokio::runtime::Runtime,
    url: &str,
) -> anyhow::Result<(String, String)> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let name = format!("bench_{nanos}");
    let (base, _) = url
        .rsplit_once('/')
        .context("the database URL has no database name")?;
    let admin = url.to_string();
    let statement = format!("CREATE DATABASE {name}");
    pin::run_on(runtime, async move {
        let db = sea_orm::Database::connect(admin).await?;
        db.execute_unprepared(&statement).await?;
        db.close().await?;
        Ok(())
    })
    .context("cannot create the database")?;
    Ok((format!("{base}/{name}"), name))
}

fn drop_database(runtime: &tokio::runtime::Runtime, url: &str, name: &str) -> anyhow::Result<()> {
    let admin = url.to_string();
    let statement = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    pin::run_on(runtime, async move {
        let db = sea_orm::Database::connect(admin).await?;
        db.execute_unprepared(&statement).await?;
        db.close().await?;
        Ok(())
    })
    .context("cannot drop the database")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The servers' logs (slow statements among them: `SWITCHBOARD_DB_SLOW_STATEMENT_MS`) on
    // stderr when asked for with `RUST_LOG`; otherwise none, to keep the figures clean.
    if std::env::var_os("RUST_LOG").is_some() {
        switchboard::telemetry::init(&switchboard::Config::with_database("unused"));
    }
    if args.live_server {
        return live_server::run(&args);
    }
    let warmup = seconds(args.warmup, "warmup")?;
    let measure = seconds(args.seconds, "seconds")?;
    if measure.is_zero() {
        bail!("--seconds must be more than 0");
    }
    if args.concurrency.contains(&0) {
        bail!("--concurrency levels must be at least 1");
    }
    let (server_core, client_core) = if args.no_pin {
        (None, None)
    } else {
        (
            Some(pin::core(args.server_core)?),
            Some(pin::core(args.client_core)?),
        )
    };
    let scenarios: Vec<Scenario> = Scenario::ALL
        .iter()
        .copied()
        .filter(|s| args.scenario.is_empty() || args.scenario.contains(s))
        .collect();
    if args.scenario.contains(&Scenario::Webhooks) {
        let server_runtime = pin::runtime("bench-server", args.server_threads, server_core)?;
        let client_runtime = pin::runtime("bench-client", args.client_threads, client_core)?;
        let result = webhooks::run(
            &server_runtime,
            &client_runtime,
            args.database_url.clone(),
            args.webhook_events,
            seconds(args.webhook_timeout, "webhook-timeout")?,
        )?;
        if args.json {
            println!("{}", serde_json::to_string(&result)?);
        } else {
            print!("{}", webhooks::table(&result));
        }
        if !result.valid {
            bail!("invalid run: webhook deliveries were missing, out of order or not recorded");
        }
        if args.scenario.iter().all(|s| *s == Scenario::Webhooks) {
            return Ok(());
        }
    }
    let mut live: Vec<Scenario> = args
        .scenario
        .iter()
        .copied()
        .filter(|s| s.is_live())
        .collect();
    live.dedup();
    if args.scenario.contains(&Scenario::CallCampaign) {
        run_call_campaign(&args)?;
        if args.scenario.iter().all(|s| *s == Scenario::CallCampaign) {
            return Ok(());
        }
    }
    if args.scenario.contains(&Scenario::Metrics) {
        run_metrics(&args)?;
        if args.scenario.iter().all(|s| *s == Scenario::Metrics) {
            return Ok(());
        }
    }
    if args.scenario.contains(&Scenario::Broadcast) {
        run_broadcast(&args)?;
        if scenarios.is_empty() && live.is_empty() {
            return Ok(());
        }
    }
    if !live.is_empty() {
        run_live(&args, &live, client_core)?;
        if scenarios.is_empty() {
            return Ok(());
        }
    }

    let server_runtime = pin::runtime("bench-server", args.server_threads, server_core)?;
    let client_runtime = pin::runtime("bench-client", args.client_threads, client_core)?;
    let contacts = if scenarios.contains(&Scenario::Contacts) {
        args.contacts
    } else {
        0
    };
    let inbox = (scenarios.contains(&Scenario::Inbox) || scenarios.contains(&Scenario::Send))
        .then_some((args.conversations, args.messages_per_conversation));
    let mut created = None;
    let mut database_url = args.database_url.clone();
    if args.fresh_database {
        match &args.database_url {
            Some(url) if url.starts_with("postgres") => {
                let (new_url, name) = create_database(&client_runtime, url)?;
                eprintln!("bench: created database {name}");
                database_url = Some(new_url);
                created = Some((url.clone(), name));
            }
            _ => bail!("--fresh-database needs a PostgreSQL --database-url"),
        }
    }
    let outcome = run(
        &args,
        &scenarios,
        &server_runtime,
        &client_runtime,
        server::Options {
            database_url,
            sqlite_synchronous: args.sqlite_synchronous,
            extra_users: args.users,
            contacts,
            inbox,
        },
        (warmup, measure),
        (server_core, client_core),
    );
    if let Some((url, name)) = created {
        if args.keep_database {
            eprintln!("bench: kept database {name}");
        } else {
            drop_database(&client_runtime, &url, &name)?;
            eprintln!("bench: dropped database {name}");
        }
    }
    outcome
}

/// Runs the `metrics` scenario (`metrics.rs`) on its own server and database.
fn run_metrics(args: &Args) -> anyhow::Result<()> {
    let runtime = pin::runtime("bench-metrics", args.server_threads.max(2), None)?;
    let mut created = None;
    let mut database_url = args.database_url.clone();
    if args.fresh_database {
        match &args.database_url {
            Some(url) if url.starts_with("postgres") => {
                let (new_url, name) = create_database(&runtime, url)?;
                eprintln!("bench: created database {name}");
                database_url = Some(new_url);
                created = Some((url.clone(), name));
            }
            _ => bail!("--fresh-database needs a PostgreSQL --database-url"),
        }
    }
    let outcome = metrics::run(
        &runtime,
        metrics::Options {
            database_url,
            conversations: args.metrics_conversations.max(1),
            messages_per_conversation: args.metrics_messages_per_conversation,
            iterations: args.metrics_iterations.max(1),
        },
    );
    if let Some((url, name)) = created {
        if args.keep_database {
            eprintln!("bench: kept database {name}");
        } else {
            drop_database(&runtime, &url, &name)?;
            eprintln!("bench: dropped database {name}");
        }
    }
    let result = outcome?;
    if args.json {
        println!("{}", serde_json::json!({ "metrics": result }));
    } else {
        print!("{}", metrics::table(&result));
    }
    if !result.valid {
        bail!("invalid run: the metric answers and the brute-force scan disagree");
    }
    Ok(())
}

/// Runs the `broadcast` scenario (`broadcast.rs`) on its own server, database and runtime.
fn run_broadcast(args: &Args) -> anyhow::Result<()> {
    if args.broadcast_contacts == 0 {
        bail!("--broadcast-contacts must be at least 1");
    }
    let runtime = pin::runtime("bench-broadcast", args.server_threads.max(2), None)?;
    let mut created = None;
    let mut database_url = args.database_url.clone();
    if args.fresh_database {
        match &args.database_url {
            Some(url) if url.starts_with("postgres") => {
                let (new_url, name) = create_database(&runtime, url)?;
                eprintln!("bench: created database {name}");
                database_url = Some(new_url);
                created = Some((url.clone(), name));
            }
            _ => bail!("--fresh-database needs a PostgreSQL --database-url"),
        }
    }
    let outcome = broadcast::run(
        &runtime,
        broadcast::Options {
            contacts: args.broadcast_contacts,
            database_url,
            sqlite_synchronous: args.sqlite_synchronous,
            workers: args.broadcast_workers,
            timeout: seconds(args.broadcast_timeout, "broadcast-timeout")?,
        },
    );
    if let Some((url, name)) = created {
        if args.keep_database {
            eprintln!("bench: kept database {name}");
        } else {
            drop_database(&runtime, &url, &name)?;
            eprintln!("bench: dropped database {name}");
        }
    }
    let result = outcome?;
    if args.json {
        println!("{}", serde_json::json!({ "broadcast": result }));
    } else {
        print!("{}", broadcast::table(&result));
    }
    if !result.valid {
        bail!("invalid run: not every contact got exactly one delivered message");
    }
    Ok(())
}

/// Runs the `call-campaign` scenario (`call_campaign.rs`) on its own server, database and
/// runtime.
fn run_call_campaign(args: &Args) -> anyhow::Result<()> {
    if args.call_campaign_receivers == 0 {
        bail!("--call-campaign-receivers must be at least 1");
    }
    let runtime = pin::runtime("bench-call-campaign", args.server_threads.max(2), None)?;
    let mut created = None;
    let mut database_url = args.database_url.clone();
    if args.fresh_database {
        match &args.database_url {
            Some(url) if url.starts_with("postgres") => {
                let (new_url, name) = create_database(&runtime, url)?;
                eprintln!("bench: created database {name}");
                database_url = Some(new_url);
                created = Some((url.clone(), name));
            }
            _ => bail!("--fresh-database needs a PostgreSQL --database-url"),
        }
    }
    let outcome = call_campaign::run(
        &runtime,
        call_campaign::Options {
            receivers: args.call_campaign_receivers,
            database_url,
            sqlite_synchronous: args.sqlite_synchronous,
            workers: args.call_campaign_workers,
            timeout: seconds(args.call_campaign_timeout, "call-campaign-timeout")?,
        },
    );
    if let Some((url, name)) = created {
        if args.keep_database {
            eprintln!("bench: kept database {name}");
        } else {
            drop_database(&runtime, &url, &name)?;
            eprintln!("bench: dropped database {name}");
        }
    }
    let result = outcome?;
    if args.json {
        println!("{}", serde_json::json!({ "call_campaign": result }));
    } else {
        print!("{}", call_campaign::table(&result));
    }
    if !result.valid {
        bail!("invalid run: not every receiver finished once with one answered call");
    }
    Ok(())
}

/// Runs the websocket scenarios (`live.rs`), each side on its own server process.
fn run_live(
    args: &Args,
    scenarios: &[Scenario],
    client_core: Option<core_affinity::CoreId>,
) -> anyhow::Result<()> {
    let (soft, hard) = process::raise_nofile()?;
    let measure = seconds(args.seconds, "seconds")?;
    if args.rate.is_nan() || args.rate <= 0.0 {
        bail!("--rate must be more than 0");
    }
    let mut server_args = vec![
        "--server-threads".to_string(),
        args.server_threads.to_string(),
        "--server-core".to_string(),
        args.server_core.to_string(),
    ];
    if args.no_pin {
        server_args.push("--no-pin".into());
    }
    if let Some(url) = &args.database_url {
        server_args.extend(["--database-url".into(), url.clone()]);
    }
    if let Some(level) = args.sqlite_synchronous {
        use clap::ValueEnum;
        if let Some(value) = level.to_possible_value() {
            server_args.extend(["--sqlite-synchronous".into(), value.get_name().to_string()]);
        }
    }
    if let Some(queued) = args.ws_max_queued {
        server_args.extend(["--ws-max-queued".into(), queued.to_string()]);
    }
    if let Some(capacity) = args.event_bus_capacity {
        server_args.extend(["--event-bus-capacity".into(), capacity.to_string()]);
    }
    let options = live::Options {
        subscribers: args.subscribers.clone(),
        rate: args.rate,
        messages: (measure.as_secs_f64() * args.rate).ceil().max(1.0) as usize,
        rounds: args.rounds.max(1),
        hold: seconds(args.hold_seconds, "hold-seconds")?,
        hold_rate: args.hold_rate.max(0.0),
        sample: seconds(args.sample_seconds.max(0.1), "sample-seconds")?,
        connect_concurrency: args.connect_concurrency.max(1),
        drain: seconds(args.drain_seconds, "drain-seconds")?,
        replay_subscribers: args.replay_subscribers.max(1),
        replay_events: args.replay_events.max(1),
        replay_timeout: seconds(args.replay_timeout, "replay-timeout")?,
        server_args,
    };
    let client_runtime = pin::runtime("bench-client", args.client_threads, client_core)?;
    eprintln!(
        "bench: websocket scenarios: a server process per side and round ({} thread(s){}), \
         clients here ({} thread(s){}); open files limit {soft} (hard {hard}); {} round(s); \
         fanout: {} messages at {}/s per round",
        args.server_threads.max(1),
        if args.no_pin {
            String::new()
        } else {
            format!(", core {}", args.server_core)
        },
        args.client_threads.max(1),
        client_core.map_or(String::new(), |c| format!(", core {}", c.id)),
        options.rounds,
        options.messages,
        options.rate,
    );
    let mut fanout = Vec::new();
    let mut replay = None;
    for scenario in scenarios {
        match scenario {
            Scenario::Fanout => fanout = live::fanout(&client_runtime, &options)?,
            Scenario::Replay => replay = Some(live::replay(&client_runtime, &options)?),
            _ => {}
        }
    }
    let valid = fanout.iter().all(|r| r.valid) && replay.as_ref().is_none_or(|r| r.valid);
    if args.json {
        let output = serde_json::json!({
            "config": {
                "rate": options.rate,
                "messages": options.messages,
                "rounds": options.rounds,
                "server_threads": args.server_threads.max(1),
                "client_threads": args.client_threads.max(1),
                "open_files": soft,
            },
            "fanout": fanout,
            "replay": replay,
            "valid": valid,
        });
        println!("{}", serde_json::to_string(&output)?);
    } else {
        if !fanout.is_empty() {
            print!("{}", live::fanout_table(&fanout));
        }
        if let Some(replay) = &replay {
            if !fanout.is_empty() {
                println!();
            }
            print!("{}", live::replay_table(replay));
        }
    }
    if !valid {
        bail!("invalid run: some deliveries were missing, duplicated or failed (see above)");
    }
    Ok(())
}

type Cores = (Option<core_affinity::CoreId>, Option<core_affinity::CoreId>);

fn run(
    args: &Args,
    scenarios: &[Scenario],
    server_runtime: &tokio::runtime::Runtime,
    client_runtime: &tokio::runtime::Runtime,
    options: server::Options,
    (warmup, measure): (Duration, Duration),
    (server_core, client_core): Cores,
) -> anyhow::Result<()> {
    let servers = server::start(server_runtime, options)?;
    let env = servers.env.clone();
    let pinning = match (server_core, client_core) {
        (Some(s), Some(c)) => format!("server on core {}, load generator on core {}", s.id, c.id),
        _ => "not pinned".into(),
    };
    eprintln!(
        "bench: {} ({}) with {} users and {} contacts (seeded in {:.1} s); graphql on {}, plain on \
         {}; {} server thread(s), {} client thread(s), {pinning}; {:?} warm-up + {:?} measured \
         per server and round, {} round(s)",
        env.backend,
        env.durability,
        env.users,
        env.contacts,
        env.contacts_seed_seconds,
        env.graphql,
        env.plain,
        args.server_threads.max(1),
        args.client_threads.max(1),
        warmup,
        measure,
        args.rounds.max(1),
    );
    if let Some(inbox) = &env.inbox {
        eprintln!(
            "bench: inbox seeded: {} conversations, {} messages, {} contacts in {:.1} s; \
             statistics refreshed in {:.1} s",
            inbox.conversations,
            inbox.messages,
            inbox.contacts,
            inbox.seed_seconds,
            env.statistics_seconds
        );
    }

    if args.hold > 0 {
        // One value per line with nothing after it, so each can be copied (or
        // clicked) as it is.
        eprintln!("bench: holding {} s", args.hold);
        eprintln!("  token:   {}", env.owner_token);
        eprintln!("  graphql: http://{}/graphql", env.graphql);
        eprintln!("  plain:   http://{}", env.plain);
        std::thread::sleep(Duration::from_secs(args.hold));
    }
    let mut results = Vec::new();
    for &scenario in scenarios {
        let plan = pin::run_on(client_runtime, {
            let env = env.clone();
            async move { scenario.plan(&env).await }
        })
        .with_context(|| format!("scenario {}: cannot plan the requests", scenario.name()))?;
        let plan = Arc::new(plan);
        let checked = pin::run_on(client_runtime, {
            let plan = plan.clone();
            let counter = env.statements.clone();
            async move { verify(&plan, counter).await }
        })
        .with_context(|| format!("scenario {}: the check failed", scenario.name()))?;
        let mut checked = checked;
        if let Some(conversations) = &plan.writes {
            let (db, counter, org, user) = (
                env.db.clone(),
                env.statements.clone(),
                env.org_id,
                env.owner_id,
            );
            let conversation = conversations.first().copied().unwrap_or_default();
            checked.raw_statements = pin::run_on(server_runtime, async move {
                let before = counter.get();
                let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
                send::write(
                    &db,
                    org,
                    user,
                    conversation,
                    "check",
                    &format!("check-{nanos}"),
                )
                .await?
                .context("the raw-db write found no conversation")?;
                Ok(counter.get() - before)
            })?;
        }
        eprintln!(
            "bench: {}: {} request(s) checked{}; SQL statements per request: graphql {}, plain \
             {}; loading",
            scenario.name(),
            match &plan.requests {
                scenario::Requests::Fixed(bodies) => bodies.len(),
                scenario::Requests::Generate { .. } => 5,
            },
            match checked.identical_bytes {
                Some(identical) => format!(", answers equal (bytes identical: {identical})"),
                None => ", answers valid".into(),
            },
            checked.statements[0],
            checked.statements[1]
        );
        let levels = if args.concurrency.is_empty() {
            scenario.default_levels()
        } else {
            args.concurrency.clone()
        };
        for concurrency in levels {
            let load = Load {
                concurrency,
                warmup,
                measure,
            };
            results.push(run_level(
                scenario,
                &env,
                &plan,
                &checked,
                load,
                args.rounds.max(1),
                server_runtime,
                client_runtime,
            )?);
        }
    }
    servers.stop(server_runtime)?;

    let valid = results.iter().all(|r| r.valid);
    if args.json {
        let output = serde_json::json!({
            "config": {
                "backend": env.backend,
                "durability": env.durability,
                "users": env.users,
                "contacts": env.contacts,
                "conversations": env.inbox.as_ref().map(|i| i.conversations),
                "messages": env.inbox.as_ref().map(|i| i.messages),
                "inbox_seed_seconds": env.inbox.as_ref().map(|i| i.seed_seconds),
                "statistics_seconds": env.statistics_seconds,
                "warmup_seconds": warmup.as_secs_f64(),
                "seconds": measure.as_secs_f64(),
                "rounds": args.rounds.max(1),
                "server_threads": args.server_threads.max(1),
                "client_threads": args.client_threads.max(1),
                "server_core": server_core.map(|c| c.id),
                "client_core": client_core.map(|c| c.id),
            },
            "scenarios": results,
            "valid": valid,
        });
        println!("{}", serde_json::to_string(&output)?);
    } else {
        print!("{}", stats::table(&results));
    }
    if !valid {
        bail!("invalid run: some requests failed");
    }
    Ok(())
}

/// Loads one scenario at one concurrency for `rounds` rounds.
#[allow(clippy::too_many_arguments)]
fn run_level(
    scenario: Scenario,
    env: &server::Env,
    plan: &Plan,
    checked: &Checked,
    load: Load,
    rounds: usize,
    server_runtime: &tokio::runtime::Runtime,
    client_runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<ScenarioResult> {
    let name = format!("{}@{}", scenario.name(), load.concurrency);
    let stored = |conversations: &Arc<Vec<uuid::Uuid>>| {
        let db = env.db.clone();
        let conversations = conversations.clone();
        pin::run_on(server_runtime, async move {
            Ok(send::stored(&db, &conversations).await?)
        })
    };
    let stored_before = match &plan.writes {
        Some(conversations) => Some(stored(conversations)?),
        None => None,
    };
    let mut graphql_outcome = load::Outcome::default();
    let mut plain_outcome = load::Outcome::default();
    let mut raw_outcome = plan.writes.as_ref().map(|_| load::Outcome::default());
    let mut round_ratios = Vec::new();
    for round in 0..rounds {
        // 0: graphql, 1: plain, 2: raw-db; who goes first alternates.
        let mut order = vec![0, 1];
        if raw_outcome.is_some() {
            order.push(2);
        }
        let sides = order.len();
        order.rotate_left(round % sides);
        let mut rps = [0.0_f64; 3];
        for side in order {
            let outcome = match side {
                0 => pin::run_on(
                    client_runtime,
                    load::run(plan.graphql.clone(), checked.graphql.clone(), load),
                )?,
                1 => pin::run_on(
                    client_runtime,
                    load::run(plan.plain.clone(), checked.plain.clone(), load),
                )?,
                _ => {
                    let conversations = plan.writes.clone().unwrap_or_default();
                    pin::run_on(
                        server_runtime,
                        send::raw_db(
                            env.db.clone(),
                            env.org_id,
                            env.owner_id,
                            conversations,
                            load.concurrency,
                            load.warmup,
                            load.measure,
                        ),
                    )?
                }
            };
            rps[side] = outcome.rps();
            match side {
                0 => graphql_outcome.absorb(outcome),
                1 => plain_outcome.absorb(outcome),
                _ => {
                    if let Some(raw) = raw_outcome.as_mut() {
                        raw.absorb(outcome);
                    }
                }
            }
        }
        let ratio = if rps[1] > 0.0 { rps[0] / rps[1] } else { 0.0 };
        eprintln!(
            "bench: {name} round {}: graphql {:.0} req/s, plain {:.0} req/s{}, ratio {ratio:.3}",
            round + 1,
            rps[0],
            rps[1],
            if raw_outcome.is_some() {
                format!(", raw-db {:.0} tx/s", rps[2])
            } else {
                String::new()
            }
        );
        round_ratios.push(ratio);
    }
    let stored_check = match (&plan.writes, stored_before) {
        (Some(conversations), Some(before)) => {
            let after = stored(conversations)?;
            let answered = graphql_outcome.succeeded
                + plain_outcome.succeeded
                + raw_outcome.as_ref().map_or(0, |r| r.succeeded);
            let added = u64::try_from(after - before).unwrap_or(0);
            Some((
                added == answered,
                format!(
                    "messages stored during the load: {added}; requests answered (graphql {} + \
                     plain {} + raw-db {}): {answered}{}",
                    graphql_outcome.succeeded,
                    plain_outcome.succeeded,
                    raw_outcome.as_ref().map_or(0, |r| r.succeeded),
                    if added == answered { "" } else { " MISMATCH" }
                ),
            ))
        }
        _ => None,
    };
    Ok(ScenarioResult::new(
        name,
        load.concurrency,
        checked.identical_bytes,
        Summary::new("graphql", graphql_outcome, checked.statements[0]),
        Summary::new("plain", plain_outcome, checked.statements[1]),
        raw_outcome.map(|raw| Summary::new("raw-db", raw, checked.raw_statements)),
        round_ratios,
        scenario.criterion(),
        stored_check,
    ))
}
