//! Business rules of messages, over a transaction: the core `append`, sending, recording inbound
//! messages, edits, redaction, removal, reactions, read receipts, delivery status and the
//! per-conversation list.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, SubsecRound, Utc};
use entity::{
    channel, contact, conversation, conversation_participant, conversation_read, message,
    message_reaction, message_status_event,
};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;

use crate::attachments::service::{IncomingFile, UploadRules};
use crate::attachments::store::Store;
use crate::attachments::{self};
use crate::auth::{Permission, Principal};
use crate::channels::ChannelType;
use crate::channels::service::active_channel;
use crate::config::Config;
use crate::contacts::{self, service::ConsentStatus};
use crate::conversations::{Party, SUBJECT, event_types};
use crate::db;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::events::{self, Subject};
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::tenancy;
use crate::validate::Errors;

/// Direction of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From a contact to the organization.
    Inbound,
    /// From the organization to contacts.
    Outbound,
}

impl Direction {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "INBOUND",
            Direction::Outbound => "OUTBOUND",
        }
    }
}

/// A message to store, already validated.
#[derive(Clone, Debug)]
pub struct NewMessage {
    /// Who wrote it.
    pub author: Party,
    /// Inbound or outbound.
    pub direction: Direction,
    /// Plain text body.
    pub text: Option<String>,
    /// HTML body.
    pub html: Option<String>,
    /// Email subject.
    pub email_subject: Option<String>,
    /// Sender address (email address or E.164 number).
    pub from_address: Option<String>,
    /// Recipients.
    pub to: Vec<String>,
    /// Copy recipients (email).
    pub cc: Vec<String>,
    /// Blind copy recipients (email).
    pub bcc: Vec<String>,
    /// Client id making the send idempotent per organization.
    pub external_id: Option<String>,
    /// When to send (outbound), if later.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Initial delivery status (`QUEUED` for outbound, `DELIVERED` for inbound).
    pub delivery_status: &'static str,
    /// Creation time (now, or a backdated time for imports).
    pub created_at: DateTime<Utc>,
    /// The channel and the provider's id of the message (inbound messages from ingest).
    pub provider_message_id: Option<(Uuid, String)>,
    /// Email `Message-ID` header; outbound email messages get one generated when it is `None`.
    pub message_id_header: Option<String>,
}

impl NewMessage {
    /// A plain-text message by `author` in `direction`, created now.
    pub fn text(author: Party, direction: Direction, text: impl Into<String>) -> Self {
        Self {
            author,
            direction,
            text: Some(text.into()),
            html: None,
            email_subject: None,
            from_address: None,
            to: Vec::new(),
            cc: Vec::new(),
            bcc: Vec::new(),
            external_id: None,
            scheduled_at: None,
            delivery_status: match direction {
                Direction::Inbound => "DELIVERED",
                Direction::Outbound => "QUEUED",
            },
            created_at: Utc::now(),
            provider_message_id: None,
            message_id_header: None,
        }
    }
}

/// A `Message-ID` for outbound email message `id`: `<id@domain>` with the sender's domain
/// (`switchboard` without one).
pub fn new_message_id_header(id: Uuid, from: Option<&str>) -> String {
    let domain = from
        .and_then(|f| f.rsplit_once('@'))
        .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "switchboard".into());
    format!("<{}@{domain}>", id.simple())
}

fn addresses(list: &[String]) -> Option<serde_json::Value> {
    (!list.is_empty()).then(|| json!(list))
}

/// Appends a message to `conversation`: stores it with its first delivery status (and for a
/// `QUEUED` outbound message its delivery job), moves the
/// conversation's last-message, first-response, waiting and count columns, reopens a pending or
/// closed conversation on an inbound message, and records `MESSAGE_ADDED`. Returns the message and
/// the updated conversation.
pub async fn append<C: ConnectionTrait>(
    conn: &C,
    conversation: conversation::Model,
    new: NewMessage,
    actor: Option<Uuid>,
) -> AppResult<(message::Model, conversation::Model)> {
    let now = new.created_at;
    let (author_user_id, author_contact_id) = match new.author {
        Party::User(id) => (Some(id), None),
        Party::Contact(id) => (None, Some(id)),
        Party::System => (None, None),
    };
    let id = Uuid::now_v7();
    let message_id_header = new.message_id_header.or_else(|| {
        (new.direction == Direction::Outbound && conversation.channel_type == "EMAIL")
            .then(|| new_message_id_header(id, new.from_address.as_deref()))
    });
    let (provider_channel_id, provider_message_id) = new.provider_message_id.unzip();
    let message = message::ActiveModel {
        id: Set(id),
        provider_channel_id: Set(provider_channel_id),
        provider_message_id: Set(provider_message_id),
        message_id_header: Set(message_id_header),
        org_id: Set(conversation.org_id),
        conversation_id: Set(conversation.id),
        author_kind: Set(new.author.kind().into()),
        author_contact_id: Set(author_contact_id),
        author_user_id: Set(author_user_id),
        direction: Set(new.direction.as_str().into()),
        text_body: Set(new.text),
        html_body: Set(new.html),
        email_subject: Set(new.email_subject),
        from_address: Set(new.from_address),
        to_addresses: Set(addresses(&new.to)),
        cc_addresses: Set(addresses(&new.cc)),
        bcc_addresses: Set(addresses(&new.bcc)),
        external_id: Set(new.external_id),
        delivery_status: Set(new.delivery_status.into()),
        delivery_reason: Set(None),
        scheduled_at: Set(new.scheduled_at),
        edited_at: Set(None),
        redacted_at: Set(None),
        removed_at: Set(None),
        anonymized_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await?;
    message_status_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(message.org_id),
        message_id: Set(message.id),
        status: Set(message.delivery_status.clone()),
        reason: Set(None),
        created_at: Set(now),
    }
    .insert(conn)
    .await?;

    let reopen = new.direction == Direction::Inbound && conversation.status != "OPEN";
    let previous_status = conversation.status.clone();
    let mut active = conversation.clone().into_active_model();
    active.message_count = Set(conversation.message_count + 1);
    if now >= conversation.last_message_at || conversation.last_message_id.is_none() {
        active.last_message_at = Set(now);
        active.last_message_id = Set(Some(message.id));
    }
    match (new.direction, new.author) {
        (Direction::Inbound, _) => {
            if conversation.waiting_since.is_none() {
                active.waiting_since = Set(Some(now));
                active.waiting_key = Set(now);
            }
        }
        (Direction::Outbound, Party::User(_)) => {
            active.waiting_since = Set(None);
            active.waiting_key = Set(crate::conversations::NOT_WAITING);
            if conversation.first_response_at.is_none()
                && conversation.direction == Direction::Inbound.as_str()
            {
                active.first_response_at = Set(Some(now));
            }
        }
        (Direction::Outbound, _) => {}
    }
    if reopen {
        active.status = Set("OPEN".into());
        active.pending_until = Set(None);
        active.close_reason = Set(None);
        active.closed_at = Set(None);
    }
    active.updated_at = Set(Utc::now());
    let conversation = active.update(conn).await?;

    if new.direction == Direction::Outbound {
        // The requester was contacted now (contacts order by it).
        use sea_orm::sea_query::Expr;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        contact::Entity::update_many()
            .col_expr(contact::Column::LastContactedAt, Expr::value(Some(now)))
            .col_expr(contact::Column::LastContactedAsc, Expr::value(now))
            .col_expr(contact::Column::LastContactedDesc, Expr::value(now))
            .filter(contact::Column::Id.eq(conversation.requester_id))
            .filter(
                sea_orm::Condition::any()
                    .add(contact::Column::LastContactedAt.is_null())
                    .add(contact::Column::LastContactedAt.lt(now)),
            )
            .exec(conn)
            .await?;
    }
    if new.direction == Direction::Outbound
        && message.delivery_status == DeliveryStatus::Queued.as_str()
    {
        // Sent by a job that exists if and only if this message commits.
        crate::jobs::enqueue(conn, super::delivery::delivery_job(&message)).await?;
    }
    if new.direction == Direction::Inbound {
        // A reply to a broadcast's message counts for the broadcast.
        crate::broadcasts::service::on_inbound(conn, conversation.id, now).await?;
    }
    let subject = Subject::new(SUBJECT, conversation.id);
    events::record(
        conn,
        conversation.org_id,
        actor,
        event_types::MESSAGE_ADDED,
        subject,
        json!({
            "messageId": message.id,
            "direction": message.direction,
            "authorKind": message.author_kind,
        }),
    )
    .await?;
    if reopen {
        events::record(
            conn,
            conversation.org_id,
            actor,
            event_types::REOPENED,
            subject,
            json!({ "reason": "INBOUND_MESSAGE", "from": previous_status }),
        )
        .await?;
    }
    if new.direction == Direction::Inbound
        && let Party::Contact(contact_id) = new.author
    {
        // Auto-responders and SMS consent keywords answer in this transaction.
        let first = conversation.message_count == 1;
        let replied = crate::responders::service::on_inbound(
            conn,
            &conversation,
            &message,
            contact_id,
            first,
        )
        .await?;
        if replied {
            // The conversation as the reply left it.
            use sea_orm::EntityTrait;
            let id = conversation.id;
            let current = conversation::Entity::find_by_id(id).one(conn).await?;
            return Ok((message, current.unwrap_or(conversation)));
        }
    }
    Ok((message, conversation))
}

