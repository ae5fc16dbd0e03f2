//! Business rules of calls, over a write transaction each.
//!
//! Every status change goes through [`move_to`]: it checks the move against
//! [`CallStatus::may_become`], stamps the times (`ringingAt`, `answeredAt`, `endedAt`), works
//! out wait and talk seconds and the price estimate when the call ends, records the event
//! (`CALL_STATUS_CHANGED`, or `CALL_ENDED` for an end status) and, for a campaign's call that
//! ended, hands it to the campaign in the same transaction.
//!
//! Times: wait is from creation to the answer (or to the end, for calls never answered); talk
//! is from the answer to the end, holds included (`holdSeconds` says how much of it was on
//! hold). The price estimate is the channel's per-minute rate times the started minutes of talk.

use chrono::{DateTime, Utc};
use entity::{call, channel, contact, conversation};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, IntoActiveModel,
    QueryFilter, QueryOrder, Set,
};
use serde_json::json;
use uuid::Uuid;

use super::{CallDirection, CallKind, CallLeg, CallStatus, SUBJECT, event_types};
use crate::auth::{Permission, Principal};
use crate::channels::ChannelType;
use crate::channels::service::{
    Capability, Provider as ProviderKind, capabilities as capabilities_of,
};
use crate::contacts::service::{ConsentStatus, SenderAddress, consents, find_or_create_by_address};
use crate::conversations::service::{
    Kind, Opening, Priority, Status as ConversationStatus, insert,
};
use crate::db;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::events::{self, Subject};
use crate::graphql::relay::{Page, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::messages::service::Direction;
use crate::providers::simulator;
use crate::tenancy;
use crate::validate::is_e164;

/// Longest end reason or provider call id.
pub const MAX_REASON: usize = 500;
/// Longest recording URL.
pub const MAX_URL: usize = 2_000;
/// Longest transcription.
pub const MAX_TRANSCRIPTION: usize = 100_000;

fn subject(id: Uuid) -> Subject {
    Subject::new(SUBJECT, id)
}

/// The stored status of `call` (unknown text reads as `FAILED`).
pub fn status_of(call: &call::Model) -> CallStatus {
    CallStatus::parse(&call.status).unwrap_or(CallStatus::Failed)
}

/// Which calls to list.
#[derive(Clone, Debug, Default)]
pub struct CallFilter {
    /// Only inbound or only outbound.
    pub direction: Option<CallDirection>,
    /// Only in one of these statuses.
    pub statuses: Vec<CallStatus>,
    /// Only of these kinds.
    pub kinds: Vec<CallKind>,
    /// Only handled by this agent.
    pub user_id: Option<Uuid>,
    /// Only with this contact.
    pub contact_id: Option<Uuid>,
    /// Only in this queue.
    pub queue_id: Option<Uuid>,
    /// Only on this channel.
    pub channel_id: Option<Uuid>,
    /// Only of this conversation.
    pub conversation_id: Option<Uuid>,
    /// Only of this call campaign.
    pub campaign_id: Option<Uuid>,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
}

/// One page of the organization's calls, newest first (AGENT).
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: CallFilter,
    args: &crate::graphql::relay::PageArgs,
) -> AppResult<(Page<call::Model>, TotalCount)> {
    principal.require(Permission::WorkConversations)?;
    if let (Some(after), Some(before)) = (filter.created_after, filter.created_before)
        && before < after
    {
        return Err(AppError::BadUserInput(
            "filter.createdBefore is before filter.createdAfter".into(),
        ));
    }
    let mut select = tenancy::in_org::<call::Entity>(principal.org_id);
    if let Some(direction) = filter.direction {
        select = select.filter(call::Column::Direction.eq(direction.as_str()));
    }
    if !filter.statuses.is_empty() {
        select =
            select.filter(call::Column::Status.is_in(filter.statuses.iter().map(|s| s.as_str())));
    }
    if !filter.kinds.is_empty() {
        select = select.filter(call::Column::Kind.is_in(filter.kinds.iter().map(|k| k.as_str())));
    }
    if let Some(id) = filter.user_id {
        select = select.filter(call::Column::UserId.eq(id));
    }
    if let Some(id) = filter.contact_id {
        select = select.filter(call::Column::ContactId.eq(id));
    }
    if let Some(id) = filter.queue_id {
        select = select.filter(call::Column::QueueId.eq(id));
    }
    if let Some(id) = filter.channel_id {
        select = select.filter(call::Column::ChannelId.eq(id));
    }
    if let Some(id) = filter.conversation_id {
        select = select.filter(call::Column::ConversationId.eq(id));
    }
    if let Some(id) = filter.campaign_id {
        select = select.filter(call::Column::CampaignId.eq(id));
    }
    if let Some(at) = filter.created_after {
        select = select.filter(call::Column::CreatedAt.gte(at));
    }
    if let Some(at) = filter.created_before {
        select = select.filter(call::Column::CreatedAt.lt(at));
    }
    let sort = Sort {
        name: "CREATED",
        column: call::Column::CreatedAt,
        direction: SortDirection::Desc,
        value: |m: &call::Model| SortValue::Time(m.created_at),
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "calls", &sort, args).await?;
    Ok((page, total))
}

