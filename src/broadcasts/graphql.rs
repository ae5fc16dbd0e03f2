//! GraphQL types, queries, mutations and the `campaignProgress` subscription of broadcasts.

use std::sync::Arc;

use async_graphql::futures_util::Stream;
use async_graphql::{
    Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject, Subscription,
};
use chrono::{DateTime, Utc};
use entity::{broadcast, broadcast_recipient};

use super::service::{
    self, Audience, BroadcastFilter, BroadcastInput, BroadcastPatch, RecipientReason,
    RecipientStatus, Status,
};
use crate::auth::Permission;
use crate::channels::graphql::Channel;
use crate::contacts::graphql::Contact;
use crate::conversations::graphql::Conversation;
use crate::error::{AppError, AppResult};
use crate::graphql::context::{ContextExt, RequestCtx};
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, decode_id, encode_id};
use crate::live::graphql::{encode_cursor, start, stream};
use crate::messages::graphql::Message;
use crate::organizations::graphql::patch;
use crate::templates::graphql::Template;
use crate::users::graphql::User;

/// Where a broadcast stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "BroadcastStatus")]
pub enum BroadcastStatusGql {
    /// Being prepared; can be changed, sent, scheduled or deleted.
    Draft,
    /// Waiting for `scheduledAt`; can still be changed, sent now, rescheduled or cancelled.
    Scheduled,
    /// Making its recipients' messages, which go out at the channel's send rate.
    Sending,
    /// No new messages are made until resumed (those already queued still go out).
    Paused,
    /// Every recipient's message went out or failed; delivery stats keep following reports.
    Completed,
    /// Stopped: messages not sent yet were canceled.
    Cancelled,
    /// Could not go on (its channel or template went away); see `failureReason`.
    Failed,
}

impl From<Status> for BroadcastStatusGql {
    fn from(s: Status) -> Self {
        match s {
            Status::Draft => Self::Draft,
            Status::Scheduled => Self::Scheduled,
            Status::Sending => Self::Sending,
            Status::Paused => Self::Paused,
            Status::Completed => Self::Completed,
            Status::Cancelled => Self::Cancelled,
            Status::Failed => Self::Failed,
        }
    }
}

impl From<BroadcastStatusGql> for Status {
    fn from(s: BroadcastStatusGql) -> Self {
        match s {
            BroadcastStatusGql::Draft => Self::Draft,
            BroadcastStatusGql::Scheduled => Self::Scheduled,
            BroadcastStatusGql::Sending => Self::Sending,
            BroadcastStatusGql::Paused => Self::Paused,
            BroadcastStatusGql::Completed => Self::Completed,
            BroadcastStatusGql::Cancelled => Self::Cancelled,
            BroadcastStatusGql::Failed => Self::Failed,
        }
    }
}

/// Where one recipient of a broadcast stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "BroadcastRecipientStatus")]
pub enum RecipientStatusGql {
    /// Its message waits to be sent.
    Queued,
    /// Its message was handed to the provider.
    Sent,
    /// Its message was delivered.
    Delivered,
    /// Its message was read.
    Read,
    /// Its message failed, or could not be rendered (see `reason`).
    Failed,
    /// Not sent to (see `reason`).
    Skipped,
    /// The broadcast was cancelled before its message was sent.
    Cancelled,
}

impl From<RecipientStatus> for RecipientStatusGql {
    fn from(s: RecipientStatus) -> Self {
        match s {
            RecipientStatus::Queued => Self::Queued,
            RecipientStatus::Sent => Self::Sent,
            RecipientStatus::Delivered => Self::Delivered,
            RecipientStatus::Read => Self::Read,
            RecipientStatus::Failed => Self::Failed,
            RecipientStatus::Skipped => Self::Skipped,
            RecipientStatus::Cancelled => Self::Cancelled,
        }
    }
}

impl From<RecipientStatusGql> for RecipientStatus {
    fn from(s: RecipientStatusGql) -> Self {
        match s {
            RecipientStatusGql::Queued => Self::Queued,
            RecipientStatusGql::Sent => Self::Sent,
            RecipientStatusGql::Delivered => Self::Delivered,
            RecipientStatusGql::Read => Self::Read,
            RecipientStatusGql::Failed => Self::Failed,
            RecipientStatusGql::Skipped => Self::Skipped,
            RecipientStatusGql::Cancelled => Self::Cancelled,
        }
    }
}

