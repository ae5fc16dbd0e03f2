//! The job runner of one instance: one claiming loop and up to `job_workers` jobs at once.
//!
//! The loop claims as many due jobs as it has free workers whenever it is woken (a committed
//! event on the event bus — on PostgreSQL from any instance —, [`super::Jobs::wake`], a job
//! ending) or `job_poll_ms` passed. Each claimed job runs as its own task that renews the lease
//! every third of `job_lease_seconds`; a worker that finds its lease lost drops the handler.
//!
//! The runner's tasks live in a `JoinSet` owned by the runner's future: when the server's task
//! is aborted (a crash, as tests simulate), every running handler goes with it and its jobs are
//! claimed again when their leases expire. On shutdown the loop stops claiming, waits up to
//! `shutdown_grace_seconds` for running jobs, then stops the rest and releases them (back to
//! `QUEUED`, their attempt given back).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration as StdDuration;

use chrono::Duration;
use futures_util::FutureExt;
use sea_orm::DatabaseConnection;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use tracing::Instrument;
use uuid::Uuid;

use super::store::Requeue;
use super::{Handler, JobContext, JobError, JobStatus, Jobs, Outcome, store};
use crate::clock::Clock;
use crate::config::Config;
use crate::db;
use crate::live::EventBus;

/// Seconds between retention sweeps of succeeded jobs.
const SWEEP_EVERY: StdDuration = StdDuration::from_secs(60);

/// One instance's job runner.
pub struct Runner {
    /// The handler registry.
    pub jobs: Arc<Jobs>,
    /// The runner's own pool (its statements are not the requests').
    pub db: DatabaseConnection,
    /// The configuration.
    pub config: Arc<Config>,
    /// The instance's clock.
    pub clock: Arc<Clock>,
    /// Committed events wake the runner.
    pub bus: Arc<EventBus>,
}

impl Runner {
    /// Runs until `stop` turns true, then drains (see the module documentation).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let workers = self.config.job_workers;
        if workers == 0 {
            let _ = stop.wait_for(|s| *s).await;
            return;
        }
        let instance = Uuid::now_v7();
        let poll = StdDuration::from_millis(self.config.job_poll_ms.max(1));
        let lease =
            Duration::seconds(i64::try_from(self.config.job_lease_seconds.max(1)).unwrap_or(60));
        let mut events = Some(self.bus.subscribe());
        let mut set: JoinSet<()> = JoinSet::new();
        // Claims of running tasks, to release those stopped at shutdown.
        let mut running: HashMap<tokio::task::Id, (Uuid, String)> = HashMap::new();
        let mut last_sweep: Option<tokio::time::Instant> = None;
        loop {
            while let Some(done) = set.try_join_next_with_id() {
                forget(&mut running, done);
            }
            if *stop.borrow() {
                break;
            }
            let free = workers.saturating_sub(set.len());
            let mut claimed = 0;
            if free > 0 {
                let kinds = self.jobs.kinds();
                let now = self.clock.now();
                let owner = format!("{instance}/{}", Uuid::now_v7());
                let claim = store::claim(&self.db, &kinds, free as u64, &owner, now, now + lease);
                match db::in_write_turn(&self.db, claim).await {
                    Ok(jobs) => {
                        claimed = jobs.len();
                        for job in jobs {
                            let Some(handler) = self.jobs.handler(&job.kind) else {
                                continue;
                            };
                            let claim = (job.id, owner.clone());
                            let ctx = JobContext {
                                job,
                                db: self.db.clone(),
                                clock: self.clock.clone(),
                                config: self.config.clone(),
                                bus: self.bus.clone(),
                                ended_in_txn: Arc::default(),
                            };
                            let span = tracing::info_span!("job", id = %ctx.job.id, kind = %ctx.job.kind, attempt = ctx.job.attempts);
                            let handle = set.spawn(work(handler, ctx, lease).instrument(span));
                            running.insert(handle.id(), claim);
                        }
                    }
                    Err(error) => tracing::warn!(?error, "cannot claim jobs"),
                }
            }
            if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
                last_sweep = Some(tokio::time::Instant::now());
                let hours =
                    i64::try_from(self.config.job_retention_hours).unwrap_or(i64::MAX / 7200);
                let before = self.clock.now() - Duration::hours(hours.min(24 * 365 * 100));
                match db::in_write_turn(&self.db, store::sweep(&self.db, before)).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "succeeded jobs swept"),
                    Err(error) => tracing::warn!(?error, "cannot sweep jobs"),
                }
            }
            if claimed > 0 && claimed == free {
                // Every worker got one; more may be due as soon as one is free.
                tokio::select! {
                    changed = stop.changed() => if changed.is_err() { break },
                    Some(done) = set.join_next_with_id() => forget(&mut running, done),
                    () = tokio::time::sleep(poll) => {}
                }
                continue;
            }
            tokio::select! {
                changed = stop.changed() => if changed.is_err() { break },
                () = self.jobs.woken() => {}
                received = recv(&mut events) => {
                    if received.is_err() {
                        events = None;
                    }
                    // Many events may have committed at once: one claim covers them.
                    if let Some(receiver) = events.as_mut() {
                        while !matches!(receiver.try_recv(), Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed)) {}
                    }
                }
                Some(done) = set.join_next_with_id(), if !set.is_empty() => forget(&mut running, done),
                () = tokio::time::sleep(poll) => {}
            }
        }
        self.drain(set, running).await;
    }

    /// Waits up to the grace period for running jobs, then stops and releases the rest.
    async fn drain(
        &self,
        mut set: JoinSet<()>,
        mut running: HashMap<tokio::task::Id, (Uuid, String)>,
    ) {
        let grace = StdDuration::from_secs(self.config.shutdown_grace_seconds);
        let _ = tokio::time::timeout(grace, async {
            while let Some(done) = set.join_next_with_id().await {
                forget(&mut running, done);
            }
        })
        .await;
        set.abort_all();
        while let Some(done) = set.join_next_with_id().await {
            if let Ok((id, ())) = done {
                running.remove(&id);
            }
        }
        let now = self.clock.now();
        for (job_id, owner) in running.into_values() {
            let how = Requeue {
                at: now,
                ..Requeue::default()
            };
            match store::requeue(&self.db, job_id, &owner, how, now).await {
                Ok(_) => tracing::info!(%job_id, "job released at shutdown"),
                Err(error) => tracing::warn!(?error, %job_id, "cannot release job"),
            }
        }
    }
}