/// The price of `talk_seconds` of talk at `rate_micros` a minute: every started minute counts.
pub fn price(rate_micros: i64, talk_seconds: i32) -> i64 {
    let minutes = (i64::from(talk_seconds.max(0)) + 59) / 60;
    rate_micros.saturating_mul(minutes)
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> i32 {
    i32::try_from((to - from).num_seconds().max(0)).unwrap_or(i32::MAX)
}

/// What else a status move sets.
#[derive(Clone, Debug, Default)]
pub struct Move {
    /// Why it ended (end statuses).
    pub reason: Option<String>,
    /// The agent on the call from now on.
    pub user_id: Option<Uuid>,
    /// Keypad digits pressed (appended).
    pub keypad: Option<String>,
}

/// Moves `call` to `to` at `at` inside `conn` (see the module docs); a move its status does not
/// allow is `INVALID_STATE`, naming both statuses.
pub async fn move_to<C: ConnectionTrait>(
    conn: &C,
    actor: Option<Uuid>,
    call: call::Model,
    to: CallStatus,
    at: DateTime<Utc>,
    change: Move,
) -> AppResult<call::Model> {
    let from = status_of(&call);
    if !from.may_become(to) {
        let why = if from.is_final() {
            format!("the call has ended ({})", from.as_str())
        } else {
            format!(
                "a call that is {} cannot become {}",
                from.as_str(),
                to.as_str()
            )
        };
        return Err(AppError::invalid("id", UserErrorCode::InvalidState, why));
    }
    let at = at.max(call.created_at);
    let org_id = call.org_id;
    let mut model = call.clone().into_active_model();
    model.status = Set(to.as_str().into());
    model.updated_at = Set(at);
    if let Some(user_id) = change.user_id {
        model.user_id = Set(Some(user_id));
    }
    if let Some(digits) = change.keypad.as_deref().filter(|d| !d.is_empty()) {
        let mut pressed = call.keypad.clone().unwrap_or_default();
        pressed.push_str(digits);
        model.keypad = Set(Some(pressed));
    }
    match to {
        CallStatus::Ringing if call.ringing_at.is_none() => model.ringing_at = Set(Some(at)),
        CallStatus::InProgress if call.answered_at.is_none() => {
            model.answered_at = Set(Some(at));
            model.wait_seconds = Set(Some(seconds(call.created_at, at)));
        }
        _ => {}
    }
    let mut hold_seconds = call.hold_seconds;
    if call.on_hold && to != CallStatus::InProgress {
        if let Some(since) = call.hold_started_at {
            hold_seconds = hold_seconds.saturating_add(seconds(since, at));
        }
        model.on_hold = Set(false);
        model.hold_started_at = Set(None);
        model.hold_seconds = Set(hold_seconds);
    }
    let ended = to.is_final();
    let mut talk = None;
    let mut wait = call.wait_seconds;
    if ended {
        model.ended_at = Set(Some(at));
        model.end_reason = Set(change.reason.clone());
        if let Some(answered) = call.answered_at {
            talk = Some(seconds(answered, at));
        } else {
            wait = Some(seconds(call.created_at, at));
            model.wait_seconds = Set(wait);
        }
        model.talk_seconds = Set(talk);
        if let Some(talk) = talk {
            let rate = tenancy::by_id::<channel::Entity>(org_id, call.channel_id)
                .one(conn)
                .await?
                .and_then(|c| c.call_rate_micros);
            model.price_micros = Set(rate.map(|rate| price(rate, talk)));
        }
    }
    let updated = model.update(conn).await?;
    if ended {
        events::record(
            conn,
            org_id,
            actor,
            event_types::ENDED,
            subject(updated.id),
            json!({
                "direction": updated.direction,
                "kind": updated.kind,
                "from": from.as_str(),
                "status": to.as_str(),
                "answered": updated.answered_at.is_some(),
                "waitSeconds": wait,
                "talkSeconds": talk,
                "holdSeconds": hold_seconds,
                "queueId": updated.queue_id,
                "userId": updated.user_id,
                "channelId": updated.channel_id,
                "campaignId": updated.campaign_id,
                "reason": change.reason,
            }),
        )
        .await?;
        if updated.campaign_id.is_some() {
            crate::call_campaigns::service::call_finished(conn, &updated, at).await?;
        }
    } else {
        events::record(
            conn,
            org_id,
            actor,
            event_types::STATUS_CHANGED,
            subject(updated.id),
            json!({ "from": from.as_str(), "to": to.as_str(), "userId": updated.user_id }),
        )
        .await?;
    }
    Ok(updated)
}

/// A call row to insert.
struct NewCall {
    channel: channel::Model,
    conversation_id: Option<Uuid>,
    kind: CallKind,
    direction: CallDirection,
    from: String,
    to: String,
    contact_id: Option<Uuid>,
    user_id: Option<Uuid>,
    queue_id: Option<Uuid>,
    status: CallStatus,
    provider_call_id: Option<String>,
    campaign: Option<(Uuid, Uuid)>,
    created_by: Option<Uuid>,
    agent_to: Option<String>,
    at: DateTime<Utc>,
}

async fn insert_call<C: ConnectionTrait>(conn: &C, new: NewCall) -> AppResult<call::Model> {
    let id = Uuid::now_v7();
    let at = new.at;
    let created = call::ActiveModel {
        id: Set(id),
        org_id: Set(new.channel.org_id),
        channel_id: Set(new.channel.id),
        conversation_id: Set(new.conversation_id),
        kind: Set(new.kind.as_str().into()),
        direction: Set(new.direction.as_str().into()),
        from_number: Set(new.from),
        to_number: Set(new.to),
        contact_id: Set(new.contact_id),
        user_id: Set(new.user_id),
        queue_id: Set(new.queue_id),
        status: Set(new.status.as_str().into()),
        on_hold: Set(false),
        hold_started_at: Set(None),
        hold_seconds: Set(0),
        created_at: Set(at),
        ringing_at: Set((new.status == CallStatus::Ringing).then_some(at)),
        answered_at: Set(None),
        ended_at: Set(None),
        updated_at: Set(at),
        wait_seconds: Set(None),
        talk_seconds: Set(None),
        end_reason: Set(None),
        keypad: Set(None),
        recording_url: Set(None),
        recording_seconds: Set(None),
        transcription: Set(None),
        transcription_status: Set(None),
        price_micros: Set(None),
        provider_call_id: Set(new.provider_call_id),
        campaign_id: Set(new.campaign.map(|c| c.0)),
        campaign_receiver_id: Set(new.campaign.map(|c| c.1)),
        created_by: Set(new.created_by),
        agent_to: Set(new.agent_to),
        agent_answered_at: Set(None),
    }
    .insert(conn)
    .await?;
    events::record(
        conn,
        created.org_id,
        new.created_by,
        event_types::CREATED,
        subject(id),
        json!({
            "direction": created.direction,
            "kind": created.kind,
            "channelId": created.channel_id,
            "queueId": created.queue_id,
            "userId": created.user_id,
            "status": created.status,
            "campaignId": created.campaign_id,
        }),
    )
    .await?;
    Ok(created)
}

/// Plays the simulator's outcome for a call to `to` placed at `at` (see
/// [`simulator::call_outcome`]): ringing, then answered and ended, or ended unanswered.
async fn simulate<C: ConnectionTrait>(
    conn: &C,
    call: call::Model,
    at: DateTime<Utc>,
) -> AppResult<call::Model> {
    let outcome = simulator::call_outcome(&call.to_number);
    let rang = at + outcome.ring;
    let call = if status_of(&call) == CallStatus::Ringing {
        call
    } else {
        move_to(conn, None, call, CallStatus::Ringing, at, Move::default()).await?
    };
    match outcome.result {
        simulator::CallResult::Answered { talk, keypad } => {
            let call = move_to(
                conn,
                None,
                call,
                CallStatus::InProgress,
                rang,
                Move {
                    keypad,
                    ..Move::default()
                },
            )
            .await?;
            move_to(
                conn,
                None,
                call,
                CallStatus::Completed,
                rang + talk,
                Move::default(),
            )
            .await
        }
        simulator::CallResult::Ends { status, reason } => {
            move_to(
                conn,
                None,
                call,
                status,
                rang,
                Move {
                    reason,
                    ..Move::default()
                },
            )
            .await
        }
        simulator::CallResult::Rings => Ok(call),
    }
}

fn uses_simulator(channel: &channel::Model) -> bool {
    ProviderKind::parse(&channel.provider) == Some(ProviderKind::Simulator)
}

/// Checks that `channel` may place calls: active, with `VOICE_OUTBOUND`.
fn check_outbound(channel: &channel::Model) -> AppResult<()> {
    if channel.status != "ACTIVE" {
        return Err(AppError::invalid(
            "channelId",
            UserErrorCode::InvalidState,
            "the channel is archived; it places no calls",
        ));
    }
    if !capabilities_of(channel).contains(&Capability::VoiceOutbound) {
        return Err(AppError::invalid(
            "channelId",
            UserErrorCode::Invalid,
            format!(
                "the channel ({}) does not have the VOICE_OUTBOUND capability",
                channel.channel_type
            ),
        ));
    }
    Ok(())
}

/// Whether `contact` opted out of calls (its `VOICE` consent, or the channel type's).
pub fn opted_out_of_calls(contact: &contact::Model, channel: &channel::Model) -> bool {
    consents(contact).iter().any(|c| {
        c.status == ConsentStatus::OptedOut
            && (c.channel == ChannelType::Voice || c.channel.as_str() == channel.channel_type)
    })
}

/// A campaign's dial, for [`dial`].
#[derive(Clone, Debug)]
pub struct Dial {
    /// The channel to call from (checked by the campaign).
    pub channel: channel::Model,
    /// The E.164 number to call.
    pub to: String,
    /// The receiver's contact, when known.
    pub contact_id: Option<Uuid>,
    /// The campaign.
    pub campaign_id: Uuid,
    /// The campaign's receiver.
    pub campaign_receiver_id: Uuid,
    /// When it is placed.
    pub at: DateTime<Utc>,
}

/// Places a campaign's call inside `conn`: the call (`CAMPAIGN`, outbound) with its
/// `CALL_CREATED`; on the simulator its whole outcome is played at once (the returned call has
/// ended); on other providers a `call.place` job hands it to the carrier, which reports its
/// progress through ingest (the call stays `QUEUED` until then).
pub async fn dial<C: ConnectionTrait>(conn: &C, dial: Dial) -> AppResult<call::Model> {
    let simulated = uses_simulator(&dial.channel);
    let at = dial.at;
    let call = insert_call(
        conn,
        NewCall {
            from: dial.channel.address.clone(),
            to: dial.to,
            conversation_id: None,
            kind: CallKind::Campaign,
            direction: CallDirection::Outbound,
            contact_id: dial.contact_id,
            user_id: None,
            queue_id: None,
            status: CallStatus::Queued,
            provider_call_id: None,
            campaign: Some((dial.campaign_id, dial.campaign_receiver_id)),
            created_by: None,
            agent_to: None,
            channel: dial.channel,
            at,
        },
    )
    .await?;
    if simulated {
        simulate(conn, call, at).await
    } else {
        crate::jobs::enqueue(conn, super::placement::place_job(&call)).await?;
        Ok(call)
    }
}

/// The number or endpoint that rings agent `user_id` for their leg of a call: their phone
/// when it is E.164, else their app, `client:` and their global id (`client:VXNlcjo…`).
pub async fn agent_endpoint<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    user_id: Uuid,
) -> AppResult<String> {
    let phone = tenancy::by_id::<entity::user::Entity>(org_id, user_id)
        .one(conn)
        .await?
        .and_then(|u| u.phone)
        .map(|p| p.trim().to_string())
        .filter(|p| is_e164(p));
    Ok(phone.unwrap_or_else(|| {
        format!(
            "client:{}",
            crate::graphql::relay::encode_id("User", user_id).0
        )
    }))
}

