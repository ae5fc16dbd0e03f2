//! GraphQL types, queries, mutations and the `callChanged` subscription of calls.

use std::sync::Arc;

use async_graphql::futures_util::Stream;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use entity::call;

use super::service::{self, Action, CallFilter, RequestCallback, StartCall};
use super::{CallDirection, CallKind, CallStatus, SUBJECT};
use crate::auth::Permission;
use crate::channels::graphql::Channel;
use crate::contacts::graphql::Contact;
use crate::conversations::graphql::Conversation;
use crate::error::{AppError, AppResult};
use crate::graphql::context::{ContextExt, RequestCtx};
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, decode_id, encode_id};
use crate::live::graphql::{encode_cursor, start, stream};
use crate::queues::graphql::Queue;
use crate::users::graphql::User;

/// Where a call is.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "CallStatus", remote = "CallStatus")]
pub enum CallStatusGql {
    /// Waiting: in a queue (inbound calls, callbacks) or to be dialled.
    Queued,
    /// Ringing the callee (or the agent, for click-to-call).
    Ringing,
    /// Answered and going on.
    InProgress,
    /// Answered, then hung up.
    Completed,
    /// The callee was busy.
    Busy,
    /// Nobody answered.
    NoAnswer,
    /// The call could not be placed or broke off.
    Failed,
    /// Given up before it was answered (the caller hung up, an agent ended it).
    Canceled,
    /// Went to voicemail.
    Voicemail,
}

/// How a call came about.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "CallKind", remote = "CallKind")]
pub enum CallKindGql {
    /// The contact called in.
    Inbound,
    /// An agent placed it (`startCall`): the agent's phone rings first, then the contact's.
    ClickToCall,
    /// A contact asked to be called back (`requestCallback`); it waits in a queue.
    Callback,
    /// A call campaign's dialler placed it.
    Campaign,
}

/// Who called whom.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "CallDirection", remote = "CallDirection")]
pub enum CallDirectionGql {
    /// The contact called.
    Inbound,
    /// The organization called.
    Outbound,
}

/// A call's recording.
#[derive(SimpleObject)]
pub struct CallRecording {
    /// Where the provider keeps it.
    pub url: String,
    /// Its length in seconds, when known.
    pub duration_seconds: Option<i32>,
    /// Transcription state: `PENDING`, `COMPLETED` or `FAILED`; null without a transcription.
    pub transcription_status: Option<String>,
    /// The transcription, once there is one.
    pub transcription: Option<String>,
}

/// A price estimate.
#[derive(SimpleObject)]
pub struct Money {
    /// Amount as a decimal string with six decimals (`"0.026000"`).
    pub amount: String,
    /// ISO 4217 currency code.
    pub currency: String,
}

/// Formats millionths as a decimal string with six decimals.
pub fn micros(value: i64) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let value = value.unsigned_abs();
    format!("{sign}{}.{:06}", value / 1_000_000, value % 1_000_000)
}

/// A call.
#[derive(Clone)]
pub struct Call(pub call::Model);

