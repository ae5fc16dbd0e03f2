//! GraphQL types, queries and mutations of queues.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::service::{self, MemberChange, QueueInput};
use crate::auth::Permission;
use crate::channels::ChannelType;
use crate::channels::graphql::ChannelTypeGql;
use crate::error::{AppError, AppResult};
use crate::graphql::context::{ById, ContextExt, ScopedLoader, page_selects};
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, decode_id, encode_id};
use crate::organizations::graphql::patch;
use crate::teams::graphql::user_ids;
use crate::users::graphql::User;

/// How a queued conversation is offered to members (Dixa's six algorithms).
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "service::OfferAlgorithm")]
pub enum OfferAlgorithm {
    /// One member at a time by priority, random among equals.
    AgentPriorityOneAtATimeRandom,
    /// All available members at once.
    AllAtOnce,
    /// By priority, the longest idle first.
    AgentPriorityLongestIdle,
    /// By priority, all of a priority at once.
    AgentPriorityAllAtOnce,
    /// The longest idle member first.
    LongestIdle,
    /// One member at a time, at random.
    OneAtATimeRandom,
}

/// Kinds of queue thresholds.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "QueueThresholdKind", remote = "service::ThresholdKind")]
pub enum ThresholdKind {
    /// SLA time limit, in seconds.
    SlaTimeLimit,
    /// Available agents.
    AvailableAgents,
    /// Longest wait, in seconds.
    LongestWait,
    /// SLA percentage.
    SlaPercentage,
    /// Waiting conversations.
    WaitingConversations,
}

/// How queue members are listed.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "QueueMemberListType", remote = "service::MemberListType")]
pub enum MemberListType {
    /// Plain list with priorities.
    Default,
    /// Skill based.
    SkillBased,
}

/// How a queue's SLA is calculated.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "service::SlaCalculationMethod")]
pub enum SlaCalculationMethod {
    /// Abandoned conversations are ignored.
    AbandonedIgnored,
}

/// A threshold of a queue.
#[derive(SimpleObject, InputObject, Clone, Debug)]
#[graphql(input_name = "QueueThresholdInput")]
pub struct QueueThreshold {
    /// What is measured.
    pub kind: ThresholdKind,
    /// The limit.
    pub value: i32,
}

/// A per-channel-type timeout of a queue, in seconds.
#[derive(SimpleObject, InputObject, Clone, Debug)]
#[graphql(input_name = "ChannelTimeoutInput")]
pub struct ChannelTimeout {
    /// The channel type.
    pub channel_type: ChannelTypeGql,
    /// Seconds.
    pub seconds: i32,
}

/// A member of a queue.
pub struct QueueMember {
    user_id: Uuid,
    priority: i32,
}

/// A user's membership of a queue.
#[Object]
impl QueueMember {
    /// The user.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(ctx
            .app()
            .load::<entity::user::Entity>(self.user_id)
            .await?
            .map(User))
    }

    /// Offer priority (lower first).
    async fn priority(&self) -> i32 {
        self.priority
    }
}

/// Members per queue, batched across the queues of a request.
pub struct QueueMembers {
    db: DatabaseConnection,
    org_id: Uuid,
}

impl ScopedLoader for QueueMembers {
    fn new(db: DatabaseConnection, org_id: Uuid) -> Self {
        Self { db, org_id }
    }
}

impl Loader<Uuid> for QueueMembers {
    type Value = Vec<(Uuid, i32)>;
    type Error = AppError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<(Uuid, i32)>>, AppError> {
        service::members(&self.db, self.org_id, keys).await
    }
}

/// A queue.
#[derive(Clone)]
pub struct Queue(pub entity::queue::Model);

fn timeouts(value: &serde_json::Value) -> Vec<ChannelTimeout> {
    service::map_entries(value, ChannelType::parse)
        .into_iter()
        .map(|(c, seconds)| ChannelTimeout {
            channel_type: c.into(),
            seconds,
        })
        .collect()
}

