//! Anonymization rules over one transaction.
//!
//! A contact's anonymization runs inside the mutation's transaction, so a request is `COMPLETED`
//! when the mutation returns; its row keeps who asked, when, and what was erased. Conversations the
//! contact requested lose their subject and every message body (both directions, since replies
//! quote the contact); messages the contact wrote elsewhere lose their bodies. Counts, numbers,
//! statuses and timestamps stay. Tags and group memberships stay (they carry no personal data).

use chrono::Utc;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, IntoActiveModel,
    QueryFilter, Set,
};
use serde_json::json;
use uuid::Uuid;

use entity::{
    anonymization_request as request, contact, contact_attribute_value, conversation, event,
    message,
};

use crate::auth::{Permission, Principal};
use crate::db;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::events::{self, Subject};
use crate::tenancy;

/// What an anonymization request erases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetType {
    /// A contact and its conversations' personal data.
    Contact,
    /// One conversation (with the inbox).
    Conversation,
    /// One message (with the inbox).
    Message,
}

impl TargetType {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Contact => "CONTACT",
            TargetType::Conversation => "CONVERSATION",
            TargetType::Message => "MESSAGE",
        }
    }

    /// Parses a stored name (unknown names read as `Contact`, the only kind written so far).
    pub fn parse(name: &str) -> Self {
        match name {
            "CONVERSATION" => TargetType::Conversation,
            "MESSAGE" => TargetType::Message,
            _ => TargetType::Contact,
        }
    }
}

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestStatus {
    /// Accepted, not yet processed.
    Pending,
    /// Personal data erased.
    Completed,
}

impl RequestStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "PENDING",
            RequestStatus::Completed => "COMPLETED",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Self {
        if name == "COMPLETED" {
            RequestStatus::Completed
        } else {
            RequestStatus::Pending
        }
    }
}

/// Why a conversation closed when anonymization forced it.
pub const FORCED_CLOSE_REASON: &str = "ANONYMIZED";

/// Anonymizes a contact (ADMIN). Open or pending conversations the contact requested block it
/// with `CONFLICT` unless `force`, which closes them first.
pub async fn anonymize_contact(
    db: &DatabaseConnection,
    attachments: &crate::attachments::store::Store,
    principal: &Principal,
    contact_id: Uuid,
    force: bool,
) -> AppResult<(request::Model, contact::Model)> {
    principal.require(Permission::Anonymize)?;
    let org_id = principal.org_id;
    let actor = Some(principal.user_id());
    let txn = db::begin_write(db).await?;
    let current = tenancy::by_id::<contact::Entity>(org_id, contact_id)
        .one(&txn)
        .await?
        .ok_or_else(|| {
            AppError::invalid("contactId", UserErrorCode::NotFound, "no such contact")
        })?;
    if current.anonymized_at.is_some() {
        return Err(AppError::invalid(
            "contactId",
            UserErrorCode::InvalidState,
            "the contact is already anonymized",
        ));
    }
    let open = conversation::Entity::find()
        .filter(conversation::Column::OrgId.eq(org_id))
        .filter(conversation::Column::RequesterId.eq(contact_id))
        .filter(conversation::Column::Status.ne("CLOSED"))
        .all(&txn)
        .await?;
    if !open.is_empty() && !force {
        return Err(AppError::invalid(
            "force",
            UserErrorCode::Conflict,
            format!(
                "the contact has {} conversation(s) not closed; close them or pass force",
                open.len()
            ),
        ));
    }
    let now = Utc::now();
    for conversation in &open {
        let mut model = conversation.clone().into_active_model();
        model.status = Set("CLOSED".to_string());
        model.close_reason = Set(Some(FORCED_CLOSE_REASON.to_string()));
        model.closed_at = Set(Some(now));
        model.updated_at = Set(now);
        model.update(&txn).await?;
        events::record(
            &txn,
            org_id,
            actor,
            "CONVERSATION_CLOSED",
            Subject::new("Conversation", conversation.id),
            json!({ "reason": FORCED_CLOSE_REASON, "previousStatus": conversation.status }),
        )
        .await?;
    }

    let requested = Query::select()
        .column(conversation::Column::Id)
        .from(conversation::Entity)
        .and_where(conversation::Column::OrgId.eq(org_id))
        .and_where(conversation::Column::RequesterId.eq(contact_id))
        .to_owned();
    let (anonymized_conversations, erased_messages, files) = erase_conversations(
        &txn,
        org_id,
        conversation::Column::Id.in_subquery(requested),
        Some(contact_id),
        now,
    )
    .await?;

    // Their call campaign receivers: numbers and keypad input erased, pending ones cancelled.
    crate::call_campaigns::service::erase_contact(&txn, org_id, contact_id, now).await?;
    contact_attribute_value::Entity::delete_many()
        .filter(contact_attribute_value::Column::OrgId.eq(org_id))
        .filter(contact_attribute_value::Column::ContactId.eq(contact_id))
        .exec(&txn)
        .await?;
    // Earlier events about the contact may quote personal data (external id, consent source).
    event::Entity::update_many()
        .col_expr(event::Column::Payload, Expr::value(json!({})))
        .filter(event::Column::OrgId.eq(org_id))
        .filter(event::Column::SubjectType.eq("Contact"))
        .filter(event::Column::SubjectId.eq(contact_id))
        .exec(&txn)
        .await?;

    let mut model = current.into_active_model();
    model.display_name = Set(None);
    model.first_name = Set(None);
    model.last_name = Set(None);
    model.middle_name = Set(None);
    model.email = Set(None);
    model.phone = Set(None);
    model.additional_emails = Set(json!([]));
    model.additional_phones = Set(json!([]));
    model.avatar_url = Set(None);
    model.external_id = Set(None);
    model.company = Set(None);
    model.address = Set(json!({}));
    model.note = Set(None);
    model.birth_date = Set(None);
    model.consent = Set(json!({}));
    model.sort_name = Set(String::new());
    model.anonymized_at = Set(Some(now));
    model.updated_at = Set(now);
    let contact = model.update(&txn).await?;

    let request = request::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(org_id),
        target_type: Set(TargetType::Contact.as_str().to_string()),
        target_id: Set(contact_id),
        status: Set(RequestStatus::Completed.as_str().to_string()),
        force: Set(force),
        requested_by: Set(actor),
        requested_at: Set(now),
        processed_at: Set(Some(now)),
        closed_conversations: Set(count(open.len() as u64)),
        anonymized_conversations: Set(count(anonymized_conversations)),
        erased_messages: Set(count(erased_messages)),
    }
    .insert(&txn)
    .await?;
    events::record(
        &txn,
        org_id,
        actor,
        "CONTACT_ANONYMIZED",
        Subject::new("Contact", contact_id),
        json!({
            "requestId": request.id,
            "force": force,
            "closedConversations": request.closed_conversations,
            "anonymizedConversations": request.anonymized_conversations,
            "erasedMessages": request.erased_messages,
        }),
    )
    .await?;
    txn.commit().await?;
    let paths: Vec<std::path::PathBuf> = files.iter().map(|k| attachments.path(k)).collect();
    crate::attachments::store::Store::remove_all(paths).await;
    Ok((request, contact))
}

