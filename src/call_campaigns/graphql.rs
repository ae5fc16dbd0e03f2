//! GraphQL types, queries, mutations and the `callCampaignProgress` subscription of call
//! campaigns.

use std::sync::Arc;

use async_graphql::futures_util::Stream;
use async_graphql::{
    Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, OneofObject, SimpleObject,
    Subscription,
};
use chrono::{DateTime, Utc};
use entity::{call_campaign, call_campaign_receiver};

use super::service::{
    self, ActionButton, Audio, CampaignFilter, CampaignInput, CampaignPatch, ReceiverFilter,
    Sources, buttons_of, editable, time_of_day, weekdays_of,
};
use super::{ButtonAction, CompletionReason, Kind, ReceiverStatus, Reply, State};
use crate::attachments::graphql::Attachment;
use crate::auth::Permission;
use crate::calls::graphql::Call;
use crate::channels::graphql::{Channel, WeekdayGql};
use crate::contacts::graphql::Contact;
use crate::error::{AppError, AppResult};
use crate::graphql::context::{ContextExt, RequestCtx};
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, decode_id, encode_id};
use crate::live::graphql::{encode_cursor, start, stream};
use crate::organizations::graphql::patch;
use crate::users::graphql::User;

/// What a call campaign is for.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "CallCampaignKind", remote = "super::Kind")]
pub enum KindGql {
    /// A message played to every receiver (action buttons optional).
    Broadcast,
    /// An invitation: receivers accept or decline on the keypad, until `acceptsWanted` accepted.
    Rsvp,
    /// Questions answered on the keypad; the digits pressed are kept per receiver.
    Survey,
}

/// Where a call campaign stands. Clients set only `ACTIVE` and `HALTED`.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "CallCampaignState", remote = "super::State")]
pub enum StateGql {
    /// Before its start time; it can still be edited.
    WaitingToActive,
    /// Dialling inside its active window.
    Active,
    /// Stopped until set `ACTIVE` again (calls going on finish).
    Halted,
    /// Done: every receiver finished, `acceptsWanted` reached, or the end time passed.
    Complete,
}

/// Where one receiver of a call campaign stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "CallCampaignReceiverStatus", remote = "super::ReceiverStatus")]
pub enum ReceiverStatusGql {
    /// Waiting for its first call or a redial (`nextDialAt`).
    Pending,
    /// A call to it is going on.
    Dialing,
    /// Done: answered, or not answered after every redial.
    Finished,
    /// Never finished: the campaign completed first.
    Cancelled,
}

/// What a receiver answered.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "CallCampaignReply", remote = "super::Reply")]
pub enum ReplyGql {
    /// Pressed an `ACCEPT` button.
    Accept,
    /// Pressed a `DECLINE` button.
    Decline,
    /// Answered without pressing an action button, or never answered.
    NoReply,
}

/// What pressing a keypad button means.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "CallCampaignButtonAction", remote = "super::ButtonAction")]
pub enum ButtonActionGql {
    /// The receiver accepts.
    Accept,
    /// The receiver declines.
    Decline,
}

/// Why a call campaign completed.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(
    name = "CallCampaignCompletionReason",
    remote = "super::CompletionReason"
)]
pub enum CompletionReasonGql {
    /// Every receiver finished.
    AllDone,
    /// `acceptsWanted` receivers accepted.
    AcceptsWantedReached,
    /// Its end time passed.
    EndTimePassed,
}

/// A keypad button of a call campaign.
#[derive(SimpleObject, InputObject, Clone, Debug)]
#[graphql(
    name = "CallCampaignActionButton",
    input_name = "CallCampaignActionButtonInput"
)]
pub struct ActionButtonGql {
    /// The digit, `0` to `9`.
    pub button: String,
    /// What pressing it means.
    pub action: ButtonActionGql,
}

/// Text spoken to the receivers.
#[derive(SimpleObject, InputObject, Clone, Debug)]
#[graphql(name = "TextToSpeech", input_name = "TextToSpeechInput")]
pub struct TextToSpeechGql {
    /// The text (at most 1,000 characters).
    pub text: String,
    /// The voice's locale (BCP 47, e.g. `en-US`).
    pub locale: String,
}