/// Delivery status of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Accepted, waiting to be sent.
    Queued,
    /// Handed to the provider.
    Sent,
    /// The provider confirmed delivery.
    Delivered,
    /// The recipient read it.
    Read,
    /// Could not be delivered.
    Failed,
    /// A scheduled message canceled before it was due.
    Canceled,
}

impl DeliveryStatus {
    /// All statuses, in the order a message moves through them.
    pub const ALL: [DeliveryStatus; 6] = [
        DeliveryStatus::Queued,
        DeliveryStatus::Sent,
        DeliveryStatus::Delivered,
        DeliveryStatus::Read,
        DeliveryStatus::Failed,
        DeliveryStatus::Canceled,
    ];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "QUEUED",
            DeliveryStatus::Sent => "SENT",
            DeliveryStatus::Delivered => "DELIVERED",
            DeliveryStatus::Read => "READ",
            DeliveryStatus::Failed => "FAILED",
            DeliveryStatus::Canceled => "CANCELED",
        }
    }

    /// Parses a stored name (unknown names read as `QUEUED`).
    pub fn parse(name: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .unwrap_or(DeliveryStatus::Queued)
    }

    /// Whether a message in this status may move to `next`: forward only (queued, sent,
    /// delivered, read), to failed from queued or sent, to canceled from queued.
    pub fn may_become(self, next: DeliveryStatus) -> bool {
        use DeliveryStatus::*;
        match (self, next) {
            (Failed | Read | Canceled, _) => false,
            (Queued, Canceled) => true,
            (_, Canceled) => false,
            (Queued | Sent, Failed) => true,
            (_, Failed) => false,
            (from, to) => (to as u8) > (from as u8),
        }
    }
}

/// A reaction to a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reaction {
    /// 👍
    Like,
    /// ❤️
    Love,
    /// 😂
    Lol,
    /// 😮
    Wow,
    /// 😢
    Sad,
    /// 👎
    Dislike,
}