/// Whether `call` rings an agent first and the agent has not answered yet.
fn agent_leg_open(call: &call::Model) -> bool {
    call.agent_to.is_some() && call.agent_answered_at.is_none() && !status_of(call).is_final()
}

/// Records the agent answering their leg at `at` (`agentAnsweredAt`, `CALL_AGENT_ANSWERED`);
/// the caller dials the contact next ([`dial_contact`]).
async fn agent_answered<C: ConnectionTrait>(
    conn: &C,
    actor: Option<Uuid>,
    call: call::Model,
    at: DateTime<Utc>,
) -> AppResult<call::Model> {
    let at = at.max(call.created_at);
    let org_id = call.org_id;
    let mut model = call.into_active_model();
    model.agent_answered_at = Set(Some(at));
    model.updated_at = Set(at);
    let call = model.update(conn).await?;
    events::record(
        conn,
        org_id,
        actor,
        event_types::AGENT_ANSWERED,
        subject(call.id),
        json!({ "userId": call.user_id, "agentTo": call.agent_to }),
    )
    .await?;
    Ok(call)
}

/// Ends a call whose agent's leg was not answered (busy, no answer, failed, canceled): the
/// contact is never dialled. Voicemail on the agent's side counts as no answer.
async fn agent_leg_ended<C: ConnectionTrait>(
    conn: &C,
    actor: Option<Uuid>,
    call: call::Model,
    status: CallStatus,
    reason: Option<String>,
    at: DateTime<Utc>,
) -> AppResult<call::Model> {
    let status = match status {
        CallStatus::Voicemail | CallStatus::Completed => CallStatus::NoAnswer,
        other => other,
    };
    let why = match reason {
        Some(reason) => format!("the agent's leg ended {}: {reason}", status.as_str()),
        None => format!("the agent's leg ended {}", status.as_str()),
    };
    move_to(
        conn,
        actor,
        call,
        status,
        at,
        Move {
            reason: Some(format!("{why}; the contact was not called")),
            ..Move::default()
        },
    )
    .await
}

