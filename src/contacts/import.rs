//! CSV import of contacts, on the bulk path ([`super::bulk`]): each data row becomes one bulk item
//! (create, or upsert with [`ImportOptions::upsert`]) and gets one outcome.
//!
//! The format:
//! - The first row names the columns; blank lines are skipped; fields may be quoted (`"a, b"`,
//!   `"line 1` ⏎ `line 2"`, `""` for a quote). The delimiter is `,` unless given. At most
//!   [`MAX_CSV_BYTES`] bytes and [`MAX_ITEMS`] data rows.
//! - A column is a contact field, named as in the API or loosely (case, spaces, `_` and `-` do not
//!   matter, and common aliases such as `zip` or `companyName` work): `displayName firstName
//!   lastName middleName email phone additionalEmails additionalPhones avatarUrl externalId company
//!   note birthDate street city postalCode region country` (`address.city` and so on work too);
//!   `tags` (tag names); or a custom contact attribute, as `attributes.<identifier>` or its bare
//!   identifier (a field name wins over a bare identifier). `mapping` names the target of a column
//!   explicitly, or ignores it. An unknown column refuses the whole import.
//! - Cells are trimmed; an empty cell means "not given" (on an upsert that updates, the field
//!   stays). Lists (`additionalEmails`, `additionalPhones`, `tags`) are separated by `;`. Address
//!   columns together replace the address. `birthDate` and DATE attributes are `YYYY-MM-DD`;
//!   NUMBER attributes are decimal numbers with a `.`; BOOLEAN attributes take `true false yes no
//!   y n 1 0`; SELECT attributes take an option's value or label.
//! - Outcome `index` is the 0-based data row (the header row is not counted). Errors of a row are
//!   on `["input", "csv", "<index>", "<column as written in the header>"]`, or on
//!   `["input", "csv", "<index>"]` when no single column is at fault.

use std::collections::HashMap;

use chrono::NaiveDate;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use uuid::Uuid;

use super::bulk::{self, BulkItem, BulkMode, ItemOutcome, MAX_ITEMS};
use super::service::{Address, ContactFields};
use crate::auth::{Permission, Principal};
use crate::custom_attributes::service::{AttributeEntity, AttributeType, SelectOption, options_of};
use crate::error::{AppError, AppResult, FieldError, UserErrorCode};
use crate::tags::service::TagStatus;
use crate::tenancy;

/// Largest CSV text an import takes (the default request body limit).
pub const MAX_CSV_BYTES: usize = 1_048_576;

/// How to read and apply an import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Upsert each row (match on externalId, email or phone) instead of creating.
    pub upsert: bool,
    /// Column name → what it fills (a field name, `tags`, `attributes.<identifier>`), or `None`
    /// to ignore the column. Overrides what the header itself would mean.
    pub mapping: Vec<(String, Option<String>)>,
    /// The field delimiter (one ASCII character); `,` when `None`.
    pub delimiter: Option<String>,
    /// Tags added to every imported contact.
    pub tag_ids: Vec<Uuid>,
}

/// A contact field a column can fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    DisplayName,
    FirstName,
    LastName,
    MiddleName,
    Email,
    Phone,
    AdditionalEmails,
    AdditionalPhones,
    AvatarUrl,
    ExternalId,
    Company,
    Note,
    BirthDate,
    Street,
    City,
    PostalCode,
    Region,
    Country,
}

/// Each field with its API name (as in error paths) and the loose spellings a header may use
/// (lower case, letters and digits only).
const FIELDS: &[(Field, &str, &[&str])] = &[
    (Field::DisplayName, "displayName", &["displayname"]),
    (Field::FirstName, "firstName", &["firstname", "givenname"]),
    (
        Field::LastName,
        "lastName",
        &["lastname", "surname", "familyname"],
    ),
    (Field::MiddleName, "middleName", &["middlename"]),
    (Field::Email, "email", &["email", "emailaddress"]),
    (
        Field::Phone,
        "phone",
        &["phone", "phonenumber", "mobile", "mobilephone"],
    ),
    (
        Field::AdditionalEmails,
        "additionalEmails",
        &["additionalemails"],
    ),
    (
        Field::AdditionalPhones,
        "additionalPhones",
        &["additionalphones"],
    ),
    (Field::AvatarUrl, "avatarUrl", &["avatarurl", "avatar"]),
    (Field::ExternalId, "externalId", &["externalid"]),
    (Field::Company, "company", &["company", "companyname"]),
    (Field::Note, "note", &["note", "notes"]),
    (Field::BirthDate, "birthDate", &["birthdate", "dateofbirth"]),
    (
        Field::Street,
        "address.street",
        &["street", "addressstreet", "address"],
    ),
    (Field::City, "address.city", &["city", "addresscity"]),
    (
        Field::PostalCode,
        "address.postalCode",
        &["postalcode", "addresspostalcode", "zip", "zipcode"],
    ),
    (
        Field::Region,
        "address.region",
        &["region", "addressregion", "state"],
    ),
    (
        Field::Country,
        "address.country",
        &["country", "addresscountry"],
    ),
];

