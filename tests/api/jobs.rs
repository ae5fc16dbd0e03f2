//! Durable jobs: enqueued with the caller's transaction, retried with backoff, failed with the
//! last error, picked up again after a crash, never run twice at once (two instances on one
//! database), drained or released on shutdown. Handlers here are registered by the tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use entity::job;
use sea_orm::EntityTrait;
use serde_json::json;
use switchboard::jobs::{self, JobContext, JobError, NewJob, Outcome};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::common::TestApp;

/// A job's row.
pub async fn row(app: &TestApp, id: Uuid) -> job::Model {
    job::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .expect("query")
        .expect("job row")
}

/// Enqueues `job` in a write transaction that commits.
pub async fn enqueue(app: &TestApp, job: NewJob) -> Uuid {
    let txn = switchboard::db::begin_write(&app.state.db)
        .await
        .map_err(|e| e.public_message())
        .expect("begin");
    let model = jobs::enqueue(&txn, job)
        .await
        .map_err(|e| e.public_message())
        .expect("enqueue");
    txn.commit().await.expect("commit");
    app.state.jobs.wake();
    model.id
}

/// Polls the job until `done` holds (60 s at most); returns the row.
pub async fn until(app: &TestApp, id: Uuid, done: impl Fn(&job::Model) -> bool) -> job::Model {
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(60);
    loop {
        let job = row(app, id).await;
        if done(&job) {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job never reached the state: {job:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
}

/// A job's row read on a new connection (after the app stopped and closed its pool).
async fn row_after_stop(app: &TestApp, id: Uuid) -> job::Model {
    let db = switchboard::db::connect(&app.state.config)
        .await
        .expect("connect");
    job::Entity::find_by_id(id)
        .one(&db)
        .await
        .expect("query")
        .expect("job row")
}

fn summary(job: &job::Model) -> (String, i32, Option<String>) {
    (job.status.clone(), job.attempts, job.last_error.clone())
}

async fn workers(n: usize) -> TestApp {
    TestApp::spawn_with(|c| {
        c.job_workers = n;
        c.job_poll_ms = 20;
    })
    .await
}

/// Stops `app`'s clock at `at` (the runner's time).
fn stop_clock(app: &TestApp, at: DateTime<Utc>) {
    app.state.clock.set(at);
}

#[tokio::test]
async fn a_job_exists_only_if_the_enqueuing_transaction_commits() {
    let app = workers(2).await;
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    app.state
        .jobs
        .register("test.note", move |ctx: JobContext| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(
                    ctx.job.payload["n"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
                Ok(Outcome::Done)
            }
        });
    let txn = switchboard::db::begin_write(&app.state.db)
        .await
        .map_err(|e| e.public_message())
        .expect("begin");
    jobs::enqueue(
        &txn,
        NewJob::new("test.note", json!({ "n": "rolled back" })),
    )
    .await
    .map_err(|e| e.public_message())
    .expect("enqueue");
    txn.rollback().await.expect("rollback");
    assert_eq!(app.count("jobs").await, 0);
    let id = enqueue(&app, NewJob::new("test.note", json!({ "n": "committed" }))).await;
    assert_eq!(rx.recv().await.as_deref(), Some("committed"));
    let done = until(&app, id, |j| j.status == "SUCCEEDED").await;
    assert_eq!(summary(&done), ("SUCCEEDED".into(), 1, None));
    assert!(done.lease_owner.is_none() && done.lease_expires_at.is_none());
    assert!(done.finished_at.is_some());
    assert!(rx.try_recv().is_err(), "the rolled back job never ran");
    assert_eq!(app.count("jobs").await, 1);
}

#[tokio::test]
async fn transient_failures_retry_with_exponential_backoff_then_succeed() {
    let app = workers(1).await;
    // Ahead of the real time the job is enqueued at (and due from), however slowly this runs.
    let t0 = Utc::now().trunc_subsecs(6) + Duration::minutes(1);
    stop_clock(&app, t0);
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    app.state
        .jobs
        .register("test.flaky", move |ctx: JobContext| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                if ctx.job.attempts < 3 {
                    Err(JobError::Transient(format!(
                        "try {} failed",
                        ctx.job.attempts
                    )))
                } else {
                    Ok(Outcome::Done)
                }
            }
        });
    let id = enqueue(&app, NewJob::new("test.flaky", json!({}))).await;
    // First failure: retry after the base (1 s), by the runner's clock.
    let job = until(&app, id, |j| j.attempts == 1 && j.status == "QUEUED").await;
    assert_eq!(
        summary(&job),
        ("QUEUED".into(), 1, Some("try 1 failed".into()))
    );
    assert_eq!(job.run_at, t0 + Duration::seconds(1));
    stop_clock(&app, t0 + Duration::seconds(1));
    let job = until(&app, id, |j| j.attempts == 2 && j.status == "QUEUED").await;
    assert_eq!(
        summary(&job),
        ("QUEUED".into(), 2, Some("try 2 failed".into()))
    );
    // Second failure: twice the base.
    assert_eq!(job.run_at, t0 + Duration::seconds(3));
    stop_clock(&app, t0 + Duration::seconds(3));
    let job = until(&app, id, |j| j.status == "SUCCEEDED").await;
    assert_eq!(
        summary(&job),
        ("SUCCEEDED".into(), 3, Some("try 2 failed".into()))
    );
    assert_eq!(job.finished_at, Some(t0 + Duration::seconds(3)));
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn jobs_fail_with_the_last_error_after_their_attempts_or_at_once_when_permanent() {
    let app = TestApp::spawn_with(|c| {
        c.job_workers = 2;
        c.job_poll_ms = 20;
        c.job_backoff_base_ms = 1;
    })
    .await;
    app.state
        .jobs
        .register("test.broken", |ctx: JobContext| async move {
            Err::<Outcome, _>(JobError::Transient(format!(
                "still broken ({})",
                ctx.job.attempts
            )))
        });
    app.state
        .jobs
        .register("test.refused", |_ctx: JobContext| async move {
            Err::<Outcome, _>(JobError::Permanent("the recipient does not exist".into()))
        });
    app.state
        .jobs
        .register("test.panics", |ctx: JobContext| async move {
            if ctx.job.attempts < 2 {
                panic!("handler bug");
            }
            Ok(Outcome::Done)
        });
    let broken = enqueue(&app, NewJob::new("test.broken", json!({})).attempts(3)).await;
    let refused = enqueue(&app, NewJob::new("test.refused", json!({}))).await;
    let panics = enqueue(&app, NewJob::new("test.panics", json!({}))).await;
    let done = |j: &job::Model| j.status == "FAILED" || j.status == "SUCCEEDED";
    assert_eq!(
        summary(&until(&app, broken, done).await),
        ("FAILED".into(), 3, Some("still broken (3)".into()))
    );
    assert_eq!(
        summary(&until(&app, refused, done).await),
        (
            "FAILED".into(),
            1,
            Some("the recipient does not exist".into())
        )
    );
    assert_eq!(
        summary(&until(&app, panics, done).await),
        ("SUCCEEDED".into(), 2, Some("the handler panicked".into()))
    );
}

#[tokio::test]
async fn deferring_moves_the_job_later_with_a_new_payload_without_spending_an_attempt() {
    let app = workers(1).await;
    // Ahead of the real time the job is enqueued at (and due from), however slowly this runs.
    let t0 = Utc::now().trunc_subsecs(6) + Duration::minutes(1);
    stop_clock(&app, t0);
    app.state
        .jobs
        .register("test.later", |ctx: JobContext| async move {
            if ctx.job.payload["step"] == json!(1) {
                Ok(Outcome::Defer {
                    at: ctx.now() + Duration::seconds(30),
                    payload: Some(json!({ "step": 2 })),
                })
            } else {
                Ok(Outcome::Done)
            }
        });
    let id = enqueue(&app, NewJob::new("test.later", json!({ "step": 1 }))).await;
    let job = until(&app, id, |j| j.payload == json!({ "step": 2 })).await;
    assert_eq!(summary(&job), ("QUEUED".into(), 0, None));
    assert_eq!(job.run_at, t0 + Duration::seconds(30));
    stop_clock(&app, t0 + Duration::seconds(30));
    let job = until(&app, id, |j| j.status == "SUCCEEDED").await;
    assert_eq!(summary(&job), ("SUCCEEDED".into(), 1, None));
}

/// Sends on `tx` when dropped: proves a handler was stopped, not left running.
struct DropSignal(Option<mpsc::UnboundedSender<&'static str>>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send("dropped");
        }
    }
}