/// Erases the personal data of the organization's conversations matching `which` (and of the
/// messages `author` wrote elsewhere): subjects, rating comments and attribute values of the
/// conversations; bodies, email subjects, addresses and `Message-ID`s of their messages; note
/// bodies; the contact's number, keypad input, recording and transcription of their calls. Returns
/// (conversations anonymized, messages erased, storage keys of their deleted attachments).
async fn erase_conversations<C: sea_orm::ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    which: sea_orm::sea_query::SimpleExpr,
    author: Option<Uuid>,
    now: chrono::DateTime<Utc>,
) -> AppResult<(u64, u64, Vec<String>)> {
    use entity::{attachment, call, conversation_attribute_value, note};
    let ids: Vec<Uuid> = conversation::Entity::find()
        .filter(conversation::Column::OrgId.eq(org_id))
        .filter(which)
        .all(conn)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let none = || Expr::value(Option::<String>::None);
    let mut messages = Condition::any().add(message::Column::ConversationId.is_in(ids.clone()));
    if let Some(author) = author {
        messages = messages.add(message::Column::AuthorContactId.eq(author));
    }
    let erased_ids: Vec<Uuid> = message::Entity::find()
        .filter(message::Column::OrgId.eq(org_id))
        .filter(message::Column::AnonymizedAt.is_null())
        .filter(messages)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| m.id)
        .collect();
    let erased_messages = message::Entity::update_many()
        .col_expr(message::Column::TextBody, none())
        .col_expr(message::Column::HtmlBody, none())
        .col_expr(message::Column::EmailSubject, none())
        .col_expr(message::Column::FromAddress, none())
        .col_expr(message::Column::MessageIdHeader, none())
        .col_expr(
            message::Column::ToAddresses,
            Expr::value(Option::<serde_json::Value>::None),
        )
        .col_expr(
            message::Column::CcAddresses,
            Expr::value(Option::<serde_json::Value>::None),
        )
        .col_expr(
            message::Column::BccAddresses,
            Expr::value(Option::<serde_json::Value>::None),
        )
        .col_expr(message::Column::AnonymizedAt, Expr::value(now))
        .col_expr(message::Column::UpdatedAt, Expr::value(now))
        .filter(message::Column::OrgId.eq(org_id))
        .filter(message::Column::Id.is_in(erased_ids.clone()))
        .exec(conn)
        .await?
        .rows_affected;
    // Attachments of the erased messages: rows go now, files after the commit.
    let files: Vec<String> = attachment::Entity::find()
        .filter(attachment::Column::OrgId.eq(org_id))
        .filter(attachment::Column::MessageId.is_in(erased_ids.clone()))
        .all(conn)
        .await?
        .into_iter()
        .map(|a| a.storage_key)
        .collect();
    attachment::Entity::delete_many()
        .filter(attachment::Column::OrgId.eq(org_id))
        .filter(attachment::Column::MessageId.is_in(erased_ids))
        .exec(conn)
        .await?;
    note::Entity::update_many()
        .col_expr(note::Column::Body, Expr::value(String::new()))
        .col_expr(note::Column::UpdatedAt, Expr::value(now))
        .filter(note::Column::OrgId.eq(org_id))
        .filter(note::Column::ConversationId.is_in(ids.clone()))
        .exec(conn)
        .await?;
    conversation_attribute_value::Entity::delete_many()
        .filter(conversation_attribute_value::Column::OrgId.eq(org_id))
        .filter(conversation_attribute_value::Column::ConversationId.is_in(ids.clone()))
        .exec(conn)
        .await?;
    // Calls of the conversations (and the contact's other calls): the contact's number, keypad
    // input, recording and transcription go; times, durations and statuses stay.
    let mut calls = Condition::any().add(call::Column::ConversationId.is_in(ids.clone()));
    if let Some(author) = author {
        calls = calls.add(call::Column::ContactId.eq(author));
    }
    for (direction, number) in [
        ("INBOUND", call::Column::FromNumber),
        ("OUTBOUND", call::Column::ToNumber),
    ] {
        call::Entity::update_many()
            .col_expr(number, Expr::value(String::new()))
            .col_expr(call::Column::Keypad, none())
            .col_expr(call::Column::RecordingUrl, none())
            .col_expr(call::Column::Transcription, none())
            .filter(call::Column::OrgId.eq(org_id))
            .filter(call::Column::Direction.eq(direction))
            .filter(calls.clone())
            .exec(conn)
            .await?;
    }
    let anonymized_conversations = conversation::Entity::update_many()
        .col_expr(conversation::Column::Subject, none())
        .col_expr(conversation::Column::RatingComment, none())
        .col_expr(conversation::Column::AnonymizedAt, Expr::value(now))
        .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
        .filter(conversation::Column::OrgId.eq(org_id))
        .filter(conversation::Column::Id.is_in(ids))
        .filter(conversation::Column::AnonymizedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected;
    Ok((anonymized_conversations, erased_messages, files))
}

