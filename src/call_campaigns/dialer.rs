//! The dialer: durable jobs that place a campaign's calls.
//!
//! One `call_campaign.dial` job per campaign holds the campaign's `job_token` (an older job that
//! finds another token — the campaign was halted, resumed or rescheduled — stops). Each run, in one
//! write transaction: a waiting campaign whose start time came becomes `ACTIVE`; outside the
//! active window (times of day and weekdays in the organization's timezone) the job defers itself
//! to the next opening; inside it, up to [`BATCH`] receivers that are due (pending, their next
//! dial time passed) are marked `DIALING` in one statement and dialled through the calls service.
//! Calls on the simulator end inside the dial (the calls service runs
//! [`super::service::call_finished`] in the same transaction), others end later through the
//! provider's reports. Then the job runs again at once (a full batch), at the next receiver's
//! redial time, or — when only calls going on are left — it ends and leaves `job_token` empty:
//! a redial scheduled when such a call ends queues a new job. A `call_campaign.end` job completes
//! the campaign at its end time, whatever its state.

use std::cell::RefCell;
use std::collections::HashMap;

use chrono::{
    DateTime, Datelike, Days, Duration, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use entity::{call_campaign, call_campaign_receiver, channel};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::service::{complete, record, state_of, stats_payload, weekdays_of};
use super::{CompletionReason, ReceiverStatus, State, event_types};
use crate::channels::service::Weekday;
use crate::db;
use crate::error::AppResult;
use crate::jobs::{JobContext, JobError, JobResult, Jobs, Outcome};

/// Kind of the job that dials a campaign's due receivers.
pub const DIAL: &str = "call_campaign.dial";
/// Kind of the job that completes a campaign at its end time.
pub const END: &str = "call_campaign.end";
/// Receivers dialled per transaction. Write transactions run one at a time: a batch holds up
/// every other writer while it runs, so batches stay short.
pub const BATCH: u64 = 200;

/// When a campaign may dial: a daily window on some weekdays, in a timezone.
#[derive(Clone, Debug)]
pub struct Window {
    /// Opening, seconds since local midnight.
    pub from: i32,
    /// Closing (excluded), seconds since local midnight, up to 86400.
    pub to: i32,
    /// Days it opens.
    pub weekdays: Vec<Weekday>,
    /// The organization's timezone.
    pub tz: Tz,
}

impl Window {
    /// The window of `model` in `timezone` (UTC when it is not a known IANA name).
    pub fn of(model: &call_campaign::Model, timezone: &str) -> Self {
        Self {
            from: model.active_from,
            to: model.active_to,
            weekdays: weekdays_of(model),
            tz: timezone.parse().unwrap_or(Tz::UTC),
        }
    }

    /// Whether calls may be placed at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.tz);
        let seconds = i32::try_from(local.num_seconds_from_midnight()).unwrap_or(0);
        self.weekdays.contains(&Weekday::from(local.weekday()))
            && self.from <= seconds
            && seconds < self.to
    }

    /// The first opening after `at` (a week on when no weekday is set).
    pub fn next_opening(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let date = at.with_timezone(&self.tz).date_naive();
        let from =
            NaiveTime::from_num_seconds_from_midnight_opt(u32::try_from(self.from).unwrap_or(0), 0)
                .unwrap_or(NaiveTime::MIN);
        for days in 0..=7u64 {
            let Some(day) = date.checked_add_days(Days::new(days)) else {
                break;
            };
            if !self.weekdays.contains(&Weekday::from(day.weekday())) {
                continue;
            }
            let opening = self.utc(day.and_time(from));
            if opening > at {
                return opening;
            }
        }
        at + Duration::days(7)
    }

    /// `local` in UTC; a time skipped by a daylight-saving change moves on to the first that
    /// exists.
    fn utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let mut local = local;
        for _ in 0..4 {
            if let Some(at) = self.tz.from_local_datetime(&local).earliest() {
                return at.with_timezone(&Utc);
            }
            local += Duration::minutes(30);
        }
        Utc.from_utc_datetime(&local)
    }
}

/// Registers the dialer's job handlers.
pub fn register(jobs: &Jobs) {
    jobs.register(DIAL, dial);
    jobs.register(END, end);
}

fn payload_id(payload: &Value, key: &str) -> Result<Uuid, JobError> {
    payload[key]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| JobError::Permanent(format!("the job's payload has no {key}")))
}

