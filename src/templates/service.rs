//! Business rules for message templates.
//!
//! A template is a name with variants: each variant is for one channel type or any, and for one
//! locale or none (the fallback). Sending picks the variant for the channel type and locale at
//! hand ([`resolve`]): the exact channel type before "any", and within each the exact locale, then
//! its language (`en` for `en-US`), then the variant without a locale.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, IntoActiveModel,
    PaginatorTrait, QueryFilter, Set,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::language::{self, Unrenderable};
use crate::auth::{Permission, Principal};
use crate::channels::ChannelType;
use crate::db::{self, like_pattern};
use crate::error::{AppError, AppResult, FieldError, UserErrorCode};
use crate::events::{self, Subject};
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::tenancy;
use crate::validate::Errors;

use entity::template::{self, Column};

/// Longest name.
const MAX_NAME: usize = 100;
/// Longest subject.
const MAX_SUBJECT: usize = 998;
/// Longest text or HTML body, in characters.
const MAX_BODY: usize = 100_000;

/// A variant's content and identity, as given.
#[derive(Clone, Debug, Default)]
pub struct TemplateInput {
    /// Name shared by the variants.
    pub name: String,
    /// The channel type it is for; `None` for any.
    pub channel_type: Option<ChannelType>,
    /// BCP 47 locale; `None` for the fallback.
    pub locale: Option<String>,
    /// Subject (email).
    pub subject: Option<String>,
    /// Text body.
    pub text: String,
    /// HTML body (email).
    pub html: Option<String>,
}

/// Changes to a variant; `None` keeps a field, `Some(None)` clears an optional one.
#[derive(Clone, Debug, Default)]
pub struct TemplatePatch {
    /// New name.
    pub name: Option<String>,
    /// New channel type.
    pub channel_type: Option<Option<ChannelType>>,
    /// New locale.
    pub locale: Option<Option<String>>,
    /// New subject.
    pub subject: Option<Option<String>>,
    /// New text body.
    pub text: Option<String>,
    /// New HTML body.
    pub html: Option<Option<String>>,
}

/// A checked variant, ready to store.
struct Checked {
    name: String,
    name_key: String,
    channel_type: Option<ChannelType>,
    locale: Option<String>,
    subject: Option<String>,
    text: String,
    html: Option<String>,
    variables: Vec<String>,
}

impl Checked {
    fn variant_key(&self) -> String {
        variant_key(
            &self.name_key,
            self.channel_type,
            self.locale.as_deref().map(str::to_lowercase).as_deref(),
        )
    }
}

fn variant_key(name_key: &str, channel_type: Option<ChannelType>, locale: Option<&str>) -> String {
    format!(
        "{name_key}|{}|{}",
        channel_type.map_or("*", ChannelType::as_str),
        locale.unwrap_or("*")
    )
}

