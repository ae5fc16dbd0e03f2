//! Business rules for custom attribute definitions and their values.

use chrono::{NaiveDate, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::{Permission, Principal};
use crate::db;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::events::{self, Subject};
use crate::tenancy;
use crate::validate::Errors;

use entity::custom_attribute_definition::{self as definition, Column};

/// What a definition applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttributeEntity {
    /// Contacts.
    Contact,
    /// Conversations.
    Conversation,
}

/// The type of an attribute's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttributeType {
    /// Free text.
    Text,
    /// One of the (nested) select options.
    Select,
    /// A number.
    Number,
    /// True or false.
    Boolean,
    /// A calendar date.
    Date,
}

macro_rules! stored {
    ($ty:ident { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// Stored name.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),* }
            }
            /// Parses a stored name.
            pub fn parse(name: &str) -> Option<Self> {
                match name { $($name => Some($ty::$variant),)* _ => None }
            }
        }
    };
}

stored!(AttributeEntity { Contact => "CONTACT", Conversation => "CONVERSATION" });
stored!(AttributeType { Text => "TEXT", Select => "SELECT", Number => "NUMBER", Boolean => "BOOLEAN", Date => "DATE" });

/// A select option, possibly with child options.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SelectOption {
    /// Stable id.
    pub id: Uuid,
    /// The stored value.
    pub value: String,
    /// The shown label.
    pub label: String,
    /// Deactivated options stay on existing values but cannot be newly chosen.
    #[serde(default)]
    pub deactivated: bool,
    /// Child options.
    #[serde(default)]
    pub options: Vec<SelectOption>,
}

/// A select option as given in input; `id` keeps an existing option.
#[derive(Clone, Debug)]
pub struct OptionInput {
    /// An existing option's id.
    pub id: Option<Uuid>,
    /// The stored value.
    pub value: String,
    /// The shown label.
    pub label: String,
    /// Whether it is deactivated.
    pub deactivated: bool,
    /// Child options.
    pub options: Vec<OptionInput>,
}

/// Reads a definition's options.
pub fn options_of(model: &definition::Model) -> Vec<SelectOption> {
    serde_json::from_value(model.options.clone()).unwrap_or_default()
}

fn build_options(
    errors: &mut Errors,
    field: &str,
    input: &[OptionInput],
    seen: &mut Vec<String>,
) -> Vec<SelectOption> {
    input
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let path = format!("{field}.{i}");
            let value = errors.required_text(&format!("{path}.value"), &o.value, 200);
            let label = errors.required_text(&format!("{path}.label"), &o.label, 200);
            if seen.contains(&value) {
                errors.add(
                    &format!("{path}.value"),
                    UserErrorCode::Taken,
                    format!("option value {value:?} is used twice"),
                );
            }
            seen.push(value.clone());
            SelectOption {
                id: o.id.unwrap_or_else(Uuid::now_v7),
                value,
                label,
                deactivated: o.deactivated,
                options: build_options(errors, &format!("{path}.options"), &o.options, seen),
            }
        })
        .collect()
}

fn find_option<'a>(options: &'a [SelectOption], value: &str) -> Option<&'a SelectOption> {
    options.iter().find_map(|o| {
        if o.value == value {
            Some(o)
        } else {
            find_option(&o.options, value)
        }
    })
}

/// A new definition.
#[derive(Clone, Debug)]
pub struct NewDefinition {
    /// Contacts or conversations.
    pub entity: AttributeEntity,
    /// Machine name (`[a-z][a-z0-9_]*`).
    pub identifier: String,
    /// Shown label.
    pub label: String,
    /// Description.
    pub description: Option<String>,
    /// Value type.
    pub value_type: AttributeType,
    /// Select options (SELECT only).
    pub options: Vec<OptionInput>,
    /// Whether a value is required.
    pub required: bool,
}

fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 64
}

