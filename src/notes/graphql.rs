//! GraphQL types and mutations of notes, and the notes connection of a conversation (rules in
//! [`super::service`]).

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::service::{self, MAX_ITEMS, NewNote};
use crate::conversations::graphql::Conversation;
use crate::error::{AppError, AppResult, FieldError};
use crate::graphql::context::{ById, ContextExt, page_selects};
use crate::graphql::payload::{BulkOutcome, UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, SortDirection, encode_id};
use crate::users::graphql::User;

/// A note.
#[derive(Clone)]
pub struct Note(pub entity::note::Model);

/// An internal note on a conversation, visible to staff only.
#[Object]
impl Note {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("Note", self.0.id)
    }

    /// The text.
    async fn body(&self) -> &str {
        &self.0.body
    }

    /// Who wrote it; null when the user is gone.
    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.author_user_id else {
            return Ok(None);
        };
        Ok(ctx.app().load::<entity::user::Entity>(id).await?.map(User))
    }

    /// The conversation it is on.
    async fn conversation(&self, ctx: &Context<'_>) -> async_graphql::Result<Conversation> {
        ctx.app()
            .load::<entity::conversation::Entity>(self.0.conversation_id)
            .await?
            .map(Conversation)
            .ok_or_else(|| AppError::NotFound("conversation".into()).into())
    }

    /// When it was written (earlier than it was added for imported notes).
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// The notes of a conversation the caller has loaded, by creation time, as a connection; the
/// authors of the page are loaded with one statement when selected.
pub async fn notes_connection(
    ctx: &Context<'_>,
    conversation_id: Uuid,
    args: PageArgs,
    direction: SortDirection,
) -> async_graphql::Result<Connection<Note>> {
    let app = ctx.app();
    let (page, total) = service::list(
        app.db(),
        app.principal()?,
        conversation_id,
        direction,
        &args,
    )
    .await?;
    if page_selects(ctx, &["author"]) {
        app.loader::<ById<entity::user::Entity>>()?
            .load_many(page.items.iter().filter_map(|(_, n)| n.author_user_id))
            .await?;
    }
    Ok(Connection::new(page.map(Note), total))
}

/// A note to add.
#[derive(InputObject)]
pub struct AddNoteInput {
    /// The conversation.
    pub conversation_id: ID,
    /// The text, 1 to 10,000 characters.
    pub body: String,
}

/// One note of an import.
#[derive(InputObject)]
pub struct ImportNoteInput {
    /// The text, 1 to 10,000 characters.
    pub body: String,
    /// When it was written: now when omitted, earlier for imports, never in the future.
    pub created_at: Option<DateTime<Utc>>,
    /// Who wrote it: the caller when omitted; another user needs the ADMIN role.
    pub author_id: Option<ID>,
}

/// Notes to add to one conversation.
#[derive(InputObject)]
pub struct AddNotesInput {
    /// The conversation.
    pub conversation_id: ID,
    /// The notes, at most 1,000, added in order.
    pub notes: Vec<ImportNoteInput>,
}

/// Changes to a note.
#[derive(InputObject)]
pub struct UpdateNoteInput {
    /// The note.
    pub id: ID,
    /// The new text, 1 to 10,000 characters.
    pub body: String,
}

/// Names one note.
#[derive(InputObject)]
pub struct NoteIdInput {
    /// The note.
    pub id: ID,
}

