//! GraphQL mutations for bulk contact writes and CSV import (semantics in [`super::bulk`] and
//! [`super::import`]).

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use uuid::Uuid;

use super::bulk::{self, BulkItem, BulkMode, ItemOutcome, MAX_ITEMS};
use super::graphql::{AttributeValueInput, Contact, ContactInput};
use super::import::{self, ImportOptions};
use crate::error::{AppError, AppResult, FieldError};
use crate::graphql::context::ContextExt;
use crate::graphql::payload::{BulkAction, BulkOutcome, UserError, input_id, split};

/// A contact in a bulk create or upsert: its fields (as in `createContact`), custom attribute
/// values and tags.
#[derive(InputObject)]
pub struct BulkContactInput {
    /// The contact's fields.
    #[graphql(flatten)]
    pub contact: ContactInput,
    /// Custom attribute values to set, validated against their definitions as in
    /// `setContactAttributes`; values not given stay.
    pub custom_attributes: Option<Vec<AttributeValueInput>>,
    /// Active tags to add; the contact's other tags stay.
    pub tag_ids: Option<Vec<ID>>,
}

/// A contact in a bulk update: which one, and its changes.
#[derive(InputObject)]
pub struct BulkUpdateContactInput {
    /// The contact.
    pub id: ID,
    /// The fields to change: omitted ones stay (or, with `replace`, are cleared), `null` clears.
    #[graphql(flatten)]
    pub contact: ContactInput,
    /// Custom attribute values to set, validated against their definitions as in
    /// `setContactAttributes`; `null` clears one, values not given stay.
    pub custom_attributes: Option<Vec<AttributeValueInput>>,
    /// Active tags to add; the contact's other tags stay.
    pub tag_ids: Option<Vec<ID>>,
}

/// Contacts to create.
#[derive(InputObject)]
pub struct CreateContactsInput {
    /// The contacts, at most 1,000.
    pub items: Vec<BulkContactInput>,
}

/// Contacts to update.
#[derive(InputObject)]
pub struct UpdateContactsInput {
    /// The changes, at most 1,000; the same contact may appear more than once (applied in order).
    pub items: Vec<BulkUpdateContactInput>,
    /// Replace all fields of each contact (omitted fields are cleared, as in `replaceContact`)
    /// instead of changing only the given ones.
    #[graphql(default)]
    pub replace: bool,
}

/// Contacts to create or update, matched by key.
#[derive(InputObject)]
pub struct UpsertContactsInput {
    /// The contacts, at most 1,000. Each is matched on its `externalId` if given, else its
    /// `email`, else its `phone`; a match is updated (omitted fields stay), no match creates a
    /// contact, several matches are an `AMBIGUOUS` error.
    pub items: Vec<BulkContactInput>,
}

/// What a CSV column fills.
#[derive(InputObject)]
pub struct ImportColumnInput {
    /// The column's name as written in the header row.
    pub column: String,
    /// A contact field (`email`, `firstName`, `address.city`, …), `tags` (tag names separated by
    /// `;`) or `attributes.<identifier>` of a contact attribute; null ignores the column.
    pub field: Option<String>,
}

/// Contacts to import from CSV text.
#[derive(InputObject)]
pub struct ImportContactsInput {
    /// The CSV text (at most 1 MiB and 1,000 data rows). Its first row names the columns: contact
    /// fields (`firstName`, `email`, `phone`, `externalId`, `company`, `city`, …; case, spaces, `_`
    /// and `-` do not matter), `tags`, and contact attributes (`attributes.<identifier>` or the
    /// bare identifier). Empty cells are not given; lists are separated by `;`; dates are
    /// `YYYY-MM-DD`; booleans `true`/`false` (or yes/no, 1/0); select attributes take an
    /// option's value or label.
    pub csv: String,
    /// Upsert each row (match on externalId, else email, else phone) instead of creating.
    #[graphql(default)]
    pub upsert: bool,
    /// Explicit targets for columns, overriding what their header names mean.
    pub mapping: Option<Vec<ImportColumnInput>>,
    /// The field delimiter, one character; `,` by default.
    pub delimiter: Option<String>,
    /// Active tags added to every imported contact.
    pub tag_ids: Option<Vec<ID>>,
}

/// Result of a bulk contact mutation.
#[derive(SimpleObject)]
pub struct BulkContactsPayload {
    /// One outcome per item (per data row for an import), in input order; empty when the whole
    /// call was refused.
    pub outcomes: Vec<BulkOutcome<Contact>>,
    /// Items that succeeded (and were committed).
    pub succeeded: usize,
    /// Items that failed (and wrote nothing).
    pub failed: usize,
    /// Why the whole call was refused (nothing was written); empty otherwise.
    pub user_errors: Vec<UserError>,
}

/// Moves an item's errors under `input.items.<index>`.
fn under_item(index: usize, errors: Vec<FieldError>) -> Vec<UserError> {
    crate::graphql::payload::under_item("items", index, errors)
}

fn payload(
    result: AppResult<Vec<ItemOutcome>>,
    item_errors: impl Fn(usize, Vec<FieldError>) -> Vec<UserError>,
) -> async_graphql::Result<BulkContactsPayload> {
    let (outcomes, user_errors) = split(result)?;
    let outcomes: Vec<BulkOutcome<Contact>> = outcomes
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(index, outcome)| match outcome {
            Ok((action, model)) => BulkOutcome {
                index,
                action: Some(match action {
                    bulk::BulkAction::Created => BulkAction::Created,
                    bulk::BulkAction::Updated => BulkAction::Updated,
                }),
                node: Some(Contact(model)),
                user_errors: Vec::new(),
            },
            Err(errors) => BulkOutcome {
                index,
                action: None,
                node: None,
                user_errors: item_errors(index, errors),
            },
        })
        .collect();
    let succeeded = outcomes.iter().filter(|o| o.node.is_some()).count();
    Ok(BulkContactsPayload {
        failed: outcomes.len() - succeeded,
        succeeded,
        outcomes,
        user_errors,
    })
}