/// `en-us` → `en-US`, `zh-hant-tw` → `zh-Hant-TW`.
fn canonical_locale(locale: &str) -> String {
    locale
        .split('-')
        .enumerate()
        .map(|(i, part)| match (i, part.len()) {
            (0, _) => part.to_lowercase(),
            (_, 2) => part.to_uppercase(),
            (_, 4) => {
                let mut chars = part.chars();
                chars.next().map_or_else(String::new, |first| {
                    first
                        .to_uppercase()
                        .chain(chars.flat_map(char::to_lowercase))
                        .collect()
                })
            }
            _ => part.to_lowercase(),
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Checks one body: its length and its placeholders; adds its variables.
fn check_body(
    errors: &mut Errors,
    field: &str,
    value: &str,
    max: usize,
    variables: &mut Vec<String>,
) {
    if value.chars().count() > max {
        errors.add(
            field,
            UserErrorCode::TooLong,
            format!("{field} must be at most {max} characters"),
        );
        return;
    }
    match language::parse(value) {
        Ok(parsed) => {
            for variable in parsed.variables() {
                if !variables.iter().any(|v| v == variable) {
                    variables.push(variable.to_string());
                }
            }
        }
        Err(error) => errors.add(field, UserErrorCode::Invalid, format!("{field}: {error}")),
    }
}

fn check(input: TemplateInput) -> AppResult<Checked> {
    let mut errors = Errors::default();
    let name = errors.required_text("name", &input.name, MAX_NAME);
    let locale = input
        .locale
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| canonical_locale(&errors.locale("locale", l)));
    let subject = errors.optional_text("subject", input.subject.as_deref(), MAX_SUBJECT);
    let html = input.html.filter(|h| !h.trim().is_empty());
    if input
        .channel_type
        .is_some_and(|channel| channel != ChannelType::Email)
    {
        for (field, given) in [("subject", subject.is_some()), ("html", html.is_some())] {
            if given {
                errors.add(
                    field,
                    UserErrorCode::Invalid,
                    format!("{field} is only for email templates (or those for any channel)"),
                );
            }
        }
    }
    let mut variables = Vec::new();
    if let Some(subject) = &subject {
        check_body(&mut errors, "subject", subject, MAX_SUBJECT, &mut variables);
    }
    if input.text.trim().is_empty() {
        errors.add("text", UserErrorCode::Required, "text must not be empty");
    } else {
        check_body(&mut errors, "text", &input.text, MAX_BODY, &mut variables);
    }
    if let Some(html) = &html {
        check_body(&mut errors, "html", html, MAX_BODY, &mut variables);
    }
    errors.finish()?;
    Ok(Checked {
        name_key: name.to_lowercase(),
        name,
        channel_type: input.channel_type,
        locale,
        subject,
        text: input.text,
        html,
        variables,
    })
}

async fn variant_taken<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    checked: &Checked,
    except: Option<Uuid>,
) -> AppResult<()> {
    let mut select = tenancy::in_org::<template::Entity>(org_id)
        .filter(Column::VariantKey.eq(checked.variant_key()));
    if let Some(id) = except {
        select = select.filter(Column::Id.ne(id));
    }
    if select.count(conn).await? == 0 {
        return Ok(());
    }
    Err(AppError::invalid(
        "name",
        UserErrorCode::Taken,
        format!(
            "template {:?} already has a variant for {} and {}",
            checked.name,
            checked
                .channel_type
                .map_or("any channel".to_string(), |c| c.as_str().to_string()),
            checked
                .locale
                .as_deref()
                .map_or("no locale".to_string(), |l| format!("locale {l}")),
        ),
    ))
}

fn describe(model: &template::Model) -> Value {
    json!({
        "name": model.name,
        "channelType": model.channel_type,
        "locale": model.locale,
    })
}

async fn record<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    kind: &str,
    model: &template::Model,
    mut payload: Value,
) -> AppResult<()> {
    if let (Value::Object(payload), Value::Object(described)) = (&mut payload, describe(model)) {
        payload.extend(described);
    }
    events::record(
        conn,
        principal.org_id,
        Some(principal.user_id()),
        kind,
        Subject::new("Template", model.id),
        payload,
    )
    .await?;
    Ok(())
}

/// Creates a template variant (TEAM_LEAD).
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    input: TemplateInput,
) -> AppResult<template::Model> {
    principal.require(Permission::ManageRouting)?;
    let checked = check(input)?;
    let txn = db::begin_write(db).await?;
    variant_taken(&txn, principal.org_id, &checked, None).await?;
    let now = Utc::now();
    let variant_key = checked.variant_key();
    let model = template::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(principal.org_id),
        name: Set(checked.name),
        name_key: Set(checked.name_key),
        channel_type: Set(checked.channel_type.map(|c| c.as_str().to_string())),
        locale: Set(checked.locale),
        variant_key: Set(variant_key),
        subject: Set(checked.subject),
        text: Set(checked.text),
        html: Set(checked.html),
        variables: Set(json!(checked.variables)),
        archived_at: Set(None),
        created_by: Set(Some(principal.user_id())),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    record(&txn, principal, "TEMPLATE_CREATED", &model, json!({})).await?;
    txn.commit().await?;
    Ok(model)
}

