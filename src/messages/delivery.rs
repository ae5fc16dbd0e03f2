//! Outbound delivery: every outbound message is written with a `message.deliver` job in the same
//! transaction (due at its `scheduledAt`, or now). The job sends it through its channel's
//! provider at the channel's send rate and moves its status `QUEUED → SENT → DELIVERED | FAILED`;
//! each step is appended to the message's status history with its time and reason and recorded
//! as `MESSAGE_STATUS_CHANGED` in the same transaction (so it reaches `messageUpdated`), and the
//! job ends in that transaction too.
//!
//! - Throttle: the job takes the channel's next send slot ([`crate::channels::throttle`]); a slot
//!   within one poll interval is waited for, a later one defers the job to it (keeping the slot,
//!   without spending an attempt). `SENT` is recorded at the slot's time.
//! - A transient provider error retries with the jobs' backoff; on the last attempt, or on a
//!   permanent error, the message is `FAILED` with the reason.
//! - A report the provider announces (the simulator's delivered or failed, possibly delayed) is
//!   a `message.report` job due when the report is, which records it: a delay is a job, not a
//!   sleep. An immediate report is recorded in the send's own transaction.
//! - A message removed or anonymized, or whose channel was deleted or archived, before it was
//!   sent fails with a reason saying so.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::{channel, conversation, message};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::service::{DeliveryStatus, record_delivery_status};
use crate::channels::ChannelType;
use crate::channels::throttle;
use crate::db;
use crate::error::AppResult;
use crate::jobs::{JobContext, JobError, JobResult, Jobs, NewJob, Outcome};
use crate::providers::{Outbound, Providers, Report, SendError};

/// Kind of the job that sends a message.
pub const DELIVER: &str = "message.deliver";

/// Kind of the job that records a provider's delivery report.
pub const REPORT: &str = "message.report";

/// Attempts a send gets before the message fails.
pub const MAX_ATTEMPTS: i32 = 8;

/// The delivery job of a new outbound message.
pub fn delivery_job(message: &message::Model) -> NewJob {
    NewJob::new(DELIVER, json!({ "messageId": message.id }))
        .org(message.org_id)
        .at(message.scheduled_at.unwrap_or(message.created_at))
        .attempts(MAX_ATTEMPTS)
}

/// Registers the delivery handlers.
pub fn register(jobs: &Jobs, providers: Arc<Providers>) {
    jobs.register(DELIVER, move |ctx: JobContext| {
        let providers = providers.clone();
        async move { deliver(ctx, providers).await }
    });
    jobs.register(REPORT, report);
}

fn message_id(payload: &Value) -> Result<Uuid, JobError> {
    payload["messageId"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| JobError::Permanent("the job's payload has no messageId".into()))
}

async fn load(db: &DatabaseConnection, id: Uuid) -> AppResult<Option<message::Model>> {
    Ok(message::Entity::find_by_id(id).one(db).await?)
}

