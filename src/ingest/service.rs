//! What an ingest request does, once its signature was verified: parse the body, then record an
//! inbound message or move a message's delivery status, in one write transaction each.

use chrono::{DateTime, Utc};
use entity::{channel, contact, conversation, conversation_participant, message};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, QueryFilter, QueryOrder};
use serde_json::Value;
use uuid::Uuid;

use crate::calls::CallStatus;
use crate::calls::service::{CallReport, Reported};
use crate::channels::ChannelType;
use crate::config::Config;
use crate::contacts::service::{SenderAddress, find_or_create_by_address};
use crate::conversations::service::{Kind, Opening, Priority, Status, insert};
use crate::db;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::messages::service::{
    DeliveryStatus, Direction, InboundMessage, MAX_RECIPIENTS, append_inbound, check_inbound,
    record_delivery_status,
};
use crate::tenancy;
use crate::validate::Errors;

/// Longest provider message id.
pub const MAX_PROVIDER_MESSAGE_ID: usize = 200;
/// Longest `Message-ID` (one header line).
pub const MAX_MESSAGE_ID: usize = 998;
/// Most ids in `references`.
pub const MAX_REFERENCES: usize = 100;
/// Longest sender name.
pub const MAX_FROM_NAME: usize = 200;
/// Longest status reason.
pub const MAX_REASON: usize = 500;
/// Clock skew tolerated for times a provider gives.
const SKEW_MINUTES: i64 = 5;

/// An inbound message as a provider reports it.
#[derive(Clone, Debug, Default)]
pub struct InboundInput {
    /// The provider's id of the message (repeats are ignored).
    pub provider_message_id: String,
    /// Sender: an email address (EMAIL channels) or E.164 number (SMS, WhatsApp).
    pub from: String,
    /// Sender's name, for a new contact.
    pub from_name: Option<String>,
    /// Recipients; the channel's address by default.
    pub to: Option<Vec<String>>,
    /// Plain text body.
    pub text: Option<String>,
    /// HTML body (email).
    pub html: Option<String>,
    /// Subject (email).
    pub subject: Option<String>,
    /// `Message-ID` (email).
    pub message_id: Option<String>,
    /// `In-Reply-To` ids (email).
    pub in_reply_to: Vec<String>,
    /// `References` ids (email).
    pub references: Vec<String>,
    /// When it was received; now by default.
    pub received_at: Option<DateTime<Utc>>,
}

/// A delivery status update as a provider reports it.
#[derive(Clone, Debug)]
pub struct StatusInput {
    /// The provider's id of the message.
    pub provider_message_id: String,
    /// The new status.
    pub status: DeliveryStatus,
    /// Why (failures).
    pub reason: Option<String>,
    /// When it happened; now by default.
    pub at: Option<DateTime<Utc>>,
}

/// What an ingest request asks for.
#[derive(Clone, Debug)]
pub enum Request {
    /// Record an inbound message.
    Message(InboundInput),
    /// Move a message's delivery status.
    Status(StatusInput),
    /// Start an inbound call, or move a call's status (with keypad digits, recording).
    Call(CallReport),
    /// Fail a room or one of its recordings.
    Room(crate::rooms::service::RoomReport),
}

/// What recording an inbound message did.
#[derive(Clone, Debug)]
pub struct Received {
    /// The message (the first one, for a repeat).
    pub message: message::Model,
    /// Whether it was a repeat of a stored message (nothing was written).
    pub duplicate: bool,
    /// Whether the conversation was started by it.
    pub new_conversation: bool,
    /// Whether the sender became a new contact.
    pub new_contact: bool,
}

/// What a status update did.
#[derive(Clone, Debug)]
pub struct StatusChange {
    /// The message after the update.
    pub message: message::Model,
    /// Why nothing changed, when nothing did.
    pub ignored: Option<String>,
}

/// What an ingest request did.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// An inbound message was recorded (or recognised as a repeat).
    Received(Received),
    /// A status update was applied (or ignored).
    Status(StatusChange),
    /// A call report was applied.
    Call(Reported),
    /// A room report was applied.
    Room(crate::rooms::service::RoomReported),
}