/// What a call campaign plays: an uploaded audio file or text-to-speech (exactly one).
#[derive(OneofObject)]
pub enum CallAudioInput {
    /// An uploaded attachment whose content type is `audio/*`.
    AttachmentId(ID),
    /// Text spoken by text-to-speech.
    TextToSpeech(TextToSpeechGql),
}

/// What a call campaign plays.
#[derive(SimpleObject)]
pub struct CallAudio {
    /// The uploaded audio file; null for text-to-speech or when it was deleted.
    pub attachment: Option<Attachment>,
    /// The text spoken; null for an uploaded file.
    pub text_to_speech: Option<TextToSpeechGql>,
}

/// Who a call campaign calls (as given).
#[derive(SimpleObject)]
pub struct CallCampaignReceiverSources {
    /// Contacts named.
    pub contact_ids: Vec<ID>,
    /// Contact groups and segments (their members when the campaign was created or changed).
    pub group_ids: Vec<ID>,
    /// Raw E.164 numbers.
    pub phone_numbers: Vec<String>,
}

/// A call campaign's numbers (Multisender's stats).
#[derive(SimpleObject)]
pub struct CallCampaignStats {
    /// Receivers (distinct phone numbers).
    pub receivers: i64,
    /// Receivers done: answered, or not answered after every redial.
    pub finished: i64,
    /// Receivers never finished because the campaign completed first.
    pub cancelled: i64,
    /// Calls placed (first calls and redials).
    pub dialed_calls: i64,
    /// Calls answered.
    pub answered_calls: i64,
    /// Talk seconds of answered calls.
    pub total_duration: i64,
    /// Receivers who pressed an `ACCEPT` button.
    pub accepts_received: i64,
    /// Receivers who pressed a `DECLINE` button.
    pub declines_received: i64,
    /// Receivers who answered and pressed no action button.
    pub no_replies_received: i64,
    /// Declines and no replies together (Multisender's `declinesAndNoRepliesReceived`).
    pub declines_and_no_replies_received: i64,
    /// Receivers finished without answering (busy, no answer, failed or voicemail on every
    /// call).
    pub not_answered: i64,
}

/// A call campaign.
#[derive(Clone)]
pub struct CallCampaign(pub call_campaign::Model);

