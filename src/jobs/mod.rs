//! Durable jobs: background work that survives restarts and runs in every instance.
//!
//! A job is a row of `jobs` (kind, JSON payload, organization when any, `run_at`, attempts, lease,
//! last error, status `QUEUED | RUNNING | SUCCEEDED | FAILED`). Callers [`enqueue`] inside their
//! own write transaction, so a job exists if and only if the change that asked for it committed.
//!
//! Every instance runs a [`runner`] with `job_workers` workers. It claims due jobs (queued with
//! `run_at` passed, or running with an expired lease: their worker died) by setting a lease, in
//! one statement: `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING *` on
//! PostgreSQL; on SQLite the same `UPDATE … WHERE id IN (SELECT …) RETURNING *` without the lock
//! clause, atomic because an `UPDATE` takes SQLite's single write lock before it reads. A worker
//! renews its lease while the handler runs; every later change to the job (finish, retry, defer,
//! release) is fenced by `lease_owner`, a value unique to the claim, so a worker that lost its
//! lease can no longer finish a job someone else now runs. Handlers that write finish the job in
//! their own transaction ([`JobContext::complete_in`], [`JobContext::fail_in`]): the work and
//! the job's end commit together, or neither does.
//!
//! Outcomes: success (`SUCCEEDED`, kept `job_retention_hours`, then deleted), [`Outcome::Defer`]
//! (back to `QUEUED` at a later time, not counted as an attempt: throttles and delays),
//! [`JobError::Transient`] (retried after `backoff_base · 2^(attempt−1)`, capped at
//! `backoff_max`, until `max_attempts`, then `FAILED` with the last error) and
//! [`JobError::Permanent`] (`FAILED` at once). A job claimed again after more than `max_attempts`
//! attempts (its workers kept dying) fails without running. Handlers are found by kind in the
//! [`Jobs`] registry; an instance only claims kinds it has a handler for.

pub mod runner;
pub mod store;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use entity::job;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseConnection, Set};
use serde_json::Value;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{AppError, AppResult};

/// Attempts a job gets unless its kind asks otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 10;

/// Stored status of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobStatus {
    /// Waiting for `run_at`.
    Queued,
    /// Claimed by a worker (under a lease).
    Running,
    /// Done.
    Succeeded,
    /// Gave up; `last_error` says why.
    Failed,
}

impl JobStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "QUEUED",
            JobStatus::Running => "RUNNING",
            JobStatus::Succeeded => "SUCCEEDED",
            JobStatus::Failed => "FAILED",
        }
    }
}

/// A job to enqueue.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// Which handler runs it.
    pub kind: String,
    /// The handler's input.
    pub payload: Value,
    /// The organization it works for, when any (its jobs go with it).
    pub org_id: Option<Uuid>,
    /// Not before this time (now when `None`).
    pub run_at: Option<DateTime<Utc>>,
    /// Attempts before it fails.
    pub max_attempts: i32,
}

impl NewJob {
    /// A job of `kind` with `payload`, due now, with the default attempts.
    pub fn new(kind: impl Into<String>, payload: Value) -> Self {
        Self {
            kind: kind.into(),
            payload,
            org_id: None,
            run_at: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }

    /// For organization `org_id`.
    pub fn org(mut self, org_id: Uuid) -> Self {
        self.org_id = Some(org_id);
        self
    }

    /// Not before `at`.
    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }

    /// With `attempts` attempts at most (at least 1).
    pub fn attempts(mut self, attempts: i32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }
}

/// Stores `job` inside `conn`, the caller's write transaction: it exists if and only if the
/// caller's change commits. Workers of every instance see it once committed.
pub async fn enqueue<C: ConnectionTrait>(conn: &C, job: NewJob) -> AppResult<job::Model> {
    let now = Utc::now();
    let model = job::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(job.org_id),
        kind: Set(job.kind),
        payload: Set(job.payload),
        status: Set(JobStatus::Queued.as_str().into()),
        run_at: Set(job.run_at.unwrap_or(now)),
        attempts: Set(0),
        max_attempts: Set(job.max_attempts.max(1)),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
    }
    .insert(conn)
    .await?;
    Ok(model)
}

/// What a handler reports when it did not fail.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Done: the job succeeds (unless the handler already ended it in its transaction).
    Done,
    /// Not yet: run again at `at` (not counted as an attempt), with a new payload if given.
    Defer {
        /// When to run again.
        at: DateTime<Utc>,
        /// The payload to run with then.
        payload: Option<Value>,
    },
}

/// Why a handler failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobError {
    /// May work later: retried with backoff until the attempts run out.
    Transient(String),
    /// Will never work: the job fails now.
    Permanent(String),
}

