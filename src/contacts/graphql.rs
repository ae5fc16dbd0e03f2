//! GraphQL types, queries and mutations of contacts.

use async_graphql::{Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::service::{self, Address, ContactFields, ContactFilter};
use crate::auth::Permission;
use crate::channels::graphql::ChannelTypeGql;
use crate::contact_groups::graphql::{
    ContactGroup, groups_of_contact, prefetch_groups_of_contacts,
};
use crate::custom_attributes::graphql::CustomAttributeDefinition;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::graphql::context::{ById, ContextExt, batch_loader, page_selects};
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, SortDirection, decode_id, encode_id};
use crate::organizations::graphql::patch;
use crate::tags::graphql::Tag;

batch_loader!(
    ContactTagIds,
    Vec<Uuid>,
    service::tag_ids,
    "Tag ids per contact, batched."
);
batch_loader!(
    ContactAttributeValues,
    Vec<entity::contact_attribute_value::Model>,
    service::attribute_values,
    "Attribute values per contact, batched."
);

/// A postal address.
#[derive(SimpleObject, InputObject, Clone, Default)]
#[graphql(input_name = "AddressInput")]
pub struct PostalAddress {
    /// Street and number.
    pub street: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// Region or state.
    pub region: Option<String>,
    /// Country (ISO 3166-1 alpha-2, e.g. `DK`).
    pub country: Option<String>,
}

/// A custom attribute value of a contact.
pub struct CustomAttributeValue(entity::contact_attribute_value::Model);

/// A contact's value of a custom attribute.
#[Object]
impl CustomAttributeValue {
    /// The attribute's identifier.
    async fn identifier(&self) -> &str {
        &self.0.identifier
    }

    /// The value: a string (TEXT, SELECT option value, DATE as `YYYY-MM-DD`), number or boolean.
    async fn value(&self) -> Json<serde_json::Value> {
        Json(service::stored_value(&self.0))
    }

    /// The attribute's definition.
    async fn definition(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<CustomAttributeDefinition>> {
        let definition = ctx
            .app()
            .load::<entity::custom_attribute_definition::Entity>(self.0.definition_id);
        Ok(definition.await?.map(CustomAttributeDefinition))
    }
}

/// Whether a contact agreed to be contacted on a channel.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "ConsentStatus", remote = "service::ConsentStatus")]
pub enum ConsentStatusGql {
    /// The contact agreed (e.g. SMS `START`).
    OptedIn,
    /// The contact refused (e.g. SMS `STOP`).
    OptedOut,
}

/// A contact's consent on one channel type.
#[derive(SimpleObject, Clone)]
pub struct ContactConsent {
    /// The channel type.
    pub channel: ChannelTypeGql,
    /// Opted in or out.
    pub status: ConsentStatusGql,
    /// When the contact gave or withdrew it.
    pub at: DateTime<Utc>,
    /// Where it came from (a web form, an SMS keyword, an import), if known.
    pub source: Option<String>,
}

/// A contact.
#[derive(Clone)]
pub struct Contact(pub entity::contact::Model);

fn strings(value: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

/// A person the organization talks to.
#[Object]
impl Contact {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("Contact", self.0.id)
    }

    /// Name to show: the display name, else first and last name, else email or phone.
    async fn name(&self) -> String {
        let full = [self.0.first_name.as_deref(), self.0.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        self.0
            .display_name
            .clone()
            .or(Some(full).filter(|f| !f.is_empty()))
            .or_else(|| self.0.email.clone())
            .or_else(|| self.0.phone.clone())
            .unwrap_or_default()
    }

    /// Display name.
    async fn display_name(&self) -> Option<&str> {
        self.0.display_name.as_deref()
    }

    /// First name.
    async fn first_name(&self) -> Option<&str> {
        self.0.first_name.as_deref()
    }

    /// Last name.
    async fn last_name(&self) -> Option<&str> {
        self.0.last_name.as_deref()
    }

    /// Middle name.
    async fn middle_name(&self) -> Option<&str> {
        self.0.middle_name.as_deref()
    }

    /// Primary email (lower case).
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    /// Primary phone (E.164).
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }

    /// More email addresses.
    async fn additional_emails(&self) -> Vec<String> {
        strings(&self.0.additional_emails)
    }

    /// More phone numbers.
    async fn additional_phones(&self) -> Vec<String> {
        strings(&self.0.additional_phones)
    }

    /// Avatar image URL.
    async fn avatar_url(&self) -> Option<&str> {
        self.0.avatar_url.as_deref()
    }

    /// The id in another system (unique in the organization).
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }

