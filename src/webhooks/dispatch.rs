//! Delivery of events to webhook subscriptions, from the event log, through durable jobs.
//!
//! Every enabled subscription has one `webhook.dispatch` job (created with the subscription and
//! again when it is enabled; its id is kept on the subscription, and a job that finds another
//! one named there, or its subscription disabled or deleted, ends). A run of that job:
//!
//! 1. turns events of the types the subscription wants, after its cursor, into deliveries
//!    (`PENDING`, with the event's sequence) and moves the cursor, in one transaction — the
//!    cursor starts at the log's end when the subscription is created or enabled again, so it
//!    gets the events from then on;
//! 2. sends the pending deliveries one after the other in event order, recording each attempt
//!    (a batch's attempts in one transaction), and stops at the first failure: the failed
//!    delivery is retried after the next wait of `webhook_retry_schedule` (or the receiver's
//!    `Retry-After`, when longer, up to a day), and later deliveries wait behind it, so a
//!    subscription receives its events in order. A delivery whose retries are used up fails and
//!    disables the subscription with the reason; `410 Gone` disables it at once;
//! 3. defers itself: to the head delivery's next attempt, or, when there is nothing to send, by
//!    `webhook_idle_seconds`.
//!
//! Delivery is at least once: a crash between a receiver's answer and the commit of the attempt
//! sends that delivery again (with the same `webhook-id`, so receivers can drop duplicates).
//!
//! Each instance runs a [`Waker`]: it follows committed events on the event bus (on PostgreSQL
//! those of every instance) and makes the dispatch jobs of subscriptions that want them due at
//! once, so events go out without waiting for the idle interval. It knows the enabled
//! subscriptions from memory (read again when a subscription changes, and every minute).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use entity::{event, job};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::service::{self, OnFailure};
use crate::clock::Clock;
use crate::db;
use crate::error::AppResult;
use crate::graphql::relay::encode_id;
use crate::jobs::{self, JobContext, JobError, JobResult, JobStatus, Jobs, NewJob, Outcome};
use crate::live::EventBus;

use entity::webhook_delivery as delivery;
use entity::webhook_subscription as subscription;

/// Kind of the job that dispatches a subscription's deliveries.
pub const DISPATCH: &str = "webhook.dispatch";

/// Events turned into deliveries per transaction.
const EVENTS_PER_BATCH: u64 = 500;
/// Deliveries sent between two commits of their attempts.
const SENDS_PER_BATCH: u64 = 100;
/// How long one run of a dispatch job may go on before it lets other jobs run.
const SLICE: StdDuration = StdDuration::from_secs(15);
/// Longest wait a receiver's `Retry-After` can ask for.
const MAX_RETRY_AFTER: Duration = Duration::days(1);
/// How often the waker reads the enabled subscriptions again when none changed.
const REFRESH_EVERY: StdDuration = StdDuration::from_secs(60);
/// Attempts a dispatch job gets for its own faults (database errors), not the receiver's.
const DISPATCH_ATTEMPTS: i32 = 1_000;

/// The event log's last sequence (0 when empty).
async fn log_end<C: ConnectionTrait>(conn: &C) -> AppResult<i64> {
    let end: Option<Option<i64>> = event::Entity::find()
        .select_only()
        .column_as(event::Column::Seq.max(), "end")
        .into_tuple()
        .one(conn)
        .await?;
    Ok(end.flatten().unwrap_or(0))
}

