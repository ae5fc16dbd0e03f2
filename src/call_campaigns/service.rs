//! Business rules of call campaigns, over a transaction.
//!
//! A campaign is created `WAITING_TO_ACTIVE` with its receivers resolved at once (contacts named,
//! members of its groups and raw numbers, one receiver per phone number; contacts without a phone
//! number, anonymized or opted out of voice are left out; a raw number takes the contact that has
//! it, if any). It can be changed (receivers resolved again) until it first becomes `ACTIVE`: at
//! its start time, or when a client sets it `ACTIVE` early. Clients set only `ACTIVE` and
//! `HALTED`; `COMPLETE` comes from the dialer (see [`super::dialer`]) and from [`call_finished`],
//! which the calls service runs in the transaction that ends a campaign call.

use chrono::{DateTime, Duration, NaiveTime, Timelike, Utc};
use entity::{call_campaign, call_campaign_receiver, contact, contact_group};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    ButtonAction, CompletionReason, Kind, ReceiverStatus, Reply, SUBJECT, State, event_types,
};
use crate::auth::{Permission, Principal};
use crate::broadcasts::service::{Audience, audience_condition};
use crate::calls::CallStatus;
use crate::channels::ChannelType;
use crate::channels::service::{Weekday, active_channel};
use crate::contacts::service::{ConsentStatus, consents};
use crate::db;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::events::{self, Subject};
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::jobs::NewJob;
use crate::tenancy;
use crate::validate::{Errors, is_e164};

/// Longest name.
pub const MAX_NAME: usize = 200;
/// Longest text-to-speech text, in characters.
pub const MAX_TTS_TEXT: usize = 1_000;
/// Most contacts named directly.
pub const MAX_CONTACT_IDS: usize = 10_000;
/// Most groups.
pub const MAX_GROUP_IDS: usize = 100;
/// Most raw phone numbers.
pub const MAX_PHONE_NUMBERS: usize = 10_000;
/// Most redials of one receiver.
pub const MAX_REDIALS: i32 = 10;
/// Redials when none is given (as Multisender).
pub const DEFAULT_MAX_REDIALS: i32 = 3;
/// Shortest redial interval, seconds.
pub const MIN_REDIAL_INTERVAL: i32 = 60;
/// Longest redial interval, seconds (a week).
pub const MAX_REDIAL_INTERVAL: i32 = 7 * 24 * 3600;
/// Redial interval when none is given, seconds.
pub const DEFAULT_REDIAL_INTERVAL: i32 = 600;
/// Largest metadata, bytes of JSON.
pub const MAX_METADATA: usize = 16 * 1024;
/// How far in the past a start time may be.
pub const START_GRACE_SECONDS: i64 = 3600;
/// Receiver rows per insert statement.
const INSERT_CHUNK: usize = 1_000;

/// Where the receivers come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    /// Contacts named directly.
    pub contact_ids: Vec<Uuid>,
    /// Groups and segments: their members when the campaign is created or changed.
    pub group_ids: Vec<Uuid>,
    /// Raw E.164 numbers.
    pub phone_numbers: Vec<String>,
}

impl Sources {
    fn to_json(&self) -> Value {
        json!({
            "contactIds": self.contact_ids,
            "groupIds": self.group_ids,
            "phoneNumbers": self.phone_numbers,
        })
    }

    /// The sources stored on `model`.
    pub fn of(model: &call_campaign::Model) -> Self {
        let strings = |key: &str| -> Vec<String> {
            model.sources[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let ids = |key: &str| -> Vec<Uuid> {
            strings(key)
                .iter()
                .filter_map(|s| Uuid::parse_str(s).ok())
                .collect()
        };
        Self {
            contact_ids: ids("contactIds"),
            group_ids: ids("groupIds"),
            phone_numbers: strings("phoneNumbers"),
        }
    }
}

/// What is played.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audio {
    /// An uploaded audio file (an attachment of type `audio/*`).
    File(Uuid),
    /// Text spoken in a locale's voice.
    TextToSpeech {
        /// The text.
        text: String,
        /// BCP 47 locale of the voice.
        locale: String,
    },
}

impl Audio {
    /// The audio of `model`.
    pub fn of(model: &call_campaign::Model) -> Option<Self> {
        match (model.audio_attachment_id, &model.tts_text) {
            (Some(id), _) => Some(Audio::File(id)),
            (None, Some(text)) => Some(Audio::TextToSpeech {
                text: text.clone(),
                locale: model.tts_locale.clone().unwrap_or_default(),
            }),
            (None, None) => None,
        }
    }
}

/// A keypad button and what it means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionButton {
    /// The digit, `0`–`9`.
    pub button: String,
    /// What pressing it means.
    pub action: ButtonAction,
}