/// A call campaign (voice broadcast, RSVP call or keypad survey): audio played to receivers
/// dialled from a voice channel between its start and end times, inside its active window, with
/// redials, collecting keypad replies.
#[Object]
impl CallCampaign {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("CallCampaign", self.0.id)
    }

    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What it is for.
    async fn kind(&self) -> KindGql {
        Kind::parse(&self.0.kind).unwrap_or(Kind::Broadcast).into()
    }

    /// Where it stands.
    async fn state(&self) -> StateGql {
        service::state_of(&self.0).into()
    }

    /// Whether it can still be edited (it never became active and is not complete).
    async fn editable(&self) -> bool {
        editable(&self.0)
    }

    /// The voice channel it dials from; null when the channel was deleted.
    async fn channel(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Channel>> {
        Ok(match self.0.channel_id {
            Some(id) => ctx
                .app()
                .load::<entity::channel::Entity>(id)
                .await?
                .map(Channel),
            None => None,
        })
    }

    /// What it plays.
    async fn audio(&self, ctx: &Context<'_>) -> async_graphql::Result<CallAudio> {
        Ok(match Audio::of(&self.0) {
            Some(Audio::File(id)) => CallAudio {
                attachment: ctx
                    .app()
                    .load::<entity::attachment::Entity>(id)
                    .await?
                    .map(Attachment),
                text_to_speech: None,
            },
            Some(Audio::TextToSpeech { text, locale }) => CallAudio {
                attachment: None,
                text_to_speech: Some(TextToSpeechGql { text, locale }),
            },
            None => CallAudio {
                attachment: None,
                text_to_speech: None,
            },
        })
    }

    /// Who it calls, as given.
    async fn receiver_sources(&self) -> CallCampaignReceiverSources {
        let sources = Sources::of(&self.0);
        CallCampaignReceiverSources {
            contact_ids: sources
                .contact_ids
                .into_iter()
                .map(|id| encode_id("Contact", id))
                .collect(),
            group_ids: sources
                .group_ids
                .into_iter()
                .map(|id| encode_id("ContactGroup", id))
                .collect(),
            phone_numbers: sources.phone_numbers,
        }
    }

    /// When it starts dialling; null: as soon as it was created.
    async fn start_time(&self) -> Option<DateTime<Utc>> {
        self.0.start_time
    }

    /// When it stops dialling and completes.
    async fn end_time(&self) -> DateTime<Utc> {
        self.0.end_time
    }

    /// Daily window start, `HH:MM:SS` in the organization's timezone.
    async fn active_from(&self) -> String {
        time_of_day(self.0.active_from)
    }

    /// Daily window end (excluded), `HH:MM:SS` in the organization's timezone (`24:00:00`: the
    /// end of the day).
    async fn active_to(&self) -> String {
        time_of_day(self.0.active_to)
    }

    /// Weekdays it dials on, Monday first.
    async fn active_weekdays(&self) -> Vec<WeekdayGql> {
        weekdays_of(&self.0).into_iter().map(Into::into).collect()
    }

    /// Redials of a receiver who did not answer, after the first call.
    async fn max_redials(&self) -> i32 {
        self.0.max_redials
    }

    /// Seconds between an unanswered call's end and the redial.
    async fn redial_interval_seconds(&self) -> i32 {
        self.0.redial_interval_seconds
    }

    /// Keypad buttons and what they mean, by digit.
    async fn action_buttons(&self) -> Vec<ActionButtonGql> {
        buttons_of(&self.0)
            .into_iter()
            .map(|b| ActionButtonGql {
                button: b.button,
                action: b.action.into(),
            })
            .collect()
    }

    /// It completes once this many receivers accepted; null: no target.
    async fn accepts_wanted(&self) -> Option<i32> {
        self.0.accepts_wanted
    }

    /// Client metadata, passed as is in receiver events.
    async fn metadata(&self) -> Json<serde_json::Value> {
        Json(self.0.metadata.clone())
    }

    /// Its numbers, as they are now.
    async fn stats(&self) -> CallCampaignStats {
        let m = &self.0;
        CallCampaignStats {
            receivers: m.receivers,
            finished: m.finished,
            cancelled: m.cancelled,
            dialed_calls: m.dialed,
            answered_calls: m.answered,
            total_duration: m.total_duration,
            accepts_received: m.accepts,
            declines_received: m.declines,
            no_replies_received: m.no_replies,
            declines_and_no_replies_received: m.declines + m.no_replies,
            not_answered: m.not_answered,
        }
    }

    /// Its receivers, in the order they were resolved.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn receivers(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only receivers in one of these statuses.")] statuses: Option<
            Vec<ReceiverStatusGql>,
        >,
        #[graphql(desc = "Only receivers with one of these replies.")] replies: Option<
            Vec<ReplyGql>,
        >,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<CallCampaignReceiver>> {
        let app = ctx.app();
        let filter = ReceiverFilter {
            statuses: statuses
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            replies: replies
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
        };
        let (page, total) = service::receivers(
            app.db(),
            app.principal()?,
            self.0.id,
            &filter,
            &PageArgs {
                after,
                before,
                first,
                last,
            },
        )
        .await?;
        Ok(Connection::new(page.map(CallCampaignReceiver), total))
    }

    /// When it first became active.
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }

    /// When it was halted (null unless halted).
    async fn halted_at(&self) -> Option<DateTime<Utc>> {
        self.0.halted_at
    }

    /// When it completed.
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }

    /// Why it completed.
    async fn completion_reason(&self) -> Option<CompletionReasonGql> {
        self.0
            .completion_reason
            .as_deref()
            .and_then(CompletionReason::parse)
            .map(Into::into)
    }

    /// Who created it; null when the user was deleted.
    async fn created_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(match self.0.created_by {
            Some(id) => ctx.app().load::<entity::user::Entity>(id).await?.map(User),
            None => None,
        })
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// One receiver of a call campaign.
#[derive(Clone)]
pub struct CallCampaignReceiver(pub call_campaign_receiver::Model);

/// One phone number a call campaign calls, and its outcome.
#[Object]
impl CallCampaignReceiver {
    /// Globally unique, opaque id.
    async fn id(&self) -> ID {
        encode_id("CallCampaignReceiver", self.0.id)
    }

    /// The contact it came from (or that has the number); null for an unknown raw number.
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

