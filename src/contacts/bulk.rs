//! Bulk contact writes: create, update or upsert up to [`MAX_ITEMS`] contacts in one call, each
//! item with its own outcome. CSV import ([`super::import`]) runs on the same path.
//!
//! Semantics:
//! - More than [`MAX_ITEMS`] items refuse the whole call; nothing is written.
//! - The call is one transaction. Every item is checked first without writing (fields, custom
//!   attribute values against their definitions, tags); an item that passes is applied in its own
//!   savepoint, so an item that fails rolls back alone. Items that fail validation or a business
//!   rule get their errors in their outcome; the others are committed. A fault (database error)
//!   rolls back the whole call.
//! - Items apply in input order, and each sees the ones before it: a second item with an external
//!   id taken by an earlier item of the same call is refused (`TAKEN`), and a second upsert of
//!   the same key updates the contact the first one created.
//! - Each applied item records the events its single mutation records: `CONTACT_CREATED` or
//!   `CONTACT_UPDATED`, then `CONTACT_ATTRIBUTES_SET` when it sets attribute values and
//!   `CONTACT_TAGGED` when it adds tags.
//! - Upsert matches on the first match key the item gives: `externalId`, else the primary
//!   `email` (compared in lower case), else the primary `phone` (E.164). No match creates a
//!   contact; one match updates it as a patch (absent fields stay); several contacts with that
//!   email or phone is an `AMBIGUOUS` error on the item. An item without any of the three keys is
//!   refused (`REQUIRED`). Only the caller's organization is searched.
//! - Tags are added to the contact's tags (none are removed); attribute values given are set,
//!   others stay.
//!
//! Item errors have paths relative to the item: `["input", "email"]` means the item's `email`.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sea_orm::{
    ActiveValue, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::service::{self, CheckedValue, ContactFields};
use crate::auth::{Permission, Principal};
use crate::custom_attributes::service::AttributeEntity;
use crate::db;
use crate::error::{AppError, AppResult, FieldError, UserErrorCode};
use crate::events::{self, Subject};
use crate::tags::service::TagStatus;
use crate::tenancy;

use entity::{contact, contact_tag};

/// Most items in one bulk call (and data rows in one import).
pub const MAX_ITEMS: usize = 1_000;

/// What an item did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkAction {
    /// A contact was created.
    Created,
    /// An existing contact was updated.
    Updated,
}

/// How the items of a call apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkMode {
    /// Every item creates a contact.
    Create,
    /// Every item updates the contact in its `id`; with `replace` absent fields are cleared.
    Update {
        /// Full update instead of a patch.
        replace: bool,
    },
    /// Every item updates the contact it matches, or creates one.
    Upsert,
}

/// One item of a bulk call.
#[derive(Clone, Debug, Default)]
pub struct BulkItem {
    /// The contact to update (update mode only).
    pub id: Option<Uuid>,
    /// The fields: for create absent fields are empty, for update and upsert they stay.
    pub fields: ContactFields,
    /// Custom attribute values to set; `None` clears one.
    pub attributes: Vec<(String, Option<Value>)>,
    /// Tags to add.
    pub tag_ids: Vec<Uuid>,
}

/// An item's outcome: what it did and the contact, or why it was refused.
pub type ItemOutcome = Result<(BulkAction, contact::Model), Vec<FieldError>>;

/// An item that passed the checks that need no writes.
struct Checked<'a> {
    fields: ContactFields,
    attributes: Vec<CheckedValue<'a>>,
    tag_ids: Vec<Uuid>,
    /// The normalised match keys (upsert).
    external_id: Option<String>,
    email: Option<String>,
    phone: Option<String>,
}

/// Contacts by upsert key, for the keys the call's items use; kept in step with every write of
/// the call so later items see earlier ones.
#[derive(Default)]
struct Matcher {
    external_ids: HashMap<String, Vec<Uuid>>,
    emails: HashMap<String, Vec<Uuid>>,
    phones: HashMap<String, Vec<Uuid>>,
    contacts: HashMap<Uuid, contact::Model>,
}

impl Matcher {
    fn keys(model: &contact::Model) -> [(usize, Option<&String>); 3] {
        [
            (0, model.external_id.as_ref()),
            (1, model.email.as_ref()),
            (2, model.phone.as_ref()),
        ]
    }