/// Why a recipient was skipped or failed before anything was sent.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "BroadcastRecipientReason")]
pub enum RecipientReasonGql {
    /// The contact opted out of the channel's type (skipped).
    OptedOut,
    /// The contact has no email address (email) or phone number (SMS, WhatsApp) (skipped).
    NoAddress,
    /// The template could not be rendered for the contact, e.g. a missing variable (failed).
    RenderFailed,
}

impl From<RecipientReason> for RecipientReasonGql {
    fn from(r: RecipientReason) -> Self {
        match r {
            RecipientReason::OptedOut => Self::OptedOut,
            RecipientReason::NoAddress => Self::NoAddress,
            RecipientReason::RenderFailed => Self::RenderFailed,
        }
    }
}

/// A broadcast's numbers.
#[derive(SimpleObject)]
pub struct BroadcastStats {
    /// Contacts in the audience when it started (deduplicated; anonymized contacts left out).
    pub audience_size: i64,
    /// Contacts processed so far (each has a recipient: queued, sent, skipped or failed).
    pub recipients: i64,
    /// Recipients whose message waits to be sent.
    pub queued: i64,
    /// Recipients skipped: opted out, or no address for the channel.
    pub skipped: i64,
    /// Messages handed to the provider.
    pub sent: i64,
    /// Messages delivered (or read).
    pub delivered: i64,
    /// Messages that failed, before or after sending, and recipients whose message could not be
    /// rendered.
    pub failed: i64,
    /// Messages canceled (never sent) because the broadcast was cancelled before they were
    /// sent.
    pub cancelled: i64,
    /// Recipients who wrote back in the conversation after the broadcast's message.
    pub replied: i64,
}

/// Who a broadcast goes to.
#[derive(SimpleObject)]
pub struct BroadcastAudience {
    /// Contacts named directly.
    pub contact_ids: Vec<ID>,
    /// Contact groups and segments (rule-based groups).
    pub group_ids: Vec<ID>,
}

/// A broadcast.
#[derive(Clone)]
pub struct Broadcast(pub broadcast::Model);

