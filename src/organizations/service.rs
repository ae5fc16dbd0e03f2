//! Business rules for organizations.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::auth::{Permission, Principal, Role};
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::events::{self, Subject};
use crate::validate::Errors;
use crate::{db, tenancy, tokens, users};

/// Typed preferences of an organization.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Title given to new channels when none is chosen.
    pub default_channel_title: Option<String>,
    /// Text sent as the first SMS to a new contact.
    pub initial_sms_message: Option<String>,
}

impl Settings {
    /// Reads the stored JSON; unknown or malformed keys fall back to defaults.
    pub fn from_json(value: &serde_json::Value) -> Self {
        serde_json::from_value(value.clone()).unwrap_or_default()
    }
}

/// A new organization with its first owner.
#[derive(Clone, Debug)]
pub struct NewOrganization {
    /// Name.
    pub name: String,
    /// URL-safe unique handle; derived from the name when absent.
    pub slug: Option<String>,
    /// IANA timezone; `UTC` when absent.
    pub timezone: Option<String>,
    /// Locale; `en-US` when absent.
    pub locale: Option<String>,
    /// The owner's email.
    pub owner_email: String,
    /// The owner's display name; the email's local part when absent.
    pub owner_name: Option<String>,
}

/// What creating an organization returns.
#[derive(Debug)]
pub struct CreatedOrganization {
    /// The organization.
    pub organization: entity::organization::Model,
    /// Its owner.
    pub owner: entity::user::Model,
    /// The owner's API token secret (shown once).
    pub owner_token: String,
}

fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').chars().take(48).collect()
}

fn valid_slug(slug: &str) -> bool {
    (2..=48).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

/// Creates an organization, its owner and an owner API token, in one transaction.
pub async fn create_with_owner(
    db: &DatabaseConnection,
    input: NewOrganization,
) -> AppResult<CreatedOrganization> {
    let mut errors = Errors::default();
    let name = errors.required_text("name", &input.name, 200);
    let slug = input.slug.clone().unwrap_or_else(|| slugify(&name));
    if !valid_slug(&slug) {
        errors.add(
            "slug",
            UserErrorCode::Invalid,
            format!("{slug:?} is not a slug: 2-48 lower-case letters, digits and dashes"),
        );
    }
    let timezone = errors.timezone("timezone", input.timezone.as_deref().unwrap_or("UTC"));
    let locale = errors.locale("locale", input.locale.as_deref().unwrap_or("en-US"));
    errors.finish()?;

    let txn = db::begin_write(db).await?;
    let taken = entity::organization::Entity::find()
        .filter(entity::organization::Column::Slug.eq(&slug))
        .count(&txn)
        .await?;
    if taken > 0 {
        return Err(AppError::invalid(
            "slug",
            UserErrorCode::Taken,
            format!("an organization with slug {slug:?} exists"),
        ));
    }
    let now = Utc::now();
    let organization = entity::organization::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name),
        slug: Set(slug),
        display_name: Set(None),
        timezone: Set(timezone),
        locale: Set(locale),
        settings: Set(json!({})),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    events::record(
        &txn,
        organization.id,
        None,
        "ORGANIZATION_CREATED",
        Subject::new("Organization", organization.id),
        json!({ "name": organization.name, "slug": organization.slug }),
    )
    .await?;
    let owner = users::service::insert(
        &txn,
        organization.id,
        None,
        users::service::NewUser {
            email: input.owner_email,
            display_name: input.owner_name,
            roles: vec![Role::Owner],
            ..Default::default()
        },
    )
    .await?;
    let (_, owner_token) = tokens::service::issue(
        &txn,
        &owner,
        tokens::service::TokenKind::Api,
        "owner token",
        None,
        None,
    )
    .await?;
    txn.commit().await?;
    Ok(CreatedOrganization {
        organization,
        owner,
        owner_token,
    })
}

/// The caller's organization.
pub async fn current(
    db: &DatabaseConnection,
    principal: &Principal,
) -> AppResult<entity::organization::Model> {
    principal.require(Permission::ReadDirectory)?;
    find(db, principal.org_id).await
}

async fn find<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
) -> AppResult<entity::organization::Model> {
    tenancy::by_id::<entity::organization::Entity>(org_id, org_id)
        .one(conn)
        .await?
        .ok_or(AppError::NotFound("organization".into()))
}

/// Changes to an organization; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct OrganizationPatch {
    /// New name.
    pub name: Option<String>,
    /// New display name.
    pub display_name: Option<Option<String>>,
    /// New IANA timezone.
    pub timezone: Option<String>,
    /// New locale.
    pub locale: Option<String>,
    /// New default channel title.
    pub default_channel_title: Option<Option<String>>,
    /// New initial SMS message.
    pub initial_sms_message: Option<Option<String>>,
}

/// Updates the caller's organization (ADMIN).
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    patch: OrganizationPatch,
) -> AppResult<entity::organization::Model> {
    principal.require(Permission::ManageOrganization)?;
    let mut errors = Errors::default();
    let name = patch.name.map(|n| errors.required_text("name", &n, 200));
    let display_name = patch
        .display_name
        .map(|d| errors.optional_text("displayName", d.as_deref(), 200));
    let timezone = patch.timezone.map(|t| errors.timezone("timezone", &t));
    let locale = patch.locale.map(|l| errors.locale("locale", &l));
    let channel_title = patch
        .default_channel_title
        .map(|t| errors.optional_text("settings.defaultChannelTitle", t.as_deref(), 200));
    let sms = patch
        .initial_sms_message
        .map(|t| errors.optional_text("settings.initialSmsMessage", t.as_deref(), 1600));
    errors.finish()?;

    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id).await?;
    let mut settings = Settings::from_json(&current.settings);
    let mut changed = Vec::new();
    let mut model = current.clone().into_active_model();
    if let Some(name) = name {
        changed.push("name");
        model.name = Set(name);
    }
    if let Some(display_name) = display_name {
        changed.push("displayName");
        model.display_name = Set(display_name);
    }
    if let Some(timezone) = timezone {
        changed.push("timezone");
        model.timezone = Set(timezone);
    }
    if let Some(locale) = locale {
        changed.push("locale");
        model.locale = Set(locale);
    }
    if let Some(title) = channel_title {
        changed.push("settings.defaultChannelTitle");
        settings.default_channel_title = title;
    }
    if let Some(sms) = sms {
        changed.push("settings.initialSmsMessage");
        settings.initial_sms_message = sms;
    }
    model.settings = Set(serde_json::to_value(&settings).map_err(AppError::internal)?);
    model.updated_at = Set(Utc::now());
    let updated = model.update(&txn).await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "ORGANIZATION_UPDATED",
        Subject::new("Organization", updated.id),
        json!({ "changed": changed }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Whether the database holds no organization yet.
pub async fn is_empty(db: &DatabaseConnection) -> AppResult<bool> {
    Ok(entity::organization::Entity::find().count(db).await? == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Acme Support, Inc."), "acme-support-inc");
        assert!(valid_slug("acme-2"));
        assert!(!valid_slug("-acme"));
        assert!(!valid_slug("Acme"));
    }
}