/// Decodes tag ids of an item; errors on `input.tagIds.<i>` (relative to the item).
fn tag_ids(ids: Option<Vec<ID>>, errors: &mut Vec<FieldError>) -> Vec<Uuid> {
    let mut decoded = Vec::new();
    for (i, id) in ids.unwrap_or_default().iter().enumerate() {
        match input_id(&format!("tagIds.{i}"), id, "Tag") {
            Ok(id) => decoded.push(id),
            Err(AppError::Validation(e)) => errors.extend(e),
            Err(_) => {}
        }
    }
    decoded
}

fn item(
    id: Option<Result<Uuid, AppError>>,
    contact: ContactInput,
    custom_attributes: Option<Vec<AttributeValueInput>>,
    tags: Option<Vec<ID>>,
) -> (BulkItem, Vec<FieldError>) {
    let mut errors = Vec::new();
    let id = match id {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(AppError::Validation(e))) => {
            errors.extend(e);
            None
        }
        Some(Err(_)) => None,
    };
    let tag_ids = tag_ids(tags, &mut errors);
    let item = BulkItem {
        id,
        fields: contact.into(),
        attributes: custom_attributes
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.identifier, v.value.map(|j| j.0)))
            .collect(),
        tag_ids,
    };
    (item, errors)
}

/// The cost of an import: about one per row (lines, capped at the row limit).
pub fn csv_cost(csv: &str) -> usize {
    csv.bytes().filter(|b| *b == b'\n').count().min(MAX_ITEMS) + 1
}

/// Bulk contact mutations.
#[derive(Default)]
pub struct ContactBulkMutation;

#[Object]
impl ContactBulkMutation {
    /// Creates up to 1,000 contacts (AGENT). Each item succeeds or fails alone: valid items are
    /// committed even when others fail, and each gets its outcome, in input order. Costs one per
    /// item.
    #[graphql(complexity = "input.items.len() + child_complexity")]
    async fn create_contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CreateContactsInput,
    ) -> async_graphql::Result<BulkContactsPayload> {
        let app = ctx.app();
        let items = input
            .items
            .into_iter()
            .map(|i| item(None, i.contact, i.custom_attributes, i.tag_ids))
            .collect();
        let result = bulk::run(app.db(), app.principal()?, BulkMode::Create, items).await;
        payload(result, under_item)
    }

    /// Updates up to 1,000 contacts by id (AGENT): a patch, or a full update with `replace`.
    /// Each item succeeds or fails alone, with its outcome in input order. Costs one per item.
    #[graphql(complexity = "input.items.len() + child_complexity")]
    async fn update_contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UpdateContactsInput,
    ) -> async_graphql::Result<BulkContactsPayload> {
        let app = ctx.app();
        let items = input
            .items
            .into_iter()
            .map(|i| {
                let id = input_id("id", &i.id, "Contact");
                item(Some(id), i.contact, i.custom_attributes, i.tag_ids)
            })
            .collect();
        let mode = BulkMode::Update {
            replace: input.replace,
        };
        let result = bulk::run(app.db(), app.principal()?, mode, items).await;
        payload(result, under_item)
    }

    /// Creates or updates up to 1,000 contacts, matching each on its externalId, else its email,
    /// else its phone, in the caller's organization only (AGENT). The outcome's `action` says
    /// which happened. Costs one per item.
    #[graphql(complexity = "input.items.len() + child_complexity")]
    async fn upsert_contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UpsertContactsInput,
    ) -> async_graphql::Result<BulkContactsPayload> {
        let app = ctx.app();
        let items = input
            .items
            .into_iter()
            .map(|i| item(None, i.contact, i.custom_attributes, i.tag_ids))
            .collect();
        let result = bulk::run(app.db(), app.principal()?, BulkMode::Upsert, items).await;
        payload(result, under_item)
    }

    /// Imports contacts from CSV text, creating (or with `upsert` upserting) one contact per data
    /// row on the same path as `createContacts` (AGENT). Outcome `index` is the 0-based data row
    /// (the header is not counted); a row's errors are on `["input", "csv", "<index>",
    /// "<column>"]`. Unknown columns, malformed CSV or more than 1,000 rows refuse the whole
    /// import. Costs about one per line.
    #[graphql(complexity = "csv_cost(&input.csv) + child_complexity")]
    async fn import_contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ImportContactsInput,
    ) -> async_graphql::Result<BulkContactsPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let mut errors = Vec::new();
        let ids = tag_ids(input.tag_ids, &mut errors);
        let result = if errors.is_empty() {
            let options = ImportOptions {
                upsert: input.upsert,
                mapping: input
                    .mapping
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| (m.column, m.field))
                    .collect(),
                delimiter: input.delimiter,
                tag_ids: ids,
            };
            import::import(app.db(), principal, &input.csv, options).await
        } else {
            Err(AppError::Validation(errors))
        };
        payload(result, |_, errors| {
            errors.into_iter().map(UserError::from).collect()
        })
    }
}
