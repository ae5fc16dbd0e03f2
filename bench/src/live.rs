//! The `fanout` and `replay` scenarios: GraphQL subscriptions (`messageAdded` over
//! `graphql-transport-ws`) against a plain websocket broadcast in the same server binary.
//!
//! Every side of every round runs in a fresh server process (this binary with the hidden
//! `--live-server` role, see `live_server.rs`), pinned to the server core, so that its CPU time
//! and resident memory, read from `/proc/<pid>`, are the server's alone and start from the same
//! state for both sides. The subscribers are tasks of this process on the client core.
//!
//! `fanout` at each `--subscribers` level: N subscribers connect (at most
//! `--connect-concurrency` at once) and subscribe to one conversation; probe messages are sent
//! until every subscriber has received one (so every subscription is live, not measured); then
//! K = `--seconds` × `--rate` messages are sent open-loop at `--rate` per second, each at its
//! time on its own connection (`sendMessage` for GraphQL; the plain trigger does the `send`
//! scenario's plain write and broadcasts one pre-serialised frame of the same shape). A send
//! that fails is counted (the run is invalid) and its message is not expected; if it was
//! committed all the same, its deliveries are counted as unexpected. Figures:
//! - latency of each delivery from the moment the sender has the mutation's HTTP response to
//!   the subscriber's receipt (a frame that arrives before the response counts as 0 and is
//!   counted separately); p50, p99, max;
//! - deliveries: every subscriber must receive every message exactly once; missing,
//!   duplicate, lagged, errored and closed subscribers are counted and make the run invalid;
//! - server CPU per delivery: `utime + stime` of the server process from just before the first
//!   measured send until the last delivery arrived, divided by the deliveries (it includes the K
//!   sends; their share is measured before the subscribers connect and printed);
//! - resident memory per idle connection: (VmRSS with the N subscribers connected, subscribed
//!   and idle after the probes − VmRSS before they connected) / N;
//! - `--hold-seconds`: afterwards the N connections stay open (idle, or with `--hold-rate`
//!   messages per second) while VmRSS is sampled every `--sample-seconds`; first, last and
//!   highest sample are reported and the trickle's deliveries checked.
//!
//! `replay`: `--replay-events` messages are sent first (through `sendMessage`, on both sides),
//! after the event log's last sequence at that moment; then `--replay-subscribers` clients
//! connect and subscribe with `after` set to that cursor, and must each receive all the
//! events, in cursor order. Figures: time from the first connection until every subscriber
//! has all events, events/s, server CPU. Reference: as many plain clients, each sent the same
//! frames (same cursors, ids, texts), serialised once before the clients connect.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use http_body_util::Full;
use hyper::StatusCode;
use hyper::client::conn::http1::SendRequest;
use serde::Serialize;

use crate::load::{self, CheckBody, MakeBody, Target};
use crate::process::{self, Ready, ServerProcess};
use crate::stats::{median, percentile};
use crate::wsclient::{self, Record, Shared, Spec};
use crate::{live_server, pin};

/// The subscription of both scenarios.
pub const SUBSCRIPTION: &str = "subscription($c: ID, $a: String) { messageAdded(conversationId: \
$c, after: $a) { cursor message { id text } } }";

/// Targets of the issue.
const TARGET_P99_MS: f64 = 250.0;
const TARGET_RSS_PER_CONNECTION: f64 = 16_000.0;
const TARGET_CPU_RATIO: f64 = 1.3;

/// What the live scenarios are told.
#[derive(Clone, Debug)]
pub struct Options {
    /// Fanout levels (subscribers).
    pub subscribers: Vec<usize>,
    /// Messages per second during the measured window.
    pub rate: f64,
    /// Messages per measured window.
    pub messages: usize,
    /// Rounds (each: both sides, alternating which goes first).
    pub rounds: usize,
    /// Idle time after the measurement, sampling memory.
    pub hold: Duration,
    /// Messages per second while holding (0: idle).
    pub hold_rate: f64,
    /// Time between memory samples while holding.
    pub sample: Duration,
    /// Clients connecting at once.
    pub connect_concurrency: usize,
    /// Time to wait for deliveries after the last send.
    pub drain: Duration,
    /// Replay subscribers.
    pub replay_subscribers: usize,
    /// Events each replay subscriber must receive.
    pub replay_events: usize,
    /// Time a replay may take.
    pub replay_timeout: Duration,
    /// Arguments of the server process.
    pub server_args: Vec<String>,
}

/// The two sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Graphql,
    Plain,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Graphql => "graphql",
            Side::Plain => "plain",
        }
    }

    fn send_path(self) -> &'static str {
        match self {
            Side::Graphql => "/graphql",
            Side::Plain => "/bench/plain/send",
        }
    }

    /// The client spec: GraphQL subscribes (with `after` for a replay), plain just connects.
    fn spec(self, ready: &Ready, after: Option<&str>, target: u64) -> Spec {
        let conversation =
            switchboard::graphql::relay::encode_id("Conversation", ready.conversation).0;
        match self {
            Side::Graphql => Spec {
                addr: ready.addr,
                path: "/graphql/ws",
                token: ready.token.clone(),
                subscribe: Some(
                    serde_json::json!({
                        "id": live_server::SUBSCRIPTION_ID,
                        "type": "subscribe",
                        "payload": {
                            "query": SUBSCRIPTION,
                            "variables": { "c": conversation, "a": after },
                        },
                    })
                    .to_string(),
                ),
                record: target == 0,
                target,
            },
            Side::Plain => Spec {
                addr: ready.addr,
                path: if after.is_some() {
                    "/bench/plain/replay/ws"
                } else {
                    "/bench/plain/ws"
                },
                token: ready.token.clone(),
                subscribe: None,
                record: target == 0,
                target,
            },
        }
    }
}