fn text_field(
    errors: &mut Errors,
    body: &serde_json::Map<String, Value>,
    field: &str,
    max: usize,
    required: bool,
) -> Option<String> {
    match body.get(field) {
        None | Some(Value::Null) => {
            if required {
                errors.add(
                    field,
                    UserErrorCode::Required,
                    format!("{field} is required"),
                );
            }
            None
        }
        Some(Value::String(value)) => {
            if required && value.trim().is_empty() {
                errors.add(
                    field,
                    UserErrorCode::Required,
                    format!("{field} must not be empty"),
                );
                return None;
            }
            if value.chars().count() > max {
                errors.add(
                    field,
                    UserErrorCode::TooLong,
                    format!("{field} may have at most {max} characters"),
                );
            }
            Some(value.clone())
        }
        Some(_) => {
            errors.add(
                field,
                UserErrorCode::Invalid,
                format!("{field} must be a string"),
            );
            None
        }
    }
}

fn time_field(
    errors: &mut Errors,
    body: &serde_json::Map<String, Value>,
    field: &str,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let value = text_field(errors, body, field, 100, false)?;
    match DateTime::parse_from_rfc3339(value.trim()) {
        Ok(at) if at > now + chrono::Duration::minutes(SKEW_MINUTES) => {
            errors.add(
                field,
                UserErrorCode::Invalid,
                format!("{field} is in the future"),
            );
            None
        }
        Ok(at) => Some(at.with_timezone(&Utc)),
        Err(_) => {
            errors.add(
                field,
                UserErrorCode::Invalid,
                format!("{field} must be an RFC 3339 time such as 2026-11-25T09:30:00Z"),
            );
            None
        }
    }
}

/// The `<…>` ids of a header value (a value without angle brackets is one id).
pub fn message_ids(value: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let Some(end) = rest[start..].find('>') else {
            break;
        };
        let id = &rest[start..start + end + 1];
        if id.len() > 2 {
            ids.push(id.to_string());
        }
        rest = &rest[start + end + 1..];
    }
    let trimmed = value.trim();
    if ids.is_empty()
        && !trimmed.is_empty()
        && !trimmed.contains(['<', '>'])
        && !trimmed.contains(char::is_whitespace)
    {
        ids.push(format!("<{trimmed}>"));
    }
    ids
}

/// A header of ids: a string (space-separated ids) or an array of them.
fn ids_field(
    errors: &mut Errors,
    body: &serde_json::Map<String, Value>,
    field: &str,
) -> Vec<String> {
    let ids: Vec<String> = match body.get(field) {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::String(value)) => message_ids(value),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .flat_map(message_ids)
            .collect(),
        Some(_) => {
            errors.add(
                field,
                UserErrorCode::Invalid,
                format!("{field} must be a string of message ids or an array of them"),
            );
            return Vec::new();
        }
    };
    if ids.len() > MAX_REFERENCES {
        errors.add(
            field,
            UserErrorCode::TooLong,
            format!("{field} may have at most {MAX_REFERENCES} ids"),
        );
    }
    ids.into_iter()
        .filter(|id| id.len() <= MAX_MESSAGE_ID)
        .collect()
}

fn list_field(
    errors: &mut Errors,
    body: &serde_json::Map<String, Value>,
    field: &str,
) -> Option<Vec<String>> {
    match body.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            if items.len() > MAX_RECIPIENTS {
                errors.add(
                    field,
                    UserErrorCode::TooLong,
                    format!("{field} takes at most {MAX_RECIPIENTS} addresses"),
                );
            }
            Some(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
            )
        }
        Some(Value::String(one)) => Some(vec![one.clone()]),
        Some(_) => {
            errors.add(
                field,
                UserErrorCode::Invalid,
                format!("{field} must be an address or an array of addresses"),
            );
            None
        }
    }
}

