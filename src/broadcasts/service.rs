//! Business rules of broadcasts, over a transaction.
//!
//! A broadcast is created as `DRAFT`, then sent now (`SENDING`) or scheduled (`SCHEDULED`, then
//! `SENDING` at its time). Sending is a `broadcast.expand` job that works through the audience in
//! contact id order, [`BATCH`] contacts per transaction, deferring itself with the cursor kept on
//! the broadcast: each contact is skipped (opted out of the channel type, or no address for it),
//! failed (its rendering failed) or gets a real outbound message in its open conversation on the
//! channel (or a new outbound one) through [`crate::messages::service::append`], whose delivery
//! job sends it at the channel's rate. `PAUSED` stops the expansion (messages already queued still
//! go out); resuming starts a new job from the cursor. `CANCELLED` stops it and a
//! `broadcast.cancel` job moves every message of the broadcast not sent yet to `CANCELED` (reason
//! "the broadcast was cancelled", its recipient `CANCELLED`): its delivery job then ends without
//! sending it. The broadcast is `COMPLETED` once the
//! whole audience is expanded and no recipient's message is still queued; its stats keep
//! following delivery reports and replies after that.
//!
//! Counters follow the messages: [`on_message_status`] runs in the transaction that records a
//! message's delivery status, [`on_inbound`] in the one that appends an inbound message.
//! `BROADCAST_PROGRESS` events are recorded at most once per expansion batch and at most once a
//! second from delivery and replies (a trailing `broadcast.progress` job records the last change).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::{broadcast, broadcast_recipient, channel, contact, contact_group, conversation};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    FromQueryResult, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Set,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::auth::{Permission, Principal};
use crate::channels::ChannelType;
use crate::channels::service::active_channel;
use crate::contacts::service::{ConsentStatus, consents};
use crate::conversations::{NOT_WAITING, Party};
use crate::db;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::events::{self, Subject};
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::jobs::{JobContext, JobError, JobResult, Jobs, NewJob, Outcome};
use crate::messages::service::{DeliveryStatus, Direction, MAX_SMS_CHARS, NewMessage, append};
use crate::tenancy;
use crate::validate::Errors;

/// Subject kind of broadcast events.
pub const SUBJECT: &str = "Broadcast";
/// Kind of the job that expands a broadcast's audience into messages.
pub const EXPAND: &str = "broadcast.expand";
/// Kind of the job that fails the queued messages of a cancelled broadcast.
pub const CANCEL: &str = "broadcast.cancel";
/// Kind of the job that records a trailing progress event.
pub const PROGRESS: &str = "broadcast.progress";
/// Contacts expanded per transaction. Write transactions run one at a time (see
/// [`crate::db::begin_write`]): a batch holds up every other writer (agents' replies, deliveries)
/// while it runs, so batches stay short.
pub const BATCH: u64 = 200;
/// Longest name.
pub const MAX_NAME: usize = 200;
/// Most contacts named directly in an audience.
pub const MAX_CONTACT_IDS: usize = 10_000;
/// Most groups in an audience.
pub const MAX_GROUP_IDS: usize = 100;
/// Longest body (text or HTML) in bytes.
pub const MAX_BODY: usize = 100_000;
/// Longest subject.
pub const MAX_SUBJECT: usize = 998;
/// Reason of a message canceled because its broadcast was cancelled.
pub const CANCELLED_REASON: &str = "the broadcast was cancelled";

/// Event types of broadcasts (subject `Broadcast`).
pub mod event_types {
    /// Created as a draft.
    pub const CREATED: &str = "BROADCAST_CREATED";
    /// Its draft changed.
    pub const UPDATED: &str = "BROADCAST_UPDATED";
    /// A draft was deleted.
    pub const DELETED: &str = "BROADCAST_DELETED";
    /// Scheduled for later.
    pub const SCHEDULED: &str = "BROADCAST_SCHEDULED";
    /// Started sending.
    pub const STARTED: &str = "BROADCAST_STARTED";
    /// Paused.
    pub const PAUSED: &str = "BROADCAST_PAUSED";
    /// Resumed.
    pub const RESUMED: &str = "BROADCAST_RESUMED";
    /// Cancelled.
    pub const CANCELLED: &str = "BROADCAST_CANCELLED";
    /// Every recipient's message went out (or failed).
    pub const COMPLETED: &str = "BROADCAST_COMPLETED";
    /// Could not go on (its channel or template went away).
    pub const FAILED: &str = "BROADCAST_FAILED";
    /// Its stats moved.
    pub const PROGRESS: &str = "BROADCAST_PROGRESS";
}

stored_enum!(
    /// Where a broadcast stands.
    Status {
        /// Being prepared.
        Draft => "DRAFT",
        /// Waiting for its time.
        Scheduled => "SCHEDULED",
        /// Expanding its audience and sending.
        Sending => "SENDING",
        /// Expansion stopped until resumed.
        Paused => "PAUSED",
        /// Every recipient's message went out or failed.
        Completed => "COMPLETED",
        /// Stopped for good.
        Cancelled => "CANCELLED",
        /// Could not go on.
        Failed => "FAILED",
    }
);

stored_enum!(
    /// Where one recipient stands.
    RecipientStatus {
        /// Its message waits to be sent.
        Queued => "QUEUED",
        /// Its message was handed to the provider.
        Sent => "SENT",
        /// Its message was delivered.
        Delivered => "DELIVERED",
        /// Its message was read.
        Read => "READ",
        /// Its message failed, or could not be made.
        Failed => "FAILED",
        /// Not sent to (see the reason).
        Skipped => "SKIPPED",
        /// The broadcast was cancelled before its message was sent.
        Cancelled => "CANCELLED",
    }
);

stored_enum!(
    /// Why a recipient was skipped or failed before sending.
    RecipientReason {
        /// Opted out of the channel type.
        OptedOut => "OPTED_OUT",
        /// No email address (email) or phone number (SMS, WhatsApp).
        NoAddress => "NO_ADDRESS",
        /// The template could not be rendered for them.
        RenderFailed => "RENDER_FAILED",
    }
);

/// Who a broadcast goes to: contacts and groups (static or rule-based), deduplicated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audience {
    /// Contacts named directly.
    pub contact_ids: Vec<Uuid>,
    /// Groups and segments.
    pub group_ids: Vec<Uuid>,
}

impl Audience {
    fn to_json(&self) -> Value {
        json!({ "contactIds": self.contact_ids, "groupIds": self.group_ids })
    }

    /// The audience stored on `model`.
    pub fn of(model: &broadcast::Model) -> Self {
        let ids = |key: &str| -> Vec<Uuid> {
            model.audience[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().and_then(|s| Uuid::parse_str(s).ok()))
                        .collect()
                })
                .unwrap_or_default()
        };
        Self {
            contact_ids: ids("contactIds"),
            group_ids: ids("groupIds"),
        }
    }
}

/// A broadcast as given on creation.
#[derive(Clone, Debug, Default)]
pub struct BroadcastInput {
    /// Name.
    pub name: String,
    /// The channel to send on.
    pub channel_id: Uuid,
    /// The template variant to render per contact (instead of a body).
    pub template_id: Option<Uuid>,
    /// Subject (email).
    pub subject: Option<String>,
    /// Text body (may have placeholders).
    pub text: Option<String>,
    /// HTML body (email).
    pub html: Option<String>,
    /// Extra variables (a JSON object).
    pub variables: Option<Value>,
    /// Who it goes to.
    pub audience: Audience,
}

