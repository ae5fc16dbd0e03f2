//! Business rules for queues.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::{Permission, Principal};
use crate::channels::ChannelType;
use crate::db;
use crate::error::{AppError, AppResult, FieldError, UserErrorCode};
use crate::events::{self, Subject};
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::teams::service::require_users;
use crate::tenancy;
use crate::validate::Errors;

use entity::{queue, queue_member};

/// How a queued conversation is offered to members (Dixa's six algorithms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// Kinds of queue thresholds (Dixa `QueueThreshold`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// How members are listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberListType {
    /// Plain list with priorities.
    Default,
    /// Skill based.
    SkillBased,
}

/// How the SLA is calculated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlaCalculationMethod {
    /// Abandoned conversations are ignored.
    AbandonedIgnored,
}

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

stored_enum!(OfferAlgorithm {
    AgentPriorityOneAtATimeRandom => "AGENT_PRIORITY_ONE_AT_A_TIME_RANDOM",
    AllAtOnce => "ALL_AT_ONCE",
    AgentPriorityLongestIdle => "AGENT_PRIORITY_LONGEST_IDLE",
    AgentPriorityAllAtOnce => "AGENT_PRIORITY_ALL_AT_ONCE",
    LongestIdle => "LONGEST_IDLE",
    OneAtATimeRandom => "ONE_AT_A_TIME_RANDOM",
});
stored_enum!(ThresholdKind {
    SlaTimeLimit => "SLA_TIME_LIMIT",
    AvailableAgents => "AVAILABLE_AGENTS",
    LongestWait => "LONGEST_WAIT",
    SlaPercentage => "SLA_PERCENTAGE",
    WaitingConversations => "WAITING_CONVERSATIONS",
});
stored_enum!(MemberListType { Default => "DEFAULT", SkillBased => "SKILL_BASED" });
stored_enum!(SlaCalculationMethod { AbandonedIgnored => "ABANDONED_IGNORED" });

/// Queue settings; on create `None` takes the default, on update `None` leaves the field and
/// `Some(None)` clears an optional one.
#[derive(Clone, Debug, Default)]
pub struct QueueInput {
    /// Name.
    pub name: Option<String>,
    /// Priority (lower first, 0 or more).
    pub priority: Option<i32>,
    /// Whether it is the organization's default queue.
    pub is_default: Option<bool>,
    /// Offer algorithm.
    pub offer_algorithm: Option<OfferAlgorithm>,
    /// Seconds an offer waits.
    pub offer_timeout_seconds: Option<Option<i32>>,
    /// Seconds of wrap-up.
    pub wrapup_timeout_seconds: Option<Option<i32>>,
    /// Member list type.
    pub member_list_type: Option<MemberListType>,
    /// Thresholds (replaces the set).
    pub thresholds: Option<Vec<(ThresholdKind, i32)>>,
    /// Do-not-offer enabled.
    pub do_not_offer_enabled: Option<bool>,
    /// Do-not-offer timeouts per channel type (replaces the set).
    pub do_not_offer_timeouts: Option<Vec<(ChannelType, i32)>>,
    /// Preferred-agent routing enabled.
    pub preferred_agent_enabled: Option<bool>,
    /// Preferred-agent timeouts per channel type (replaces the set).
    pub preferred_agent_timeouts: Option<Vec<(ChannelType, i32)>>,
    /// Offer abandoned conversations.
    pub offer_abandoned_conversations: Option<bool>,
    /// Personal agent offline timeout, seconds.
    pub personal_agent_offline_timeout_seconds: Option<Option<i32>>,
    /// Preferred agent offline timeout, seconds.
    pub preferred_agent_offline_timeout_seconds: Option<Option<i32>>,
    /// Calls can be routed through the queue.
    pub call_functionality: Option<bool>,
    /// SLA calculation method.
    pub sla_calculation_method: Option<SlaCalculationMethod>,
}

fn non_negative(errors: &mut Errors, field: &str, value: Option<i32>) -> Option<i32> {
    if let Some(v) = value
        && v < 0
    {
        errors.add(
            field,
            UserErrorCode::Invalid,
            format!("{field} must not be negative"),
        );
    }
    value
}

fn map_json<K: Copy>(
    errors: &mut Errors,
    field: &str,
    entries: &[(K, i32)],
    name: impl Fn(K) -> &'static str,
) -> Value {
    let mut map = BTreeMap::new();
    for (i, (key, value)) in entries.iter().enumerate() {
        if *value < 0 {
            errors.add(
                &format!("{field}.{i}.value"),
                UserErrorCode::Invalid,
                "must not be negative",
            );
        }
        if map.insert(name(*key), *value).is_some() {
            errors.add(
                &format!("{field}.{i}"),
                UserErrorCode::Invalid,
                format!("{} is listed twice", name(*key)),
            );
        }
    }
    json!(map)
}