/// Parses an ingest body: a JSON object with `type` `message`, `status` or `call`. Not JSON or
/// not an object: `BadUserInput`; missing or wrong fields: `Validation` naming each field.
pub fn parse(body: &[u8], now: DateTime<Utc>) -> AppResult<Request> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| AppError::BadUserInput(format!("the body is not valid JSON: {error}")))?;
    let Value::Object(body) = value else {
        return Err(AppError::BadUserInput(
            "the body must be a JSON object with a `type`".into(),
        ));
    };
    let mut errors = Errors::default();
    let kind = text_field(&mut errors, &body, "type", 20, true);
    errors.finish()?;
    let mut errors = Errors::default();
    let request = match kind.as_deref() {
        Some("message") => {
            let input = InboundInput {
                provider_message_id: text_field(
                    &mut errors,
                    &body,
                    "providerMessageId",
                    MAX_PROVIDER_MESSAGE_ID,
                    true,
                )
                .unwrap_or_default(),
                from: text_field(&mut errors, &body, "from", 254, true).unwrap_or_default(),
                from_name: text_field(&mut errors, &body, "fromName", MAX_FROM_NAME, false),
                to: list_field(&mut errors, &body, "to"),
                text: text_field(&mut errors, &body, "text", usize::MAX, false),
                html: text_field(&mut errors, &body, "html", usize::MAX, false),
                subject: text_field(&mut errors, &body, "subject", usize::MAX, false),
                message_id: text_field(&mut errors, &body, "messageId", MAX_MESSAGE_ID, false)
                    .and_then(|id| message_ids(&id).into_iter().next()),
                in_reply_to: ids_field(&mut errors, &body, "inReplyTo"),
                references: ids_field(&mut errors, &body, "references"),
                received_at: time_field(&mut errors, &body, "receivedAt", now),
            };
            Request::Message(input)
        }
        Some("status") => {
            let provider_message_id = text_field(
                &mut errors,
                &body,
                "providerMessageId",
                MAX_PROVIDER_MESSAGE_ID,
                true,
            )
            .unwrap_or_default();
            let status = match text_field(&mut errors, &body, "status", 20, true).as_deref() {
                Some("SENT") => Some(DeliveryStatus::Sent),
                Some("DELIVERED") => Some(DeliveryStatus::Delivered),
                Some("READ") => Some(DeliveryStatus::Read),
                Some("FAILED") => Some(DeliveryStatus::Failed),
                Some(other) => {
                    errors.add(
                        "status",
                        UserErrorCode::Invalid,
                        format!("status {other:?} is not one of SENT, DELIVERED, READ, FAILED"),
                    );
                    None
                }
                None => None,
            };
            let reason = text_field(&mut errors, &body, "reason", MAX_REASON, false)
                .filter(|r| !r.trim().is_empty());
            let at = time_field(&mut errors, &body, "at", now);
            Request::Status(StatusInput {
                provider_message_id,
                status: status.unwrap_or(DeliveryStatus::Sent),
                reason,
                at,
            })
        }
        Some("call") => Request::Call(call_report(&mut errors, &body, now)),
        Some("room") => Request::Room(room_report(&mut errors, &body)),
        other => {
            return Err(AppError::invalid(
                "type",
                UserErrorCode::Invalid,
                format!(
                    "type {:?} is not one of message, status, call, room",
                    other.unwrap_or_default()
                ),
            ));
        }
    };
    errors.finish()?;
    Ok(request)
}

/// The channel's message whose provider id is `provider_message_id`, if any.
async fn by_provider_id<C: ConnectionTrait>(
    conn: &C,
    channel: &channel::Model,
    provider_message_id: &str,
) -> AppResult<Option<message::Model>> {
    Ok(tenancy::in_org::<message::Entity>(channel.org_id)
        .filter(message::Column::ProviderChannelId.eq(channel.id))
        .filter(message::Column::ProviderMessageId.eq(provider_message_id))
        .one(conn)
        .await?)
}

/// Conversations a message may continue: on this channel, neither anonymized nor archived.
fn continuable(channel: &channel::Model) -> sea_orm::Select<conversation::Entity> {
    tenancy::in_org::<conversation::Entity>(channel.org_id)
        .filter(conversation::Column::ChannelId.eq(channel.id))
        .filter(conversation::Column::AnonymizedAt.is_null())
        .filter(conversation::Column::ArchivedAt.is_null())
}

