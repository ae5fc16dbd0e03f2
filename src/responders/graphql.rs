//! GraphQL types, queries and mutations of auto-responders.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::service::{self, MatchKind, ResponderFilter, ResponderInput, Trigger};
use crate::channels::graphql::{BusinessHours, Channel};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::graphql::context::{ContextExt, ScopedLoader};
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, decode_id, encode_id};
use crate::organizations::graphql::patch;

/// What makes an auto-responder answer.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "AutoResponderTrigger")]
pub enum TriggerGql {
    /// The message matches one of its keywords.
    Keyword,
    /// The message arrives outside its business hours (its own, or the channel's).
    OutOfHours,
    /// The message is the first one of the conversation.
    FirstMessage,
    /// An SMS opt-out keyword (`STOP` and synonyms): the responder's text is the confirmation.
    OptOut,
    /// An SMS opt-in keyword (`START` and synonyms): the responder's text is the confirmation.
    OptIn,
}

impl From<TriggerGql> for Trigger {
    fn from(t: TriggerGql) -> Self {
        match t {
            TriggerGql::Keyword => Trigger::Keyword,
            TriggerGql::OutOfHours => Trigger::OutOfHours,
            TriggerGql::FirstMessage => Trigger::FirstMessage,
            TriggerGql::OptOut => Trigger::OptOut,
            TriggerGql::OptIn => Trigger::OptIn,
        }
    }
}

impl From<Trigger> for TriggerGql {
    fn from(t: Trigger) -> Self {
        match t {
            Trigger::Keyword => TriggerGql::Keyword,
            Trigger::OutOfHours => TriggerGql::OutOfHours,
            Trigger::FirstMessage => TriggerGql::FirstMessage,
            Trigger::OptOut => TriggerGql::OptOut,
            Trigger::OptIn => TriggerGql::OptIn,
        }
    }
}

/// How a keyword matches a message (ignoring case, and punctuation and spacing around words).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "KeywordMatch")]
pub enum MatchKindGql {
    /// The whole message is the keyword.
    Exact,
    /// The message contains the keyword as whole words.
    Contains,
}

impl From<MatchKindGql> for MatchKind {
    fn from(m: MatchKindGql) -> Self {
        match m {
            MatchKindGql::Exact => MatchKind::Exact,
            MatchKindGql::Contains => MatchKind::Contains,
        }
    }
}

impl From<MatchKind> for MatchKindGql {
    fn from(m: MatchKind) -> Self {
        match m {
            MatchKind::Exact => MatchKindGql::Exact,
            MatchKind::Contains => MatchKindGql::Contains,
        }
    }
}

/// Replies sent per responder, batched.
pub struct ReplyCounts {
    db: DatabaseConnection,
    org_id: Uuid,
}

impl ScopedLoader for ReplyCounts {
    fn new(db: DatabaseConnection, org_id: Uuid) -> Self {
        Self { db, org_id }
    }
}

impl Loader<Uuid> for ReplyCounts {
    type Value = u64;
    type Error = AppError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, u64>, AppError> {
        service::reply_counts(&self.db, self.org_id, keys).await
    }
}

/// An auto-responder.
#[derive(Clone)]
pub struct AutoResponder(pub entity::auto_responder::Model);