/// Creates a definition (ADMIN).
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    input: NewDefinition,
) -> AppResult<definition::Model> {
    principal.require(Permission::ManageCustomAttributes)?;
    let mut errors = Errors::default();
    if !valid_identifier(&input.identifier) {
        errors.add(
            "identifier",
            UserErrorCode::Invalid,
            format!("{:?} is not an identifier: lower-case letters, digits and _, starting with a letter", input.identifier),
        );
    }
    let label = errors.required_text("label", &input.label, 200);
    let description = errors.optional_text("description", input.description.as_deref(), 2000);
    let options = build_options(&mut errors, "options", &input.options, &mut Vec::new());
    if input.value_type == AttributeType::Select && options.is_empty() {
        errors.add(
            "options",
            UserErrorCode::Required,
            "a SELECT attribute needs options",
        );
    }
    if input.value_type != AttributeType::Select && !options.is_empty() {
        errors.add(
            "options",
            UserErrorCode::Invalid,
            "only SELECT attributes have options",
        );
    }
    errors.finish()?;
    let txn = db::begin_write(db).await?;
    let taken = tenancy::in_org::<definition::Entity>(principal.org_id)
        .filter(Column::Entity.eq(input.entity.as_str()))
        .filter(Column::Identifier.eq(&input.identifier))
        .count(&txn)
        .await?;
    if taken > 0 {
        return Err(AppError::invalid(
            "identifier",
            UserErrorCode::Taken,
            format!("an attribute {:?} exists", input.identifier),
        ));
    }
    let now = Utc::now();
    let model = definition::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(principal.org_id),
        entity: Set(input.entity.as_str().into()),
        identifier: Set(input.identifier),
        label: Set(label),
        description: Set(description),
        value_type: Set(input.value_type.as_str().into()),
        options: Set(json!(options)),
        required: Set(input.required),
        archived: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "CUSTOM_ATTRIBUTE_DEFINITION_CREATED",
        Subject::new("CustomAttributeDefinition", model.id),
        json!({ "identifier": model.identifier, "entity": model.entity }),
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

/// Changes to a definition; identifier, entity and type never change.
#[derive(Clone, Debug, Default)]
pub struct DefinitionPatch {
    /// New label.
    pub label: Option<String>,
    /// New description (`Some(None)` clears).
    pub description: Option<Option<String>>,
    /// New required flag.
    pub required: Option<bool>,
    /// New options (replaces them; keep ids to keep options).
    pub options: Option<Vec<OptionInput>>,
    /// Archive or unarchive.
    pub archived: Option<bool>,
}

/// Updates a definition (ADMIN).
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    patch: DefinitionPatch,
) -> AppResult<definition::Model> {
    principal.require(Permission::ManageCustomAttributes)?;
    let txn = db::begin_write(db).await?;
    let current = tenancy::by_id::<definition::Entity>(principal.org_id, id)
        .one(&txn)
        .await?
        .ok_or_else(|| {
            AppError::invalid("id", UserErrorCode::NotFound, "no such custom attribute")
        })?;
    let mut errors = Errors::default();
    let mut model = current.clone().into_active_model();
    let mut changed = Vec::new();
    if let Some(label) = &patch.label {
        changed.push("label");
        model.label = Set(errors.required_text("label", label, 200));
    }
    if let Some(description) = &patch.description {
        changed.push("description");
        model.description = Set(errors.optional_text("description", description.as_deref(), 2000));
    }
    if let Some(required) = patch.required {
        changed.push("required");
        model.required = Set(required);
    }
    if let Some(options) = &patch.options {
        if current.value_type != AttributeType::Select.as_str() {
            errors.add(
                "options",
                UserErrorCode::Invalid,
                "only SELECT attributes have options",
            );
        }
        changed.push("options");
        let built = build_options(&mut errors, "options", options, &mut Vec::new());
        model.options = Set(json!(built));
    }
    if let Some(archived) = patch.archived {
        if archived == current.archived {
            errors.add(
                "archived",
                UserErrorCode::InvalidState,
                if archived {
                    "the attribute is already archived"
                } else {
                    "the attribute is not archived"
                },
            );
        }
        changed.push("archived");
        model.archived = Set(archived);
    }
    errors.finish()?;
    model.updated_at = Set(Utc::now());
    let updated = model.update(&txn).await?;
    let event = match patch.archived {
        Some(true) => "CUSTOM_ATTRIBUTE_DEFINITION_ARCHIVED",
        Some(false) => "CUSTOM_ATTRIBUTE_DEFINITION_UNARCHIVED",
        None => "CUSTOM_ATTRIBUTE_DEFINITION_UPDATED",
    };
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        event,
        Subject::new("CustomAttributeDefinition", id),
        json!({ "changed": changed }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// The organization's definitions for an entity, by identifier.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    entity: AttributeEntity,
    include_archived: bool,
) -> AppResult<Vec<definition::Model>> {
    principal.require(Permission::WorkContacts)?;
    let mut select = tenancy::in_org::<definition::Entity>(principal.org_id)
        .filter(Column::Entity.eq(entity.as_str()));
    if !include_archived {
        select = select.filter(Column::Archived.eq(false));
    }
    Ok(select.order_by_asc(Column::Identifier).all(conn).await?)
}

/// A value checked against its definition, in its typed column.
#[derive(Clone, Debug, PartialEq)]
pub enum TypedValue {
    /// TEXT and SELECT values.
    Text(String),
    /// NUMBER values.
    Number(f64),
    /// BOOLEAN values.
    Bool(bool),
    /// DATE values.
    Date(NaiveDate),
}

impl TypedValue {
    /// Back to JSON, for the API.
    pub fn to_json(&self) -> Value {
        match self {
            TypedValue::Text(s) => json!(s),
            TypedValue::Number(n) => json!(n),
            TypedValue::Bool(b) => json!(b),
            TypedValue::Date(d) => json!(d.format("%Y-%m-%d").to_string()),
        }
    }
}

/// Checks a (non-null) value against its definition.
pub fn check_value(definition: &definition::Model, value: &Value) -> Result<TypedValue, String> {
    let ty = AttributeType::parse(&definition.value_type).unwrap_or(AttributeType::Text);
    match (ty, value) {
        (AttributeType::Text, Value::String(s)) if s.chars().count() <= 10_000 => {
            Ok(TypedValue::Text(s.clone()))
        }
        (AttributeType::Number, Value::Number(n)) => n
            .as_f64()
            .map(TypedValue::Number)
            .ok_or_else(|| "the number is out of range".to_string()),
        (AttributeType::Boolean, Value::Bool(b)) => Ok(TypedValue::Bool(*b)),
        (AttributeType::Date, Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(TypedValue::Date)
            .map_err(|_| format!("{s:?} is not a date such as 2026-11-23")),
        (AttributeType::Select, Value::String(s)) => {
            match find_option(&options_of(definition), s) {
                Some(option) if option.deactivated => Err(format!("option {s:?} is deactivated")),
                Some(_) => Ok(TypedValue::Text(s.clone())),
                None => Err(format!(
                    "{s:?} is not an option of {}",
                    definition.identifier
                )),
            }
        }
        (ty, other) => Err(format!(
            "{} expects a {} value, got {}",
            definition.identifier,
            ty.as_str(),
            match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "a list",
                Value::Object(_) => "an object",
            }
        )),
    }
}
