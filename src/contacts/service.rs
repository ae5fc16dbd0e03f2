//! Business rules for contacts.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, Func, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::{Permission, Principal};
use crate::channels::ChannelType;
use crate::custom_attributes::service::{AttributeEntity, TypedValue, check_value};
use crate::db::{self, like_pattern};
use crate::error::{AppError, AppResult, FieldError, UserErrorCode};
use crate::events::{self, Subject};
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::tenancy;
use crate::validate::Errors;

use entity::{contact, contact_attribute_value as attribute_value, contact_tag};

/// A postal address.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// Street and number.
    pub street: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// Region or state.
    pub region: Option<String>,
    /// Country (ISO 3166-1 alpha-2).
    pub country: Option<String>,
}

/// Contact fields. For `create` and `replace` an absent field is empty; for `update` (patch) an
/// absent field (`None`) stays and `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct ContactFields {
    /// Display name.
    pub display_name: Option<Option<String>>,
    /// First name.
    pub first_name: Option<Option<String>>,
    /// Last name.
    pub last_name: Option<Option<String>>,
    /// Middle name.
    pub middle_name: Option<Option<String>>,
    /// Primary email.
    pub email: Option<Option<String>>,
    /// Primary phone (E.164).
    pub phone: Option<Option<String>>,
    /// More emails.
    pub additional_emails: Option<Vec<String>>,
    /// More phones.
    pub additional_phones: Option<Vec<String>>,
    /// Avatar URL.
    pub avatar_url: Option<Option<String>>,
    /// External id (unique per organization).
    pub external_id: Option<Option<String>>,
    /// Company.
    pub company: Option<Option<String>>,
    /// Address.
    pub address: Option<Option<Address>>,
    /// Note.
    pub note: Option<Option<String>>,
    /// Birth date.
    pub birth_date: Option<Option<NaiveDate>>,
}

impl ContactFields {
    /// The fields for a full replacement: every absent field becomes "clear".
    pub fn as_replacement(mut self) -> Self {
        macro_rules! clear {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = Some(None); } )* };
        }
        clear!(
            display_name,
            first_name,
            last_name,
            middle_name,
            email,
            phone,
            avatar_url,
            external_id,
            company,
            address,
            note,
            birth_date
        );
        self.additional_emails.get_or_insert_with(Vec::new);
        self.additional_phones.get_or_insert_with(Vec::new);
        self
    }
}

fn sort_name(model: &contact::ActiveModel) -> String {
    let get = |v: &sea_orm::ActiveValue<Option<String>>| match v {
        sea_orm::ActiveValue::Set(s) | sea_orm::ActiveValue::Unchanged(s) => s.clone(),
        sea_orm::ActiveValue::NotSet => None,
    };
    let full = [get(&model.first_name), get(&model.last_name)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    get(&model.display_name)
        .or(Some(full).filter(|f| !f.is_empty()))
        .or_else(|| get(&model.email))
        .or_else(|| get(&model.phone))
        .unwrap_or_default()
        .to_lowercase()
}

/// Sets when the organization last talked with a contact, with the non-null sort keys that order
/// never-contacted contacts last in both directions. Conversations call this.
pub fn set_last_contacted(model: &mut contact::ActiveModel, at: Option<DateTime<Utc>>) {
    // 9999-12-31T23:59:59Z and 0001-01-01T00:00:00Z.
    let far_future =
        DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::MAX_UTC);
    let far_past =
        DateTime::from_timestamp(-62_135_596_800, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    model.last_contacted_at = Set(at);
    model.last_contacted_asc = Set(at.unwrap_or(far_future));
    model.last_contacted_desc = Set(at.unwrap_or(far_past));
}

fn list_of(errors: &mut Errors, field: &str, values: &[String], phone: bool) -> Value {
    if values.len() > 20 {
        errors.add(
            field,
            UserErrorCode::TooLong,
            format!("{field} takes at most 20 values"),
        );
    }
    let checked: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let path = format!("{field}.{i}");
            if phone {
                errors.phone(&path, v)
            } else {
                errors.email(&path, v)
            }
        })
        .collect();
    json!(checked)
}