    /// The number called (E.164).
    async fn phone_number(&self) -> &str {
        &self.0.phone_number
    }

    /// Where it stands.
    async fn status(&self) -> ReceiverStatusGql {
        ReceiverStatus::parse(&self.0.status)
            .unwrap_or(ReceiverStatus::Cancelled)
            .into()
    }

    /// Whether a call to it was answered.
    async fn answered(&self) -> bool {
        self.0.answered
    }

    /// What it answered, once finished.
    async fn reply(&self) -> Option<ReplyGql> {
        self.0
            .reply
            .as_deref()
            .and_then(Reply::parse)
            .map(Into::into)
    }

    /// The keypad digits pressed on the answered call (survey answers).
    async fn keypad(&self) -> Option<&str> {
        self.0.keypad.as_deref()
    }

    /// Talk seconds of the answered call.
    async fn duration_seconds(&self) -> i32 {
        self.0.duration_seconds
    }

    /// Calls placed to it.
    async fn dial_count(&self) -> i32 {
        self.0.dial_count
    }

    /// Its latest call (going on, or the one that finished it).
    async fn latest_call(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Call>> {
        Ok(match self.0.latest_call_id {
            Some(id) => ctx.app().load::<entity::call::Entity>(id).await?.map(Call),
            None => None,
        })
    }

    /// When its latest call was placed.
    async fn latest_call_at(&self) -> Option<DateTime<Utc>> {
        self.0.latest_call_at
    }

    /// When it is due to be dialled (pending receivers; the window may delay it).
    async fn next_dial_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_dial_at
    }

    /// When it finished.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
}

/// Which call campaigns to list.
#[derive(InputObject, Default)]
pub struct CallCampaignFilterInput {
    /// Only campaigns in one of these states.
    pub states: Option<Vec<StateGql>>,
    /// Only campaigns of one of these kinds.
    pub kinds: Option<Vec<KindGql>>,
}

/// Call campaign queries.
#[derive(Default)]
pub struct CallCampaignQuery;