/// Makes sure an enabled subscription has its dispatch job, inside the caller's transaction:
/// keeps a queued one (making it due now) and otherwise starts a new one. With
/// `from_log_end`, the subscription's cursor moves to the log's end (created or enabled again:
/// it gets the events from now on). Returns the subscription as stored.
pub async fn ensure_dispatcher<C: ConnectionTrait>(
    conn: &C,
    model: subscription::Model,
    from_log_end: bool,
    now: DateTime<Utc>,
) -> AppResult<subscription::Model> {
    if !model.enabled {
        return Ok(model);
    }
    let queued = match model.dispatch_job_id {
        Some(id) => job::Entity::update_many()
            .col_expr(job::Column::RunAt, Expr::value(now))
            .filter(job::Column::Id.eq(id))
            .filter(job::Column::Status.eq(JobStatus::Queued.as_str()))
            .exec(conn)
            .await?
            .rows_affected
            .eq(&1),
        None => false,
    };
    let job_id = if queued {
        model.dispatch_job_id
    } else {
        let job = jobs::enqueue(
            conn,
            NewJob::new(DISPATCH, json!({ "subscriptionId": model.id }))
                .org(model.org_id)
                .at(now)
                .attempts(DISPATCH_ATTEMPTS),
        )
        .await?;
        Some(job.id)
    };
    if !from_log_end && job_id == model.dispatch_job_id {
        return Ok(model);
    }
    let cursor = if from_log_end {
        log_end(conn).await?
    } else {
        model.cursor_seq
    };
    let mut active = model.into_active_model();
    active.dispatch_job_id = Set(job_id);
    active.cursor_seq = Set(cursor);
    Ok(active.update(conn).await?)
}

/// Registers the dispatch handler.
pub fn register(jobs: &Jobs) {
    jobs.register(DISPATCH, dispatch);
}

fn subscription_id(payload: &Value) -> Result<Uuid, JobError> {
    payload["subscriptionId"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| JobError::Permanent("the job's payload has no subscriptionId".into()))
}

/// One run of a subscription's dispatch job (see the module documentation).
async fn dispatch(ctx: JobContext) -> JobResult {
    let id = subscription_id(&ctx.job.payload)?;
    let started = Instant::now();
    loop {
        let Some(sub) = subscription::Entity::find_by_id(id).one(&ctx.db).await? else {
            return Ok(Outcome::Done);
        };
        if !sub.enabled || sub.dispatch_job_id != Some(ctx.job.id) {
            return Ok(Outcome::Done);
        }
        let more_events = materialize(&ctx, &sub).await?;
        let pending = pending(&ctx.db, sub.id).await?;
        let now = ctx.now();
        match pending.first() {
            None if more_events => continue,
            None => {
                let idle = i64::try_from(ctx.config.webhook_idle_seconds.max(1)).unwrap_or(60);
                return Ok(Outcome::Defer {
                    at: now + Duration::seconds(idle),
                    payload: None,
                });
            }
            Some(head) => {
                if let Some(at) = head.next_attempt_at.filter(|at| *at > now) {
                    return Ok(Outcome::Defer { at, payload: None });
                }
            }
        }
        if send(&ctx, &sub, pending).await? {
            return Ok(Outcome::Done);
        }
        if started.elapsed() >= SLICE {
            return Ok(Outcome::Defer {
                at: ctx.now(),
                payload: None,
            });
        }
    }
}

/// A delivery's body: Standard Webhooks' `{type, timestamp, data}`.
fn body(event: &event::Model) -> Value {
    json!({
        "type": event.event_type,
        "timestamp": event.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": {
            "eventId": event.id,
            "sequence": event.seq,
            "organizationId": encode_id("Organization", event.org_id).0,
            "subject": {
                "type": event.subject_type,
                "id": encode_id(&event.subject_type, event.subject_id).0,
            },
            "actorId": event.actor_user_id.map(|id| encode_id("User", id).0),
            "details": event.payload,
        },
    })
}