/// What a column fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Field(Field),
    /// The attribute definition at this position.
    Attribute(usize),
    Tags,
}

fn loose(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .flat_map(char::to_lowercase)
        .collect()
}

/// What a column name (or a mapping's target) means, if anything.
fn resolve(
    name: &str,
    definitions: &[entity::custom_attribute_definition::Model],
) -> Option<Target> {
    let name = name.trim();
    let lower = name.to_lowercase();
    for prefix in ["attributes.", "attribute."] {
        if let Some(identifier) = lower.strip_prefix(prefix) {
            return definitions
                .iter()
                .position(|d| d.identifier == identifier.trim())
                .map(Target::Attribute);
        }
    }
    let key = loose(name);
    if key == "tags" {
        return Some(Target::Tags);
    }
    if let Some((field, ..)) = FIELDS
        .iter()
        .find(|(_, _, aliases)| aliases.contains(&&*key))
    {
        return Some(Target::Field(*field));
    }
    definitions
        .iter()
        .position(|d| d.identifier == lower)
        .map(Target::Attribute)
}

fn target_name(
    target: Target,
    definitions: &[entity::custom_attribute_definition::Model],
) -> String {
    match target {
        Target::Field(field) => FIELDS
            .iter()
            .find(|(f, ..)| *f == field)
            .map(|(_, name, _)| name.to_string())
            .unwrap_or_default(),
        Target::Attribute(i) => definitions
            .get(i)
            .map(|d| format!("attributes.{}", d.identifier))
            .unwrap_or_default(),
        Target::Tags => "tags".into(),
    }
}

fn whole(field: &str, code: UserErrorCode, message: impl Into<String>) -> AppError {
    AppError::invalid(field, code, message)
}

/// An error on a row, or on one of its columns.
fn row_error(
    row: usize,
    column: Option<&str>,
    code: UserErrorCode,
    message: impl Into<String>,
) -> FieldError {
    let mut field = vec!["input".to_string(), "csv".to_string(), row.to_string()];
    field.extend(column.map(str::to_string));
    FieldError {
        field,
        message: message.into(),
        code,
    }
}

fn find_option<'a>(options: &'a [SelectOption], cell: &str) -> Option<&'a SelectOption> {
    options.iter().find_map(|o| {
        if o.value == cell || o.label.to_lowercase() == cell.to_lowercase() {
            Some(o)
        } else {
            find_option(&o.options, cell)
        }
    })
}

/// A cell as an attribute value of the definition's type; the message says why it is not one.
fn attribute_value(
    definition: &entity::custom_attribute_definition::Model,
    cell: &str,
) -> Result<Value, String> {
    match AttributeType::parse(&definition.value_type).unwrap_or(AttributeType::Text) {
        AttributeType::Text | AttributeType::Date => Ok(json!(cell)),
        AttributeType::Number => cell
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(|n| json!(n))
            .ok_or_else(|| format!("{cell:?} is not a number such as 12.5")),
        AttributeType::Boolean => match cell.to_lowercase().as_str() {
            "true" | "yes" | "y" | "1" => Ok(json!(true)),
            "false" | "no" | "n" | "0" => Ok(json!(false)),
            _ => Err(format!("{cell:?} is not a boolean (true or false)")),
        },
        // An exact value, else a label in any case; an unknown one is reported by the value
        // check with the other options' rules.
        AttributeType::Select => Ok(json!(
            find_option(&options_of(definition), cell)
                .map(|o| o.value.as_str())
                .unwrap_or(cell)
        )),
    }
}