#[Object]
impl CallCampaignQuery {
    /// The organization's call campaigns, newest first (TEAM_LEAD).
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    async fn call_campaigns(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only campaigns matching this filter.")] filter: Option<
            CallCampaignFilterInput,
        >,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<CallCampaign>> {
        let app = ctx.app();
        let filter = filter.unwrap_or_default();
        let (page, total) = service::list(
            app.db(),
            app.principal()?,
            CampaignFilter {
                states: filter
                    .states
                    .unwrap_or_default()
                    .into_iter()
                    .map(Into::into)
                    .collect(),
                kinds: filter
                    .kinds
                    .unwrap_or_default()
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            },
            &PageArgs {
                after,
                before,
                first,
                last,
            },
        )
        .await?;
        Ok(Connection::new(page.map(CallCampaign), total))
    }

    /// A call campaign by id; null when there is none (TEAM_LEAD).
    async fn call_campaign(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The campaign's global id.")] id: ID,
    ) -> async_graphql::Result<Option<CallCampaign>> {
        let app = ctx.app();
        app.principal()?.require(Permission::ManageRouting)?;
        let id = decode_id(&id, "CallCampaign")?;
        Ok(app
            .load::<call_campaign::Entity>(id)
            .await?
            .map(CallCampaign))
    }
}

/// Who a call campaign calls: each phone number once (a contact named and in a group, or a raw
/// number that is a contact's, is called once). Contacts without a phone number, anonymized or
/// opted out of voice are left out; a raw number takes the contact that has it, if any.
#[derive(InputObject, Default)]
pub struct CallCampaignReceiversInput {
    /// Contacts.
    #[graphql(default)]
    pub contact_ids: Vec<ID>,
    /// Contact groups and segments: their members when the campaign is created or changed.
    #[graphql(default)]
    pub group_ids: Vec<ID>,
    /// Raw E.164 numbers.
    #[graphql(default)]
    pub phone_numbers: Vec<String>,
}

fn sources(input: CallCampaignReceiversInput) -> AppResult<Sources> {
    Ok(Sources {
        contact_ids: input
            .contact_ids
            .iter()
            .enumerate()
            .map(|(i, id)| input_id(&format!("receivers.contactIds.{i}"), id, "Contact"))
            .collect::<AppResult<_>>()?,
        group_ids: input
            .group_ids
            .iter()
            .enumerate()
            .map(|(i, id)| input_id(&format!("receivers.groupIds.{i}"), id, "ContactGroup"))
            .collect::<AppResult<_>>()?,
        phone_numbers: input.phone_numbers,
    })
}

fn audio(input: CallAudioInput) -> AppResult<Audio> {
    Ok(match input {
        CallAudioInput::AttachmentId(id) => {
            Audio::File(input_id("audio.attachmentId", &id, "Attachment")?)
        }
        CallAudioInput::TextToSpeech(t) => Audio::TextToSpeech {
            text: t.text,
            locale: t.locale,
        },
    })
}

fn buttons(input: Vec<ActionButtonGql>) -> Vec<ActionButton> {
    input
        .into_iter()
        .map(|b| ActionButton {
            button: b.button,
            action: ButtonAction::from(b.action),
        })
        .collect()
}

/// A new call campaign.
#[derive(InputObject)]
pub struct CreateCallCampaignInput {
    /// Name.
    pub name: String,
    /// What it is for.
    pub kind: KindGql,
    /// The voice channel to dial from (active, able to place calls).
    pub channel_id: ID,
    /// What to play.
    pub audio: CallAudioInput,
    /// Who to call (at least one reachable number).
    pub receivers: CallCampaignReceiversInput,
    /// When to start dialling (at most an hour in the past); null: now.
    pub start_time: Option<DateTime<Utc>>,
    /// When to stop dialling and complete (in the future, after `startTime`).
    pub end_time: DateTime<Utc>,
    /// Daily window start, `HH:MM` or `HH:MM:SS`, in the organization's timezone.
    pub active_from: String,
    /// Daily window end (excluded), after `activeFrom`; `24:00` for midnight.
    pub active_to: String,
    /// Weekdays it dials on (at least one).
    pub active_weekdays: Vec<WeekdayGql>,
    /// Redials of a receiver who did not answer (0 to 10, default 3).
    pub max_redials: Option<i32>,
    /// Seconds between an unanswered call and its redial (60 to 604800, default 600).
    pub redial_interval_seconds: Option<i32>,
    /// Keypad buttons (digits 0-9, each once); RSVP campaigns need an `ACCEPT` button.
    #[graphql(default)]
    pub action_buttons: Vec<ActionButtonGql>,
    /// Complete once this many receivers accepted (needs an `ACCEPT` button).
    pub accepts_wanted: Option<i32>,
    /// Client metadata (a JSON object, at most 16 KiB), passed as is in receiver events.
    pub metadata: Option<Json<serde_json::Value>>,
}

/// Changes to a call campaign that has not started; omitted fields stay, `null` clears an
/// optional one.
#[derive(InputObject)]
pub struct UpdateCallCampaignInput {
    /// The campaign.
    pub id: ID,
    /// New name.
    pub name: Option<String>,
    /// New kind.
    pub kind: Option<KindGql>,
    /// New channel.
    pub channel_id: Option<ID>,
    /// New audio.
    pub audio: Option<CallAudioInput>,
    /// New receivers (replace the old ones, resolved again).
    pub receivers: Option<CallCampaignReceiversInput>,
    /// New start time; `null` starts it as soon as possible.
    pub start_time: MaybeUndefined<DateTime<Utc>>,
    /// New end time.
    pub end_time: Option<DateTime<Utc>>,
    /// New window start.
    pub active_from: Option<String>,
    /// New window end.
    pub active_to: Option<String>,
    /// New weekdays.
    pub active_weekdays: Option<Vec<WeekdayGql>>,
    /// New redials.
    pub max_redials: Option<i32>,
    /// New redial interval.
    pub redial_interval_seconds: Option<i32>,
    /// New keypad buttons (replace the old ones).
    pub action_buttons: Option<Vec<ActionButtonGql>>,
    /// New accepts wanted; `null` for no target.
    pub accepts_wanted: MaybeUndefined<i32>,
    /// New metadata; `null` for none.
    pub metadata: MaybeUndefined<Json<serde_json::Value>>,
}

/// Sets a call campaign's state.
#[derive(InputObject)]
pub struct SetCallCampaignStateInput {
    /// The campaign.
    pub id: ID,
    /// `ACTIVE` (start now, or resume) or `HALTED` (stop dialling); other states are refused.
    pub state: StateGql,
}

/// Names one call campaign.
#[derive(InputObject)]
pub struct CallCampaignIdInput {
    /// The campaign.
    pub id: ID,
}

/// Result of a mutation on one call campaign.
#[derive(SimpleObject)]
pub struct CallCampaignPayload {
    /// The campaign after the change; null when it failed.
    pub call_campaign: Option<CallCampaign>,
    /// Why the input was refused (a change its state does not allow is `INVALID_STATE`); empty
    /// on success.
    pub user_errors: Vec<UserError>,
}

impl CallCampaignPayload {
    fn from(result: AppResult<call_campaign::Model>) -> async_graphql::Result<Self> {
        let (campaign, user_errors) = split(result)?;
        Ok(Self {
            call_campaign: campaign.map(CallCampaign),
            user_errors,
        })
    }
}

/// Result of deleting a call campaign.
#[derive(SimpleObject)]
pub struct DeleteCallCampaignPayload {
    /// The deleted campaign's id; null when it failed.
    pub deleted_call_campaign_id: Option<ID>,
    /// Why it could not be deleted; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Call campaign mutations.
#[derive(Default)]
pub struct CallCampaignMutation;

#[Object]
impl CallCampaignMutation {
    /// Creates a call campaign (TEAM_LEAD), `WAITING_TO_ACTIVE` until its start time; its
    /// receivers are resolved at once (zero receivers is a user error).
    async fn create_call_campaign(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CreateCallCampaignInput,
    ) -> async_graphql::Result<CallCampaignPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let now = app.state.clock.now();
        let result = async {
            principal.require(Permission::ManageRouting)?;
            let input = CampaignInput {
                name: input.name,
                kind: input.kind.into(),
                channel_id: input_id("channelId", &input.channel_id, "Channel")?,
                audio: Some(audio(input.audio)?),
                sources: sources(input.receivers)?,
                start_time: input.start_time,
                end_time: input.end_time,
                active_from: input.active_from,
                active_to: input.active_to,
                active_weekdays: input.active_weekdays.into_iter().map(Into::into).collect(),
                max_redials: input.max_redials,
                redial_interval_seconds: input.redial_interval_seconds,
                action_buttons: buttons(input.action_buttons),
                accepts_wanted: input.accepts_wanted,
                metadata: input.metadata.map(|m| m.0),
            };
            service::create(app.db(), principal, now, input).await
        }
        .await;
        CallCampaignPayload::from(result)
    }