/// Anonymizes one conversation (ADMIN): its subject, rating comment, attribute values, message
/// bodies, email subjects and addresses, and note bodies. Not closed: `CONFLICT` unless `force`,
/// which closes it first. A second request is `INVALID_STATE`.
pub async fn anonymize_conversation(
    db: &DatabaseConnection,
    attachments: &crate::attachments::store::Store,
    principal: &Principal,
    conversation_id: Uuid,
    force: bool,
) -> AppResult<(request::Model, conversation::Model)> {
    use crate::conversations::{SUBJECT, event_types};
    principal.require(Permission::Anonymize)?;
    let org_id = principal.org_id;
    let actor = Some(principal.user_id());
    let txn = db::begin_write(db).await?;
    let current =
        crate::conversations::service::find(&txn, org_id, conversation_id, "conversationId")
            .await?;
    if current.anonymized_at.is_some() {
        return Err(AppError::invalid(
            "conversationId",
            UserErrorCode::InvalidState,
            "the conversation is already anonymized",
        ));
    }
    let closing = current.status != "CLOSED";
    if closing && !force {
        return Err(AppError::invalid(
            "force",
            UserErrorCode::Conflict,
            format!(
                "conversation {} is not closed; close it or pass force",
                current.number
            ),
        ));
    }
    let now = Utc::now();
    if closing {
        let mut model = current.clone().into_active_model();
        model.status = Set("CLOSED".to_string());
        model.pending_until = Set(None);
        model.close_reason = Set(Some(FORCED_CLOSE_REASON.to_string()));
        model.closed_at = Set(Some(now));
        model.updated_at = Set(now);
        model.update(&txn).await?;
        events::record(
            &txn,
            org_id,
            actor,
            event_types::CLOSED,
            Subject::new(SUBJECT, current.id),
            json!({ "reason": FORCED_CLOSE_REASON, "from": current.status }),
        )
        .await?;
    }
    let (_, erased_messages, files) = erase_conversations(
        &txn,
        org_id,
        conversation::Column::Id.eq(current.id),
        None,
        now,
    )
    .await?;
    let request = request::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(org_id),
        target_type: Set(TargetType::Conversation.as_str().to_string()),
        target_id: Set(current.id),
        status: Set(RequestStatus::Completed.as_str().to_string()),
        force: Set(force),
        requested_by: Set(actor),
        requested_at: Set(now),
        processed_at: Set(Some(now)),
        closed_conversations: Set(i32::from(closing)),
        anonymized_conversations: Set(1),
        erased_messages: Set(count(erased_messages)),
    }
    .insert(&txn)
    .await?;
    events::record(
        &txn,
        org_id,
        actor,
        event_types::ANONYMIZED,
        Subject::new(SUBJECT, current.id),
        json!({ "requestId": request.id, "force": force, "erasedMessages": request.erased_messages }),
    )
    .await?;
    let conversation =
        crate::conversations::service::find(&txn, org_id, conversation_id, "conversationId")
            .await?;
    txn.commit().await?;
    let paths: Vec<std::path::PathBuf> = files.iter().map(|k| attachments.path(k)).collect();
    crate::attachments::store::Store::remove_all(paths).await;
    Ok((request, conversation))
}

fn count(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
