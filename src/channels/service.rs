//! Business rules of channels, over a transaction.
//!
//! Rules:
//! - The type is fixed at creation. The address must suit it: an email address for `EMAIL`
//!   (stored in lower case), an E.164 number for `SMS`, `WHATSAPP` and `VOICE`, and a widget key
//!   (`[A-Za-z0-9_-]{8,64}`) for `CHAT`, `MESSENGER` and `VIDEO` (generated when omitted). One
//!   address per type per organization, archived channels included (`TAKEN`).
//! - Capabilities: `SMS`/`MMS` on `SMS` and `WHATSAPP` channels, `VOICE_INBOUND`/`VOICE_OUTBOUND`
//!   on `VOICE` and `SMS` channels, none on the others. Omitted on create: `SMS MMS` for `SMS`
//!   and `WHATSAPP`, both voice directions for `VOICE`, none otherwise.
//! - Providers: `SIMULATOR` (the default) and `WEBHOOK` for every type, `SMTP` for `EMAIL` only.
//!   Provider settings are a JSON object of at most 4 KiB without secrets (keys naming a
//!   password, secret, token, API key, authorization or credential are refused; secrets live
//!   in the server's configuration). `WEBHOOK` needs an http(s) `url`; `SMTP` needs a `host` and
//!   takes an optional `port` (1–65535), `tls` (`NONE`, `STARTTLS` or `TLS`) and `username`
//!   (the password is the server's `smtp_password` setting).
//! - Every channel has an ingest secret (`whsec_…`), returned once by create and by
//!   [`rotate_ingest_secret`]: it signs the provider's requests to `POST /ingest/{channel}` and
//!   the webhook provider's sends.
//! - Send rate: more than 0 and at most 1,000 messages per second; by default 1 for `SMS` and
//!   `WHATSAPP` (the carriers' unregistered rate, as Text Request throttles) and 10 otherwise.
//! - The default queue must be a queue of the organization (`NOT_FOUND` otherwise).
//! - Business hours: an IANA timezone and, per weekday, open intervals `HH:MM`–`HH:MM` (close may
//!   be `24:00`) with open before close and no overlaps; a day listed twice is refused.
//! - Archived channels cannot be changed (unarchive first) and take no new conversations
//!   ([`active_channel`]). Archiving an archived channel, or unarchiving an active one, is
//!   `INVALID_STATE`.
//! - Every change records `CHANNEL_CREATED`, `CHANNEL_UPDATED` (payload `changed`: the fields
//!   that changed), `CHANNEL_ARCHIVED` or `CHANNEL_UNARCHIVED` with the channel as subject.

use chrono::{DateTime, Datelike, Timelike, Utc};
use entity::channel;
use rand::Rng;
use sea_orm::sea_query::{Expr, ExprTrait as _, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, IntoActiveModel,
    QueryFilter, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::ChannelType;
use crate::auth::{Permission, Principal};
use crate::db::{self, like_pattern};
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::events::{self, Subject};
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::tenancy;
use crate::validate::Errors;

/// The subject kind of channel events.
pub const SUBJECT: &str = "Channel";

/// Most characters of a channel name.
pub const MAX_NAME: usize = 200;
/// Most characters of an automatic reply.
pub const MAX_AUTO_REPLY: usize = 2_000;
/// Largest provider settings, serialized, in bytes.
pub const MAX_SETTINGS_BYTES: usize = 4_096;
/// Highest send rate, messages per second.
pub const MAX_SEND_RATE: f64 = 1_000.0;

macro_rules! stored_enum {
    ($ty:ident { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// Stored name.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),* }
            }
            /// Parses a stored name.
            pub fn parse(name: &str) -> Option<Self> {
                match name { $($name => Some($ty::$variant),)* _ => None }
            }
        }
    };
}

/// What a channel's number can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Text messages.
    Sms,
    /// Picture and media messages.
    Mms,
    /// Receive calls.
    VoiceInbound,
    /// Place calls.
    VoiceOutbound,
}

stored_enum!(Capability {
    Sms => "SMS",
    Mms => "MMS",
    VoiceInbound => "VOICE_INBOUND",
    VoiceOutbound => "VOICE_OUTBOUND",
});

