//! GraphQL types, queries and mutations of channels (rules in [`super::service`]).

use async_graphql::{Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ChannelType;
use super::service::{self, ChannelFilter, ChannelInput};
use crate::auth::Permission;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::graphql::context::{ById, ContextExt, page_selects};
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, SortDirection, decode_id, encode_id};
use crate::organizations::graphql::patch;
use crate::queues::graphql::Queue;

/// The medium of a channel.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "ChannelType", remote = "super::ChannelType")]
pub enum ChannelTypeGql {
    /// Email.
    Email,
    /// SMS and MMS.
    Sms,
    /// WhatsApp.
    Whatsapp,
    /// Facebook Messenger.
    Messenger,
    /// Website chat widget.
    Chat,
    /// Phone calls.
    Voice,
    /// Video calls.
    Video,
}

/// What a channel's number can do.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "ChannelCapability", remote = "service::Capability")]
pub enum CapabilityGql {
    /// Text messages (SMS and WhatsApp channels).
    Sms,
    /// Picture and media messages (SMS and WhatsApp channels).
    Mms,
    /// Receive calls (voice and SMS channels).
    VoiceInbound,
    /// Place calls (voice and SMS channels).
    VoiceOutbound,
}

/// Who carries a channel's traffic.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "ChannelProvider", remote = "service::Provider")]
pub enum ProviderGql {
    /// The built-in simulator: deterministic outcomes chosen by the recipient address.
    Simulator,
    /// An HTTP bridge: signed send requests to `providerSettings.url`, status callbacks on the
    /// ingest endpoint.
    Webhook,
    /// Email over SMTP (EMAIL channels only; `providerSettings.host`, optional `port`, `tls`,
    /// `username`).
    Smtp,
}

/// Whether a channel is in use.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "ChannelStatus", remote = "service::ChannelStatus")]
pub enum ChannelStatusGql {
    /// In use.
    Active,
    /// Archived: kept with its history; takes no new conversations and cannot be changed.
    Archived,
}