/// Sends messages on one keep-alive connection.
struct Sender {
    target: Target,
    connection: SendRequest<Full<Bytes>>,
    body: MakeBody,
    check: CheckBody,
}

impl Sender {
    /// A sender of the bodies `body` makes (one maker for all senders of a server: it numbers
    /// the `externalId`s, which must differ or the server answers with the first message).
    async fn new(side: Side, ready: &Ready, body: MakeBody) -> anyhow::Result<Self> {
        let target = Target::new(ready.addr, side.send_path(), &ready.token);
        let connection = load::connect(&target).await?;
        Ok(Self {
            target,
            connection,
            body,
            check: crate::send::check(),
        })
    }

    /// Sends one message; returns the hash of its id and when the answer had arrived.
    async fn send(&mut self) -> anyhow::Result<(u64, Instant)> {
        let body = (self.body)(0);
        let (status, answer) = load::send(&mut self.connection, &self.target, body).await?;
        let at = Instant::now();
        let text = || String::from_utf8_lossy(&answer[..answer.len().min(300)]).to_string();
        if status != StatusCode::OK {
            bail!("the send answered {status}: {}", text());
        }
        (self.check)(&answer)
            .map_err(|why| anyhow::anyhow!("the send failed ({why}): {}", text()))?;
        let json: serde_json::Value = serde_json::from_slice(&answer)?;
        let id = json["data"]["sendMessage"]["message"]["id"]
            .as_str()
            .context("no message id in the send's answer")?;
        Ok((wsclient::id_hash(id.as_bytes()), at))
    }
}

/// SQL statements the server has run so far.
async fn statements(ready: &Ready) -> anyhow::Result<u64> {
    let answer = post(ready, "/bench/statements", String::new()).await?;
    std::str::from_utf8(&answer)?
        .trim()
        .parse()
        .context("the statement count is not a number")
}

/// Waits until `done()` or `timeout`; returns whether it was done.
async fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until no event has arrived for `quiet` (at most `limit`).
async fn settle(shared: &Shared, quiet: Duration, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut last = shared.received.load(Ordering::SeqCst);
    let mut since = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = shared.received.load(Ordering::SeqCst);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return;
        }
    }
}

/// Memory samples while holding.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Hold {
    /// Seconds held.
    pub seconds: f64,
    /// Samples taken.
    pub samples: usize,
    /// First sample, bytes.
    pub first_rss: u64,
    /// Last sample, bytes.
    pub last_rss: u64,
    /// Highest sample, bytes.
    pub max_rss: u64,
    /// Messages sent while holding.
    pub messages: usize,
    /// Their deliveries expected (subscribers × messages) and received.
    pub deliveries_expected: u64,
    pub deliveries: u64,
}

/// One side of one fanout round.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FanoutRound {
    pub subscribers: usize,
    /// Messages sent (answered without error).
    pub messages: usize,
    /// Sends that failed (their messages are not expected).
    pub failed_sends: u64,
    pub expected: u64,
    pub delivered: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub unexpected: u64,
    pub lagged: u64,
    pub errors: u64,
    pub closed: u64,
    pub completed: u64,
    pub failed_connections: u64,
    /// Deliveries that arrived before the sender had the HTTP answer (counted as 0 ms).
    pub before_response: u64,
    #[serde(skip)]
    pub latencies_ns: Vec<u64>,
    /// Seconds from the first send's answer to the last delivery of a sent message.
    pub window_seconds: f64,
    /// Server CPU over the measured window.
    pub cpu_seconds: f64,
    /// Server CPU of one send with no subscriber (measured before they connect).
    pub cpu_per_send_us: f64,
    /// SQL statements the server ran over the window (sends included).
    pub statements: u64,
    /// Seconds over which the K sends were started (K / rate).
    pub sends_seconds: f64,
    /// Time from a send's request to its answer: median and highest, ms.
    pub send_p50_ms: f64,
    pub send_max_ms: f64,
    pub rss_before: u64,
    /// With the subscribers connected and subscribed, before any event.
    pub rss_connected: u64,
    /// With the subscribers idle after the probe events.
    pub rss_idle: u64,
    pub rss_after: u64,
    pub connect_seconds: f64,
    pub frame_bytes: usize,
    /// This process's CPU use over the window (1.0 = one core busy).
    pub driver_cpu: f64,
    pub hold: Option<Hold>,
    pub first_error: Option<String>,
}

impl FanoutRound {
    fn cpu_per_delivery_us(&self) -> f64 {
        divide(self.cpu_seconds * 1e6, self.delivered as f64)
    }

    fn rss_per_connection_before_events(&self) -> f64 {
        divide(
            self.rss_connected as f64 - self.rss_before as f64,
            self.subscribers as f64,
        )
    }

    fn rss_per_connection(&self) -> f64 {
        divide(
            self.rss_idle as f64 - self.rss_before as f64,
            self.subscribers as f64,
        )
    }

    fn valid(&self) -> bool {
        self.delivered == self.expected
            && self.failed_sends == 0
            && self.missing == 0
            && self.duplicates == 0
            && self.unexpected == 0
            && self.lagged == 0
            && self.errors == 0
            && self.closed == 0
            && self.completed == 0
            && self.failed_connections == 0
            && self
                .hold
                .as_ref()
                .is_none_or(|h| h.deliveries == h.deliveries_expected)
    }
}