/// The conversation number in a subject token such as `[#123]`.
pub fn subject_token(subject: &str) -> Option<i64> {
    let mut rest = subject;
    while let Some(start) = rest.find("[#") {
        let after = &rest[start + 2..];
        if let Some(end) = after.find(']')
            && let Ok(number) = after[..end].trim().parse::<i64>()
        {
            return Some(number);
        }
        rest = after;
    }
    None
}

/// The conversation an inbound message continues, if any: SMS and WhatsApp, the contact's open
/// or pending conversation on the channel (the latest); email, the conversation of a stored
/// message named by `In-Reply-To`/`References` (the latest), else the one numbered in a subject
/// token `[#N]` when the sender is its requester or a contact taking part.
async fn conversation_to_continue<C: ConnectionTrait>(
    conn: &C,
    channel: &channel::Model,
    sender: &contact::Model,
    input: &InboundInput,
) -> AppResult<Option<conversation::Model>> {
    if channel.channel_type != ChannelType::Email.as_str() {
        return Ok(continuable(channel)
            .filter(conversation::Column::RequesterId.eq(sender.id))
            .filter(conversation::Column::Status.ne(Status::Closed.as_str()))
            .order_by_desc(conversation::Column::LastMessageAt)
            .one(conn)
            .await?);
    }
    let ids: Vec<&String> = input.in_reply_to.iter().chain(&input.references).collect();
    if !ids.is_empty() {
        let earlier = tenancy::in_org::<message::Entity>(channel.org_id)
            .filter(message::Column::MessageIdHeader.is_in(ids.iter().map(|s| s.as_str())))
            .order_by_desc(message::Column::CreatedAt)
            .all(conn)
            .await?;
        for message in earlier {
            if let Some(found) = continuable(channel)
                .filter(conversation::Column::Id.eq(message.conversation_id))
                .one(conn)
                .await?
            {
                return Ok(Some(found));
            }
        }
    }
    let Some(number) = input.subject.as_deref().and_then(subject_token) else {
        return Ok(None);
    };
    let Some(found) = continuable(channel)
        .filter(conversation::Column::Number.eq(number))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let takes_part = found.requester_id == sender.id
        || tenancy::in_org::<conversation_participant::Entity>(channel.org_id)
            .filter(conversation_participant::Column::ConversationId.eq(found.id))
            .filter(conversation_participant::Column::ParticipantKind.eq("CONTACT"))
            .filter(conversation_participant::Column::ParticipantId.eq(sender.id))
            .one(conn)
            .await?
            .is_some();
    Ok(takes_part.then_some(found))
}