/// A voice call leg on a channel: inbound, click-to-call, callback or a campaign's dial, with
/// its status, times, recording and price estimate.
#[Object]
impl Call {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("Call", self.0.id)
    }

    /// Where it is.
    async fn status(&self) -> CallStatusGql {
        service::status_of(&self.0).into()
    }

    /// How it came about.
    async fn kind(&self) -> CallKindGql {
        CallKind::parse(&self.0.kind)
            .unwrap_or(CallKind::Inbound)
            .into()
    }

    /// Who called whom.
    async fn direction(&self) -> CallDirectionGql {
        CallDirection::parse(&self.0.direction)
            .unwrap_or(CallDirection::Inbound)
            .into()
    }

    /// The calling number.
    async fn from(&self) -> &str {
        &self.0.from_number
    }

    /// The called number.
    async fn to(&self) -> &str {
        &self.0.to_number
    }

    /// Whether it is on hold now.
    async fn on_hold(&self) -> bool {
        self.0.on_hold
    }

    /// The channel it is on.
    async fn channel(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Channel>> {
        Ok(ctx
            .app()
            .load::<entity::channel::Entity>(self.0.channel_id)
            .await?
            .map(Channel))
    }

    /// The `VOICE` conversation it belongs to (campaign dials have none).
    async fn conversation(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Conversation>> {
        Ok(match self.0.conversation_id {
            Some(id) => ctx
                .app()
                .load::<entity::conversation::Entity>(id)
                .await?
                .map(Conversation),
            None => None,
        })
    }

    /// The contact on the other end, when known.
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        Ok(match self.0.contact_id {
            Some(id) => ctx
                .app()
                .load::<entity::contact::Entity>(id)
                .await?
                .map(Contact),
            None => None,
        })
    }

    /// The agent on the call (or being rung).
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(match self.0.user_id {
            Some(id) => ctx.app().load::<entity::user::Entity>(id).await?.map(User),
            None => None,
        })
    }

    /// The queue it waits or waited in.
    async fn queue(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Queue>> {
        Ok(match self.0.queue_id {
            Some(id) => ctx
                .app()
                .load::<entity::queue::Entity>(id)
                .await?
                .map(Queue),
            None => None,
        })
    }

    /// The call campaign that placed it, as a global id (`CallCampaign`).
    async fn campaign_id(&self) -> Option<ID> {
        self.0.campaign_id.map(|id| encode_id("CallCampaign", id))
    }

    /// When it was created (queued or placed).
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The agent's number or app endpoint (`client:` and the user's id) a click-to-call or
    /// callback rings first; null for other calls.
    async fn agent_to(&self) -> Option<&str> {
        self.0.agent_to.as_deref()
    }

    /// When the agent answered their leg (click-to-call and callbacks): the contact is rung
    /// only from then on. Null while the agent's phone rings, and for other calls.
    async fn agent_answered_at(&self) -> Option<DateTime<Utc>> {
        self.0.agent_answered_at
    }

    /// When it started ringing.
    async fn ringing_at(&self) -> Option<DateTime<Utc>> {
        self.0.ringing_at
    }

    /// When it was answered.
    async fn answered_at(&self) -> Option<DateTime<Utc>> {
        self.0.answered_at
    }

    /// When it ended.
    async fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.0.ended_at
    }

    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// Seconds from creation to the answer (or to the end, for calls never answered); set once
    /// answered or ended.
    async fn wait_seconds(&self) -> Option<i32> {
        self.0.wait_seconds
    }

    /// Seconds from the answer to the end, holds included; set when an answered call ends.
    async fn talk_seconds(&self) -> Option<i32> {
        self.0.talk_seconds
    }

    /// Seconds spent on hold (finished holds).
    async fn hold_seconds(&self) -> i32 {
        self.0.hold_seconds
    }

    /// Why it ended, when given.
    async fn end_reason(&self) -> Option<&str> {
        self.0.end_reason.as_deref()
    }

    /// Keypad digits the callee pressed, in order.
    async fn keypad(&self) -> Option<&str> {
        self.0.keypad.as_deref()
    }

    /// Its recording, when the provider reported one.
    async fn recording(&self) -> Option<CallRecording> {
        self.0.recording_url.as_ref().map(|url| CallRecording {
            url: url.clone(),
            duration_seconds: self.0.recording_seconds,
            transcription_status: self.0.transcription_status.clone(),
            transcription: self.0.transcription.clone(),
        })
    }

    /// Price estimate: the channel's per-minute rate times the started minutes of talk; null
    /// before it ends or when the channel has no rate.
    async fn price_estimate(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Money>> {
        let Some(amount) = self.0.price_micros else {
            return Ok(None);
        };
        let currency = ctx
            .app()
            .load::<entity::channel::Entity>(self.0.channel_id)
            .await?
            .and_then(|c| c.call_currency)
            .unwrap_or_else(|| "USD".into());
        Ok(Some(Money {
            amount: micros(amount),
            currency,
        }))
    }
}