/// Who carries a channel's traffic (DESIGN §7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// The built-in simulator: deterministic outcomes by recipient address.
    Simulator,
    /// An HTTP bridge: signed send requests to a URL, status callbacks on the ingest endpoint.
    Webhook,
    /// Email over SMTP.
    Smtp,
}

stored_enum!(Provider {
    Simulator => "simulator",
    Webhook => "webhook",
    Smtp => "smtp",
});

/// Whether a channel is in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelStatus {
    /// In use.
    Active,
    /// Archived: kept with its history, takes no new conversations.
    Archived,
}

stored_enum!(ChannelStatus { Active => "ACTIVE", Archived => "ARCHIVED" });

/// A day of the week.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Weekday {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

impl From<chrono::Weekday> for Weekday {
    fn from(day: chrono::Weekday) -> Self {
        match day {
            chrono::Weekday::Mon => Weekday::Monday,
            chrono::Weekday::Tue => Weekday::Tuesday,
            chrono::Weekday::Wed => Weekday::Wednesday,
            chrono::Weekday::Thu => Weekday::Thursday,
            chrono::Weekday::Fri => Weekday::Friday,
            chrono::Weekday::Sat => Weekday::Saturday,
            chrono::Weekday::Sun => Weekday::Sunday,
        }
    }
}

/// An open interval of a day, `HH:MM` local time, open included, close excluded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenInterval {
    /// Opening time, `00:00`–`23:59`.
    pub open: String,
    /// Closing time, after `open`, up to `24:00`.
    pub close: String,
}

/// The open intervals of one weekday.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessDay {
    /// The weekday.
    pub day: Weekday,
    /// Open intervals, by opening time.
    pub intervals: Vec<OpenInterval>,
}

/// When a channel is staffed: a timezone and weekly open intervals. Days not listed are closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessHours {
    /// IANA timezone of the times.
    pub timezone: String,
    /// Open days, Monday first.
    pub days: Vec<BusinessDay>,
}