fn addresses(value: &Option<serde_json::Value>) -> Vec<String> {
    value
        .as_ref()
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// The slot this attempt reserved earlier (kept in the payload when it deferred).
fn reserved_slot(ctx: &JobContext) -> Option<DateTime<Utc>> {
    let slot = &ctx.job.payload["slot"];
    (slot["attempt"].as_i64() == Some(i64::from(ctx.job.attempts)))
        .then(|| slot["at"].as_str())
        .flatten()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map(|at| at.with_timezone(&Utc))
}

async fn deliver(ctx: JobContext, providers: Arc<Providers>) -> JobResult {
    let id = message_id(&ctx.job.payload)?;
    let Some(message) = load(&ctx.db, id).await? else {
        return Ok(Outcome::Done);
    };
    if message.delivery_status != DeliveryStatus::Queued.as_str() {
        return Ok(Outcome::Done);
    }
    if message.removed_at.is_some() || message.anonymized_at.is_some() {
        return fail(&ctx, id, "the message was removed before it was sent").await;
    }
    let conversation = conversation::Entity::find_by_id(message.conversation_id)
        .one(&ctx.db)
        .await?;
    let channel = match conversation.and_then(|c| c.channel_id) {
        Some(channel_id) => channel::Entity::find_by_id(channel_id).one(&ctx.db).await?,
        None => None,
    };
    let Some(channel) = channel else {
        return fail(&ctx, id, "the conversation's channel was deleted").await;
    };
    if channel.status != "ACTIVE" {
        return fail(
            &ctx,
            id,
            "the channel was archived before the message was sent",
        )
        .await;
    }
    let provider = match providers.get(&channel.provider) {
        Ok(provider) => provider,
        Err(SendError::Permanent(reason) | SendError::Transient(reason)) => {
            return fail(&ctx, id, &reason).await;
        }
    };
    let now = ctx.now();
    let slot = match reserved_slot(&ctx) {
        Some(slot) => slot,
        None => throttle::reserve(&ctx.db, channel.id, channel.send_rate_per_second, now).await?,
    };
    if slot > now {
        let wait = (slot - now).to_std().unwrap_or_default();
        if wait.as_millis() > u128::from(ctx.config.job_poll_ms) {
            return Ok(Outcome::Defer {
                at: slot,
                payload: Some(json!({
                    "messageId": id,
                    "slot": { "at": slot.to_rfc3339(), "attempt": ctx.job.attempts },
                })),
            });
        }
        tokio::time::sleep(wait).await;
    }
    let (in_reply_to, references) = if channel.channel_type == ChannelType::Email.as_str() {
        thread_of(&ctx.db, &message).await?
    } else {
        (None, Vec::new())
    };
    let outbound = Outbound {
        message_id: id,
        channel_type: ChannelType::parse(&channel.channel_type),
        from: message.from_address.clone(),
        to: addresses(&message.to_addresses),
        cc: addresses(&message.cc_addresses),
        bcc: addresses(&message.bcc_addresses),
        subject: message.email_subject.clone(),
        text: message.text_body.clone(),
        html: message.html_body.clone(),
        attempt: ctx.job.attempts,
        channel_id: channel.id,
        signing_secret: channel.ingest_secret.clone(),
        message_id_header: message.message_id_header.clone(),
        in_reply_to,
        references,
    };
    match provider.send(&outbound, &channel.provider_settings).await {
        Ok(accepted) => {
            let txn = db::begin_write(&ctx.db).await?;
            let mut sent = None;
            if let Some(message) = message::Entity::find_by_id(id).one(&txn).await? {
                let message =
                    remember_provider_id(&txn, message, channel.id, &accepted.provider_message_id)
                        .await?;
                sent = Some(
                    record_delivery_status(&txn, message, DeliveryStatus::Sent, None, slot).await?,
                );
            }
            if let Some((report, after)) = accepted.report {
                let (status, reason) = match report {
                    Report::Delivered => (DeliveryStatus::Delivered, None),
                    Report::Failed(reason) => (DeliveryStatus::Failed, Some(reason)),
                };
                // A report the provider has already (the simulator's immediate outcomes) is
                // recorded with the send: one transaction, no report job.
                if after <= chrono::Duration::zero() {
                    if let Some(message) = sent {
                        record_delivery_status(&txn, message, status, reason, slot).await?;
                    }
                    ctx.complete_in(&txn).await?;
                    txn.commit().await?;
                    ctx.committed();
                    return Ok(Outcome::Done);
                }
                let job = NewJob::new(
                    REPORT,
                    json!({
                        "messageId": id,
                        "status": status.as_str(),
                        "reason": reason,
                        "providerMessageId": accepted.provider_message_id,
                    }),
                )
                .org(message.org_id)
                .at(slot + after);
                crate::jobs::enqueue(&txn, job).await?;
            }
            ctx.complete_in(&txn).await?;
            txn.commit().await?;
            ctx.committed();
            Ok(Outcome::Done)
        }
        Err(SendError::Permanent(reason)) => fail(&ctx, id, &reason).await,
        Err(SendError::Transient(reason)) if ctx.is_last_attempt() => {
            let reason = format!("{reason} (gave up after {} attempts)", ctx.job.attempts);
            fail(&ctx, id, &reason).await
        }
        Err(SendError::Transient(reason)) => Err(JobError::Transient(reason)),
    }
}

/// Most `Message-ID`s an outbound email references.
const MAX_REFERENCES: u64 = 20;

/// The email thread before `message`: the latest earlier `Message-ID` of its conversation (the
/// mail it answers) and the earlier ones, oldest first (at most [`MAX_REFERENCES`], the latest).
async fn thread_of(
    db: &DatabaseConnection,
    message: &message::Model,
) -> AppResult<(Option<String>, Vec<String>)> {
    let earlier = message::Entity::find()
        .filter(message::Column::OrgId.eq(message.org_id))
        .filter(message::Column::ConversationId.eq(message.conversation_id))
        .filter(message::Column::MessageIdHeader.is_not_null())
        .filter(message::Column::CreatedAt.lte(message.created_at))
        .filter(message::Column::Id.ne(message.id))
        .order_by_desc(message::Column::CreatedAt)
        .order_by_desc(message::Column::Id)
        .limit(MAX_REFERENCES)
        .all(db)
        .await?;
    let mut references: Vec<String> = earlier
        .into_iter()
        .filter_map(|m| m.message_id_header)
        .collect();
    references.reverse();
    Ok((references.last().cloned(), references))
}

/// Stores the provider's id of a sent message (for its status callbacks on the ingest
/// endpoint), unless it is empty or another message of the channel has it already (a provider
/// repeating ids: the first message keeps it, and this is logged).
async fn remember_provider_id<C: ConnectionTrait>(
    conn: &C,
    message: message::Model,
    channel_id: Uuid,
    provider_message_id: &str,
) -> AppResult<message::Model> {
    if provider_message_id.is_empty() || message.provider_message_id.is_some() {
        return Ok(message);
    }
    let taken = message::Entity::find()
        .filter(message::Column::ProviderChannelId.eq(channel_id))
        .filter(message::Column::ProviderMessageId.eq(provider_message_id))
        .one(conn)
        .await?;
    if let Some(other) = taken {
        tracing::warn!(
            message_id = %message.id,
            other_message_id = %other.id,
            provider_message_id,
            "the provider gave a message id it gave another message already; not stored"
        );
        return Ok(message);
    }
    let mut model = message.into_active_model();
    model.provider_channel_id = Set(Some(channel_id));
    model.provider_message_id = Set(Some(provider_message_id.to_string()));
    Ok(model.update(conn).await?)
}

/// Marks the message `FAILED` with `reason` and ends the job as failed, in one transaction.
async fn fail(ctx: &JobContext, id: Uuid, reason: &str) -> JobResult {
    let txn = db::begin_write(&ctx.db).await?;
    if let Some(message) = message::Entity::find_by_id(id).one(&txn).await? {
        record_delivery_status(
            &txn,
            message,
            DeliveryStatus::Failed,
            Some(reason.to_string()),
            ctx.now(),
        )
        .await?;
    }
    ctx.fail_in(&txn, reason).await?;
    txn.commit().await?;
    ctx.committed();
    Ok(Outcome::Done)
}

/// Records a provider's report (`DELIVERED`, or `FAILED` with its reason).
async fn report(ctx: JobContext) -> JobResult {
    let id = message_id(&ctx.job.payload)?;
    let status = match ctx.job.payload["status"].as_str() {
        Some("DELIVERED") => DeliveryStatus::Delivered,
        Some("FAILED") => DeliveryStatus::Failed,
        Some("READ") => DeliveryStatus::Read,
        _ => return Err(JobError::Permanent("the report has no known status".into())),
    };
    let reason = ctx.job.payload["reason"].as_str().map(str::to_string);
    let txn = db::begin_write(&ctx.db).await?;
    if let Some(message) = message::Entity::find_by_id(id).one(&txn).await? {
        record_delivery_status(&txn, message, status, reason, ctx.now()).await?;
    }
    ctx.complete_in(&txn).await?;
    txn.commit().await?;
    ctx.committed();
    Ok(Outcome::Done)
}