/// The action buttons stored on `model`.
pub fn buttons_of(model: &call_campaign::Model) -> Vec<ActionButton> {
    model
        .action_buttons
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|b| {
                    Some(ActionButton {
                        button: b["button"].as_str()?.to_string(),
                        action: ButtonAction::parse(b["action"].as_str()?)?,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The weekdays stored on `model`, Monday first.
pub fn weekdays_of(model: &call_campaign::Model) -> Vec<Weekday> {
    serde_json::from_value(model.active_weekdays.clone()).unwrap_or_default()
}

/// `HH:MM:SS` of seconds since midnight (`24:00:00` for the end of the day).
pub fn time_of_day(seconds: i32) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60
    )
}

/// Seconds since midnight of `HH:MM` or `HH:MM:SS`; `24:00` is allowed when `end`.
fn parse_time_of_day(value: &str, end: bool) -> Option<i32> {
    let value = value.trim();
    if end && (value == "24:00" || value == "24:00:00") {
        return Some(24 * 3600);
    }
    let time = NaiveTime::parse_from_str(value, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(value, "%H:%M"))
        .ok()?;
    i32::try_from(time.num_seconds_from_midnight()).ok()
}

/// A campaign as given on creation (and as an update sees it, the patch laid over it).
#[derive(Clone, Debug)]
pub struct CampaignInput {
    /// Name.
    pub name: String,
    /// What it is for.
    pub kind: Kind,
    /// The voice channel to dial from.
    pub channel_id: Uuid,
    /// What is played.
    pub audio: Option<Audio>,
    /// Who is called.
    pub sources: Sources,
    /// Not before (null: now).
    pub start_time: Option<DateTime<Utc>>,
    /// Not after.
    pub end_time: DateTime<Utc>,
    /// Daily window start, `HH:MM[:SS]`.
    pub active_from: String,
    /// Daily window end, `HH:MM[:SS]` (`24:00` for midnight).
    pub active_to: String,
    /// Weekdays it dials on.
    pub active_weekdays: Vec<Weekday>,
    /// Redials of an unanswered receiver (default 3).
    pub max_redials: Option<i32>,
    /// Seconds before a redial (default 600).
    pub redial_interval_seconds: Option<i32>,
    /// Keypad buttons.
    pub action_buttons: Vec<ActionButton>,
    /// Stop after this many accepts.
    pub accepts_wanted: Option<i32>,
    /// Client metadata (a JSON object).
    pub metadata: Option<Value>,
}

/// Changes to a campaign that has not started; `None` keeps a field, `Some(None)` clears an
/// optional one.
#[derive(Clone, Debug, Default)]
pub struct CampaignPatch {
    /// New name.
    pub name: Option<String>,
    /// New kind.
    pub kind: Option<Kind>,
    /// New channel.
    pub channel_id: Option<Uuid>,
    /// New audio.
    pub audio: Option<Audio>,
    /// New receivers (resolved again).
    pub sources: Option<Sources>,
    /// New start time; `Some(None)` starts as soon as possible.
    pub start_time: Option<Option<DateTime<Utc>>>,
    /// New end time.
    pub end_time: Option<DateTime<Utc>>,
    /// New window start.
    pub active_from: Option<String>,
    /// New window end.
    pub active_to: Option<String>,
    /// New weekdays.
    pub active_weekdays: Option<Vec<Weekday>>,
    /// New redials.
    pub max_redials: Option<i32>,
    /// New redial interval.
    pub redial_interval_seconds: Option<i32>,
    /// New buttons.
    pub action_buttons: Option<Vec<ActionButton>>,
    /// New accepts wanted.
    pub accepts_wanted: Option<Option<i32>>,
    /// New metadata.
    pub metadata: Option<Option<Value>>,
}

/// A checked campaign.
struct Checked {
    name: String,
    kind: Kind,
    channel_id: Uuid,
    audio: Audio,
    sources: Sources,
    start_time: Option<DateTime<Utc>>,
    end_time: DateTime<Utc>,
    active_from: i32,
    active_to: i32,
    weekdays: Vec<Weekday>,
    max_redials: i32,
    redial_interval: i32,
    buttons: Vec<ActionButton>,
    accepts_wanted: Option<i32>,
    metadata: Value,
}

fn invalid_state(message: impl Into<String>) -> AppError {
    AppError::invalid("id", UserErrorCode::InvalidState, message)
}

/// Checks `input` against the organization's channel, attachment, contacts and groups.
/// `start_checked`: whether the start time is new (a kept start time may be in the past).
async fn check<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    input: CampaignInput,
    now: DateTime<Utc>,
    start_checked: bool,
) -> AppResult<Checked> {
    let mut errors = Errors::default();
    let name = errors.required_text("name", &input.name, MAX_NAME);

    // Audio.
    let audio = match input.audio {
        None => {
            errors.add(
                "audio",
                UserErrorCode::Required,
                "give the audio: an uploaded attachmentId or textToSpeech",
            );
            None
        }
        Some(Audio::File(id)) => {
            match tenancy::by_id::<entity::attachment::Entity>(org_id, id)
                .one(conn)
                .await?
            {
                None => errors.add(
                    "audio.attachmentId",
                    UserErrorCode::NotFound,
                    "no such attachment",
                ),
                Some(a) if !a.content_type.to_ascii_lowercase().starts_with("audio/") => errors
                    .add(
                        "audio.attachmentId",
                        UserErrorCode::Invalid,
                        format!("the attachment is {}, not audio", a.content_type),
                    ),
                Some(_) => {}
            }
            Some(Audio::File(id))
        }
        Some(Audio::TextToSpeech { text, locale }) => {
            let text = errors.required_text("audio.textToSpeech.text", &text, MAX_TTS_TEXT);
            let locale = errors.locale("audio.textToSpeech.locale", &locale);
            Some(Audio::TextToSpeech { text, locale })
        }
    };

    // Receivers.
    let mut phone_numbers: Vec<String> = Vec::new();
    for (i, number) in input.sources.phone_numbers.iter().enumerate() {
        let number = number.trim();
        if !is_e164(number) {
            errors.add(
                &format!("receivers.phoneNumbers.{i}"),
                UserErrorCode::Invalid,
                format!("{number:?} is not an E.164 phone number such as +4520001234"),
            );
        } else if !phone_numbers.iter().any(|n| n == number) {
            phone_numbers.push(number.to_string());
        }
    }
    let sources = Sources {
        contact_ids: tenancy::distinct(&input.sources.contact_ids),
        group_ids: tenancy::distinct(&input.sources.group_ids),
        phone_numbers,
    };
    if input.sources.contact_ids.is_empty()
        && input.sources.group_ids.is_empty()
        && input.sources.phone_numbers.is_empty()
    {
        errors.add(
            "receivers",
            UserErrorCode::Required,
            "a campaign needs receivers: give contactIds, groupIds or phoneNumbers",
        );
    }
    for (field, len, max) in [
        (
            "receivers.contactIds",
            sources.contact_ids.len(),
            MAX_CONTACT_IDS,
        ),
        ("receivers.groupIds", sources.group_ids.len(), MAX_GROUP_IDS),
        (
            "receivers.phoneNumbers",
            sources.phone_numbers.len(),
            MAX_PHONE_NUMBERS,
        ),
    ] {
        if len > max {
            errors.add(
                field,
                UserErrorCode::TooLong,
                format!("at most {max} items; use a group"),
            );
        }
    }

    // Times.
    if start_checked
        && let Some(start) = input.start_time
        && start < now - Duration::seconds(START_GRACE_SECONDS)
    {
        errors.add(
            "startTime",
            UserErrorCode::Invalid,
            "startTime may not be more than an hour in the past",
        );
    }
    let starts = std::cmp::max(input.start_time.unwrap_or(now), now);
    if input.end_time <= starts {
        errors.add(
            "endTime",
            UserErrorCode::Invalid,
            "endTime must be in the future and after startTime",
        );
    }
    let active_from = parse_time_of_day(&input.active_from, false);
    let active_to = parse_time_of_day(&input.active_to, true);
    if active_from.is_none() {
        errors.add(
            "activeFrom",
            UserErrorCode::Invalid,
            format!("{:?} is not a time of day HH:MM[:SS]", input.active_from),
        );
    }
    if active_to.is_none() {
        errors.add(
            "activeTo",
            UserErrorCode::Invalid,
            format!(
                "{:?} is not a time of day HH:MM[:SS] (24:00 for midnight)",
                input.active_to
            ),
        );
    }
    if let (Some(from), Some(to)) = (active_from, active_to)
        && to <= from
    {
        errors.add(
            "activeTo",
            UserErrorCode::Invalid,
            "the active window must end after it starts (activeTo after activeFrom)",
        );
    }
    let mut weekdays = input.active_weekdays.clone();
    weekdays.sort();
    weekdays.dedup();
    if weekdays.is_empty() {
        errors.add(
            "activeWeekdays",
            UserErrorCode::Required,
            "give at least one weekday",
        );
    }

    // Redials.
    let max_redials = input.max_redials.unwrap_or(DEFAULT_MAX_REDIALS);
    if !(0..=MAX_REDIALS).contains(&max_redials) {
        errors.add(
            "maxRedials",
            UserErrorCode::Invalid,
            format!("maxRedials must be 0 to {MAX_REDIALS}"),
        );
    }
    let redial_interval = input
        .redial_interval_seconds
        .unwrap_or(DEFAULT_REDIAL_INTERVAL);
    if !(MIN_REDIAL_INTERVAL..=MAX_REDIAL_INTERVAL).contains(&redial_interval) {
        errors.add(
            "redialIntervalSeconds",
            UserErrorCode::Invalid,
            format!("redialIntervalSeconds must be {MIN_REDIAL_INTERVAL} to {MAX_REDIAL_INTERVAL}"),
        );
    }

    // Buttons.
    let mut buttons: Vec<ActionButton> = Vec::new();
    for (i, b) in input.action_buttons.iter().enumerate() {
        let button = b.button.trim();
        let digit = button.len() == 1 && button.chars().all(|c| c.is_ascii_digit());
        if !digit {
            errors.add(
                &format!("actionButtons.{i}.button"),
                UserErrorCode::Invalid,
                format!("{button:?} is not a keypad digit 0-9"),
            );
        } else if buttons.iter().any(|seen| seen.button == button) {
            errors.add(
                &format!("actionButtons.{i}.button"),
                UserErrorCode::Invalid,
                format!("button {button} is listed twice"),
            );
        } else {
            buttons.push(ActionButton {
                button: button.to_string(),
                action: b.action,
            });
        }
    }
    buttons.sort_by(|a, b| a.button.cmp(&b.button));
    let has_accept = buttons.iter().any(|b| b.action == ButtonAction::Accept);
    if input.kind == Kind::Rsvp && !has_accept {
        errors.add(
            "actionButtons",
            UserErrorCode::Required,
            "an RSVP campaign needs an ACCEPT button",
        );
    }
    if let Some(wanted) = input.accepts_wanted {
        if wanted < 1 {
            errors.add(
                "acceptsWanted",
                UserErrorCode::Invalid,
                "acceptsWanted must be at least 1",
            );
        } else if !has_accept {
            errors.add(
                "acceptsWanted",
                UserErrorCode::Invalid,
                "acceptsWanted needs an ACCEPT button",
            );
        }
    }

    // Metadata.
    let metadata = input.metadata.unwrap_or_else(|| json!({}));
    if !metadata.is_object() {
        errors.add(
            "metadata",
            UserErrorCode::Invalid,
            "metadata must be a JSON object",
        );
    } else if metadata.to_string().len() > MAX_METADATA {
        errors.add(
            "metadata",
            UserErrorCode::TooLong,
            format!("metadata may have at most {MAX_METADATA} bytes of JSON"),
        );
    }

    // Channel.
    match active_channel(conn, org_id, input.channel_id, "channelId").await {
        Ok(channel) => {
            let outbound = channel
                .capabilities
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c == "VOICE_OUTBOUND"));
            if !outbound {
                errors.add(
                    "channelId",
                    UserErrorCode::Invalid,
                    "the channel cannot place calls: it needs the VOICE_OUTBOUND capability",
                );
            }
        }
        Err(AppError::Validation(found)) => errors.0.extend(found),
        Err(other) => return Err(other),
    }
    errors.finish()?;
    tenancy::require_all::<contact::Entity, _>(
        conn,
        org_id,
        &sources.contact_ids,
        "receivers.contactIds",
        "no such contact",
    )
    .await?;
    tenancy::require_all::<contact_group::Entity, _>(
        conn,
        org_id,
        &sources.group_ids,
        "receivers.groupIds",
        "no such contact group",
    )
    .await?;
    let (Some(audio), Some(active_from), Some(active_to)) = (audio, active_from, active_to) else {
        return Err(AppError::Internal("checked fields missing".into()));
    };
    Ok(Checked {
        name,
        kind: input.kind,
        channel_id: input.channel_id,
        audio,
        sources,
        start_time: input.start_time,
        end_time: input.end_time,
        active_from,
        active_to,
        weekdays,
        max_redials,
        redial_interval,
        buttons,
        accepts_wanted: input.accepts_wanted,
        metadata,
    })
}