/// Records an inbound message on `channel` (EMAIL, SMS or WhatsApp; active): finds or creates the
/// sender's contact, continues a conversation ([`conversation_to_continue`]) or starts an
/// inbound one in the channel's default queue, and appends the message through the same path
/// as `recordInboundMessage`. A repeated provider message id writes nothing and answers with
/// the first message.
pub async fn receive(
    db: &DatabaseConnection,
    config: &Config,
    channel: &channel::Model,
    input: InboundInput,
) -> AppResult<Received> {
    let channel_type = ChannelType::parse(&channel.channel_type);
    let mut errors = Errors::default();
    let sender = match channel_type {
        Some(ChannelType::Email) => errors.email("from", &input.from),
        Some(ChannelType::Sms | ChannelType::Whatsapp) => errors.phone("from", &input.from),
        _ => {
            return Err(AppError::invalid(
                "type",
                UserErrorCode::Invalid,
                "inbound messages are recorded on EMAIL, SMS and WHATSAPP channels",
            ));
        }
    };
    errors.finish()?;
    if channel.status != "ACTIVE" {
        return Err(AppError::invalid(
            "channel",
            UserErrorCode::InvalidState,
            "the channel is archived; it takes no inbound messages",
        ));
    }
    let email = channel_type == Some(ChannelType::Email);
    let now = Utc::now();
    let checked = check_inbound(
        config,
        InboundMessage {
            text: input.text.clone(),
            html: input.html.clone(),
            email_subject: input.subject.clone(),
            received_at: input.received_at,
            ..Default::default()
        },
        now,
    )
    .map_err(ingest_fields)?;

    let txn = db::begin_write(db).await?;
    let result = async {
        if let Some(existing) = by_provider_id(&txn, channel, &input.provider_message_id).await? {
            return Ok(repeat(existing));
        }
        let address = if email {
            SenderAddress::Email(&sender)
        } else {
            SenderAddress::Phone(&sender)
        };
        let (contact, new_contact) =
            find_or_create_by_address(&txn, channel.org_id, address, input.from_name.clone())
                .await?;
        let (conversation, new_conversation) =
            match conversation_to_continue(&txn, channel, &contact, &input).await? {
                Some(conversation) => (conversation, false),
                None => {
                    let subject = checked.email_subject.as_deref().map(|s| {
                        s.chars()
                            .take(crate::conversations::service::MAX_SUBJECT)
                            .collect::<String>()
                    });
                    let opening = Opening {
                        direction: Direction::Inbound,
                        kind: Kind::Direct,
                        subject: subject.filter(|_| email),
                        priority: Priority::Normal,
                        queue_id: channel.default_queue_id,
                        assignee_id: None,
                        at: checked.received_at.unwrap_or(now),
                    };
                    (insert(&txn, None, channel, &contact, opening).await?, true)
                }
            };
        let author_id = (conversation.requester_id != contact.id).then_some(contact.id);
        let message = append_inbound(
            &txn,
            conversation,
            InboundMessage {
                conversation_id: Uuid::nil(),
                text: checked.text.clone(),
                html: checked.html.clone(),
                from: Some(sender.clone()),
                to: input.to.clone(),
                email_subject: checked.email_subject.clone().filter(|_| email),
                external_id: None,
                received_at: checked.received_at,
                author_id,
                provider_message_id: Some((channel.id, input.provider_message_id.clone())),
                message_id_header: input.message_id.clone().filter(|_| email),
            },
            None,
        )
        .await
        .map_err(ingest_fields)?;
        Ok(Received {
            message,
            duplicate: false,
            new_conversation,
            new_contact,
        })
    }
    .await;
    let failed = match result {
        Ok(received) if received.duplicate => {
            txn.rollback().await?;
            return Ok(received);
        }
        Ok(received) => match txn.commit().await {
            Ok(()) => return Ok(received),
            Err(error) => AppError::from(error),
        },
        Err(error) => {
            txn.rollback().await?;
            error
        }
    };
    // A concurrent request may have stored the same provider message id first (the unique index
    // refused ours): answer with that message.
    if matches!(failed, AppError::Validation(_)) {
        return Err(failed);
    }
    match by_provider_id(db, channel, &input.provider_message_id).await? {
        Some(existing) => Ok(repeat(existing)),
        None => Err(failed),
    }
}

fn repeat(existing: message::Model) -> Received {
    Received {
        message: existing,
        duplicate: true,
        new_conversation: false,
        new_contact: false,
    }
}

/// Field errors of the message path, renamed to the ingest body's fields.
fn ingest_fields(error: AppError) -> AppError {
    match error {
        AppError::Validation(mut errors) => {
            for error in &mut errors {
                for part in &mut error.field {
                    if part == "emailSubject" {
                        *part = "subject".into();
                    }
                }
            }
            AppError::Validation(errors)
        }
        other => other,
    }
}

