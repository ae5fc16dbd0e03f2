//! The job table's statements: claim, lease renewal, and the fenced changes that end, retry,
//! defer or release a claimed job. Every change after the claim names the claim's `lease_owner`
//! and touches nothing when another claim holds the job.

use chrono::{DateTime, Duration, Utc};
use entity::job::{self, Column};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Value,
};
use serde_json::Value as Json;
use uuid::Uuid;

use super::JobStatus;
use crate::error::AppResult;

/// The two kinds of jobs a claim may take at `now`: running under an expired lease (their
/// instance died), and queued and due. Each is claimed by its own statement, so that each walks
/// its own index (`(status, lease_expires_at)`, `(status, run_at)`) in order and stops at the
/// limit: one statement with both under an `OR` made both databases gather every queued job and
/// sort them, a scan of the whole queue per claim.
fn claimable(now: DateTime<Utc>) -> [(Condition, Column); 2] {
    [
        (
            Condition::all()
                .add(Column::Status.eq(JobStatus::Running.as_str()))
                .add(Column::LeaseExpiresAt.lte(now)),
            Column::LeaseExpiresAt,
        ),
        (
            Condition::all()
                .add(Column::Status.eq(JobStatus::Queued.as_str()))
                .add(Column::RunAt.lte(now)),
            Column::RunAt,
        ),
    ]
}

/// Claims up to `limit` due jobs of `kinds` for `owner` until `lease_until`, counting an attempt
/// each: first those whose lease expired, then queued ones, earliest first. Two statements; on
/// PostgreSQL their inner selects skip rows other claims have locked, on SQLite each statement
/// holds the write lock throughout.
pub async fn claim<C: ConnectionTrait>(
    conn: &C,
    kinds: &[String],
    limit: u64,
    owner: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> AppResult<Vec<job::Model>> {
    if kinds.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let backend = conn.get_database_backend();
    let mut jobs = Vec::new();
    for (condition, order) in claimable(now) {
        let wanted = limit.saturating_sub(jobs.len() as u64);
        if wanted == 0 {
            break;
        }
        let mut select = Query::select();
        select
            .column(Column::Id)
            .from(job::Entity)
            .cond_where(condition)
            .and_where(Column::Kind.is_in(kinds.iter().cloned()))
            .order_by(order, sea_orm::Order::Asc)
            .limit(wanted);
        if backend == DbBackend::Postgres {
            select.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let update = Query::update()
            .table(job::Entity)
            .value(Column::Status, JobStatus::Running.as_str())
            .value(Column::LeaseOwner, owner)
            .value(Column::LeaseExpiresAt, Value::from(lease_until))
            .value(Column::UpdatedAt, Value::from(now))
            .value(Column::Attempts, Expr::col(Column::Attempts).add(1))
            // Only the ids: the select already chose rows in the claimable state (on PostgreSQL
            // it rechecks them when it locks them; on SQLite the statement holds the write
            // lock). Repeating the condition here let SQLite drive the update from it, walking
            // every due job's index entry and row to test `id IN (…)`: a scan of the whole
            // queue per claim (100,000 queued broadcast deliveries, ~50 messages/s).
            .and_where(Column::Id.in_subquery(select))
            .returning_all()
            .to_owned();
        let statement = backend.build(&update);
        jobs.extend(
            job::Entity::find()
                .from_raw_sql(statement)
                .all(conn)
                .await?,
        );
    }
    jobs.sort_by_key(|j| (j.run_at, j.id));
    Ok(jobs)
}

/// The filter of one claim's job.
fn held(id: Uuid, owner: &str) -> Condition {
    Condition::all()
        .add(Column::Id.eq(id))
        .add(Column::LeaseOwner.eq(owner))
        .add(Column::Status.eq(JobStatus::Running.as_str()))
}

/// Extends the lease of `owner`'s job to `until`; false when the lease is lost.
pub async fn renew<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    owner: &str,
    until: DateTime<Utc>,
) -> AppResult<bool> {
    let result = job::Entity::update_many()
        .col_expr(Column::LeaseExpiresAt, Expr::value(Some(until)))
        .filter(held(id, owner))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Ends `owner`'s job as `status` (`SUCCEEDED` or `FAILED`) with `error`; false when the lease is
/// lost (or the job already ended).
pub async fn end<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    owner: &str,
    status: JobStatus,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let mut update = job::Entity::update_many()
        .col_expr(Column::Status, Expr::value(status.as_str()))
        .col_expr(Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(
            Column::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(Column::FinishedAt, Expr::value(Some(now)))
        .col_expr(Column::UpdatedAt, Expr::value(now));
    if let Some(error) = error {
        update = update.col_expr(Column::LastError, Expr::value(Some(error.to_string())));
    }
    let result = update.filter(held(id, owner)).exec(conn).await?;
    Ok(result.rows_affected == 1)
}

/// How a claimed job goes back to the queue.
#[derive(Clone, Debug, Default)]
pub struct Requeue {
    /// When it runs again.
    pub at: DateTime<Utc>,
    /// A retry keeps its attempt; a deferral or a release gives it back.
    pub counted: bool,
    /// The error of the failed attempt (retries).
    pub error: Option<String>,
    /// The payload to run with then, when it changes.
    pub payload: Option<Json>,
}

/// Puts `owner`'s job back in the queue as `how` says; false when the lease is lost.
pub async fn requeue<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    owner: &str,
    how: Requeue,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let mut update = job::Entity::update_many()
        .col_expr(Column::Status, Expr::value(JobStatus::Queued.as_str()))
        .col_expr(Column::RunAt, Expr::value(how.at))
        .col_expr(Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(
            Column::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(Column::UpdatedAt, Expr::value(now));
    if !how.counted {
        update = update.col_expr(Column::Attempts, Expr::col(Column::Attempts).sub(1));
    }
    if let Some(error) = how.error {
        update = update.col_expr(Column::LastError, Expr::value(Some(error)));
    }
    if let Some(payload) = how.payload {
        update = update.col_expr(Column::Payload, Expr::value(payload));
    }
    let result = update.filter(held(id, owner)).exec(conn).await?;
    Ok(result.rows_affected == 1)
}

/// Deletes jobs that succeeded before `before`; returns how many.
pub async fn sweep<C: ConnectionTrait>(conn: &C, before: DateTime<Utc>) -> AppResult<u64> {
    let result = job::Entity::delete_many()
        .filter(Column::Status.eq(JobStatus::Succeeded.as_str()))
        .filter(Column::FinishedAt.lt(before))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

/// The delay before retry number `attempt` (1 after the first failure): `base · 2^(attempt−1)`,
/// at most `max`.
pub fn backoff(attempt: i32, base: Duration, max: Duration) -> Duration {
    let exponent = attempt.saturating_sub(1).clamp(0, 30) as u32;
    let factor = 1_i32 << exponent;
    base.checked_mul(factor).map_or(max, |delay| delay.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::milliseconds(500);
        let max = Duration::seconds(3);
        let delays: Vec<i64> = (1..=6)
            .map(|a| backoff(a, base, max).num_milliseconds())
            .collect();
        assert_eq!(delays, [500, 1_000, 2_000, 3_000, 3_000, 3_000]);
        assert_eq!(backoff(1_000, base, max), max);
    }
}