fn divide(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

fn cpu_share(cpu: Duration, wall: Duration) -> f64 {
    divide(cpu.as_secs_f64(), wall.as_secs_f64())
}

/// One side of one fanout round, on its own server process.
fn fanout_round(
    runtime: &tokio::runtime::Runtime,
    side: Side,
    subscribers: usize,
    options: &Options,
) -> anyhow::Result<FanoutRound> {
    let server = ServerProcess::spawn(&options.server_args)?;
    let (ready, pid) = (server.ready.clone(), server.pid);
    let options = options.clone();
    let outcome = pin::run_on(runtime, async move {
        fanout_measure(side, subscribers, ready, pid, options).await
    });
    let stopped = server.stop();
    let round = outcome?;
    stopped?;
    Ok(round)
}

async fn fanout_measure(
    side: Side,
    n: usize,
    ready: Ready,
    pid: u32,
    options: Options,
) -> anyhow::Result<FanoutRound> {
    let bodies = crate::send::bodies(Arc::new(vec![ready.conversation]));
    let mut sender = Sender::new(side, &ready, bodies).await?;
    // Warm-up sends with nobody subscribed; their CPU is the cost of a send alone.
    for _ in 0..5 {
        sender.send().await?;
    }
    let warm = 50;
    let cpu = process::cpu_time(pid)?;
    for _ in 0..warm {
        sender.send().await?;
    }
    let cpu_per_send = (process::cpu_time(pid)? - cpu).as_secs_f64() / f64::from(warm);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = process::rss_bytes(pid)?;

    let shared = Shared::new();
    let started = Instant::now();
    let hold_messages = (options.hold.as_secs_f64() * options.hold_rate).ceil() as usize;
    let clients = wsclient::start(
        side.spec(&ready, None, 0),
        &shared,
        n,
        options.connect_concurrency,
        options.messages + hold_messages + 16,
    );
    let connected = wait_until(Duration::from_secs(600), || {
        shared.subscribed.load(Ordering::SeqCst) + shared.failed.load(Ordering::SeqCst) >= n
    })
    .await;
    let connect_seconds = started.elapsed().as_secs_f64();
    let failed = shared.failed.load(Ordering::SeqCst);
    if !connected || failed > 0 {
        let records = wsclient::finish(&shared, clients).await?;
        let first = records.iter().find_map(|r| r.failure.clone());
        bail!(
            "{}: {failed} of {n} subscribers could not connect and subscribe in {connect_seconds:.1} \
             s ({} connected); first failure: {}",
            side.name(),
            shared.subscribed.load(Ordering::SeqCst),
            first.unwrap_or_else(|| "none (timed out)".into())
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_connected = process::rss_bytes(pid)?;
    eprintln!(
        "bench: fanout@{n} {}: {n} subscribers connected in {connect_seconds:.1} s; probing",
        side.name()
    );
    // Probes until every subscription is live.
    let mut probes = HashSet::new();
    let mut all_ready = false;
    for _ in 0..20 {
        probes.insert(sender.send().await?.0);
        // Wait while the probe is still reaching subscribers; another one only when it stopped
        // (a subscription that started after the probe committed gets the next one).
        loop {
            let before = shared.ready.load(Ordering::SeqCst);
            if wait_until(Duration::from_secs(2), || {
                shared.ready.load(Ordering::SeqCst) >= n
            })
            .await
            {
                all_ready = true;
                break;
            }
            if shared.ready.load(Ordering::SeqCst) == before {
                break;
            }
        }
        if all_ready {
            break;
        }
    }
    if !all_ready {
        let ready_count = shared.ready.load(Ordering::SeqCst);
        let records = wsclient::finish(&shared, clients).await?;
        let first = records.iter().find_map(|r| {
            r.first_error
                .clone()
                .or(r.closed.as_ref().map(|c| format!("{c:?}")))
        });
        bail!(
            "{}: only {ready_count} of {n} subscribers received any of {} probe messages; \
             first problem: {}",
            side.name(),
            probes.len(),
            first.unwrap_or_else(|| "none".into())
        );
    }
    settle(&shared, Duration::from_millis(300), Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = process::rss_bytes(pid)?;

    // The measured window.
    let base = shared.received.load(Ordering::SeqCst);
    let statements_before = statements(&ready).await?;
    let cpu_before = process::cpu_time(pid)?;
    let own_before = process::cpu_time(std::process::id())?;
    // Open loop: each message is sent at its time on its own connection, whether or not the
    // previous answers have come (a sender waiting for answers would slow down to what an
    // overloaded server allows, and the rate would no longer be the one asked for).
    let mut sent: HashMap<u64, (usize, Instant)> = HashMap::new();
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / options.rate));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let sends_started = Instant::now();
    let mut sends = Vec::with_capacity(options.messages);
    for _ in 0..options.messages {
        interval.tick().await;
        let target = sender.target.clone();
        let body = (sender.body)(0);
        let check = sender.check.clone();
        sends.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut one = Sender {
                connection: load::connect(&target).await?,
                target,
                body: Arc::new(move |_| body.clone()),
                check,
            };
            let (hash, at) = one.send().await?;
            anyhow::Ok((hash, at, at - started))
        }));
    }
    let sends_span = sends_started.elapsed();
    let mut send_latencies = Vec::with_capacity(sends.len());
    let mut first_answer: Option<Instant> = None;
    let mut failed_sends = 0;
    let mut send_error = None;
    for send in sends {
        match send.await.context("a send panicked")? {
            Ok((hash, at, took)) => {
                first_answer = Some(first_answer.map_or(at, |first| first.min(at)));
                sent.insert(hash, (sent.len(), at));
                send_latencies.push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
            }
            Err(error) => {
                failed_sends += 1;
                send_error.get_or_insert_with(|| format!("a send failed: {error:#}"));
            }
        }
    }
    send_latencies.sort_unstable();
    let sent_count = sent.len();
    let expected = (n * sent_count) as u64;
    let all = wait_until(options.drain, || {
        shared.received.load(Ordering::SeqCst) - base >= expected
            || shared.ended.load(Ordering::SeqCst) >= n
    })
    .await;
    // A failed send may still have been committed and delivered (counted as unexpected): the
    // count above may be reached early, so wait until nothing arrives for 2 s.
    settle(&shared, Duration::from_secs(2), options.drain).await;
    let window_end = Instant::now();
    let cpu_seconds = (process::cpu_time(pid)? - cpu_before).as_secs_f64();
    let own = process::cpu_time(std::process::id())? - own_before;
    let window_statements = statements(&ready).await? - statements_before;
    let window = window_end - first_answer.unwrap_or(window_end);
    let rss_after = process::rss_bytes(pid)?;
    if !all {
        eprintln!(
            "bench: fanout@{n} {}: {} of {expected} deliveries after waiting {:?}",
            side.name(),
            shared.received.load(Ordering::SeqCst) - base,
            options.drain
        );
    }

    // Holding.
    let mut hold_ids = HashSet::new();
    let hold = if options.hold.is_zero() {
        None
    } else {
        let start = Instant::now();
        let end = start + options.hold;
        let mut samples = Vec::new();
        let mut next_sample = start;
        let trickle =
            (options.hold_rate > 0.0).then(|| Duration::from_secs_f64(1.0 / options.hold_rate));
        let mut next_send = trickle.map(|t| start + t);
        let base = shared.received.load(Ordering::SeqCst);
        while Instant::now() < end {
            let now = Instant::now();
            if now >= next_sample {
                let rss = process::rss_bytes(pid)?;
                let (anon, file) = process::rss_parts(pid)?;
                eprintln!(
                    "bench: fanout@{n} {} hold {:>5.0} s: server RSS {:.1} MiB \
                     (anonymous {:.1} MiB, file-backed {:.1} MiB)",
                    side.name(),
                    now.duration_since(start).as_secs_f64(),
                    rss as f64 / 1048576.0,
                    anon as f64 / 1048576.0,
                    file as f64 / 1048576.0
                );
                samples.push(rss);
                next_sample += options.sample;
            }
            if let (Some(at), Some(every)) = (next_send, trickle)
                && now >= at
            {
                hold_ids.insert(sender.send().await?.0);
                next_send = Some(at + every);
            }
            let wake = next_send
                .map_or(next_sample, |s| s.min(next_sample))
                .min(end);
            tokio::time::sleep_until(tokio::time::Instant::from_std(wake)).await;
        }
        samples.push(process::rss_bytes(pid)?);
        let expected = (n * hold_ids.len()) as u64;
        wait_until(options.drain, || {
            shared.received.load(Ordering::SeqCst) - base >= expected
        })
        .await;
        Some(Hold {
            seconds: options.hold.as_secs_f64(),
            samples: samples.len(),
            first_rss: samples.first().copied().unwrap_or(0),
            last_rss: samples.last().copied().unwrap_or(0),
            max_rss: samples.iter().copied().max().unwrap_or(0),
            messages: hold_ids.len(),
            deliveries_expected: expected,
            deliveries: 0,
        })
    };

    let records = wsclient::finish(&shared, clients).await?;
    let mut round = FanoutRound {
        subscribers: n,
        messages: sent_count,
        failed_sends,
        expected,
        window_seconds: window.as_secs_f64(),
        cpu_seconds,
        cpu_per_send_us: cpu_per_send * 1e6,
        statements: window_statements,
        sends_seconds: sends_span.as_secs_f64(),
        send_p50_ms: ms(percentile(&send_latencies, 0.5)),
        send_max_ms: ms(send_latencies.last().copied().unwrap_or(0)),
        rss_before,
        rss_connected,
        rss_idle,
        rss_after,
        connect_seconds,
        driver_cpu: cpu_share(own, window_end - first_answer.unwrap_or(window_end)),
        hold,
        latencies_ns: Vec::with_capacity(expected as usize),
        ..FanoutRound::default()
    };
    let mut hold_deliveries = 0;
    let mut last_delivery: Option<Instant> = None;
    for record in &records {
        let mut seen = vec![false; sent_count];
        for (hash, at) in &record.events {
            if let Some((index, answered)) = sent.get(hash) {
                if seen[*index] {
                    round.duplicates += 1;
                    continue;
                }
                seen[*index] = true;
                round.delivered += 1;
                last_delivery = Some(last_delivery.map_or(*at, |last| last.max(*at)));
                if at < answered {
                    round.before_response += 1;
                }
                let nanos = at.saturating_duration_since(*answered).as_nanos();
                round
                    .latencies_ns
                    .push(u64::try_from(nanos).unwrap_or(u64::MAX));
            } else if hold_ids.contains(hash) {
                hold_deliveries += 1;
            } else if !probes.contains(hash) {
                round.unexpected += 1;
            }
        }
        round.missing += seen.iter().filter(|s| !**s).count() as u64;
        round.errors += record.errors;
        round.lagged += record.lagged;
        round.completed += u64::from(record.completed);
        round.closed += u64::from(record.closed.is_some());
        round.failed_connections += u64::from(record.failure.is_some());
        round.frame_bytes = round.frame_bytes.max(record.frame_bytes);
        if round.first_error.is_none() {
            round.first_error = record
                .first_error
                .clone()
                .or_else(|| {
                    record
                        .closed
                        .as_ref()
                        .map(|(code, why)| format!("closed {code}: {why}"))
                })
                .or_else(|| record.failure.clone());
        }
    }
    if let Some(hold) = round.hold.as_mut() {
        hold.deliveries = hold_deliveries;
    }
    if let (Some(first), Some(last)) = (first_answer, last_delivery) {
        round.window_seconds = last.saturating_duration_since(first).as_secs_f64();
    }
    if send_error.is_some() {
        round.first_error = send_error;
    }
    Ok(round)
}