/// Plays the simulator's agent leg of a click-to-call placed at `at` (see
/// [`simulator::agent_answers`]): answered at once (then the contact's leg is played), ringing
/// until `answerCall`, or ended without calling the contact.
async fn simulate_agent_leg<C: ConnectionTrait>(
    conn: &C,
    call: call::Model,
    at: DateTime<Utc>,
) -> AppResult<call::Model> {
    let endpoint = call.agent_to.clone().unwrap_or_default();
    match simulator::agent_answers(&endpoint) {
        simulator::CallResult::Answered { .. } => {
            let call = agent_answered(conn, None, call, at).await?;
            simulate(conn, call, at).await
        }
        simulator::CallResult::Rings => Ok(call),
        simulator::CallResult::Ends { status, reason } => {
            agent_leg_ended(conn, None, call, status, reason, at).await
        }
    }
}

/// Dials the contact's leg of a call whose agent answered: it rings (`RINGING`); on the
/// simulator its outcome is played at once, on other providers a `call.place` job for the
/// contact's leg hands it to the carrier.
async fn dial_contact<C: ConnectionTrait>(
    conn: &C,
    actor: Option<Uuid>,
    call: call::Model,
    at: DateTime<Utc>,
) -> AppResult<call::Model> {
    let channel = tenancy::by_id::<channel::Entity>(call.org_id, call.channel_id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::NotFound("channel".into()))?;
    let call = if status_of(&call) == CallStatus::Ringing {
        call
    } else {
        move_to(conn, actor, call, CallStatus::Ringing, at, Move::default()).await?
    };
    if uses_simulator(&channel) {
        simulate(conn, call, at).await
    } else {
        crate::jobs::enqueue(
            conn,
            super::placement::place_leg_job(&call, CallLeg::Contact, at),
        )
        .await?;
        Ok(call)
    }
}

/// Whom `startCall` calls.
#[derive(Clone, Debug)]
pub struct StartCall {
    /// The channel to call from.
    pub channel_id: Uuid,
    /// The contact to call (their phone number unless `to` is given).
    pub contact_id: Option<Uuid>,
    /// The number to call (E.164); its contact is found or created.
    pub to: Option<String>,
}

async fn load_channel<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    channel_id: Uuid,
) -> AppResult<channel::Model> {
    tenancy::by_id::<channel::Entity>(org_id, channel_id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid("channelId", UserErrorCode::NotFound, "no such channel"))
}

/// The contact and number a call goes to: the contact given (their phone, or `to`), or the
/// contact found or created for `to`. Refused: no number, a number that is not E.164, an
/// anonymized or opted-out contact.
async fn callee<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    channel: &channel::Model,
    contact_id: Option<Uuid>,
    to: Option<String>,
) -> AppResult<(contact::Model, String)> {
    let to = to.map(|t| t.trim().to_string());
    if let Some(number) = &to
        && !is_e164(number)
    {
        return Err(AppError::invalid(
            "to",
            UserErrorCode::Invalid,
            format!("{number:?} is not an E.164 phone number (such as +4520123456)"),
        ));
    }
    let contact = match contact_id {
        Some(id) => tenancy::by_id::<contact::Entity>(org_id, id)
            .one(conn)
            .await?
            .ok_or_else(|| {
                AppError::invalid("contactId", UserErrorCode::NotFound, "no such contact")
            })?,
        None => {
            let Some(number) = &to else {
                return Err(AppError::invalid(
                    "to",
                    UserErrorCode::Invalid,
                    "give a contactId or a number to call",
                ));
            };
            find_or_create_by_address(conn, org_id, SenderAddress::Phone(number), None)
                .await?
                .0
        }
    };
    if contact.anonymized_at.is_some() {
        return Err(AppError::invalid(
            "contactId",
            UserErrorCode::InvalidState,
            "the contact is anonymized",
        ));
    }
    let Some(number) = to.or_else(|| contact.phone.clone()) else {
        return Err(AppError::invalid(
            "contactId",
            UserErrorCode::Invalid,
            "the contact has no phone number; give `to`",
        ));
    };
    if !is_e164(&number) {
        return Err(AppError::invalid(
            "to",
            UserErrorCode::Invalid,
            format!("{number:?} is not an E.164 phone number (such as +4520123456)"),
        ));
    }
    if opted_out_of_calls(&contact, channel) {
        return Err(AppError::invalid(
            "contactId",
            UserErrorCode::InvalidState,
            "the contact opted out of calls",
        ));
    }
    Ok((contact, number))
}