/// Applies fields to a row, validating them; returns the changed field names.
fn apply(
    errors: &mut Errors,
    model: &mut contact::ActiveModel,
    fields: &ContactFields,
) -> Vec<&'static str> {
    let mut changed = Vec::new();
    macro_rules! text {
        ($field:ident, $name:literal, $max:expr) => {
            if let Some(value) = &fields.$field {
                changed.push($name);
                model.$field = Set(errors.optional_text($name, value.as_deref(), $max));
            }
        };
    }
    text!(display_name, "displayName", 200);
    text!(first_name, "firstName", 100);
    text!(last_name, "lastName", 100);
    text!(middle_name, "middleName", 100);
    text!(company, "company", 200);
    text!(note, "note", 10_000);
    text!(external_id, "externalId", 200);
    if let Some(email) = &fields.email {
        changed.push("email");
        model.email = Set(email
            .as_deref()
            .filter(|e| !e.trim().is_empty())
            .map(|e| errors.email("email", e)));
    }
    if let Some(phone) = &fields.phone {
        changed.push("phone");
        model.phone = Set(phone
            .as_deref()
            .filter(|p| !p.trim().is_empty())
            .map(|p| errors.phone("phone", p)));
    }
    if let Some(url) = &fields.avatar_url {
        changed.push("avatarUrl");
        model.avatar_url = Set(url.as_deref().map(|u| errors.url("avatarUrl", u)));
    }
    if let Some(list) = &fields.additional_emails {
        changed.push("additionalEmails");
        model.additional_emails = Set(list_of(errors, "additionalEmails", list, false));
    }
    if let Some(list) = &fields.additional_phones {
        changed.push("additionalPhones");
        model.additional_phones = Set(list_of(errors, "additionalPhones", list, true));
    }
    if let Some(address) = &fields.address {
        changed.push("address");
        if let Some(country) = address.as_ref().and_then(|a| a.country.as_deref())
            && !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()))
        {
            errors.add(
                "address.country",
                UserErrorCode::Invalid,
                format!("{country:?} is not a country code such as DK"),
            );
        }
        model.address = Set(json!(address.clone().unwrap_or_default()));
    }
    if let Some(birth_date) = &fields.birth_date {
        changed.push("birthDate");
        if birth_date.is_some_and(|d| d > Utc::now().date_naive()) {
            errors.add(
                "birthDate",
                UserErrorCode::Invalid,
                "birthDate is in the future",
            );
        }
        model.birth_date = Set(*birth_date);
    }
    changed
}

async fn external_id_taken<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    model: &contact::ActiveModel,
    except: Option<Uuid>,
) -> AppResult<Option<String>> {
    let sea_orm::ActiveValue::Set(Some(external_id)) = &model.external_id else {
        return Ok(None);
    };
    let mut select = tenancy::in_org::<contact::Entity>(org_id)
        .filter(contact::Column::ExternalId.eq(external_id));
    if let Some(id) = except {
        select = select.filter(contact::Column::Id.ne(id));
    }
    Ok((select.count(conn).await? > 0).then(|| external_id.clone()))
}

fn taken(external_id: &str) -> AppError {
    AppError::invalid(
        "externalId",
        UserErrorCode::Taken,
        format!("a contact with external id {external_id:?} exists"),
    )
}

/// Checks fields without touching the database; returns a row with them applied (normalised:
/// trimmed texts, lower-case email). Bulk paths use it to validate every item before writing.
pub fn validated(fields: &ContactFields) -> AppResult<contact::ActiveModel> {
    let mut model = <contact::ActiveModel as Default>::default();
    let mut errors = Errors::default();
    apply(&mut errors, &mut model, fields);
    errors.finish()?;
    Ok(model)
}

/// A new contact row from `fields` (absent fields are empty), validated; nothing is written.
pub fn new_contact(
    principal: &Principal,
    fields: ContactFields,
) -> AppResult<contact::ActiveModel> {
    new_contact_of(principal.org_id, fields)
}

/// [`new_contact`] for organization `org_id`.
fn new_contact_of(org_id: Uuid, fields: ContactFields) -> AppResult<contact::ActiveModel> {
    let fields = fields.as_replacement();
    let now = Utc::now();
    let mut model = contact::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(org_id),
        consent: Set(json!({})),
        anonymized_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    set_last_contacted(&mut model, None);
    let mut errors = Errors::default();
    apply(&mut errors, &mut model, &fields);
    errors.finish()?;
    model.sort_name = Set(sort_name(&model));
    Ok(model)
}