/// Where conversations wait to be offered to the queue's members.
#[Object]
impl Queue {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("Queue", self.0.id)
    }

    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Priority among queues (lower first).
    async fn priority(&self) -> i32 {
        self.0.priority
    }

    /// Whether it is the organization's default queue.
    async fn is_default(&self) -> bool {
        self.0.is_default
    }

    /// How conversations are offered.
    async fn offer_algorithm(&self) -> OfferAlgorithm {
        service::OfferAlgorithm::parse(&self.0.offer_algorithm)
            .unwrap_or(service::OfferAlgorithm::AllAtOnce)
            .into()
    }

    /// Seconds an offer waits for an answer.
    async fn offer_timeout(&self) -> Option<i32> {
        self.0.offer_timeout_seconds
    }

    /// Seconds of wrap-up after a conversation.
    async fn wrapup_timeout(&self) -> Option<i32> {
        self.0.wrapup_timeout_seconds
    }

    /// How members are listed.
    async fn member_list_type(&self) -> MemberListType {
        service::MemberListType::parse(&self.0.member_list_type)
            .unwrap_or(service::MemberListType::Default)
            .into()
    }

    /// Thresholds.
    async fn thresholds(&self) -> Vec<QueueThreshold> {
        service::map_entries(&self.0.thresholds, service::ThresholdKind::parse)
            .into_iter()
            .map(|(kind, value)| QueueThreshold {
                kind: kind.into(),
                value,
            })
            .collect()
    }

    /// Whether do-not-offer timeouts apply.
    async fn do_not_offer_enabled(&self) -> bool {
        self.0.do_not_offer_enabled
    }

    /// Do-not-offer timeouts per channel type.
    async fn do_not_offer_timeouts(&self) -> Vec<ChannelTimeout> {
        timeouts(&self.0.do_not_offer_timeouts)
    }

    /// Whether preferred-agent routing applies.
    async fn preferred_agent_enabled(&self) -> bool {
        self.0.preferred_agent_enabled
    }

    /// Preferred-agent timeouts per channel type.
    async fn preferred_agent_timeouts(&self) -> Vec<ChannelTimeout> {
        timeouts(&self.0.preferred_agent_timeouts)
    }

    /// Whether abandoned conversations are offered.
    async fn offer_abandoned_conversations(&self) -> bool {
        self.0.offer_abandoned_conversations
    }

    /// Seconds before a personal agent counts as offline.
    async fn personal_agent_offline_timeout(&self) -> Option<i32> {
        self.0.personal_agent_offline_timeout_seconds
    }

    /// Seconds before a preferred agent counts as offline.
    async fn preferred_agent_offline_timeout(&self) -> Option<i32> {
        self.0.preferred_agent_offline_timeout_seconds
    }

    /// Whether calls are routed through the queue.
    async fn call_functionality(&self) -> bool {
        self.0.call_functionality
    }

    /// How the SLA is calculated.
    async fn sla_calculation_method(&self) -> SlaCalculationMethod {
        service::SlaCalculationMethod::parse(&self.0.sla_calculation_method)
            .unwrap_or(service::SlaCalculationMethod::AbandonedIgnored)
            .into()
    }

    /// Members by priority.
    async fn members(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<QueueMember>> {
        let app = ctx.app();
        let members = app
            .loader::<QueueMembers>()?
            .load_one(self.0.id)
            .await?
            .unwrap_or_default();
        // Warm the user loader with the whole batch at once.
        app.loader::<ById<entity::user::Entity>>()?
            .load_many(members.iter().map(|(u, _)| *u))
            .await?;
        Ok(members
            .into_iter()
            .map(|(user_id, priority)| QueueMember { user_id, priority })
            .collect())
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

/// Queue queries.
#[derive(Default)]
pub struct QueueQuery;

#[Object]
impl QueueQuery {
    /// The organization's queues, by priority.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    async fn queues(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<Queue>> {
        let app = ctx.app();
        let args = PageArgs {
            after,
            before,
            first,
            last,
        };
        let (page, total) = service::list(app.db(), app.principal()?, &args).await?;
        if page_selects(ctx, &["members"]) {
            // One statement for the page's members and one for their users, whatever its size.
            let members = app
                .loader::<QueueMembers>()?
                .load_many(page.items.iter().map(|(_, q)| q.id))
                .await?;
            app.loader::<ById<entity::user::Entity>>()?
                .load_many(members.into_values().flatten().map(|(user, _)| user))
                .await?;
        }
        Ok(Connection::new(page.map(Queue), total))
    }

    /// A queue by id; null when there is none.
    async fn queue(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The queue's global id.")] id: ID,
    ) -> async_graphql::Result<Option<Queue>> {
        let app = ctx.app();
        app.principal()?.require(Permission::ReadDirectory)?;
        let id = decode_id(&id, "Queue")?;
        Ok(app.load::<entity::queue::Entity>(id).await?.map(Queue))
    }
}

/// Settings of a queue. On create, omitted fields take their defaults (all-at-once offers, 30 s
/// offer timeout); on update, omitted fields stay and `null` clears an optional one.
#[derive(InputObject, Default)]
pub struct QueueSettingsInput {
    /// Name (required on create).
    pub name: Option<String>,
    /// Priority among queues (lower first, 0 or more).
    pub priority: Option<i32>,
    /// Make it the organization's default queue (the first queue always is).
    pub is_default: Option<bool>,
    /// How conversations are offered.
    pub offer_algorithm: Option<OfferAlgorithm>,
    /// Seconds an offer waits for an answer.
    pub offer_timeout: MaybeUndefined<i32>,
    /// Seconds of wrap-up after a conversation.
    pub wrapup_timeout: MaybeUndefined<i32>,
    /// How members are listed.
    pub member_list_type: Option<MemberListType>,
    /// Thresholds (replaces them all).
    pub thresholds: Option<Vec<QueueThreshold>>,
    /// Whether do-not-offer timeouts apply.
    pub do_not_offer_enabled: Option<bool>,
    /// Do-not-offer timeouts per channel type (replaces them all).
    pub do_not_offer_timeouts: Option<Vec<ChannelTimeout>>,
    /// Whether preferred-agent routing applies.
    pub preferred_agent_enabled: Option<bool>,
    /// Preferred-agent timeouts per channel type (replaces them all).
    pub preferred_agent_timeouts: Option<Vec<ChannelTimeout>>,
    /// Whether abandoned conversations are offered.
    pub offer_abandoned_conversations: Option<bool>,
    /// Seconds before a personal agent counts as offline.
    pub personal_agent_offline_timeout: MaybeUndefined<i32>,
    /// Seconds before a preferred agent counts as offline.
    pub preferred_agent_offline_timeout: MaybeUndefined<i32>,
    /// Whether calls are routed through the queue.
    pub call_functionality: Option<bool>,
    /// How the SLA is calculated.
    pub sla_calculation_method: Option<SlaCalculationMethod>,
}

fn channel_timeouts(list: Option<Vec<ChannelTimeout>>) -> Option<Vec<(ChannelType, i32)>> {
    list.map(|l| {
        l.into_iter()
            .map(|t| (t.channel_type.into(), t.seconds))
            .collect()
    })
}

impl From<QueueSettingsInput> for QueueInput {
    fn from(input: QueueSettingsInput) -> Self {
        QueueInput {
            name: input.name,
            priority: input.priority,
            is_default: input.is_default,
            offer_algorithm: input.offer_algorithm.map(Into::into),
            offer_timeout_seconds: patch(input.offer_timeout),
            wrapup_timeout_seconds: patch(input.wrapup_timeout),
            member_list_type: input.member_list_type.map(Into::into),
            thresholds: input
                .thresholds
                .map(|t| t.into_iter().map(|t| (t.kind.into(), t.value)).collect()),
            do_not_offer_enabled: input.do_not_offer_enabled,
            do_not_offer_timeouts: channel_timeouts(input.do_not_offer_timeouts),
            preferred_agent_enabled: input.preferred_agent_enabled,
            preferred_agent_timeouts: channel_timeouts(input.preferred_agent_timeouts),
            offer_abandoned_conversations: input.offer_abandoned_conversations,
            personal_agent_offline_timeout_seconds: patch(input.personal_agent_offline_timeout),
            preferred_agent_offline_timeout_seconds: patch(input.preferred_agent_offline_timeout),
            call_functionality: input.call_functionality,
            sla_calculation_method: input.sla_calculation_method.map(Into::into),
        }
    }
}

/// Changes to a queue.
#[derive(InputObject)]
pub struct UpdateQueueInput {
    /// The queue.
    pub id: ID,
    /// What to change.
    pub settings: QueueSettingsInput,
}

/// Names one queue.
#[derive(InputObject)]
pub struct QueueIdInput {
    /// The queue.
    pub id: ID,
}

/// A member and its priority.
#[derive(InputObject)]
pub struct QueueMemberInput {
    /// The user.
    pub user_id: ID,
    /// Offer priority (lower first, 0 or more).
    #[graphql(default)]
    pub priority: i32,
}

/// Members to add to a queue or whose priority changes.
#[derive(InputObject)]
pub struct QueueMembersInput {
    /// The queue.
    pub queue_id: ID,
    /// The members (at most 100).
    pub members: Vec<QueueMemberInput>,
}

/// Users to remove from a queue.
#[derive(InputObject)]
pub struct RemoveQueueMembersInput {
    /// The queue.
    pub queue_id: ID,
    /// The users (at most 100).
    pub user_ids: Vec<ID>,
}

/// Result of a mutation on one queue.
#[derive(SimpleObject)]
pub struct QueuePayload {
    /// The queue after the change; null when it failed.
    pub queue: Option<Queue>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

impl QueuePayload {
    fn from(result: AppResult<entity::queue::Model>) -> async_graphql::Result<Self> {
        let (queue, user_errors) = split(result)?;
        Ok(Self {
            queue: queue.map(Queue),
            user_errors,
        })
    }
}

/// Result of `deleteQueue`.
#[derive(SimpleObject)]
pub struct DeleteQueuePayload {
    /// The id of the deleted queue; null when it failed.
    pub deleted_queue_id: Option<ID>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Queue mutations.
#[derive(Default)]
pub struct QueueMutation;

#[Object]
impl QueueMutation {
    /// Creates a queue (TEAM_LEAD). The organization's first queue becomes its default.
    async fn create_queue(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: QueueSettingsInput,
    ) -> async_graphql::Result<QueuePayload> {
        let app = ctx.app();
        QueuePayload::from(service::create(app.db(), app.principal()?, input.into()).await)
    }

    /// Changes a queue (TEAM_LEAD). `isDefault: true` moves the default here.
    async fn update_queue(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UpdateQueueInput,
    ) -> async_graphql::Result<QueuePayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("id", &input.id, "Queue") {
            Ok(id) => service::update(app.db(), principal, id, input.settings.into()).await,
            Err(e) => Err(e),
        };
        QueuePayload::from(result)
    }

    /// Deletes a queue and its memberships (TEAM_LEAD); the default queue cannot be deleted.
    async fn delete_queue(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: QueueIdInput,
    ) -> async_graphql::Result<DeleteQueuePayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("id", &input.id, "Queue") {
            Ok(id) => service::delete(app.db(), principal, id).await,
            Err(e) => Err(e),
        };
        let (deleted, user_errors) = split(result)?;
        Ok(DeleteQueuePayload {
            deleted_queue_id: deleted.map(|id| encode_id("Queue", id)),
            user_errors,
        })
    }

    /// Adds members to a queue, or sets the priority of those already in it (TEAM_LEAD).
    async fn add_queue_members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: QueueMembersInput,
    ) -> async_graphql::Result<QueuePayload> {
        set_members(ctx, input, MemberChange::Add).await
    }

    /// Changes the priority of existing members (TEAM_LEAD).
    async fn update_queue_members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: QueueMembersInput,
    ) -> async_graphql::Result<QueuePayload> {
        set_members(ctx, input, MemberChange::Update).await
    }

    /// Removes members from a queue (TEAM_LEAD).
    async fn remove_queue_members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: RemoveQueueMembersInput,
    ) -> async_graphql::Result<QueuePayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let ids = input_id("queueId", &input.queue_id, "Queue")
            .and_then(|queue| Ok((queue, user_ids("userIds", &input.user_ids)?)));
        let result = match ids {
            Ok((queue, users)) => service::remove_members(app.db(), principal, queue, &users).await,
            Err(e) => Err(e),
        };
        QueuePayload::from(result)
    }
}

async fn set_members(
    ctx: &Context<'_>,
    input: QueueMembersInput,
    change: MemberChange,
) -> async_graphql::Result<QueuePayload> {
    let app = ctx.app();
    let principal = app.principal()?;
    let decoded = input_id("queueId", &input.queue_id, "Queue").and_then(|queue| {
        if input.members.len() > crate::teams::graphql::MAX_MEMBERS_PER_CALL {
            return Err(AppError::invalid(
                "members",
                crate::error::UserErrorCode::TooLong,
                "at most 100 members per call",
            ));
        }
        let members = input
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                Ok((
                    input_id(&format!("members.{i}.userId"), &m.user_id, "User")?,
                    m.priority,
                ))
            })
            .collect::<AppResult<Vec<_>>>()?;
        Ok((queue, members))
    });
    let result = match decoded {
        Ok((queue, members)) => {
            service::set_members(app.db(), principal, queue, &members, change).await
        }
        Err(e) => Err(e),
    };
    QueuePayload::from(result)
}
