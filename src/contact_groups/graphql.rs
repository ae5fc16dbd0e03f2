//! GraphQL types, queries and mutations of contact groups.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::rules::{self, Rule};
use super::service::{self, GroupPatch, MAX_MEMBERS_PER_CALL, NewGroup};
use crate::auth::Permission;
use crate::contacts::graphql::{Contact, ContactOrder, prefetch};
use crate::contacts::service::ContactFilter;
use crate::error::{AppError, AppResult};
use crate::graphql::context::{ContextExt, ScopedLoader, page_selects};
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, decode_id, encode_id};
use crate::organizations::graphql::patch;

/// Member counts per group, batched (computed by the database).
pub struct ContactGroupCounts {
    db: DatabaseConnection,
    org_id: Uuid,
}

impl ScopedLoader for ContactGroupCounts {
    fn new(db: DatabaseConnection, org_id: Uuid) -> Self {
        Self { db, org_id }
    }
}

impl Loader<Uuid> for ContactGroupCounts {
    type Value = u64;
    type Error = AppError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, u64>, AppError> {
        service::contact_counts_by_id(&self.db, self.org_id, keys).await
    }
}

/// The groups of each contact (static or by rule), batched.
pub struct ContactGroupsOfContact {
    db: DatabaseConnection,
    org_id: Uuid,
}

impl ScopedLoader for ContactGroupsOfContact {
    fn new(db: DatabaseConnection, org_id: Uuid) -> Self {
        Self { db, org_id }
    }
}

impl Loader<Uuid> for ContactGroupsOfContact {
    type Value = Vec<entity::contact_group::Model>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<entity::contact_group::Model>>, AppError> {
        service::groups_of_contacts(&self.db, self.org_id, keys).await
    }
}

/// How a rule compares a contact's field with the rule's value.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "ContactGroupRuleOperator", remote = "rules::Operator")]
pub enum RuleOperatorGql {
    /// Equal (text exactly). On emails and phones: any of them equals the value.
    Eq,
    /// Not equal; also true when the contact has no value. On emails and phones: none equals the
    /// value.
    Ne,
    /// Greater than (numbers, dates and timestamps).
    Gt,
    /// Less than (numbers, dates and timestamps).
    Lt,
    /// Greater than or equal (numbers, dates and timestamps).
    Gte,
    /// Less than or equal (numbers, dates and timestamps).
    Lte,
    /// Equal to one of the values of a list (not for booleans).
    In,
    /// Contains the text, ignoring case (text fields only). On emails and phones: any of them does.
    Contains,
}

/// A condition on contacts, as in Multisender's account filters.
#[derive(SimpleObject, Clone)]
pub struct ContactGroupRule {
    /// The field: a contact field (`firstName`, `emails`, `address.city`, `birthDate`,
    /// `createdAt`, …) or a custom attribute as `attributes.<identifier>`.
    pub field: String,
    /// The comparison.
    pub operator: RuleOperatorGql,
    /// The value: a string, number or boolean of the field's type (dates as `YYYY-MM-DD`,
    /// timestamps in RFC 3339), or a list of them for `IN`.
    pub value: Json<serde_json::Value>,
}

/// A contact group.
#[derive(Clone)]
pub struct ContactGroup(pub entity::contact_group::Model);