impl Reaction {
    /// All reactions, in display order.
    pub const ALL: [Reaction; 6] = [
        Reaction::Like,
        Reaction::Love,
        Reaction::Lol,
        Reaction::Wow,
        Reaction::Sad,
        Reaction::Dislike,
    ];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reaction::Like => "LIKE",
            Reaction::Love => "LOVE",
            Reaction::Lol => "LOL",
            Reaction::Wow => "WOW",
            Reaction::Sad => "SAD",
            Reaction::Dislike => "DISLIKE",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// Longest SMS text in characters (ten concatenated segments).
pub const MAX_SMS_CHARS: usize = 1_600;
/// Most addresses in each of `to`, `cc` and `bcc`.
pub const MAX_RECIPIENTS: usize = 50;
/// Longest client external id.
pub const MAX_EXTERNAL_ID: usize = 200;
/// Longest email subject in characters.
pub const MAX_SUBJECT_CHARS: usize = 998;
/// Clock skew tolerated for client-given past times (`receivedAt`, `readAt`).
const SKEW_MINUTES: i64 = 5;

/// An outbound message to send.
#[derive(Clone, Debug, Default)]
pub struct SendMessage {
    /// The conversation.
    pub conversation_id: Uuid,
    /// Plain text body.
    pub text: Option<String>,
    /// HTML body.
    pub html: Option<String>,
    /// Email subject (email channels).
    pub email_subject: Option<String>,
    /// Recipients; by default the requester's email address or phone number.
    pub to: Option<Vec<String>>,
    /// Copy recipients (email channels).
    pub cc: Option<Vec<String>>,
    /// Blind copy recipients (email channels).
    pub bcc: Option<Vec<String>>,
    /// Sender address; by default the channel's address.
    pub from: Option<String>,
    /// Client id making the send idempotent in the organization.
    pub external_id: Option<String>,
    /// When to send, if later.
    pub scheduled_at: Option<DateTime<Utc>>,
}

/// An inbound message to record.
#[derive(Clone, Debug, Default)]
pub struct InboundMessage {
    /// The conversation.
    pub conversation_id: Uuid,
    /// Plain text body.
    pub text: Option<String>,
    /// HTML body.
    pub html: Option<String>,
    /// Sender address; by default the requester's email address or phone number.
    pub from: Option<String>,
    /// Recipients; by default the channel's address.
    pub to: Option<Vec<String>>,
    /// Email subject (email channels).
    pub email_subject: Option<String>,
    /// Client id making the recording idempotent in the organization.
    pub external_id: Option<String>,
    /// When it was received; now by default.
    pub received_at: Option<DateTime<Utc>>,
    /// The contact who wrote it when not the requester (an email reply from someone else).
    pub author_id: Option<Uuid>,
    /// The channel and the provider's id of the message (ingest).
    pub provider_message_id: Option<(Uuid, String)>,
    /// Email `Message-ID` header (ingest).
    pub message_id_header: Option<String>,
}

fn non_blank(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// Checks the size of a body part (`text` or `html`).
fn check_size(errors: &mut Errors, field: &str, value: Option<&str>, max_bytes: usize) {
    if let Some(value) = value
        && value.len() > max_bytes
    {
        errors.add(
            field,
            UserErrorCode::TooLong,
            format!(
                "{field} is {} bytes; a message may have at most {max_bytes} bytes",
                value.len()
            ),
        );
    }
}

/// Checks what every message body must satisfy: something to send, and the size limit.
fn check_body(
    errors: &mut Errors,
    max_bytes: usize,
    text: &Option<String>,
    html: &Option<String>,
    has_attachments: bool,
) {
    if text.is_none() && html.is_none() && !has_attachments {
        errors.add(
            "text",
            UserErrorCode::Invalid,
            "a message needs text, html or an attachment",
        );
    }
    check_size(errors, "text", text.as_deref(), max_bytes);
    check_size(errors, "html", html.as_deref(), max_bytes);
}

/// Checks what depends on the channel type: SMS and WhatsApp are plain text (SMS at most 1,600
/// characters); subject, cc and bcc are for email only.
fn check_for_channel(
    errors: &mut Errors,
    channel: Option<ChannelType>,
    text: Option<&str>,
    html: Option<&str>,
    email_only: &[(&str, bool)],
) {
    let plain = matches!(channel, Some(ChannelType::Sms | ChannelType::Whatsapp));
    if plain && html.is_some() {
        errors.add(
            "html",
            UserErrorCode::Invalid,
            "SMS and WhatsApp messages are plain text; send `text` instead of `html`",
        );
    }
    if channel == Some(ChannelType::Sms)
        && let Some(text) = text
        && text.chars().count() > MAX_SMS_CHARS
    {
        errors.add(
            "text",
            UserErrorCode::TooLong,
            format!(
                "an SMS may have at most {MAX_SMS_CHARS} characters, got {}",
                text.chars().count()
            ),
        );
    }
    if channel != Some(ChannelType::Email) {
        for (field, given) in email_only {
            if *given {
                errors.add(
                    field,
                    UserErrorCode::Invalid,
                    format!("{field} is only for email channels"),
                );
            }
        }
    }
}

/// How a channel type addresses people: email addresses, phone numbers, or not at all.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Addressing {
    Email,
    Phone,
    None,
}

fn addressing(channel: Option<ChannelType>) -> Addressing {
    match channel {
        Some(ChannelType::Email) => Addressing::Email,
        Some(ChannelType::Sms | ChannelType::Whatsapp) => Addressing::Phone,
        _ => Addressing::None,
    }
}

fn check_address(errors: &mut Errors, how: Addressing, field: &str, value: &str) -> String {
    match how {
        Addressing::Email => errors.email(field, value),
        Addressing::Phone => errors.phone(field, value),
        Addressing::None => value.trim().to_string(),
    }
}

fn check_list(
    errors: &mut Errors,
    how: Addressing,
    field: &str,
    values: Option<Vec<String>>,
) -> Option<Vec<String>> {
    let values = values?;
    if values.len() > MAX_RECIPIENTS {
        errors.add(
            field,
            UserErrorCode::TooLong,
            format!("{field} takes at most {MAX_RECIPIENTS} addresses"),
        );
    }
    Some(
        values
            .iter()
            .enumerate()
            .map(|(i, v)| check_address(errors, how, &format!("{field}.{i}"), v))
            .collect(),
    )
}

/// The requester's address on this channel type.
fn contact_address(how: Addressing, contact: &contact::Model) -> Option<String> {
    match how {
        Addressing::Email => contact.email.clone(),
        Addressing::Phone => contact.phone.clone(),
        Addressing::None => None,
    }
}

/// Default sender and recipients of a message between `channel` and `contact`: the channel's
/// address and the contact's email (email channels) or phone (SMS, WhatsApp); none on others.
pub fn default_addresses(
    channel: &entity::channel::Model,
    contact: &contact::Model,
    direction: Direction,
) -> (Option<String>, Vec<String>) {
    let how = addressing(ChannelType::parse(&channel.channel_type));
    if how == Addressing::None {
        return (None, Vec::new());
    }
    let theirs = contact_address(how, contact);
    match direction {
        Direction::Outbound => (Some(channel.address.clone()), theirs.into_iter().collect()),
        Direction::Inbound => (theirs, vec![channel.address.clone()]),
    }
}

fn address_error(errors: &mut Errors, how: Addressing, from: bool, to: bool) {
    if how == Addressing::None {
        for (field, given) in [("from", from), ("to", to)] {
            if given {
                errors.add(
                    field,
                    UserErrorCode::Invalid,
                    format!("{field} is only for email, SMS and WhatsApp channels"),
                );
            }
        }
    }
}

fn check_external_id(errors: &mut Errors, external_id: Option<&str>) -> Option<String> {
    errors.optional_text("externalId", external_id, MAX_EXTERNAL_ID)
}

/// The conversation `id` of `org_id` (locked for update on PostgreSQL, so that sends to one
/// conversation run one after the other); `NOT_FOUND` at `field`.
async fn conversation_for_update<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    id: Uuid,
    field: &str,
) -> AppResult<conversation::Model> {
    tenancy::by_id::<conversation::Entity>(org_id, id)
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid(field, UserErrorCode::NotFound, "no such conversation"))
}