async fn timezone<C: ConnectionTrait>(conn: &C, org_id: Uuid) -> AppResult<String> {
    Ok(entity::organization::Entity::find_by_id(org_id)
        .one(conn)
        .await?
        .map(|o| o.timezone)
        .unwrap_or_else(|| "UTC".into()))
}

/// What the dialer asks the calls service for.
pub struct DialRequest<'a> {
    /// The channel to dial from.
    pub channel: &'a channel::Model,
    /// The receiver.
    pub receiver: &'a call_campaign_receiver::Model,
    /// When.
    pub at: DateTime<Utc>,
}

/// Places one campaign call through the calls service (on the simulator it has ended when this
/// returns, and [`super::service::call_finished`] ran).
async fn place<C: ConnectionTrait>(
    conn: &C,
    request: DialRequest<'_>,
) -> AppResult<entity::call::Model> {
    crate::calls::service::dial(
        conn,
        crate::calls::service::Dial {
            channel: request.channel.clone(),
            to: request.receiver.phone_number.clone(),
            contact_id: request.receiver.contact_id,
            campaign_id: request.receiver.campaign_id,
            campaign_receiver_id: request.receiver.id,
            at: request.at,
        },
    )
    .await
}

/// The campaign and receivers of the batch a dialer transaction is dialling, so that
/// [`super::service::call_finished`] (run by the calls service inside each dial) neither reads
/// them again nor writes the campaign's counters per call.
struct Batch {
    campaign: call_campaign::Model,
    receivers: HashMap<Uuid, call_campaign_receiver::Model>,
}

tokio::task_local! {
    static BATCH_CONTEXT: RefCell<Option<Batch>>;
}

/// The batch's campaign and receiver, when `call_finished` runs inside a dialer batch of
/// `campaign_id` that dials `receiver_id`.
pub(crate) fn cached(
    campaign_id: Uuid,
    receiver_id: Uuid,
) -> Option<(call_campaign::Model, call_campaign_receiver::Model)> {
    BATCH_CONTEXT
        .try_with(|b| {
            let b = b.borrow();
            let b = b.as_ref()?;
            if b.campaign.id != campaign_id {
                return None;
            }
            Some((b.campaign.clone(), b.receivers.get(&receiver_id)?.clone()))
        })
        .ok()
        .flatten()
}

/// Keeps the campaign and a receiver as `call_finished` left them.
pub(crate) fn remember(campaign: call_campaign::Model, receiver: call_campaign_receiver::Model) {
    let _ = BATCH_CONTEXT.try_with(|b| {
        if let Some(b) = b.borrow_mut().as_mut() {
            b.campaign = campaign;
            b.receivers.insert(receiver.id, receiver);
        }
    });
}

/// Keeps the campaign as `call_finished` left it (completed).
pub(crate) fn remember_campaign(campaign: call_campaign::Model) {
    let _ = BATCH_CONTEXT.try_with(|b| {
        if let Some(b) = b.borrow_mut().as_mut() {
            b.campaign = campaign;
        }
    });
}

/// Dials `due` from `channel` at `now`; calls still going on get their receiver's latest call.
async fn dial_all<C: ConnectionTrait>(
    conn: &C,
    channel: &channel::Model,
    due: &[call_campaign_receiver::Model],
    now: DateTime<Utc>,
) -> AppResult<()> {
    use call_campaign_receiver::Column as R;
    for receiver in due {
        let mut receiver = receiver.clone();
        receiver.dial_count += 1;
        receiver.status = ReceiverStatus::Dialing.as_str().into();
        let call = place(
            conn,
            DialRequest {
                channel,
                receiver: &receiver,
                at: now,
            },
        )
        .await?;
        if call.ended_at.is_none() {
            // Going on: its end comes through the provider's reports.
            call_campaign_receiver::Entity::update_many()
                .col_expr(R::LatestCallId, Expr::value(Some(call.id)))
                .filter(R::Id.eq(receiver.id))
                .exec(conn)
                .await?;
        }
    }
    Ok(())
}