    fn map(&mut self, which: usize) -> &mut HashMap<String, Vec<Uuid>> {
        match which {
            0 => &mut self.external_ids,
            1 => &mut self.emails,
            _ => &mut self.phones,
        }
    }

    /// Records the contact's current state (replacing what was known of it).
    fn remember(&mut self, model: contact::Model) {
        if let Some(old) = self.contacts.remove(&model.id) {
            for (which, key) in Self::keys(&old) {
                if let Some(ids) = key.cloned().and_then(|k| self.map(which).get_mut(&k)) {
                    ids.retain(|id| *id != old.id);
                }
            }
        }
        for (which, key) in Self::keys(&model) {
            // Only keys some item asks for are tracked.
            if let Some(ids) = key.cloned().and_then(|k| self.map(which).get_mut(&k))
                && !ids.contains(&model.id)
            {
                ids.push(model.id);
            }
        }
        self.contacts.insert(model.id, model);
    }
}

fn text_of(value: &ActiveValue<Option<String>>) -> Option<String> {
    match value {
        ActiveValue::Set(v) | ActiveValue::Unchanged(v) => v.clone(),
        ActiveValue::NotSet => None,
    }
}

/// Applies `items` and returns one outcome per item, in order. Each item comes with the errors
/// its caller already found (a malformed id, a CSV cell of the wrong type): such an item is
/// still checked, so its outcome lists all its problems, and is never applied. Refuses the
/// whole call when there are more than [`MAX_ITEMS`] items.
pub async fn run(
    db: &DatabaseConnection,
    principal: &Principal,
    mode: BulkMode,
    items: Vec<(BulkItem, Vec<FieldError>)>,
) -> AppResult<Vec<ItemOutcome>> {
    principal.require(Permission::WorkContacts)?;
    if items.len() > MAX_ITEMS {
        return Err(AppError::invalid(
            "items",
            UserErrorCode::TooLong,
            format!("at most {MAX_ITEMS} items per call; got {}", items.len()),
        ));
    }
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let txn = db::begin_write(db).await?;

    // Definitions and tags once for the whole call.
    let definitions = if items.iter().any(|(i, _)| !i.attributes.is_empty()) {
        crate::custom_attributes::service::list(&txn, principal, AttributeEntity::Contact, true)
            .await?
    } else {
        Vec::new()
    };
    let wanted_tags: HashSet<Uuid> = items
        .iter()
        .flat_map(|(i, _)| i.tag_ids.iter().copied())
        .collect();
    let tags: HashMap<Uuid, entity::tag::Model> = if wanted_tags.is_empty() {
        HashMap::new()
    } else {
        tenancy::by_ids::<entity::tag::Entity>(principal.org_id, wanted_tags)
            .all(&txn)
            .await?
            .into_iter()
            .map(|t| (t.id, t))
            .collect()
    };

    // Checks that need no writes, for every item.
    let mut checked: Vec<CheckedItem<'_>> = Vec::with_capacity(items.len());
    for (item, errors) in items {
        checked.push(check(mode, item, errors, &definitions, &tags)?);
    }

    // Update: the contacts, with one query. Upsert: the candidates for every key, with one query
    // per kind of key.
    let mut matcher = Matcher::default();
    match mode {
        BulkMode::Create => {}
        BulkMode::Update { .. } => {
            let ids: HashSet<Uuid> = checked
                .iter()
                .filter_map(|c| c.as_ref().ok().and_then(|(id, _)| *id))
                .collect();
            for model in tenancy::by_ids::<contact::Entity>(principal.org_id, ids)
                .all(&txn)
                .await?
            {
                matcher.remember(model);
            }
        }
        BulkMode::Upsert => {
            for c in checked.iter().filter_map(|c| c.as_ref().ok()) {
                let c = &c.1;
                if let Some(key) = &c.external_id {
                    matcher.external_ids.entry(key.clone()).or_default();
                } else if let Some(key) = &c.email {
                    matcher.emails.entry(key.clone()).or_default();
                } else if let Some(key) = &c.phone {
                    matcher.phones.entry(key.clone()).or_default();
                }
            }
            let columns = [
                (contact::Column::ExternalId, 0),
                (contact::Column::Email, 1),
                (contact::Column::Phone, 2),
            ];
            for (column, which) in columns {
                let keys: Vec<String> = matcher.map(which).keys().cloned().collect();
                if keys.is_empty() {
                    continue;
                }
                for model in tenancy::in_org::<contact::Entity>(principal.org_id)
                    .filter(column.is_in(keys))
                    .all(&txn)
                    .await?
                {
                    matcher.remember(model);
                }
            }
        }
    }

    // Tags the contacts the call may update already have, with one query.
    let mut tagged: HashSet<(Uuid, Uuid)> = HashSet::new();
    if !tags.is_empty() && !matcher.contacts.is_empty() {
        tagged = contact_tag::Entity::find()
            .filter(contact_tag::Column::OrgId.eq(principal.org_id))
            .filter(contact_tag::Column::ContactId.is_in(matcher.contacts.keys().copied()))
            .filter(contact_tag::Column::TagId.is_in(tags.keys().copied()))
            .all(&txn)
            .await?
            .into_iter()
            .map(|r| (r.contact_id, r.tag_id))
            .collect();
    }

    let mut outcomes = Vec::with_capacity(checked.len());
    for item in checked {
        let (id, item) = match item {
            Ok(item) => item,
            Err(errors) => {
                outcomes.push(Err(errors));
                continue;
            }
        };
        let target = match target(mode, id, &item, &matcher) {
            Ok(target) => target,
            Err(errors) => {
                outcomes.push(Err(errors));
                continue;
            }
        };
        let savepoint = txn.begin().await?;
        match apply(&savepoint, principal, mode, target, item, &tagged).await {
            Ok((action, model, added)) => {
                savepoint.commit().await?;
                tagged.extend(added.into_iter().map(|tag| (model.id, tag)));
                matcher.remember(model.clone());
                outcomes.push(Ok((action, model)));
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

/// An item that passed the checks without writes (with its contact id, for updates), or its
/// errors.
type CheckedItem<'a> = Result<(Option<Uuid>, Checked<'a>), Vec<FieldError>>;

/// The checks of one item that need no writes: fields, attribute values, tags.
fn check<'a>(
    mode: BulkMode,
    item: BulkItem,
    mut errors: Vec<FieldError>,
    definitions: &'a [entity::custom_attribute_definition::Model],
    tags: &HashMap<Uuid, entity::tag::Model>,
) -> AppResult<CheckedItem<'a>> {
    let fields = match mode {
        BulkMode::Update { replace: true } | BulkMode::Create => item.fields.as_replacement(),
        BulkMode::Update { replace: false } | BulkMode::Upsert => item.fields,
    };
    let (mut external_id, mut email, mut phone) = (None, None, None);
    match service::validated(&fields) {
        Ok(model) => {
            external_id = text_of(&model.external_id);
            email = text_of(&model.email);
            phone = text_of(&model.phone);
        }
        Err(error) => errors.extend(error.into_field_errors()?),
    }
    let attributes =
        match service::check_attribute_values(definitions, &item.attributes, "customAttributes") {
            Ok(checked) => checked,
            Err(error) => {
                errors.extend(error.into_field_errors()?);
                Vec::new()
            }
        };
    for (i, id) in item.tag_ids.iter().enumerate() {
        let path = format!("tagIds.{i}");
        match tags.get(id) {
            None => errors.push(FieldError::new(
                &path,
                UserErrorCode::NotFound,
                "no such tag",
            )),
            Some(t) if TagStatus::parse(&t.status) == TagStatus::Inactive => {
                errors.push(FieldError::new(
                    &path,
                    UserErrorCode::InvalidState,
                    format!("tag {:?} is inactive and cannot be applied", t.name),
                ));
            }
            Some(_) => {}
        }
    }
    if mode == BulkMode::Upsert
        && errors.is_empty()
        && [&external_id, &email, &phone].iter().all(|k| k.is_none())
    {
        errors.push(FieldError::new(
            "",
            UserErrorCode::Required,
            "an upsert item needs externalId, email or phone to match on",
        ));
    }
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let mut tag_ids = Vec::new();
    for id in item.tag_ids {
        if !tag_ids.contains(&id) {
            tag_ids.push(id);
        }
    }
    Ok(Ok((
        item.id,
        Checked {
            fields,
            attributes,
            tag_ids,
            external_id,
            email,
            phone,
        },
    )))
}

/// What an item writes to.
enum Target {
    New,
    Existing(Box<contact::Model>),
}

fn target(
    mode: BulkMode,
    id: Option<Uuid>,
    item: &Checked<'_>,
    matcher: &Matcher,
) -> Result<Target, Vec<FieldError>> {
    match mode {
        BulkMode::Create => Ok(Target::New),
        BulkMode::Update { .. } => id
            .and_then(|id| matcher.contacts.get(&id))
            .map(|m| Target::Existing(Box::new(m.clone())))
            .ok_or_else(|| {
                vec![FieldError::new(
                    "id",
                    UserErrorCode::NotFound,
                    "no such contact",
                )]
            }),
        BulkMode::Upsert => {
            let (field, key, found) = if let Some(key) = &item.external_id {
                ("externalId", key, matcher.external_ids.get(key))
            } else if let Some(key) = &item.email {
                ("email", key, matcher.emails.get(key))
            } else if let Some(key) = &item.phone {
                ("phone", key, matcher.phones.get(key))
            } else {
                return Err(vec![FieldError::new(
                    "",
                    UserErrorCode::Required,
                    "an upsert item needs externalId, email or phone to match on",
                )]);
            };
            let found = found.map(Vec::as_slice).unwrap_or_default();
            match found {
                [] => Ok(Target::New),
                [id] => {
                    let model = matcher.contacts.get(id).cloned().ok_or_else(|| {
                        vec![FieldError::new(
                            field,
                            UserErrorCode::NotFound,
                            "no such contact",
                        )]
                    })?;
                    if model.anonymized_at.is_some() {
                        return Err(vec![FieldError::new(
                            field,
                            UserErrorCode::InvalidState,
                            format!("the contact with {field} {key:?} is anonymized"),
                        )]);
                    }
                    Ok(Target::Existing(Box::new(model)))
                }
                several => Err(vec![FieldError::new(
                    field,
                    UserErrorCode::Ambiguous,
                    format!(
                        "{} contacts have {field} {key:?}; give an externalId, or update one by id",
                        several.len()
                    ),
                )]),
            }
        }
    }
}

/// Writes one checked item inside its savepoint; returns what it did, the contact, and the tags
/// it added. `tagged` holds the (contact, tag) pairs that exist.
async fn apply<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    mode: BulkMode,
    target: Target,
    item: Checked<'_>,
    tagged: &HashSet<(Uuid, Uuid)>,
) -> AppResult<(BulkAction, contact::Model, Vec<Uuid>)> {
    let (action, model) = match target {
        Target::New => {
            let model = service::new_contact(principal, item.fields)?;
            (
                BulkAction::Created,
                service::insert_contact(conn, principal, model).await?,
            )
        }
        Target::Existing(current) => {
            let replace = matches!(mode, BulkMode::Update { replace: true });
            (
                BulkAction::Updated,
                service::update_loaded(conn, principal, *current, item.fields, replace).await?,
            )
        }
    };
    let fresh = action == BulkAction::Created;
    if !item.attributes.is_empty() {
        service::write_attribute_values(conn, principal, model.id, &item.attributes, fresh).await?;
    }
    let added: Vec<Uuid> = item
        .tag_ids
        .iter()
        .copied()
        .filter(|tag| !tagged.contains(&(model.id, *tag)))
        .collect();
    add_tags(conn, principal, model.id, &added).await?;
    Ok((action, model, added))
}

/// Adds (checked, distinct, not yet applied) tags to a contact and records `CONTACT_TAGGED`.
async fn add_tags<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    contact_id: Uuid,
    added: &[Uuid],
) -> AppResult<()> {
    if added.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    // A microsecond apart, so the contact's tags list in input order.
    contact_tag::Entity::insert_many(added.iter().zip(0i64..).map(|(tag_id, i)| {
        contact_tag::ActiveModel {
            contact_id: Set(contact_id),
            tag_id: Set(*tag_id),
            org_id: Set(principal.org_id),
            created_at: Set(now + chrono::Duration::microseconds(i)),
        }
    }))
    .exec_without_returning(conn)
    .await?;
    events::record(
        conn,
        principal.org_id,
        Some(principal.user_id()),
        "CONTACT_TAGGED",
        Subject::new("Contact", contact_id),
        json!({ "tagIds": added }),
    )
    .await?;
    Ok(())
}