/// Inserts a row made by [`new_contact`] inside `conn` and records `CONTACT_CREATED`; refuses a
/// taken external id.
pub async fn insert_contact<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    model: contact::ActiveModel,
) -> AppResult<contact::Model> {
    if let Some(external_id) = external_id_taken(conn, principal.org_id, &model, None).await? {
        return Err(taken(&external_id));
    }
    let created = model.insert(conn).await?;
    events::record(
        conn,
        principal.org_id,
        Some(principal.user_id()),
        "CONTACT_CREATED",
        Subject::new("Contact", created.id),
        json!({ "externalId": created.external_id }),
    )
    .await?;
    Ok(created)
}

/// A sender's address, as inbound messages give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SenderAddress<'a> {
    /// A lower-cased email address.
    Email(&'a str),
    /// An E.164 phone number.
    Phone(&'a str),
}

/// The organization's contact whose primary email or phone is `address` (the oldest one; not
/// anonymized), or a new one with that address and `name` as display name, created by the system
/// (`CONTACT_CREATED` without an actor) inside `conn`. Returns it and whether it is new.
pub async fn find_or_create_by_address<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    address: SenderAddress<'_>,
    name: Option<String>,
) -> AppResult<(contact::Model, bool)> {
    let (column, value) = match address {
        SenderAddress::Email(email) => (contact::Column::Email, email),
        SenderAddress::Phone(phone) => (contact::Column::Phone, phone),
    };
    if let Some(found) = tenancy::in_org::<contact::Entity>(org_id)
        .filter(column.eq(value))
        .filter(contact::Column::AnonymizedAt.is_null())
        .order_by_asc(contact::Column::CreatedAt)
        .order_by_asc(contact::Column::Id)
        .one(conn)
        .await?
    {
        return Ok((found, false));
    }
    let mut fields = ContactFields {
        display_name: Some(name.filter(|n| !n.trim().is_empty())),
        ..Default::default()
    };
    match address {
        SenderAddress::Email(email) => fields.email = Some(Some(email.to_string())),
        SenderAddress::Phone(phone) => fields.phone = Some(Some(phone.to_string())),
    }
    let model = new_contact_of(org_id, fields)?;
    let created = model.insert(conn).await?;
    events::record(
        conn,
        org_id,
        None,
        "CONTACT_CREATED",
        Subject::new("Contact", created.id),
        json!({ "externalId": null }),
    )
    .await?;
    Ok((created, true))
}

/// Creates a contact (AGENT).
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    fields: ContactFields,
) -> AppResult<contact::Model> {
    principal.require(Permission::WorkContacts)?;
    let model = new_contact(principal, fields)?;
    let txn = db::begin_write(db).await?;
    let created = insert_contact(&txn, principal, model).await?;
    txn.commit().await?;
    Ok(created)
}

async fn find<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    id: Uuid,
    field: &str,
) -> AppResult<contact::Model> {
    tenancy::by_id::<contact::Entity>(org_id, id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid(field, UserErrorCode::NotFound, "no such contact"))
}

/// Updates a contact (AGENT): a patch, or with `replace` a full update that clears absent fields.
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    fields: ContactFields,
    replace: bool,
) -> AppResult<contact::Model> {
    principal.require(Permission::WorkContacts)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id, "id").await?;
    let updated = update_loaded(&txn, principal, current, fields, replace).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Updates the already loaded contact `current` inside `conn` (see [`update`]) and records
/// `CONTACT_UPDATED`.
pub async fn update_loaded<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    current: contact::Model,
    fields: ContactFields,
    replace: bool,
) -> AppResult<contact::Model> {
    let fields = if replace {
        fields.as_replacement()
    } else {
        fields
    };
    let id = current.id;
    if current.anonymized_at.is_some() {
        return Err(AppError::invalid(
            "id",
            UserErrorCode::InvalidState,
            "the contact is anonymized",
        ));
    }
    let external_id_before = current.external_id.clone();
    let mut model = current.into_active_model();
    let mut errors = Errors::default();
    let changed = apply(&mut errors, &mut model, &fields);
    errors.finish()?;
    // An unchanged external id is the contact's own.
    let kept =
        matches!(&model.external_id, sea_orm::ActiveValue::Set(v) if *v == external_id_before);
    if !kept
        && let Some(external_id) =
            external_id_taken(conn, principal.org_id, &model, Some(id)).await?
    {
        return Err(taken(&external_id));
    }
    model.sort_name = Set(sort_name(&model));
    model.updated_at = Set(Utc::now());
    let updated = model.update(conn).await?;
    events::record(
        conn,
        principal.org_id,
        Some(principal.user_id()),
        "CONTACT_UPDATED",
        Subject::new("Contact", id),
        json!({ "changed": changed, "replace": replace }),
    )
    .await?;
    Ok(updated)
}