    /// Company.
    async fn company(&self) -> Option<&str> {
        self.0.company.as_deref()
    }

    /// Postal address.
    async fn address(&self) -> Option<PostalAddress> {
        let a: Address = serde_json::from_value(self.0.address.clone()).unwrap_or_default();
        (a != Address::default()).then_some(PostalAddress {
            street: a.street,
            city: a.city,
            postal_code: a.postal_code,
            region: a.region,
            country: a.country,
        })
    }

    /// Note.
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }

    /// Birth date.
    async fn birth_date(&self) -> Option<NaiveDate> {
        self.0.birth_date
    }

    /// Tags, in the order they were applied.
    async fn tags(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Tag>> {
        let app = ctx.app();
        let ids = app
            .loader::<ContactTagIds>()?
            .load_one(self.0.id)
            .await?
            .unwrap_or_default();
        let tags = app
            .loader::<ById<entity::tag::Entity>>()?
            .load_many(ids.iter().copied())
            .await?;
        Ok(ids
            .iter()
            .filter_map(|id| tags.get(id).cloned().map(Tag))
            .collect())
    }

    /// Custom attribute values, by identifier.
    async fn custom_attributes(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<CustomAttributeValue>> {
        let app = ctx.app();
        let values = app
            .loader::<ContactAttributeValues>()?
            .load_one(self.0.id)
            .await?
            .unwrap_or_default();
        Ok(values.into_iter().map(CustomAttributeValue).collect())
    }

    /// The groups the contact belongs to, statically or by rule, by name. Anonymized contacts
    /// belong to none.
    async fn contact_groups(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ContactGroup>> {
        groups_of_contact(ctx, self.0.id).await
    }

    /// Consent per channel type; channels without a decision are left out.
    async fn consent(&self) -> Vec<ContactConsent> {
        service::consents(&self.0)
            .into_iter()
            .map(|c| ContactConsent {
                channel: c.channel.into(),
                status: c.status.into(),
                at: c.at,
                source: c.source,
            })
            .collect()
    }

    /// When the organization last talked with the contact.
    async fn last_contacted_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_contacted_at
    }

    /// When the contact's personal data was erased.
    async fn anonymized_at(&self) -> Option<DateTime<Utc>> {
        self.0.anonymized_at
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

/// An attribute value a contact must have.
#[derive(InputObject)]
pub struct AttributeMatchInput {
    /// The attribute's identifier.
    pub identifier: String,
    /// The value (string, number or boolean).
    pub value: Json<serde_json::Value>,
}

/// Which contacts to list. All given conditions must hold.
#[derive(InputObject, Default)]
pub struct ContactFilterInput {
    /// Case-insensitive text in names, emails or phones.
    pub search: Option<String>,
    /// Contacts with any of these tags.
    pub tag_ids: Option<Vec<ID>>,
    /// The contact with this external id.
    pub external_id: Option<String>,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
    /// Contacts whose custom attribute has this value.
    pub attribute: Option<AttributeMatchInput>,
    /// Members of this contact group, static or by rule (none when there is no such group).
    pub group_id: Option<ID>,
}

/// What contacts can be ordered by.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[graphql(remote = "service::ContactOrderField")]
pub enum ContactOrderField {
    /// Name.
    #[default]
    Name,
    /// Creation time.
    CreatedAt,
    /// When the organization last talked with the contact; never-contacted contacts come last in
    /// both directions.
    LastContactedAt,
}

/// Order of a contacts list.
#[derive(InputObject, Default)]
pub struct ContactOrder {
    /// What to order by.
    #[graphql(default)]
    pub field: ContactOrderField,
    /// Which way.
    #[graphql(default)]
    pub direction: SortDirection,
}

/// Loads the nested data a page of contacts selects (tags, attribute values and their
/// definitions, groups) with a fixed number of queries each, and feeds it to the request's
/// loaders, so the fields resolve from cache however the resolvers are scheduled.
pub(crate) async fn prefetch(ctx: &Context<'_>, ids: Vec<Uuid>) -> async_graphql::Result<()> {
    let selects = |field: &str| page_selects(ctx, &[field]);
    let app = ctx.app();
    let org_id = app.principal()?.org_id;
    if selects("tags") {
        let mut map = service::tag_ids(app.db(), org_id, &ids).await?;
        let tag_ids: Vec<Uuid> = map.values().flatten().copied().collect();
        let loader = app.loader::<ContactTagIds>()?;
        loader
            .feed_many(
                ids.iter()
                    .map(|id| (*id, map.remove(id).unwrap_or_default())),
            )
            .await;
        app.loader::<ById<entity::tag::Entity>>()?
            .load_many(tag_ids)
            .await?;
    }
    if selects("customAttributes") {
        let mut map = service::attribute_values(app.db(), org_id, &ids).await?;
        let definitions: Vec<Uuid> = map.values().flatten().map(|v| v.definition_id).collect();
        app.loader::<ContactAttributeValues>()?
            .feed_many(
                ids.iter()
                    .map(|id| (*id, map.remove(id).unwrap_or_default())),
            )
            .await;
        if page_selects(ctx, &["customAttributes", "definition"]) {
            app.loader::<ById<entity::custom_attribute_definition::Entity>>()?
                .load_many(definitions)
                .await?;
        }
    }
    if selects("contactGroups") {
        prefetch_groups_of_contacts(ctx, &ids).await?;
    }
    Ok(())
}

/// Contact queries.
#[derive(Default)]
pub struct ContactQuery;

#[Object]
impl ContactQuery {
    /// The organization's contacts.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only contacts matching this filter.")] filter: Option<ContactFilterInput>,
        #[graphql(desc = "Order of the list; by name by default.")] order_by: Option<ContactOrder>,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<Contact>> {
        let app = ctx.app();
        let filter = filter.unwrap_or_default();
        let order = order_by.unwrap_or_default();
        let tag_ids = match filter.tag_ids {
            Some(ids) => Some(
                ids.iter()
                    .map(|id| decode_id(id, "Tag"))
                    .collect::<AppResult<Vec<_>>>()?,
            ),
            None => None,
        };
        let filter = ContactFilter {
            search: filter.search,
            tag_ids,
            external_id: filter.external_id,
            created_after: filter.created_after,
            created_before: filter.created_before,
            attribute: filter.attribute.map(|a| (a.identifier, a.value.0)),
            group_id: filter
                .group_id
                .map(|id| decode_id(&id, "ContactGroup"))
                .transpose()?,
        };
        let args = PageArgs {
            after,
            before,
            first,
            last,
        };
        let (page, total) = service::list(
            app.db(),
            app.principal()?,
            filter,
            (order.field.into(), order.direction),
            &args,
        )
        .await?;
        prefetch(ctx, page.items.iter().map(|(_, c)| c.id).collect()).await?;
        Ok(Connection::new(page.map(Contact), total))
    }

    /// A contact by id; null when there is none.
    async fn contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact's global id.")] id: ID,
    ) -> async_graphql::Result<Option<Contact>> {
        let app = ctx.app();
        app.principal()?.require(Permission::WorkContacts)?;
        let id = decode_id(&id, "Contact")?;
        Ok(app.load::<entity::contact::Entity>(id).await?.map(Contact))
    }
}

/// Contact fields. `createContact` and `replaceContact` treat omitted fields as empty;
/// `updateContact` leaves omitted fields and clears those given as `null`.
#[derive(InputObject, Default)]
pub struct ContactInput {
    /// Display name.
    pub display_name: MaybeUndefined<String>,
    /// First name.
    pub first_name: MaybeUndefined<String>,
    /// Last name.
    pub last_name: MaybeUndefined<String>,
    /// Middle name.
    pub middle_name: MaybeUndefined<String>,
    /// Primary email.
    pub email: MaybeUndefined<String>,
    /// Primary phone (E.164, e.g. +4520123456).
    pub phone: MaybeUndefined<String>,
    /// More email addresses (replaces the list).
    pub additional_emails: Option<Vec<String>>,
    /// More phone numbers (replaces the list).
    pub additional_phones: Option<Vec<String>>,
    /// Avatar image URL.
    pub avatar_url: MaybeUndefined<String>,
    /// The id in another system (unique in the organization).
    pub external_id: MaybeUndefined<String>,
    /// Company.
    pub company: MaybeUndefined<String>,
    /// Postal address.
    pub address: MaybeUndefined<PostalAddress>,
    /// Note.
    pub note: MaybeUndefined<String>,
    /// Birth date.
    pub birth_date: MaybeUndefined<NaiveDate>,
}

impl From<ContactInput> for ContactFields {
    fn from(input: ContactInput) -> Self {
        ContactFields {
            display_name: patch(input.display_name),
            first_name: patch(input.first_name),
            last_name: patch(input.last_name),
            middle_name: patch(input.middle_name),
            email: patch(input.email),
            phone: patch(input.phone),
            additional_emails: input.additional_emails,
            additional_phones: input.additional_phones,
            avatar_url: patch(input.avatar_url),
            external_id: patch(input.external_id),
            company: patch(input.company),
            address: patch(input.address).map(|a| {
                a.map(|a| Address {
                    street: a.street,
                    city: a.city,
                    postal_code: a.postal_code,
                    region: a.region,
                    country: a.country,
                })
            }),
            note: patch(input.note),
            birth_date: patch(input.birth_date),
        }
    }
}

/// Changes to a contact.
#[derive(InputObject)]
pub struct UpdateContactInput {
    /// The contact.
    pub id: ID,
    /// The fields.
    pub contact: ContactInput,
}

/// Tags to apply to or remove from contacts.
#[derive(InputObject)]
pub struct TagContactsInput {
    /// The contacts (at most 100).
    pub contact_ids: Vec<ID>,
    /// The tags (at most 20).
    pub tag_ids: Vec<ID>,
}

/// One attribute value to set.
#[derive(InputObject)]
pub struct AttributeValueInput {
    /// The attribute's identifier.
    pub identifier: String,
    /// The value (string, number, boolean, `YYYY-MM-DD` date); `null` clears it.
    pub value: Option<Json<serde_json::Value>>,
}

/// Custom attribute values to set on a contact.
#[derive(InputObject)]
pub struct SetContactAttributesInput {
    /// The contact.
    pub contact_id: ID,
    /// The values.
    pub values: Vec<AttributeValueInput>,
}

/// A contact's consent on one channel type.
#[derive(InputObject)]
pub struct SetContactConsentInput {
    /// The contact.
    pub contact_id: ID,
    /// The channel type.
    pub channel: ChannelTypeGql,
    /// Opted in or out.
    pub status: ConsentStatusGql,
    /// When the contact gave or withdrew it; now when omitted. Not in the future.
    pub at: Option<DateTime<Utc>>,
    /// Where it came from (a web form, an SMS keyword, an import); at most 200 characters.
    pub source: Option<String>,
}

/// Result of a mutation on one contact.
#[derive(SimpleObject)]
pub struct ContactPayload {
    /// The contact after the change; null when it failed.
    pub contact: Option<Contact>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

impl ContactPayload {
    fn from(result: AppResult<entity::contact::Model>) -> async_graphql::Result<Self> {
        let (contact, user_errors) = split(result)?;
        Ok(Self {
            contact: contact.map(Contact),
            user_errors,
        })
    }
}

/// Result of tagging or untagging contacts.
#[derive(SimpleObject)]
pub struct TagContactsPayload {
    /// The contacts after the change, in input order.
    pub contacts: Vec<Contact>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

fn ids(field: &str, ids: &[ID], type_name: &str, max: usize) -> AppResult<Vec<Uuid>> {
    if ids.len() > max {
        return Err(AppError::invalid(
            field,
            UserErrorCode::TooLong,
            format!("at most {max} ids per call"),
        ));
    }
    ids.iter()
        .enumerate()
        .map(|(i, id)| input_id(&format!("{field}.{i}"), id, type_name))
        .collect()
}

/// Contact mutations.
#[derive(Default)]
pub struct ContactMutation;

#[Object]
impl ContactMutation {
    /// Creates a contact (AGENT).
    async fn create_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ContactInput,
    ) -> async_graphql::Result<ContactPayload> {
        let app = ctx.app();
        ContactPayload::from(service::create(app.db(), app.principal()?, input.into()).await)
    }

    /// Changes the given fields of a contact; `null` clears a field (AGENT).
    async fn update_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UpdateContactInput,
    ) -> async_graphql::Result<ContactPayload> {
        save(ctx, input, false).await
    }

    /// Replaces all fields of a contact; omitted fields are cleared (AGENT).
    async fn replace_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UpdateContactInput,
    ) -> async_graphql::Result<ContactPayload> {
        save(ctx, input, true).await
    }

    /// Applies tags to contacts; inactive tags cannot be applied (AGENT).
    async fn tag_contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: TagContactsInput,
    ) -> async_graphql::Result<TagContactsPayload> {
        change_tags(ctx, input, true).await
    }

    /// Removes tags from contacts (AGENT).
    async fn untag_contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: TagContactsInput,
    ) -> async_graphql::Result<TagContactsPayload> {
        change_tags(ctx, input, false).await
    }

    /// Sets custom attribute values of a contact, validated against their definitions (AGENT).
    async fn set_contact_attributes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: SetContactAttributesInput,
    ) -> async_graphql::Result<ContactPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let values: Vec<(String, Option<serde_json::Value>)> = input
            .values
            .into_iter()
            .map(|v| (v.identifier, v.value.map(|j| j.0)))
            .collect();
        let result = match input_id("contactId", &input.contact_id, "Contact") {
            Ok(id) => service::set_attributes(app.db(), principal, id, &values).await,
            Err(e) => Err(e),
        };
        ContactPayload::from(result)
    }

    /// Records a contact's consent (opted in or out) on one channel type (AGENT).
    async fn set_contact_consent(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: SetContactConsentInput,
    ) -> async_graphql::Result<ContactPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("contactId", &input.contact_id, "Contact") {
            Ok(id) => {
                service::set_consent(
                    app.db(),
                    principal,
                    id,
                    input.channel.into(),
                    input.status.into(),
                    input.at,
                    input.source,
                )
                .await
            }
            Err(e) => Err(e),
        };
        ContactPayload::from(result)
    }
}