async fn find<C: ConnectionTrait>(conn: &C, org_id: Uuid, id: Uuid) -> AppResult<template::Model> {
    tenancy::by_id::<template::Entity>(org_id, id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid("id", UserErrorCode::NotFound, "no such template"))
}

/// The stored input of `model`, for patching.
fn input_of(model: &template::Model) -> TemplateInput {
    TemplateInput {
        name: model.name.clone(),
        channel_type: model.channel_type.as_deref().and_then(ChannelType::parse),
        locale: model.locale.clone(),
        subject: model.subject.clone(),
        text: model.text.clone(),
        html: model.html.clone(),
    }
}

/// Changes a template variant (TEAM_LEAD); the result is checked as a whole.
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    patch: TemplatePatch,
) -> AppResult<template::Model> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id).await?;
    let mut input = input_of(&current);
    let mut changed = Vec::new();
    if let Some(name) = patch.name {
        input.name = name;
        changed.push("name");
    }
    if let Some(channel_type) = patch.channel_type {
        input.channel_type = channel_type;
        changed.push("channelType");
    }
    if let Some(locale) = patch.locale {
        input.locale = locale;
        changed.push("locale");
    }
    if let Some(subject) = patch.subject {
        input.subject = subject;
        changed.push("subject");
    }
    if let Some(text) = patch.text {
        input.text = text;
        changed.push("text");
    }
    if let Some(html) = patch.html {
        input.html = html;
        changed.push("html");
    }
    let checked = check(input)?;
    variant_taken(&txn, principal.org_id, &checked, Some(id)).await?;
    let variant_key = checked.variant_key();
    let mut model = current.into_active_model();
    model.name = Set(checked.name);
    model.name_key = Set(checked.name_key);
    model.channel_type = Set(checked.channel_type.map(|c| c.as_str().to_string()));
    model.locale = Set(checked.locale);
    model.variant_key = Set(variant_key);
    model.subject = Set(checked.subject);
    model.text = Set(checked.text);
    model.html = Set(checked.html);
    model.variables = Set(json!(checked.variables));
    model.updated_at = Set(Utc::now());
    let updated = model.update(&txn).await?;
    record(
        &txn,
        principal,
        "TEMPLATE_UPDATED",
        &updated,
        json!({ "changed": changed }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Archives a variant (it is no longer chosen for sending) or brings it back (TEAM_LEAD).
pub async fn set_archived(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    archived: bool,
) -> AppResult<template::Model> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id).await?;
    if current.archived_at.is_some() == archived {
        return Err(AppError::invalid(
            "id",
            UserErrorCode::InvalidState,
            if archived {
                "template is already archived"
            } else {
                "template is not archived"
            },
        ));
    }
    let mut model = current.into_active_model();
    let now = Utc::now();
    model.archived_at = Set(archived.then_some(now));
    model.updated_at = Set(now);
    let updated = model.update(&txn).await?;
    let kind = if archived {
        "TEMPLATE_ARCHIVED"
    } else {
        "TEMPLATE_UNARCHIVED"
    };
    record(&txn, principal, kind, &updated, json!({})).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Which templates to list.
#[derive(Clone, Debug, Default)]
pub struct TemplateFilter {
    /// Case-insensitive text in the name.
    pub search: Option<String>,
    /// Variants with exactly this name (any case).
    pub name: Option<String>,
    /// Variants for this channel type (not those for any channel).
    pub channel_type: Option<ChannelType>,
    /// Variants in this locale.
    pub locale: Option<String>,
    /// Archived variants instead of the others.
    pub archived: bool,
}

/// One page of template variants, by name.
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: TemplateFilter,
    args: &PageArgs,
) -> AppResult<(Page<template::Model>, TotalCount)> {
    principal.require(Permission::WorkConversations)?;
    let mut select = tenancy::in_org::<template::Entity>(principal.org_id);
    select = if filter.archived {
        select.filter(Column::ArchivedAt.is_not_null())
    } else {
        select.filter(Column::ArchivedAt.is_null())
    };
    if let Some(name) = filter.name.as_deref() {
        select = select.filter(Column::NameKey.eq(name.trim().to_lowercase()));
    }
    if let Some(channel_type) = filter.channel_type {
        select = select.filter(Column::ChannelType.eq(channel_type.as_str()));
    }
    if let Some(locale) = filter.locale.as_deref() {
        select = select.filter(Column::Locale.eq(canonical_locale(locale.trim())));
    }
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        select = select.filter(Column::NameKey.like(like_pattern(search)));
    }
    let sort = Sort {
        name: "NAME",
        column: Column::NameKey,
        direction: SortDirection::Asc,
        value: |m: &template::Model| SortValue::Text(m.name_key.clone()),
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "templates", &sort, args).await?;
    Ok((page, total))
}