/// The contacts with these ids in the organization; unknown ids are `NOT_FOUND` at
/// `contactIds.<i>`.
async fn require_contacts<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    ids: &[Uuid],
) -> AppResult<HashMap<Uuid, contact::Model>> {
    tenancy::require_all::<contact::Entity, _>(conn, org_id, ids, "contactIds", "no such contact")
        .await
}

/// The contacts of `ids`, each once, in input order (tagging does not change contact rows).
fn in_input_order(mut found: HashMap<Uuid, contact::Model>, ids: &[Uuid]) -> Vec<contact::Model> {
    tenancy::distinct(ids)
        .iter()
        .filter_map(|id| found.remove(id))
        .collect()
}

/// Checks the contacts and the tags of a tag or untag call together, so one answer names every
/// unknown id. `tags` is the check of the tag ids.
async fn check_tagging<C: ConnectionTrait, T>(
    conn: &C,
    org_id: Uuid,
    contact_ids: &[Uuid],
    tags: AppResult<T>,
) -> AppResult<HashMap<Uuid, contact::Model>> {
    let mut problems = Vec::new();
    let contacts = match require_contacts(conn, org_id, contact_ids).await {
        Ok(found) => found,
        Err(error) => {
            problems.extend(error.into_field_errors()?);
            HashMap::new()
        }
    };
    if let Err(error) = tags {
        problems.extend(error.into_field_errors()?);
    }
    if problems.is_empty() {
        Ok(contacts)
    } else {
        Err(AppError::Validation(problems))
    }
}