/// The message with `external_id` in `org_id`, if any.
async fn by_external_id<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    external_id: &str,
) -> AppResult<Option<message::Model>> {
    Ok(tenancy::in_org::<message::Entity>(org_id)
        .filter(message::Column::ExternalId.eq(external_id))
        .one(conn)
        .await?)
}

/// The first message with this external id when it is in `conversation_id` (a retry);
/// `CONFLICT` when it is in another conversation.
fn replay(existing: message::Model, conversation_id: Uuid) -> AppResult<message::Model> {
    if existing.conversation_id == conversation_id {
        Ok(existing)
    } else {
        Err(AppError::invalid(
            "externalId",
            UserErrorCode::Conflict,
            format!(
                "external id {:?} belongs to a message in another conversation",
                existing.external_id.unwrap_or_default()
            ),
        ))
    }
}

/// After a failed write with an external id: a concurrent request may have stored it first
/// (PostgreSQL's unique index refused ours), so answer with that message if it exists.
async fn replay_after_failure(
    db: &DatabaseConnection,
    org_id: Uuid,
    conversation_id: Uuid,
    external_id: Option<&str>,
    error: AppError,
) -> AppResult<message::Model> {
    if matches!(error, AppError::Validation(_)) {
        return Err(error);
    }
    match external_id {
        Some(external_id) => match by_external_id(db, org_id, external_id).await? {
            Some(existing) => replay(existing, conversation_id),
            None => Err(error),
        },
        None => Err(error),
    }
}

fn anonymized(conversation: &conversation::Model) -> AppResult<()> {
    if conversation.anonymized_at.is_some() {
        return Err(AppError::invalid(
            "conversationId",
            UserErrorCode::InvalidState,
            "the conversation is anonymized",
        ));
    }
    Ok(())
}

/// The active channel of a conversation; `INVALID_STATE` on `conversationId` when it has none
/// or it is archived.
async fn channel_of<C: ConnectionTrait>(
    conn: &C,
    conversation: &conversation::Model,
) -> AppResult<channel::Model> {
    let Some(channel_id) = conversation.channel_id else {
        return Err(AppError::invalid(
            "conversationId",
            UserErrorCode::InvalidState,
            "the conversation's channel was deleted",
        ));
    };
    active_channel(conn, conversation.org_id, channel_id, "conversationId")
        .await
        .map_err(|error| match error {
            AppError::Validation(mut errors) => {
                for e in &mut errors {
                    e.message = format!("the conversation's channel: {}", e.message);
                    e.code = UserErrorCode::InvalidState;
                }
                AppError::Validation(errors)
            }
            other => other,
        })
}

async fn requester<C: ConnectionTrait>(
    conn: &C,
    conversation: &conversation::Model,
) -> AppResult<contact::Model> {
    tenancy::by_id::<contact::Entity>(conversation.org_id, conversation.requester_id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::internal("conversation without requester"))
}

/// Whether the organization may write to `contact` on a channel of `channel_type`: not when the
/// contact is anonymized, nor on SMS or WhatsApp when they opted out there. `INVALID_STATE` at
/// `field`. Every outbound path (sending, outbound conversations, broadcasts) checks this.
pub fn ensure_reachable(
    channel_type: Option<ChannelType>,
    contact: &contact::Model,
    field: &str,
) -> AppResult<()> {
    if contact.anonymized_at.is_some() {
        return Err(AppError::invalid(
            field,
            UserErrorCode::InvalidState,
            "the contact is anonymized",
        ));
    }
    if let Some(channel_type @ (ChannelType::Sms | ChannelType::Whatsapp)) = channel_type
        && contacts::service::consents(contact)
            .iter()
            .any(|c| c.channel == channel_type && c.status == ConsentStatus::OptedOut)
    {
        return Err(AppError::invalid(
            field,
            UserErrorCode::InvalidState,
            format!(
                "the contact opted out of {} messages; nothing can be sent to them there until they opt in again",
                channel_type.as_str()
            ),
        ));
    }
    Ok(())
}