/// The variant of template `name` to use on `channel_type` in `locale`: the exact channel type
/// before "any"; within each, the exact locale, its language, then no locale. Archived variants
/// are never chosen.
pub async fn resolve<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    name: &str,
    channel_type: Option<ChannelType>,
    locale: Option<&str>,
) -> AppResult<Option<template::Model>> {
    let variants = tenancy::in_org::<template::Entity>(org_id)
        .filter(Column::NameKey.eq(name.trim().to_lowercase()))
        .filter(Column::ArchivedAt.is_null())
        .all(conn)
        .await?;
    let locale = locale.map(|l| canonical_locale(l.trim()));
    let language = locale
        .as_deref()
        .and_then(|l| l.split('-').next())
        .map(str::to_string);
    let mut locales: Vec<Option<&str>> = Vec::new();
    if let Some(locale) = locale.as_deref() {
        locales.push(Some(locale));
    }
    if let Some(language) = language
        .as_deref()
        .filter(|l| Some(*l) != locale.as_deref())
    {
        locales.push(Some(language));
    }
    locales.push(None);
    let mut channels: Vec<Option<&str>> = Vec::new();
    if let Some(channel) = channel_type {
        channels.push(Some(channel.as_str()));
    }
    channels.push(None);
    for channel in &channels {
        for locale in &locales {
            if let Some(found) = variants
                .iter()
                .find(|v| v.channel_type.as_deref() == *channel && v.locale.as_deref() == *locale)
            {
                return Ok(Some(found.clone()));
            }
        }
    }
    Ok(None)
}

/// Which template to render.
#[derive(Clone, Debug)]
pub enum Which {
    /// This variant.
    Id(Uuid),
    /// The variant of this name for a channel type and locale (see [`resolve`]).
    Name {
        /// Template name.
        name: String,
        /// The channel type it will be sent on.
        channel_type: Option<ChannelType>,
        /// The recipient's locale.
        locale: Option<String>,
    },
}

/// A rendered template.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// The variant used.
    pub template: template::Model,
    /// Rendered subject.
    pub subject: Option<String>,
    /// Rendered text body.
    pub text: String,
    /// Rendered HTML body.
    pub html: Option<String>,
}

fn text(value: &Option<String>) -> Value {
    value
        .as_ref()
        .map_or(Value::Null, |v| Value::String(v.clone()))
}

/// The variables every rendering has: the contact's (when given), the organization's and the
/// caller's (`agent`).
async fn built_in<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    contact_id: Option<Uuid>,
) -> AppResult<Map<String, Value>> {
    let mut variables = Map::new();
    if let Some(id) = contact_id {
        let contact = tenancy::by_id::<entity::contact::Entity>(principal.org_id, id)
            .one(conn)
            .await?
            .ok_or_else(|| {
                AppError::invalid("contactId", UserErrorCode::NotFound, "no such contact")
            })?;
        let name = contact.display_name.clone().or_else(|| {
            let parts: Vec<&str> = [&contact.first_name, &contact.last_name]
                .into_iter()
                .filter_map(|p| p.as_deref())
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        });
        variables.insert(
            "contact".into(),
            json!({
                "name": name,
                "firstName": text(&contact.first_name),
                "lastName": text(&contact.last_name),
                "middleName": text(&contact.middle_name),
                "email": text(&contact.email),
                "phone": text(&contact.phone),
                "company": text(&contact.company),
                "externalId": text(&contact.external_id),
            }),
        );
    }
    if let Some(org) =
        tenancy::by_id::<entity::organization::Entity>(principal.org_id, principal.org_id)
            .one(conn)
            .await?
    {
        variables.insert(
            "organization".into(),
            json!({ "name": org.display_name.unwrap_or(org.name) }),
        );
    }
    if let Some(user) =
        tenancy::by_id::<entity::user::Entity>(principal.org_id, principal.user_id())
            .one(conn)
            .await?
    {
        variables.insert(
            "agent".into(),
            json!({
                "name": user.display_name,
                "firstName": text(&user.first_name),
                "lastName": text(&user.last_name),
                "email": user.email,
            }),
        );
    }
    Ok(variables)
}