/// Turns the next events the subscription wants into deliveries and moves its cursor. Returns
/// whether there may be more.
async fn materialize(ctx: &JobContext, sub: &subscription::Model) -> AppResult<bool> {
    let end = log_end(&ctx.db).await?;
    if end <= sub.cursor_seq {
        return Ok(false);
    }
    let types: Vec<String> = serde_json::from_value(sub.event_types.clone()).unwrap_or_default();
    // Events commit in sequence order (one writer at a time), so every event up to `end` is
    // visible now.
    let events = event::Entity::find()
        .filter(event::Column::OrgId.eq(sub.org_id))
        .filter(event::Column::Seq.gt(sub.cursor_seq))
        .filter(event::Column::Seq.lte(end))
        .filter(event::Column::EventType.is_in(types))
        .order_by_asc(event::Column::Seq)
        .limit(EVENTS_PER_BATCH)
        .all(&ctx.db)
        .await?;
    let full = events.len() as u64 == EVENTS_PER_BATCH;
    let cursor = match events.last() {
        Some(last) if full => last.seq,
        _ => end,
    };
    let now = ctx.now();
    let txn = db::begin_write(&ctx.db).await?;
    // Fenced by the cursor read: a dispatcher that lost the subscription writes nothing.
    let moved = subscription::Entity::update_many()
        .col_expr(subscription::Column::CursorSeq, Expr::value(cursor))
        .filter(subscription::Column::Id.eq(sub.id))
        .filter(subscription::Column::CursorSeq.eq(sub.cursor_seq))
        .filter(subscription::Column::DispatchJobId.eq(ctx.job.id))
        .exec(&txn)
        .await?
        .rows_affected;
    if moved != 1 {
        return Ok(false);
    }
    if !events.is_empty() {
        let rows = events.iter().map(|event| {
            service::new_delivery(
                sub,
                Some((event.id, event.seq)),
                &event.event_type,
                body(event),
                now,
            )
        });
        delivery::Entity::insert_many(rows).exec(&txn).await?;
    }
    txn.commit().await?;
    Ok(full)
}

/// The subscription's next pending deliveries, in event order.
async fn pending(db: &DatabaseConnection, id: Uuid) -> AppResult<Vec<delivery::Model>> {
    Ok(delivery::Entity::find()
        .filter(delivery::Column::SubscriptionId.eq(id))
        .filter(delivery::Column::Status.eq("PENDING"))
        .filter(delivery::Column::EventSeq.is_not_null())
        .order_by_asc(delivery::Column::EventSeq)
        .order_by_asc(delivery::Column::Id)
        .limit(SENDS_PER_BATCH)
        .all(db)
        .await?)
}

/// When a delivery that failed its `attempts`-th attempt is tried next, or why it gives up.
fn after_failure(
    schedule: &[u64],
    delivery: &delivery::Model,
    retry_after: Option<Duration>,
    now: DateTime<Utc>,
    error: &str,
) -> OnFailure {
    let failed = usize::try_from(delivery.attempts + 1).unwrap_or(usize::MAX);
    match schedule.get(failed - 1) {
        Some(&wait) => {
            let wait = Duration::seconds(i64::try_from(wait).unwrap_or(i64::MAX / 1_000_000));
            let asked = retry_after.map(|r| r.min(MAX_RETRY_AFTER));
            OnFailure::RetryAt(now + asked.map_or(wait, |asked| asked.max(wait)))
        }
        None => OnFailure::GiveUp(format!(
            "the {} delivery (event {}) failed {failed} times since {}; the last error: {error}",
            delivery.event_type,
            delivery.event_seq.unwrap_or_default(),
            delivery
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )),
    }
}

