//! `bench`: load benchmark of the GraphQL server against a plain axum handler doing the same work.
//!
//! ```text
//! cargo run --release -p bench -- [--scenario viewer] [--seconds 10] [--warmup 2]
//!     [--concurrency 32] [--server-threads 1] [--client-threads 1] [--no-pin] [--json]
//!     [--database-url postgres://...] [--users 50] [--contacts 100000]
//! ```
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
//!    `graphql_rps / plain_rps` (target >= 0.7). Any error (transport, non-200, or a body other than
//!    the checked one) makes the run invalid and the exit status non-zero.
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

mod contacts;
mod load;
mod pin;
mod scenario;
mod server;
mod stats;

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use load::{Load, Target};
use scenario::Scenario;
use stats::{ScenarioResult, Summary};

/// The ratio `graphql_rps / plain_rps` aimed for.
const TARGET_RATIO: f64 = 0.7;

/// Load benchmark: the GraphQL server against a plain axum handler doing the same work.
#[derive(Parser, Debug)]
#[command(name = "bench")]
struct Args {
    /// Scenarios to run (comma-separated); all by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    scenario: Vec<Scenario>,

    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,

    /// Seconds measured per server in each round.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,

    /// Rounds per scenario. Each round loads both servers, alternating which goes first; the
    /// reported ratio is the median of the rounds' ratios, so a burst of noise on a shared machine
    /// moves one round, not the result.
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

    /// Users seeded besides the owner.
    #[arg(long, default_value_t = 50)]
    users: usize,

    /// Contacts seeded for the `contacts` scenario (none when it does not run).
    #[arg(long, default_value_t = 100_000)]
    contacts: usize,

    /// Print the results as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

fn seconds(value: f64, name: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).with_context(|| format!("--{name} must be a duration"))
}

/// What the check before loading found.
struct Checked {
    graphql_body: axum::body::Bytes,
    plain_body: axum::body::Bytes,
    /// SQL statements of one request: GraphQL, plain.
    statements: [u64; 2],
}

/// Sends the request of both sides; fails unless both answer 200 with equal JSON, and counts the
/// SQL statements of one request of each.
async fn verify(
    graphql: Target,
    plain: Target,
    counter: server::Statements,
) -> anyhow::Result<Checked> {
    let mut bodies = Vec::new();
    let mut statements = [0; 2];
    for (i, (name, target)) in [("graphql", &graphql), ("plain", &plain)]
        .into_iter()
        .enumerate()
    {
        // The fewest statements of five requests: a write recording the token's use (at most once
        // a minute, off the request path) may land during one of them.
        let mut fewest = u64::MAX;
        let mut answer = None;
        for _ in 0..5 {
            let before = counter.get();
            let (status, body) = load::send_once(target)
                .await
                .with_context(|| format!("the {name} check request failed"))?;
            fewest = fewest.min(counter.get() - before);
            answer = Some((status, body));
        }
        statements[i] = fewest;
        let Some((status, body)) = answer else {
            bail!("no {name} check request was sent");
        };
        if status != hyper::StatusCode::OK {
            bail!(
                "the {name} server answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        bodies.push(body);
    }
    let [graphql_body, plain_body] =
        <[_; 2]>::try_from(bodies).map_err(|_| anyhow::anyhow!("expected two check responses"))?;
    let graphql_json: serde_json::Value =
        serde_json::from_slice(&graphql_body).context("the GraphQL answer is not JSON")?;
    let plain_json: serde_json::Value =
        serde_json::from_slice(&plain_body).context("the plain answer is not JSON")?;
    if graphql_json != plain_json {
        bail!(
            "the answers differ:\n  graphql: {}\n  plain:   {}",
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
    Ok(Checked {
        graphql_body,
        plain_body,
        statements,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let load = Load {
        concurrency: args.concurrency,
        warmup: seconds(args.warmup, "warmup")?,
        measure: seconds(args.seconds, "seconds")?,
    };
    if load.measure.is_zero() {
        bail!("--seconds must be more than 0");
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

    let server_runtime = pin::runtime("bench-server", args.server_threads, server_core)?;
    let client_runtime = pin::runtime("bench-client", args.client_threads, client_core)?;
    let contacts = if scenarios.contains(&Scenario::Contacts) {
        args.contacts
    } else {
        0
    };
    let servers = server::start(
        &server_runtime,
        args.database_url.clone(),
        args.users,
        contacts,
    )?;
    let env = servers.env.clone();
    let pinning = match (server_core, client_core) {
        (Some(s), Some(c)) => format!("server on core {}, load generator on core {}", s.id, c.id),
        _ => "not pinned".into(),
    };
    eprintln!(
        "bench: {} with {} users and {} contacts; graphql on {}, plain on {}; {} server thread(s), {} client \
         thread(s), {pinning}; {} connections, {:?} warm-up + {:?} measured per server",
        env.backend,
        env.users,
        env.contacts,
        env.graphql,
        env.plain,
        args.server_threads.max(1),
        args.client_threads.max(1),
        load.concurrency,
        load.warmup,
        load.measure,
    );

    let mut results = Vec::new();
    for scenario in scenarios {
        let plan = scenario.plan(&env);
        let (graphql, plain) = (plan.graphql, plan.plain);
        let checked = pin::run_on(
            &client_runtime,
            verify(graphql.clone(), plain.clone(), env.statements.clone()),
        )
        .with_context(|| format!("scenario {}: the check failed", scenario.name()))?;
        let (graphql_body, plain_body) = (checked.graphql_body, checked.plain_body);
        let identical_bytes = graphql_body == plain_body;
        eprintln!(
            "bench: {}: answers equal (bytes identical: {identical_bytes}); SQL statements per \
             request: graphql {}, plain {}; loading",
            scenario.name(),
            checked.statements[0],
            checked.statements[1]
        );
        let mut graphql_outcome = load::Outcome::default();
        let mut plain_outcome = load::Outcome::default();
        let mut round_ratios = Vec::new();
        for round in 0..args.rounds.max(1) {
            let order = if round % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            let mut rps = [0.0_f64; 2];
            for is_graphql in order {
                let (target, body, total) = if is_graphql {
                    (&graphql, &graphql_body, &mut graphql_outcome)
                } else {
                    (&plain, &plain_body, &mut plain_outcome)
                };
                let outcome = pin::run_on(
                    &client_runtime,
                    load::run(target.clone(), body.clone(), load),
                )?;
                rps[usize::from(!is_graphql)] = outcome.rps();
                total.absorb(outcome);
            }
            let ratio = if rps[1] > 0.0 { rps[0] / rps[1] } else { 0.0 };
            eprintln!(
                "bench: {} round {}: graphql {:.0} req/s, plain {:.0} req/s, ratio {ratio:.3}",
                scenario.name(),
                round + 1,
                rps[0],
                rps[1]
            );
            round_ratios.push(ratio);
        }
        results.push(ScenarioResult::new(
            scenario.name(),
            identical_bytes,
            Summary::new("graphql", graphql_outcome, checked.statements[0]),
            Summary::new("plain", plain_outcome, checked.statements[1]),
            round_ratios,
            TARGET_RATIO,
        ));
    }
    servers.stop(&server_runtime)?;

    let valid = results.iter().all(|r| r.valid);
    if args.json {
        let output = serde_json::json!({
            "config": {
                "backend": env.backend,
                "users": env.users,
                "contacts": env.contacts,
                "concurrency": load.concurrency,
                "warmup_seconds": load.warmup.as_secs_f64(),
                "seconds": load.measure.as_secs_f64(),
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