/// A group of contacts: its static members together with every contact matching all of its rules
/// (a group without rules is static; one with rules is a segment). Anonymized contacts belong to
/// no group.
#[Object]
impl ContactGroup {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("ContactGroup", self.0.id)
    }

    /// Name, unique in the organization regardless of case.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Description.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// The rules, all of which a contact must match to be a member by rule; empty for a static
    /// group.
    async fn rules(&self) -> async_graphql::Result<Vec<ContactGroupRule>> {
        Ok(service::stored_rules(&self.0)?
            .into_iter()
            .map(|r| ContactGroupRule {
                field: r.field,
                operator: r.operator.into(),
                value: Json(r.value),
            })
            .collect())
    }

    /// The members (static and by rule), by name unless ordered otherwise.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Order of the list; by name by default.")] order_by: Option<ContactOrder>,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<Contact>> {
        let app = ctx.app();
        let order = order_by.unwrap_or_default();
        let filter = ContactFilter {
            group_id: Some(self.0.id),
            ..Default::default()
        };
        let args = PageArgs {
            after,
            before,
            first,
            last,
        };
        let (page, total) = crate::contacts::service::list(
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

    /// Number of members (static and by rule), counted by the database.
    async fn contact_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        Ok(ctx
            .app()
            .loader::<ContactGroupCounts>()?
            .load_one(self.0.id)
            .await?
            .unwrap_or_default())
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

/// The groups a contact belongs to (static or by rule), by name; batched across a request, and
/// prefilled for a page of contacts.
pub async fn groups_of_contact(
    ctx: &Context<'_>,
    contact_id: Uuid,
) -> async_graphql::Result<Vec<ContactGroup>> {
    let groups = ctx
        .app()
        .loader::<ContactGroupsOfContact>()?
        .load_one(contact_id)
        .await?
        .unwrap_or_default();
    Ok(groups.into_iter().map(ContactGroup).collect())
}

/// Computes the groups of a page of contacts in a fixed number of statements and feeds them to
/// the request's loader.
pub async fn prefetch_groups_of_contacts(
    ctx: &Context<'_>,
    contact_ids: &[Uuid],
) -> async_graphql::Result<()> {
    let app = ctx.app();
    let org_id = app.principal()?.org_id;
    let mut map = service::groups_of_contacts(app.db(), org_id, contact_ids).await?;
    app.loader::<ContactGroupsOfContact>()?
        .feed_many(
            contact_ids
                .iter()
                .map(|id| (*id, map.remove(id).unwrap_or_default())),
        )
        .await;
    Ok(())
}

/// Contact group queries.
#[derive(Default)]
pub struct ContactGroupQuery;

#[Object]
impl ContactGroupQuery {
    /// The organization's contact groups, by name.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    async fn contact_groups(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Case-insensitive text in the name.")] search: Option<String>,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<ContactGroup>> {
        let app = ctx.app();
        let args = PageArgs {
            after,
            before,
            first,
            last,
        };
        let (page, total) =
            service::list(app.db(), app.principal()?, search.as_deref(), &args).await?;
        if page_selects(ctx, &["contactCount"]) {
            let groups: Vec<_> = page.items.iter().map(|(_, g)| g.clone()).collect();
            let counts = service::contact_counts(app.db(), &groups).await?;
            app.loader::<ContactGroupCounts>()?
                .feed_many(
                    groups
                        .iter()
                        .map(|g| (g.id, counts.get(&g.id).copied().unwrap_or_default())),
                )
                .await;
        }
        Ok(Connection::new(page.map(ContactGroup), total))
    }

    /// A contact group by id; null when there is none.
    async fn contact_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group's global id.")] id: ID,
    ) -> async_graphql::Result<Option<ContactGroup>> {
        let app = ctx.app();
        app.principal()?.require(Permission::WorkContacts)?;
        let id = decode_id(&id, "ContactGroup")?;
        Ok(app
            .load::<entity::contact_group::Entity>(id)
            .await?
            .map(ContactGroup))
    }
}

/// A rule of a group.
#[derive(InputObject)]
pub struct ContactGroupRuleInput {
    /// The field: a contact field (`name`, `displayName`, `firstName`, `middleName`,
    /// `lastName`, `email`, `emails`, `phone`, `phones`, `company`, `externalId`, `note`,
    /// `address.street`, `address.city`, `address.postalCode`, `address.region`,
    /// `address.country`, `birthDate`, `createdAt`, `updatedAt`, `lastContactedAt`) or a contact
    /// custom attribute as `attributes.<identifier>`.
    pub field: String,
    /// The comparison; it must suit the field's type.
    pub operator: RuleOperatorGql,
    /// A string, number or boolean of the field's type (dates as `YYYY-MM-DD`, timestamps in
    /// RFC 3339); for `IN` a list of 1 to 100 of them.
    pub value: Json<serde_json::Value>,
}

fn rules_of(input: Vec<ContactGroupRuleInput>) -> Vec<Rule> {
    input
        .into_iter()
        .map(|r| Rule {
            field: r.field,
            operator: r.operator.into(),
            value: r.value.0,
            attribute_type: None,
        })
        .collect()
}

/// A new contact group.
#[derive(InputObject)]
pub struct CreateContactGroupInput {
    /// Name, unique in the organization regardless of case (at most 200 characters).
    pub name: String,
    /// Description (at most 2,000 characters).
    pub description: Option<String>,
    /// Rules (at most 20), matched all-of; omit for a static group.
    pub rules: Option<Vec<ContactGroupRuleInput>>,
}

/// Changes to a contact group; omitted fields stay.
#[derive(InputObject)]
pub struct UpdateContactGroupInput {
    /// The group.
    pub id: ID,
    /// New name.
    pub name: Option<String>,
    /// New description; `null` clears it.
    pub description: MaybeUndefined<String>,
    /// New rules, replacing all of them; `[]` makes the group static.
    pub rules: Option<Vec<ContactGroupRuleInput>>,
}