async fn save(
    ctx: &Context<'_>,
    input: UpdateContactInput,
    replace: bool,
) -> async_graphql::Result<ContactPayload> {
    let app = ctx.app();
    let principal = app.principal()?;
    let result = match input_id("id", &input.id, "Contact") {
        Ok(id) => service::update(app.db(), principal, id, input.contact.into(), replace).await,
        Err(e) => Err(e),
    };
    ContactPayload::from(result)
}

async fn change_tags(
    ctx: &Context<'_>,
    input: TagContactsInput,
    apply: bool,
) -> async_graphql::Result<TagContactsPayload> {
    let app = ctx.app();
    let principal = app.principal()?;
    let decoded = ids("contactIds", &input.contact_ids, "Contact", 100)
        .and_then(|contacts| Ok((contacts, ids("tagIds", &input.tag_ids, "Tag", 20)?)));
    let result = match decoded {
        Ok((contacts, tags)) if apply => service::tag(app.db(), principal, &contacts, &tags).await,
        Ok((contacts, tags)) => service::untag(app.db(), principal, &contacts, &tags).await,
        Err(e) => Err(e),
    };
    let (contacts, user_errors) = split(result)?;
    Ok(TagContactsPayload {
        contacts: contacts
            .unwrap_or_default()
            .into_iter()
            .map(Contact)
            .collect(),
        user_errors,
    })
}