/// Sends `pending` in order until one fails, then records the attempts in one transaction.
/// Returns whether the subscription was disabled.
async fn send(
    ctx: &JobContext,
    sub: &subscription::Model,
    pending: Vec<delivery::Model>,
) -> AppResult<bool> {
    let mut sent = Vec::with_capacity(pending.len());
    for delivery in pending {
        if delivery.next_attempt_at.is_some_and(|at| at > ctx.now()) {
            break;
        }
        let body = serde_json::to_vec(&delivery.payload).unwrap_or_default();
        let outcome = service::post(&ctx.config, sub, delivery.id, &body).await;
        let succeeded = outcome.succeeded();
        sent.push((delivery, outcome, ctx.now()));
        if !succeeded {
            break;
        }
    }
    let txn = db::begin_write(&ctx.db).await?;
    let mut disabled = false;
    for (delivery, outcome, at) in sent {
        let on_failure = if outcome.succeeded() {
            OnFailure::Fail
        } else {
            let error = outcome
                .error
                .clone()
                .or_else(|| {
                    outcome
                        .status_code
                        .map(|s| format!("the receiver answered {s}"))
                })
                .unwrap_or_default();
            after_failure(
                &ctx.config.webhook_retry_schedule,
                &delivery,
                outcome.retry_after,
                at,
                &error,
            )
        };
        let (_, now_disabled) =
            service::settle(&txn, sub, delivery, outcome, at, on_failure).await?;
        disabled |= now_disabled;
    }
    txn.commit().await?;
    if disabled {
        ctx.committed();
    }
    Ok(disabled)
}

/// The enabled subscriptions of every organization, as the waker knows them.
#[derive(Default)]
struct Known {
    /// Organization → (dispatch job, event types wanted).
    by_org: HashMap<Uuid, Vec<(Uuid, HashSet<String>)>>,
}

impl Known {
    async fn load(db: &DatabaseConnection) -> AppResult<Self> {
        let rows: Vec<(Uuid, Option<Uuid>, Value)> = subscription::Entity::find()
            .select_only()
            .column(subscription::Column::OrgId)
            .column(subscription::Column::DispatchJobId)
            .column(subscription::Column::EventTypes)
            .filter(subscription::Column::Enabled.eq(true))
            .into_tuple()
            .all(db)
            .await?;
        let mut by_org: HashMap<Uuid, Vec<(Uuid, HashSet<String>)>> = HashMap::new();
        for (org, job, types) in rows {
            let Some(job) = job else { continue };
            let types: HashSet<String> = serde_json::from_value(types).unwrap_or_default();
            by_org.entry(org).or_default().push((job, types));
        }
        Ok(Self { by_org })
    }

    fn jobs_for(&self, event: &event::Model, into: &mut HashSet<Uuid>) {
        if let Some(subscriptions) = self.by_org.get(&event.org_id) {
            for (job, types) in subscriptions {
                if types.contains(&event.event_type) {
                    into.insert(*job);
                }
            }
        }
    }

    fn all_jobs(&self) -> HashSet<Uuid> {
        self.by_org
            .values()
            .flat_map(|subs| subs.iter().map(|(job, _)| *job))
            .collect()
    }
}

/// Makes dispatch jobs due as soon as events they want commit (see the module documentation).
pub struct Waker {
    /// Database (the bus's small pool).
    pub db: DatabaseConnection,
    /// Committed events.
    pub bus: Arc<EventBus>,
    /// This instance's job runner, told when jobs became due.
    pub jobs: Arc<Jobs>,
    /// The clock jobs are due by.
    pub clock: Arc<Clock>,
}

