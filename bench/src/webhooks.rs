//! The `webhooks` scenario: deliveries per second from the event log to a local receiver,
//! against a plain sender doing the HTTP work alone.
//!
//! - **switchboard**: the real app (`job_workers` 2, loopback receivers allowed) with one
//!   subscription to `CONTACT_CREATED`. `--webhook-events` events of that type are committed to
//!   the event log in one transaction (as many contacts created at once would), and the clock runs
//!   until the receiver has answered every delivery: the waker makes the subscription's dispatch
//!   job due, the job turns the events into deliveries (500 per transaction), sends them one
//!   after another in event order, signed, and records every attempt (100 per transaction). The
//!   run checks that the receiver got each event exactly once, in order, and that every delivery
//!   is `SUCCEEDED` with one attempt.
//! - **plain** (the reference): the same number of bodies of the same size, signed the same way
//!   (Standard Webhooks HMAC), POSTed one after another with the same HTTP client library
//!   (reqwest, keep-alive) to the same receiver, with no database at all.
//!
//! Both sides send one request at a time (a subscription's deliveries are ordered), so the
//! ratio `switchboard / plain` is what reading the log, storing deliveries and logging
//! attempts costs per delivery on top of the HTTP exchange.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use chrono::Utc;
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::{Value, json};
use switchboard::config::Config;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Notify};
use uuid::Uuid;

use crate::server::{app_error, seed};

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    count: AtomicU64,
    /// Sequence numbers of the events received, in arrival order (switchboard's side).
    sequences: Mutex<Vec<i64>>,
    done: Notify,
    target: AtomicU64,
}

async fn receive(State(seen): State<Arc<Seen>>, body: Bytes) -> &'static str {
    if let Ok(value) = serde_json::from_slice::<Value>(&body)
        && let Some(sequence) = value["data"]["sequence"].as_i64()
    {
        seen.sequences.lock().await.push(sequence);
    }
    let n = seen.count.fetch_add(1, Ordering::SeqCst) + 1;
    if n >= seen.target.load(Ordering::SeqCst) {
        seen.done.notify_waiters();
    }
    "ok"
}

/// One side's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Side {
    /// Deliveries made.
    pub deliveries: u64,
    /// Seconds from the events' commit (plain: the first request) to the last answer.
    pub seconds: f64,
    /// Deliveries per second.
    pub per_second: f64,
}

/// The scenario's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WebhookResult {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The app's side.
    pub switchboard: Side,
    /// The plain sender.
    pub plain: Side,
    /// `switchboard.per_second / plain.per_second`.
    pub ratio: f64,
    /// Every event arrived once, in order, and every delivery is `SUCCEEDED` after one attempt.
    pub valid: bool,
}