/// Drops the claim of a task that ended by itself (a cancelled one keeps it, to be released).
fn forget(
    running: &mut HashMap<tokio::task::Id, (Uuid, String)>,
    done: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
) {
    match done {
        Ok((id, ())) => {
            running.remove(&id);
        }
        Err(error) if !error.is_cancelled() => {
            running.remove(&error.id());
        }
        Err(_) => {}
    }
}

async fn recv(
    events: &mut Option<broadcast::Receiver<Arc<entity::event::Model>>>,
) -> Result<(), ()> {
    match events {
        Some(receiver) => match receiver.recv().await {
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => Ok(()),
            Err(broadcast::error::RecvError::Closed) => Err(()),
        },
        None => std::future::pending().await,
    }
}

/// Runs one claimed job: the handler under a renewed lease, then its outcome.
async fn work(handler: Arc<dyn Handler>, ctx: JobContext, lease: Duration) {
    let job = ctx.job.clone();
    let owner = ctx.lease_owner().to_string();
    let db = ctx.db.clone();
    let clock = ctx.clock.clone();
    let config = ctx.config.clone();
    let ended_in_txn = ctx.ended_in_txn.clone();
    if job.attempts > job.max_attempts {
        let error = format!(
            "gave up after {} attempts: the last did not finish (its worker stopped)",
            job.max_attempts
        );
        if let Err(error) = store::end(
            &db,
            job.id,
            &owner,
            JobStatus::Failed,
            Some(&error),
            clock.now(),
        )
        .await
        {
            tracing::warn!(?error, job_id = %job.id, "cannot fail job");
        }
        return;
    }
    let run = AssertUnwindSafe(handler.run(ctx)).catch_unwind();
    tokio::pin!(run);
    let period = (lease / 3)
        .to_std()
        .unwrap_or(StdDuration::from_secs(1))
        .max(StdDuration::from_millis(10));
    let mut renewals = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let result = loop {
        tokio::select! {
            result = &mut run => break result,
            _ = renewals.tick() => {
                let renew = store::renew(&db, job.id, &owner, clock.now() + lease);
                match db::in_write_turn(&db, renew).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(job_id = %job.id, kind = %job.kind, "job lease lost; handler stopped");
                        return;
                    }
                    Err(error) => tracing::warn!(?error, job_id = %job.id, "cannot renew job lease"),
                }
            }
        }
    };
    let result = result.unwrap_or_else(|_| Err(JobError::Transient("the handler panicked".into())));
    // The handler's transaction ended the job and committed: nothing left to write (an update
    // that would match no row still waits for SQLite's write lock).
    if matches!(result, Ok(Outcome::Done)) && ended_in_txn.load(Ordering::Relaxed) {
        return;
    }
    // Read the time and write once the turn came.
    let outcome = async {
        let now = clock.now();
        match result {
            Ok(Outcome::Done) => {
                store::end(&db, job.id, &owner, JobStatus::Succeeded, None, now).await
            }
            Ok(Outcome::Defer { at, payload }) => {
                let how = Requeue {
                    at,
                    payload,
                    ..Requeue::default()
                };
                store::requeue(&db, job.id, &owner, how, now).await
            }
            Err(JobError::Permanent(error)) => {
                tracing::warn!(job_id = %job.id, kind = %job.kind, %error, "job failed");
                store::end(&db, job.id, &owner, JobStatus::Failed, Some(&error), now).await
            }
            Err(JobError::Transient(error)) if job.attempts >= job.max_attempts => {
                tracing::warn!(job_id = %job.id, kind = %job.kind, %error, attempts = job.attempts, "job failed after its last attempt");
                store::end(&db, job.id, &owner, JobStatus::Failed, Some(&error), now).await
            }
            Err(JobError::Transient(error)) => {
                let delay = store::backoff(
                    job.attempts,
                    Duration::milliseconds(
                        i64::try_from(config.job_backoff_base_ms).unwrap_or(1_000),
                    ),
                    Duration::seconds(
                        i64::try_from(config.job_backoff_max_seconds).unwrap_or(3_600),
                    ),
                );
                tracing::info!(job_id = %job.id, kind = %job.kind, %error, retry_in_ms = delay.num_milliseconds(), "job will retry");
                let how = Requeue {
                    at: now + delay,
                    counted: true,
                    error: Some(error),
                    payload: None,
                };
                store::requeue(&db, job.id, &owner, how, now).await
            }
        }
    };
    if let Err(error) = db::in_write_turn(&db, outcome).await {
        tracing::warn!(?error, job_id = %job.id, "cannot record the job's outcome; its lease will expire");
    }
}