/// Applies tags to contacts (AGENT); inactive tags cannot be applied.
pub async fn tag(
    db: &DatabaseConnection,
    principal: &Principal,
    contact_ids: &[Uuid],
    tag_ids: &[Uuid],
) -> AppResult<Vec<contact::Model>> {
    principal.require(Permission::WorkContacts)?;
    let org_id = principal.org_id;
    let txn = db::begin_write(db).await?;
    let tags = crate::tags::service::require_applicable(&txn, org_id, tag_ids, "tagIds").await;
    let contacts = check_tagging(&txn, org_id, contact_ids, tags).await?;
    let existing: HashSet<(Uuid, Uuid)> = contact_tag::Entity::find()
        .filter(contact_tag::Column::OrgId.eq(org_id))
        .filter(contact_tag::Column::ContactId.is_in(contact_ids.iter().copied()))
        .all(&txn)
        .await?
        .into_iter()
        .map(|r| (r.contact_id, r.tag_id))
        .collect();
    let now = Utc::now();
    let mut links = Vec::new();
    let mut added_to = Vec::new();
    for contact_id in tenancy::distinct(contact_ids) {
        let added: Vec<Uuid> = tenancy::distinct(tag_ids)
            .into_iter()
            .filter(|tag_id| !existing.contains(&(contact_id, *tag_id)))
            .collect();
        links.extend(added.iter().map(|tag_id| contact_tag::ActiveModel {
            contact_id: Set(contact_id),
            tag_id: Set(*tag_id),
            org_id: Set(org_id),
            created_at: Set(now),
        }));
        if !added.is_empty() {
            added_to.push((contact_id, added));
        }
    }
    if !links.is_empty() {
        contact_tag::Entity::insert_many(links).exec(&txn).await?;
    }
    for (contact_id, added) in added_to {
        events::record(
            &txn,
            org_id,
            Some(principal.user_id()),
            "CONTACT_TAGGED",
            Subject::new("Contact", contact_id),
            json!({ "tagIds": added }),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(in_input_order(contacts, contact_ids))
}

/// Removes tags from contacts (AGENT); inactive tags can be removed.
pub async fn untag(
    db: &DatabaseConnection,
    principal: &Principal,
    contact_ids: &[Uuid],
    tag_ids: &[Uuid],
) -> AppResult<Vec<contact::Model>> {
    principal.require(Permission::WorkContacts)?;
    let org_id = principal.org_id;
    let txn = db::begin_write(db).await?;
    // Any tag of the organization can be removed, active or not; others' tags act as missing.
    let tags = tenancy::require_all::<entity::tag::Entity, _>(
        &txn,
        org_id,
        tag_ids,
        "tagIds",
        "no such tag",
    )
    .await;
    let contacts = check_tagging(&txn, org_id, contact_ids, tags).await?;
    let applied: HashSet<(Uuid, Uuid)> = contact_tag::Entity::find()
        .filter(contact_tag::Column::OrgId.eq(org_id))
        .filter(contact_tag::Column::ContactId.is_in(contact_ids.iter().copied()))
        .filter(contact_tag::Column::TagId.is_in(tag_ids.iter().copied()))
        .all(&txn)
        .await?
        .into_iter()
        .map(|r| (r.contact_id, r.tag_id))
        .collect();
    if !applied.is_empty() {
        // Exactly the applied pairs: the same filter as the read above.
        contact_tag::Entity::delete_many()
            .filter(contact_tag::Column::OrgId.eq(org_id))
            .filter(contact_tag::Column::ContactId.is_in(contact_ids.iter().copied()))
            .filter(contact_tag::Column::TagId.is_in(tag_ids.iter().copied()))
            .exec(&txn)
            .await?;
    }
    for contact_id in tenancy::distinct(contact_ids) {
        let removed: Vec<Uuid> = tenancy::distinct(tag_ids)
            .into_iter()
            .filter(|tag_id| applied.contains(&(contact_id, *tag_id)))
            .collect();
        if removed.is_empty() {
            continue;
        }
        events::record(
            &txn,
            org_id,
            Some(principal.user_id()),
            "CONTACT_UNTAGGED",
            Subject::new("Contact", contact_id),
            json!({ "tagIds": removed }),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(in_input_order(contacts, contact_ids))
}

/// Sets custom attribute values of a contact (AGENT); `None` clears a value.
pub async fn set_attributes(
    db: &DatabaseConnection,
    principal: &Principal,
    contact_id: Uuid,
    values: &[(String, Option<Value>)],
) -> AppResult<contact::Model> {
    principal.require(Permission::WorkContacts)?;
    let txn = db::begin_write(db).await?;
    let contact = find(&txn, principal.org_id, contact_id, "contactId").await?;
    let definitions =
        crate::custom_attributes::service::list(&txn, principal, AttributeEntity::Contact, true)
            .await?;
    let checked = check_attribute_values(&definitions, values, "values")?;
    write_attribute_values(&txn, principal, contact_id, &checked, false).await?;
    txn.commit().await?;
    Ok(contact)
}

/// An attribute value checked against its definition; `None` clears it.
pub type CheckedValue<'a> = (
    &'a entity::custom_attribute_definition::Model,
    Option<TypedValue>,
);

/// Checks `(identifier, value)` pairs against the contact attribute `definitions` (archived ones
/// included, to name them); errors are on `<field>.<i>.identifier` and `<field>.<i>.value`.
pub fn check_attribute_values<'a>(
    definitions: &'a [entity::custom_attribute_definition::Model],
    values: &[(String, Option<Value>)],
    field: &str,
) -> AppResult<Vec<CheckedValue<'a>>> {
    check_attribute_values_of("contact", definitions, values, field)
}

/// [`check_attribute_values`] for the attributes of `kind` (`contact`, `conversation`), named in
/// the not-found message.
pub fn check_attribute_values_of<'a>(
    kind: &str,
    definitions: &'a [entity::custom_attribute_definition::Model],
    values: &[(String, Option<Value>)],
    field: &str,
) -> AppResult<Vec<CheckedValue<'a>>> {
    let mut errors = Vec::new();
    let mut checked = Vec::new();
    for (i, (identifier, value)) in values.iter().enumerate() {
        let Some(definition) = definitions.iter().find(|d| &d.identifier == identifier) else {
            errors.push(FieldError::new(
                &format!("{field}.{i}.identifier"),
                UserErrorCode::NotFound,
                format!("no {kind} attribute {identifier:?}"),
            ));
            continue;
        };
        if definition.archived {
            errors.push(FieldError::new(
                &format!("{field}.{i}.identifier"),
                UserErrorCode::InvalidState,
                format!("attribute {identifier:?} is archived"),
            ));
            continue;
        }
        match value.as_ref().filter(|v| !v.is_null()) {
            None if definition.required => errors.push(FieldError::new(
                &format!("{field}.{i}.value"),
                UserErrorCode::Required,
                format!("attribute {identifier:?} is required and cannot be cleared"),
            )),
            None => checked.push((definition, None)),
            Some(value) => match check_value(definition, value) {
                Ok(typed) => checked.push((definition, Some(typed))),
                Err(message) => errors.push(FieldError::new(
                    &format!("{field}.{i}.value"),
                    UserErrorCode::Invalid,
                    message,
                )),
            },
        }
    }
    if errors.is_empty() {
        Ok(checked)
    } else {
        Err(AppError::Validation(errors))
    }
}