/// A reply a channel sends by itself to inbound messages that match: keywords, out of hours,
/// the first message of a conversation, or the confirmation of an SMS consent keyword. At most
/// one reply answers a message: consent keywords first, then the oldest matching keyword
/// responder, then out of hours (once per conversation per 12 hours), then first message.
#[Object]
impl AutoResponder {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id(service::SUBJECT, self.0.id)
    }

    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The channel it answers on.
    async fn channel(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Channel>> {
        Ok(ctx
            .app()
            .load::<entity::channel::Entity>(self.0.channel_id)
            .await?
            .map(Channel))
    }

    /// What makes it answer.
    async fn trigger(&self) -> Option<TriggerGql> {
        Trigger::parse(&self.0.trigger).map(Into::into)
    }

    /// How its keywords match (keyword responders).
    async fn match_kind(&self) -> Option<MatchKindGql> {
        self.0
            .match_kind
            .as_deref()
            .and_then(MatchKind::parse)
            .map(Into::into)
    }

    /// Its keywords (keyword responders).
    async fn keywords(&self) -> Vec<String> {
        serde_json::from_value(self.0.keywords.clone()).unwrap_or_default()
    }

    /// The reply's text.
    async fn body(&self) -> &str {
        &self.0.body
    }

    /// Its own business hours (out-of-hours responders); null means the channel's.
    async fn business_hours(&self) -> Option<BusinessHours> {
        self.0
            .business_hours
            .as_ref()
            .and_then(|h| {
                serde_json::from_value::<crate::channels::service::BusinessHours>(h.clone()).ok()
            })
            .map(Into::into)
    }

    /// It answers from then on; null for since its creation.
    async fn starts_at(&self) -> Option<DateTime<Utc>> {
        self.0.starts_at
    }

    /// It answers until then; null for no end.
    async fn ends_at(&self) -> Option<DateTime<Utc>> {
        self.0.ends_at
    }

    /// Whether it answers.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// How many replies it sent.
    async fn reply_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        Ok(ctx
            .app()
            .loader::<ReplyCounts>()?
            .load_one(self.0.id)
            .await?
            .unwrap_or_default())
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

/// Which auto-responders to list.
#[derive(InputObject, Default)]
pub struct AutoResponderFilterInput {
    /// Of this channel.
    pub channel_id: Option<ID>,
    /// With this trigger.
    pub trigger: Option<TriggerGql>,
    /// Enabled (true) or disabled (false) ones.
    pub enabled: Option<bool>,
}

/// Auto-responder queries.
#[derive(Default)]
pub struct ResponderQuery;

#[Object]
impl ResponderQuery {
    /// The organization's auto-responders, oldest first (the order keywords are tried in).
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    async fn auto_responders(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only auto-responders matching this filter.")] filter: Option<
            AutoResponderFilterInput,
        >,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<AutoResponder>> {
        let app = ctx.app();
        let filter = filter.unwrap_or_default();
        let channel_id = filter
            .channel_id
            .as_ref()
            .map(|id| decode_id(id, "Channel"))
            .transpose()?;
        let (page, total) = service::list(
            app.db(),
            app.principal()?,
            ResponderFilter {
                channel_id,
                trigger: filter.trigger.map(Into::into),
                enabled: filter.enabled,
            },
            &PageArgs {
                after,
                before,
                first,
                last,
            },
        )
        .await?;
        Ok(Connection::new(page.map(AutoResponder), total))
    }
}

/// A new auto-responder.
#[derive(InputObject)]
pub struct CreateAutoResponderInput {
    /// The channel it answers on.
    pub channel_id: ID,
    /// Name.
    pub name: String,
    /// What makes it answer.
    pub trigger: TriggerGql,
    /// How keywords match (keyword responders; default `EXACT`).
    pub match_kind: Option<MatchKindGql>,
    /// Keywords (keyword responders; at least one). On SMS channels the consent keywords are
    /// refused: their confirmations are `OPT_OUT`/`OPT_IN` responders.
    pub keywords: Option<Vec<String>>,
    /// The reply's text (at most 1600 characters).
    pub body: String,
    /// Business hours (out-of-hours responders; omit to use the channel's).
    pub business_hours: Option<BusinessHours>,
    /// It answers from then on.
    pub starts_at: Option<DateTime<Utc>>,
    /// It answers until then (after `startsAt`).
    pub ends_at: Option<DateTime<Utc>>,
    /// Whether it answers (default true).
    pub enabled: Option<bool>,
}

/// Changes to an auto-responder (its channel and trigger stay); omitted fields stay, `null`
/// clears an optional one.
#[derive(InputObject)]
pub struct UpdateAutoResponderInput {
    /// The auto-responder.
    pub id: ID,
    /// New name.
    pub name: Option<String>,
    /// New match kind.
    pub match_kind: Option<MatchKindGql>,
    /// New keywords.
    pub keywords: Option<Vec<String>>,
    /// New reply text.
    pub body: Option<String>,
    /// New business hours; `null` for the channel's.
    pub business_hours: MaybeUndefined<BusinessHours>,
    /// New start; `null` for none.
    pub starts_at: MaybeUndefined<DateTime<Utc>>,
    /// New end; `null` for none.
    pub ends_at: MaybeUndefined<DateTime<Utc>>,
    /// Enable or disable it.
    pub enabled: Option<bool>,
}

/// Names one auto-responder.
#[derive(InputObject)]
pub struct AutoResponderIdInput {
    /// The auto-responder.
    pub id: ID,
}

/// Result of a mutation on one auto-responder.
#[derive(SimpleObject)]
pub struct AutoResponderPayload {
    /// The auto-responder after the change; null when it failed.
    pub auto_responder: Option<AutoResponder>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

impl AutoResponderPayload {
    fn from(result: AppResult<entity::auto_responder::Model>) -> async_graphql::Result<Self> {
        let (model, user_errors) = split(result)?;
        Ok(Self {
            auto_responder: model.map(AutoResponder),
            user_errors,
        })
    }
}

/// Result of deleting an auto-responder.
#[derive(SimpleObject)]
pub struct DeleteAutoResponderPayload {
    /// The deleted auto-responder's id; null when it failed.
    pub deleted_id: Option<ID>,
    /// Why it was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Auto-responder mutations.
#[derive(Default)]
pub struct ResponderMutation;

#[Object]
impl ResponderMutation {
    /// Creates an auto-responder (TEAM_LEAD). Refused: an archived or unknown channel, a keyword
    /// responder without keywords, an out-of-hours one without business hours (its own or the
    /// channel's), `OPT_OUT`/`OPT_IN` on a channel that is not SMS or a second one of a kind on
    /// a channel, an end before the start.
    async fn create_auto_responder(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CreateAutoResponderInput,
    ) -> async_graphql::Result<AutoResponderPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("channelId", &input.channel_id, "Channel") {
            Ok(channel_id) => {
                service::create(
                    app.db(),
                    principal,
                    ResponderInput {
                        channel_id: Some(channel_id),
                        name: Some(input.name),
                        trigger: Some(input.trigger.into()),
                        match_kind: input.match_kind.map(Into::into),
                        keywords: input.keywords,
                        body: Some(input.body),
                        business_hours: Some(input.business_hours.map(Into::into)),
                        starts_at: Some(input.starts_at),
                        ends_at: Some(input.ends_at),
                        enabled: input.enabled,
                    },
                )
                .await
            }
            Err(e) => Err(e),
        };
        AutoResponderPayload::from(result)
    }

    /// Changes an auto-responder (TEAM_LEAD); the result is checked as on creation.
    async fn update_auto_responder(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UpdateAutoResponderInput,
    ) -> async_graphql::Result<AutoResponderPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("id", &input.id, service::SUBJECT) {
            Ok(id) => {
                service::update(
                    app.db(),
                    principal,
                    id,
                    ResponderInput {
                        name: input.name,
                        match_kind: input.match_kind.map(Into::into),
                        keywords: input.keywords,
                        body: input.body,
                        business_hours: patch(input.business_hours).map(|h| h.map(Into::into)),
                        starts_at: patch(input.starts_at),
                        ends_at: patch(input.ends_at),
                        enabled: input.enabled,
                        ..Default::default()
                    },
                )
                .await
            }
            Err(e) => Err(e),
        };
        AutoResponderPayload::from(result)
    }

    /// Deletes an auto-responder (TEAM_LEAD).
    async fn delete_auto_responder(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: AutoResponderIdInput,
    ) -> async_graphql::Result<DeleteAutoResponderPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("id", &input.id, service::SUBJECT) {
            Ok(id) => service::delete(app.db(), principal, id).await,
            Err(e) => Err(e),
        };
        let (id, user_errors) = split(result)?;
        Ok(DeleteAutoResponderPayload {
            deleted_id: id.map(|id| encode_id(service::SUBJECT, id)),
            user_errors,
        })
    }
}