/// Registers `kind` on `app`: the handler says "started", then waits forever (until dropped).
fn register_blocking(app: &TestApp, kind: &str) -> mpsc::UnboundedReceiver<&'static str> {
    let (tx, rx) = mpsc::unbounded_channel();
    app.state.jobs.register(kind, move |_ctx: JobContext| {
        let tx = tx.clone();
        async move {
            let _guard = DropSignal(Some(tx.clone()));
            let _ = tx.send("started");
            std::future::pending::<()>().await;
            Ok(Outcome::Done)
        }
    });
    rx
}

#[tokio::test]
async fn a_job_whose_instance_crashed_mid_job_is_finished_by_a_new_instance_after_its_lease() {
    let mut first = TestApp::spawn_with(|c| {
        c.job_workers = 2;
        c.job_poll_ms = 20;
        // Long enough that the new instance's runner, on the real clock until the test stops
        // it, cannot find the lease expired, however slowly this runs.
        c.job_lease_seconds = 300;
    })
    .await;
    let mut signals = register_blocking(&first, "test.work");
    let id = enqueue(&first, NewJob::new("test.work", json!({ "n": 1 }))).await;
    assert_eq!(signals.recv().await, Some("started"));
    let claimed = row(&first, id).await;
    assert_eq!((claimed.status.as_str(), claimed.attempts), ("RUNNING", 1));
    let expires = claimed.lease_expires_at.expect("lease");

    first.crash();
    assert_eq!(signals.recv().await, Some("dropped"));
    let crashed = row(&first, id).await;
    assert_eq!(crashed.status, "RUNNING", "a crash releases nothing");

    // A new instance on the same database, with a working handler.
    let second = first.spawn_beside().await;
    let (tx, mut ran) = mpsc::unbounded_channel::<Uuid>();
    second
        .state
        .jobs
        .register("test.work", move |ctx: JobContext| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(ctx.job.id);
                Ok(Outcome::Done)
            }
        });
    // Before the lease expires the job is not taken.
    second.state.clock.set(expires - Duration::seconds(1));
    second.state.jobs.wake();
    tokio::time::sleep(StdDuration::from_millis(100)).await;
    assert!(ran.try_recv().is_err());
    assert_eq!(row(&second, id).await.status, "RUNNING");
    // Once it has, it is.
    second.state.clock.set(expires);
    second.state.jobs.wake();
    assert_eq!(ran.recv().await, Some(id));
    let done = until(&second, id, |j| j.status == "SUCCEEDED").await;
    assert_eq!(summary(&done), ("SUCCEEDED".into(), 2, None));
}