/// A bulk send (bulk message, multicast, SMS or email blast): one template or body sent to an
/// audience of contacts, groups and segments on one channel, as a real outbound message in each
/// contact's conversation, at the channel's send rate.
#[Object]
impl Broadcast {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("Broadcast", self.0.id)
    }

    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Where it stands.
    async fn status(&self) -> BroadcastStatusGql {
        Status::parse(&self.0.status)
            .unwrap_or(Status::Failed)
            .into()
    }

    /// The channel it sends on; null when the channel was deleted.
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

    /// The template variant rendered for each contact; null when it sends its own body.
    async fn template(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Template>> {
        Ok(match self.0.template_id {
            Some(id) => ctx
                .app()
                .load::<entity::template::Entity>(id)
                .await?
                .map(Template),
            None => None,
        })
    }

    /// Subject of its own body (email).
    async fn subject(&self) -> Option<&str> {
        self.0.subject.as_deref()
    }

    /// Text of its own body; `{{ contact.firstName }}` and other placeholders are rendered per
    /// contact.
    async fn text(&self) -> Option<&str> {
        self.0.text.as_deref()
    }

    /// HTML of its own body (email).
    async fn html(&self) -> Option<&str> {
        self.0.html.as_deref()
    }

    /// Extra template variables (a JSON object), laid over the built-in `contact.*`,
    /// `organization.name` and `agent.*` (its creator).
    async fn variables(&self) -> Json<serde_json::Value> {
        Json(self.0.variables.clone())
    }

    /// Who it goes to.
    async fn audience(&self) -> BroadcastAudience {
        let audience = Audience::of(&self.0);
        BroadcastAudience {
            contact_ids: audience
                .contact_ids
                .into_iter()
                .map(|id| encode_id("Contact", id))
                .collect(),
            group_ids: audience
                .group_ids
                .into_iter()
                .map(|id| encode_id("ContactGroup", id))
                .collect(),
        }
    }

    /// When it is scheduled to start.
    async fn scheduled_at(&self) -> Option<DateTime<Utc>> {
        self.0.scheduled_at
    }

    /// When it started sending.
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }

    /// When it was paused (null unless paused).
    async fn paused_at(&self) -> Option<DateTime<Utc>> {
        self.0.paused_at
    }

    /// When every recipient's message had been made (the audience fully expanded).
    async fn expanded_at(&self) -> Option<DateTime<Utc>> {
        self.0.expanded_at
    }

    /// When it completed.
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }

    /// When it was cancelled.
    async fn cancelled_at(&self) -> Option<DateTime<Utc>> {
        self.0.cancelled_at
    }

    /// When it failed.
    async fn failed_at(&self) -> Option<DateTime<Utc>> {
        self.0.failed_at
    }

    /// Why it failed.
    async fn failure_reason(&self) -> Option<&str> {
        self.0.failure_reason.as_deref()
    }

    /// Its numbers, as they are now.
    async fn stats(&self) -> BroadcastStats {
        let m = &self.0;
        BroadcastStats {
            audience_size: m.audience_size,
            recipients: m.recipients,
            queued: m.queued,
            skipped: m.skipped,
            sent: m.sent,
            delivered: m.delivered,
            failed: m.failed,
            cancelled: m.cancelled,
            replied: m.replied,
        }
    }

    /// Its recipients, in the order they were processed.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn recipients(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only recipients in one of these statuses.")] statuses: Option<
            Vec<RecipientStatusGql>,
        >,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<BroadcastRecipient>> {
        let app = ctx.app();
        let statuses: Vec<RecipientStatus> = statuses
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect();
        let (page, total) = service::recipients(
            app.db(),
            app.principal()?,
            self.0.id,
            &statuses,
            &PageArgs {
                after,
                before,
                first,
                last,
            },
        )
        .await?;
        Ok(Connection::new(page.map(BroadcastRecipient), total))
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

/// One contact of a broadcast's audience.
#[derive(Clone)]
pub struct BroadcastRecipient(pub broadcast_recipient::Model);

/// One contact of a broadcast's audience: the message made for them, or why there is none.
#[Object]
impl BroadcastRecipient {
    /// The contact.
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        Ok(ctx
            .app()
            .load::<entity::contact::Entity>(self.0.contact_id)
            .await?
            .map(Contact))
    }

    /// Where it stands (follows its message's delivery status).
    async fn status(&self) -> RecipientStatusGql {
        RecipientStatus::parse(&self.0.status)
            .unwrap_or(RecipientStatus::Failed)
            .into()
    }

    /// Why it was skipped or failed before sending.
    async fn reason(&self) -> Option<RecipientReasonGql> {
        self.0
            .reason
            .as_deref()
            .and_then(RecipientReason::parse)
            .map(Into::into)
    }

    /// The reason in words (or the message's failure reason when it was cancelled).
    async fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }

    /// The message sent to them.
    async fn message(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Message>> {
        Ok(match self.0.message_id {
            Some(id) => ctx
                .app()
                .load::<entity::message::Entity>(id)
                .await?
                .map(Message),
            None => None,
        })
    }

    /// The conversation the message is in.
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

    /// When they first wrote back after the message.
    async fn replied_at(&self) -> Option<DateTime<Utc>> {
        self.0.replied_at
    }

    /// When they were processed.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Which broadcasts to list.
#[derive(InputObject, Default)]
pub struct BroadcastFilterInput {
    /// Only broadcasts in one of these statuses.
    pub statuses: Option<Vec<BroadcastStatusGql>>,
    /// Only broadcasts on this channel.
    pub channel_id: Option<ID>,
}

/// Broadcast queries.
#[derive(Default)]
pub struct BroadcastQuery;

#[Object]
impl BroadcastQuery {
    /// The organization's broadcasts, newest first (TEAM_LEAD).
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    async fn broadcasts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only broadcasts matching this filter.")] filter: Option<
            BroadcastFilterInput,
        >,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<Broadcast>> {
        let app = ctx.app();
        let filter = filter.unwrap_or_default();
        let channel_id = filter
            .channel_id
            .map(|id| decode_id(&id, "Channel"))
            .transpose()?;
        let (page, total) = service::list(
            app.db(),
            app.principal()?,
            BroadcastFilter {
                statuses: filter
                    .statuses
                    .unwrap_or_default()
                    .into_iter()
                    .map(Into::into)
                    .collect(),
                channel_id,
            },
            &PageArgs {
                after,
                before,
                first,
                last,
            },
        )
        .await?;
        Ok(Connection::new(page.map(Broadcast), total))
    }

    /// A broadcast by id; null when there is none (TEAM_LEAD).
    async fn broadcast(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The broadcast's global id.")] id: ID,
    ) -> async_graphql::Result<Option<Broadcast>> {
        let app = ctx.app();
        app.principal()?.require(Permission::ManageRouting)?;
        let id = decode_id(&id, "Broadcast")?;
        Ok(app.load::<broadcast::Entity>(id).await?.map(Broadcast))
    }
}

/// Who a broadcast goes to (contacts in several groups, or named and in a group, get it once).
#[derive(InputObject, Default)]
pub struct BroadcastAudienceInput {
    /// Contacts.
    #[graphql(default)]
    pub contact_ids: Vec<ID>,
    /// Contact groups and segments (rule-based groups): their members when it is sent.
    #[graphql(default)]
    pub group_ids: Vec<ID>,
}

fn audience(input: BroadcastAudienceInput) -> AppResult<Audience> {
    Ok(Audience {
        contact_ids: input
            .contact_ids
            .iter()
            .enumerate()
            .map(|(i, id)| input_id(&format!("audience.contactIds.{i}"), id, "Contact"))
            .collect::<AppResult<_>>()?,
        group_ids: input
            .group_ids
            .iter()
            .enumerate()
            .map(|(i, id)| input_id(&format!("audience.groupIds.{i}"), id, "ContactGroup"))
            .collect::<AppResult<_>>()?,
    })
}

/// A new broadcast (a draft).
#[derive(InputObject)]
pub struct CreateBroadcastInput {
    /// Name.
    pub name: String,
    /// The channel to send on (active).
    pub channel_id: ID,
    /// A template variant to render per contact (for the channel's type or any); or give a body.
    pub template_id: Option<ID>,
    /// Subject of the body (email channels).
    pub subject: Option<String>,
    /// Text body; may use placeholders such as `{{ contact.firstName | "there" }}`.
    pub text: Option<String>,
    /// HTML body (email channels).
    pub html: Option<String>,
    /// Extra variables as a JSON object.
    pub variables: Option<Json<serde_json::Value>>,
    /// Who it goes to.
    pub audience: BroadcastAudienceInput,
}

/// Changes to a draft or scheduled broadcast; omitted fields stay, `null` clears an optional one.
#[derive(InputObject)]
pub struct UpdateBroadcastInput {
    /// The broadcast.
    pub id: ID,
    /// New name.
    pub name: Option<String>,
    /// New channel.
    pub channel_id: Option<ID>,
    /// New template; `null` to send the body instead.
    pub template_id: MaybeUndefined<ID>,
    /// New subject.
    pub subject: MaybeUndefined<String>,
    /// New text body.
    pub text: MaybeUndefined<String>,
    /// New HTML body.
    pub html: MaybeUndefined<String>,
    /// New variables.
    pub variables: MaybeUndefined<Json<serde_json::Value>>,
    /// New audience (replaces the old one).
    pub audience: Option<BroadcastAudienceInput>,
}

/// Names one broadcast.
#[derive(InputObject)]
pub struct BroadcastIdInput {
    /// The broadcast.
    pub id: ID,
}

/// Schedules a broadcast.
#[derive(InputObject)]
pub struct ScheduleBroadcastInput {
    /// The broadcast.
    pub id: ID,
    /// When to start sending (in the future).
    pub scheduled_at: DateTime<Utc>,
}

/// Result of a mutation on one broadcast.
#[derive(SimpleObject)]
pub struct BroadcastPayload {
    /// The broadcast after the change; null when it failed.
    pub broadcast: Option<Broadcast>,
    /// Why the input was refused (a transition not allowed from its status is `INVALID_STATE`);
    /// empty on success.
    pub user_errors: Vec<UserError>,
}

impl BroadcastPayload {
    fn from(result: AppResult<broadcast::Model>) -> async_graphql::Result<Self> {
        let (broadcast, user_errors) = split(result)?;
        Ok(Self {
            broadcast: broadcast.map(Broadcast),
            user_errors,
        })
    }
}

/// Result of deleting a broadcast.
#[derive(SimpleObject)]
pub struct DeleteBroadcastPayload {
    /// The deleted broadcast's id; null when it failed.
    pub deleted_broadcast_id: Option<ID>,
    /// Why it could not be deleted; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Broadcast mutations.
#[derive(Default)]
pub struct BroadcastMutation;

#[Object]
impl BroadcastMutation {
    /// Creates a broadcast as a draft (TEAM_LEAD): the channel must be active, the template
    /// there (and for the channel's type) or a body given, the audience not empty.
    async fn create_broadcast(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CreateBroadcastInput,
    ) -> async_graphql::Result<BroadcastPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = async {
            principal.require(Permission::ManageRouting)?;
            let input = BroadcastInput {
                name: input.name,
                channel_id: input_id("channelId", &input.channel_id, "Channel")?,
                template_id: input
                    .template_id
                    .map(|id| input_id("templateId", &id, "Template"))
                    .transpose()?,
                subject: input.subject,
                text: input.text,
                html: input.html,
                variables: input.variables.map(|v| v.0),
                audience: audience(input.audience)?,
            };
            service::create(app.db(), principal, input).await
        }
        .await;
        BroadcastPayload::from(result)
    }

    /// Changes a draft or scheduled broadcast (TEAM_LEAD); checked as on creation.
    async fn update_broadcast(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UpdateBroadcastInput,
    ) -> async_graphql::Result<BroadcastPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = async {
            principal.require(Permission::ManageRouting)?;
            let id = input_id("id", &input.id, "Broadcast")?;
            let template_id = match patch(input.template_id) {
                Some(Some(id)) => Some(Some(input_id("templateId", &id, "Template")?)),
                Some(None) => Some(None),
                None => None,
            };
            let patch = BroadcastPatch {
                name: input.name,
                channel_id: input
                    .channel_id
                    .map(|id| input_id("channelId", &id, "Channel"))
                    .transpose()?,
                template_id,
                subject: patch(input.subject),
                text: patch(input.text),
                html: patch(input.html),
                variables: patch(input.variables).map(|v| v.map(|v| v.0)),
                audience: input.audience.map(audience).transpose()?,
            };
            service::update(app.db(), principal, id, patch).await
        }
        .await;
        BroadcastPayload::from(result)
    }

    /// Starts sending a draft or scheduled broadcast now (TEAM_LEAD). An audience without
    /// reachable contacts, an archived channel or template are user errors.
    async fn send_broadcast(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: BroadcastIdInput,
    ) -> async_graphql::Result<BroadcastPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = async {
            let id = input_id("id", &input.id, "Broadcast")?;
            service::start(app.db(), principal, id, None).await
        }
        .await;
        BroadcastPayload::from(result)
    }

    /// Schedules a draft broadcast, or reschedules a scheduled one (TEAM_LEAD); checked as
    /// `sendBroadcast`, and `scheduledAt` must be in the future.
    async fn schedule_broadcast(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ScheduleBroadcastInput,
    ) -> async_graphql::Result<BroadcastPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = async {
            let id = input_id("id", &input.id, "Broadcast")?;
            service::start(app.db(), principal, id, Some(input.scheduled_at)).await
        }
        .await;
        BroadcastPayload::from(result)
    }

    /// Pauses a sending broadcast (TEAM_LEAD): no new messages until resumed; those already
    /// queued still go out. Only while its audience is not fully expanded.
    async fn pause_broadcast(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: BroadcastIdInput,
    ) -> async_graphql::Result<BroadcastPayload> {
        act(ctx, input, Action::Pause).await
    }

    /// Resumes a paused broadcast where it stopped (TEAM_LEAD).
    async fn resume_broadcast(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: BroadcastIdInput,
    ) -> async_graphql::Result<BroadcastPayload> {
        act(ctx, input, Action::Resume).await
    }

    /// Cancels a scheduled, sending or paused broadcast (TEAM_LEAD): no new messages, and its
    /// messages not sent yet are `CANCELED` with "the broadcast was cancelled".
    async fn cancel_broadcast(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: BroadcastIdInput,
    ) -> async_graphql::Result<BroadcastPayload> {
        act(ctx, input, Action::Cancel).await
    }

    /// Deletes a draft broadcast (TEAM_LEAD).
    async fn delete_broadcast(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: BroadcastIdInput,
    ) -> async_graphql::Result<DeleteBroadcastPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = async {
            let id = input_id("id", &input.id, "Broadcast")?;
            service::delete(app.db(), principal, id).await
        }
        .await;
        let (id, user_errors) = split(result)?;
        Ok(DeleteBroadcastPayload {
            deleted_broadcast_id: id.map(|id| encode_id("Broadcast", id)),
            user_errors,
        })
    }
}