/// The summary of one side over its rounds.
#[derive(Clone, Debug, Serialize)]
pub struct FanoutSummary {
    pub target: &'static str,
    pub subscribers: usize,
    pub messages: usize,
    pub failed_sends: u64,
    pub expected: u64,
    pub delivered: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub unexpected: u64,
    pub lagged: u64,
    pub errors: u64,
    pub closed: u64,
    pub before_response: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub deliveries_per_second: f64,
    pub cpu_per_delivery_us: f64,
    pub cpu_per_send_us: f64,
    pub statements_per_delivery: f64,
    pub send_p50_ms: f64,
    pub send_max_ms: f64,
    pub rss_per_connection: f64,
    pub rss_per_connection_before_events: f64,
    pub rss_before_mib: f64,
    pub rss_idle_mib: f64,
    pub connect_seconds: f64,
    pub frame_bytes: usize,
    pub driver_cpu: f64,
    pub valid: bool,
    pub first_error: Option<String>,
    pub rounds: Vec<FanoutRound>,
}

fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

fn summarise_fanout(target: &'static str, rounds: Vec<FanoutRound>) -> FanoutSummary {
    let mut latencies: Vec<u64> = rounds
        .iter()
        .flat_map(|r| r.latencies_ns.iter().copied())
        .collect();
    latencies.sort_unstable();
    let sum = |f: fn(&FanoutRound) -> u64| rounds.iter().map(f).sum::<u64>();
    let delivered = sum(|r| r.delivered);
    let cpu: f64 = rounds.iter().map(|r| r.cpu_seconds).sum();
    let window: f64 = rounds.iter().map(|r| r.window_seconds).sum();
    let med = |f: fn(&FanoutRound) -> f64| median(&rounds.iter().map(f).collect::<Vec<_>>());
    FanoutSummary {
        target,
        subscribers: rounds.first().map_or(0, |r| r.subscribers),
        messages: rounds.iter().map(|r| r.messages).sum(),
        failed_sends: sum(|r| r.failed_sends),
        expected: sum(|r| r.expected),
        unexpected: sum(|r| r.unexpected),
        delivered,
        missing: sum(|r| r.missing),
        duplicates: sum(|r| r.duplicates),
        lagged: sum(|r| r.lagged),
        errors: sum(|r| r.errors),
        closed: sum(|r| r.closed),
        before_response: sum(|r| r.before_response),
        p50_ms: ms(percentile(&latencies, 0.50)),
        p90_ms: ms(percentile(&latencies, 0.90)),
        p99_ms: ms(percentile(&latencies, 0.99)),
        max_ms: ms(latencies.last().copied().unwrap_or(0)),
        deliveries_per_second: divide(delivered as f64, window),
        cpu_per_delivery_us: divide(cpu * 1e6, delivered as f64),
        cpu_per_send_us: med(|r| r.cpu_per_send_us),
        statements_per_delivery: divide(sum(|r| r.statements) as f64, delivered as f64),
        send_p50_ms: med(|r| r.send_p50_ms),
        send_max_ms: rounds.iter().map(|r| r.send_max_ms).fold(0.0, f64::max),
        rss_per_connection: med(FanoutRound::rss_per_connection),
        rss_per_connection_before_events: med(FanoutRound::rss_per_connection_before_events),
        rss_before_mib: med(|r| r.rss_before as f64 / 1048576.0),
        rss_idle_mib: med(|r| r.rss_idle as f64 / 1048576.0),
        connect_seconds: med(|r| r.connect_seconds),
        frame_bytes: rounds.iter().map(|r| r.frame_bytes).max().unwrap_or(0),
        driver_cpu: med(|r| r.driver_cpu),
        valid: rounds.iter().all(FanoutRound::valid),
        first_error: rounds.iter().find_map(|r| r.first_error.clone()),
        rounds,
    }
}