/// A day of the week.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "Weekday", remote = "service::Weekday")]
pub enum WeekdayGql {
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

/// An open interval of a day in local time: open included, close excluded.
#[derive(SimpleObject, InputObject, Clone, Debug)]
#[graphql(input_name = "OpenIntervalInput")]
pub struct OpenInterval {
    /// Opening time, `HH:MM` (`00:00`–`23:59`).
    pub open: String,
    /// Closing time, `HH:MM`, after `open`; `24:00` is the end of the day.
    pub close: String,
}

/// The open intervals of one weekday.
#[derive(SimpleObject, InputObject, Clone, Debug)]
#[graphql(input_name = "BusinessDayInput")]
pub struct BusinessDay {
    /// The weekday.
    pub day: WeekdayGql,
    /// Open intervals, by opening time, not overlapping.
    pub intervals: Vec<OpenInterval>,
}

/// When a channel is staffed: a timezone and weekly open intervals. Days not listed are closed.
#[derive(SimpleObject, InputObject, Clone, Debug)]
#[graphql(input_name = "BusinessHoursInput")]
pub struct BusinessHours {
    /// IANA timezone of the times, e.g. `Europe/Copenhagen`.
    pub timezone: String,
    /// Open days, Monday first; each day at most once.
    pub days: Vec<BusinessDay>,
}

impl From<BusinessHours> for service::BusinessHours {
    fn from(h: BusinessHours) -> Self {
        service::BusinessHours {
            timezone: h.timezone,
            days: h
                .days
                .into_iter()
                .map(|d| service::BusinessDay {
                    day: d.day.into(),
                    intervals: d
                        .intervals
                        .into_iter()
                        .map(|i| service::OpenInterval {
                            open: i.open,
                            close: i.close,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

impl From<service::BusinessHours> for BusinessHours {
    fn from(h: service::BusinessHours) -> Self {
        BusinessHours {
            timezone: h.timezone,
            days: h
                .days
                .into_iter()
                .map(|d| BusinessDay {
                    day: d.day.into(),
                    intervals: d
                        .intervals
                        .into_iter()
                        .map(|i| OpenInterval {
                            open: i.open,
                            close: i.close,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// A channel.
#[derive(Clone)]
pub struct Channel(pub entity::channel::Model);

/// An organization's endpoint on one medium: an email address, a phone number or a widget.
#[Object]
impl Channel {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("Channel", self.0.id)
    }

    /// The medium.
    #[graphql(name = "type")]
    async fn channel_type(&self) -> ChannelTypeGql {
        ChannelType::parse(&self.0.channel_type)
            .unwrap_or(ChannelType::Chat)
            .into()
    }

    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Email address (EMAIL), E.164 number (SMS, WHATSAPP, VOICE) or widget key (CHAT,
    /// MESSENGER, VIDEO).
    async fn address(&self) -> &str {
        &self.0.address
    }

    /// What the channel's number can do.
    async fn capabilities(&self) -> Vec<CapabilityGql> {
        service::capabilities(&self.0)
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// Who carries the traffic.
    async fn provider(&self) -> ProviderGql {
        service::Provider::parse(&self.0.provider)
            .unwrap_or(service::Provider::Simulator)
            .into()
    }

    /// The provider's settings (never secrets).
    async fn provider_settings(&self) -> Json<serde_json::Value> {
        Json(self.0.provider_settings.clone())
    }

    /// Most outbound messages per second (broadcasts and sends are throttled to it).
    async fn send_rate_per_second(&self) -> f64 {
        self.0.send_rate_per_second
    }

    /// The queue new conversations of the channel go to; null for the organization's default.
    async fn default_queue(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Queue>> {
        let Some(id) = self.0.default_queue_id else {
            return Ok(None);
        };
        Ok(ctx
            .app()
            .load::<entity::queue::Entity>(id)
            .await?
            .map(Queue))
    }

    /// When the channel is staffed; null when always.
    async fn business_hours(&self) -> Option<BusinessHours> {
        service::BusinessHours::of(&self.0).map(Into::into)
    }

    /// Whether the channel is within its business hours at a time (always true without
    /// business hours).
    async fn is_open(
        &self,
        #[graphql(desc = "The time to check; now when omitted.")] at: Option<DateTime<Utc>>,
    ) -> bool {
        service::BusinessHours::of(&self.0)
            .is_none_or(|h| h.is_open_at(at.unwrap_or_else(Utc::now)))
    }

    /// Text sent automatically in reply to new inbound conversations, if any.
    async fn auto_reply(&self) -> Option<&str> {
        self.0.auto_reply.as_deref()
    }

    /// Voice price per started minute, used for calls' price estimates; null when not set.
    async fn call_rate(&self) -> Option<crate::calls::graphql::Money> {
        self.0
            .call_rate_micros
            .map(|micros| crate::calls::graphql::Money {
                amount: crate::calls::graphql::micros(micros),
                currency: self.0.call_currency.clone().unwrap_or_else(|| "USD".into()),
            })
    }

    /// Active or archived.
    async fn status(&self) -> ChannelStatusGql {
        service::ChannelStatus::parse(&self.0.status)
            .unwrap_or(service::ChannelStatus::Active)
            .into()
    }

    /// When it was archived; null when active.
    async fn archived_at(&self) -> Option<DateTime<Utc>> {
        self.0.archived_at
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

/// Which channels to list. All given conditions must hold.
#[derive(InputObject, Default)]
pub struct ChannelFilterInput {
    /// Channels of any of these types.
    pub types: Option<Vec<ChannelTypeGql>>,
    /// Channels in this status.
    pub status: Option<ChannelStatusGql>,
    /// Case-insensitive text in the name or address.
    pub search: Option<String>,
}

/// What channels can be ordered by.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[graphql(remote = "service::ChannelOrderField")]
pub enum ChannelOrderField {
    /// Name.
    #[default]
    Name,
    /// Creation time.
    CreatedAt,
}

/// Order of a channels list.
#[derive(InputObject, Default)]
pub struct ChannelOrder {
    /// What to order by.
    #[graphql(default)]
    pub field: ChannelOrderField,
    /// Which way.
    #[graphql(default)]
    pub direction: SortDirection,
}

/// Channel queries.
#[derive(Default)]
pub struct ChannelQuery;

#[Object]
impl ChannelQuery {
    /// The organization's channels (AGENT).
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn channels(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only channels matching this filter.")] filter: Option<ChannelFilterInput>,
        #[graphql(desc = "Order of the list; by name by default.")] order_by: Option<ChannelOrder>,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<Channel>> {
        let app = ctx.app();
        let filter = filter.unwrap_or_default();
        let order = order_by.unwrap_or_default();
        let filter = ChannelFilter {
            types: filter
                .types
                .map(|t| t.into_iter().map(Into::into).collect()),
            status: filter.status.map(Into::into),
            search: filter.search,
        };
        let args = PageArgs {
            after,
            before,
            first,
            last,
        };
        let (page, total) = service::list(
            app.db(),
            app.principal()?,
            filter,
            (order.field.into(), order.direction),
            &args,
        )
        .await?;
        if page_selects(ctx, &["defaultQueue"]) {
            app.loader::<ById<entity::queue::Entity>>()?
                .load_many(page.items.iter().filter_map(|(_, c)| c.default_queue_id))
                .await?;
        }
        Ok(Connection::new(page.map(Channel), total))
    }

    /// A channel by id (AGENT); null when there is none.
    async fn channel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The channel's global id.")] id: ID,
    ) -> async_graphql::Result<Option<Channel>> {
        let app = ctx.app();
        app.principal()?.require(Permission::WorkConversations)?;
        let id = decode_id(&id, "Channel")?;
        Ok(app.load::<entity::channel::Entity>(id).await?.map(Channel))
    }
}

/// A new channel. Omitted fields take their defaults: the type's capabilities, the simulator,
/// a send rate of 1 per second for SMS and WhatsApp and 10 for the others, no default queue, no
/// business hours, no automatic reply.
#[derive(InputObject)]
pub struct CreateChannelInput {
    /// The medium (cannot change later).
    #[graphql(name = "type")]
    pub channel_type: ChannelTypeGql,
    /// Name, 1 to 200 characters.
    pub name: String,
    /// Email address (EMAIL), E.164 number (SMS, WHATSAPP, VOICE) or widget key of 8 to 64
    /// letters, digits, `_` or `-` (CHAT, MESSENGER, VIDEO; generated when omitted). Unique per
    /// type in the organization.
    pub address: Option<String>,
    /// What the number can do: `SMS`/`MMS` on SMS and WhatsApp channels, `VOICE_INBOUND`/
    /// `VOICE_OUTBOUND` on voice and SMS channels, none on others.
    pub capabilities: Option<Vec<CapabilityGql>>,
    /// Who carries the traffic; the simulator by default. SMTP is for EMAIL channels only.
    pub provider: Option<ProviderGql>,
    /// The provider's settings: a JSON object of at most 4 KiB without secrets. WEBHOOK needs
    /// `url`; SMTP needs `host` and takes `port`, `tls` (`NONE`, `STARTTLS` (default) or `TLS`)
    /// and `username` (the password is in the server's configuration).
    pub provider_settings: Option<Json<serde_json::Value>>,
    /// Most outbound messages per second, more than 0 and at most 1000.
    pub send_rate_per_second: Option<f64>,
    /// The queue new conversations go to.
    pub default_queue_id: Option<ID>,
    /// When the channel is staffed.
    pub business_hours: Option<BusinessHours>,
    /// Text sent automatically in reply to new inbound conversations, at most 2000 characters.
    pub auto_reply: Option<String>,
    /// Voice price per started minute (calls' price estimates).
    pub call_rate: Option<CallRateInput>,
}

/// A voice price per started minute.
#[derive(InputObject)]
pub struct CallRateInput {
    /// Amount as a decimal string with at most six decimals, 0 to 1000 (`"0.013"`).
    pub per_minute: String,
    /// ISO 4217 currency code (`"EUR"`).
    pub currency: String,
}

/// Millionths of a decimal string with at most six decimals (`"0.013"` → 13000); `None` when
/// it is not one.
pub fn parse_micros(value: &str) -> Option<i64> {
    let value = value.trim();
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if whole.is_empty()
        || fraction.len() > 6
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !fraction.chars().all(|c| c.is_ascii_digit())
        || whole.len() > 12
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = format!("{fraction:0<6}").parse().ok()?;
    whole.checked_mul(1_000_000)?.checked_add(fraction)
}

fn call_rate(input: CallRateInput) -> AppResult<service::CallRate> {
    let per_minute_micros = parse_micros(&input.per_minute).ok_or_else(|| {
        AppError::invalid(
            "callRate.perMinute",
            UserErrorCode::Invalid,
            "callRate.perMinute must be a decimal number such as 0.013",
        )
    })?;
    Ok(service::CallRate {
        per_minute_micros,
        currency: input.currency.trim().to_string(),
    })
}

/// Changes to an active channel: omitted fields stay, `null` clears an optional one.
#[derive(InputObject)]
pub struct UpdateChannelInput {
    /// The channel.
    pub id: ID,
    /// Name, 1 to 200 characters.
    pub name: Option<String>,
    /// Address, as on create (unique per type in the organization).
    pub address: Option<String>,
    /// Capabilities (replaces them all), as on create.
    pub capabilities: Option<Vec<CapabilityGql>>,
    /// Who carries the traffic; the settings must suit the new provider.
    pub provider: Option<ProviderGql>,
    /// The provider's settings (replaces them all), as on create.
    pub provider_settings: Option<Json<serde_json::Value>>,
    /// Most outbound messages per second, more than 0 and at most 1000.
    pub send_rate_per_second: Option<f64>,
    /// The queue new conversations go to; `null` for the organization's default.
    pub default_queue_id: MaybeUndefined<ID>,
    /// When the channel is staffed; `null` for always.
    pub business_hours: MaybeUndefined<BusinessHours>,
    /// Automatic reply text; `null` for none.
    pub auto_reply: MaybeUndefined<String>,
    /// Voice price per started minute; `null` for none.
    pub call_rate: MaybeUndefined<CallRateInput>,
}

/// Names one channel.
#[derive(InputObject)]
pub struct ChannelIdInput {
    /// The channel.
    pub id: ID,
}

/// Result of a mutation on one channel.
#[derive(SimpleObject)]
pub struct ChannelPayload {
    /// The channel after the change; null when it failed.
    pub channel: Option<Channel>,
    /// The channel's ingest secret (`whsec_…`): only from `createChannel` and
    /// `rotateChannelIngestSecret`, and never shown again. It signs the provider's requests to
    /// `POST /ingest/{channelId}` and the webhook provider's sends (Standard Webhooks).
    pub ingest_secret: Option<String>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

impl ChannelPayload {
    fn from(result: AppResult<entity::channel::Model>) -> async_graphql::Result<Self> {
        Self::with_secret(result.map(|model| (model, None)))
    }

    fn with_secret(
        result: AppResult<(entity::channel::Model, Option<String>)>,
    ) -> async_graphql::Result<Self> {
        let (done, user_errors) = split(result)?;
        let (channel, ingest_secret) = match done {
            Some((model, secret)) => (Some(Channel(model)), secret),
            None => (None, None),
        };
        Ok(Self {
            channel,
            ingest_secret,
            user_errors,
        })
    }
}

fn queue_id(id: Option<ID>) -> AppResult<Option<Uuid>> {
    id.map(|id| input_id("defaultQueueId", &id, "Queue"))
        .transpose()
}

/// Channel mutations.
#[derive(Default)]
pub struct ChannelMutation;

#[Object]
impl ChannelMutation {
    /// Creates a channel (ADMIN).
    async fn create_channel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CreateChannelInput,
    ) -> async_graphql::Result<ChannelPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let rate = input.call_rate.map(call_rate).transpose();
        let result = match queue_id(input.default_queue_id).and_then(|q| Ok((q, rate?))) {
            Ok((queue, rate)) => {
                let fields = ChannelInput {
                    call_rate: rate.map(Some),
                    name: Some(input.name),
                    address: input.address,
                    capabilities: input
                        .capabilities
                        .map(|c| c.into_iter().map(Into::into).collect()),
                    provider: input.provider.map(Into::into),
                    provider_settings: input.provider_settings.map(|j| j.0),
                    send_rate_per_second: input.send_rate_per_second,
                    default_queue_id: Some(queue),
                    business_hours: Some(input.business_hours.map(Into::into)),
                    auto_reply: Some(input.auto_reply),
                };
                service::create(app.db(), principal, input.channel_type.into(), fields)
                    .await
                    .map(|(model, secret)| (model, Some(secret)))
            }
            Err(e) => Err(e),
        };
        ChannelPayload::with_secret(result)
    }

    /// Gives a channel a new ingest secret (ADMIN), returned in the payload only now; the old
    /// one stops working at once. Channels created before ingest existed have none until this
    /// is called (their ingest requests are refused).
    async fn rotate_channel_ingest_secret(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ChannelIdInput,
    ) -> async_graphql::Result<ChannelPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("id", &input.id, "Channel") {
            Ok(id) => service::rotate_ingest_secret(app.db(), principal, id)
                .await
                .map(|(model, secret)| (model, Some(secret))),
            Err(e) => Err(e),
        };
        ChannelPayload::with_secret(result)
    }

    /// Changes the given fields of an active channel (ADMIN). The type cannot change; an
    /// archived channel must be unarchived first (`INVALID_STATE`).
    async fn update_channel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UpdateChannelInput,
    ) -> async_graphql::Result<ChannelPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let ids = input_id("id", &input.id, "Channel").and_then(|id| {
            let queue = match patch(input.default_queue_id) {
                None => None,
                Some(None) => Some(None),
                Some(Some(q)) => Some(queue_id(Some(q))?),
            };
            let rate = match patch(input.call_rate) {
                None => None,
                Some(None) => Some(None),
                Some(Some(rate)) => Some(Some(call_rate(rate)?)),
            };
            Ok((id, queue, rate))
        });
        let result = match ids {
            Ok((id, queue, rate)) => {
                let fields = ChannelInput {
                    call_rate: rate,
                    name: input.name,
                    address: input.address,
                    capabilities: input
                        .capabilities
                        .map(|c| c.into_iter().map(Into::into).collect()),
                    provider: input.provider.map(Into::into),
                    provider_settings: input.provider_settings.map(|j| j.0),
                    send_rate_per_second: input.send_rate_per_second,
                    default_queue_id: queue,
                    business_hours: patch(input.business_hours).map(|h| h.map(Into::into)),
                    auto_reply: patch(input.auto_reply),
                };
                service::update(app.db(), principal, id, fields).await
            }
            Err(e) => Err(e),
        };
        ChannelPayload::from(result)
    }

    /// Archives a channel (ADMIN): it keeps its history and address but takes no new
    /// conversations. Already archived: `INVALID_STATE`.
    async fn archive_channel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ChannelIdInput,
    ) -> async_graphql::Result<ChannelPayload> {
        set_archived(ctx, input, true).await
    }

    /// Puts an archived channel back in use (ADMIN). Not archived: `INVALID_STATE`.
    async fn unarchive_channel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ChannelIdInput,
    ) -> async_graphql::Result<ChannelPayload> {
        set_archived(ctx, input, false).await
    }
}

async fn set_archived(
    ctx: &Context<'_>,
    input: ChannelIdInput,
    archive: bool,
) -> async_graphql::Result<ChannelPayload> {
    let app = ctx.app();
    let principal = app.principal()?;
    let result = match input_id("id", &input.id, "Channel") {
        Ok(id) => service::set_archived(app.db(), principal, id, archive).await,
        Err(e) => Err(e),
    };
    ChannelPayload::from(result)
}