/// Minutes since midnight of `HH:MM` (`24:00` allowed when `end`).
fn minutes(value: &str, end: bool) -> Option<u32> {
    let (h, m) = value.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if end => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

impl BusinessHours {
    /// Whether `at` falls in an open interval (in the hours' timezone).
    pub fn is_open_at(&self, at: DateTime<Utc>) -> bool {
        let Ok(tz) = self.timezone.parse::<chrono_tz::Tz>() else {
            return false;
        };
        let local = at.with_timezone(&tz);
        let day = Weekday::from(local.weekday());
        let now = local.hour() * 60 + local.minute();
        self.days.iter().filter(|d| d.day == day).any(|d| {
            d.intervals.iter().any(|i| {
                matches!((minutes(&i.open, false), minutes(&i.close, true)),
                    (Some(open), Some(close)) if open <= now && now < close)
            })
        })
    }

    /// The stored hours of a channel, if any.
    pub fn of(model: &channel::Model) -> Option<BusinessHours> {
        model
            .business_hours
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

/// Checks and normalises business hours (days Monday first, intervals by opening time; days
/// without intervals dropped).
pub(crate) fn check_hours(errors: &mut Errors, hours: BusinessHours) -> BusinessHours {
    let timezone = errors.timezone("businessHours.timezone", &hours.timezone);
    let mut days: Vec<BusinessDay> = Vec::new();
    for (d, day) in hours.days.into_iter().enumerate() {
        let at = format!("businessHours.days.{d}");
        if days.iter().any(|seen| seen.day == day.day) {
            errors.add(
                &format!("{at}.day"),
                UserErrorCode::Invalid,
                format!("{:?} is listed twice", day.day),
            );
            continue;
        }
        let mut spans: Vec<(u32, u32, OpenInterval)> = Vec::new();
        for (i, interval) in day.intervals.into_iter().enumerate() {
            let at = format!("{at}.intervals.{i}");
            let open = minutes(interval.open.trim(), false);
            let close = minutes(interval.close.trim(), true);
            if open.is_none() {
                errors.add(
                    &format!("{at}.open"),
                    UserErrorCode::Invalid,
                    format!("{:?} is not a time HH:MM", interval.open),
                );
            }
            if close.is_none() {
                errors.add(
                    &format!("{at}.close"),
                    UserErrorCode::Invalid,
                    format!("{:?} is not a time HH:MM (up to 24:00)", interval.close),
                );
            }
            let (Some(open), Some(close)) = (open, close) else {
                continue;
            };
            if open >= close {
                errors.add(
                    &at,
                    UserErrorCode::Invalid,
                    "an interval must open before it closes",
                );
                continue;
            }
            if spans.iter().any(|(o, c, _)| open < *c && *o < close) {
                errors.add(
                    &at,
                    UserErrorCode::Invalid,
                    "the interval overlaps another one of the same day",
                );
                continue;
            }
            let text = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
            spans.push((
                open,
                close,
                OpenInterval {
                    open: text(open),
                    close: text(close),
                },
            ));
        }
        spans.sort_by_key(|(open, _, _)| *open);
        days.push(BusinessDay {
            day: day.day,
            intervals: spans.into_iter().map(|(_, _, i)| i).collect(),
        });
    }
    days.retain(|d| !d.intervals.is_empty());
    days.sort_by_key(|d| d.day);
    BusinessHours { timezone, days }
}

/// The capabilities a channel type can have.
pub fn allowed_capabilities(channel_type: ChannelType) -> &'static [Capability] {
    use Capability::*;
    match channel_type {
        ChannelType::Sms => &[Sms, Mms, VoiceInbound, VoiceOutbound],
        ChannelType::Whatsapp => &[Sms, Mms],
        ChannelType::Voice => &[VoiceInbound, VoiceOutbound],
        _ => &[],
    }
}

/// The capabilities of a new channel of `channel_type` when none are given.
pub fn default_capabilities(channel_type: ChannelType) -> Vec<Capability> {
    use Capability::*;
    match channel_type {
        ChannelType::Sms | ChannelType::Whatsapp => vec![Sms, Mms],
        ChannelType::Voice => vec![VoiceInbound, VoiceOutbound],
        _ => Vec::new(),
    }
}

/// The send rate of a new channel of `channel_type` when none is given.
pub fn default_send_rate(channel_type: ChannelType) -> f64 {
    match channel_type {
        ChannelType::Sms | ChannelType::Whatsapp => 1.0,
        _ => 10.0,
    }
}

/// What kind of address a channel type has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressKind {
    /// An email address.
    Email,
    /// An E.164 phone number.
    Phone,
    /// A widget key.
    WidgetKey,
}

/// The kind of address of `channel_type`.
pub fn address_kind(channel_type: ChannelType) -> AddressKind {
    match channel_type {
        ChannelType::Email => AddressKind::Email,
        ChannelType::Sms | ChannelType::Whatsapp | ChannelType::Voice => AddressKind::Phone,
        ChannelType::Chat | ChannelType::Messenger | ChannelType::Video => AddressKind::WidgetKey,
    }
}

fn is_widget_key(value: &str) -> bool {
    (8..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A new random widget key (24 characters).
pub fn new_widget_key() -> String {
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

fn check_address(errors: &mut Errors, channel_type: ChannelType, value: &str) -> String {
    let value = value.trim();
    if value.is_empty() {
        errors.add(
            "address",
            UserErrorCode::Required,
            "address must not be empty",
        );
        return String::new();
    }
    match address_kind(channel_type) {
        AddressKind::Email => errors.email("address", value),
        AddressKind::Phone => errors.phone("address", value),
        AddressKind::WidgetKey => {
            if !is_widget_key(value) {
                errors.add(
                    "address",
                    UserErrorCode::Invalid,
                    format!("{value:?} is not a widget key: 8 to 64 letters, digits, `_` or `-`"),
                );
            }
            value.to_string()
        }
    }
}

const SECRET_WORDS: [&str; 7] = [
    "password",
    "secret",
    "token",
    "apikey",
    "api_key",
    "authorization",
    "credential",
];

fn check_settings(errors: &mut Errors, provider: Provider, settings: &Value) {
    let Some(map) = settings.as_object() else {
        errors.add(
            "providerSettings",
            UserErrorCode::Invalid,
            "providerSettings must be a JSON object",
        );
        return;
    };
    if settings.to_string().len() > MAX_SETTINGS_BYTES {
        errors.add(
            "providerSettings",
            UserErrorCode::TooLong,
            format!("providerSettings must be at most {MAX_SETTINGS_BYTES} bytes of JSON"),
        );
    }
    for key in map.keys() {
        let lower = key.to_lowercase().replace('-', "_");
        if SECRET_WORDS.iter().any(|w| lower.contains(w)) {
            errors.add(
                &format!("providerSettings.{key}"),
                UserErrorCode::Invalid,
                format!("{key:?} looks like a secret: secrets belong in the server configuration, not in providerSettings"),
            );
        }
    }
    match provider {
        Provider::Simulator => {}
        Provider::Webhook => match map.get("url").and_then(Value::as_str) {
            Some(url) => {
                errors.url("providerSettings.url", url);
            }
            None => errors.add(
                "providerSettings.url",
                UserErrorCode::Required,
                "the WEBHOOK provider needs providerSettings.url (http or https)",
            ),
        },
        Provider::Smtp => {
            if map
                .get("host")
                .and_then(Value::as_str)
                .is_none_or(|h| h.trim().is_empty())
            {
                errors.add(
                    "providerSettings.host",
                    UserErrorCode::Required,
                    "the SMTP provider needs providerSettings.host",
                );
            }
            if let Some(port) = map.get("port")
                && !port.as_u64().is_some_and(|p| (1..=65_535).contains(&p))
            {
                errors.add(
                    "providerSettings.port",
                    UserErrorCode::Invalid,
                    "providerSettings.port must be a number from 1 to 65535",
                );
            }
            if let Some(tls) = map.get("tls")
                && !tls
                    .as_str()
                    .is_some_and(|t| ["NONE", "STARTTLS", "TLS"].contains(&t))
            {
                errors.add(
                    "providerSettings.tls",
                    UserErrorCode::Invalid,
                    "providerSettings.tls must be NONE, STARTTLS or TLS",
                );
            }
            if let Some(username) = map.get("username")
                && username.as_str().is_none_or(|u| u.trim().is_empty())
            {
                errors.add(
                    "providerSettings.username",
                    UserErrorCode::Invalid,
                    "providerSettings.username must be a non-empty string",
                );
            }
        }
    }
}

/// A channel's fields. On create `None` takes the default; on update `None` leaves the field
/// and `Some(None)` clears an optional one.
#[derive(Clone, Debug, Default)]
pub struct ChannelInput {
    /// Name.
    pub name: Option<String>,
    /// Address (email, E.164 number or widget key, by type).
    pub address: Option<String>,
    /// Capabilities (replaces the set).
    pub capabilities: Option<Vec<Capability>>,
    /// Provider.
    pub provider: Option<Provider>,
    /// Provider settings (replaces them).
    pub provider_settings: Option<Value>,
    /// Messages per second.
    pub send_rate_per_second: Option<f64>,
    /// Default queue.
    pub default_queue_id: Option<Option<Uuid>>,
    /// Business hours.
    pub business_hours: Option<Option<BusinessHours>>,
    /// Automatic reply text.
    pub auto_reply: Option<Option<String>>,
    /// Voice price per minute (call price estimates).
    pub call_rate: Option<Option<CallRate>>,
}

/// A channel's voice price per minute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRate {
    /// Millionths of the currency per started minute.
    pub per_minute_micros: i64,
    /// ISO 4217 code (three capital letters).
    pub currency: String,
}

/// Highest voice rate: 1000 a minute, in millionths.
pub const MAX_CALL_RATE_MICROS: i64 = 1_000_000_000;

/// The full state of a channel being written.
#[derive(Clone, Debug, PartialEq)]
struct Draft {
    name: String,
    address: String,
    capabilities: Vec<Capability>,
    provider: Provider,
    provider_settings: Value,
    send_rate_per_second: f64,
    default_queue_id: Option<Uuid>,
    business_hours: Option<BusinessHours>,
    auto_reply: Option<String>,
    call_rate: Option<CallRate>,
}

impl Draft {
    fn of(model: &channel::Model) -> Self {
        Draft {
            name: model.name.clone(),
            address: model.address.clone(),
            capabilities: capabilities(model),
            provider: Provider::parse(&model.provider).unwrap_or(Provider::Simulator),
            provider_settings: model.provider_settings.clone(),
            send_rate_per_second: model.send_rate_per_second,
            default_queue_id: model.default_queue_id,
            business_hours: BusinessHours::of(model),
            auto_reply: model.auto_reply.clone(),
            call_rate: model.call_rate_micros.map(|micros| CallRate {
                per_minute_micros: micros,
                currency: model.call_currency.clone().unwrap_or_else(|| "USD".into()),
            }),
        }
    }

    /// The draft with the input's fields applied and checked; errors go to `errors`.
    fn apply(
        mut self,
        errors: &mut Errors,
        channel_type: ChannelType,
        input: ChannelInput,
    ) -> Self {
        if let Some(name) = input.name {
            self.name = errors.required_text("name", &name, MAX_NAME);
        }
        if let Some(address) = input.address {
            self.address = check_address(errors, channel_type, &address);
        }
        if let Some(list) = input.capabilities {
            let allowed = allowed_capabilities(channel_type);
            let mut set: Vec<Capability> = Vec::new();
            for (i, capability) in list.into_iter().enumerate() {
                if !allowed.contains(&capability) {
                    errors.add(
                        &format!("capabilities.{i}"),
                        UserErrorCode::Invalid,
                        format!(
                            "{} channels cannot have the {} capability",
                            channel_type.as_str(),
                            capability.as_str()
                        ),
                    );
                } else if !set.contains(&capability) {
                    set.push(capability);
                }
            }
            set.sort();
            self.capabilities = set;
        }
        if let Some(provider) = input.provider {
            if provider == Provider::Smtp && channel_type != ChannelType::Email {
                errors.add(
                    "provider",
                    UserErrorCode::Invalid,
                    "the SMTP provider is only for EMAIL channels",
                );
            }
            self.provider = provider;
        }
        if let Some(settings) = input.provider_settings {
            self.provider_settings = settings;
        }
        if let Some(rate) = input.send_rate_per_second {
            if !(rate.is_finite() && rate > 0.0 && rate <= MAX_SEND_RATE) {
                errors.add(
                    "sendRatePerSecond",
                    UserErrorCode::Invalid,
                    "sendRatePerSecond must be more than 0 and at most 1000",
                );
            }
            self.send_rate_per_second = rate;
        }
        if let Some(queue) = input.default_queue_id {
            self.default_queue_id = queue;
        }
        if let Some(hours) = input.business_hours {
            self.business_hours = hours.map(|h| check_hours(errors, h));
        }
        if let Some(reply) = input.auto_reply {
            self.auto_reply =
                reply.and_then(|r| errors.optional_text("autoReply", Some(&r), MAX_AUTO_REPLY));
        }
        if let Some(rate) = input.call_rate {
            if let Some(rate) = &rate {
                if !(0..=MAX_CALL_RATE_MICROS).contains(&rate.per_minute_micros) {
                    errors.add(
                        "callRate.perMinute",
                        UserErrorCode::Invalid,
                        "callRate.perMinute must be 0 to 1000",
                    );
                }
                if !(rate.currency.len() == 3
                    && rate.currency.chars().all(|c| c.is_ascii_uppercase()))
                {
                    errors.add(
                        "callRate.currency",
                        UserErrorCode::Invalid,
                        "callRate.currency must be an ISO 4217 code such as EUR",
                    );
                }
            }
            self.call_rate = rate;
        }
        check_settings(errors, self.provider, &self.provider_settings);
        self
    }

    /// Names of the fields that differ from `before`, in API terms.
    fn changed(&self, before: &Draft) -> Vec<&'static str> {
        let mut changed = Vec::new();
        let mut check = |differs: bool, name: &'static str| {
            if differs {
                changed.push(name);
            }
        };
        check(self.name != before.name, "name");
        check(self.address != before.address, "address");
        check(self.capabilities != before.capabilities, "capabilities");
        check(self.provider != before.provider, "provider");
        check(
            self.provider_settings != before.provider_settings,
            "providerSettings",
        );
        check(
            self.send_rate_per_second != before.send_rate_per_second,
            "sendRatePerSecond",
        );
        check(
            self.default_queue_id != before.default_queue_id,
            "defaultQueue",
        );
        check(
            self.business_hours != before.business_hours,
            "businessHours",
        );
        check(self.auto_reply != before.auto_reply, "autoReply");
        check(self.call_rate != before.call_rate, "callRate");
        changed
    }

    fn write(self, model: &mut channel::ActiveModel) {
        model.name = Set(self.name);
        model.address = Set(self.address);
        model.capabilities = Set(json!(
            self.capabilities
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
        ));
        model.provider = Set(self.provider.as_str().to_string());
        model.provider_settings = Set(self.provider_settings);
        model.send_rate_per_second = Set(self.send_rate_per_second);
        model.default_queue_id = Set(self.default_queue_id);
        model.business_hours = Set(self
            .business_hours
            .map(|h| serde_json::to_value(h).unwrap_or(Value::Null)));
        model.auto_reply = Set(self.auto_reply);
        model.call_rate_micros = Set(self.call_rate.as_ref().map(|r| r.per_minute_micros));
        model.call_currency = Set(self.call_rate.map(|r| r.currency));
    }
}

/// The stored capabilities of a channel.
pub fn capabilities(model: &channel::Model) -> Vec<Capability> {
    model
        .capabilities
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|c| c.as_str().and_then(Capability::parse))
                .collect()
        })
        .unwrap_or_default()
}