/// Both sides of fanout at one level.
#[derive(Clone, Debug, Serialize)]
pub struct FanoutResult {
    pub scenario: String,
    pub graphql: FanoutSummary,
    pub plain: FanoutSummary,
    /// Medians of the rounds' GraphQL / plain ratios.
    pub cpu_ratio: f64,
    pub p99_ratio: f64,
    pub rss_ratio: f64,
    pub round_cpu_ratios: Vec<f64>,
    pub valid: bool,
}

/// Runs fanout at every level.
pub fn fanout(
    runtime: &tokio::runtime::Runtime,
    options: &Options,
) -> anyhow::Result<Vec<FanoutResult>> {
    let mut results = Vec::new();
    for &n in &options.subscribers {
        let mut sides: [Vec<FanoutRound>; 2] = [Vec::new(), Vec::new()];
        let mut ratios = [Vec::new(), Vec::new(), Vec::new()];
        for round in 0..options.rounds {
            let order = if round % 2 == 0 {
                [Side::Graphql, Side::Plain]
            } else {
                [Side::Plain, Side::Graphql]
            };
            let mut this = [None, None];
            for side in order {
                let outcome = fanout_round(runtime, side, n, options)
                    .with_context(|| format!("fanout@{n} {} round {}", side.name(), round + 1))?;
                eprintln!(
                    "bench: fanout@{n} round {} {}: {}/{} delivered, p99 {:.1} ms, {:.2} µs \
                     CPU per delivery, {:.0} B per idle connection{}",
                    round + 1,
                    side.name(),
                    outcome.delivered,
                    outcome.expected,
                    ms(percentile(&sorted(&outcome.latencies_ns), 0.99)),
                    outcome.cpu_per_delivery_us(),
                    outcome.rss_per_connection(),
                    if outcome.valid() { "" } else { " INVALID" }
                );
                this[usize::from(side == Side::Plain)] = Some(outcome);
            }
            if let [Some(graphql), Some(plain)] = this {
                ratios[0].push(divide(
                    graphql.cpu_per_delivery_us(),
                    plain.cpu_per_delivery_us(),
                ));
                ratios[1].push(divide(
                    ms(percentile(&sorted(&graphql.latencies_ns), 0.99)),
                    ms(percentile(&sorted(&plain.latencies_ns), 0.99)),
                ));
                ratios[2].push(divide(
                    graphql.rss_per_connection(),
                    plain.rss_per_connection(),
                ));
                sides[0].push(graphql);
                sides[1].push(plain);
            }
        }
        let [graphql, plain] = sides;
        let graphql = summarise_fanout("graphql", graphql);
        let plain = summarise_fanout("plain", plain);
        results.push(FanoutResult {
            scenario: format!("fanout@{n}"),
            valid: graphql.valid && plain.valid,
            graphql,
            plain,
            cpu_ratio: median(&ratios[0]),
            p99_ratio: median(&ratios[1]),
            rss_ratio: median(&ratios[2]),
            round_cpu_ratios: ratios[0].clone(),
        });
    }
    Ok(results)
}