/// Result of a mutation on one note.
#[derive(SimpleObject)]
pub struct NotePayload {
    /// The note after the change; null when it failed.
    pub note: Option<Note>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

impl NotePayload {
    fn from(result: AppResult<entity::note::Model>) -> async_graphql::Result<Self> {
        let (note, user_errors) = split(result)?;
        Ok(Self {
            note: note.map(Note),
            user_errors,
        })
    }
}

/// Result of `removeNote`.
#[derive(SimpleObject)]
pub struct RemoveNotePayload {
    /// The id of the removed note; null when it failed.
    pub removed_note_id: Option<ID>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Result of `addNotes`.
#[derive(SimpleObject)]
pub struct AddNotesPayload {
    /// One outcome per note, in input order; empty when the whole call was refused.
    pub outcomes: Vec<BulkOutcome<Note>>,
    /// Notes that were added.
    pub succeeded: usize,
    /// Notes that failed (and wrote nothing).
    pub failed: usize,
    /// Why the whole call was refused (nothing was written); empty otherwise.
    pub user_errors: Vec<UserError>,
}

/// Moves an item's errors under `input.notes.<index>`.
fn under_item(index: usize, errors: Vec<FieldError>) -> Vec<UserError> {
    crate::graphql::payload::under_item("notes", index, errors)
}

/// Note mutations.
#[derive(Default)]
pub struct NoteMutation;

#[Object]
impl NoteMutation {
    /// Adds a note by the caller to a conversation (AGENT).
    async fn add_note(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: AddNoteInput,
    ) -> async_graphql::Result<NotePayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("conversationId", &input.conversation_id, "Conversation") {
            Ok(id) => service::add(app.db(), principal, id, &input.body).await,
            Err(e) => Err(e),
        };
        NotePayload::from(result)
    }

    /// Adds up to 1,000 notes to a conversation, e.g. imported from another system (AGENT;
    /// notes in another user's name need ADMIN). Each note succeeds or fails alone, with its
    /// outcome in input order; its errors are under `["input", "notes", "<index>", …]`.
    /// Backdated notes keep their `createdAt`; the activity log shows when they were added.
    /// Costs one per note.
    #[graphql(complexity = "input.notes.len() + child_complexity")]
    async fn add_notes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: AddNotesInput,
    ) -> async_graphql::Result<AddNotesPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = if input.notes.len() > MAX_ITEMS {
            Err(AppError::invalid(
                "notes",
                crate::error::UserErrorCode::TooLong,
                format!(
                    "at most {MAX_ITEMS} notes per call; got {}",
                    input.notes.len()
                ),
            ))
        } else {
            match input_id("conversationId", &input.conversation_id, "Conversation") {
                Ok(id) => {
                    let items = input
                        .notes
                        .into_iter()
                        .map(|n| {
                            let mut errors = Vec::new();
                            let author_id = match n.author_id {
                                None => None,
                                Some(id) => match input_id("authorId", &id, "User") {
                                    Ok(id) => Some(id),
                                    Err(e) => {
                                        errors.extend(e.into_field_errors().unwrap_or_default());
                                        None
                                    }
                                },
                            };
                            let note = NewNote {
                                body: n.body,
                                created_at: n.created_at,
                                author_id,
                            };
                            (note, errors)
                        })
                        .collect();
                    service::add_many(app.db(), principal, id, items).await
                }
                Err(e) => Err(e),
            }
        };
        let (outcomes, user_errors) = split(result)?;
        let outcomes: Vec<BulkOutcome<Note>> = outcomes
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(index, outcome)| match outcome {
                Ok(model) => BulkOutcome {
                    index,
                    action: None,
                    node: Some(Note(model)),
                    user_errors: Vec::new(),
                },
                Err(errors) => BulkOutcome {
                    index,
                    action: None,
                    node: None,
                    user_errors: under_item(index, errors),
                },
            })
            .collect();
        let succeeded = outcomes.iter().filter(|o| o.node.is_some()).count();
        Ok(AddNotesPayload {
            failed: outcomes.len() - succeeded,
            succeeded,
            outcomes,
            user_errors,
        })
    }

    /// Changes a note's text (its author, or an ADMIN; `FORBIDDEN` otherwise).
    async fn update_note(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UpdateNoteInput,
    ) -> async_graphql::Result<NotePayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("id", &input.id, "Note") {
            Ok(id) => service::update(app.db(), principal, id, &input.body).await,
            Err(e) => Err(e),
        };
        NotePayload::from(result)
    }

    /// Removes a note (its author, or an ADMIN; `FORBIDDEN` otherwise).
    async fn remove_note(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: NoteIdInput,
    ) -> async_graphql::Result<RemoveNotePayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("id", &input.id, "Note") {
            Ok(id) => service::remove(app.db(), principal, id).await,
            Err(e) => Err(e),
        };
        let (removed, user_errors) = split(result)?;
        Ok(RemoveNotePayload {
            removed_note_id: removed.map(|n| encode_id("Note", n.id)),
            user_errors,
        })
    }
}