/// The checks of a draft that need the database: the default queue is the organization's, and
/// the address is free (`exclude` is the channel being updated).
async fn check_references<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    channel_type: ChannelType,
    draft: &Draft,
    exclude: Option<Uuid>,
) -> AppResult<()> {
    let mut errors = Errors::default();
    if let Some(queue) = draft.default_queue_id
        && tenancy::by_id::<entity::queue::Entity>(org_id, queue)
            .one(conn)
            .await?
            .is_none()
    {
        errors.add("defaultQueueId", UserErrorCode::NotFound, "no such queue");
    }
    let mut taken = tenancy::in_org::<channel::Entity>(org_id)
        .filter(channel::Column::ChannelType.eq(channel_type.as_str()))
        .filter(channel::Column::Address.eq(draft.address.as_str()));
    if let Some(id) = exclude {
        taken = taken.filter(channel::Column::Id.ne(id));
    }
    if taken.one(conn).await?.is_some() {
        errors.add(
            "address",
            UserErrorCode::Taken,
            format!(
                "another {} channel of the organization (perhaps archived) has this address",
                channel_type.as_str()
            ),
        );
    }
    errors.finish()
}

async fn find<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    id: Uuid,
    field: &str,
) -> AppResult<channel::Model> {
    tenancy::by_id::<channel::Entity>(org_id, id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid(field, UserErrorCode::NotFound, "no such channel"))
}