fn sorted(values: &[u64]) -> Vec<u64> {
    let mut values = values.to_vec();
    values.sort_unstable();
    values
}

/// One side of one replay round.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReplayRound {
    pub subscribers: usize,
    pub events: usize,
    pub expected: u64,
    pub delivered: u64,
    pub incomplete: u64,
    pub out_of_order: u64,
    pub errors: u64,
    pub lagged: u64,
    pub closed: u64,
    pub failed_connections: u64,
    /// Seconds from the first connection until the last subscriber had every event.
    pub seconds: f64,
    /// Seconds until every subscriber had connected and subscribed.
    pub connect_seconds: f64,
    pub cpu_seconds: f64,
    /// SQL statements the server ran while replaying.
    pub statements: u64,
    pub rss_before: u64,
    pub rss_max: u64,
    pub seed_seconds: f64,
    pub frame_bytes: usize,
    pub driver_cpu: f64,
    pub first_error: Option<String>,
}

impl ReplayRound {
    fn valid(&self) -> bool {
        self.delivered == self.expected
            && self.incomplete == 0
            && self.out_of_order == 0
            && self.errors == 0
            && self.lagged == 0
            && self.closed == 0
            && self.failed_connections == 0
    }

    fn events_per_second(&self) -> f64 {
        divide(self.delivered as f64, self.seconds)
    }

    fn cpu_per_event_us(&self) -> f64 {
        divide(self.cpu_seconds * 1e6, self.delivered as f64)
    }
}

fn replay_round(
    runtime: &tokio::runtime::Runtime,
    side: Side,
    options: &Options,
) -> anyhow::Result<ReplayRound> {
    let server = ServerProcess::spawn(&options.server_args)?;
    let (ready, pid) = (server.ready.clone(), server.pid);
    let options = options.clone();
    let outcome = pin::run_on(runtime, async move {
        replay_measure(side, ready, pid, options).await
    });
    let stopped = server.stop();
    let round = outcome?;
    stopped?;
    Ok(round)
}