/// Reads a stored JSON map back into entries.
pub fn map_entries<K>(value: &Value, parse: impl Fn(&str) -> Option<K>) -> Vec<(K, i32)> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((parse(k)?, i32::try_from(v.as_i64()?).ok()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn apply(
    errors: &mut Errors,
    model: &mut queue::ActiveModel,
    input: &QueueInput,
) -> Vec<&'static str> {
    let mut changed = Vec::new();
    macro_rules! set {
        ($field:ident, $name:literal, $value:expr) => {
            if let Some(v) = $value {
                changed.push($name);
                model.$field = Set(v);
            }
        };
    }
    set!(
        name,
        "name",
        input
            .name
            .as_deref()
            .map(|n| errors.required_text("name", n, 200))
    );
    set!(
        priority,
        "priority",
        input
            .priority
            .map(|p| non_negative(errors, "priority", Some(p)).unwrap_or(0))
    );
    set!(
        offer_algorithm,
        "offerAlgorithm",
        input.offer_algorithm.map(|a| a.as_str().to_string())
    );
    set!(
        offer_timeout_seconds,
        "offerTimeout",
        input
            .offer_timeout_seconds
            .map(|v| non_negative(errors, "offerTimeout", v))
    );
    set!(
        wrapup_timeout_seconds,
        "wrapupTimeout",
        input
            .wrapup_timeout_seconds
            .map(|v| non_negative(errors, "wrapupTimeout", v))
    );
    set!(
        member_list_type,
        "memberListType",
        input.member_list_type.map(|t| t.as_str().to_string())
    );
    set!(
        thresholds,
        "thresholds",
        input
            .thresholds
            .as_ref()
            .map(|t| map_json(errors, "thresholds", t, ThresholdKind::as_str))
    );
    set!(
        do_not_offer_enabled,
        "doNotOfferEnabled",
        input.do_not_offer_enabled
    );
    set!(
        do_not_offer_timeouts,
        "doNotOfferTimeouts",
        input.do_not_offer_timeouts.as_ref().map(|t| map_json(
            errors,
            "doNotOfferTimeouts",
            t,
            ChannelType::as_str
        ))
    );
    set!(
        preferred_agent_enabled,
        "preferredAgentEnabled",
        input.preferred_agent_enabled
    );
    set!(
        preferred_agent_timeouts,
        "preferredAgentTimeouts",
        input.preferred_agent_timeouts.as_ref().map(|t| map_json(
            errors,
            "preferredAgentTimeouts",
            t,
            ChannelType::as_str
        ))
    );
    set!(
        offer_abandoned_conversations,
        "offerAbandonedConversations",
        input.offer_abandoned_conversations
    );
    set!(
        personal_agent_offline_timeout_seconds,
        "personalAgentOfflineTimeout",
        input
            .personal_agent_offline_timeout_seconds
            .map(|v| non_negative(errors, "personalAgentOfflineTimeout", v))
    );
    set!(
        preferred_agent_offline_timeout_seconds,
        "preferredAgentOfflineTimeout",
        input
            .preferred_agent_offline_timeout_seconds
            .map(|v| non_negative(errors, "preferredAgentOfflineTimeout", v))
    );
    set!(
        call_functionality,
        "callFunctionality",
        input.call_functionality
    );
    set!(
        sla_calculation_method,
        "slaCalculationMethod",
        input.sla_calculation_method.map(|m| m.as_str().to_string())
    );
    changed
}

async fn find<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    id: Uuid,
    field: &str,
) -> AppResult<queue::Model> {
    tenancy::by_id::<queue::Entity>(org_id, id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid(field, UserErrorCode::NotFound, "no such queue"))
}