/// Creates a channel (ADMIN) with a new ingest secret; returns it with the secret (shown only
/// now).
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    channel_type: ChannelType,
    mut input: ChannelInput,
) -> AppResult<(channel::Model, String)> {
    principal.require(Permission::ManageChannels)?;
    let mut errors = Errors::default();
    if input.name.is_none() {
        errors.add("name", UserErrorCode::Required, "name must not be empty");
    }
    if input.address.is_none() {
        if address_kind(channel_type) == AddressKind::WidgetKey {
            input.address = Some(new_widget_key());
        } else {
            errors.add(
                "address",
                UserErrorCode::Required,
                "address must not be empty",
            );
        }
    }
    let base = Draft {
        name: String::new(),
        address: String::new(),
        capabilities: default_capabilities(channel_type),
        provider: Provider::Simulator,
        provider_settings: json!({}),
        send_rate_per_second: default_send_rate(channel_type),
        default_queue_id: None,
        business_hours: None,
        auto_reply: None,
        call_rate: None,
    };
    let draft = base.apply(&mut errors, channel_type, input);
    errors.finish()?;
    let txn = db::begin_write(db).await?;
    check_references(&txn, principal.org_id, channel_type, &draft, None).await?;
    let now = Utc::now();
    let id = Uuid::now_v7();
    let secret = crate::webhooks::signing::new_secret();
    let mut model = channel::ActiveModel {
        id: Set(id),
        org_id: Set(principal.org_id),
        channel_type: Set(channel_type.as_str().to_string()),
        status: Set(ChannelStatus::Active.as_str().to_string()),
        ingest_secret: Set(Some(secret.clone())),
        archived_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    let payload = json!({
        "type": channel_type.as_str(),
        "name": draft.name,
        "address": draft.address,
    });
    draft.write(&mut model);
    let created = model.insert(&txn).await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "CHANNEL_CREATED",
        Subject::new(SUBJECT, id),
        payload,
    )
    .await?;
    txn.commit().await?;
    Ok((created, secret))
}