/// A state change of one broadcast.
#[derive(Clone, Copy)]
enum Action {
    Pause,
    Resume,
    Cancel,
}

async fn act(
    ctx: &Context<'_>,
    input: BroadcastIdInput,
    action: Action,
) -> async_graphql::Result<BroadcastPayload> {
    let app = ctx.app();
    let principal = app.principal()?;
    let result = match input_id("id", &input.id, "Broadcast") {
        Ok(id) => match action {
            Action::Pause => service::pause(app.db(), principal, id).await,
            Action::Resume => service::resume(app.db(), principal, id).await,
            Action::Cancel => service::cancel(app.db(), principal, id).await,
        },
        Err(e) => Err(e),
    };
    BroadcastPayload::from(result)
}

/// What happened to a broadcast.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BroadcastChange {
    /// Created.
    Created,
    /// Its draft changed.
    Updated,
    /// Scheduled or rescheduled.
    Scheduled,
    /// Started sending.
    Started,
    /// Paused.
    Paused,
    /// Resumed.
    Resumed,
    /// Cancelled.
    Cancelled,
    /// Completed.
    Completed,
    /// Failed.
    Failed,
    /// Its stats moved.
    Progress,
}

impl BroadcastChange {
    fn of(event_type: &str) -> Option<Self> {
        use service::event_types as t;
        Some(match event_type {
            t::CREATED => Self::Created,
            t::UPDATED => Self::Updated,
            t::SCHEDULED => Self::Scheduled,
            t::STARTED => Self::Started,
            t::PAUSED => Self::Paused,
            t::RESUMED => Self::Resumed,
            t::CANCELLED => Self::Cancelled,
            t::COMPLETED => Self::Completed,
            t::FAILED => Self::Failed,
            t::PROGRESS => Self::Progress,
            _ => return None,
        })
    }
}

