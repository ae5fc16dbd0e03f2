//! Business rules of notes, over a transaction.
//!
//! Rules:
//! - A note is an internal text of 1 to [`MAX_BODY`] characters (trimmed) on a conversation of
//!   the caller's organization, by a user. Anonymized conversations take no notes
//!   (`INVALID_STATE`).
//! - `addNotes` imports up to [`MAX_ITEMS`] notes in one transaction. Each item is checked on its
//!   own and applied in its own savepoint; failed items write nothing and get their errors, the
//!   others are committed. A note may be backdated (`createdAt` in the past, for imports) but not
//!   dated in the future. A note written in another user's name (`authorId`) needs the ADMIN
//!   role (`FORBIDDEN` on the item otherwise); the author must be a user of the organization.
//! - Every note records `NOTE_ADDED` on its conversation with payload `{noteId, backdated}`; the
//!   event is dated when the note was added (the activity log shows the import), the note keeps
//!   its own `createdAt`.
//! - Only the author or an ADMIN may change (`NOTE_UPDATED`) or remove (`NOTE_REMOVED`) a note.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{conversation, note};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, Set, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use crate::auth::{Permission, Principal, Role};
use crate::conversations::{SUBJECT, event_types};
use crate::db;
use crate::error::{AppError, AppResult, FieldError, UserErrorCode};
use crate::events::{self, Subject};
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::tenancy;
use crate::validate::Errors;

/// Longest note body, in characters.
pub const MAX_BODY: usize = 10_000;
/// Most notes in one `addNotes` call.
pub const MAX_ITEMS: usize = 1_000;

/// A note to import.
#[derive(Clone, Debug, Default)]
pub struct NewNote {
    /// The text.
    pub body: String,
    /// When it was written; now when `None`. Not in the future.
    pub created_at: Option<DateTime<Utc>>,
    /// Who wrote it; the caller when `None`.
    pub author_id: Option<Uuid>,
}

/// An item's outcome: the note, or why it was refused.
pub type NoteOutcome = Result<note::Model, Vec<FieldError>>;

/// The conversation `id` of the caller's organization if it takes notes; errors at `field`.
async fn writable_conversation<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    id: Uuid,
    field: &str,
) -> AppResult<conversation::Model> {
    let conversation = crate::conversations::service::find(conn, org_id, id, field).await?;
    if conversation.anonymized_at.is_some() {
        return Err(AppError::invalid(
            field,
            UserErrorCode::InvalidState,
            format!(
                "conversation {} is anonymized and takes no notes",
                conversation.number
            ),
        ));
    }
    Ok(conversation)
}

fn body(errors: &mut Errors, field: &str, value: &str) -> String {
    errors.required_text(field, value, MAX_BODY)
}

/// Inserts a checked note and records `NOTE_ADDED`.
async fn insert<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    conversation_id: Uuid,
    author_id: Uuid,
    body: String,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<note::Model> {
    let id = Uuid::now_v7();
    let created = note::ActiveModel {
        id: Set(id),
        org_id: Set(principal.org_id),
        conversation_id: Set(conversation_id),
        author_user_id: Set(Some(author_id)),
        body: Set(body),
        created_at: Set(created_at),
        updated_at: Set(created_at),
    }
    .insert(conn)
    .await?;
    events::record(
        conn,
        principal.org_id,
        Some(principal.user_id()),
        event_types::NOTE_ADDED,
        Subject::new(SUBJECT, conversation_id),
        json!({ "noteId": id, "backdated": created_at < now }),
    )
    .await?;
    Ok(created)
}

