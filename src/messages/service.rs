//! Business rules of messages, over a transaction.

use chrono::{DateTime, Utc};
use entity::{conversation, message, message_status_event};
use sea_orm::{ActiveModelTrait, ConnectionTrait, IntoActiveModel, Set};
use serde_json::json;
use uuid::Uuid;

use crate::conversations::{Party, SUBJECT, event_types};
use crate::error::AppResult;
use crate::events::{self, Subject};

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
        }
    }
}

fn addresses(list: &[String]) -> Option<serde_json::Value> {
    (!list.is_empty()).then(|| json!(list))
}

/// Appends a message to `conversation`: stores it with its first delivery status, moves the
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
    let message = message::ActiveModel {
        id: Set(Uuid::now_v7()),
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
    Ok((message, conversation))
}
