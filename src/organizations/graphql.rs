//! GraphQL types, queries and mutations of organizations.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::service::{self, OrganizationPatch, Settings};
use crate::graphql::context::ContextExt;
use crate::graphql::payload::{UserError, split};
use crate::graphql::relay::encode_id;

/// An organization: the tenant that owns every other object.
#[derive(Clone)]
pub struct Organization(pub entity::organization::Model);

/// An organization: the tenant that owns every other object.
#[Object]
impl Organization {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("Organization", self.0.id)
    }

    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Unique, URL-safe handle (used by `login`).
    async fn slug(&self) -> &str {
        &self.0.slug
    }

    /// Name shown to contacts; falls back to `name` when unset.
    async fn display_name(&self) -> &str {
        self.0.display_name.as_deref().unwrap_or(&self.0.name)
    }

    /// IANA timezone used for business hours and reports.
    async fn timezone(&self) -> &str {
        &self.0.timezone
    }

    /// Default locale (BCP 47).
    async fn locale(&self) -> &str {
        &self.0.locale
    }

    /// Typed preferences.
    async fn settings(&self) -> OrganizationSettings {
        let s = Settings::from_json(&self.0.settings);
        OrganizationSettings {
            default_channel_title: s.default_channel_title,
            initial_sms_message: s.initial_sms_message,
        }
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Typed preferences of an organization.
#[derive(SimpleObject)]
pub struct OrganizationSettings {
    /// Title given to new channels when none is chosen.
    pub default_channel_title: Option<String>,
    /// Text sent as the first SMS to a new contact.
    pub initial_sms_message: Option<String>,
}

/// Changes to the organization's settings; omitted fields stay, `null` clears.
#[derive(InputObject, Default)]
pub struct OrganizationSettingsInput {
    /// Title given to new channels when none is chosen.
    pub default_channel_title: MaybeUndefined<String>,
    /// Text sent as the first SMS to a new contact.
    pub initial_sms_message: MaybeUndefined<String>,
}

/// Changes to the caller's organization; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateOrganizationInput {
    /// New name.
    pub name: Option<String>,
    /// New display name; `null` clears it.
    pub display_name: MaybeUndefined<String>,
    /// New IANA timezone, e.g. `Europe/Copenhagen`.
    pub timezone: Option<String>,
    /// New locale, e.g. `en-US`.
    pub locale: Option<String>,
    /// Settings to change.
    pub settings: Option<OrganizationSettingsInput>,
}

/// Result of `updateOrganization`.
#[derive(SimpleObject)]
pub struct UpdateOrganizationPayload {
    /// The organization after the change; null when it failed.
    pub organization: Option<Organization>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Converts GraphQL's three-state input into the service's patch form.
pub fn patch<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

/// Organization queries.
#[derive(Default)]
pub struct OrganizationQuery;

#[Object]
impl OrganizationQuery {
    /// The caller's organization.
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Organization> {
        let app = ctx.app();
        Ok(Organization(
            service::current(app.db(), app.principal()?).await?,
        ))
    }
}

/// Organization mutations.
#[derive(Default)]
pub struct OrganizationMutation;

#[Object]
impl OrganizationMutation {
    /// Changes the caller's organization: name, display name, timezone, locale, settings (ADMIN).
    async fn update_organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UpdateOrganizationInput,
    ) -> async_graphql::Result<UpdateOrganizationPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let settings = input.settings.unwrap_or_default();
        let change = OrganizationPatch {
            name: input.name,
            display_name: patch(input.display_name),
            timezone: input.timezone,
            locale: input.locale,
            default_channel_title: patch(settings.default_channel_title),
            initial_sms_message: patch(settings.initial_sms_message),
        };
        let (organization, user_errors) =
            split(service::update(app.db(), principal, change).await)?;
        Ok(UpdateOrganizationPayload {
            organization: organization.map(Organization),
            user_errors,
        })
    }
}