/// One run of a campaign's dialer (see the module documentation).
async fn dial(ctx: JobContext) -> JobResult {
    let id = payload_id(&ctx.job.payload, "campaignId")?;
    let token = payload_id(&ctx.job.payload, "token")?;
    let now = ctx.now();
    let txn = db::begin_write(&ctx.db).await?;
    let Some(mut campaign) = call_campaign::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .filter(|c| c.job_token == Some(token))
    else {
        // Deleted, halted, resumed or rescheduled: this job is stale.
        return Ok(Outcome::Done);
    };
    let mut changed = false;
    match state_of(&campaign) {
        State::Complete | State::Halted => return Ok(Outcome::Done),
        State::WaitingToActive => {
            let start = campaign.start_time.unwrap_or(now);
            if start > now {
                return Ok(Outcome::Defer {
                    at: start,
                    payload: None,
                });
            }
            let mut model = campaign.into_active_model();
            model.state = Set(State::Active.as_str().into());
            model.started_at = Set(Some(now));
            model.updated_at = Set(now);
            campaign = model.update(&txn).await?;
            let mut payload = stats_payload(&campaign);
            payload["from"] = json!(State::WaitingToActive.as_str());
            record(&txn, &campaign, None, event_types::STATE_CHANGED, payload).await?;
            changed = true;
        }
        State::Active => {}
    }
    if now >= campaign.end_time {
        complete(&txn, campaign, CompletionReason::EndTimePassed, now).await?;
        ctx.complete_in(&txn).await?;
        txn.commit().await?;
        ctx.committed();
        return Ok(Outcome::Done);
    }
    let window = Window::of(&campaign, &timezone(&txn, campaign.org_id).await?);
    if !window.is_open(now) {
        let at = std::cmp::min(window.next_opening(now), campaign.end_time);
        if changed {
            txn.commit().await?;
            ctx.committed();
        }
        return Ok(Outcome::Defer { at, payload: None });
    }
    let channel = match campaign.channel_id {
        Some(channel_id) => channel::Entity::find_by_id(channel_id)
            .one(&txn)
            .await?
            .filter(|c| c.status == "ACTIVE"),
        None => None,
    };
    let Some(channel) = channel else {
        let mut model = campaign.into_active_model();
        model.state = Set(State::Halted.as_str().into());
        model.halted_at = Set(Some(now));
        model.job_token = Set(None);
        model.updated_at = Set(now);
        let halted = model.update(&txn).await?;
        let mut payload = stats_payload(&halted);
        payload["from"] = json!(State::Active.as_str());
        payload["reason"] = json!("the campaign's channel was archived or deleted");
        record(&txn, &halted, None, event_types::STATE_CHANGED, payload).await?;
        ctx.complete_in(&txn).await?;
        txn.commit().await?;
        ctx.committed();
        return Ok(Outcome::Done);
    };

    // With a target, a batch dials at most the accepts still wanted: the target is reached at
    // the batch's last call at the earliest, so no call is placed after the campaign completed.
    let limit = match campaign.accepts_wanted {
        Some(wanted) => (i64::from(wanted) - campaign.accepts).clamp(1, BATCH as i64) as u64,
        None => BATCH,
    };
    use call_campaign_receiver::Column as R;
    let due = call_campaign_receiver::Entity::find()
        .filter(R::CampaignId.eq(id))
        .filter(R::Status.eq(ReceiverStatus::Pending.as_str()))
        .filter(R::NextDialAt.lte(now))
        .order_by_asc(R::NextDialAt)
        .order_by_asc(R::Id)
        .limit(limit)
        .all(&txn)
        .await?;
    if !due.is_empty() {
        let ids: Vec<Uuid> = due.iter().map(|r| r.id).collect();
        call_campaign_receiver::Entity::update_many()
            .col_expr(R::Status, Expr::value(ReceiverStatus::Dialing.as_str()))
            .col_expr(R::DialCount, Expr::col(R::DialCount).add(1))
            .col_expr(R::LatestCallAt, Expr::value(Some(now)))
            .col_expr(R::NextDialAt, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(R::UpdatedAt, Expr::value(now))
            .filter(R::Id.is_in(ids))
            .exec(&txn)
            .await?;
        let mut batch = Batch {
            campaign: campaign.clone(),
            receivers: HashMap::with_capacity(due.len()),
        };
        batch.campaign.dialed += i64::try_from(due.len()).unwrap_or(i64::MAX);
        batch.campaign.updated_at = now;
        for receiver in &due {
            let mut receiver = receiver.clone();
            receiver.dial_count += 1;
            receiver.status = ReceiverStatus::Dialing.as_str().into();
            receiver.latest_call_at = Some(now);
            receiver.next_dial_at = None;
            receiver.updated_at = now;
            batch.receivers.insert(receiver.id, receiver);
        }
        let (batch, placed) = BATCH_CONTEXT
            .scope(RefCell::new(Some(batch)), async {
                let placed = dial_all(&txn, &channel, &due, now).await;
                (BATCH_CONTEXT.with(|b| b.borrow_mut().take()), placed)
            })
            .await;
        placed?;
        let Some(batch) = batch else {
            return Err(JobError::Transient(
                "the dialer's batch went missing".into(),
            ));
        };
        // The counters the batch moved, once.
        let latest = super::service::write_counters(&txn, batch.campaign).await?;
        if state_of(&latest) != State::Active {
            // Completed by its calls (every receiver done, or enough accepts).
            ctx.complete_in(&txn).await?;
            txn.commit().await?;
            ctx.committed();
            return Ok(Outcome::Done);
        }
        campaign = latest;
        if due.len() as u64 == limit {
            txn.commit().await?;
            ctx.committed();
            return Ok(Outcome::Defer {
                at: std::cmp::min(ctx.job.run_at, now),
                payload: None,
            });
        }
        changed = true;
    }
    let next = call_campaign_receiver::Entity::find()
        .filter(R::CampaignId.eq(id))
        .filter(R::Status.eq(ReceiverStatus::Pending.as_str()))
        .order_by_asc(R::NextDialAt)
        .one(&txn)
        .await?;
    match next.and_then(|r| r.next_dial_at) {
        Some(at) => {
            if changed {
                txn.commit().await?;
                ctx.committed();
            }
            Ok(Outcome::Defer {
                at: std::cmp::min(std::cmp::max(at, now), campaign.end_time),
                payload: None,
            })
        }
        None => {
            if campaign.finished + campaign.cancelled >= campaign.receivers {
                complete(&txn, campaign, CompletionReason::AllDone, now).await?;
            } else {
                // Only calls going on are left: their ends queue a new job when a redial is due.
                let mut model = campaign.into_active_model();
                model.job_token = Set(None);
                model.update(&txn).await?;
            }
            ctx.complete_in(&txn).await?;
            txn.commit().await?;
            ctx.committed();
            Ok(Outcome::Done)
        }
    }
}

/// Completes a campaign at its end time (deferred again when the end time moved later).
async fn end(ctx: JobContext) -> JobResult {
    let id = payload_id(&ctx.job.payload, "campaignId")?;
    let now = ctx.now();
    let txn = db::begin_write(&ctx.db).await?;
    let Some(campaign) = call_campaign::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .filter(|c| state_of(c) != State::Complete)
    else {
        return Ok(Outcome::Done);
    };
    if campaign.end_time > now {
        return Ok(Outcome::Defer {
            at: campaign.end_time,
            payload: None,
        });
    }
    complete(&txn, campaign, CompletionReason::EndTimePassed, now).await?;
    ctx.complete_in(&txn).await?;
    txn.commit().await?;
    ctx.committed();
    Ok(Outcome::Done)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn window(from: &str, to: &str, days: Vec<Weekday>, tz: &str) -> Window {
        let secs = |t: &str| {
            let time = NaiveTime::parse_from_str(t, "%H:%M").unwrap();
            i32::try_from(time.num_seconds_from_midnight()).unwrap()
        };
        Window {
            from: secs(from),
            to: secs(to),
            weekdays: days,
            tz: tz.parse().unwrap(),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn open_inside_the_local_window_on_its_days() {
        // 2026-11-23 is a Monday; Copenhagen is UTC+1 in November.
        let w = window(
            "09:00",
            "17:00",
            vec![Weekday::Monday, Weekday::Tuesday],
            "Europe/Copenhagen",
        );
        assert!(w.is_open(at("2026-11-23T08:00:00Z")));
        assert!(!w.is_open(at("2026-11-23T07:59:59Z")));
        assert!(!w.is_open(at("2026-11-23T16:00:00Z")));
        assert!(!w.is_open(at("2026-11-25T10:00:00Z")));
        assert_eq!(
            w.next_opening(at("2026-11-23T16:00:00Z")),
            at("2026-11-24T08:00:00Z")
        );
        assert_eq!(
            w.next_opening(at("2026-11-24T16:30:00Z")),
            at("2026-11-30T08:00:00Z")
        );
        assert_eq!(
            w.next_opening(at("2026-11-23T06:00:00Z")),
            at("2026-11-23T08:00:00Z")
        );
    }

    #[test]
    fn a_skipped_local_time_opens_at_the_next_that_exists() {
        // Europe/Copenhagen skips 02:00–03:00 on 2027-03-28 (a Sunday).
        let w = window("02:30", "04:00", vec![Weekday::Sunday], "Europe/Copenhagen");
        assert_eq!(
            w.next_opening(at("2027-03-27T12:00:00Z")),
            at("2027-03-28T01:00:00Z")
        );
    }
}