/// The receivers of `sources`: the contacts named and the members of the groups (not anonymized,
/// with a phone number, not opted out of voice), then the raw numbers (with the contact that has
/// the number, if any); one per phone number, the first kept.
async fn resolve<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    sources: &Sources,
) -> AppResult<Vec<(Option<Uuid>, String)>> {
    let mut receivers: Vec<(Option<Uuid>, String)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    if !sources.contact_ids.is_empty() || !sources.group_ids.is_empty() {
        let condition = audience_condition(
            conn,
            org_id,
            &Audience {
                contact_ids: sources.contact_ids.clone(),
                group_ids: sources.group_ids.clone(),
            },
        )
        .await?;
        let contacts = contact::Entity::find()
            .filter(condition)
            .filter(contact::Column::Phone.is_not_null())
            .order_by_asc(contact::Column::Id)
            .all(conn)
            .await?;
        for c in contacts {
            if opted_out_of_voice(&c) {
                continue;
            }
            if let Some(phone) = c.phone
                && seen.insert(phone.clone())
            {
                receivers.push((Some(c.id), phone));
            }
        }
    }
    let raw: Vec<String> = sources
        .phone_numbers
        .iter()
        .filter(|n| !seen.contains(*n))
        .cloned()
        .collect();
    if !raw.is_empty() {
        let mut owners = std::collections::HashMap::new();
        for chunk in raw.chunks(INSERT_CHUNK) {
            let found = tenancy::in_org::<contact::Entity>(org_id)
                .filter(contact::Column::Phone.is_in(chunk.to_vec()))
                .filter(contact::Column::AnonymizedAt.is_null())
                .order_by_asc(contact::Column::Id)
                .all(conn)
                .await?;
            for c in found {
                let opted_out = opted_out_of_voice(&c);
                if let Some(phone) = c.phone {
                    owners.entry(phone).or_insert((c.id, opted_out));
                }
            }
        }
        for number in raw {
            match owners.get(&number) {
                // The number's contact opted out of calls: left out, as the contact would be.
                Some((_, true)) => {}
                owner => {
                    if seen.insert(number.clone()) {
                        receivers.push((owner.map(|(id, _)| *id), number));
                    }
                }
            }
        }
    }
    Ok(receivers)
}