/// Writes checked attribute values of a contact inside `conn` and records
/// `CONTACT_ATTRIBUTES_SET`. `fresh` says the contact was just created and has no values yet.
pub async fn write_attribute_values<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    contact_id: Uuid,
    checked: &[CheckedValue<'_>],
    fresh: bool,
) -> AppResult<()> {
    // The last value given for an attribute wins.
    let mut last: Vec<(
        &entity::custom_attribute_definition::Model,
        Option<&TypedValue>,
    )> = Vec::new();
    for (definition, typed) in checked {
        last.retain(|(d, _)| d.id != definition.id);
        last.push((definition, typed.as_ref()));
    }
    let cleared: Vec<Uuid> = last
        .iter()
        .filter(|(_, typed)| typed.is_none())
        .map(|(d, _)| d.id)
        .collect();
    if !fresh && !cleared.is_empty() {
        attribute_value::Entity::delete_many()
            .filter(attribute_value::Column::ContactId.eq(contact_id))
            .filter(attribute_value::Column::DefinitionId.is_in(cleared))
            .exec(conn)
            .await?;
    }
    let now = Utc::now();
    let rows: Vec<attribute_value::ActiveModel> = last
        .iter()
        .filter_map(|(definition, typed)| {
            let (text, number, boolean, date) = match (*typed)? {
                TypedValue::Text(s) => (Some(s.clone()), None, None, None),
                TypedValue::Number(n) => (None, Some(*n), None, None),
                TypedValue::Bool(b) => (None, None, Some(*b), None),
                TypedValue::Date(d) => (None, None, None, Some(*d)),
            };
            Some(attribute_value::ActiveModel {
                contact_id: Set(contact_id),
                definition_id: Set(definition.id),
                org_id: Set(principal.org_id),
                identifier: Set(definition.identifier.clone()),
                text_value: Set(text),
                number_value: Set(number),
                bool_value: Set(boolean),
                date_value: Set(date),
                updated_at: Set(now),
            })
        })
        .collect();
    if !rows.is_empty() {
        // One statement: a value replaces the stored one.
        attribute_value::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    attribute_value::Column::ContactId,
                    attribute_value::Column::DefinitionId,
                ])
                .update_columns([
                    attribute_value::Column::TextValue,
                    attribute_value::Column::NumberValue,
                    attribute_value::Column::BoolValue,
                    attribute_value::Column::DateValue,
                    attribute_value::Column::UpdatedAt,
                ])
                .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    events::record(
        conn,
        principal.org_id,
        Some(principal.user_id()),
        "CONTACT_ATTRIBUTES_SET",
        Subject::new("Contact", contact_id),
        json!({ "identifiers": checked.iter().map(|(d, _)| d.identifier.clone()).collect::<Vec<_>>() }),
    )
    .await?;
    Ok(())
}

/// Which contacts to list.
#[derive(Clone, Debug, Default)]
pub struct ContactFilter {
    /// Case-insensitive text in names, emails or phones.
    pub search: Option<String>,
    /// Contacts with any of these tags.
    pub tag_ids: Option<Vec<Uuid>>,
    /// The contact with this external id.
    pub external_id: Option<String>,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
    /// Contacts whose attribute `identifier` equals the value.
    pub attribute: Option<(String, Value)>,
    /// Members of this contact group (static or by rule); none when there is no such group.
    pub group_id: Option<Uuid>,
}

/// Orderings of contacts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ContactOrderField {
    /// Name (display name, else first and last name, else email or phone).
    #[default]
    Name,
    /// Creation time.
    CreatedAt,
    /// When the organization last talked with the contact; never-contacted contacts come last in
    /// both directions.
    LastContactedAt,
}