/// Which calls to list.
#[derive(InputObject, Default)]
pub struct CallFilterInput {
    /// Only inbound or only outbound calls.
    pub direction: Option<CallDirectionGql>,
    /// Only calls in one of these statuses.
    pub statuses: Option<Vec<CallStatusGql>>,
    /// Only calls of these kinds.
    pub kinds: Option<Vec<CallKindGql>>,
    /// Only calls handled by this agent.
    pub user_id: Option<ID>,
    /// Only calls with this contact.
    pub contact_id: Option<ID>,
    /// Only calls in this queue.
    pub queue_id: Option<ID>,
    /// Only calls on this channel.
    pub channel_id: Option<ID>,
    /// Only calls of this conversation.
    pub conversation_id: Option<ID>,
    /// Only calls of this call campaign.
    pub campaign_id: Option<ID>,
    /// Only calls created at or after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Only calls created before this time.
    pub created_before: Option<DateTime<Utc>>,
}

fn filter(input: CallFilterInput) -> async_graphql::Result<CallFilter> {
    let id = |id: Option<ID>, kind: &str| id.map(|id| decode_id(&id, kind)).transpose();
    Ok(CallFilter {
        direction: input.direction.map(Into::into),
        statuses: input
            .statuses
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect(),
        kinds: input
            .kinds
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect(),
        user_id: id(input.user_id, "User")?,
        contact_id: id(input.contact_id, "Contact")?,
        queue_id: id(input.queue_id, "Queue")?,
        channel_id: id(input.channel_id, "Channel")?,
        conversation_id: id(input.conversation_id, "Conversation")?,
        campaign_id: id(input.campaign_id, "CallCampaign")?,
        created_after: input.created_after,
        created_before: input.created_before,
    })
}

/// Call queries.
#[derive(Default)]
pub struct CallQuery;

#[Object]
impl CallQuery {
    /// The organization's calls, newest first (AGENT).
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    async fn calls(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only calls matching this filter.")] filter: Option<CallFilterInput>,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<Call>> {
        let app = ctx.app();
        let filter = self::filter(filter.unwrap_or_default())?;
        let (page, total) = service::list(
            app.db(),
            app.principal()?,
            filter,
            &PageArgs {
                after,
                before,
                first,
                last,
            },
        )
        .await?;
        Ok(Connection::new(page.map(Call), total))
    }

    /// A call by id; null when there is none (AGENT).
    async fn call(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The call's global id.")] id: ID,
    ) -> async_graphql::Result<Option<Call>> {
        let app = ctx.app();
        app.principal()?.require(Permission::WorkConversations)?;
        let id = decode_id(&id, "Call")?;
        Ok(app.load::<call::Entity>(id).await?.map(Call))
    }
}

/// Places a click-to-call.
#[derive(InputObject)]
pub struct StartCallInput {
    /// The channel to call from (with `VOICE_OUTBOUND`).
    pub channel_id: ID,
    /// The contact to call (their phone number unless `to` is given).
    pub contact_id: Option<ID>,
    /// The number to call, E.164 (its contact is found or created when no contact is given).
    pub to: Option<String>,
}

/// Asks for a callback.
#[derive(InputObject)]
pub struct RequestCallbackInput {
    /// The channel to call back from (with `VOICE_OUTBOUND`).
    pub channel_id: ID,
    /// The contact to call back (their phone number unless `to` is given).
    pub contact_id: Option<ID>,
    /// The number to call back, E.164.
    pub to: Option<String>,
    /// The queue it waits in; the channel's default queue when absent.
    pub queue_id: Option<ID>,
}

/// Names one call.
#[derive(InputObject)]
pub struct CallIdInput {
    /// The call.
    pub id: ID,
}

/// Ends a call.
#[derive(InputObject)]
pub struct EndCallInput {
    /// The call.
    pub id: ID,
    /// Why (kept as `endReason`).
    pub reason: Option<String>,
}

/// Transfers a call to a queue or an agent (exactly one).
#[derive(InputObject)]
pub struct TransferCallInput {
    /// The call.
    pub id: ID,
    /// The queue it waits in next (`QUEUED`).
    pub queue_id: Option<ID>,
    /// The agent it rings next (`RINGING`).
    pub user_id: Option<ID>,
}