fn list(cell: &str) -> Vec<String> {
    cell.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Where the cells of one row went, to put the bulk path's errors on columns.
#[derive(Default)]
struct RowColumns {
    /// Column of each attribute value, in item order.
    attributes: Vec<usize>,
    /// Tags that came from the row's `tags` column (the import's own tags follow them).
    row_tags: usize,
}

/// Imports contacts from CSV text; one outcome per data row, in order. Whole-import problems
/// (size, malformed CSV, unknown columns, too many rows) refuse everything.
pub async fn import(
    db: &DatabaseConnection,
    principal: &Principal,
    csv_text: &str,
    options: ImportOptions,
) -> AppResult<Vec<ItemOutcome>> {
    principal.require(Permission::WorkContacts)?;
    if csv_text.len() > MAX_CSV_BYTES {
        return Err(whole(
            "csv",
            UserErrorCode::TooLong,
            format!(
                "the CSV has {} bytes; the limit is {MAX_CSV_BYTES}",
                csv_text.len()
            ),
        ));
    }
    let delimiter = match options.delimiter.as_deref() {
        None => b',',
        Some(d) if d.len() == 1 && d.is_ascii() && d != "\"" && d != "\n" && d != "\r" => {
            d.as_bytes()[0]
        }
        Some(d) => {
            return Err(whole(
                "delimiter",
                UserErrorCode::Invalid,
                format!("{d:?} is not a delimiter: give one character such as , or ;"),
            ));
        }
    };
    let text = csv_text.strip_prefix('\u{feff}').unwrap_or(csv_text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut records = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or_default();
            whole(
                "csv",
                UserErrorCode::Invalid,
                format!("the CSV is malformed at line {line}"),
            )
        })?;
        records.push(record);
        if records.len() > MAX_ITEMS + 1 {
            break;
        }
    }
    let mut records = records.into_iter();
    let Some(header) = records.next() else {
        return Err(whole(
            "csv",
            UserErrorCode::Required,
            "the CSV is empty: its first row must name the columns",
        ));
    };
    let rows: Vec<csv::StringRecord> = records.collect();
    if rows.len() > MAX_ITEMS {
        return Err(whole(
            "csv",
            UserErrorCode::TooLong,
            format!("at most {MAX_ITEMS} data rows per import"),
        ));
    }
    for row in &rows {
        if row.len() != header.len() {
            let line = row.position().map(|p| p.line()).unwrap_or_default();
            return Err(whole(
                "csv",
                UserErrorCode::Invalid,
                format!(
                    "the CSV is malformed: line {line} has {} fields; the header has {}",
                    row.len(),
                    header.len()
                ),
            ));
        }
    }

    let definitions =
        crate::custom_attributes::service::list(db, principal, AttributeEntity::Contact, true)
            .await?;
    let columns: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
    let plan = plan_columns(&columns, &rows, &options.mapping, &definitions)?;

    // Tags by name (for a `tags` column) and the import's own tags, from one query.
    let needs_tags = plan.contains(&Some(Target::Tags)) || !options.tag_ids.is_empty();
    let tags = if needs_tags {
        tenancy::in_org::<entity::tag::Entity>(principal.org_id)
            .all(db)
            .await?
    } else {
        Vec::new()
    };
    let mut errors = Vec::new();
    for (i, id) in options.tag_ids.iter().enumerate() {
        match tags.iter().find(|t| t.id == *id) {
            None => errors.push(FieldError::new(
                &format!("tagIds.{i}"),
                UserErrorCode::NotFound,
                "no such tag",
            )),
            Some(t) if TagStatus::parse(&t.status) == TagStatus::Inactive => {
                errors.push(FieldError::new(
                    &format!("tagIds.{i}"),
                    UserErrorCode::InvalidState,
                    format!("tag {:?} is inactive and cannot be applied", t.name),
                ));
            }
            Some(_) => {}
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let tag_names: HashMap<String, Uuid> = tags
        .iter()
        .rev()
        .map(|t| (t.name.trim().to_lowercase(), t.id))
        .collect();

    let mut items = Vec::with_capacity(rows.len());
    let mut row_columns = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let (item, where_) = read_row(
            index,
            row,
            &columns,
            &plan,
            &definitions,
            &tag_names,
            &options.tag_ids,
        );
        items.push(item);
        row_columns.push(where_);
    }

    let mode = if options.upsert {
        BulkMode::Upsert
    } else {
        BulkMode::Create
    };
    let outcomes = bulk::run(db, principal, mode, items).await?;
    Ok(outcomes
        .into_iter()
        .zip(row_columns)
        .enumerate()
        .map(|(index, (outcome, where_))| {
            outcome.map_err(|errors| {
                errors
                    .into_iter()
                    .map(|e| on_column(index, e, &columns, &plan, &where_))
                    .collect()
            })
        })
        .collect())
}