/// One page of contacts.
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: ContactFilter,
    order: (ContactOrderField, SortDirection),
    args: &PageArgs,
) -> AppResult<(Page<contact::Model>, TotalCount)> {
    principal.require(Permission::WorkContacts)?;
    let mut select = tenancy::in_org::<contact::Entity>(principal.org_id);
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let mut any = Condition::any();
        for column in [
            contact::Column::SortName,
            contact::Column::FirstName,
            contact::Column::LastName,
            contact::Column::Email,
            contact::Column::Phone,
        ] {
            any = any.add(Expr::expr(Func::lower(Expr::col(column))).like(like_pattern(search)));
        }
        select = select.filter(any);
    }
    if let Some(tag_ids) = filter.tag_ids.filter(|t| !t.is_empty()) {
        select = select.filter(
            contact::Column::Id.in_subquery(
                Query::select()
                    .column(contact_tag::Column::ContactId)
                    .from(contact_tag::Entity)
                    .and_where(contact_tag::Column::OrgId.eq(principal.org_id))
                    .and_where(contact_tag::Column::TagId.is_in(tag_ids))
                    .to_owned(),
            ),
        );
    }
    if let Some(external_id) = filter.external_id {
        select = select.filter(contact::Column::ExternalId.eq(external_id));
    }
    if let Some(after) = filter.created_after {
        select = select.filter(contact::Column::CreatedAt.gte(after));
    }
    if let Some(before) = filter.created_before {
        select = select.filter(contact::Column::CreatedAt.lt(before));
    }
    if let Some((identifier, value)) = filter.attribute {
        let mut matches = Query::select()
            .column(attribute_value::Column::ContactId)
            .from(attribute_value::Entity)
            .and_where(attribute_value::Column::OrgId.eq(principal.org_id))
            .and_where(attribute_value::Column::Identifier.eq(identifier))
            .to_owned();
        match value {
            Value::String(s) => {
                let mut any = Condition::any().add(attribute_value::Column::TextValue.eq(&s));
                if let Ok(date) = NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
                    any = any.add(attribute_value::Column::DateValue.eq(date));
                }
                matches.cond_where(any)
            }
            Value::Bool(b) => matches.and_where(attribute_value::Column::BoolValue.eq(b)),
            Value::Number(n) => matches
                .and_where(attribute_value::Column::NumberValue.eq(n.as_f64().unwrap_or(f64::NAN))),
            _ => {
                return Err(AppError::BadUserInput(
                    "an attribute filter value must be a string, number or boolean".into(),
                ));
            }
        };
        select = select.filter(contact::Column::Id.in_subquery(matches));
    }
    if let Some(group_id) = filter.group_id {
        select = select.filter(
            crate::contact_groups::service::membership_by_id(db, principal.org_id, group_id)
                .await?,
        );
    }
    let sort = match order.0 {
        ContactOrderField::Name => Sort {
            name: "NAME",
            column: contact::Column::SortName,
            direction: order.1,
            value: |m: &contact::Model| SortValue::Text(m.sort_name.clone()),
        },
        ContactOrderField::CreatedAt => Sort {
            name: "CREATED_AT",
            column: contact::Column::CreatedAt,
            direction: order.1,
            value: |m: &contact::Model| SortValue::Time(m.created_at),
        },
        ContactOrderField::LastContactedAt if order.1 == SortDirection::Asc => Sort {
            name: "LAST_CONTACTED_AT",
            column: contact::Column::LastContactedAsc,
            direction: order.1,
            value: |m: &contact::Model| SortValue::Time(m.last_contacted_asc),
        },
        ContactOrderField::LastContactedAt => Sort {
            name: "LAST_CONTACTED_AT_DESC",
            column: contact::Column::LastContactedDesc,
            direction: order.1,
            value: |m: &contact::Model| SortValue::Time(m.last_contacted_desc),
        },
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "contacts", &sort, args).await?;
    Ok((page, total))
}

/// Tag ids of each contact (one query for all).
pub async fn tag_ids(
    db: &DatabaseConnection,
    org_id: Uuid,
    contact_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<Uuid>>> {
    let rows = contact_tag::Entity::find()
        .filter(contact_tag::Column::OrgId.eq(org_id))
        .filter(contact_tag::Column::ContactId.is_in(contact_ids.iter().copied()))
        .order_by_asc(contact_tag::Column::CreatedAt)
        .order_by_asc(contact_tag::Column::TagId)
        .all(db)
        .await?;
    let mut map: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for row in rows {
        map.entry(row.contact_id).or_default().push(row.tag_id);
    }
    Ok(map)
}

/// Attribute values of each contact (one query for all), by identifier.
pub async fn attribute_values(
    db: &DatabaseConnection,
    org_id: Uuid,
    contact_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<attribute_value::Model>>> {
    let rows = attribute_value::Entity::find()
        .filter(attribute_value::Column::OrgId.eq(org_id))
        .filter(attribute_value::Column::ContactId.is_in(contact_ids.iter().copied()))
        .order_by_asc(attribute_value::Column::Identifier)
        .all(db)
        .await?;
    let mut map: HashMap<Uuid, Vec<attribute_value::Model>> = HashMap::new();
    for row in rows {
        map.entry(row.contact_id).or_default().push(row);
    }
    Ok(map)
}

/// Whether a contact agreed to be contacted on a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentStatus {
    /// The contact agreed (e.g. SMS `START`).
    OptedIn,
    /// The contact refused (e.g. SMS `STOP`).
    OptedOut,
}

impl ConsentStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentStatus::OptedIn => "OPTED_IN",
            ConsentStatus::OptedOut => "OPTED_OUT",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [ConsentStatus::OptedIn, ConsentStatus::OptedOut]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// A contact's consent on one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consent {
    /// The channel type.
    pub channel: ChannelType,
    /// Opted in or out.
    pub status: ConsentStatus,
    /// When the contact gave or withdrew it.
    pub at: DateTime<Utc>,
    /// Where it came from (a web form, an SMS keyword, an import), if known.
    pub source: Option<String>,
}