/// Result of a mutation on one call.
#[derive(SimpleObject)]
pub struct CallPayload {
    /// The call after the change; null when it failed.
    pub call: Option<Call>,
    /// Why the input was refused (a move its status does not allow is `INVALID_STATE`); empty
    /// on success.
    pub user_errors: Vec<UserError>,
}

impl CallPayload {
    fn from(result: AppResult<call::Model>) -> async_graphql::Result<Self> {
        let (call, user_errors) = split(result)?;
        Ok(Self {
            call: call.map(Call),
            user_errors,
        })
    }
}

/// Call mutations.
#[derive(Default)]
pub struct CallMutation;

impl CallMutation {
    async fn act(
        ctx: &Context<'_>,
        id: &ID,
        action: impl FnOnce() -> AppResult<Action>,
    ) -> async_graphql::Result<CallPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = async {
            principal.require(Permission::WorkConversations)?;
            let id = input_id("id", id, "Call")?;
            let action = action()?;
            service::act(app.db(), principal, id, action, app.state.clock.now()).await
        }
        .await;
        CallPayload::from(result)
    }
}

fn reason(reason: Option<String>) -> AppResult<Option<String>> {
    let reason = reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > service::MAX_REASON)
    {
        return Err(AppError::invalid(
            "reason",
            crate::error::UserErrorCode::TooLong,
            format!("at most {} characters", service::MAX_REASON),
        ));
    }
    Ok(reason)
}

#[Object]
impl CallMutation {
    /// Click-to-call (AGENT): rings the caller, then the contact. The channel needs
    /// `VOICE_OUTBOUND`, the number must be E.164 and the contact not opted out of calls. The
    /// call joins the contact's open conversation on the channel (a new outbound one assigned to
    /// the caller otherwise).
    async fn start_call(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: StartCallInput,
    ) -> async_graphql::Result<CallPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = async {
            let input = StartCall {
                channel_id: input_id("channelId", &input.channel_id, "Channel")?,
                contact_id: input
                    .contact_id
                    .map(|id| input_id("contactId", &id, "Contact"))
                    .transpose()?,
                to: input.to,
            };
            service::start(app.db(), principal, input, app.state.clock.now()).await
        }
        .await;
        CallPayload::from(result)
    }

    /// Records a callback request (AGENT): a `CALLBACK` call waiting in the queue (the channel's
    /// default queue unless given), in the contact's conversation, which routing offers to
    /// agents.
    async fn request_callback(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: RequestCallbackInput,
    ) -> async_graphql::Result<CallPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = async {
            let input = RequestCallback {
                channel_id: input_id("channelId", &input.channel_id, "Channel")?,
                contact_id: input
                    .contact_id
                    .map(|id| input_id("contactId", &id, "Contact"))
                    .transpose()?,
                to: input.to,
                queue_id: input
                    .queue_id
                    .map(|id| input_id("queueId", &id, "Queue"))
                    .transpose()?,
            };
            service::request_callback(app.db(), principal, input, app.state.clock.now()).await
        }
        .await;
        CallPayload::from(result)
    }

    /// Answers a queued or ringing call (AGENT): it is in progress with the caller as its agent.
    /// On a click-to-call whose agent's leg rings, the agent picks up: the contact is dialled
    /// (the call stays `RINGING`). Taking a callback request answers the agent's leg and dials
    /// the contact through the channel's provider (`RINGING`); answering it again once the
    /// contact picks up puts it in progress.
    async fn answer_call(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CallIdInput,
    ) -> async_graphql::Result<CallPayload> {
        Self::act(ctx, &input.id, || Ok(Action::Answer)).await
    }

    /// Puts a call in progress on hold (AGENT).
    async fn hold_call(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CallIdInput,
    ) -> async_graphql::Result<CallPayload> {
        Self::act(ctx, &input.id, || Ok(Action::Hold)).await
    }

    /// Takes a held call off hold (AGENT).
    async fn resume_call(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CallIdInput,
    ) -> async_graphql::Result<CallPayload> {
        Self::act(ctx, &input.id, || Ok(Action::Resume)).await
    }

    /// Transfers a call that has not ended (AGENT): to a queue (it waits there, `QUEUED`) or to
    /// an agent (it rings them, `RINGING`).
    async fn transfer_call(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: TransferCallInput,
    ) -> async_graphql::Result<CallPayload> {
        let TransferCallInput {
            id,
            queue_id,
            user_id,
        } = input;
        Self::act(ctx, &id, || {
            Ok(Action::Transfer {
                queue_id: queue_id
                    .map(|id| input_id("queueId", &id, "Queue"))
                    .transpose()?,
                user_id: user_id
                    .map(|id| input_id("userId", &id, "User"))
                    .transpose()?,
            })
        })
        .await
    }

    /// Hangs up (AGENT): a call in progress is `COMPLETED`, one not answered yet `CANCELED`.
    /// Ending an ended call is `INVALID_STATE`.
    async fn end_call(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: EndCallInput,
    ) -> async_graphql::Result<CallPayload> {
        let EndCallInput { id, reason: given } = input;
        Self::act(ctx, &id, || {
            Ok(Action::End {
                reason: reason(given)?,
            })
        })
        .await
    }

    /// Sends a call not answered yet to voicemail (AGENT).
    async fn send_call_to_voicemail(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CallIdInput,
    ) -> async_graphql::Result<CallPayload> {
        Self::act(ctx, &input.id, || Ok(Action::Voicemail)).await
    }
}