/// Whether `contact` opted out of voice calls.
fn opted_out_of_voice(contact: &contact::Model) -> bool {
    consents(contact)
        .iter()
        .any(|k| k.channel == ChannelType::Voice && k.status == ConsentStatus::OptedOut)
}

/// Replaces the receivers of `campaign` with `receivers` (all `PENDING`, due at `due`).
async fn store_receivers<C: ConnectionTrait>(
    conn: &C,
    campaign: &call_campaign::Model,
    receivers: Vec<(Option<Uuid>, String)>,
    due: DateTime<Utc>,
) -> AppResult<()> {
    call_campaign_receiver::Entity::delete_many()
        .filter(call_campaign_receiver::Column::CampaignId.eq(campaign.id))
        .exec(conn)
        .await?;
    let now = Utc::now();
    for chunk in receivers.chunks(INSERT_CHUNK) {
        let rows: Vec<call_campaign_receiver::ActiveModel> = chunk
            .iter()
            .map(|(contact_id, phone)| call_campaign_receiver::ActiveModel {
                id: Set(Uuid::now_v7()),
                org_id: Set(campaign.org_id),
                campaign_id: Set(campaign.id),
                contact_id: Set(*contact_id),
                phone_number: Set(phone.clone()),
                status: Set(ReceiverStatus::Pending.as_str().into()),
                answered: Set(false),
                reply: Set(None),
                keypad: Set(None),
                duration_seconds: Set(0),
                dial_count: Set(0),
                latest_call_id: Set(None),
                latest_call_at: Set(None),
                next_dial_at: Set(Some(due)),
                finished_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            })
            .collect();
        call_campaign_receiver::Entity::insert_many(rows)
            .exec(conn)
            .await?;
    }
    Ok(())
}

fn zero_receivers() -> AppError {
    AppError::invalid(
        "receivers",
        UserErrorCode::Invalid,
        "the campaign has no receivers: none of its contacts and group members has a phone number it may be called on",
    )
}

/// Records a campaign event.
pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    model: &call_campaign::Model,
    actor: Option<Uuid>,
    event_type: &str,
    payload: Value,
) -> AppResult<()> {
    events::record(
        conn,
        model.org_id,
        actor,
        event_type,
        Subject::new(SUBJECT, model.id),
        payload,
    )
    .await?;
    Ok(())
}

/// The state and stats of a campaign as an event payload (the seed's state webhook fields).
pub fn stats_payload(model: &call_campaign::Model) -> Value {
    json!({
        "campaignId": model.id,
        "state": model.state,
        "receivers": model.receivers,
        "finished": model.finished,
        "dialedCalls": model.dialed,
        "answeredCalls": model.answered,
        "totalDuration": model.total_duration,
        "acceptsReceived": model.accepts,
        "declinesReceived": model.declines,
        "noRepliesReceived": model.no_replies,
        "notAnswered": model.not_answered,
    })
}

/// The state of `model`.
pub fn state_of(model: &call_campaign::Model) -> State {
    State::parse(&model.state).unwrap_or(State::Complete)
}

/// The job that completes `model` at its end time.
fn end_job(model: &call_campaign::Model) -> NewJob {
    NewJob::new(super::dialer::END, json!({ "campaignId": model.id }))
        .org(model.org_id)
        .at(model.end_time)
}

/// A dialer job for `model` with `token`, due at `at`.
pub(crate) fn dial_job(model: &call_campaign::Model, token: Uuid, at: DateTime<Utc>) -> NewJob {
    NewJob::new(
        super::dialer::DIAL,
        json!({ "campaignId": model.id, "token": token }),
    )
    .org(model.org_id)
    .at(at)
}

/// Creates a campaign (TEAM_LEAD), `WAITING_TO_ACTIVE` until its start time (now when none).
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    input: CampaignInput,
) -> AppResult<call_campaign::Model> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let input = check(&txn, principal.org_id, input, now, true).await?;
    let receivers = resolve(&txn, principal.org_id, &input.sources).await?;
    if receivers.is_empty() {
        return Err(zero_receivers());
    }
    let (tts_text, tts_locale, attachment) = match input.audio {
        Audio::File(id) => (None, None, Some(id)),
        Audio::TextToSpeech { text, locale } => (Some(text), Some(locale), None),
    };
    let token = Uuid::now_v7();
    let model = call_campaign::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(principal.org_id),
        name: Set(input.name),
        kind: Set(input.kind.as_str().into()),
        channel_id: Set(Some(input.channel_id)),
        audio_attachment_id: Set(attachment),
        tts_text: Set(tts_text),
        tts_locale: Set(tts_locale),
        sources: Set(input.sources.to_json()),
        start_time: Set(input.start_time),
        end_time: Set(input.end_time),
        active_from: Set(input.active_from),
        active_to: Set(input.active_to),
        active_weekdays: Set(json!(input.weekdays)),
        max_redials: Set(input.max_redials),
        redial_interval_seconds: Set(input.redial_interval),
        action_buttons: Set(buttons_json(&input.buttons)),
        accepts_wanted: Set(input.accepts_wanted),
        metadata: Set(input.metadata),
        state: Set(State::WaitingToActive.as_str().into()),
        job_token: Set(Some(token)),
        started_at: Set(None),
        halted_at: Set(None),
        completed_at: Set(None),
        completion_reason: Set(None),
        receivers: Set(i64::try_from(receivers.len()).unwrap_or(i64::MAX)),
        finished: Set(0),
        cancelled: Set(0),
        dialed: Set(0),
        answered: Set(0),
        total_duration: Set(0),
        accepts: Set(0),
        declines: Set(0),
        no_replies: Set(0),
        not_answered: Set(0),
        created_by: Set(Some(principal.user_id())),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let start = std::cmp::max(model.start_time.unwrap_or(now), now);
    store_receivers(&txn, &model, receivers, start).await?;
    crate::jobs::enqueue(&txn, dial_job(&model, token, start)).await?;
    crate::jobs::enqueue(&txn, end_job(&model)).await?;
    record(
        &txn,
        &model,
        Some(principal.user_id()),
        event_types::CREATED,
        json!({
            "name": model.name,
            "kind": model.kind,
            "receivers": model.receivers,
            "startTime": model.start_time,
            "endTime": model.end_time,
        }),
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

fn buttons_json(buttons: &[ActionButton]) -> Value {
    Value::Array(
        buttons
            .iter()
            .map(|b| json!({ "button": b.button, "action": b.action.as_str() }))
            .collect(),
    )
}

/// The campaign `id` of `org_id`, locked for the transaction; `NOT_FOUND` at `id`.
async fn find_for_update<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    id: Uuid,
) -> AppResult<call_campaign::Model> {
    tenancy::by_id::<call_campaign::Entity>(org_id, id)
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid("id", UserErrorCode::NotFound, "no such call campaign"))
}