/// Makes `id` the only default queue of the organization (within the caller's transaction).
async fn make_default<C: ConnectionTrait>(conn: &C, org_id: Uuid, id: Uuid) -> AppResult<()> {
    queue::Entity::update_many()
        .col_expr(queue::Column::IsDefault, Expr::value(false))
        .filter(queue::Column::OrgId.eq(org_id))
        .filter(queue::Column::Id.ne(id))
        .filter(queue::Column::IsDefault.eq(true))
        .exec(conn)
        .await?;
    queue::Entity::update_many()
        .col_expr(queue::Column::IsDefault, Expr::value(true))
        .filter(queue::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Creates a queue (TEAM_LEAD). The organization's first queue becomes its default.
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    input: QueueInput,
) -> AppResult<queue::Model> {
    principal.require(Permission::ManageRouting)?;
    let now = Utc::now();
    let id = Uuid::now_v7();
    let mut model = queue::ActiveModel {
        id: Set(id),
        org_id: Set(principal.org_id),
        name: Set(String::new()),
        priority: Set(0),
        is_default: Set(false),
        offer_algorithm: Set(OfferAlgorithm::AllAtOnce.as_str().into()),
        offer_timeout_seconds: Set(Some(30)),
        wrapup_timeout_seconds: Set(Some(0)),
        member_list_type: Set(MemberListType::Default.as_str().into()),
        thresholds: Set(json!({})),
        do_not_offer_enabled: Set(false),
        do_not_offer_timeouts: Set(json!({})),
        preferred_agent_enabled: Set(false),
        preferred_agent_timeouts: Set(json!({})),
        offer_abandoned_conversations: Set(false),
        personal_agent_offline_timeout_seconds: Set(None),
        preferred_agent_offline_timeout_seconds: Set(None),
        call_functionality: Set(false),
        sla_calculation_method: Set(SlaCalculationMethod::AbandonedIgnored.as_str().into()),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let mut errors = Errors::default();
    if input.name.is_none() {
        errors.add("name", UserErrorCode::Required, "name must not be empty");
    }
    apply(&mut errors, &mut model, &input);
    errors.finish()?;
    let txn = db::begin_write(db).await?;
    let first = tenancy::in_org::<queue::Entity>(principal.org_id)
        .count(&txn)
        .await?
        == 0;
    let created = model.insert(&txn).await?;
    if first || input.is_default == Some(true) {
        make_default(&txn, principal.org_id, id).await?;
    }
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "QUEUE_CREATED",
        Subject::new("Queue", id),
        json!({ "name": created.name }),
    )
    .await?;
    let created = find(&txn, principal.org_id, id, "id").await?;
    txn.commit().await?;
    Ok(created)
}

/// Changes a queue (TEAM_LEAD). `isDefault: true` moves the default here; the default cannot be
/// unset directly (make another queue the default instead).
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    input: QueueInput,
) -> AppResult<queue::Model> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id, "id").await?;
    if input.is_default == Some(false) && current.is_default {
        return Err(AppError::invalid(
            "isDefault",
            UserErrorCode::InvalidState,
            "an organization needs a default queue: make another queue the default instead",
        ));
    }
    let mut errors = Errors::default();
    let mut model = current.clone().into_active_model();
    let mut changed = apply(&mut errors, &mut model, &input);
    errors.finish()?;
    model.updated_at = Set(Utc::now());
    model.update(&txn).await?;
    if input.is_default == Some(true) && !current.is_default {
        make_default(&txn, principal.org_id, id).await?;
        changed.push("isDefault");
        events::record(
            &txn,
            principal.org_id,
            Some(principal.user_id()),
            "QUEUE_DEFAULT_CHANGED",
            Subject::new("Queue", id),
            json!({}),
        )
        .await?;
    }
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "QUEUE_UPDATED",
        Subject::new("Queue", id),
        json!({ "changed": changed }),
    )
    .await?;
    let updated = find(&txn, principal.org_id, id, "id").await?;
    txn.commit().await?;
    Ok(updated)
}

/// Deletes a queue and its memberships (TEAM_LEAD); the default queue cannot be deleted.
pub async fn delete(db: &DatabaseConnection, principal: &Principal, id: Uuid) -> AppResult<Uuid> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id, "id").await?;
    if current.is_default {
        return Err(AppError::invalid(
            "id",
            UserErrorCode::InvalidState,
            "the default queue cannot be deleted",
        ));
    }
    queue_member::Entity::delete_many()
        .filter(queue_member::Column::QueueId.eq(id))
        .exec(&txn)
        .await?;
    queue::Entity::delete_by_id(id).exec(&txn).await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "QUEUE_DELETED",
        Subject::new("Queue", id),
        json!({ "name": current.name }),
    )
    .await?;
    txn.commit().await?;
    Ok(id)
}

/// How a membership change applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberChange {
    /// Add users (or set the priority of members already there).
    Add,
    /// Change the priority of existing members.
    Update,
}