impl From<AppError> for JobError {
    fn from(error: AppError) -> Self {
        // Database faults and conflicts pass: retry.
        JobError::Transient(match error {
            AppError::Internal(cause) => cause,
            other => other.public_message(),
        })
    }
}

impl From<sea_orm::DbErr> for JobError {
    fn from(error: sea_orm::DbErr) -> Self {
        JobError::Transient(format!("{error:?}"))
    }
}

/// What a handler's run returns.
pub type JobResult = Result<Outcome, JobError>;

/// A handler's run, boxed.
pub type JobFuture = Pin<Box<dyn Future<Output = JobResult> + Send>>;

/// Runs the jobs of one kind.
pub trait Handler: Send + Sync + 'static {
    /// Runs one attempt of `ctx.job`.
    fn run(&self, ctx: JobContext) -> JobFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = JobResult> + Send + 'static,
{
    fn run(&self, ctx: JobContext) -> JobFuture {
        Box::pin(self(ctx))
    }
}

/// What a handler gets: the claimed job and the means to do its work.
#[derive(Clone)]
pub struct JobContext {
    /// The job as claimed (`attempts` counts this attempt).
    pub job: job::Model,
    /// The job runner's database pool.
    pub db: DatabaseConnection,
    /// The instance's clock.
    pub clock: Arc<Clock>,
    /// The configuration.
    pub config: Arc<Config>,
    /// The event bus (poked after a handler's transaction committed events).
    pub bus: Arc<crate::live::EventBus>,
    /// Set when the handler ended the job inside its own transaction ([`Self::complete_in`],
    /// [`Self::fail_in`]): the runner then writes no outcome of its own for `Outcome::Done`.
    pub(crate) ended_in_txn: Arc<std::sync::atomic::AtomicBool>,
}

impl JobContext {
    /// Tells the event bus that this handler's events committed (they reach subscribers at once
    /// instead of at the bus's next interval read).
    pub fn committed(&self) {
        self.bus.poke();
    }

    /// Now, by the instance's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Whether a transient failure now would fail the job.
    pub fn is_last_attempt(&self) -> bool {
        self.job.attempts >= self.job.max_attempts
    }

    /// The claim's lease owner (fences every change to the job).
    pub fn lease_owner(&self) -> &str {
        self.job.lease_owner.as_deref().unwrap_or_default()
    }

    /// Marks the job `SUCCEEDED` inside the handler's transaction `conn`, so its work and its end
    /// commit together. Fails (and the caller must roll back) when this worker no longer holds
    /// the job's lease.
    pub async fn complete_in<C: ConnectionTrait>(&self, conn: &C) -> AppResult<()> {
        self.end_in(conn, JobStatus::Succeeded, None).await
    }

    /// Marks the job `FAILED` with `error` inside the handler's transaction `conn` (a business
    /// failure recorded with the handler's other writes). Fails when the lease is lost.
    pub async fn fail_in<C: ConnectionTrait>(&self, conn: &C, error: &str) -> AppResult<()> {
        self.end_in(conn, JobStatus::Failed, Some(error)).await
    }

    async fn end_in<C: ConnectionTrait>(
        &self,
        conn: &C,
        status: JobStatus,
        error: Option<&str>,
    ) -> AppResult<()> {
        let ended = store::end(
            conn,
            self.job.id,
            self.lease_owner(),
            status,
            error,
            self.now(),
        )
        .await?;
        if ended {
            self.ended_in_txn
                .store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        } else {
            Err(AppError::Conflict(format!(
                "job {} is no longer held by this worker",
                self.job.id
            )))
        }
    }
}

/// The handler registry and the runner's wake-up call, shared by the instance.
#[derive(Default)]
pub struct Jobs {
    handlers: RwLock<HashMap<String, Arc<dyn Handler>>>,
    wake: Notify,
}

impl Jobs {
    /// Registers (or replaces) the handler of `kind`; this instance claims jobs of that kind
    /// from its next poll on.
    pub fn register(&self, kind: impl Into<String>, handler: impl Handler) {
        let mut handlers = match self.handlers.write() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        handlers.insert(kind.into(), Arc::new(handler));
        drop(handlers);
        self.wake();
    }

    /// The handler of `kind`.
    pub fn handler(&self, kind: &str) -> Option<Arc<dyn Handler>> {
        let handlers = match self.handlers.read() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        handlers.get(kind).cloned()
    }

    /// The kinds with a handler.
    pub fn kinds(&self) -> Vec<String> {
        let handlers = match self.handlers.read() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut kinds: Vec<String> = handlers.keys().cloned().collect();
        kinds.sort();
        kinds
    }

    /// Tells this instance's runner to look for due jobs now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }
}