/// Changes to a broadcast; `None` keeps a field, `Some(None)` clears an optional one.
#[derive(Clone, Debug, Default)]
pub struct BroadcastPatch {
    /// New name.
    pub name: Option<String>,
    /// New channel.
    pub channel_id: Option<Uuid>,
    /// New template.
    pub template_id: Option<Option<Uuid>>,
    /// New subject.
    pub subject: Option<Option<String>>,
    /// New text.
    pub text: Option<Option<String>>,
    /// New HTML.
    pub html: Option<Option<String>>,
    /// New variables.
    pub variables: Option<Option<Value>>,
    /// New audience.
    pub audience: Option<Audience>,
}

fn non_blank(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn invalid_state(message: impl Into<String>) -> AppError {
    AppError::invalid("id", UserErrorCode::InvalidState, message)
}

/// Checks `input` against the organization's channel, template, contacts and groups.
async fn check<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    input: BroadcastInput,
) -> AppResult<BroadcastInput> {
    let mut errors = Errors::default();
    let name = errors.required_text("name", &input.name, MAX_NAME);
    let subject = errors.optional_text("subject", input.subject.as_deref(), MAX_SUBJECT);
    let text = non_blank(input.text);
    let html = non_blank(input.html);
    if input.variables.as_ref().is_some_and(|v| !v.is_object()) {
        errors.add(
            "variables",
            UserErrorCode::Invalid,
            "variables must be a JSON object",
        );
    }
    let audience = Audience {
        contact_ids: tenancy::distinct(&input.audience.contact_ids),
        group_ids: tenancy::distinct(&input.audience.group_ids),
    };
    if audience.contact_ids.is_empty() && audience.group_ids.is_empty() {
        errors.add(
            "audience",
            UserErrorCode::Required,
            "the audience is empty: give contactIds or groupIds",
        );
    }
    if audience.contact_ids.len() > MAX_CONTACT_IDS {
        errors.add(
            "audience.contactIds",
            UserErrorCode::TooLong,
            format!("an audience names at most {MAX_CONTACT_IDS} contacts; use a group"),
        );
    }
    if audience.group_ids.len() > MAX_GROUP_IDS {
        errors.add(
            "audience.groupIds",
            UserErrorCode::TooLong,
            format!("an audience has at most {MAX_GROUP_IDS} groups"),
        );
    }
    let channel = match active_channel(conn, org_id, input.channel_id, "channelId").await {
        Ok(channel) => Some(channel),
        Err(AppError::Validation(found)) => {
            for e in found {
                let path = e.field.get(1..).unwrap_or_default().join(".");
                errors.add(&path, e.code, e.message);
            }
            None
        }
        Err(other) => return Err(other),
    };
    let channel_type = channel
        .as_ref()
        .and_then(|c| ChannelType::parse(&c.channel_type));
    match input.template_id {
        Some(template_id) => {
            for (field, given) in [
                ("text", text.is_some()),
                ("html", html.is_some()),
                ("subject", subject.is_some()),
            ] {
                if given {
                    errors.add(
                        field,
                        UserErrorCode::Invalid,
                        "give either templateId or a body, not both",
                    );
                }
            }
            match tenancy::by_id::<entity::template::Entity>(org_id, template_id)
                .one(conn)
                .await?
            {
                None => errors.add("templateId", UserErrorCode::NotFound, "no such template"),
                Some(t) if t.archived_at.is_some() => errors.add(
                    "templateId",
                    UserErrorCode::InvalidState,
                    "the template is archived",
                ),
                Some(t) => {
                    if let (Some(wanted), Some(have)) = (t.channel_type.as_deref(), channel_type)
                        && wanted != have.as_str()
                    {
                        errors.add(
                            "templateId",
                            UserErrorCode::Invalid,
                            format!(
                                "the template is for {wanted} channels, the channel is {}",
                                have.as_str()
                            ),
                        );
                    }
                }
            }
        }
        None => {
            if text.is_none() && html.is_none() {
                errors.add(
                    "text",
                    UserErrorCode::Required,
                    "a broadcast needs a templateId, text or html",
                );
            }
            for (field, value) in [("text", &text), ("html", &html), ("subject", &subject)] {
                if let Some(value) = value {
                    if value.len() > MAX_BODY {
                        errors.add(
                            field,
                            UserErrorCode::TooLong,
                            format!("{field} may have at most {MAX_BODY} bytes"),
                        );
                    } else if let Err(error) = crate::templates::language::parse(value) {
                        errors.add(field, UserErrorCode::Invalid, error.to_string());
                    }
                }
            }
            let plain = matches!(channel_type, Some(ChannelType::Sms | ChannelType::Whatsapp));
            if plain && html.is_some() {
                errors.add(
                    "html",
                    UserErrorCode::Invalid,
                    "SMS and WhatsApp messages are plain text; give `text` instead of `html`",
                );
            }
            if channel.is_some() && channel_type != Some(ChannelType::Email) && subject.is_some() {
                errors.add(
                    "subject",
                    UserErrorCode::Invalid,
                    "subject is only for email channels",
                );
            }
        }
    }
    errors.finish()?;
    tenancy::require_all::<contact::Entity, _>(
        conn,
        org_id,
        &audience.contact_ids,
        "audience.contactIds",
        "no such contact",
    )
    .await?;
    tenancy::require_all::<contact_group::Entity, _>(
        conn,
        org_id,
        &audience.group_ids,
        "audience.groupIds",
        "no such contact group",
    )
    .await?;
    Ok(BroadcastInput {
        name,
        channel_id: input.channel_id,
        template_id: input.template_id,
        subject,
        text,
        html,
        variables: input.variables,
        audience,
    })
}

async fn record<C: ConnectionTrait>(
    conn: &C,
    model: &broadcast::Model,
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

/// The stats of a broadcast as an event payload.
fn stats_payload(model: &broadcast::Model) -> Value {
    json!({
        "status": model.status,
        "audienceSize": model.audience_size,
        "recipients": model.recipients,
        "queued": model.queued,
        "skipped": model.skipped,
        "sent": model.sent,
        "delivered": model.delivered,
        "failed": model.failed,
        "cancelled": model.cancelled,
        "replied": model.replied,
    })
}

/// Creates a broadcast as a draft (TEAM_LEAD).
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    input: BroadcastInput,
) -> AppResult<broadcast::Model> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let input = check(&txn, principal.org_id, input).await?;
    let now = Utc::now();
    let model = broadcast::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(principal.org_id),
        name: Set(input.name),
        channel_id: Set(Some(input.channel_id)),
        template_id: Set(input.template_id),
        subject: Set(input.subject),
        text: Set(input.text),
        html: Set(input.html),
        variables: Set(input.variables.unwrap_or_else(|| json!({}))),
        audience: Set(input.audience.to_json()),
        status: Set(Status::Draft.as_str().into()),
        scheduled_at: Set(None),
        started_at: Set(None),
        paused_at: Set(None),
        completed_at: Set(None),
        cancelled_at: Set(None),
        failed_at: Set(None),
        failure_reason: Set(None),
        expanded_at: Set(None),
        job_token: Set(None),
        cursor_contact_id: Set(None),
        audience_size: Set(0),
        recipients: Set(0),
        queued: Set(0),
        skipped: Set(0),
        sent: Set(0),
        delivered: Set(0),
        failed: Set(0),
        cancelled: Set(0),
        replied: Set(0),
        progress_at: Set(None),
        progress_pending: Set(false),
        created_by: Set(Some(principal.user_id())),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    record(
        &txn,
        &model,
        Some(principal.user_id()),
        event_types::CREATED,
        json!({ "name": model.name, "channelId": model.channel_id }),
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

/// The broadcast `id` of `org_id`, locked for the transaction; `NOT_FOUND` at `id`.
async fn find_for_update<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    id: Uuid,
) -> AppResult<broadcast::Model> {
    tenancy::by_id::<broadcast::Entity>(org_id, id)
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid("id", UserErrorCode::NotFound, "no such broadcast"))
}