/// Names one contact group.
#[derive(InputObject)]
pub struct ContactGroupIdInput {
    /// The group.
    pub id: ID,
}

/// Contacts to add to or remove from a group's static members.
#[derive(InputObject)]
pub struct ContactGroupMembersInput {
    /// The group.
    pub group_id: ID,
    /// The contacts (at most 1,000).
    pub contact_ids: Vec<ID>,
}

/// Result of a mutation on one contact group.
#[derive(SimpleObject)]
pub struct ContactGroupPayload {
    /// The group after the change; null when it failed.
    pub contact_group: Option<ContactGroup>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

impl ContactGroupPayload {
    fn from(result: AppResult<entity::contact_group::Model>) -> async_graphql::Result<Self> {
        let (group, user_errors) = split(result)?;
        Ok(Self {
            contact_group: group.map(ContactGroup),
            user_errors,
        })
    }
}

/// Result of `deleteContactGroup`.
#[derive(SimpleObject)]
pub struct DeleteContactGroupPayload {
    /// The id of the deleted group; null when it failed.
    pub deleted_contact_group_id: Option<ID>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Contact group mutations.
#[derive(Default)]
pub struct ContactGroupMutation;

#[Object]
impl ContactGroupMutation {
    /// Creates a contact group, static or with rules (TEAM_LEAD).
    async fn create_contact_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CreateContactGroupInput,
    ) -> async_graphql::Result<ContactGroupPayload> {
        let app = ctx.app();
        let new = NewGroup {
            name: input.name,
            description: input.description,
            rules: rules_of(input.rules.unwrap_or_default()),
        };
        ContactGroupPayload::from(service::create(app.db(), app.principal()?, new).await)
    }

    /// Renames a contact group, changes its description or replaces its rules (TEAM_LEAD).
    async fn update_contact_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UpdateContactGroupInput,
    ) -> async_graphql::Result<ContactGroupPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("id", &input.id, "ContactGroup") {
            Ok(id) => {
                let changes = GroupPatch {
                    name: input.name,
                    description: patch(input.description),
                    rules: input.rules.map(rules_of),
                };
                service::update(app.db(), principal, id, changes).await
            }
            Err(e) => Err(e),
        };
        ContactGroupPayload::from(result)
    }

    /// Deletes a contact group; its contacts stay (TEAM_LEAD).
    async fn delete_contact_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ContactGroupIdInput,
    ) -> async_graphql::Result<DeleteContactGroupPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("id", &input.id, "ContactGroup") {
            Ok(id) => service::delete(app.db(), principal, id).await,
            Err(e) => Err(e),
        };
        let (deleted, user_errors) = split(result)?;
        Ok(DeleteContactGroupPayload {
            deleted_contact_group_id: deleted.map(|id| encode_id("ContactGroup", id)),
            user_errors,
        })
    }

    /// Adds contacts to a group's static members; contacts already in it stay (AGENT).
    async fn add_contact_group_members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ContactGroupMembersInput,
    ) -> async_graphql::Result<ContactGroupPayload> {
        change_members(ctx, input, true).await
    }

    /// Removes contacts from a group's static members; contacts matching the group's rules stay
    /// members by rule (AGENT).
    async fn remove_contact_group_members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: ContactGroupMembersInput,
    ) -> async_graphql::Result<ContactGroupPayload> {
        change_members(ctx, input, false).await
    }
}

fn contact_ids(ids: &[ID]) -> AppResult<Vec<Uuid>> {
    if ids.len() > MAX_MEMBERS_PER_CALL {
        return Err(service::too_many());
    }
    ids.iter()
        .enumerate()
        .map(|(i, id)| input_id(&format!("contactIds.{i}"), id, "Contact"))
        .collect()
}

async fn change_members(
    ctx: &Context<'_>,
    input: ContactGroupMembersInput,
    add: bool,
) -> async_graphql::Result<ContactGroupPayload> {
    let app = ctx.app();
    let principal = app.principal()?;
    let ids = input_id("groupId", &input.group_id, "ContactGroup")
        .and_then(|group| Ok((group, contact_ids(&input.contact_ids)?)));
    let result = match ids {
        Ok((group, contacts)) if add => {
            service::add_members(app.db(), principal, group, &contacts).await
        }
        Ok((group, contacts)) => {
            service::remove_members(app.db(), principal, group, &contacts).await
        }
        Err(e) => Err(e),
    };
    ContactGroupPayload::from(result)
}