/// The target of each column (`None`: ignored), from the mapping and the header.
fn plan_columns(
    columns: &[String],
    rows: &[csv::StringRecord],
    mapping: &[(String, Option<String>)],
    definitions: &[entity::custom_attribute_definition::Model],
) -> AppResult<Vec<Option<Target>>> {
    let mut errors = Vec::new();
    let mut mapped: HashMap<&str, Option<Target>> = HashMap::new();
    for (i, (column, field)) in mapping.iter().enumerate() {
        if !columns.iter().any(|c| c == column.trim()) {
            errors.push(FieldError::new(
                &format!("mapping.{i}.column"),
                UserErrorCode::NotFound,
                format!("the CSV has no column {:?}", column.trim()),
            ));
            continue;
        }
        let target = match field {
            None => None,
            Some(field) => match resolve(field, definitions) {
                Some(target) => Some(target),
                None => {
                    errors.push(FieldError::new(
                        &format!("mapping.{i}.field"),
                        UserErrorCode::Invalid,
                        format!(
                            "{field:?} is not a contact field, `tags` or `attributes.<identifier>` of a contact attribute"
                        ),
                    ));
                    continue;
                }
            },
        };
        mapped.insert(column.trim(), target);
    }
    let mut plan = Vec::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        let target = match mapped.get(column.as_str()) {
            Some(target) => *target,
            None if column.is_empty() => {
                // Spreadsheets add unnamed empty columns; ones with data need a name.
                if rows
                    .iter()
                    .any(|r| r.get(i).is_some_and(|c| !c.trim().is_empty()))
                {
                    errors.push(FieldError::new(
                        "csv",
                        UserErrorCode::Invalid,
                        format!("column {} has data but no name in the header", i + 1),
                    ));
                }
                None
            }
            None => match resolve(column, definitions) {
                Some(target) => Some(target),
                None => {
                    errors.push(FieldError::new(
                        "csv",
                        UserErrorCode::Invalid,
                        format!(
                            "unknown column {column:?}: not a contact field, `tags` or a contact attribute; map it with `mapping`, or ignore it with a null field"
                        ),
                    ));
                    None
                }
            },
        };
        if let Some(Target::Attribute(d)) = target
            && let Some(definition) = definitions.get(d)
            && definition.archived
        {
            errors.push(FieldError::new(
                "csv",
                UserErrorCode::InvalidState,
                format!(
                    "column {column:?}: attribute {:?} is archived",
                    definition.identifier
                ),
            ));
        }
        if let Some(target) = target
            && let Some(first) = plan.iter().position(|t| *t == Some(target))
        {
            errors.push(FieldError::new(
                "csv",
                UserErrorCode::Invalid,
                format!(
                    "columns {:?} and {column:?} both fill {}",
                    columns[first],
                    target_name(target, definitions)
                ),
            ));
        }
        plan.push(target);
    }
    if errors.is_empty() {
        Ok(plan)
    } else {
        Err(AppError::Validation(errors))
    }
}