impl Waker {
    /// Starts following the bus.
    pub fn start(self) -> JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(self) {
        let mut events = self.bus.subscribe();
        let mut known: Option<(Known, Instant)> = None;
        loop {
            let mut batch = Vec::new();
            let mut lagged = false;
            match events.recv().await {
                Ok(event) => batch.push(event),
                Err(RecvError::Lagged(_)) => lagged = true,
                Err(RecvError::Closed) => return,
            }
            loop {
                match events.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
                    Err(_) => break,
                }
            }
            let changed = batch
                .iter()
                .any(|e| e.event_type.starts_with("WEBHOOK_SUBSCRIPTION_"));
            if changed
                || known
                    .as_ref()
                    .is_none_or(|(_, at)| at.elapsed() >= REFRESH_EVERY)
            {
                match Known::load(&self.db).await {
                    Ok(loaded) => known = Some((loaded, Instant::now())),
                    Err(error) => tracing::warn!(?error, "cannot read webhook subscriptions"),
                }
            }
            let Some((known, _)) = &known else { continue };
            let targets = if lagged {
                known.all_jobs()
            } else {
                let mut targets = HashSet::new();
                for event in &batch {
                    known.jobs_for(event, &mut targets);
                }
                targets
            };
            if targets.is_empty() {
                continue;
            }
            // A dispatch job running now may be about to go idle without these events: try
            // again a moment later for those that were not waiting.
            let woken = self.wake(&targets).await;
            if woken < targets.len() as u64 {
                tokio::time::sleep(StdDuration::from_millis(250)).await;
                self.wake(&targets).await;
            }
        }
    }

    /// Makes the queued ones of `targets` due now; returns how many were.
    async fn wake(&self, targets: &HashSet<Uuid>) -> u64 {
        let now = self.clock.now();
        let result = job::Entity::update_many()
            .col_expr(job::Column::RunAt, Expr::value(now))
            .filter(job::Column::Id.is_in(targets.iter().copied()))
            .filter(job::Column::Status.eq(JobStatus::Queued.as_str()))
            .filter(job::Column::RunAt.gt(now))
            .exec(&self.db)
            .await;
        match result {
            Ok(done) => {
                if done.rows_affected > 0 {
                    self.jobs.wake();
                }
                done.rows_affected
            }
            Err(error) => {
                tracing::warn!(?error, "cannot wake webhook dispatch jobs");
                0
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn delivery(attempts: i32) -> delivery::Model {
        delivery::Model {
            id: Uuid::nil(),
            org_id: Uuid::nil(),
            subscription_id: Uuid::nil(),
            event_id: None,
            event_seq: Some(7),
            event_type: "CONVERSATION_CREATED".into(),
            payload: json!({}),
            status: "PENDING".into(),
            attempts,
            next_attempt_at: None,
            last_status_code: None,
            last_error: None,
            created_at: DateTime::from_timestamp(0, 0).unwrap(),
            updated_at: DateTime::from_timestamp(0, 0).unwrap(),
            delivered_at: None,
        }
    }

    #[test]
    fn retries_follow_the_schedule_then_give_up() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        let schedule = [5, 300];
        let at = |on: OnFailure| match on {
            OnFailure::RetryAt(at) => Some((at - now).num_seconds()),
            _ => None,
        };
        assert_eq!(
            at(after_failure(&schedule, &delivery(0), None, now, "x")),
            Some(5)
        );
        assert_eq!(
            at(after_failure(&schedule, &delivery(1), None, now, "x")),
            Some(300)
        );
        // Retry-After asks for longer: honoured; shorter: the schedule's wait stands.
        assert_eq!(
            at(after_failure(
                &schedule,
                &delivery(0),
                Some(Duration::seconds(120)),
                now,
                "x"
            )),
            Some(120)
        );
        assert_eq!(
            at(after_failure(
                &schedule,
                &delivery(1),
                Some(Duration::seconds(1)),
                now,
                "x"
            )),
            Some(300)
        );
        // At most a day.
        assert_eq!(
            at(after_failure(
                &schedule,
                &delivery(0),
                Some(Duration::days(30)),
                now,
                "x"
            )),
            Some(86_400)
        );
        match after_failure(
            &schedule,
            &delivery(2),
            None,
            now,
            "the receiver answered 500",
        ) {
            OnFailure::GiveUp(reason) => assert_eq!(
                reason,
                "the CONVERSATION_CREATED delivery (event 7) failed 3 times since \
                 1970-01-01T00:00:00Z; the last error: the receiver answered 500"
            ),
            _ => panic!("gives up"),
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(service::retry_after("30"), Some(Duration::seconds(30)));
        assert_eq!(
            service::retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::zero())
        );
        assert_eq!(service::retry_after("soon"), None);
    }
}