/// Sends an outbound message by the calling user (AGENT): checks the input, stages the
/// attachments, then in one write transaction checks the conversation, its channel and the
/// requester's consent, stores the message (`QUEUED`) and its attachments. A retry with the same
/// `externalId` returns the first message and writes nothing. On any failure nothing stays
/// written, on disk either.
pub async fn send(
    db: &DatabaseConnection,
    config: &Config,
    principal: &Principal,
    input: SendMessage,
    files: Vec<IncomingFile>,
) -> AppResult<message::Model> {
    principal.require(Permission::WorkConversations)?;
    let mut errors = Errors::default();
    let text = non_blank(input.text);
    let html = non_blank(input.html);
    check_body(
        &mut errors,
        config.max_message_bytes,
        &text,
        &html,
        !files.is_empty(),
    );
    let external_id = check_external_id(&mut errors, input.external_id.as_deref());
    let email_subject = errors.optional_text(
        "emailSubject",
        input.email_subject.as_deref(),
        MAX_SUBJECT_CHARS,
    );
    let now = Utc::now();
    if input.scheduled_at.is_some_and(|at| at <= now) {
        errors.add(
            "scheduledAt",
            UserErrorCode::Invalid,
            "scheduledAt must be in the future",
        );
    }
    let rules = UploadRules::from_config(config);
    let checked = attachments::service::check(&mut errors, &rules, "attachments", files);
    errors.finish()?;

    let store = Store::new(&config.attachments_dir);
    let staged = attachments::service::stage(&store, checked).await?;
    let org_id = principal.org_id;
    let conversation_id = input.conversation_id;
    let txn = db::begin_write(db).await?;
    let result = async {
        let conversation =
            conversation_for_update(&txn, org_id, conversation_id, "conversationId").await?;
        if let Some(external_id) = &external_id
            && let Some(existing) = by_external_id(&txn, org_id, external_id).await?
        {
            return Ok((replay(existing, conversation.id)?, Vec::new(), false));
        }
        anonymized(&conversation)?;
        let channel = channel_of(&txn, &conversation).await?;
        let channel_type = ChannelType::parse(&channel.channel_type);
        let requester = requester(&txn, &conversation).await?;
        ensure_reachable(channel_type, &requester, "conversationId")?;
        let mut errors = Errors::default();
        check_for_channel(
            &mut errors,
            channel_type,
            text.as_deref(),
            html.as_deref(),
            &[
                ("emailSubject", email_subject.is_some()),
                ("cc", input.cc.is_some()),
                ("bcc", input.bcc.is_some()),
            ],
        );
        let how = addressing(channel_type);
        address_error(&mut errors, how, input.from.is_some(), input.to.is_some());
        let from = input
            .from
            .as_deref()
            .map(|f| check_address(&mut errors, how, "from", f))
            .or_else(|| (how != Addressing::None).then(|| channel.address.clone()));
        let to = match check_list(&mut errors, how, "to", input.to.clone()) {
            Some(to) if !to.is_empty() => to,
            _ => match (how, contact_address(how, &requester)) {
                (Addressing::None, _) => Vec::new(),
                (_, Some(address)) => vec![address],
                (_, None) => {
                    errors.add(
                        "to",
                        UserErrorCode::Invalid,
                        format!(
                            "the requester has no {}; give `to`",
                            if how == Addressing::Email {
                                "email address"
                            } else {
                                "phone number"
                            }
                        ),
                    );
                    Vec::new()
                }
            },
        };
        let cc = check_list(&mut errors, how, "cc", input.cc.clone()).unwrap_or_default();
        let bcc = check_list(&mut errors, how, "bcc", input.bcc.clone()).unwrap_or_default();
        errors.finish()?;

        let mut new = NewMessage::text(
            Party::User(principal.user_id()),
            Direction::Outbound,
            String::new(),
        );
        new.text = text.clone();
        new.html = html.clone();
        new.email_subject = email_subject.clone();
        new.from_address = from;
        new.to = to;
        new.cc = cc;
        new.bcc = bcc;
        new.external_id = external_id.clone();
        new.scheduled_at = input.scheduled_at;
        new.delivery_status = DeliveryStatus::Queued.as_str();
        let (message, _) = append(&txn, conversation, new, Some(principal.user_id())).await?;
        let (_, paths) = attachments::service::attach(
            &txn,
            &store,
            org_id,
            message.id,
            Some(principal.user_id()),
            staged,
        )
        .await?;
        Ok((message, paths, true))
    }
    .await;
    match result {
        Ok((message, paths, wrote)) => {
            if !wrote {
                txn.rollback().await?;
                return Ok(message);
            }
            match txn.commit().await {
                Ok(()) => Ok(message),
                Err(error) => {
                    Store::remove_all(&paths).await;
                    replay_after_failure(
                        db,
                        org_id,
                        conversation_id,
                        external_id.as_deref(),
                        error.into(),
                    )
                    .await
                }
            }
        }
        Err(error) => {
            txn.rollback().await?;
            replay_after_failure(db, org_id, conversation_id, external_id.as_deref(), error).await
        }
    }
}

/// Records an inbound message from the conversation's requester (AGENT; providers report them
/// on the ingest endpoint, which stores them through the same [`append_inbound`]): `DELIVERED`,
/// reopens a pending or closed conversation. A retry with the same `externalId` returns the
/// first message and writes nothing.
pub async fn record_inbound(
    db: &DatabaseConnection,
    config: &Config,
    principal: &Principal,
    input: InboundMessage,
) -> AppResult<message::Model> {
    principal.require(Permission::WorkConversations)?;
    let input = check_inbound(config, input, Utc::now())?;
    let org_id = principal.org_id;
    let conversation_id = input.conversation_id;
    let external_id = input.external_id.clone();
    let txn = db::begin_write(db).await?;
    let result = async {
        let conversation =
            conversation_for_update(&txn, org_id, conversation_id, "conversationId").await?;
        if let Some(external_id) = &external_id
            && let Some(existing) = by_external_id(&txn, org_id, external_id).await?
        {
            return Ok((replay(existing, conversation.id)?, false));
        }
        let message = append_inbound(&txn, conversation, input, Some(principal.user_id())).await?;
        Ok((message, true))
    }
    .await;
    match result {
        Ok((message, true)) => match txn.commit().await {
            Ok(()) => Ok(message),
            Err(error) => {
                replay_after_failure(
                    db,
                    org_id,
                    conversation_id,
                    external_id.as_deref(),
                    error.into(),
                )
                .await
            }
        },
        Ok((message, false)) => {
            txn.rollback().await?;
            Ok(message)
        }
        Err(error) => {
            txn.rollback().await?;
            replay_after_failure(db, org_id, conversation_id, external_id.as_deref(), error).await
        }
    }
}

/// The checks of an inbound message that need no database: a body within the size limit, the
/// external id and subject lengths, `receivedAt` not in the future. Returns it normalised
/// (blank bodies dropped, texts trimmed).
pub fn check_inbound(
    config: &Config,
    mut input: InboundMessage,
    now: DateTime<Utc>,
) -> AppResult<InboundMessage> {
    let mut errors = Errors::default();
    input.text = non_blank(input.text);
    input.html = non_blank(input.html);
    check_body(
        &mut errors,
        config.max_message_bytes,
        &input.text,
        &input.html,
        false,
    );
    input.external_id = check_external_id(&mut errors, input.external_id.as_deref());
    input.email_subject = errors.optional_text(
        "emailSubject",
        input.email_subject.as_deref(),
        MAX_SUBJECT_CHARS,
    );
    if input
        .received_at
        .is_some_and(|at| at > now + chrono::Duration::minutes(SKEW_MINUTES))
    {
        errors.add(
            "receivedAt",
            UserErrorCode::Invalid,
            "receivedAt is in the future",
        );
    }
    errors.finish()?;
    Ok(input)
}