    /// Changes a call campaign that has not started (TEAM_LEAD); checked as on creation. An
    /// active, halted-after-starting or complete campaign is `INVALID_STATE`.
    async fn update_call_campaign(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UpdateCallCampaignInput,
    ) -> async_graphql::Result<CallCampaignPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let now = app.state.clock.now();
        let result = async {
            principal.require(Permission::ManageRouting)?;
            let id = input_id("id", &input.id, "CallCampaign")?;
            let patch = CampaignPatch {
                name: input.name,
                kind: input.kind.map(Into::into),
                channel_id: input
                    .channel_id
                    .map(|id| input_id("channelId", &id, "Channel"))
                    .transpose()?,
                audio: input.audio.map(audio).transpose()?,
                sources: input.receivers.map(sources).transpose()?,
                start_time: patch(input.start_time),
                end_time: input.end_time,
                active_from: input.active_from,
                active_to: input.active_to,
                active_weekdays: input
                    .active_weekdays
                    .map(|days| days.into_iter().map(Into::into).collect()),
                max_redials: input.max_redials,
                redial_interval_seconds: input.redial_interval_seconds,
                action_buttons: input.action_buttons.map(buttons),
                accepts_wanted: patch(input.accepts_wanted),
                metadata: patch(input.metadata).map(|m| m.map(|m| m.0)),
            };
            service::update(app.db(), principal, now, id, patch).await
        }
        .await;
        CallCampaignPayload::from(result)
    }