/// Moves the delivery status of the channel's outbound message with this provider id through
/// the status history (`MESSAGE_STATUS_CHANGED`). A move backwards (a report arriving late) or
/// to the current status changes nothing and says so. Unknown id: `NotFound`.
pub async fn update_status(
    db: &DatabaseConnection,
    channel: &channel::Model,
    input: StatusInput,
) -> AppResult<StatusChange> {
    let txn = db::begin_write(db).await?;
    let Some(message) = by_provider_id(&txn, channel, &input.provider_message_id).await? else {
        txn.rollback().await?;
        return Err(AppError::NotFound(
            format!(
                "message of this channel with providerMessageId {:?}",
                input.provider_message_id
            )
            .into(),
        ));
    };
    if message.direction != Direction::Outbound.as_str() {
        txn.rollback().await?;
        return Err(AppError::invalid(
            "providerMessageId",
            UserErrorCode::InvalidState,
            "the message is inbound; delivery statuses are for outbound messages",
        ));
    }
    let current = DeliveryStatus::parse(&message.delivery_status);
    if !current.may_become(input.status) {
        txn.rollback().await?;
        let why = if current == input.status {
            format!("the message is {} already", current.as_str())
        } else {
            format!(
                "the message is {}; it cannot move back to {}",
                current.as_str(),
                input.status.as_str()
            )
        };
        return Ok(StatusChange {
            message,
            ignored: Some(why),
        });
    }
    let at = input.at.unwrap_or_else(Utc::now);
    let updated = record_delivery_status(&txn, message, input.status, input.reason, at).await?;
    txn.commit().await?;
    Ok(StatusChange {
        message: updated,
        ignored: None,
    })
}

/// Parses a call report: `providerCallId` (required), `callId` (our id of an outbound call,
/// on its first report), `leg` (`AGENT` or `CONTACT`, the default), `from`, `to`, `status`,
/// `reason`, `keypad` (digits), `recordingUrl`,
/// `recordingSeconds`, `transcription`, `at`.
fn call_report(
    errors: &mut Errors,
    body: &serde_json::Map<String, Value>,
    now: DateTime<Utc>,
) -> CallReport {
    use crate::calls::service::{MAX_REASON as MAX_CALL_REASON, MAX_TRANSCRIPTION, MAX_URL};
    let provider_call_id = text_field(
        errors,
        body,
        "providerCallId",
        MAX_PROVIDER_MESSAGE_ID,
        true,
    )
    .unwrap_or_default();
    let call_id = text_field(errors, body, "callId", 100, false).and_then(|id| {
        match crate::graphql::relay::decode_id(&async_graphql::ID(id), "Call") {
            Ok(id) => Some(id),
            Err(_) => {
                errors.add(
                    "callId",
                    UserErrorCode::Invalid,
                    "callId is not the id of a call",
                );
                None
            }
        }
    });
    let status = text_field(errors, body, "status", 20, false).and_then(|name| {
        let status = CallStatus::parse(&name);
        if status.is_none() {
            errors.add(
                "status",
                UserErrorCode::Invalid,
                format!(
                    "status {name:?} is not one of QUEUED, RINGING, IN_PROGRESS, COMPLETED, \
                     BUSY, NO_ANSWER, FAILED, CANCELED, VOICEMAIL"
                ),
            );
        }
        status
    });
    let leg = text_field(errors, body, "leg", 20, false).and_then(|name| {
        let leg = crate::calls::CallLeg::parse(&name);
        if leg.is_none() {
            errors.add(
                "leg",
                UserErrorCode::Invalid,
                format!("leg {name:?} is not one of AGENT, CONTACT"),
            );
        }
        leg
    });
    let keypad = text_field(errors, body, "keypad", 100, false);
    if keypad.as_deref().is_some_and(|k| {
        !k.chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
    }) {
        errors.add(
            "keypad",
            UserErrorCode::Invalid,
            "keypad holds the digits 0-9, * and # only",
        );
    }
    let recording_seconds = match body.get("recordingSeconds") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_i64().and_then(|v| i32::try_from(v).ok()) {
            Some(seconds) if seconds >= 0 => Some(seconds),
            _ => {
                errors.add(
                    "recordingSeconds",
                    UserErrorCode::Invalid,
                    "recordingSeconds must be a whole number of seconds, 0 or more",
                );
                None
            }
        },
    };
    CallReport {
        provider_call_id,
        call_id,
        leg,
        from: text_field(errors, body, "from", 32, false),
        to: text_field(errors, body, "to", 32, false),
        status,
        reason: text_field(errors, body, "reason", MAX_CALL_REASON, false)
            .filter(|r| !r.trim().is_empty()),
        keypad,
        recording_url: text_field(errors, body, "recordingUrl", MAX_URL, false),
        recording_seconds,
        transcription: text_field(errors, body, "transcription", MAX_TRANSCRIPTION, false),
        at: time_field(errors, body, "at", now),
    }
}