#[tokio::test]
async fn two_instances_on_one_database_run_each_job_exactly_once_never_concurrently() {
    let first = TestApp::spawn_with(|c| {
        c.job_workers = 4;
        c.job_poll_ms = 5;
        c.db_max_connections = 8;
    })
    .await;
    let second = first.spawn_beside().await;
    let runs: Arc<Mutex<HashMap<Uuid, Vec<u8>>>> = Arc::default();
    let in_flight: Arc<Mutex<HashMap<Uuid, usize>>> = Arc::default();
    let overlaps = Arc::new(AtomicUsize::new(0));
    // Which instances have started a job (bits 1 and 2): the first jobs wait (5 s at most)
    // until both have, so that both instances claim while jobs are left.
    let (started, _) = tokio::sync::watch::channel(0_u8);
    let started = Arc::new(started);
    for (instance, app) in [(1_u8, &first), (2_u8, &second)] {
        let (runs, in_flight, overlaps) = (runs.clone(), in_flight.clone(), overlaps.clone());
        let started = started.clone();
        app.state
            .jobs
            .register("test.once", move |ctx: JobContext| {
                let (runs, in_flight, overlaps) =
                    (runs.clone(), in_flight.clone(), overlaps.clone());
                let started = started.clone();
                async move {
                    started.send_modify(|bits| *bits |= instance);
                    let mut both = started.subscribe();
                    let _ = tokio::time::timeout(
                        StdDuration::from_secs(5),
                        both.wait_for(|bits| *bits == 3),
                    )
                    .await;
                    let id = ctx.job.id;
                    {
                        let mut in_flight = in_flight.lock().expect("lock");
                        let n = in_flight.entry(id).or_default();
                        *n += 1;
                        if *n > 1 {
                            overlaps.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    // Give a concurrent claimer every chance to take the same job.
                    for _ in 0..3 {
                        tokio::task::yield_now().await;
                    }
                    runs.lock()
                        .expect("lock")
                        .entry(id)
                        .or_default()
                        .push(instance);
                    *in_flight.lock().expect("lock").entry(id).or_default() -= 1;
                    Ok(Outcome::Done)
                }
            });
    }
    let mut ids = Vec::new();
    for chunk in 0..10 {
        let txn = switchboard::db::begin_write(&first.state.db)
            .await
            .map_err(|e| e.public_message())
            .expect("begin");
        for n in 0..20 {
            let job = jobs::enqueue(
                &txn,
                NewJob::new("test.once", json!({ "n": chunk * 20 + n })),
            )
            .await
            .map_err(|e| e.public_message())
            .expect("enqueue");
            ids.push(job.id);
        }
        txn.commit().await.expect("commit");
        first.state.jobs.wake();
        second.state.jobs.wake();
    }
    for id in &ids {
        until(&first, *id, |j| j.status == "SUCCEEDED").await;
    }
    let runs = runs.lock().expect("lock").clone();
    assert_eq!(runs.len(), ids.len());
    let twice: Vec<_> = runs.iter().filter(|(_, r)| r.len() != 1).collect();
    assert!(twice.is_empty(), "jobs run more than once: {twice:?}");
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
    let by_first = runs.values().filter(|r| r == &&vec![1]).count();
    assert!(
        by_first > 0 && by_first < ids.len(),
        "both instances took jobs (first took {by_first} of {})",
        ids.len()
    );
    assert_eq!(
        first
            .count("jobs WHERE status = 'SUCCEEDED' AND attempts = 1")
            .await,
        200
    );
}

#[tokio::test]
async fn shutdown_stops_claiming_and_lets_the_running_job_finish() {
    let mut app = TestApp::spawn_with(|c| {
        c.job_workers = 1;
        c.job_poll_ms = 20;
        c.shutdown_grace_seconds = 30;
    })
    .await;
    let (tx, mut started) = mpsc::unbounded_channel::<u64>();
    let release = Arc::new(tokio::sync::Notify::new());
    let gate = release.clone();
    app.state
        .jobs
        .register("test.gated", move |ctx: JobContext| {
            let (tx, gate) = (tx.clone(), gate.clone());
            async move {
                let _ = tx.send(ctx.job.payload["n"].as_u64().unwrap_or_default());
                gate.notified().await;
                Ok(Outcome::Done)
            }
        });
    let a = enqueue(&app, NewJob::new("test.gated", json!({ "n": 1 }))).await;
    assert_eq!(started.recv().await, Some(1));
    // The only worker is busy: the second job waits, due.
    let b = enqueue(&app, NewJob::new("test.gated", json!({ "n": 2 }))).await;
    app.begin_shutdown();
    // The server stopped accepting: the runner was told to stop claiming before that.
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(60);
    while app.client.get(app.url("/healthz")).send().await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still serving");
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    release.notify_one();
    app.stopped().await.expect("clean stop");
    assert_eq!(
        summary(&row_after_stop(&app, a).await),
        ("SUCCEEDED".into(), 1, None)
    );
    assert_eq!(
        summary(&row_after_stop(&app, b).await),
        ("QUEUED".into(), 0, None)
    );
    assert!(started.try_recv().is_err(), "the second job never started");
}

#[tokio::test]
async fn shutdown_releases_a_job_still_running_after_the_grace_period() {
    let mut app = TestApp::spawn_with(|c| {
        c.job_workers = 1;
        c.job_poll_ms = 20;
        c.shutdown_grace_seconds = 1;
    })
    .await;
    let mut signals = register_blocking(&app, "test.stuck");
    let id = enqueue(&app, NewJob::new("test.stuck", json!({}))).await;
    assert_eq!(signals.recv().await, Some("started"));
    app.begin_shutdown();
    assert_eq!(signals.recv().await, Some("dropped"));
    app.stopped().await.expect("clean stop");
    let job = row_after_stop(&app, id).await;
    assert_eq!(summary(&job), ("QUEUED".into(), 0, None));
    assert!(job.lease_owner.is_none() && job.lease_expires_at.is_none());
}

#[tokio::test]
async fn succeeded_jobs_are_swept_after_the_retention_period_and_failed_ones_stay() {
    use sea_orm::{ActiveModelTrait, IntoActiveModel, Set};
    let first = TestApp::spawn_with(|c| {
        c.job_workers = 1;
        c.job_poll_ms = 20;
        c.job_retention_hours = 1;
    })
    .await;
    first
        .state
        .jobs
        .register("test.ok", |_ctx: JobContext| async { Ok(Outcome::Done) });
    first
        .state
        .jobs
        .register("test.no", |_ctx: JobContext| async {
            Err::<Outcome, _>(JobError::Permanent("no".into()))
        });
    let old = enqueue(&first, NewJob::new("test.ok", json!({}))).await;
    let recent = enqueue(&first, NewJob::new("test.ok", json!({}))).await;
    let failed = enqueue(&first, NewJob::new("test.no", json!({}))).await;
    for (id, status) in [
        (old, "SUCCEEDED"),
        (recent, "SUCCEEDED"),
        (failed, "FAILED"),
    ] {
        until(&first, id, |j| j.status == status).await;
    }
    let two_hours_ago = Utc::now() - Duration::hours(2);
    for id in [old, failed] {
        let mut model = row(&first, id).await.into_active_model();
        model.finished_at = Set(Some(two_hours_ago));
        model.update(&first.state.db).await.expect("backdate");
    }
    // A new instance sweeps as its runner starts.
    let second = first.spawn_beside().await;
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(60);
    while second.count("jobs").await != 2 {
        assert!(tokio::time::Instant::now() < deadline, "never swept");
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    assert_eq!(row(&second, recent).await.status, "SUCCEEDED");
    assert_eq!(row(&second, failed).await.status, "FAILED");
}
