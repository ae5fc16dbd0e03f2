//! Placing calls through a carrier: calls on channels whose provider is not the simulator get a
//! `call.place` job, which hands the call to the provider ([`Provider::place_call`]: the
//! webhook provider POSTs a signed `call.place` request to the bridge). The bridge then reports
//! the call's progress on the ingest endpoint, naming `callId` and its `providerCallId`.
//! Transient failures retry with the job's backoff; a permanent one (or the last attempt) ends
//! the call `FAILED` with the reason.
//!
//! Click-to-call rings two legs, each its own job (payload `leg`): first the agent's
//! (`AGENT`, to the agent's number or app endpoint); when the provider reports that leg
//! answered (`"leg": "AGENT"`), the contact's (`CONTACT`, the default). Callbacks place only
//! the contact's leg, once an agent takes them. The contact leg's provider call id replaces
//! the agent leg's, so later reports under either the new id or `callId` reach the call.
//!
//! [`Provider::place_call`]: crate::providers::Provider::place_call

use std::sync::Arc;

use entity::{call, channel};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::service::{Move, move_to, status_of};
use super::{CallLeg, CallStatus};
use crate::db;
use crate::error::AppResult;
use crate::jobs::{JobContext, JobError, JobResult, Jobs, NewJob, Outcome};
use crate::providers::{OutboundCall, Providers, SendError};

/// Kind of the job that hands a call to its provider.
pub const PLACE: &str = "call.place";

/// Attempts a placement gets before the call fails.
pub const MAX_ATTEMPTS: i32 = 5;

/// The placement job of `call` (its contact's leg), due at its creation.
pub fn place_job(call: &call::Model) -> NewJob {
    place_leg_job(call, CallLeg::Contact, call.created_at)
}

/// The placement job of `leg` of `call`, due at `at`.
pub fn place_leg_job(
    call: &call::Model,
    leg: CallLeg,
    at: chrono::DateTime<chrono::Utc>,
) -> NewJob {
    NewJob::new(PLACE, json!({ "callId": call.id, "leg": leg.as_str() }))
        .org(call.org_id)
        .at(at)
        .attempts(MAX_ATTEMPTS)
}

/// Registers the placement handler.
pub fn register(jobs: &Jobs, providers: Arc<Providers>) {
    jobs.register(PLACE, move |ctx: JobContext| {
        let providers = providers.clone();
        async move { place(ctx, providers).await }
    });
}

fn call_id(payload: &Value) -> Result<Uuid, JobError> {
    payload["callId"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| JobError::Permanent("the job's payload has no callId".into()))
}

async fn place(ctx: JobContext, providers: Arc<Providers>) -> JobResult {
    let id = call_id(&ctx.job.payload)?;
    let Some(call) = call::Entity::find_by_id(id).one(&ctx.db).await? else {
        return Ok(Outcome::Done);
    };
    let leg = ctx.job.payload["leg"]
        .as_str()
        .and_then(CallLeg::parse)
        .unwrap_or(CallLeg::Contact);
    let placed = match leg {
        CallLeg::Agent => call.agent_answered_at.is_some(),
        // Calls with an agent's leg have the agent leg's provider id by now.
        CallLeg::Contact if call.agent_to.is_some() => call.agent_answered_at.is_none(),
        CallLeg::Contact => call.provider_call_id.is_some(),
    };
    if status_of(&call).is_final() || placed {
        return Ok(Outcome::Done);
    }
    let to = match leg {
        CallLeg::Agent => call.agent_to.clone().unwrap_or_default(),
        CallLeg::Contact => call.to_number.clone(),
    };
    let Some(channel) = channel::Entity::find_by_id(call.channel_id)
        .one(&ctx.db)
        .await?
    else {
        return Ok(Outcome::Done);
    };
    let provider = match providers.get(&channel.provider) {
        Ok(provider) => provider,
        Err(SendError::Permanent(reason) | SendError::Transient(reason)) => {
            return fail(&ctx, id, &reason).await;
        }
    };
    let outbound = OutboundCall {
        call_id: id,
        channel_id: channel.id,
        kind: call.kind.clone(),
        from: call.from_number.clone(),
        leg,
        to,
        contact: call.to_number.clone(),
        attempt: ctx.job.attempts,
        signing_secret: channel.ingest_secret.clone(),
    };
    match provider
        .place_call(&outbound, &channel.provider_settings)
        .await
    {
        Ok(accepted) => {
            let txn = db::begin_write(&ctx.db).await?;
            let replace = leg == CallLeg::Contact && call.agent_to.is_some();
            remember_provider_id(&txn, id, channel.id, &accepted.provider_message_id, replace)
                .await?;
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

/// Keeps the provider's id of the call unless it is empty, the call has one (and `replace` is
/// false), or another call of the channel has it.
async fn remember_provider_id<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    channel_id: Uuid,
    provider_call_id: &str,
    replace: bool,
) -> AppResult<()> {
    if provider_call_id.is_empty() {
        return Ok(());
    }
    let taken = call::Entity::find()
        .filter(call::Column::ChannelId.eq(channel_id))
        .filter(call::Column::ProviderCallId.eq(provider_call_id))
        .one(conn)
        .await?;
    if taken.is_some() {
        tracing::warn!(%id, provider_call_id, "the provider gave a call id it gave another call");
        return Ok(());
    }
    if let Some(call) = call::Entity::find_by_id(id).one(conn).await?
        && (replace || call.provider_call_id.is_none())
        && call.provider_call_id.as_deref() != Some(provider_call_id)
    {
        let mut model = call.into_active_model();
        model.provider_call_id = Set(Some(provider_call_id.to_string()));
        model.update(conn).await?;
    }
    Ok(())
}

/// Ends the call `FAILED` with `reason` and the job as failed, in one transaction.
async fn fail(ctx: &JobContext, id: Uuid, reason: &str) -> JobResult {
    let txn = db::begin_write(&ctx.db).await?;
    if let Some(call) = call::Entity::find_by_id(id).one(&txn).await?
        && !status_of(&call).is_final()
    {
        move_to(
            &txn,
            None,
            call,
            CallStatus::Failed,
            ctx.now(),
            Move {
                reason: Some(reason.to_string()),
                ..Move::default()
            },
        )
        .await?;
    }
    ctx.fail_in(&txn, reason).await?;
    txn.commit().await?;
    ctx.committed();
    Ok(Outcome::Done)
}