/// A change of a call, as `callChanged` delivers it.
#[derive(SimpleObject)]
pub struct CallChangedEvent {
    /// The event's cursor: resume after it with `after`.
    pub cursor: String,
    /// The event type (`CALL_CREATED`, `CALL_STATUS_CHANGED`, `CALL_HELD`, `CALL_RESUMED`,
    /// `CALL_TRANSFERRED`, `CALL_ENDED`, `CALL_RECORDING_ADDED`, `CALL_AGENT_ANSWERED`).
    pub event_type: String,
    /// The call as it is when the event is delivered.
    pub call: Call,
}

/// The call subscription.
#[derive(Default)]
pub struct CallSubscription;

/// Calls as they change.
#[Subscription]
impl CallSubscription {
    /// Changes of the organization's calls (AGENT), or of one call: created, status moves,
    /// holds, transfers, ends, recordings. With `after`, first the changes after that cursor,
    /// then live ones.
    async fn call_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this call.")] call_id: Option<ID>,
        #[graphql(desc = "Resume after this event cursor (from an earlier event).")] after: Option<
            String,
        >,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<CallChangedEvent>> + use<>>
    {
        let app = ctx.app();
        let principal = app.principal()?.clone();
        principal.require(Permission::WorkConversations)?;
        let only = match call_id {
            Some(id) => {
                let id = decode_id(&id, "Call")?;
                if app.load::<call::Entity>(id).await?.is_none() {
                    return Err(AppError::NotFound("call".into()).into());
                }
                Some(id)
            }
            None => None,
        };
        let db = app.db().clone();
        let org_id = principal.org_id;
        let start = start(&db, &app.state.bus, after.as_deref()).await?;
        let app = ctx.data::<Arc<RequestCtx>>()?.clone();
        Ok(stream(
            db,
            start,
            org_id,
            app,
            move |db, event| async move {
                if event.subject_type != SUBJECT || only.is_some_and(|id| id != event.subject_id) {
                    return Ok(None);
                }
                let Some(model) = crate::tenancy::by_id::<call::Entity>(org_id, event.subject_id)
                    .one(&db)
                    .await?
                else {
                    return Ok(None);
                };
                Ok(Some(CallChangedEvent {
                    cursor: encode_cursor(event.seq),
                    event_type: event.event_type.clone(),
                    call: Call(model),
                }))
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::micros;

    #[test]
    fn micros_read_as_decimals() {
        assert_eq!(micros(26_000), "0.026000");
        assert_eq!(micros(1_500_000), "1.500000");
        assert_eq!(micros(-5), "-0.000005");
    }
}