/// Gives a channel a new ingest secret (ADMIN), returned only now; the old one stops working at
/// once. Records `CHANNEL_INGEST_SECRET_ROTATED`.
pub async fn rotate_ingest_secret(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
) -> AppResult<(channel::Model, String)> {
    principal.require(Permission::ManageChannels)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id, "id").await?;
    let secret = crate::webhooks::signing::new_secret();
    let mut model = current.into_active_model();
    model.ingest_secret = Set(Some(secret.clone()));
    model.updated_at = Set(Utc::now());
    let updated = model.update(&txn).await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "CHANNEL_INGEST_SECRET_ROTATED",
        Subject::new(SUBJECT, id),
        json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok((updated, secret))
}

/// Changes the given fields of an active channel (ADMIN). The type cannot change.
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    input: ChannelInput,
) -> AppResult<channel::Model> {
    principal.require(Permission::ManageChannels)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id, "id").await?;
    if current.status != ChannelStatus::Active.as_str() {
        return Err(AppError::invalid(
            "id",
            UserErrorCode::InvalidState,
            "the channel is archived: unarchive it to change it",
        ));
    }
    let channel_type = ChannelType::parse(&current.channel_type)
        .ok_or_else(|| AppError::internal(format!("channel type {}", current.channel_type)))?;
    let before = Draft::of(&current);
    let mut errors = Errors::default();
    let draft = before.clone().apply(&mut errors, channel_type, input);
    errors.finish()?;
    let changed = draft.changed(&before);
    if changed.is_empty() {
        txn.commit().await?;
        return Ok(current);
    }
    check_references(&txn, principal.org_id, channel_type, &draft, Some(id)).await?;
    let mut model = current.into_active_model();
    draft.write(&mut model);
    model.updated_at = Set(Utc::now());
    let updated = model.update(&txn).await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "CHANNEL_UPDATED",
        Subject::new(SUBJECT, id),
        json!({ "changed": changed }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Archives (`archive`) or unarchives a channel (ADMIN). Already in that state: `INVALID_STATE`.
pub async fn set_archived(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    archive: bool,
) -> AppResult<channel::Model> {
    principal.require(Permission::ManageChannels)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id, "id").await?;
    let archived = current.status == ChannelStatus::Archived.as_str();
    if archived == archive {
        return Err(AppError::invalid(
            "id",
            UserErrorCode::InvalidState,
            if archive {
                "the channel is already archived"
            } else {
                "the channel is not archived"
            },
        ));
    }
    let now = Utc::now();
    let mut model = current.into_active_model();
    let (status, event) = if archive {
        (ChannelStatus::Archived, "CHANNEL_ARCHIVED")
    } else {
        (ChannelStatus::Active, "CHANNEL_UNARCHIVED")
    };
    model.status = Set(status.as_str().to_string());
    model.archived_at = Set(archive.then_some(now));
    model.updated_at = Set(now);
    let updated = model.update(&txn).await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        event,
        Subject::new(SUBJECT, id),
        json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Which channels to list. All given conditions must hold.
#[derive(Clone, Debug, Default)]
pub struct ChannelFilter {
    /// Channels of any of these types.
    pub types: Option<Vec<ChannelType>>,
    /// Channels in this status.
    pub status: Option<ChannelStatus>,
    /// Case-insensitive text in the name or address.
    pub search: Option<String>,
}

/// What channels can be ordered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChannelOrderField {
    /// Name.
    #[default]
    Name,
    /// Creation time.
    CreatedAt,
}