fn status_of(model: &broadcast::Model) -> Status {
    Status::parse(&model.status).unwrap_or(Status::Failed)
}

fn require_status(model: &broadcast::Model, allowed: &[Status], action: &str) -> AppResult<()> {
    let status = status_of(model);
    if allowed.contains(&status) {
        return Ok(());
    }
    let allowed: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
    Err(invalid_state(format!(
        "the broadcast is {}: only a {} broadcast can be {action}",
        status.as_str(),
        allowed.join(" or ")
    )))
}

/// Changes a broadcast that has not started (`DRAFT` or `SCHEDULED`; TEAM_LEAD).
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    patch: BroadcastPatch,
) -> AppResult<broadcast::Model> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let current = find_for_update(&txn, principal.org_id, id).await?;
    require_status(&current, &[Status::Draft, Status::Scheduled], "changed")?;
    let mut input = BroadcastInput {
        name: current.name.clone(),
        channel_id: current.channel_id.unwrap_or_default(),
        template_id: current.template_id,
        subject: current.subject.clone(),
        text: current.text.clone(),
        html: current.html.clone(),
        variables: Some(current.variables.clone()),
        audience: Audience::of(&current),
    };
    let mut changed = Vec::new();
    if let Some(name) = patch.name {
        input.name = name;
        changed.push("name");
    }
    if let Some(channel_id) = patch.channel_id {
        input.channel_id = channel_id;
        changed.push("channelId");
    }
    if let Some(template_id) = patch.template_id {
        input.template_id = template_id;
        changed.push("templateId");
    }
    if let Some(subject) = patch.subject {
        input.subject = subject;
        changed.push("subject");
    }
    if let Some(text) = patch.text {
        input.text = text;
        changed.push("text");
    }
    if let Some(html) = patch.html {
        input.html = html;
        changed.push("html");
    }
    if let Some(variables) = patch.variables {
        input.variables = variables;
        changed.push("variables");
    }
    if let Some(audience) = patch.audience {
        input.audience = audience;
        changed.push("audience");
    }
    let input = check(&txn, principal.org_id, input).await?;
    let mut model = current.into_active_model();
    model.name = Set(input.name);
    model.channel_id = Set(Some(input.channel_id));
    model.template_id = Set(input.template_id);
    model.subject = Set(input.subject);
    model.text = Set(input.text);
    model.html = Set(input.html);
    model.variables = Set(input.variables.unwrap_or_else(|| json!({})));
    model.audience = Set(input.audience.to_json());
    model.updated_at = Set(Utc::now());
    let updated = model.update(&txn).await?;
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

/// Deletes a draft (TEAM_LEAD); returns its id.
pub async fn delete(db: &DatabaseConnection, principal: &Principal, id: Uuid) -> AppResult<Uuid> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let current = find_for_update(&txn, principal.org_id, id).await?;
    require_status(&current, &[Status::Draft], "deleted")?;
    record(
        &txn,
        &current,
        Some(principal.user_id()),
        event_types::DELETED,
        json!({ "name": current.name }),
    )
    .await?;
    broadcast::Entity::delete_by_id(current.id)
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(id)
}

/// The audience of a broadcast as a condition on `contacts`: the organization's contacts, not
/// anonymized, named directly or members of one of its groups (each contact once).
pub async fn audience_condition<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    audience: &Audience,
) -> AppResult<Condition> {
    let mut any = Condition::any();
    let mut parts = 0;
    if !audience.contact_ids.is_empty() {
        any = any.add(contact::Column::Id.is_in(audience.contact_ids.clone()));
        parts += 1;
    }
    if !audience.group_ids.is_empty() {
        let groups = tenancy::by_ids::<contact_group::Entity>(org_id, audience.group_ids.clone())
            .all(conn)
            .await?;
        for group in groups {
            any = any.add(crate::contact_groups::service::membership(
                conn.get_database_backend(),
                &group,
            )?);
            parts += 1;
        }
    }
    if parts == 0 {
        any = any.add(Expr::val(1).eq(0));
    }
    Ok(Condition::all()
        .add(contact::Column::OrgId.eq(org_id))
        .add(contact::Column::AnonymizedAt.is_null())
        .add(any))
}

/// How many contacts the audience has now.
async fn audience_size<C: ConnectionTrait>(conn: &C, model: &broadcast::Model) -> AppResult<i64> {
    let condition = audience_condition(conn, model.org_id, &Audience::of(model)).await?;
    let count = contact::Entity::find()
        .filter(condition)
        .count(conn)
        .await?;
    Ok(i64::try_from(count).unwrap_or(i64::MAX))
}

/// What must still hold when a broadcast starts: its channel active, its template there and not
/// archived, an audience with someone in it. Returns the audience size.
async fn ready_to_start<C: ConnectionTrait>(conn: &C, model: &broadcast::Model) -> AppResult<i64> {
    let Some(channel_id) = model.channel_id else {
        return Err(AppError::invalid(
            "channelId",
            UserErrorCode::InvalidState,
            "the broadcast's channel was deleted",
        ));
    };
    active_channel(conn, model.org_id, channel_id, "channelId").await?;
    if let Some(template_id) = model.template_id {
        let template = tenancy::by_id::<entity::template::Entity>(model.org_id, template_id)
            .one(conn)
            .await?;
        if template.is_none_or(|t| t.archived_at.is_some()) {
            return Err(AppError::invalid(
                "templateId",
                UserErrorCode::InvalidState,
                "the broadcast's template is archived",
            ));
        }
    } else if model.text.is_none() && model.html.is_none() && model.template_id.is_none() {
        return Err(AppError::invalid(
            "templateId",
            UserErrorCode::InvalidState,
            "the broadcast's template was deleted",
        ));
    }
    let size = audience_size(conn, model).await?;
    if size == 0 {
        return Err(AppError::invalid(
            "audience",
            UserErrorCode::InvalidState,
            "the audience is empty: none of its contacts and group members can be reached",
        ));
    }
    Ok(size)
}

fn expand_job(model: &broadcast::Model, token: Uuid, at: Option<DateTime<Utc>>) -> NewJob {
    let job =
        NewJob::new(EXPAND, json!({ "broadcastId": model.id, "token": token })).org(model.org_id);
    match at {
        Some(at) => job.at(at),
        None => job,
    }
}