/// Appends an inbound message checked by [`check_inbound`] to `conversation` inside `conn`:
/// the conversation must not be anonymized and its channel must be active; the body and the
/// addresses must suit the channel (sender by default the author's address, recipient the
/// channel's). The author is `input.author_id` or the requester. `DELIVERED`; reopens a pending
/// or closed conversation (through [`append`]).
pub async fn append_inbound<C: ConnectionTrait>(
    conn: &C,
    conversation: conversation::Model,
    input: InboundMessage,
    actor: Option<Uuid>,
) -> AppResult<message::Model> {
    anonymized(&conversation)?;
    let channel = channel_of(conn, &conversation).await?;
    let channel_type = ChannelType::parse(&channel.channel_type);
    let author = match input.author_id {
        Some(id) => tenancy::by_id::<contact::Entity>(conversation.org_id, id)
            .one(conn)
            .await?
            .ok_or_else(|| AppError::internal("inbound author not found"))?,
        None => requester(conn, &conversation).await?,
    };
    let mut errors = Errors::default();
    check_for_channel(
        &mut errors,
        channel_type,
        input.text.as_deref(),
        input.html.as_deref(),
        &[("emailSubject", input.email_subject.is_some())],
    );
    let how = addressing(channel_type);
    address_error(&mut errors, how, input.from.is_some(), input.to.is_some());
    let from = input
        .from
        .as_deref()
        .map(|f| check_address(&mut errors, how, "from", f))
        .or_else(|| contact_address(how, &author));
    let to = match check_list(&mut errors, how, "to", input.to.clone()) {
        Some(to) if !to.is_empty() => to,
        _ if how == Addressing::None => Vec::new(),
        _ => vec![channel.address.clone()],
    };
    errors.finish()?;
    let mut new = NewMessage::text(Party::Contact(author.id), Direction::Inbound, String::new());
    new.text = input.text;
    new.html = input.html;
    new.email_subject = input.email_subject;
    new.from_address = from;
    new.to = to;
    new.external_id = input.external_id;
    new.delivery_status = DeliveryStatus::Delivered.as_str();
    new.created_at = input.received_at.unwrap_or_else(Utc::now);
    new.provider_message_id = input.provider_message_id;
    new.message_id_header = input.message_id_header;
    let (message, _) = append(conn, conversation, new, actor).await?;
    Ok(message)
}

/// The message `id` of `org_id`; `NOT_FOUND` at `field`.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    id: Uuid,
    field: &str,
) -> AppResult<message::Model> {
    tenancy::by_id::<message::Entity>(org_id, id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid(field, UserErrorCode::NotFound, "no such message"))
}

fn not_removed_or_redacted(message: &message::Model, action: &str) -> AppResult<()> {
    let state = if message.removed_at.is_some() {
        "removed"
    } else if message.redacted_at.is_some() {
        "redacted"
    } else {
        return Ok(());
    };
    Err(AppError::invalid(
        "messageId",
        UserErrorCode::InvalidState,
        format!("the message is {state}; it cannot {action}"),
    ))
}

async fn record_message_event<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    message: &message::Model,
    event_type: &str,
    mut payload: serde_json::Value,
) -> AppResult<()> {
    if let serde_json::Value::Object(map) = &mut payload {
        map.insert("messageId".into(), json!(message.id));
    }
    events::record(
        conn,
        principal.org_id,
        Some(principal.user_id()),
        event_type,
        Subject::new(SUBJECT, message.conversation_id),
        payload,
    )
    .await?;
    Ok(())
}

/// Changes the body of an outbound message (only its author; not a removed, redacted or
/// anonymized one). `None` keeps a part, `Some(None)` clears it; something must remain.
pub async fn edit(
    db: &DatabaseConnection,
    config: &Config,
    principal: &Principal,
    message_id: Uuid,
    text: Option<Option<String>>,
    html: Option<Option<String>>,
) -> AppResult<message::Model> {
    principal.require(Permission::WorkConversations)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, message_id, "messageId").await?;
    if current.author_user_id != Some(principal.user_id()) {
        return Err(AppError::invalid(
            "messageId",
            UserErrorCode::Forbidden,
            "only the message's author can edit it",
        ));
    }
    if current.direction != Direction::Outbound.as_str() || current.author_kind != "USER" {
        return Err(AppError::invalid(
            "messageId",
            UserErrorCode::InvalidState,
            "only outbound messages written by a user can be edited",
        ));
    }
    not_removed_or_redacted(&current, "be edited")?;
    if current.anonymized_at.is_some() {
        return Err(AppError::invalid(
            "messageId",
            UserErrorCode::InvalidState,
            "the message is anonymized; it cannot be edited",
        ));
    }
    let text = match text {
        Some(t) => non_blank(t),
        None => current.text_body.clone(),
    };
    let html = match html {
        Some(h) => non_blank(h),
        None => current.html_body.clone(),
    };
    let has_attachments = !attachments::service::of_message(&txn, principal.org_id, current.id)
        .await?
        .is_empty();
    let mut errors = Errors::default();
    check_body(
        &mut errors,
        config.max_message_bytes,
        &text,
        &html,
        has_attachments,
    );
    let channel_type =
        tenancy::by_id::<conversation::Entity>(principal.org_id, current.conversation_id)
            .one(&txn)
            .await?
            .and_then(|c| ChannelType::parse(&c.channel_type));
    check_for_channel(
        &mut errors,
        channel_type,
        text.as_deref(),
        html.as_deref(),
        &[],
    );
    errors.finish()?;
    let now = Utc::now();
    let mut model = current.into_active_model();
    model.text_body = Set(text);
    model.html_body = Set(html);
    model.edited_at = Set(Some(now));
    model.updated_at = Set(now);
    let updated = model.update(&txn).await?;
    record_message_event(
        &txn,
        principal,
        &updated,
        event_types::MESSAGE_EDITED,
        json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Redacts a message (AGENT): its text, HTML and subject are erased and its attachments deleted
/// (rows and files); the message keeps its place with `redactedAt` set.
pub async fn redact(
    db: &DatabaseConnection,
    config: &Config,
    principal: &Principal,
    message_id: Uuid,
    reason: Option<String>,
) -> AppResult<message::Model> {
    principal.require(Permission::WorkConversations)?;
    let mut errors = Errors::default();
    let reason = errors.optional_text("reason", reason.as_deref(), 500);
    errors.finish()?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, message_id, "messageId").await?;
    if current.redacted_at.is_some() {
        return Err(AppError::invalid(
            "messageId",
            UserErrorCode::InvalidState,
            "the message is already redacted",
        ));
    }
    let files = attachments::service::of_message(&txn, principal.org_id, current.id).await?;
    if !files.is_empty() {
        entity::attachment::Entity::delete_many()
            .filter(entity::attachment::Column::OrgId.eq(principal.org_id))
            .filter(entity::attachment::Column::MessageId.eq(current.id))
            .exec(&txn)
            .await?;
    }
    let now = Utc::now();
    let mut model = current.into_active_model();
    model.text_body = Set(None);
    model.html_body = Set(None);
    model.email_subject = Set(None);
    model.redacted_at = Set(Some(now));
    model.updated_at = Set(now);
    let updated = model.update(&txn).await?;
    record_message_event(
        &txn,
        principal,
        &updated,
        event_types::MESSAGE_REDACTED,
        json!({ "reason": reason, "attachmentsDeleted": files.len() }),
    )
    .await?;
    txn.commit().await?;
    let store = Store::new(&config.attachments_dir);
    let paths: Vec<PathBuf> = files.iter().map(|f| store.path(&f.storage_key)).collect();
    Store::remove_all(paths).await;
    Ok(updated)
}