/// Adds members or changes their priority (TEAM_LEAD).
pub async fn set_members(
    db: &DatabaseConnection,
    principal: &Principal,
    queue_id: Uuid,
    members: &[(Uuid, i32)],
    change: MemberChange,
) -> AppResult<queue::Model> {
    principal.require(Permission::ManageRouting)?;
    let mut errors = Errors::default();
    for (i, (_, priority)) in members.iter().enumerate() {
        non_negative(
            &mut errors,
            &format!("members.{i}.priority"),
            Some(*priority),
        );
    }
    errors.finish()?;
    let txn = db::begin_write(db).await?;
    let queue = find(&txn, principal.org_id, queue_id, "queueId").await?;
    let user_ids: Vec<Uuid> = members.iter().map(|(u, _)| *u).collect();
    require_users(&txn, principal.org_id, &user_ids, "members")
        .await
        .map_err(|e| match e {
            AppError::Validation(errors) => AppError::Validation(
                errors
                    .into_iter()
                    .map(|mut e| {
                        e.field.push("userId".into());
                        e
                    })
                    .collect(),
            ),
            other => other,
        })?;
    let existing: HashSet<Uuid> = queue_member::Entity::find()
        .filter(queue_member::Column::QueueId.eq(queue_id))
        .all(&txn)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    if change == MemberChange::Update {
        let missing: Vec<FieldError> = members
            .iter()
            .enumerate()
            .filter(|(_, (u, _))| !existing.contains(u))
            .map(|(i, _)| {
                FieldError::new(
                    &format!("members.{i}.userId"),
                    UserErrorCode::NotFound,
                    "the user is not a member of this queue",
                )
            })
            .collect();
        if !missing.is_empty() {
            return Err(AppError::Validation(missing));
        }
    }
    let now = Utc::now();
    for (i, (user_id, priority)) in members.iter().enumerate() {
        if existing.contains(user_id) {
            queue_member::Entity::update_many()
                .col_expr(queue_member::Column::Priority, Expr::value(*priority))
                .filter(queue_member::Column::QueueId.eq(queue_id))
                .filter(queue_member::Column::UserId.eq(*user_id))
                .exec(&txn)
                .await?;
        } else if !members[..i].iter().any(|(u, _)| u == user_id) {
            queue_member::ActiveModel {
                queue_id: Set(queue_id),
                user_id: Set(*user_id),
                org_id: Set(principal.org_id),
                priority: Set(*priority),
                created_at: Set(now + chrono::Duration::microseconds(i as i64)),
            }
            .insert(&txn)
            .await?;
        }
    }
    let event = match change {
        MemberChange::Add => "QUEUE_MEMBERS_ADDED",
        MemberChange::Update => "QUEUE_MEMBERS_UPDATED",
    };
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        event,
        Subject::new("Queue", queue_id),
        json!({ "members": members.iter().map(|(u, p)| json!({ "userId": u, "priority": p })).collect::<Vec<_>>() }),
    )
    .await?;
    txn.commit().await?;
    Ok(queue)
}

/// Removes members from a queue (TEAM_LEAD).
pub async fn remove_members(
    db: &DatabaseConnection,
    principal: &Principal,
    queue_id: Uuid,
    user_ids: &[Uuid],
) -> AppResult<queue::Model> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let queue = find(&txn, principal.org_id, queue_id, "queueId").await?;
    require_users(&txn, principal.org_id, user_ids, "userIds").await?;
    let removed = queue_member::Entity::delete_many()
        .filter(queue_member::Column::QueueId.eq(queue_id))
        .filter(queue_member::Column::UserId.is_in(user_ids.iter().copied()))
        .exec(&txn)
        .await?
        .rows_affected;
    if removed > 0 {
        events::record(
            &txn,
            principal.org_id,
            Some(principal.user_id()),
            "QUEUE_MEMBERS_REMOVED",
            Subject::new("Queue", queue_id),
            json!({ "userIds": user_ids }),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(queue)
}

/// One page of queues, by priority.
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    args: &PageArgs,
) -> AppResult<(Page<queue::Model>, TotalCount)> {
    principal.require(Permission::ReadDirectory)?;
    let select = tenancy::in_org::<queue::Entity>(principal.org_id);
    let sort = Sort {
        name: "PRIORITY",
        column: queue::Column::Priority,
        direction: SortDirection::Asc,
        value: |m: &queue::Model| SortValue::Int(i64::from(m.priority)),
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "queues", &sort, args).await?;
    Ok((page, total))
}

/// Members `(user id, priority)` of each queue, by priority then joining order.
pub async fn members(
    db: &DatabaseConnection,
    org_id: Uuid,
    queue_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<(Uuid, i32)>>> {
    let rows = queue_member::Entity::find()
        .filter(queue_member::Column::OrgId.eq(org_id))
        .filter(queue_member::Column::QueueId.is_in(queue_ids.iter().copied()))
        .order_by_asc(queue_member::Column::Priority)
        .order_by_asc(queue_member::Column::CreatedAt)
        .all(db)
        .await?;
    let mut map: HashMap<Uuid, Vec<(Uuid, i32)>> = HashMap::new();
    for row in rows {
        map.entry(row.queue_id)
            .or_default()
            .push((row.user_id, row.priority));
    }
    Ok(map)
}