/// Whether `model` can still be changed: it never became active and is not complete.
pub fn editable(model: &call_campaign::Model) -> bool {
    model.started_at.is_none() && matches!(state_of(model), State::WaitingToActive | State::Halted)
}

/// Changes a campaign that has not started (TEAM_LEAD); checked as on creation.
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    id: Uuid,
    patch: CampaignPatch,
) -> AppResult<call_campaign::Model> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let current = find_for_update(&txn, principal.org_id, id).await?;
    if !editable(&current) {
        return Err(invalid_state(format!(
            "the campaign is {} and has started: only a campaign that has not started can be edited",
            current.state
        )));
    }
    let mut input = CampaignInput {
        name: current.name.clone(),
        kind: Kind::parse(&current.kind).unwrap_or(Kind::Broadcast),
        channel_id: current.channel_id.unwrap_or_default(),
        audio: Audio::of(&current),
        sources: Sources::of(&current),
        start_time: current.start_time,
        end_time: current.end_time,
        active_from: time_of_day(current.active_from),
        active_to: time_of_day(current.active_to),
        active_weekdays: weekdays_of(&current),
        max_redials: Some(current.max_redials),
        redial_interval_seconds: Some(current.redial_interval_seconds),
        action_buttons: buttons_of(&current),
        accepts_wanted: current.accepts_wanted,
        metadata: Some(current.metadata.clone()),
    };
    let mut changed: Vec<&str> = Vec::new();
    macro_rules! apply {
        ($field:ident, $name:literal) => {
            if let Some(value) = patch.$field {
                input.$field = value;
                changed.push($name);
            }
        };
    }
    apply!(name, "name");
    apply!(kind, "kind");
    apply!(channel_id, "channelId");
    if let Some(audio) = patch.audio {
        input.audio = Some(audio);
        changed.push("audio");
    }
    let sources_changed = patch.sources.is_some();
    apply!(sources, "receivers");
    let start_changed = patch.start_time.is_some();
    apply!(start_time, "startTime");
    apply!(end_time, "endTime");
    apply!(active_from, "activeFrom");
    apply!(active_to, "activeTo");
    apply!(active_weekdays, "activeWeekdays");
    if let Some(v) = patch.max_redials {
        input.max_redials = Some(v);
        changed.push("maxRedials");
    }
    if let Some(v) = patch.redial_interval_seconds {
        input.redial_interval_seconds = Some(v);
        changed.push("redialIntervalSeconds");
    }
    apply!(action_buttons, "actionButtons");
    apply!(accepts_wanted, "acceptsWanted");
    apply!(metadata, "metadata");
    let input = check(&txn, principal.org_id, input, now, start_changed).await?;
    let receivers = if sources_changed {
        let receivers = resolve(&txn, principal.org_id, &input.sources).await?;
        if receivers.is_empty() {
            return Err(zero_receivers());
        }
        Some(receivers)
    } else {
        None
    };
    let (tts_text, tts_locale, attachment) = match input.audio {
        Audio::File(id) => (None, None, Some(id)),
        Audio::TextToSpeech { text, locale } => (Some(text), Some(locale), None),
    };
    let waiting = state_of(&current) == State::WaitingToActive;
    // The end job waits for the end time it was queued for (deferring itself when the end moves
    // later): an earlier end gets a job of its own.
    let ends_earlier = input.end_time < current.end_time;
    let mut model = current.into_active_model();
    model.name = Set(input.name);
    model.kind = Set(input.kind.as_str().into());
    model.channel_id = Set(Some(input.channel_id));
    model.audio_attachment_id = Set(attachment);
    model.tts_text = Set(tts_text);
    model.tts_locale = Set(tts_locale);
    model.sources = Set(input.sources.to_json());
    model.start_time = Set(input.start_time);
    model.end_time = Set(input.end_time);
    model.active_from = Set(input.active_from);
    model.active_to = Set(input.active_to);
    model.active_weekdays = Set(json!(input.weekdays));
    model.max_redials = Set(input.max_redials);
    model.redial_interval_seconds = Set(input.redial_interval);
    model.action_buttons = Set(buttons_json(&input.buttons));
    model.accepts_wanted = Set(input.accepts_wanted);
    model.metadata = Set(input.metadata);
    model.updated_at = Set(now);
    let start = std::cmp::max(input.start_time.unwrap_or(now), now);
    if let Some(receivers) = &receivers {
        model.receivers = Set(i64::try_from(receivers.len()).unwrap_or(i64::MAX));
    }
    let token = Uuid::now_v7();
    if waiting && start_changed {
        model.job_token = Set(Some(token));
    }
    let updated = model.update(&txn).await?;
    if let Some(receivers) = receivers {
        store_receivers(&txn, &updated, receivers, start).await?;
    } else if start_changed {
        call_campaign_receiver::Entity::update_many()
            .col_expr(
                call_campaign_receiver::Column::NextDialAt,
                Expr::value(Some(start)),
            )
            .filter(call_campaign_receiver::Column::CampaignId.eq(updated.id))
            .exec(&txn)
            .await?;
    }
    if waiting && start_changed {
        crate::jobs::enqueue(&txn, dial_job(&updated, token, start)).await?;
    }
    if ends_earlier {
        crate::jobs::enqueue(&txn, end_job(&updated)).await?;
    }
    record(
        &txn,
        &updated,
        Some(principal.user_id()),
        event_types::UPDATED,
        json!({ "changed": changed }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Sets a campaign `ACTIVE` or `HALTED` (TEAM_LEAD). `ACTIVE` starts a waiting campaign now and
/// resumes a halted one (back to `WAITING_TO_ACTIVE` when it never started and its start time is
/// still ahead); `HALTED` stops the dialer (calls going on finish). Other states are refused.
pub async fn set_state(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    id: Uuid,
    state: State,
) -> AppResult<call_campaign::Model> {
    principal.require(Permission::ManageRouting)?;
    if !matches!(state, State::Active | State::Halted) {
        return Err(AppError::invalid(
            "state",
            UserErrorCode::Invalid,
            format!(
                "a campaign can only be set ACTIVE or HALTED; it is {} by its start time and the dialer",
                state.as_str()
            ),
        ));
    }
    let txn = db::begin_write(db).await?;
    let current = find_for_update(&txn, principal.org_id, id).await?;
    let from = state_of(&current);
    if from == State::Complete {
        return Err(invalid_state(
            "the campaign is COMPLETE: its state can no longer change",
        ));
    }
    let mut model = current.clone().into_active_model();
    let mut job = None;
    let to = match (from, state) {
        (State::Halted, State::Halted) => {
            return Err(invalid_state("the campaign is already HALTED"));
        }
        (State::Active, State::Active) => {
            return Err(invalid_state("the campaign is already ACTIVE"));
        }
        (_, State::Halted) => {
            model.halted_at = Set(Some(now));
            model.job_token = Set(None);
            State::Halted
        }
        (State::Halted, _)
            if current.started_at.is_none()
                && current.start_time.is_some_and(|start| start > now) =>
        {
            let token = Uuid::now_v7();
            model.halted_at = Set(None);
            model.job_token = Set(Some(token));
            job = Some((token, current.start_time.unwrap_or(now)));
            State::WaitingToActive
        }
        _ => {
            if let Some(channel_id) = current.channel_id {
                active_channel(&txn, current.org_id, channel_id, "channelId").await?;
            } else {
                return Err(AppError::invalid(
                    "channelId",
                    UserErrorCode::InvalidState,
                    "the campaign's channel was deleted",
                ));
            }
            let token = Uuid::now_v7();
            model.halted_at = Set(None);
            model.job_token = Set(Some(token));
            if current.started_at.is_none() {
                model.started_at = Set(Some(now));
            }
            job = Some((token, now));
            State::Active
        }
    };
    model.state = Set(to.as_str().into());
    model.updated_at = Set(now);
    let updated = model.update(&txn).await?;
    if let Some((token, at)) = job {
        if to == State::Active {
            // Receivers due later than now (a start time ahead) are due now.
            call_campaign_receiver::Entity::update_many()
                .col_expr(
                    call_campaign_receiver::Column::NextDialAt,
                    Expr::value(Some(now)),
                )
                .filter(call_campaign_receiver::Column::CampaignId.eq(updated.id))
                .filter(call_campaign_receiver::Column::Status.eq(ReceiverStatus::Pending.as_str()))
                .filter(call_campaign_receiver::Column::DialCount.eq(0))
                .exec(&txn)
                .await?;
        }
        crate::jobs::enqueue(&txn, dial_job(&updated, token, at)).await?;
    }
    let mut payload = stats_payload(&updated);
    payload["from"] = json!(from.as_str());
    record(
        &txn,
        &updated,
        Some(principal.user_id()),
        event_types::STATE_CHANGED,
        payload,
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Deletes a campaign that is not `ACTIVE` (TEAM_LEAD; halt it first); its calls stay.
pub async fn delete(db: &DatabaseConnection, principal: &Principal, id: Uuid) -> AppResult<Uuid> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let current = find_for_update(&txn, principal.org_id, id).await?;
    if state_of(&current) == State::Active {
        return Err(invalid_state(
            "the campaign is ACTIVE: halt it before deleting it",
        ));
    }
    record(
        &txn,
        &current,
        Some(principal.user_id()),
        event_types::DELETED,
        json!({ "name": current.name }),
    )
    .await?;
    call_campaign::Entity::delete_by_id(current.id)
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(id)
}

/// Completes `current` for `reason` at `at`: receivers still pending are cancelled (calls going
/// on still finish and count).
pub(crate) async fn complete<C: ConnectionTrait>(
    conn: &C,
    current: call_campaign::Model,
    reason: CompletionReason,
    at: DateTime<Utc>,
) -> AppResult<call_campaign::Model> {
    let from = state_of(&current);
    let cancelled = call_campaign_receiver::Entity::update_many()
        .col_expr(
            call_campaign_receiver::Column::Status,
            Expr::value(ReceiverStatus::Cancelled.as_str()),
        )
        .col_expr(
            call_campaign_receiver::Column::NextDialAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(call_campaign_receiver::Column::UpdatedAt, Expr::value(at))
        .filter(call_campaign_receiver::Column::CampaignId.eq(current.id))
        .filter(call_campaign_receiver::Column::Status.eq(ReceiverStatus::Pending.as_str()))
        .exec(conn)
        .await?
        .rows_affected;
    let mut model = current.clone().into_active_model();
    model.state = Set(State::Complete.as_str().into());
    model.completed_at = Set(Some(at));
    model.completion_reason = Set(Some(reason.as_str().into()));
    model.job_token = Set(None);
    model.cancelled = Set(current.cancelled + i64::try_from(cancelled).unwrap_or(i64::MAX));
    model.updated_at = Set(at);
    let updated = model.update(conn).await?;
    let mut payload = stats_payload(&updated);
    payload["from"] = json!(from.as_str());
    payload["reason"] = json!(reason.as_str());
    record(conn, &updated, None, event_types::COMPLETED, payload).await?;
    Ok(updated)
}

/// The reply of an answered call from the digits pressed: the first digit that is an action
/// button decides; none is `NO_REPLY`.
pub fn reply_of(buttons: &[ActionButton], keypad: Option<&str>) -> Reply {
    for digit in keypad.unwrap_or_default().chars() {
        if let Some(b) = buttons.iter().find(|b| b.button.starts_with(digit)) {
            return match b.action {
                ButtonAction::Accept => Reply::Accept,
                ButtonAction::Decline => Reply::Decline,
            };
        }
    }
    Reply::NoReply
}

/// Hook of the calls service, in the transaction that moved `call` to an end status at `at`:
/// when it is a campaign call, its receiver finishes (answered: with the reply its keypad digits
/// give; not answered — busy, no answer, failed, cancelled or voicemail — after its last redial)
/// or is due again after the redial interval; the campaign's stats move and it completes when
/// every receiver is done or enough accepted. One statement for other calls: none.
pub async fn call_finished<C: ConnectionTrait>(
    conn: &C,
    call: &entity::call::Model,
    at: DateTime<Utc>,
) -> AppResult<()> {
    let (Some(campaign_id), Some(receiver_id)) = (call.campaign_id, call.campaign_receiver_id)
    else {
        return Ok(());
    };
    // Inside a dialer batch, the campaign and the receiver are the batch's (no reads) and the
    // campaign's counters move in memory, written once at the batch's end.
    let cached = super::dialer::cached(campaign_id, receiver_id);
    let (campaign, receiver) = match cached.clone() {
        Some(both) => both,
        None => {
            let Some(receiver) = call_campaign_receiver::Entity::find_by_id(receiver_id)
                .one(conn)
                .await?
                .filter(|r| r.campaign_id == campaign_id)
            else {
                return Ok(());
            };
            let Some(campaign) = call_campaign::Entity::find_by_id(campaign_id)
                .one(conn)
                .await?
            else {
                return Ok(());
            };
            (campaign, receiver)
        }
    };
    if ReceiverStatus::parse(&receiver.status) != Some(ReceiverStatus::Dialing) {
        // Already counted (a report came twice), or the receiver was cancelled meanwhile.
        return Ok(());
    }
    // Answered by a person: completed (voicemail counts as not answered, so it is redialled).
    let answered = CallStatus::parse(&call.status) == Some(CallStatus::Completed)
        && call.answered_at.is_some();
    let talk = std::cmp::max(call.talk_seconds.unwrap_or(0), 0);
    // A completed campaign dials no more: a call of it still going on when it completed
    // finishes its receiver, whatever redials were left.
    let redial = !answered
        && receiver.dial_count <= campaign.max_redials
        && state_of(&campaign) != State::Complete;
    let ended = call.ended_at.unwrap_or(at);
    let mut row = receiver.clone().into_active_model();
    row.latest_call_id = Set(Some(call.id));
    row.updated_at = Set(at);
    let reply = if answered {
        reply_of(&buttons_of(&campaign), call.keypad.as_deref())
    } else {
        Reply::NoReply
    };
    if redial {
        row.status = Set(ReceiverStatus::Pending.as_str().into());
        row.next_dial_at = Set(Some(
            ended + Duration::seconds(i64::from(campaign.redial_interval_seconds)),
        ));
    } else {
        row.status = Set(ReceiverStatus::Finished.as_str().into());
        row.answered = Set(answered);
        row.reply = Set(Some(reply.as_str().into()));
        row.keypad = Set(if answered { call.keypad.clone() } else { None });
        row.duration_seconds = Set(if answered { talk } else { 0 });
        row.finished_at = Set(Some(ended));
    }
    let receiver = row.update(conn).await?;

    use call_campaign::Column as K;
    let one = |yes: bool| i64::from(yes);
    let finished = !redial;
    let talked = if answered { i64::from(talk) } else { 0 };
    if cached.is_some() {
        let mut updated = campaign;
        updated.answered += one(answered);
        updated.total_duration += talked;
        updated.finished += one(finished);
        updated.not_answered += one(finished && !answered);
        updated.accepts += one(answered && reply == Reply::Accept);
        updated.declines += one(answered && reply == Reply::Decline);
        updated.no_replies += one(answered && reply == Reply::NoReply);
        updated.updated_at = at;
        super::dialer::remember(updated.clone(), receiver.clone());
        if finished {
            return receiver_finished(conn, updated, &receiver, call, answered, reply, at, true)
                .await;
        }
        return Ok(());
    }
    let mut update = call_campaign::Entity::update_many()
        .col_expr(K::Answered, Expr::col(K::Answered).add(one(answered)))
        .col_expr(
            K::TotalDuration,
            Expr::col(K::TotalDuration).add(if answered { i64::from(talk) } else { 0 }),
        )
        .col_expr(K::Finished, Expr::col(K::Finished).add(one(finished)))
        .col_expr(
            K::NotAnswered,
            Expr::col(K::NotAnswered).add(one(finished && !answered)),
        )
        .col_expr(
            K::Accepts,
            Expr::col(K::Accepts).add(one(answered && reply == Reply::Accept)),
        )
        .col_expr(
            K::Declines,
            Expr::col(K::Declines).add(one(answered && reply == Reply::Decline)),
        )
        .col_expr(
            K::NoReplies,
            Expr::col(K::NoReplies).add(one(answered && reply == Reply::NoReply)),
        )
        .col_expr(K::UpdatedAt, Expr::value(at));
    // A redial while no dialer job is queued (calls that end through the provider's reports
    // after the dialer went idle) queues one.
    let rearm = redial && campaign.job_token.is_none() && state_of(&campaign) == State::Active;
    let token = Uuid::now_v7();
    if rearm {
        update = update.col_expr(K::JobToken, Expr::value(Some(token)));
    }
    let Some(updated) = update
        .filter(K::Id.eq(campaign_id))
        .exec_with_returning(conn)
        .await?
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    if rearm && let Some(due) = receiver.next_dial_at {
        crate::jobs::enqueue(conn, dial_job(&updated, token, due)).await?;
    }
    if finished {
        receiver_finished(conn, updated, &receiver, call, answered, reply, at, false).await?;
    }
    Ok(())
}

/// Records that `receiver` finished and completes `updated` when it is done.
#[allow(clippy::too_many_arguments)]
async fn receiver_finished<C: ConnectionTrait>(
    conn: &C,
    updated: call_campaign::Model,
    receiver: &call_campaign_receiver::Model,
    call: &entity::call::Model,
    answered: bool,
    reply: Reply,
    at: DateTime<Utc>,
    cached: bool,
) -> AppResult<()> {
    {
        record(
            conn,
            &updated,
            None,
            event_types::RECEIVER_FINISHED,
            json!({
                "campaignId": updated.id,
                "receiverId": receiver.id,
                "contactId": receiver.contact_id,
                "phoneNumber": receiver.phone_number,
                "answered": answered,
                "reply": reply.as_str(),
                "keypad": receiver.keypad,
                "dialCount": receiver.dial_count,
                "durationSeconds": receiver.duration_seconds,
                "callId": call.id,
                "metadata": updated.metadata,
            }),
        )
        .await?;
        if state_of(&updated) != State::Complete {
            let reason = if updated
                .accepts_wanted
                .is_some_and(|wanted| updated.accepts >= i64::from(wanted))
            {
                Some(CompletionReason::AcceptsWantedReached)
            } else if updated.finished + updated.cancelled >= updated.receivers {
                Some(CompletionReason::AllDone)
            } else {
                None
            };
            if let Some(reason) = reason {
                if cached {
                    let updated = write_counters(conn, updated).await?;
                    let completed = complete(conn, updated, reason, at).await?;
                    super::dialer::remember_campaign(completed);
                } else {
                    complete(conn, updated, reason, at).await?;
                }
            }
        }
    }
    Ok(())
}

/// Writes the counters of `model` (as a dialer batch moved them in memory, under the campaign's
/// lock).
pub(crate) async fn write_counters<C: ConnectionTrait>(
    conn: &C,
    model: call_campaign::Model,
) -> AppResult<call_campaign::Model> {
    let mut row = model.clone().into_active_model();
    row.dialed = Set(model.dialed);
    row.answered = Set(model.answered);
    row.total_duration = Set(model.total_duration);
    row.finished = Set(model.finished);
    row.not_answered = Set(model.not_answered);
    row.accepts = Set(model.accepts);
    row.declines = Set(model.declines);
    row.no_replies = Set(model.no_replies);
    row.updated_at = Set(model.updated_at);
    Ok(row.update(conn).await?)
}

/// Erases `contact_id`'s numbers and keypad input from the campaigns' receivers (for the
/// anonymization of the contact, in its transaction): each of its receivers keeps its outcome
/// with the number `anonymized-<receiver id>`; one still pending is cancelled (never dialled).
/// Returns how many receivers were erased.
pub async fn erase_contact<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    contact_id: Uuid,
    at: DateTime<Utc>,
) -> AppResult<u64> {
    let receivers = tenancy::in_org::<call_campaign_receiver::Entity>(org_id)
        .filter(call_campaign_receiver::Column::ContactId.eq(contact_id))
        .all(conn)
        .await?;
    let erased = receivers.len() as u64;
    for receiver in receivers {
        let pending = ReceiverStatus::parse(&receiver.status) == Some(ReceiverStatus::Pending);
        let (id, campaign_id) = (receiver.id, receiver.campaign_id);
        let mut row = receiver.into_active_model();
        row.phone_number = Set(format!("anonymized-{id}"));
        row.keypad = Set(None);
        row.updated_at = Set(at);
        if pending {
            row.status = Set(ReceiverStatus::Cancelled.as_str().into());
            row.next_dial_at = Set(None);
        }
        row.update(conn).await?;
        if pending {
            call_campaign::Entity::update_many()
                .col_expr(
                    call_campaign::Column::Cancelled,
                    Expr::col(call_campaign::Column::Cancelled).add(1),
                )
                .filter(call_campaign::Column::Id.eq(campaign_id))
                .exec(conn)
                .await?;
        }
    }
    Ok(erased)
}

/// Which campaigns to list.
#[derive(Clone, Debug, Default)]
pub struct CampaignFilter {
    /// In one of these states.
    pub states: Vec<State>,
    /// Of one of these kinds.
    pub kinds: Vec<Kind>,
}

/// One page of campaigns, newest first (TEAM_LEAD).
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: CampaignFilter,
    args: &PageArgs,
) -> AppResult<(Page<call_campaign::Model>, TotalCount)> {
    principal.require(Permission::ManageRouting)?;
    let mut select = tenancy::in_org::<call_campaign::Entity>(principal.org_id);
    if !filter.states.is_empty() {
        select = select
            .filter(call_campaign::Column::State.is_in(filter.states.iter().map(|s| s.as_str())));
    }
    if !filter.kinds.is_empty() {
        select = select
            .filter(call_campaign::Column::Kind.is_in(filter.kinds.iter().map(|s| s.as_str())));
    }
    let sort = Sort {
        name: "CREATED",
        column: call_campaign::Column::CreatedAt,
        direction: SortDirection::Desc,
        value: |m: &call_campaign::Model| SortValue::Time(m.created_at),
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "callCampaigns", &sort, args).await?;
    Ok((page, total))
}

/// Which receivers to list.
#[derive(Clone, Debug, Default)]
pub struct ReceiverFilter {
    /// In one of these statuses.
    pub statuses: Vec<ReceiverStatus>,
    /// With one of these replies.
    pub replies: Vec<Reply>,
}

/// One page of a campaign's receivers in the order they were resolved.
pub async fn receivers(
    db: &DatabaseConnection,
    principal: &Principal,
    campaign_id: Uuid,
    filter: &ReceiverFilter,
    args: &PageArgs,
) -> AppResult<(Page<call_campaign_receiver::Model>, TotalCount)> {
    principal.require(Permission::ManageRouting)?;
    let mut select = tenancy::in_org::<call_campaign_receiver::Entity>(principal.org_id)
        .filter(call_campaign_receiver::Column::CampaignId.eq(campaign_id));
    if !filter.statuses.is_empty() {
        select = select.filter(
            call_campaign_receiver::Column::Status
                .is_in(filter.statuses.iter().map(|s| s.as_str())),
        );
    }
    if !filter.replies.is_empty() {
        select = select.filter(
            call_campaign_receiver::Column::Reply.is_in(filter.replies.iter().map(|s| s.as_str())),
        );
    }
    let sort = Sort {
        name: "RESOLVED",
        column: call_campaign_receiver::Column::CreatedAt,
        direction: SortDirection::Asc,
        value: |m: &call_campaign_receiver::Model| SortValue::Time(m.created_at),
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "callCampaignReceivers", &sort, args).await?;
    Ok((page, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day() {
        assert_eq!(parse_time_of_day("09:00", false), Some(9 * 3600));
        assert_eq!(parse_time_of_day("17:30:15", false), Some(17 * 3600 + 1815));
        assert_eq!(parse_time_of_day("24:00", false), None);
        assert_eq!(parse_time_of_day("24:00", true), Some(86_400));
        assert_eq!(parse_time_of_day("9am", false), None);
        assert_eq!(time_of_day(9 * 3600 + 61), "09:01:01");
    }

    #[test]
    fn replies_from_the_keypad() {
        let buttons = vec![
            ActionButton {
                button: "5".into(),
                action: ButtonAction::Accept,
            },
            ActionButton {
                button: "9".into(),
                action: ButtonAction::Decline,
            },
        ];
        assert_eq!(reply_of(&buttons, Some("5")), Reply::Accept);
        assert_eq!(reply_of(&buttons, Some("19")), Reply::Decline);
        assert_eq!(reply_of(&buttons, Some("1")), Reply::NoReply);
        assert_eq!(reply_of(&buttons, None), Reply::NoReply);
    }
}