/// One data row as a bulk item (or its conversion errors), and where its cells went.
fn read_row(
    index: usize,
    row: &csv::StringRecord,
    columns: &[String],
    plan: &[Option<Target>],
    definitions: &[entity::custom_attribute_definition::Model],
    tag_names: &HashMap<String, Uuid>,
    import_tags: &[Uuid],
) -> ((BulkItem, Vec<FieldError>), RowColumns) {
    let mut item = BulkItem::default();
    let mut where_ = RowColumns::default();
    let mut errors = Vec::new();
    let mut address = Address::default();
    let mut has_address = false;
    let mut empty = true;
    for (c, cell) in row.iter().enumerate() {
        let cell = cell.trim();
        let Some(Some(target)) = plan.get(c) else {
            continue;
        };
        if cell.is_empty() {
            continue;
        }
        empty = false;
        let column = columns.get(c).map(String::as_str);
        let f: &mut ContactFields = &mut item.fields;
        let text = Some(Some(cell.to_string()));
        match *target {
            Target::Field(field) => match field {
                Field::DisplayName => f.display_name = text,
                Field::FirstName => f.first_name = text,
                Field::LastName => f.last_name = text,
                Field::MiddleName => f.middle_name = text,
                Field::Email => f.email = text,
                Field::Phone => f.phone = text,
                Field::AdditionalEmails => f.additional_emails = Some(list(cell)),
                Field::AdditionalPhones => f.additional_phones = Some(list(cell)),
                Field::AvatarUrl => f.avatar_url = text,
                Field::ExternalId => f.external_id = text,
                Field::Company => f.company = text,
                Field::Note => f.note = text,
                Field::BirthDate => match NaiveDate::parse_from_str(cell, "%Y-%m-%d") {
                    Ok(date) => f.birth_date = Some(Some(date)),
                    Err(_) => errors.push(row_error(
                        index,
                        column,
                        UserErrorCode::Invalid,
                        format!("{cell:?} is not a date such as 1990-05-17"),
                    )),
                },
                Field::Street
                | Field::City
                | Field::PostalCode
                | Field::Region
                | Field::Country => {
                    has_address = true;
                    let part = Some(cell.to_string());
                    match field {
                        Field::Street => address.street = part,
                        Field::City => address.city = part,
                        Field::PostalCode => address.postal_code = part,
                        Field::Region => address.region = part,
                        _ => address.country = part,
                    }
                }
            },
            Target::Attribute(d) => {
                let Some(definition) = definitions.get(d) else {
                    continue;
                };
                match attribute_value(definition, cell) {
                    Ok(value) => {
                        item.attributes
                            .push((definition.identifier.clone(), Some(value)));
                        where_.attributes.push(c);
                    }
                    Err(message) => {
                        errors.push(row_error(index, column, UserErrorCode::Invalid, message))
                    }
                }
            }
            Target::Tags => {
                for name in list(cell) {
                    match tag_names.get(&name.to_lowercase()) {
                        Some(id) => item.tag_ids.push(*id),
                        None => errors.push(row_error(
                            index,
                            column,
                            UserErrorCode::NotFound,
                            format!("no tag named {name:?}"),
                        )),
                    }
                }
                where_.row_tags = item.tag_ids.len();
            }
        }
    }
    if has_address {
        item.fields.address = Some(Some(address));
    }
    if empty {
        errors.push(row_error(
            index,
            None,
            UserErrorCode::Required,
            "the row is empty",
        ));
    }
    item.tag_ids.extend_from_slice(import_tags);
    ((item, errors), where_)
}

/// Puts an error of the bulk path (relative to the item) on the row's column it came from.
fn on_column(
    index: usize,
    error: FieldError,
    columns: &[String],
    plan: &[Option<Target>],
    where_: &RowColumns,
) -> FieldError {
    if error.field.get(1).map(String::as_str) == Some("csv") {
        return error;
    }
    let path: Vec<&str> = error.field.iter().skip(1).map(String::as_str).collect();
    let column_of = |target: Target| plan.iter().position(|t| *t == Some(target));
    let column = match path.as_slice() {
        ["customAttributes", k, ..] => k
            .parse::<usize>()
            .ok()
            .and_then(|k| where_.attributes.get(k).copied()),
        ["tagIds", k, ..] => k
            .parse::<usize>()
            .ok()
            .filter(|k| *k < where_.row_tags)
            .and_then(|_| column_of(Target::Tags)),
        ["address", part, ..] => FIELDS
            .iter()
            .find(|(_, name, _)| name.strip_prefix("address.") == Some(part))
            .and_then(|(f, ..)| column_of(Target::Field(*f))),
        [name, ..] => FIELDS
            .iter()
            .find(|(_, api, _)| api == name)
            .and_then(|(f, ..)| column_of(Target::Field(*f))),
        [] => None,
    };
    row_error(
        index,
        column.and_then(|c| columns.get(c)).map(String::as_str),
        error.code,
        error.message,
    )
}