/// `over` laid over `base`, objects merged key by key.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, over) => *base = over,
    }
}

/// Renders a template with `variables` (a JSON object) over the built-in ones (`contact.*` for
/// `contact_id`, `organization.name`, `agent.*`). Every variable that cannot be rendered is an
/// error naming it, at `variables.<name>`.
pub async fn render(
    db: &DatabaseConnection,
    principal: &Principal,
    which: Which,
    contact_id: Option<Uuid>,
    variables: Option<Value>,
) -> AppResult<Rendered> {
    principal.require(Permission::WorkConversations)?;
    if variables.as_ref().is_some_and(|v| !v.is_object()) {
        return Err(AppError::invalid(
            "variables",
            UserErrorCode::Invalid,
            "variables must be a JSON object",
        ));
    }
    let template = match which {
        Which::Id(id) => find(db, principal.org_id, id).await?,
        Which::Name {
            name,
            channel_type,
            locale,
        } => resolve(db, principal.org_id, &name, channel_type, locale.as_deref())
            .await?
            .ok_or_else(|| {
                AppError::invalid(
                    "name",
                    UserErrorCode::NotFound,
                    format!("no template named {name:?} for this channel type and locale"),
                )
            })?,
    };
    let mut all = Value::Object(built_in(db, principal, contact_id).await?);
    if let Some(variables) = variables {
        merge(&mut all, variables);
    }
    render_model(template, &all)
}

/// Renders a stored variant with `variables`.
pub fn render_model(template: template::Model, variables: &Value) -> AppResult<Rendered> {
    let mut failed: Vec<(&str, Unrenderable)> = Vec::new();
    let mut part = |field: &'static str, source: Option<&str>| -> Option<String> {
        let parsed = language::parse(source?).ok()?;
        let rendered = if field == "html" {
            parsed.render_html(variables)
        } else {
            parsed.render(variables)
        };
        match rendered {
            Ok(text) => Some(text),
            Err(errors) => {
                failed.extend(errors.into_iter().map(|e| (field, e)));
                None
            }
        }
    };
    let subject = part("subject", template.subject.as_deref());
    let text = part("text", Some(&template.text)).unwrap_or_default();
    let html = part("html", template.html.as_deref());
    if !failed.is_empty() {
        let mut errors: Vec<FieldError> = Vec::new();
        let mut named: Vec<String> = Vec::new();
        for (field, error) in failed {
            let path = format!("variables.{}", error.variable());
            if named.contains(&path) {
                continue;
            }
            named.push(path.clone());
            let code = match error {
                Unrenderable::Missing(_) => UserErrorCode::Required,
                Unrenderable::NotText(_) => UserErrorCode::Invalid,
            };
            errors.push(FieldError::new(
                &path,
                code,
                format!("{error} (in the {field})"),
            ));
        }
        return Err(AppError::Validation(errors));
    }
    Ok(Rendered {
        template,
        subject,
        text,
        html,
    })
}

#[cfg(test)]
mod tests {
    use super::canonical_locale;

    #[test]
    fn locales_are_written_canonically() {
        assert_eq!(canonical_locale("en-us"), "en-US");
        assert_eq!(canonical_locale("ZH-hant-tw"), "zh-Hant-TW");
        assert_eq!(canonical_locale("de"), "de");
    }
}