    /// Sets a call campaign `ACTIVE` (start a waiting one now, resume a halted one) or `HALTED`
    /// (TEAM_LEAD). `WAITING_TO_ACTIVE` and `COMPLETE` are refused (`INVALID`): they follow from
    /// the start time and the dialer.
    async fn set_call_campaign_state(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: SetCallCampaignStateInput,
    ) -> async_graphql::Result<CallCampaignPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let now = app.state.clock.now();
        let result = async {
            principal.require(Permission::ManageRouting)?;
            let id = input_id("id", &input.id, "CallCampaign")?;
            service::set_state(app.db(), principal, now, id, State::from(input.state)).await
        }
        .await;
        CallCampaignPayload::from(result)
    }

    /// Deletes a call campaign that is not `ACTIVE` (TEAM_LEAD); its calls stay.
    async fn delete_call_campaign(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CallCampaignIdInput,
    ) -> async_graphql::Result<DeleteCallCampaignPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = async {
            let id = input_id("id", &input.id, "CallCampaign")?;
            service::delete(app.db(), principal, id).await
        }
        .await;
        let (id, user_errors) = split(result)?;
        Ok(DeleteCallCampaignPayload {
            deleted_call_campaign_id: id.map(|id| encode_id("CallCampaign", id)),
            user_errors,
        })
    }
}

/// What happened to a call campaign.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallCampaignChange {
    /// Changed before it started.
    Updated,
    /// Its state moved (see the campaign's `state`).
    StateChanged,
    /// It completed.
    Completed,
    /// A receiver finished (the stats moved).
    ReceiverFinished,
}

impl CallCampaignChange {
    fn of(event_type: &str) -> Option<Self> {
        use super::event_types as t;
        Some(match event_type {
            t::UPDATED => Self::Updated,
            t::STATE_CHANGED => Self::StateChanged,
            t::COMPLETED => Self::Completed,
            t::RECEIVER_FINISHED => Self::ReceiverFinished,
            _ => return None,
        })
    }
}

/// A call campaign's state or stats moved.
#[derive(SimpleObject)]
pub struct CallCampaignProgressEvent {
    /// This event's cursor: subscribe with it as `after` to resume after this event.
    cursor: String,
    /// What happened.
    change: CallCampaignChange,
    /// The receiver that finished (`RECEIVER_FINISHED`).
    receiver: Option<CallCampaignReceiver>,
    /// The campaign as it is when the event is delivered (state and stats).
    call_campaign: CallCampaign,
}

/// The call campaign subscription.
#[derive(Default)]
pub struct CallCampaignSubscription;

/// Call campaigns as they progress.
#[Subscription]
impl CallCampaignSubscription {
    /// A call campaign's progress (TEAM_LEAD): every change of its state and every receiver that
    /// finished. With `after`, first the changes after that cursor, then live ones.
    async fn call_campaign_progress(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The call campaign.")] campaign_id: ID,
        #[graphql(desc = "Resume after this event cursor (from an earlier event).")] after: Option<
            String,
        >,
    ) -> async_graphql::Result<
        impl Stream<Item = async_graphql::Result<CallCampaignProgressEvent>> + use<>,
    > {
        let app = ctx.app();
        let principal = app.principal()?.clone();
        principal.require(Permission::ManageRouting)?;
        let id = decode_id(&campaign_id, "CallCampaign")?;
        if app.load::<call_campaign::Entity>(id).await?.is_none() {
            return Err(AppError::NotFound("call campaign".into()).into());
        }
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
                if event.subject_type != super::SUBJECT || event.subject_id != id {
                    return Ok(None);
                }
                let Some(change) = CallCampaignChange::of(&event.event_type) else {
                    return Ok(None);
                };
                let Some(model) = crate::tenancy::by_id::<call_campaign::Entity>(org_id, id)
                    .one(&db)
                    .await?
                else {
                    return Ok(None);
                };
                let receiver = match event.payload["receiverId"]
                    .as_str()
                    .and_then(|r| uuid::Uuid::parse_str(r).ok())
                {
                    Some(receiver_id) if change == CallCampaignChange::ReceiverFinished => {
                        crate::tenancy::by_id::<call_campaign_receiver::Entity>(org_id, receiver_id)
                            .one(&db)
                            .await?
                            .map(CallCampaignReceiver)
                    }
                    _ => None,
                };
                Ok(Some(CallCampaignProgressEvent {
                    cursor: encode_cursor(event.seq),
                    change,
                    receiver,
                    call_campaign: CallCampaign(model),
                }))
            },
        ))
    }
}