/// One page of the organization's channels (AGENT).
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: ChannelFilter,
    order: (ChannelOrderField, SortDirection),
    args: &PageArgs,
) -> AppResult<(Page<channel::Model>, TotalCount)> {
    principal.require(Permission::WorkConversations)?;
    let mut select = tenancy::in_org::<channel::Entity>(principal.org_id);
    if let Some(types) = filter.types {
        select =
            select.filter(channel::Column::ChannelType.is_in(types.iter().map(|t| t.as_str())));
    }
    if let Some(status) = filter.status {
        select = select.filter(channel::Column::Status.eq(status.as_str()));
    }
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let mut any = Condition::any();
        for column in [channel::Column::Name, channel::Column::Address] {
            any = any.add(Expr::expr(Func::lower(Expr::col(column))).like(like_pattern(search)));
        }
        select = select.filter(any);
    }
    let sort = match order.0 {
        ChannelOrderField::Name => Sort {
            name: "NAME",
            column: channel::Column::Name,
            direction: order.1,
            value: |m: &channel::Model| SortValue::Text(m.name.clone()),
        },
        ChannelOrderField::CreatedAt => Sort {
            name: "CREATED_AT",
            column: channel::Column::CreatedAt,
            direction: order.1,
            value: |m: &channel::Model| SortValue::Time(m.created_at),
        },
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "channels", &sort, args).await?;
    Ok((page, total))
}