/// Removes a message (AGENT): it stays in its place with `removedAt` set and its content hidden.
pub async fn remove(
    db: &DatabaseConnection,
    principal: &Principal,
    message_id: Uuid,
) -> AppResult<message::Model> {
    principal.require(Permission::WorkConversations)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, message_id, "messageId").await?;
    if current.removed_at.is_some() {
        return Err(AppError::invalid(
            "messageId",
            UserErrorCode::InvalidState,
            "the message is already removed",
        ));
    }
    let now = Utc::now();
    let mut model = current.into_active_model();
    model.removed_at = Set(Some(now));
    model.updated_at = Set(now);
    let updated = model.update(&txn).await?;
    record_message_event(
        &txn,
        principal,
        &updated,
        event_types::MESSAGE_REMOVED,
        json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Cancels a scheduled outbound message that is not yet due (AGENT): its delivery status
/// becomes `CANCELED` (recorded in its history, `MESSAGE_STATUS_CHANGED`) and it is never sent.
/// Any other message is refused with `INVALID_STATE`.
pub async fn cancel_scheduled(
    db: &DatabaseConnection,
    principal: &Principal,
    message_id: Uuid,
) -> AppResult<message::Model> {
    principal.require(Permission::WorkConversations)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, message_id, "messageId").await?;
    let now = Utc::now();
    let due = current.scheduled_at.is_none_or(|at| at <= now);
    if current.direction != Direction::Outbound.as_str()
        || current.delivery_status != DeliveryStatus::Queued.as_str()
        || due
    {
        return Err(AppError::invalid(
            "messageId",
            UserErrorCode::InvalidState,
            "only a scheduled message that is not yet due can be canceled",
        ));
    }
    let updated = record_delivery_status(
        &txn,
        current,
        DeliveryStatus::Canceled,
        Some("canceled before it was due".into()),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Adds the calling user's reaction to a message (AGENT); adding it again changes nothing.
/// Removed and redacted messages take no reactions.
pub async fn add_reaction(
    db: &DatabaseConnection,
    principal: &Principal,
    message_id: Uuid,
    reaction: Reaction,
) -> AppResult<message::Model> {
    principal.require(Permission::WorkConversations)?;
    let txn = db::begin_write(db).await?;
    let message = find(&txn, principal.org_id, message_id, "messageId").await?;
    not_removed_or_redacted(&message, "take reactions")?;
    let inserted = message_reaction::Entity::insert(message_reaction::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(principal.org_id),
        message_id: Set(message.id),
        reactor_kind: Set(Party::User(principal.user_id()).kind().into()),
        reactor_id: Set(principal.user_id()),
        reaction: Set(reaction.as_str().into()),
        created_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([
            message_reaction::Column::MessageId,
            message_reaction::Column::ReactorId,
            message_reaction::Column::Reaction,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    if inserted > 0 {
        record_message_event(
            &txn,
            principal,
            &message,
            event_types::REACTION_ADDED,
            json!({ "reaction": reaction.as_str() }),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(message)
}

/// Removes the calling user's reaction from a message (AGENT); removing one that is not there
/// changes nothing.
pub async fn remove_reaction(
    db: &DatabaseConnection,
    principal: &Principal,
    message_id: Uuid,
    reaction: Reaction,
) -> AppResult<message::Model> {
    principal.require(Permission::WorkConversations)?;
    let txn = db::begin_write(db).await?;
    let message = find(&txn, principal.org_id, message_id, "messageId").await?;
    let deleted = message_reaction::Entity::delete_many()
        .filter(message_reaction::Column::OrgId.eq(principal.org_id))
        .filter(message_reaction::Column::MessageId.eq(message.id))
        .filter(message_reaction::Column::ReactorId.eq(principal.user_id()))
        .filter(message_reaction::Column::Reaction.eq(reaction.as_str()))
        .exec(&txn)
        .await?
        .rows_affected;
    if deleted > 0 {
        record_message_event(
            &txn,
            principal,
            &message,
            event_types::REACTION_REMOVED,
            json!({ "reaction": reaction.as_str() }),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(message)
}

/// Moves a reader's read position in a conversation to `read_at` inside `conn` (through
/// [`crate::conversations::service::set_read_position`]), never backwards, and records
/// `CONVERSATION_READ` when it moved. Returns the position after the call.
pub async fn mark_read<C: ConnectionTrait>(
    conn: &C,
    conversation: &conversation::Model,
    reader: Party,
    read_at: DateTime<Utc>,
    actor: Option<Uuid>,
) -> AppResult<DateTime<Utc>> {
    let reader_id = match reader {
        Party::User(id) | Party::Contact(id) => id,
        Party::System => return Err(AppError::internal("the system does not read")),
    };
    // Stored with microseconds (PostgreSQL); compare and answer at that precision.
    let read_at = read_at.trunc_subsecs(6);
    let current = conversation_read::Entity::find()
        .filter(conversation_read::Column::OrgId.eq(conversation.org_id))
        .filter(conversation_read::Column::ConversationId.eq(conversation.id))
        .filter(conversation_read::Column::ReaderId.eq(reader_id))
        .one(conn)
        .await?;
    if let Some(row) = current
        && row.last_read_at >= read_at
    {
        return Ok(row.last_read_at);
    }
    crate::conversations::service::set_read_position(conn, conversation, reader, read_at).await?;
    events::record(
        conn,
        conversation.org_id,
        actor,
        event_types::READ,
        Subject::new(SUBJECT, conversation.id),
        json!({ "readerKind": reader.kind(), "readerId": reader_id, "readAt": read_at }),
    )
    .await?;
    Ok(read_at)
}

/// Records that a contact taking part in a conversation (its requester or a contact participant)
/// read it up to `read_at` (now by default; not in the future). Read positions never move
/// backwards: an older receipt changes nothing. Returns the conversation and the contact's read
/// position.
pub async fn record_read_receipt(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    contact_id: Uuid,
    read_at: Option<DateTime<Utc>>,
) -> AppResult<(conversation::Model, DateTime<Utc>)> {
    principal.require(Permission::WorkConversations)?;
    let now = Utc::now();
    if read_at.is_some_and(|at| at > now + chrono::Duration::minutes(SKEW_MINUTES)) {
        return Err(AppError::invalid(
            "readAt",
            UserErrorCode::Invalid,
            "readAt is in the future",
        ));
    }
    let txn = db::begin_write(db).await?;
    let conversation =
        conversation_for_update(&txn, principal.org_id, conversation_id, "conversationId").await?;
    let takes_part = conversation.requester_id == contact_id
        || tenancy::in_org::<conversation_participant::Entity>(principal.org_id)
            .filter(conversation_participant::Column::ConversationId.eq(conversation.id))
            .filter(conversation_participant::Column::ParticipantKind.eq("CONTACT"))
            .filter(conversation_participant::Column::ParticipantId.eq(contact_id))
            .one(&txn)
            .await?
            .is_some();
    if !takes_part {
        return Err(AppError::invalid(
            "contactId",
            UserErrorCode::NotFound,
            "the contact takes no part in the conversation",
        ));
    }
    let position = mark_read(
        &txn,
        &conversation,
        Party::Contact(contact_id),
        read_at.unwrap_or(now),
        Some(principal.user_id()),
    )
    .await?;
    txn.commit().await?;
    Ok((conversation, position))
}

/// Moves a message's delivery status (a provider's report) inside `conn`: appends the step to
/// its history and records `MESSAGE_STATUS_CHANGED`. Reports that would move it backwards (they
/// may arrive out of order) or repeat the current status change nothing.
pub async fn record_delivery_status<C: ConnectionTrait>(
    conn: &C,
    message: message::Model,
    status: DeliveryStatus,
    reason: Option<String>,
    at: DateTime<Utc>,
) -> AppResult<message::Model> {
    let from = DeliveryStatus::parse(&message.delivery_status);
    if !from.may_become(status) {
        return Ok(message);
    }
    message_status_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(message.org_id),
        message_id: Set(message.id),
        status: Set(status.as_str().into()),
        reason: Set(reason.clone()),
        created_at: Set(at),
    }
    .insert(conn)
    .await?;
    let (org_id, conversation_id, message_id) =
        (message.org_id, message.conversation_id, message.id);
    let mut model = message.into_active_model();
    model.delivery_status = Set(status.as_str().into());
    model.delivery_reason = Set(reason.clone());
    model.updated_at = Set(Utc::now());
    let updated = model.update(conn).await?;
    // A broadcast's message moves its recipient and counters with it; the event names the
    // broadcast (the `broadcast_delivery_rate` metric reads it).
    let broadcasts = crate::broadcasts::service::recipient_status(conn, message_id, status).await?;
    let mut payload =
        json!({ "messageId": message_id, "status": status.as_str(), "reason": reason });
    if let Some(broadcast_id) = broadcasts.first() {
        payload["broadcastId"] = json!(broadcast_id);
    }
    events::record(
        conn,
        org_id,
        None,
        event_types::MESSAGE_STATUS_CHANGED,
        Subject::new(SUBJECT, conversation_id),
        payload,
    )
    .await?;
    crate::broadcasts::service::on_message_status(conn, broadcasts, from, status, at).await?;
    Ok(updated)
}

/// Order of a conversation's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageOrder {
    /// Oldest first (reading order).
    OldestFirst,
    /// Newest first.
    NewestFirst,
}

/// One page of a conversation's messages in `order` (by creation time, then id).
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    order: MessageOrder,
    args: &PageArgs,
) -> AppResult<(Page<message::Model>, TotalCount)> {
    principal.require(Permission::WorkConversations)?;
    let select = tenancy::in_org::<message::Entity>(principal.org_id)
        .filter(message::Column::ConversationId.eq(conversation_id));
    let (name, direction) = match order {
        MessageOrder::OldestFirst => ("OLDEST_FIRST", SortDirection::Asc),
        MessageOrder::NewestFirst => ("NEWEST_FIRST", SortDirection::Desc),
    };
    let sort = Sort::<message::Entity> {
        name,
        column: message::Column::CreatedAt,
        direction,
        value: |m| SortValue::Time(m.created_at),
    };
    let page = paginate(db, select.clone(), "messages", &sort, args).await?;
    Ok((page, TotalCount::of(db, select)))
}

/// Delivery status history per message, oldest first, batched.
pub async fn status_history(
    db: &DatabaseConnection,
    org_id: Uuid,
    message_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<message_status_event::Model>>> {
    let rows = tenancy::in_org::<message_status_event::Entity>(org_id)
        .filter(message_status_event::Column::MessageId.is_in(message_ids.iter().copied()))
        .order_by_asc(message_status_event::Column::CreatedAt)
        .order_by_asc(message_status_event::Column::Id)
        .all(db)
        .await?;
    let mut map: HashMap<Uuid, Vec<message_status_event::Model>> = HashMap::new();
    for row in rows {
        map.entry(row.message_id).or_default().push(row);
    }
    Ok(map)
}

/// Reactions per message, oldest first, batched.
pub async fn reactions(
    db: &DatabaseConnection,
    org_id: Uuid,
    message_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<message_reaction::Model>>> {
    let rows = tenancy::in_org::<message_reaction::Entity>(org_id)
        .filter(message_reaction::Column::MessageId.is_in(message_ids.iter().copied()))
        .order_by_asc(message_reaction::Column::CreatedAt)
        .order_by_asc(message_reaction::Column::Id)
        .all(db)
        .await?;
    let mut map: HashMap<Uuid, Vec<message_reaction::Model>> = HashMap::new();
    for row in rows {
        map.entry(row.message_id).or_default().push(row);
    }
    Ok(map)
}

/// Read positions per conversation, earliest first, batched.
pub async fn reads(
    db: &DatabaseConnection,
    org_id: Uuid,
    conversation_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<conversation_read::Model>>> {
    let rows = conversation_read::Entity::find()
        .filter(conversation_read::Column::OrgId.eq(org_id))
        .filter(conversation_read::Column::ConversationId.is_in(conversation_ids.iter().copied()))
        .order_by_asc(conversation_read::Column::LastReadAt)
        .order_by_asc(conversation_read::Column::ReaderId)
        .all(db)
        .await?;
    let mut map: HashMap<Uuid, Vec<conversation_read::Model>> = HashMap::new();
    for row in rows {
        map.entry(row.conversation_id).or_default().push(row);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_status_moves_forward_only() {
        use DeliveryStatus::*;
        assert!(Queued.may_become(Sent));
        assert!(Queued.may_become(Delivered));
        assert!(Sent.may_become(Failed));
        assert!(Delivered.may_become(Read));
        assert!(!Delivered.may_become(Sent));
        assert!(!Delivered.may_become(Failed));
        assert!(!Failed.may_become(Sent));
        assert!(!Read.may_become(Delivered));
        assert!(!Sent.may_become(Sent));
    }
}