/// Adds a note by the caller to a conversation (AGENT).
pub async fn add(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    text: &str,
) -> AppResult<note::Model> {
    principal.require(Permission::WorkConversations)?;
    let mut errors = Errors::default();
    let text = body(&mut errors, "body", text);
    errors.finish()?;
    let txn = db::begin_write(db).await?;
    writable_conversation(&txn, principal.org_id, conversation_id, "conversationId").await?;
    let now = Utc::now();
    let created = insert(
        &txn,
        principal,
        conversation_id,
        principal.user_id(),
        text,
        now,
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

/// Adds up to [`MAX_ITEMS`] notes to a conversation (AGENT; other authors need ADMIN), one
/// outcome per item in order. Each item comes with the errors its caller already found (a
/// malformed author id); such an item is still checked, and never applied. Item errors have
/// paths relative to the item (`["input", "body"]`).
pub async fn add_many(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    items: Vec<(NewNote, Vec<FieldError>)>,
) -> AppResult<Vec<NoteOutcome>> {
    principal.require(Permission::WorkConversations)?;
    if items.len() > MAX_ITEMS {
        return Err(AppError::invalid(
            "notes",
            UserErrorCode::TooLong,
            format!("at most {MAX_ITEMS} notes per call; got {}", items.len()),
        ));
    }
    let txn = db::begin_write(db).await?;
    writable_conversation(&txn, principal.org_id, conversation_id, "conversationId").await?;
    let now = Utc::now();
    let me = principal.user_id();
    let admin = principal.has_role(Role::Admin);
    // The other authors, with one query.
    let others: Vec<Uuid> = tenancy::distinct(
        &items
            .iter()
            .filter_map(|(n, _)| n.author_id.filter(|a| *a != me))
            .collect::<Vec<_>>(),
    );
    let authors: HashMap<Uuid, entity::user::Model> = if others.is_empty() || !admin {
        HashMap::new()
    } else {
        tenancy::by_ids::<entity::user::Entity>(principal.org_id, others)
            .all(&txn)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect()
    };
    let mut outcomes = Vec::with_capacity(items.len());
    for (item, known) in items {
        let mut errors = Errors(known);
        let text = body(&mut errors, "body", &item.body);
        let created_at = match item.created_at {
            Some(at) if at > now => {
                errors.add(
                    "createdAt",
                    UserErrorCode::Invalid,
                    "createdAt must not be in the future",
                );
                now
            }
            Some(at) => at,
            None => now,
        };
        let author = match item.author_id {
            None => me,
            Some(id) if id == me => me,
            Some(_) if !admin => {
                errors.add(
                    "authorId",
                    UserErrorCode::Forbidden,
                    "adding notes in another user's name needs the ADMIN role",
                );
                me
            }
            Some(id) => {
                if !authors.contains_key(&id) {
                    errors.add("authorId", UserErrorCode::NotFound, "no such user");
                }
                id
            }
        };
        if !errors.0.is_empty() {
            outcomes.push(Err(errors.0));
            continue;
        }
        let savepoint = txn.begin().await?;
        match insert(
            &savepoint,
            principal,
            conversation_id,
            author,
            text,
            created_at,
            now,
        )
        .await
        {
            Ok(model) => {
                savepoint.commit().await?;
                outcomes.push(Ok(model));
            }
            Err(error) => {
                savepoint.rollback().await?;
                outcomes.push(Err(error.into_field_errors()?));
            }
        }
    }
    txn.commit().await?;
    Ok(outcomes)
}

/// The note `id` of the caller's organization if the caller may change it (its author or an
/// ADMIN): unknown is `NOT_FOUND`, someone else's `FORBIDDEN`, both at `id`.
async fn own_note<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    id: Uuid,
) -> AppResult<note::Model> {
    let found = tenancy::by_id::<note::Entity>(principal.org_id, id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid("id", UserErrorCode::NotFound, "no such note"))?;
    if found.author_user_id != Some(principal.user_id()) && !principal.has_role(Role::Admin) {
        return Err(AppError::invalid(
            "id",
            UserErrorCode::Forbidden,
            "only the note's author or an ADMIN may change it",
        ));
    }
    Ok(found)
}

/// Changes a note's body (its author or an ADMIN).
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    text: &str,
) -> AppResult<note::Model> {
    principal.require(Permission::WorkConversations)?;
    let mut errors = Errors::default();
    let text = body(&mut errors, "body", text);
    errors.finish()?;
    let txn = db::begin_write(db).await?;
    let current = own_note(&txn, principal, id).await?;
    writable_conversation(&txn, principal.org_id, current.conversation_id, "id").await?;
    if current.body == text {
        txn.commit().await?;
        return Ok(current);
    }
    let conversation_id = current.conversation_id;
    let mut model = current.into_active_model();
    model.body = Set(text);
    model.updated_at = Set(Utc::now());
    let updated = model.update(&txn).await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        event_types::NOTE_UPDATED,
        Subject::new(SUBJECT, conversation_id),
        json!({ "noteId": id }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Removes a note (its author or an ADMIN); returns it as it was.
pub async fn remove(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
) -> AppResult<note::Model> {
    principal.require(Permission::WorkConversations)?;
    let txn = db::begin_write(db).await?;
    let current = own_note(&txn, principal, id).await?;
    note::Entity::delete_many()
        .filter(note::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        event_types::NOTE_REMOVED,
        Subject::new(SUBJECT, current.conversation_id),
        json!({ "noteId": id }),
    )
    .await?;
    txn.commit().await?;
    Ok(current)
}

/// One page of a conversation's notes by creation time (AGENT). The caller has already loaded
/// the conversation in its organization.
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    conversation_id: Uuid,
    direction: SortDirection,
    args: &PageArgs,
) -> AppResult<(Page<note::Model>, TotalCount)> {
    principal.require(Permission::WorkConversations)?;
    let select = tenancy::in_org::<note::Entity>(principal.org_id)
        .filter(note::Column::ConversationId.eq(conversation_id));
    let sort = Sort {
        name: "CREATED_AT",
        column: note::Column::CreatedAt,
        direction,
        value: |m: &note::Model| SortValue::Time(m.created_at),
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "notes", &sort, args).await?;
    Ok((page, total))
}