/// The channel `channel_id` of `org_id` if it is active. Unknown (or another organization's):
/// `NOT_FOUND` at `field`; archived: `INVALID_STATE` at `field`.
pub async fn active_channel<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    channel_id: Uuid,
    field: &str,
) -> AppResult<channel::Model> {
    let channel = tenancy::by_id::<channel::Entity>(org_id, channel_id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid(field, UserErrorCode::NotFound, "no such channel"))?;
    if channel.status != "ACTIVE" {
        return Err(AppError::invalid(
            field,
            UserErrorCode::InvalidState,
            "the channel is archived",
        ));
    }
    Ok(channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(days: Vec<(Weekday, Vec<(&str, &str)>)>) -> BusinessHours {
        BusinessHours {
            timezone: "Europe/Copenhagen".into(),
            days: days
                .into_iter()
                .map(|(day, intervals)| BusinessDay {
                    day,
                    intervals: intervals
                        .into_iter()
                        .map(|(o, c)| OpenInterval {
                            open: o.into(),
                            close: c.into(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn times_parse_strictly() {
        assert_eq!(minutes("09:30", false), Some(570));
        assert_eq!(minutes("24:00", true), Some(1440));
        assert_eq!(minutes("24:00", false), None);
        assert_eq!(minutes("9:30", false), None);
        assert_eq!(minutes("12:60", false), None);
        assert_eq!(minutes("ab:cd", false), None);
    }

    #[test]
    fn open_hours_follow_the_timezone() {
        let h = hours(vec![(Weekday::Monday, vec![("09:00", "17:00")])]);
        // Monday 2026-01-05 08:30 UTC is 09:30 in Copenhagen (CET, UTC+1).
        let at = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc));
        assert_eq!(
            at("2026-01-05T08:30:00Z").map(|t| h.is_open_at(t)),
            Ok(true)
        );
        assert_eq!(
            at("2026-01-05T07:59:00Z").map(|t| h.is_open_at(t)),
            Ok(false)
        );
        assert_eq!(
            at("2026-01-05T16:00:00Z").map(|t| h.is_open_at(t)),
            Ok(false)
        );
        assert_eq!(
            at("2026-01-06T08:30:00Z").map(|t| h.is_open_at(t)),
            Ok(false)
        );
    }

    #[test]
    fn hours_are_normalised_and_checked() {
        let mut errors = Errors::default();
        let checked = check_hours(
            &mut errors,
            hours(vec![
                (
                    Weekday::Friday,
                    vec![("13:00", "24:00"), ("08:00", "12:00")],
                ),
                (Weekday::Monday, vec![]),
            ]),
        );
        assert!(errors.0.is_empty());
        assert_eq!(
            checked,
            hours(vec![(
                Weekday::Friday,
                vec![("08:00", "12:00"), ("13:00", "24:00")]
            )])
        );
        let mut errors = Errors::default();
        check_hours(
            &mut errors,
            hours(vec![(
                Weekday::Monday,
                vec![("10:00", "09:00"), ("08:00", "12:00"), ("11:00", "13:00")],
            )]),
        );
        let fields: Vec<String> = errors.0.iter().map(|e| e.field.join(".")).collect();
        assert_eq!(
            fields,
            [
                "input.businessHours.days.0.intervals.0",
                "input.businessHours.days.0.intervals.2"
            ]
        );
    }

    #[test]
    fn widget_keys() {
        assert!(is_widget_key("abc_DEF-12"));
        assert!(!is_widget_key("short"));
        assert!(!is_widget_key("has space in it"));
        assert!(is_widget_key(&new_widget_key()));
    }
}