/// Posts `body` to `path` and returns the answer, which must be 200.
async fn post(ready: &Ready, path: &'static str, body: String) -> anyhow::Result<Bytes> {
    let target = Target::new(ready.addr, path, &ready.token);
    let (status, answer) = load::send_once(&target, Bytes::from(body)).await?;
    if status != StatusCode::OK {
        bail!(
            "{path} answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    Ok(answer)
}

async fn replay_measure(
    side: Side,
    ready: Ready,
    pid: u32,
    options: Options,
) -> anyhow::Result<ReplayRound> {
    let n = options.replay_subscribers;
    let events = options.replay_events;
    let answer = post(&ready, "/bench/last-seq", String::new()).await?;
    let after: i64 = std::str::from_utf8(&answer)?
        .trim()
        .parse()
        .context("the last sequence is not a number")?;
    // The events to replay, through sendMessage on 4 connections.
    let seeding = Instant::now();
    let senders = 4;
    let bodies = crate::send::bodies(Arc::new(vec![ready.conversation]));
    let mut tasks = Vec::new();
    for k in 0..senders {
        let ready = ready.clone();
        let bodies = bodies.clone();
        let count = events / senders + usize::from(k < events % senders);
        tasks.push(tokio::spawn(async move {
            let mut sender = Sender::new(Side::Graphql, &ready, bodies).await?;
            for _ in 0..count {
                sender.send().await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await.context("a seeding task panicked")??;
    }
    let seed_seconds = seeding.elapsed().as_secs_f64();
    if side == Side::Plain {
        let answer = post(
            &ready,
            "/bench/plain/replay",
            serde_json::json!({ "after": after }).to_string(),
        )
        .await?;
        let frames = serde_json::from_slice::<serde_json::Value>(&answer)?["frames"]
            .as_u64()
            .unwrap_or(0);
        if frames != events as u64 {
            bail!("the plain server prepared {frames} frames, not {events}");
        }
    }
    let cursor = live_server::cursor(after);
    eprintln!(
        "bench: replay {}: {events} messages sent in {seed_seconds:.1} s after cursor {cursor} \
         (event {after}); {n} subscribers resume from it",
        side.name()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = process::rss_bytes(pid)?;
    let mut rss_max = rss_before;
    let statements_before = statements(&ready).await?;
    let cpu_before = process::cpu_time(pid)?;
    let own_before = process::cpu_time(std::process::id())?;
    let shared = Shared::new();
    let started = Instant::now();
    let clients = wsclient::start(
        side.spec(&ready, Some(&cursor), events as u64),
        &shared,
        n,
        options.connect_concurrency,
        0,
    );
    let deadline = started + options.replay_timeout;
    let mut connect_seconds = None;
    let mut next_sample = started;
    loop {
        let done = shared.done.load(Ordering::SeqCst);
        let gone = shared.ended.load(Ordering::SeqCst) + shared.failed.load(Ordering::SeqCst);
        if connect_seconds.is_none()
            && shared.subscribed.load(Ordering::SeqCst) + shared.failed.load(Ordering::SeqCst) >= n
        {
            connect_seconds = Some(started.elapsed().as_secs_f64());
        }
        if done + gone >= n || Instant::now() >= deadline {
            break;
        }
        if Instant::now() >= next_sample {
            rss_max = rss_max.max(process::rss_bytes(pid)?);
            next_sample += Duration::from_secs(1);
            let elapsed = started.elapsed().as_secs();
            if elapsed > 0 && elapsed.is_multiple_of(10) {
                eprintln!(
                    "bench: replay {} {elapsed} s: {} events received, {done} of {n} \
                     subscribers complete, {gone} gone",
                    side.name(),
                    shared.received.load(Ordering::SeqCst),
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let finished = Instant::now();
    let cpu_seconds = (process::cpu_time(pid)? - cpu_before).as_secs_f64();
    let own = process::cpu_time(std::process::id())? - own_before;
    rss_max = rss_max.max(process::rss_bytes(pid)?);
    let replay_statements = statements(&ready).await? - statements_before;
    if finished >= deadline {
        eprintln!(
            "bench: replay {}: timed out after {:?}: {} of {n} subscribers had all events, {} \
             events received",
            side.name(),
            options.replay_timeout,
            shared.done.load(Ordering::SeqCst),
            shared.received.load(Ordering::SeqCst)
        );
    }
    let records: Vec<Record> = wsclient::finish(&shared, clients).await?;
    let last_done = records.iter().filter_map(|r| r.done_at).max();
    let mut round = ReplayRound {
        subscribers: n,
        events,
        expected: (n * events) as u64,
        seconds: last_done
            .unwrap_or(finished)
            .duration_since(started)
            .as_secs_f64(),
        connect_seconds: connect_seconds.unwrap_or(0.0),
        cpu_seconds,
        statements: replay_statements,
        rss_before,
        rss_max,
        seed_seconds,
        driver_cpu: cpu_share(own, finished - started),
        ..ReplayRound::default()
    };
    for record in &records {
        round.delivered += record.count.min(events as u64);
        round.incomplete += u64::from(record.count != events as u64);
        round.out_of_order += record.out_of_order;
        round.errors += record.errors;
        round.lagged += record.lagged;
        round.closed += u64::from(record.closed.is_some());
        round.failed_connections += u64::from(record.failure.is_some());
        round.frame_bytes = round.frame_bytes.max(record.frame_bytes);
        if round.first_error.is_none() {
            round.first_error = record
                .first_error
                .clone()
                .or_else(|| {
                    record
                        .closed
                        .as_ref()
                        .map(|(code, why)| format!("closed {code}: {why}"))
                })
                .or_else(|| record.failure.clone());
        }
    }
    Ok(round)
}

/// Both sides of replay.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayResult {
    pub scenario: String,
    pub graphql: Vec<ReplayRound>,
    pub plain: Vec<ReplayRound>,
    /// Medians of the rounds' GraphQL / plain ratios.
    pub time_ratio: f64,
    pub cpu_ratio: f64,
    pub valid: bool,
}

/// Runs replay.
pub fn replay(
    runtime: &tokio::runtime::Runtime,
    options: &Options,
) -> anyhow::Result<ReplayResult> {
    let mut graphql = Vec::new();
    let mut plain = Vec::new();
    let (mut time_ratios, mut cpu_ratios) = (Vec::new(), Vec::new());
    for round in 0..options.rounds {
        let order = if round % 2 == 0 {
            [Side::Graphql, Side::Plain]
        } else {
            [Side::Plain, Side::Graphql]
        };
        let mut this = [None, None];
        for side in order {
            let outcome = replay_round(runtime, side, options)
                .with_context(|| format!("replay {} round {}", side.name(), round + 1))?;
            eprintln!(
                "bench: replay round {} {}: {}/{} events in {:.1} s ({:.0} events/s), {:.1} s \
                 server CPU{}",
                round + 1,
                side.name(),
                outcome.delivered,
                outcome.expected,
                outcome.seconds,
                outcome.events_per_second(),
                outcome.cpu_seconds,
                if outcome.valid() { "" } else { " INVALID" }
            );
            this[usize::from(side == Side::Plain)] = Some(outcome);
        }
        if let [Some(g), Some(p)] = this {
            time_ratios.push(divide(g.seconds, p.seconds));
            cpu_ratios.push(divide(g.cpu_per_event_us(), p.cpu_per_event_us()));
            graphql.push(g);
            plain.push(p);
        }
    }
    Ok(ReplayResult {
        scenario: format!(
            "replay@{}x{}",
            options.replay_subscribers, options.replay_events
        ),
        valid: graphql.iter().chain(&plain).all(ReplayRound::valid),
        graphql,
        plain,
        time_ratio: median(&time_ratios),
        cpu_ratio: median(&cpu_ratios),
    })
}

fn kb(bytes: f64) -> String {
    format!("{:.1} KB", bytes / 1000.0)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// The fanout results as a table with ratio and target lines.
pub fn fanout_table(results: &[FanoutResult]) -> String {
    let mut out = format!(
        "{:<14} {:<8} {:>6} {:>5} {:>9} {:>7} {:>5} {:>5} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10} {:>8} {:>6}\n",
        "scenario",
        "target",
        "subs",
        "msgs",
        "delivered",
        "missing",
        "lag",
        "err",
        "p50 ms",
        "p99 ms",
        "max ms",
        "deliv/s",
        "µs CPU/d",
        "B/idle con",
        "conn s",
        "frame"
    );
    for result in results {
        for side in [&result.graphql, &result.plain] {
            out.push_str(&format!(
                "{:<14} {:<8} {:>6} {:>5} {:>9} {:>7} {:>5} {:>5} {:>8.1} {:>8.1} {:>8.1} {:>9.0} {:>9.2} {:>10.0} {:>8.1} {:>6}\n",
                result.scenario,
                side.target,
                side.subscribers,
                side.messages,
                side.delivered,
                side.missing,
                side.lagged,
                side.errors + side.closed + side.duplicates,
                side.p50_ms,
                side.p99_ms,
                side.max_ms,
                side.deliveries_per_second,
                side.cpu_per_delivery_us,
                side.rss_per_connection,
                side.connect_seconds,
                side.frame_bytes,
            ));
        }
    }
    out.push('\n');
    for result in results {
        let g = &result.graphql;
        let p = &result.plain;
        out.push_str(&format!(
            "{}: graphql/plain CPU per delivery = {:.2} (rounds [{}]; target <= {TARGET_CPU_RATIO}: \
             {}), p99 = {:.2}, memory per idle connection = {:.2}{}\n",
            result.scenario,
            result.cpu_ratio,
            result
                .round_cpu_ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            verdict(result.cpu_ratio > 0.0 && result.cpu_ratio <= TARGET_CPU_RATIO),
            result.p99_ratio,
            result.rss_ratio,
            if result.valid { "" } else { "; INVALID RUN" }
        ));
        out.push_str(&format!(
            "  graphql p99 {:.1} ms (target <= {TARGET_P99_MS} ms at 10,000: {}); {} per idle \
             connection (target <= 16 KB: {}); plain p99 {:.1} ms, {} per idle connection\n",
            g.p99_ms,
            verdict(g.p99_ms <= TARGET_P99_MS && g.delivered == g.expected),
            kb(g.rss_per_connection),
            verdict(g.rss_per_connection <= TARGET_RSS_PER_CONNECTION),
            p.p99_ms,
            kb(p.rss_per_connection),
        ));
        for side in [g, p] {
            out.push_str(&format!(
                "  {}: server RSS {:.1} MiB before, {:.1} MiB with the idle subscribers ({} per \
                 connection before the first event); CPU of one send alone {:.0} µs ({:.2} µs per delivery at this fan-out); {} deliveries \
                 arrived before the send's answer (counted as 0 ms); {:.3} SQL statements per \
                 delivery (sends included); the sends' answers took {:.1} ms (median), {:.1} ms \
                 (highest); driver CPU {:.0} % of a core\n",
                side.target,
                side.rss_before_mib,
                side.rss_idle_mib,
                kb(side.rss_per_connection_before_events),
                side.cpu_per_send_us,
                divide(side.cpu_per_send_us, side.subscribers as f64),
                side.before_response,
                side.statements_per_delivery,
                side.send_p50_ms,
                side.send_max_ms,
                side.driver_cpu * 100.0,
            ));
            for (i, round) in side.rounds.iter().enumerate() {
                if let Some(hold) = &round.hold {
                    out.push_str(&format!(
                        "  {} round {} hold {:.0} s: RSS first {:.1} MiB, last {:.1} MiB, max {:.1} \
                         MiB ({} samples); {} messages, {}/{} deliveries\n",
                        side.target,
                        i + 1,
                        hold.seconds,
                        hold.first_rss as f64 / 1048576.0,
                        hold.last_rss as f64 / 1048576.0,
                        hold.max_rss as f64 / 1048576.0,
                        hold.samples,
                        hold.messages,
                        hold.deliveries,
                        hold.deliveries_expected
                    ));
                }
            }
            if !side.valid {
                out.push_str(&format!(
                    "  {} INVALID: {} sends failed; {} of {} delivered, {} missing, {} duplicates, \
                     {} unexpected, {} lagged, {} errors, {} closed; first problem: {}\n",
                    side.target,
                    side.failed_sends,
                    side.delivered,
                    side.expected,
                    side.missing,
                    side.duplicates,
                    side.unexpected,
                    side.lagged,
                    side.errors,
                    side.closed,
                    side.first_error.as_deref().unwrap_or("-")
                ));
            }
        }
    }
    out
}

/// The replay result as a table with the ratio line.
pub fn replay_table(result: &ReplayResult) -> String {
    let mut out = format!(
        "{:<22} {:<8} {:>6} {:>7} {:>10} {:>9} {:>8} {:>10} {:>8} {:>9} {:>9} {:>6}\n",
        "scenario",
        "target",
        "subs",
        "events",
        "delivered",
        "problems",
        "time s",
        "events/s",
        "CPU s",
        "µs CPU/e",
        "max RSS",
        "frame"
    );
    for (name, rounds) in [("graphql", &result.graphql), ("plain", &result.plain)] {
        for round in rounds {
            out.push_str(&format!(
                "{:<22} {:<8} {:>6} {:>7} {:>10} {:>9} {:>8.1} {:>10.0} {:>8.1} {:>9.2} {:>5.0} MiB {:>6}\n",
                result.scenario,
                name,
                round.subscribers,
                round.events,
                round.delivered,
                round.incomplete + round.out_of_order + round.errors + round.closed
                    + round.failed_connections,
                round.seconds,
                round.events_per_second(),
                round.cpu_seconds,
                round.cpu_per_event_us(),
                round.rss_max as f64 / 1048576.0,
                round.frame_bytes,
            ));
        }
    }
    out.push_str(&format!(
        "\n{}: graphql/plain time = {:.2}, CPU per event = {:.2}{}\n",
        result.scenario,
        result.time_ratio,
        result.cpu_ratio,
        if result.valid { "" } else { "; INVALID RUN" }
    ));
    for (name, rounds) in [("graphql", &result.graphql), ("plain", &result.plain)] {
        for round in rounds {
            out.push_str(&format!(
                "  {name}: connected in {:.1} s; {:.3} SQL statements per event; seeded in {:.1} \
                 s; driver CPU {:.0} % of a core{}\n",
                round.connect_seconds,
                divide(round.statements as f64, round.delivered as f64),
                round.seed_seconds,
                round.driver_cpu * 100.0,
                match &round.first_error {
                    Some(error) if !round.valid() => format!(
                        "; INVALID: {} incomplete, {} out of order, {} errors, {} closed, {} \
                         failed; first problem: {error}",
                        round.incomplete,
                        round.out_of_order,
                        round.errors,
                        round.closed,
                        round.failed_connections
                    ),
                    _ => String::new(),
                }
            ));
        }
    }
    out
}