/// A direct voice conversation's opening.
fn opening(
    direction: Direction,
    queue_id: Option<Uuid>,
    assignee_id: Option<Uuid>,
    at: DateTime<Utc>,
) -> Opening {
    Opening {
        direction,
        kind: Kind::Direct,
        subject: None,
        priority: Priority::Normal,
        queue_id,
        assignee_id,
        at,
    }
}

/// The contact's latest open or pending conversation on `channel`, or a new one opened as
/// `opening` says.
async fn conversation_for<C: ConnectionTrait>(
    conn: &C,
    actor: Option<Uuid>,
    channel: &channel::Model,
    contact: &contact::Model,
    opening: Opening,
) -> AppResult<conversation::Model> {
    let open = tenancy::in_org::<conversation::Entity>(channel.org_id)
        .filter(conversation::Column::ChannelId.eq(channel.id))
        .filter(conversation::Column::RequesterId.eq(contact.id))
        .filter(conversation::Column::Status.ne(ConversationStatus::Closed.as_str()))
        .filter(conversation::Column::AnonymizedAt.is_null())
        .filter(conversation::Column::ArchivedAt.is_null())
        .order_by_desc(conversation::Column::LastMessageAt)
        .one(conn)
        .await?;
    if let Some(open) = open {
        return Ok(open);
    }
    insert(conn, actor, channel, contact, opening).await
}

/// Click-to-call (AGENT): rings the caller first (their leg: their phone, else their app
/// endpoint, see [`agent_endpoint`]), then — once they answer — the contact. The channel needs
/// `VOICE_OUTBOUND`; the number must be E.164 and the contact not opted out of calls. The call
/// belongs to the contact's open conversation on the channel (a new outbound one, assigned to
/// the caller, when there is none). It is `RINGING` from the start (the agent, then the
/// contact); `agentAnsweredAt` says when the agent's leg was answered.
///
/// On the simulator the agent's leg answers at once (unless the agent's phone number says
/// otherwise, see [`simulator::agent_answers`]); then the contact's number decides: busy,
/// unanswered, failing or voicemail end the call at once, others ring until answered
/// (`answerCall`) or ended. On other providers a `call.place` job rings the agent's leg; the
/// provider reports it on ingest with `"leg": "AGENT"`, and its answer places the contact's.
pub async fn start(
    db: &DatabaseConnection,
    principal: &Principal,
    input: StartCall,
    at: DateTime<Utc>,
) -> AppResult<call::Model> {
    principal.require(Permission::WorkConversations)?;
    let txn = db::begin_write(db).await?;
    let channel = load_channel(&txn, principal.org_id, input.channel_id).await?;
    check_outbound(&channel)?;
    let (contact, to) =
        callee(&txn, principal.org_id, &channel, input.contact_id, input.to).await?;
    let user = principal.user_id();
    let conversation = conversation_for(
        &txn,
        Some(user),
        &channel,
        &contact,
        opening(Direction::Outbound, None, Some(user), at),
    )
    .await?;
    let simulated = uses_simulator(&channel);
    let agent_to = agent_endpoint(&txn, principal.org_id, user).await?;
    let call = insert_call(
        &txn,
        NewCall {
            from: channel.address.clone(),
            to,
            conversation_id: Some(conversation.id),
            kind: CallKind::ClickToCall,
            direction: CallDirection::Outbound,
            contact_id: Some(contact.id),
            user_id: Some(user),
            queue_id: None,
            status: CallStatus::Ringing,
            provider_call_id: None,
            campaign: None,
            created_by: Some(user),
            agent_to: Some(agent_to),
            channel,
            at,
        },
    )
    .await?;
    let call = if simulated {
        simulate_agent_leg(&txn, call, at).await?
    } else {
        crate::jobs::enqueue(
            &txn,
            super::placement::place_leg_job(&call, CallLeg::Agent, at),
        )
        .await?;
        call
    };
    txn.commit().await?;
    Ok(call)
}

/// A callback request.
#[derive(Clone, Debug)]
pub struct RequestCallback {
    /// The channel to call back from.
    pub channel_id: Uuid,
    /// The contact to call back.
    pub contact_id: Option<Uuid>,
    /// The number to call back (E.164).
    pub to: Option<String>,
    /// The queue it waits in (the channel's default queue when absent).
    pub queue_id: Option<Uuid>,
}