/// Reads the global id (or raw UUID) of a `kind` in `field`.
fn id_field(
    errors: &mut Errors,
    body: &serde_json::Map<String, Value>,
    field: &str,
    kind: &str,
    required: bool,
) -> Option<uuid::Uuid> {
    let text = text_field(errors, body, field, 100, required)?;
    let id = crate::graphql::relay::decode_id(&async_graphql::ID(text.clone()), kind)
        .ok()
        .or_else(|| uuid::Uuid::parse_str(&text).ok());
    if id.is_none() {
        errors.add(
            field,
            UserErrorCode::Invalid,
            format!("{field} is not the id of a {kind}"),
        );
    }
    id
}

/// Parses a room report: `roomId` (required), `status` (`FAILED`: the room failed),
/// `recordingId` with `recordingStatus` (`FAILED`: the recording could not be processed),
/// `reason`; at least one of `status` and `recordingStatus`.
fn room_report(
    errors: &mut Errors,
    body: &serde_json::Map<String, Value>,
) -> crate::rooms::service::RoomReport {
    let room_id = id_field(errors, body, "roomId", "Room", true);
    let mut failed_state = |field: &str| match text_field(errors, body, field, 20, false) {
        None => false,
        Some(state) if state == "FAILED" => true,
        Some(other) => {
            errors.add(
                field,
                UserErrorCode::Invalid,
                format!("{field} {other:?} is not FAILED (the only one a provider reports)"),
            );
            true
        }
    };
    let failed = failed_state("status");
    let recording_failed = failed_state("recordingStatus");
    let recording_id = id_field(errors, body, "recordingId", "RoomRecording", false);
    let recording_given = body.get("recordingId").is_some_and(|v| !v.is_null());
    if recording_failed && !recording_given {
        errors.add(
            "recordingId",
            UserErrorCode::Required,
            "recordingId is required with recordingStatus",
        );
    }
    if recording_given && !recording_failed {
        errors.add(
            "recordingStatus",
            UserErrorCode::Required,
            "recordingStatus is required with recordingId",
        );
    }
    if !failed && !recording_failed && !recording_given {
        errors.add(
            "status",
            UserErrorCode::Required,
            "give status or recordingStatus",
        );
    }
    let reason = text_field(
        errors,
        body,
        "reason",
        crate::calls::service::MAX_REASON,
        false,
    )
    .filter(|r| !r.trim().is_empty());
    crate::rooms::service::RoomReport {
        room_id: room_id.unwrap_or_default(),
        failed,
        reason,
        failed_recording_id: recording_id,
    }
}

/// Carries out a parsed ingest request on `channel`; `now` is the app clock's time (call
/// reports without `at` happen then).
pub async fn handle(
    db: &DatabaseConnection,
    config: &Config,
    channel: &channel::Model,
    request: Request,
    now: DateTime<Utc>,
) -> AppResult<Outcome> {
    match request {
        Request::Call(input) => crate::calls::service::report(db, channel, input, now)
            .await
            .map(Outcome::Call),
        Request::Room(input) => crate::rooms::service::report(db, channel.org_id, input, now)
            .await
            .map(Outcome::Room),
        Request::Message(input) => receive(db, config, channel, input)
            .await
            .map(Outcome::Received),
        Request::Status(input) => update_status(db, channel, input).await.map(Outcome::Status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_read_from_header_values() {
        assert_eq!(
            message_ids("<a@x> <b@y>\r\n <c@z>"),
            ["<a@x>", "<b@y>", "<c@z>"]
        );
        assert_eq!(message_ids("a@x"), ["<a@x>"]);
        assert!(message_ids("  ").is_empty());
        assert!(message_ids("<>").is_empty());
    }

    #[test]
    fn subject_tokens_name_a_conversation_number() {
        assert_eq!(subject_token("Re: Broken [#42] again"), Some(42));
        assert_eq!(subject_token("[#x] then [#7]"), Some(7));
        assert_eq!(subject_token("Re: #42"), None);
    }
}