/// A broadcast's status or stats moved.
#[derive(SimpleObject)]
pub struct CampaignProgressEvent {
    /// This event's cursor: subscribe with it as `after` to resume after this event.
    cursor: String,
    /// What happened.
    change: BroadcastChange,
    /// The broadcast as it is when the event is delivered (status and stats).
    broadcast: Broadcast,
}

/// The broadcast subscription.
#[derive(Default)]
pub struct BroadcastSubscription;

/// Broadcasts as they progress.
#[Subscription]
impl BroadcastSubscription {
    /// A broadcast's progress (TEAM_LEAD): every change of its status, and its stats as they
    /// move (at most once per expansion batch and once a second from delivery reports and
    /// replies, the last change always delivered). With `after`, first the changes after that
    /// cursor, then live ones.
    async fn campaign_progress(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The broadcast.")] broadcast_id: ID,
        #[graphql(desc = "Resume after this event cursor (from an earlier event).")] after: Option<
            String,
        >,
    ) -> async_graphql::Result<
        impl Stream<Item = async_graphql::Result<CampaignProgressEvent>> + use<>,
    > {
        let app = ctx.app();
        let principal = app.principal()?.clone();
        principal.require(Permission::ManageRouting)?;
        let id = decode_id(&broadcast_id, "Broadcast")?;
        if app.load::<broadcast::Entity>(id).await?.is_none() {
            return Err(AppError::NotFound("broadcast".into()).into());
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
                if event.subject_type != service::SUBJECT || event.subject_id != id {
                    return Ok(None);
                }
                let Some(change) = BroadcastChange::of(&event.event_type) else {
                    return Ok(None);
                };
                let Some(model) = crate::tenancy::by_id::<broadcast::Entity>(org_id, id)
                    .one(&db)
                    .await?
                else {
                    return Ok(None);
                };
                Ok(Some(CampaignProgressEvent {
                    cursor: encode_cursor(event.seq),
                    change,
                    broadcast: Broadcast(model),
                }))
            },
        ))
    }
}