/// Records a callback request (AGENT; also what a voice menu's "call me back" does): a
/// `CALLBACK` call, `QUEUED` in the queue, in the contact's conversation on the channel (a new
/// inbound one in that queue when there is none, which routing offers to agents). An agent takes
/// it with `answerCall` when the contact picks up, or ends it.
pub async fn request_callback(
    db: &DatabaseConnection,
    principal: &Principal,
    input: RequestCallback,
    at: DateTime<Utc>,
) -> AppResult<call::Model> {
    principal.require(Permission::WorkConversations)?;
    let txn = db::begin_write(db).await?;
    let channel = load_channel(&txn, principal.org_id, input.channel_id).await?;
    check_outbound(&channel)?;
    let queue_id = match input.queue_id {
        Some(id) => Some(
            tenancy::by_id::<entity::queue::Entity>(principal.org_id, id)
                .one(&txn)
                .await?
                .ok_or_else(|| {
                    AppError::invalid("queueId", UserErrorCode::NotFound, "no such queue")
                })?
                .id,
        ),
        None => channel.default_queue_id,
    };
    let (contact, to) =
        callee(&txn, principal.org_id, &channel, input.contact_id, input.to).await?;
    let user = principal.user_id();
    let conversation = conversation_for(
        &txn,
        Some(user),
        &channel,
        &contact,
        opening(Direction::Inbound, queue_id, None, at),
    )
    .await?;
    let call = insert_call(
        &txn,
        NewCall {
            from: channel.address.clone(),
            to,
            conversation_id: Some(conversation.id),
            kind: CallKind::Callback,
            direction: CallDirection::Outbound,
            contact_id: Some(contact.id),
            user_id: None,
            queue_id,
            status: CallStatus::Queued,
            provider_call_id: None,
            campaign: None,
            created_by: Some(user),
            agent_to: None,
            channel,
            at,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(call)
}

/// An action on one call.
#[derive(Clone, Debug)]
pub enum Action {
    /// Answer (the caller becomes the call's agent): `QUEUED`/`RINGING` → `IN_PROGRESS`.
    Answer,
    /// Put on hold (in progress, not held).
    Hold,
    /// Take off hold.
    Resume,
    /// To a queue (waits there again: `QUEUED`) or an agent (rings them: `RINGING`).
    Transfer {
        /// The queue.
        queue_id: Option<Uuid>,
        /// The agent.
        user_id: Option<Uuid>,
    },
    /// Hang up: `COMPLETED` when answered, else `CANCELED`.
    End {
        /// Why.
        reason: Option<String>,
    },
    /// Send to voicemail (not answered yet).
    Voicemail,
}

/// Carries out `action` on call `id` (AGENT) inside one write transaction.
pub async fn act(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    action: Action,
    at: DateTime<Utc>,
) -> AppResult<call::Model> {
    principal.require(Permission::WorkConversations)?;
    let txn = db::begin_write(db).await?;
    let call = tenancy::by_id::<call::Entity>(principal.org_id, id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::invalid("id", UserErrorCode::NotFound, "no such call"))?;
    let actor = Some(principal.user_id());
    let status = status_of(&call);
    let kind = CallKind::parse(&call.kind);
    let updated = match action {
        // The agent picks up their ringing leg of a click-to-call: the contact is dialled.
        Action::Answer if kind == Some(CallKind::ClickToCall) && agent_leg_open(&call) => {
            let call = agent_answered(&txn, actor, call, at).await?;
            dial_contact(&txn, actor, call, at).await?
        }
        // An agent takes a callback request: their leg is answered (they are in the app) and
        // the contact is dialled.
        Action::Answer
            if kind == Some(CallKind::Callback)
                && call.agent_answered_at.is_none()
                && matches!(status, CallStatus::Queued | CallStatus::Ringing) =>
        {
            let user = principal.user_id();
            let agent_to = agent_endpoint(&txn, principal.org_id, user).await?;
            let mut model = call.into_active_model();
            model.user_id = Set(Some(user));
            model.agent_to = Set(Some(agent_to));
            let call = model.update(&txn).await?;
            let call = agent_answered(&txn, actor, call, at).await?;
            dial_contact(&txn, actor, call, at).await?
        }
        Action::Answer => {
            move_to(
                &txn,
                actor,
                call,
                CallStatus::InProgress,
                at,
                Move {
                    user_id: actor,
                    ..Move::default()
                },
            )
            .await?
        }
        Action::Hold | Action::Resume => {
            let hold = matches!(action, Action::Hold);
            if status != CallStatus::InProgress {
                return Err(AppError::invalid(
                    "id",
                    UserErrorCode::InvalidState,
                    format!(
                        "only a call in progress can be {}; this one is {}",
                        if hold { "held" } else { "resumed" },
                        status.as_str()
                    ),
                ));
            }
            if call.on_hold == hold {
                return Err(AppError::invalid(
                    "id",
                    UserErrorCode::InvalidState,
                    if hold {
                        "the call is on hold already"
                    } else {
                        "the call is not on hold"
                    },
                ));
            }
            let org_id = call.org_id;
            let held = call
                .hold_started_at
                .map(|since| seconds(since, at))
                .unwrap_or(0);
            let hold_seconds = call.hold_seconds;
            let mut model = call.into_active_model();
            model.on_hold = Set(hold);
            model.hold_started_at = Set(hold.then_some(at));
            if !hold {
                model.hold_seconds = Set(hold_seconds.saturating_add(held));
            }
            model.updated_at = Set(at);
            let updated = model.update(&txn).await?;
            let (kind, payload) = if hold {
                (event_types::HELD, json!({}))
            } else {
                (event_types::RESUMED, json!({ "heldSeconds": held }))
            };
            events::record(&txn, org_id, actor, kind, subject(updated.id), payload).await?;
            updated
        }
        Action::Transfer { queue_id, user_id } => {
            transfer(&txn, principal, actor, call, queue_id, user_id, at).await?
        }
        Action::End { reason } => {
            let to = if status == CallStatus::InProgress {
                CallStatus::Completed
            } else {
                CallStatus::Canceled
            };
            move_to(
                &txn,
                actor,
                call,
                to,
                at,
                Move {
                    reason,
                    ..Move::default()
                },
            )
            .await?
        }
        Action::Voicemail => {
            move_to(
                &txn,
                actor,
                call,
                CallStatus::Voicemail,
                at,
                Move::default(),
            )
            .await?
        }
    };
    txn.commit().await?;
    Ok(updated)
}

async fn transfer<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    actor: Option<Uuid>,
    call: call::Model,
    queue_id: Option<Uuid>,
    user_id: Option<Uuid>,
    at: DateTime<Utc>,
) -> AppResult<call::Model> {
    let org_id = principal.org_id;
    let (to, queue, user) = match (queue_id, user_id) {
        (Some(queue_id), None) => {
            tenancy::by_id::<entity::queue::Entity>(org_id, queue_id)
                .one(conn)
                .await?
                .ok_or_else(|| {
                    AppError::invalid("queueId", UserErrorCode::NotFound, "no such queue")
                })?;
            (CallStatus::Queued, Some(queue_id), None)
        }
        (None, Some(user_id)) => {
            let user = tenancy::by_id::<entity::user::Entity>(org_id, user_id)
                .one(conn)
                .await?
                .ok_or_else(|| {
                    AppError::invalid("userId", UserErrorCode::NotFound, "no such user")
                })?;
            if user.status != "ACTIVE" {
                return Err(AppError::invalid(
                    "userId",
                    UserErrorCode::InvalidState,
                    "the user is deactivated",
                ));
            }
            (CallStatus::Ringing, call.queue_id, Some(user_id))
        }
        _ => {
            return Err(AppError::invalid(
                "queueId",
                UserErrorCode::Invalid,
                "give exactly one of queueId and userId",
            ));
        }
    };
    let status = status_of(&call);
    if status.is_final() {
        return Err(AppError::invalid(
            "id",
            UserErrorCode::InvalidState,
            format!("the call has ended ({})", status.as_str()),
        ));
    }
    let mut model = call.clone().into_active_model();
    model.queue_id = Set(queue);
    model.user_id = Set(user);
    model.updated_at = Set(at);
    let moved = model.update(conn).await?;
    events::record(
        conn,
        org_id,
        actor,
        event_types::TRANSFERRED,
        subject(moved.id),
        json!({
            "queueId": queue,
            "userId": user,
            "previousQueueId": call.queue_id,
            "previousUserId": call.user_id,
        }),
    )
    .await?;
    if status == to {
        return Ok(moved);
    }
    move_to(conn, actor, moved, to, at, Move::default()).await
}

/// A call event as a provider reports it on the ingest endpoint.
#[derive(Clone, Debug, Default)]
pub struct CallReport {
    /// The provider's id of the call (a new id with `from` starts an inbound call).
    pub provider_call_id: String,
    /// Our id of an outbound call the provider placed (the first report names it).
    pub call_id: Option<Uuid>,
    /// The caller (inbound calls).
    pub from: Option<String>,
    /// The number called.
    pub to: Option<String>,
    /// The leg reported: `AGENT` for the agent's leg of a click-to-call; the contact's leg
    /// (every call's) when absent.
    pub leg: Option<CallLeg>,
    /// The status now.
    pub status: Option<CallStatus>,
    /// Why it ended.
    pub reason: Option<String>,
    /// Keypad digits pressed since the last report.
    pub keypad: Option<String>,
    /// Recording URL.
    pub recording_url: Option<String>,
    /// Recording length.
    pub recording_seconds: Option<i32>,
    /// Transcription text.
    pub transcription: Option<String>,
    /// When it happened.
    pub at: Option<DateTime<Utc>>,
}

/// What a call report did.
#[derive(Clone, Debug)]
pub struct Reported {
    /// The call after the report.
    pub call: call::Model,
    /// Whether it started a new inbound call.
    pub new_call: bool,
    /// Why the status did not move (already there), when it did not.
    pub ignored: Option<String>,
}

/// Applies a provider's call report on `channel`: a new provider call id with `from` is an
/// inbound call (the channel needs `VOICE_INBOUND`): the caller's contact is found or created,
/// the call joins their open conversation on the channel or starts an inbound one in the
/// channel's default queue (offered to agents by routing), `QUEUED` unless the report says
/// otherwise. A known call moves to the reported status (the same status again changes
/// nothing), and gets keypad digits, recording and transcription.
pub async fn report(
    db: &DatabaseConnection,
    channel: &channel::Model,
    input: CallReport,
    now: DateTime<Utc>,
) -> AppResult<Reported> {
    match report_once(db, channel, input.clone(), now).await {
        // Two first reports of one inbound call at once: the unique provider call id refused
        // the second insert; the call exists now, so the report applies to it.
        Err(error) if !matches!(error, AppError::Validation(_)) => {
            let exists = tenancy::in_org::<call::Entity>(channel.org_id)
                .filter(call::Column::ChannelId.eq(channel.id))
                .filter(call::Column::ProviderCallId.eq(input.provider_call_id.as_str()))
                .one(db)
                .await?
                .is_some();
            if exists {
                report_once(db, channel, input, now).await
            } else {
                Err(error)
            }
        }
        other => other,
    }
}

async fn report_once(
    db: &DatabaseConnection,
    channel: &channel::Model,
    input: CallReport,
    now: DateTime<Utc>,
) -> AppResult<Reported> {
    let at = input.at.unwrap_or(now);
    let txn = db::begin_write(db).await?;
    let result = async {
        let by_provider = tenancy::in_org::<call::Entity>(channel.org_id)
            .filter(call::Column::ChannelId.eq(channel.id))
            .filter(call::Column::ProviderCallId.eq(input.provider_call_id.as_str()))
            .one(&txn)
            .await?;
        let (call, new_call) = match (by_provider, input.call_id) {
            (Some(call), _) => (call, false),
            (None, Some(id)) => {
                let call = tenancy::by_id::<call::Entity>(channel.org_id, id)
                    .filter(call::Column::ChannelId.eq(channel.id))
                    .one(&txn)
                    .await?
                    .ok_or_else(|| {
                        AppError::invalid("callId", UserErrorCode::NotFound, "no such call")
                    })?;
                let mut model = call.into_active_model();
                model.provider_call_id = Set(Some(input.provider_call_id.clone()));
                (model.update(&txn).await?, false)
            }
            (None, None) => (inbound(&txn, channel, &input, at).await?, true),
        };
        let mut call = call;
        let mut ignored = None;
        if input.leg == Some(CallLeg::Agent) {
            if call.agent_to.is_none() {
                return Err(AppError::invalid(
                    "leg",
                    UserErrorCode::Invalid,
                    "the call rings no agent: only click-to-call and callbacks have an agent's leg",
                ));
            }
            match input.status {
                _ if !agent_leg_open(&call) => {
                    ignored = Some("the agent's leg is over already".to_string());
                }
                Some(CallStatus::InProgress) => {
                    call = agent_answered(&txn, None, call, at).await?;
                    call = dial_contact(&txn, None, call, at).await?;
                }
                Some(to) if to.is_final() => {
                    call = agent_leg_ended(&txn, None, call, to, input.reason.clone(), at).await?;
                }
                _ => ignored = Some("the agent's leg is ringing".to_string()),
            }
        } else if let Some(to) = input.status {
            let current = status_of(&call);
            if to == CallStatus::InProgress && agent_leg_open(&call) {
                return Err(AppError::invalid(
                    "leg",
                    UserErrorCode::InvalidState,
                    "the agent has not answered their leg yet: report it with \"leg\": \"AGENT\" first",
                ));
            }
            if current == to {
                ignored = Some(format!("the call is {} already", to.as_str()));
            } else {
                call = move_to(
                    &txn,
                    None,
                    call,
                    to,
                    at,
                    Move {
                        reason: input.reason.clone(),
                        keypad: input.keypad.clone(),
                        ..Move::default()
                    },
                )
                .await?;
            }
        } else if let Some(digits) = input.keypad.as_deref().filter(|d| !d.is_empty()) {
            let mut pressed = call.keypad.clone().unwrap_or_default();
            pressed.push_str(digits);
            let mut model = call.into_active_model();
            model.keypad = Set(Some(pressed));
            model.updated_at = Set(at);
            call = model.update(&txn).await?;
        }
        if input.recording_url.is_some() || input.transcription.is_some() {
            let org_id = call.org_id;
            let mut model = call.into_active_model();
            if let Some(url) = &input.recording_url {
                model.recording_url = Set(Some(url.clone()));
                model.recording_seconds = Set(input.recording_seconds);
            }
            if let Some(text) = &input.transcription {
                model.transcription = Set(Some(text.clone()));
                model.transcription_status = Set(Some("COMPLETED".into()));
            } else if input.recording_url.is_some() {
                model.transcription_status = Set(Some("PENDING".into()));
            }
            model.updated_at = Set(at);
            call = model.update(&txn).await?;
            events::record(
                &txn,
                org_id,
                None,
                event_types::RECORDING_ADDED,
                subject(call.id),
                json!({
                    "recordingSeconds": call.recording_seconds,
                    "transcribed": call.transcription.is_some(),
                }),
            )
            .await?;
        }
        Ok(Reported {
            call,
            new_call,
            ignored,
        })
    }
    .await;
    match result {
        Ok(reported) => {
            txn.commit().await?;
            Ok(reported)
        }
        Err(error) => {
            txn.rollback().await?;
            Err(error)
        }
    }
}

async fn inbound<C: ConnectionTrait>(
    conn: &C,
    channel: &channel::Model,
    input: &CallReport,
    at: DateTime<Utc>,
) -> AppResult<call::Model> {
    let Some(from) = input.from.as_deref().map(str::trim) else {
        return Err(AppError::invalid(
            "from",
            UserErrorCode::Invalid,
            "an unknown providerCallId starts an inbound call: give `from`",
        ));
    };
    if !is_e164(from) {
        return Err(AppError::invalid(
            "from",
            UserErrorCode::Invalid,
            format!("{from:?} is not an E.164 phone number"),
        ));
    }
    if channel.status != "ACTIVE" {
        return Err(AppError::invalid(
            "channel",
            UserErrorCode::InvalidState,
            "the channel is archived; it takes no calls",
        ));
    }
    if !capabilities_of(channel).contains(&Capability::VoiceInbound) {
        return Err(AppError::invalid(
            "channel",
            UserErrorCode::Invalid,
            "the channel does not have the VOICE_INBOUND capability",
        ));
    }
    let (contact, _) =
        find_or_create_by_address(conn, channel.org_id, SenderAddress::Phone(from), None).await?;
    let conversation = conversation_for(
        conn,
        None,
        channel,
        &contact,
        opening(Direction::Inbound, channel.default_queue_id, None, at),
    )
    .await?;
    insert_call(
        conn,
        NewCall {
            from: from.to_string(),
            to: input.to.clone().unwrap_or_else(|| channel.address.clone()),
            conversation_id: Some(conversation.id),
            kind: CallKind::Inbound,
            direction: CallDirection::Inbound,
            contact_id: Some(contact.id),
            user_id: None,
            queue_id: conversation.queue_id.or(channel.default_queue_id),
            status: CallStatus::Queued,
            provider_call_id: Some(input.provider_call_id.clone()),
            campaign: None,
            created_by: None,
            agent_to: None,
            channel: channel.clone(),
            at,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::price;

    #[test]
    fn every_started_minute_is_priced() {
        assert_eq!(price(13_000, 0), 0);
        assert_eq!(price(13_000, 1), 13_000);
        assert_eq!(price(13_000, 60), 13_000);
        assert_eq!(price(13_000, 61), 26_000);
    }
}