/// Runs the scenario: the app on `server`, the receiver and the plain sender on `client`.
pub fn run(
    server: &tokio::runtime::Runtime,
    client: &tokio::runtime::Runtime,
    database_url: Option<String>,
    events: usize,
    timeout: Duration,
) -> anyhow::Result<WebhookResult> {
    if events == 0 {
        bail!("--webhook-events must be at least 1");
    }
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let url = match database_url {
        Some(url) => url,
        None => dir
            .path()
            .join("webhooks.db")
            .to_str()
            .context("the temporary directory's path is not UTF-8")?
            .to_string(),
    };
    let seen = Arc::new(Seen::default());
    seen.target.store(events as u64, Ordering::SeqCst);
    let receiver: SocketAddr = client.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(seen.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        anyhow::Ok(address)
    })?;
    let hook = format!("http://{receiver}/hook");

    let mut config = Config::with_database(url);
    config.rate_limit_per_minute = 0;
    config.demo = false;
    config.shutdown_grace_seconds = 1;
    config.job_workers = 2;
    config.webhook_allow_private_addresses = true;
    let backend = if config.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (db, secret, sent_at, served) = server.block_on(async {
        let app = switchboard::build_app(config.clone())
            .await
            .context("cannot build the app")?;
        let db = app.state.db.clone();
        let bus = app.state.bus.clone();
        let token = seed(&db, 0).await?;
        let owner = switchboard::auth::authenticate(&db, &token)
            .await
            .map_err(app_error)?;
        let (_, secret) = switchboard::webhooks::service::create(
            &db,
            &config,
            &owner,
            switchboard::webhooks::service::SubscriptionInput {
                name: "Bench".into(),
                url: hook.clone(),
                events: vec!["CONTACT_CREATED".into()],
                enabled: true,
                authorization: switchboard::webhooks::service::Authorization::None,
                headers: Default::default(),
            },
        )
        .await
        .map_err(app_error)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let mut stop_rx = stop_rx.clone();
        let served = tokio::spawn(app.serve(listener, async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        }));
        // The events, committed at once.
        let now = Utc::now();
        let txn = switchboard::db::begin_write(&db).await.map_err(app_error)?;
        for chunk in (0..events).collect::<Vec<_>>().chunks(1_000) {
            let rows = chunk.iter().map(|_| {
                let contact = Uuid::now_v7();
                entity::event::ActiveModel {
                    id: sea_orm::Set(Uuid::now_v7()),
                    org_id: sea_orm::Set(owner.org_id),
                    event_type: sea_orm::Set("CONTACT_CREATED".into()),
                    subject_type: sea_orm::Set("Contact".into()),
                    subject_id: sea_orm::Set(contact),
                    actor_user_id: sea_orm::Set(Some(owner.user_id())),
                    payload: sea_orm::Set(json!({ "contactId": contact, "firstName": "Bench" })),
                    created_at: sea_orm::Set(now),
                    ..Default::default()
                }
            });
            entity::event::Entity::insert_many(rows)
                .exec(&txn)
                .await
                .context("cannot insert the events")?;
        }
        txn.commit().await?;
        let sent_at = Instant::now();
        bus.poke();
        anyhow::Ok((db, secret, sent_at, served))
    })?;

    // Switchboard's side: until the receiver has them all.
    let waited = client.block_on(async {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = seen.done.notified();
            if seen.count.load(Ordering::SeqCst) >= events as u64 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    });
    let elapsed = sent_at.elapsed().as_secs_f64();
    let received = seen.count.load(Ordering::SeqCst);
    let (in_order, sample) = client.block_on(async {
        let sequences = seen.sequences.lock().await;
        let in_order = sequences.windows(2).all(|w| w[0] < w[1]);
        (in_order, sequences.first().copied())
    });
    let succeeded: i64 = server.block_on(async {
        // Attempts of the last batch commit after its last answer.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    "SELECT COUNT(*) AS n FROM webhook_deliveries \
                     WHERE status = 'SUCCEEDED' AND attempts = 1",
                ))
                .await?
                .context("no count")?;
            let n: i64 = row.try_get("", "n")?;
            if n >= events as i64 || Instant::now() >= deadline {
                return anyhow::Ok(n);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })?;
    let switchboard_side = Side {
        deliveries: received,
        seconds: elapsed,
        per_second: received as f64 / elapsed,
    };
    let valid = waited
        && received == events as u64
        && in_order
        && sample.is_some()
        && succeeded == events as i64;

    // The plain sender: the same number of signed bodies of the same size, one after another.
    let body = client.block_on(async {
        let sequences = seen.sequences.lock().await;
        let first = sequences.first().copied().unwrap_or_default();
        json!({
            "type": "CONTACT_CREATED",
            "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": {
                "eventId": Uuid::now_v7(),
                "sequence": first,
                "organizationId": "T3JnYW5pemF0aW9uOjAxOWFhMmQ0ZjZkYzc1ZjE4YjE0ZjYwZDM2N2Y0YWM0",
                "subject": { "type": "Contact", "id": "Q29udGFjdDowMTlhYTJkNGY2ZGM3NWYxOGIxNGY2MGQzNjdmNGFjNQ" },
                "actorId": "VXNlcjowMTlhYTJkNGY2ZGM3NWYxOGIxNGY2MGQzNjdmNGFjNg",
                "details": { "contactId": Uuid::now_v7(), "firstName": "Bench" },
            },
        })
    });
    let plain_side = client.block_on(async {
        seen.count.store(0, Ordering::SeqCst);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let bytes = serde_json::to_vec(&body)?;
        let started = Instant::now();
        for i in 0..events {
            let id = format!("msg_{}", Uuid::now_v7().simple());
            let timestamp = Utc::now().timestamp();
            let signature = switchboard::webhooks::signing::sign(&secret, &id, timestamp, &bytes);
            let answer = http
                .post(&hook)
                .timeout(Duration::from_secs(10))
                .header("content-type", "application/json")
                .header("webhook-id", id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(bytes.clone())
                .send()
                .await?;
            if !answer.status().is_success() {
                bail!("the receiver answered {} to request {i}", answer.status());
            }
            let _ = answer.bytes().await?;
        }
        let seconds = started.elapsed().as_secs_f64();
        anyhow::Ok(Side {
            deliveries: events as u64,
            seconds,
            per_second: events as f64 / seconds,
        })
    })?;

    let _ = stop.send(true);
    server.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(5), served).await;
    });
    let ratio = switchboard_side.per_second / plain_side.per_second;
    Ok(WebhookResult {
        backend,
        switchboard: switchboard_side,
        plain: plain_side,
        ratio,
        valid,
    })
}

/// The result as a table.
pub fn table(result: &WebhookResult) -> String {
    format!(
        "webhooks ({}): {} deliveries to a local receiver, one at a time\n\
         | side | seconds | deliveries/s |\n|---|---|---|\n\
         | switchboard (event log → jobs → signed POST → attempt log) | {:.2} | {:.0} |\n\
         | plain (signed POST only) | {:.2} | {:.0} |\n\
         ratio switchboard/plain: {:.2}{}\n",
        result.backend,
        result.switchboard.deliveries,
        result.switchboard.seconds,
        result.switchboard.per_second,
        result.plain.seconds,
        result.plain.per_second,
        result.ratio,
        if result.valid {
            ""
        } else {
            " — INVALID: deliveries missing, duplicated, out of order or not recorded"
        },
    )
}