/// Sends a broadcast now (`at` = `None`) or schedules it for `at` (TEAM_LEAD). From `DRAFT` or
/// `SCHEDULED` (rescheduling, or sending a scheduled one now).
pub async fn start(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    at: Option<DateTime<Utc>>,
) -> AppResult<broadcast::Model> {
    principal.require(Permission::ManageRouting)?;
    let now = Utc::now();
    if at.is_some_and(|at| at <= now) {
        return Err(AppError::invalid(
            "scheduledAt",
            UserErrorCode::Invalid,
            "scheduledAt must be in the future",
        ));
    }
    let txn = db::begin_write(db).await?;
    let current = find_for_update(&txn, principal.org_id, id).await?;
    let action = if at.is_some() { "scheduled" } else { "sent" };
    require_status(&current, &[Status::Draft, Status::Scheduled], action)?;
    let size = ready_to_start(&txn, &current).await?;
    let token = Uuid::now_v7();
    let mut model = current.into_active_model();
    model.job_token = Set(Some(token));
    model.updated_at = Set(now);
    match at {
        Some(at) => {
            model.status = Set(Status::Scheduled.as_str().into());
            model.scheduled_at = Set(Some(at));
        }
        None => {
            model.status = Set(Status::Sending.as_str().into());
            model.started_at = Set(Some(now));
            model.audience_size = Set(size);
        }
    }
    let updated = model.update(&txn).await?;
    crate::jobs::enqueue(&txn, expand_job(&updated, token, at)).await?;
    let (event, payload) = match at {
        Some(at) => (event_types::SCHEDULED, json!({ "scheduledAt": at })),
        None => (event_types::STARTED, stats_payload(&updated)),
    };
    record(&txn, &updated, Some(principal.user_id()), event, payload).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Pauses a sending broadcast whose audience is not fully expanded yet (TEAM_LEAD): no new
/// messages are made until it is resumed; those already queued still go out.
pub async fn pause(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
) -> AppResult<broadcast::Model> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let current = find_for_update(&txn, principal.org_id, id).await?;
    require_status(&current, &[Status::Sending], "paused")?;
    if current.expanded_at.is_some() {
        return Err(invalid_state(
            "every recipient's message is already queued: there is nothing left to pause; cancel it instead",
        ));
    }
    let now = Utc::now();
    let mut model = current.into_active_model();
    model.status = Set(Status::Paused.as_str().into());
    model.paused_at = Set(Some(now));
    model.job_token = Set(None);
    model.updated_at = Set(now);
    let updated = model.update(&txn).await?;
    record(
        &txn,
        &updated,
        Some(principal.user_id()),
        event_types::PAUSED,
        stats_payload(&updated),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Resumes a paused broadcast from where it stopped (TEAM_LEAD).
pub async fn resume(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
) -> AppResult<broadcast::Model> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let current = find_for_update(&txn, principal.org_id, id).await?;
    require_status(&current, &[Status::Paused], "resumed")?;
    let Some(channel_id) = current.channel_id else {
        return Err(AppError::invalid(
            "channelId",
            UserErrorCode::InvalidState,
            "the broadcast's channel was deleted",
        ));
    };
    active_channel(&txn, current.org_id, channel_id, "channelId").await?;
    let now = Utc::now();
    let token = Uuid::now_v7();
    let mut model = current.into_active_model();
    model.status = Set(Status::Sending.as_str().into());
    model.paused_at = Set(None);
    model.job_token = Set(Some(token));
    model.updated_at = Set(now);
    let updated = model.update(&txn).await?;
    crate::jobs::enqueue(&txn, expand_job(&updated, token, None)).await?;
    record(
        &txn,
        &updated,
        Some(principal.user_id()),
        event_types::RESUMED,
        stats_payload(&updated),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Cancels a scheduled, sending or paused broadcast (TEAM_LEAD): the expansion stops and a job
/// cancels every message of it not sent yet.
pub async fn cancel(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
) -> AppResult<broadcast::Model> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let current = find_for_update(&txn, principal.org_id, id).await?;
    require_status(
        &current,
        &[Status::Scheduled, Status::Sending, Status::Paused],
        "cancelled",
    )?;
    let now = Utc::now();
    let mut model = current.into_active_model();
    model.status = Set(Status::Cancelled.as_str().into());
    model.cancelled_at = Set(Some(now));
    model.job_token = Set(None);
    model.updated_at = Set(now);
    let updated = model.update(&txn).await?;
    if updated.queued > 0 {
        crate::jobs::enqueue(
            &txn,
            NewJob::new(CANCEL, json!({ "broadcastId": updated.id })).org(updated.org_id),
        )
        .await?;
    }
    record(
        &txn,
        &updated,
        Some(principal.user_id()),
        event_types::CANCELLED,
        stats_payload(&updated),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Which broadcasts to list.
#[derive(Clone, Debug, Default)]
pub struct BroadcastFilter {
    /// In one of these statuses.
    pub statuses: Vec<Status>,
    /// On this channel.
    pub channel_id: Option<Uuid>,
}

/// One page of broadcasts, newest first (TEAM_LEAD).
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: BroadcastFilter,
    args: &PageArgs,
) -> AppResult<(Page<broadcast::Model>, TotalCount)> {
    principal.require(Permission::ManageRouting)?;
    let mut select = tenancy::in_org::<broadcast::Entity>(principal.org_id);
    if !filter.statuses.is_empty() {
        select = select
            .filter(broadcast::Column::Status.is_in(filter.statuses.iter().map(|s| s.as_str())));
    }
    if let Some(channel_id) = filter.channel_id {
        select = select.filter(broadcast::Column::ChannelId.eq(channel_id));
    }
    let sort = Sort {
        name: "CREATED",
        column: broadcast::Column::CreatedAt,
        direction: SortDirection::Desc,
        value: |m: &broadcast::Model| SortValue::Time(m.created_at),
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "broadcasts", &sort, args).await?;
    Ok((page, total))
}

/// One page of a broadcast's recipients in the order they were expanded (contact id order).
pub async fn recipients(
    db: &DatabaseConnection,
    principal: &Principal,
    broadcast_id: Uuid,
    statuses: &[RecipientStatus],
    args: &PageArgs,
) -> AppResult<(Page<broadcast_recipient::Model>, TotalCount)> {
    principal.require(Permission::ManageRouting)?;
    let mut select = tenancy::in_org::<broadcast_recipient::Entity>(principal.org_id)
        .filter(broadcast_recipient::Column::BroadcastId.eq(broadcast_id));
    if !statuses.is_empty() {
        select = select
            .filter(broadcast_recipient::Column::Status.is_in(statuses.iter().map(|s| s.as_str())));
    }
    let sort = Sort {
        name: "EXPANDED",
        column: broadcast_recipient::Column::CreatedAt,
        direction: SortDirection::Asc,
        value: |m: &broadcast_recipient::Model| SortValue::Time(m.created_at),
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "broadcastRecipients", &sort, args).await?;
    Ok((page, total))
}

/// Registers the broadcast job handlers.
pub fn register(jobs: &Jobs) {
    jobs.register(EXPAND, expand);
    jobs.register(CANCEL, cancel_queued);
    jobs.register(PROGRESS, trailing_progress);
}

fn payload_id(payload: &Value, key: &str) -> Result<Uuid, JobError> {
    payload[key]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| JobError::Permanent(format!("the job's payload has no {key}")))
}

/// Ends the broadcast as `FAILED` with `reason` inside `conn`.
async fn fail_broadcast<C: ConnectionTrait>(
    conn: &C,
    current: broadcast::Model,
    reason: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let mut model = current.into_active_model();
    model.status = Set(Status::Failed.as_str().into());
    model.failed_at = Set(Some(now));
    model.failure_reason = Set(Some(reason.to_string()));
    model.job_token = Set(None);
    model.updated_at = Set(Utc::now());
    let updated = model.update(conn).await?;
    let mut payload = stats_payload(&updated);
    payload["reason"] = json!(reason);
    record(conn, &updated, None, event_types::FAILED, payload).await
}

/// The `contact.*` variables of a contact (as templates render them).
fn contact_variables(contact: &contact::Model) -> Value {
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    let name = contact.display_name.clone().or_else(|| {
        let parts: Vec<&str> = [&contact.first_name, &contact.last_name]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    json!({
        "name": name,
        "firstName": text(&contact.first_name),
        "lastName": text(&contact.last_name),
        "middleName": text(&contact.middle_name),
        "email": text(&contact.email),
        "phone": text(&contact.phone),
        "company": text(&contact.company),
        "externalId": text(&contact.external_id),
    })
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                merge(base.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// The variables shared by every contact of a broadcast: the organization's and the creator's
/// (`agent.*`).
async fn shared_variables<C: ConnectionTrait>(
    conn: &C,
    model: &broadcast::Model,
) -> AppResult<Map<String, Value>> {
    let mut variables = Map::new();
    if let Some(org) = entity::organization::Entity::find_by_id(model.org_id)
        .one(conn)
        .await?
    {
        variables.insert(
            "organization".into(),
            json!({ "name": org.display_name.unwrap_or(org.name) }),
        );
    }
    if let Some(user_id) = model.created_by
        && let Some(user) = tenancy::by_id::<entity::user::Entity>(model.org_id, user_id)
            .one(conn)
            .await?
    {
        variables.insert(
            "agent".into(),
            json!({
                "name": user.display_name,
                "firstName": user.first_name,
                "lastName": user.last_name,
                "email": user.email,
            }),
        );
    }
    Ok(variables)
}

/// What one contact gets.
enum Decision {
    Skip(RecipientReason, String),
    Fail(RecipientReason, String),
    Send(Box<crate::templates::service::Rendered>),
}

/// The template a broadcast renders: its variant, or its body as a template.
fn body_template(model: &broadcast::Model) -> entity::template::Model {
    entity::template::Model {
        id: model.id,
        org_id: model.org_id,
        name: model.name.clone(),
        name_key: String::new(),
        channel_type: None,
        locale: None,
        variant_key: String::new(),
        subject: model.subject.clone(),
        text: model.text.clone().unwrap_or_default(),
        html: model.html.clone(),
        variables: json!([]),
        archived_at: None,
        created_by: None,
        created_at: model.created_at,
        updated_at: model.updated_at,
    }
}

fn decide(
    channel_type: Option<ChannelType>,
    contact: &contact::Model,
    template: &entity::template::Model,
    shared: &Value,
) -> Decision {
    if let Some(channel_type) = channel_type
        && consents(contact)
            .iter()
            .any(|c| c.channel == channel_type && c.status == ConsentStatus::OptedOut)
    {
        return Decision::Skip(
            RecipientReason::OptedOut,
            format!(
                "the contact opted out of {} messages",
                channel_type.as_str()
            ),
        );
    }
    match channel_type {
        Some(ChannelType::Email) if contact.email.is_none() => {
            return Decision::Skip(
                RecipientReason::NoAddress,
                "the contact has no email address".into(),
            );
        }
        Some(ChannelType::Sms | ChannelType::Whatsapp) if contact.phone.is_none() => {
            return Decision::Skip(
                RecipientReason::NoAddress,
                "the contact has no phone number".into(),
            );
        }
        _ => {}
    }
    let mut variables = shared.clone();
    merge(
        &mut variables,
        &json!({ "contact": contact_variables(contact) }),
    );
    match crate::templates::service::render_model(template.clone(), &variables) {
        Ok(rendered) => {
            if channel_type == Some(ChannelType::Sms)
                && rendered.text.chars().count() > MAX_SMS_CHARS
            {
                return Decision::Fail(
                    RecipientReason::RenderFailed,
                    format!(
                        "the rendered text has {} characters; an SMS may have at most {MAX_SMS_CHARS}",
                        rendered.text.chars().count()
                    ),
                );
            }
            if rendered.text.trim().is_empty()
                && rendered.html.as_deref().is_none_or(|h| h.trim().is_empty())
            {
                return Decision::Fail(
                    RecipientReason::RenderFailed,
                    "the rendered message is empty".into(),
                );
            }
            Decision::Send(Box::new(rendered))
        }
        Err(AppError::Validation(errors)) => Decision::Fail(
            RecipientReason::RenderFailed,
            errors
                .into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Err(other) => Decision::Fail(RecipientReason::RenderFailed, other.public_message()),
    }
}

/// Starts an outbound conversation with `contact` on `channel` for a broadcast (no queue, no
/// assignee: a reply reopens it for the inbox like any inbound message).
async fn start_conversation<C: ConnectionTrait>(
    conn: &C,
    channel: &channel::Model,
    contact: &contact::Model,
    subject: Option<String>,
    broadcast_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<conversation::Model> {
    use crate::conversations::service::{Kind, Priority, Status as ConversationStatus};
    let number = crate::conversations::service::next_number(conn, channel.org_id).await?;
    let conversation = conversation::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(channel.org_id),
        number: Set(number),
        channel_id: Set(Some(channel.id)),
        channel_type: Set(channel.channel_type.clone()),
        kind: Set(Kind::Direct.as_str().into()),
        direction: Set(Direction::Outbound.as_str().into()),
        subject: Set(subject),
        status: Set(ConversationStatus::Open.as_str().into()),
        pending_until: Set(None),
        close_reason: Set(None),
        closed_at: Set(None),
        requester_id: Set(contact.id),
        assignee_id: Set(None),
        assigned_at: Set(None),
        queue_id: Set(None),
        queued_at: Set(None),
        priority: Set(Priority::Normal.as_str().into()),
        priority_rank: Set(Priority::Normal.rank()),
        parent_id: Set(None),
        link_type: Set(None),
        rating_type: Set(None),
        rating_score: Set(None),
        rating_comment: Set(None),
        rated_at: Set(None),
        first_response_at: Set(None),
        last_message_at: Set(now),
        last_message_id: Set(None),
        waiting_since: Set(None),
        waiting_key: Set(NOT_WAITING),
        message_count: Set(0),
        archived_at: Set(None),
        anonymized_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await?;
    events::record(
        conn,
        channel.org_id,
        None,
        crate::conversations::event_types::CREATED,
        Subject::new(crate::conversations::SUBJECT, conversation.id),
        json!({
            "number": number,
            "direction": conversation.direction,
            "channelId": channel.id,
            "requesterId": contact.id,
            "broadcastId": broadcast_id,
        }),
    )
    .await?;
    Ok(conversation)
}

/// The open (not closed, archived or anonymized) direct conversations on `channel_id` with each
/// of `contact_ids`, the most recent per contact.
async fn open_conversations<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    channel_id: Uuid,
    contact_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, conversation::Model>> {
    // One `SELECT` per contact, joined by `UNION ALL`: each arm is an equality on
    // (requester, channel), which the planner answers from that index whatever its statistics.
    // (Given `requester_id IN (…200 ids…)` SQLite preferred walking an organization or channel
    // index: every conversation of the channel, for every batch.)
    let arm = |contact_id: Uuid| {
        tenancy::in_org::<conversation::Entity>(org_id)
            .filter(conversation::Column::RequesterId.eq(contact_id))
            .filter(conversation::Column::ChannelId.eq(channel_id))
            .filter(conversation::Column::Kind.eq("DIRECT"))
            .filter(conversation::Column::Status.ne("CLOSED"))
            .filter(conversation::Column::ArchivedAt.is_null())
            .filter(conversation::Column::AnonymizedAt.is_null())
            .into_query()
    };
    let backend = conn.get_database_backend();
    let mut rows: Vec<conversation::Model> = Vec::new();
    for chunk in contact_ids.chunks(OPEN_LOOKUPS_PER_STATEMENT) {
        let Some((first, rest)) = chunk.split_first() else {
            continue;
        };
        let mut statement = arm(*first);
        for id in rest {
            statement.union(sea_orm::sea_query::UnionType::All, arm(*id));
        }
        rows.extend(
            conversation::Model::find_by_statement(backend.build(&statement))
                .all(conn)
                .await?,
        );
    }
    // The most recent per contact wins (later rows replace earlier ones).
    rows.sort_by_key(|c| c.last_message_at);
    Ok(rows.into_iter().map(|c| (c.requester_id, c)).collect())
}

/// Contacts whose open conversation one statement looks up (SQLite allows 500 arms).
const OPEN_LOOKUPS_PER_STATEMENT: usize = 200;

/// Moves a scheduled broadcast to `SENDING` (or `FAILED` when it can no longer start) in its own
/// transaction; `false` when the job is stale or the broadcast failed.
async fn begin_scheduled(ctx: &JobContext, id: Uuid, token: Uuid) -> Result<bool, JobError> {
    let now = ctx.now();
    let txn = db::begin_write(&ctx.db).await?;
    let Some(current) = broadcast::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        return Ok(false);
    };
    if current.job_token != Some(token) {
        return Ok(false);
    }
    if status_of(&current) != Status::Scheduled {
        return Ok(status_of(&current) == Status::Sending);
    }
    match ready_to_start(&txn, &current).await {
        Ok(size) => {
            let mut model = current.into_active_model();
            model.status = Set(Status::Sending.as_str().into());
            model.started_at = Set(Some(now));
            model.audience_size = Set(size);
            model.updated_at = Set(Utc::now());
            let updated = model.update(&txn).await?;
            record(
                &txn,
                &updated,
                None,
                event_types::STARTED,
                stats_payload(&updated),
            )
            .await?;
            txn.commit().await?;
            ctx.committed();
            Ok(true)
        }
        Err(AppError::Validation(errors)) => {
            let reason = errors
                .into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join("; ");
            fail_broadcast(&txn, current, &reason, now).await?;
            txn.commit().await?;
            ctx.committed();
            Ok(false)
        }
        Err(other) => Err(other.into()),
    }
}

/// Whether the expansion job holding `token` may still work on broadcast `id`.
fn current_job(model: &broadcast::Model, token: Uuid) -> bool {
    model.job_token == Some(token) && status_of(model) == Status::Sending
}

/// One batch of a broadcast's expansion. The broadcast's row is written last (counters by
/// increment, guarded by the job's token), so delivery and replies that move its counters
/// meanwhile never wait for a whole batch, and rows are always locked in the same order
/// (messages, recipients, then the broadcast); a pause or cancel that took the token first
/// rolls the batch back.
async fn expand(ctx: JobContext) -> JobResult {
    let id = payload_id(&ctx.job.payload, "broadcastId")?;
    let token = payload_id(&ctx.job.payload, "token")?;
    let now = ctx.now();
    let Some(mut current) = broadcast::Entity::find_by_id(id).one(&ctx.db).await? else {
        return Ok(Outcome::Done);
    };
    if status_of(&current) == Status::Scheduled && current.job_token == Some(token) {
        if !begin_scheduled(&ctx, id, token).await? {
            return Ok(Outcome::Done);
        }
        match broadcast::Entity::find_by_id(id).one(&ctx.db).await? {
            Some(model) => current = model,
            None => return Ok(Outcome::Done),
        }
    }
    if !current_job(&current, token) {
        // Paused, cancelled, rescheduled or started again by another job: this one is stale.
        return Ok(Outcome::Done);
    }
    let txn = db::begin_write(&ctx.db).await?;
    let channel = match current.channel_id {
        Some(channel_id) => channel::Entity::find_by_id(channel_id).one(&txn).await?,
        None => None,
    };
    let template = match current.template_id {
        Some(template_id) => entity::template::Entity::find_by_id(template_id)
            .one(&txn)
            .await?
            .filter(|t| t.archived_at.is_none()),
        None => Some(body_template(&current)),
    };
    let (channel, template) = match (channel.filter(|c| c.status == "ACTIVE"), template) {
        (Some(channel), Some(template)) => (channel, template),
        (channel, _) => {
            let reason = if channel.is_none() {
                "the channel was archived or deleted while the broadcast was sending"
            } else {
                "the template was archived or deleted while the broadcast was sending"
            };
            let Some(locked) = broadcast::Entity::find_by_id(id)
                .lock_exclusive()
                .one(&txn)
                .await?
                .filter(|m| current_job(m, token))
            else {
                return Ok(Outcome::Done);
            };
            fail_broadcast(&txn, locked, reason, now).await?;
            txn.commit().await?;
            ctx.committed();
            return Ok(Outcome::Done);
        }
    };
    let channel_type = ChannelType::parse(&channel.channel_type);
    let mut shared = Value::Object(shared_variables(&txn, &current).await?);
    merge(&mut shared, &current.variables);

    let condition = audience_condition(&txn, current.org_id, &Audience::of(&current)).await?;
    let mut select = contact::Entity::find().filter(condition);
    if let Some(cursor) = current.cursor_contact_id {
        select = select.filter(contact::Column::Id.gt(cursor));
    }
    let contacts = select
        .order_by_asc(contact::Column::Id)
        .limit(BATCH)
        .all(&txn)
        .await?;
    let finished = (contacts.len() as u64) < BATCH;
    let contact_ids: Vec<Uuid> = contacts.iter().map(|c| c.id).collect();
    let mut conversations = if contact_ids.is_empty() {
        HashMap::new()
    } else {
        open_conversations(&txn, current.org_id, channel.id, &contact_ids).await?
    };
    let (mut queued, mut skipped, mut failed) = (0i64, 0i64, 0i64);
    let mut rows = Vec::with_capacity(contacts.len());
    for contact in &contacts {
        let created_at = Utc::now();
        let mut row = broadcast_recipient::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(current.org_id),
            broadcast_id: Set(current.id),
            contact_id: Set(contact.id),
            conversation_id: Set(None),
            message_id: Set(None),
            status: Set(RecipientStatus::Queued.as_str().into()),
            reason: Set(None),
            detail: Set(None),
            replied_at: Set(None),
            created_at: Set(created_at),
            updated_at: Set(created_at),
        };
        match decide(channel_type, contact, &template, &shared) {
            Decision::Skip(reason, detail) => {
                skipped += 1;
                row.status = Set(RecipientStatus::Skipped.as_str().into());
                row.reason = Set(Some(reason.as_str().into()));
                row.detail = Set(Some(detail));
            }
            Decision::Fail(reason, detail) => {
                failed += 1;
                row.status = Set(RecipientStatus::Failed.as_str().into());
                row.reason = Set(Some(reason.as_str().into()));
                row.detail = Set(Some(detail));
            }
            Decision::Send(rendered) => {
                let rendered = *rendered;
                let email = channel_type == Some(ChannelType::Email);
                let conversation = match conversations.remove(&contact.id) {
                    Some(conversation) => conversation,
                    None => {
                        start_conversation(
                            &txn,
                            &channel,
                            contact,
                            if email {
                                rendered.subject.clone()
                            } else {
                                None
                            },
                            current.id,
                            created_at,
                        )
                        .await?
                    }
                };
                let mut new = NewMessage::text(Party::System, Direction::Outbound, String::new());
                new.text = Some(rendered.text).filter(|t| !t.trim().is_empty());
                new.html = if email { rendered.html } else { None };
                new.email_subject = if email { rendered.subject } else { None };
                (new.from_address, new.to) = crate::messages::service::default_addresses(
                    &channel,
                    contact,
                    Direction::Outbound,
                );
                new.created_at = created_at;
                let (message, conversation) = append(&txn, conversation, new, None).await?;
                queued += 1;
                row.conversation_id = Set(Some(conversation.id));
                row.message_id = Set(Some(message.id));
            }
        }
        rows.push(row);
    }
    if !rows.is_empty() {
        broadcast_recipient::Entity::insert_many(rows)
            .exec(&txn)
            .await?;
    }
    // The broadcast's row last: it is still this job's, or the batch rolls back.
    let Some(latest) = broadcast::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .filter(|m| current_job(m, token) && m.cursor_contact_id == current.cursor_contact_id)
    else {
        txn.rollback().await?;
        return Ok(Outcome::Done);
    };
    let total = i64::try_from(contacts.len()).unwrap_or(i64::MAX);
    let mut model = latest.clone().into_active_model();
    model.cursor_contact_id = Set(contact_ids.last().copied().or(latest.cursor_contact_id));
    model.recipients = Set(latest.recipients + total);
    model.queued = Set(latest.queued + queued);
    model.skipped = Set(latest.skipped + skipped);
    model.failed = Set(latest.failed + failed);
    model.progress_at = Set(Some(now));
    model.updated_at = Set(Utc::now());
    if finished {
        model.expanded_at = Set(Some(now));
        model.job_token = Set(None);
        if latest.queued + queued == 0 {
            model.status = Set(Status::Completed.as_str().into());
            model.completed_at = Set(Some(now));
        }
    }
    let updated = model.update(&txn).await?;
    let event = if status_of(&updated) == Status::Completed {
        event_types::COMPLETED
    } else {
        event_types::PROGRESS
    };
    record(&txn, &updated, None, event, stats_payload(&updated)).await?;
    if finished {
        ctx.complete_in(&txn).await?;
    }
    txn.commit().await?;
    ctx.committed();
    if finished {
        Ok(Outcome::Done)
    } else {
        // The next batch keeps the job's place in the queue (jobs are claimed by due time): the
        // deliveries of this batch's messages, due now, come after it.
        Ok(Outcome::Defer {
            at: std::cmp::min(ctx.job.run_at, now),
            payload: None,
        })
    }
}

/// Cancels the still-queued messages of a cancelled broadcast, [`BATCH`] per transaction. Rows are
/// locked in delivery's order: the messages, their recipients, then the broadcast.
async fn cancel_queued(ctx: JobContext) -> JobResult {
    let id = payload_id(&ctx.job.payload, "broadcastId")?;
    let now = ctx.now();
    let txn = db::begin_write(&ctx.db).await?;
    let candidates = broadcast_recipient::Entity::find()
        .filter(broadcast_recipient::Column::BroadcastId.eq(id))
        .filter(broadcast_recipient::Column::Status.eq(RecipientStatus::Queued.as_str()))
        .order_by_asc(broadcast_recipient::Column::Id)
        .limit(BATCH)
        .all(&txn)
        .await?;
    let finished = (candidates.len() as u64) < BATCH;
    let message_ids: Vec<Uuid> = candidates.iter().filter_map(|r| r.message_id).collect();
    let messages = if message_ids.is_empty() {
        Vec::new()
    } else {
        entity::message::Entity::find()
            .filter(entity::message::Column::Id.is_in(message_ids))
            .filter(entity::message::Column::DeliveryStatus.eq(DeliveryStatus::Queued.as_str()))
            .lock_exclusive()
            .all(&txn)
            .await?
    };
    let still_queued: Vec<Uuid> = messages.iter().map(|m| m.id).collect();
    let mut cancelled = 0i64;
    if !still_queued.is_empty() {
        let result = broadcast_recipient::Entity::update_many()
            .col_expr(
                broadcast_recipient::Column::Status,
                Expr::value(RecipientStatus::Cancelled.as_str()),
            )
            .col_expr(
                broadcast_recipient::Column::Detail,
                Expr::value(Some(CANCELLED_REASON.to_string())),
            )
            .col_expr(
                broadcast_recipient::Column::UpdatedAt,
                Expr::value(Utc::now()),
            )
            .filter(broadcast_recipient::Column::BroadcastId.eq(id))
            .filter(broadcast_recipient::Column::MessageId.is_in(still_queued))
            .filter(broadcast_recipient::Column::Status.eq(RecipientStatus::Queued.as_str()))
            .exec(&txn)
            .await?;
        cancelled = i64::try_from(result.rows_affected).unwrap_or(i64::MAX);
        for message in messages {
            crate::messages::service::record_delivery_status(
                &txn,
                message,
                DeliveryStatus::Canceled,
                Some(CANCELLED_REASON.to_string()),
                now,
            )
            .await?;
        }
        use broadcast::Column as B;
        broadcast::Entity::update_many()
            .col_expr(B::Queued, Expr::col(B::Queued).sub(cancelled))
            .col_expr(B::Cancelled, Expr::col(B::Cancelled).add(cancelled))
            .col_expr(B::ProgressAt, Expr::value(Some(now)))
            .filter(B::Id.eq(id))
            .exec(&txn)
            .await?;
        if let Some(updated) = broadcast::Entity::find_by_id(id).one(&txn).await? {
            record(
                &txn,
                &updated,
                None,
                event_types::PROGRESS,
                stats_payload(&updated),
            )
            .await?;
        }
    }
    if finished {
        ctx.complete_in(&txn).await?;
    }
    txn.commit().await?;
    if cancelled > 0 {
        ctx.committed();
    }
    if finished {
        Ok(Outcome::Done)
    } else {
        Ok(Outcome::Defer {
            at: now,
            payload: None,
        })
    }
}

/// Records the progress event a throttled change left pending.
async fn trailing_progress(ctx: JobContext) -> JobResult {
    let id = payload_id(&ctx.job.payload, "broadcastId")?;
    let now = ctx.now();
    let txn = db::begin_write(&ctx.db).await?;
    if let Some(current) = broadcast::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
    {
        let mut model = current.into_active_model();
        model.progress_pending = Set(false);
        model.progress_at = Set(Some(now));
        let updated = model.update(&txn).await?;
        record(
            &txn,
            &updated,
            None,
            event_types::PROGRESS,
            stats_payload(&updated),
        )
        .await?;
    }
    ctx.complete_in(&txn).await?;
    txn.commit().await?;
    ctx.committed();
    Ok(Outcome::Done)
}

/// Shortest time between two progress events recorded by delivery and replies.
const PROGRESS_INTERVAL_MS: i64 = 1_000;

/// After a counter moved: completes the broadcast when nothing is left to send, else records
/// progress (at most once per [`PROGRESS_INTERVAL_MS`], the rest by a trailing job).
async fn after_change<C: ConnectionTrait>(
    conn: &C,
    current: broadcast::Model,
    at: DateTime<Utc>,
) -> AppResult<()> {
    if status_of(&current) == Status::Sending
        && current.expanded_at.is_some()
        && current.queued <= 0
    {
        let mut model = current.into_active_model();
        model.status = Set(Status::Completed.as_str().into());
        model.completed_at = Set(Some(at));
        model.progress_at = Set(Some(at));
        model.updated_at = Set(Utc::now());
        let updated = model.update(conn).await?;
        return record(
            conn,
            &updated,
            None,
            event_types::COMPLETED,
            stats_payload(&updated),
        )
        .await;
    }
    let interval = Duration::milliseconds(PROGRESS_INTERVAL_MS);
    let due = current.progress_at.is_none_or(|last| at - last >= interval);
    if due && !current.progress_pending {
        let mut model = current.into_active_model();
        model.progress_at = Set(Some(at));
        let updated = model.update(conn).await?;
        return record(
            conn,
            &updated,
            None,
            event_types::PROGRESS,
            stats_payload(&updated),
        )
        .await;
    }
    if !current.progress_pending {
        let run_at = current.progress_at.map_or(at, |last| last + interval);
        let (org_id, id) = (current.org_id, current.id);
        let mut model = current.into_active_model();
        model.progress_pending = Set(true);
        model.update(conn).await?;
        crate::jobs::enqueue(
            conn,
            NewJob::new(PROGRESS, json!({ "broadcastId": id }))
                .org(org_id)
                .at(run_at),
        )
        .await?;
    }
    Ok(())
}

/// The broadcasts whose recipient rows an `UPDATE … RETURNING broadcast_id` touched.
async fn touched<C: ConnectionTrait>(
    conn: &C,
    statement: sea_orm::sea_query::UpdateStatement,
) -> AppResult<Vec<Uuid>> {
    let rows = conn
        .query_all_raw(conn.get_database_backend().build(&statement))
        .await?;
    let mut ids = Vec::new();
    for row in rows {
        let id: Uuid = row.try_get("", "broadcast_id")?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Hook of [`crate::messages::service::record_delivery_status`], in its transaction, before the
/// status change is recorded: a message moved to `to`. When it is a broadcast's message, its
/// recipient follows; returns the broadcasts it belongs to (for the event and for
/// [`on_message_status`]). One statement for other messages.
pub async fn recipient_status<C: ConnectionTrait>(
    conn: &C,
    message_id: Uuid,
    to: DeliveryStatus,
) -> AppResult<Vec<Uuid>> {
    use broadcast_recipient::Column as R;
    let statement = Query::update()
        .table(broadcast_recipient::Entity)
        .value(
            R::Status,
            if to == DeliveryStatus::Canceled {
                RecipientStatus::Cancelled.as_str()
            } else {
                to.as_str()
            },
        )
        .value(R::UpdatedAt, Utc::now())
        .and_where(R::MessageId.eq(message_id))
        .and_where(R::Status.is_not_in([
            RecipientStatus::Cancelled.as_str(),
            RecipientStatus::Skipped.as_str(),
        ]))
        .returning_col(R::BroadcastId)
        .to_owned();
    touched(conn, statement).await
}

/// Hook of [`crate::messages::service::record_delivery_status`], in its transaction, after the
/// status change is recorded: a message of `broadcasts` (from [`recipient_status`]) moved `from`
/// → `to` at `at`, and the broadcasts' counters move (`sent` once handed to the provider,
/// `delivered` once delivered or read, `failed` once failed, `queued` down once it left
/// `QUEUED`). Nothing for other messages.
pub async fn on_message_status<C: ConnectionTrait>(
    conn: &C,
    broadcasts: Vec<Uuid>,
    from: DeliveryStatus,
    to: DeliveryStatus,
    at: DateTime<Utc>,
) -> AppResult<()> {
    if broadcasts.is_empty() {
        return Ok(());
    }
    use DeliveryStatus as D;
    let was_queued = from == D::Queued;
    let sent = i64::from(was_queued && matches!(to, D::Sent | D::Delivered | D::Read));
    let delivered =
        i64::from(matches!(from, D::Queued | D::Sent) && matches!(to, D::Delivered | D::Read));
    let failed = i64::from(to == D::Failed);
    let queued = -i64::from(was_queued && to != D::Queued);
    let cancelled = i64::from(to == D::Canceled);
    for id in broadcasts {
        use broadcast::Column as B;
        let updated = broadcast::Entity::update_many()
            .col_expr(B::Sent, Expr::col(B::Sent).add(sent))
            .col_expr(B::Delivered, Expr::col(B::Delivered).add(delivered))
            .col_expr(B::Failed, Expr::col(B::Failed).add(failed))
            .col_expr(B::Queued, Expr::col(B::Queued).add(queued))
            .col_expr(B::Cancelled, Expr::col(B::Cancelled).add(cancelled))
            .filter(B::Id.eq(id))
            .exec_with_returning(conn)
            .await?;
        for updated in updated {
            after_change(conn, updated, at).await?;
        }
    }
    Ok(())
}

/// Hook of [`crate::messages::service::append`] for an inbound message in `conversation_id` at
/// `at`, in its transaction: the broadcasts whose message went to this conversation before it
/// count a reply (once per recipient). One statement when there are none.
pub async fn on_inbound<C: ConnectionTrait>(
    conn: &C,
    conversation_id: Uuid,
    at: DateTime<Utc>,
) -> AppResult<()> {
    use broadcast_recipient::Column as R;
    let statement = Query::update()
        .table(broadcast_recipient::Entity)
        .value(R::RepliedAt, at)
        .and_where(R::ConversationId.eq(conversation_id))
        .and_where(R::RepliedAt.is_null())
        .and_where(R::MessageId.is_not_null())
        .and_where(R::CreatedAt.lte(at))
        .returning_col(R::BroadcastId)
        .to_owned();
    for id in touched(conn, statement).await? {
        use broadcast::Column as B;
        let updated = broadcast::Entity::update_many()
            .col_expr(B::Replied, Expr::col(B::Replied).add(1))
            .filter(B::Id.eq(id))
            .exec_with_returning(conn)
            .await?;
        for updated in updated {
            after_change(conn, updated, at).await?;
        }
    }
    Ok(())
}