/// A contact's consents, in channel type order (channels without a decision are left out).
pub fn consents(model: &contact::Model) -> Vec<Consent> {
    ChannelType::ALL
        .into_iter()
        .filter_map(|channel| {
            let entry = model.consent.get(channel.as_str())?;
            Some(Consent {
                channel,
                status: ConsentStatus::parse(entry.get("status")?.as_str()?)?,
                at: DateTime::parse_from_rfc3339(entry.get("at")?.as_str()?)
                    .ok()?
                    .with_timezone(&Utc),
                source: entry
                    .get("source")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
        })
        .collect()
}

/// Records a contact's consent on a channel inside `txn` (for people and for system paths such as
/// SMS `STOP`/`START` keywords, whose `actor` is `None`).
pub async fn record_consent<C: ConnectionTrait>(
    txn: &C,
    org_id: Uuid,
    actor: Option<Uuid>,
    current: contact::Model,
    consent: Consent,
) -> AppResult<contact::Model> {
    let contact_id = current.id;
    let mut stored = match &current.consent {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    stored.insert(
        consent.channel.as_str().to_string(),
        json!({
            "status": consent.status.as_str(),
            "at": consent.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "source": consent.source,
        }),
    );
    let mut model = current.into_active_model();
    model.consent = Set(Value::Object(stored));
    model.updated_at = Set(Utc::now());
    let updated = model.update(txn).await?;
    events::record(
        txn,
        org_id,
        actor,
        "CONTACT_CONSENT_CHANGED",
        Subject::new("Contact", contact_id),
        json!({
            "channel": consent.channel.as_str(),
            "status": consent.status.as_str(),
            "source": consent.source,
        }),
    )
    .await?;
    Ok(updated)
}

/// Sets a contact's consent on one channel (AGENT). `at` defaults to now and cannot be in the
/// future.
pub async fn set_consent(
    db: &DatabaseConnection,
    principal: &Principal,
    contact_id: Uuid,
    channel: ChannelType,
    status: ConsentStatus,
    at: Option<DateTime<Utc>>,
    source: Option<String>,
) -> AppResult<contact::Model> {
    principal.require(Permission::WorkContacts)?;
    let now = Utc::now();
    let mut errors = Errors::default();
    let source = errors.optional_text("source", source.as_deref(), 200);
    if at.is_some_and(|at| at > now + chrono::Duration::minutes(5)) {
        errors.add("at", UserErrorCode::Invalid, "at is in the future");
    }
    errors.finish()?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, contact_id, "contactId").await?;
    if current.anonymized_at.is_some() {
        return Err(AppError::invalid(
            "contactId",
            UserErrorCode::InvalidState,
            "the contact is anonymized",
        ));
    }
    let consent = Consent {
        channel,
        status,
        at: at.unwrap_or(now),
        source,
    };
    let updated = record_consent(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        current,
        consent,
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// A stored attribute value as JSON: a string (TEXT, SELECT, DATE as `YYYY-MM-DD`), number or
/// boolean.
pub fn stored_value(row: &attribute_value::Model) -> Value {
    let typed = match (
        &row.text_value,
        row.number_value,
        row.bool_value,
        row.date_value,
    ) {
        (Some(text), ..) => TypedValue::Text(text.clone()),
        (_, Some(number), ..) => TypedValue::Number(number),
        (_, _, Some(boolean), _) => TypedValue::Bool(boolean),
        (.., Some(date)) => TypedValue::Date(date),
        _ => return Value::Null,
    };
    typed.to_json()
}
