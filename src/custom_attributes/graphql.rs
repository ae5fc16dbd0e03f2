//! GraphQL types, queries and mutations of custom attribute definitions.

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::service::{self, DefinitionPatch, NewDefinition, OptionInput, SelectOption};
use crate::error::AppResult;
use crate::graphql::context::ContextExt;
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::encode_id;
use crate::organizations::graphql::patch;

/// What a custom attribute applies to.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "CustomAttributeEntity", remote = "service::AttributeEntity")]
pub enum AttributeEntityGql {
    /// Contacts.
    Contact,
    /// Conversations.
    Conversation,
}

/// The type of a custom attribute's values.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "CustomAttributeType", remote = "service::AttributeType")]
pub enum AttributeTypeGql {
    /// Free text.
    Text,
    /// One of the (nested) select options, by value.
    Select,
    /// A number.
    Number,
    /// True or false.
    Boolean,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
}

/// A select option of a custom attribute.
#[derive(SimpleObject, Clone)]
pub struct CustomAttributeOption {
    /// Stable id.
    pub id: ID,
    /// The stored value.
    pub value: String,
    /// The shown label.
    pub label: String,
    /// Deactivated options stay on existing values but cannot be newly chosen.
    pub deactivated: bool,
    /// Child options.
    pub options: Vec<CustomAttributeOption>,
}

fn option_out(o: SelectOption) -> CustomAttributeOption {
    CustomAttributeOption {
        id: ID(o.id.to_string()),
        value: o.value,
        label: o.label,
        deactivated: o.deactivated,
        options: o.options.into_iter().map(option_out).collect(),
    }
}

/// A select option in input.
#[derive(InputObject, Clone)]
pub struct CustomAttributeOptionInput {
    /// The id of an existing option to keep; omitted for a new option.
    pub id: Option<ID>,
    /// The stored value, unique in the attribute.
    pub value: String,
    /// The shown label.
    pub label: String,
    /// Deactivate the option.
    #[graphql(default)]
    pub deactivated: bool,
    /// Child options.
    #[graphql(default)]
    pub options: Vec<CustomAttributeOptionInput>,
}

fn option_in(o: CustomAttributeOptionInput) -> OptionInput {
    OptionInput {
        id: o.id.and_then(|id| uuid::Uuid::parse_str(&id).ok()),
        value: o.value,
        label: o.label,
        deactivated: o.deactivated,
        options: o.options.into_iter().map(option_in).collect(),
    }
}

/// A custom attribute definition.
#[derive(Clone)]
pub struct CustomAttributeDefinition(pub entity::custom_attribute_definition::Model);

/// A typed, validated attribute that contacts or conversations can carry.
#[Object]
impl CustomAttributeDefinition {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("CustomAttributeDefinition", self.0.id)
    }

    /// What it applies to.
    async fn entity(&self) -> AttributeEntityGql {
        service::AttributeEntity::parse(&self.0.entity)
            .unwrap_or(service::AttributeEntity::Contact)
            .into()
    }

    /// Machine name, unique per entity.
    async fn identifier(&self) -> &str {
        &self.0.identifier
    }

    /// Shown label.
    async fn label(&self) -> &str {
        &self.0.label
    }

    /// Description.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// Value type.
    async fn value_type(&self) -> AttributeTypeGql {
        service::AttributeType::parse(&self.0.value_type)
            .unwrap_or(service::AttributeType::Text)
            .into()
    }

    /// Select options (SELECT only).
    async fn options(&self) -> Vec<CustomAttributeOption> {
        service::options_of(&self.0)
            .into_iter()
            .map(option_out)
            .collect()
    }

    /// Whether a value is required (it cannot be cleared).
    async fn required(&self) -> bool {
        self.0.required
    }

    /// Archived attributes take no new values.
    async fn archived(&self) -> bool {
        self.0.archived
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Custom attribute queries.
#[derive(Default)]
pub struct CustomAttributeQuery;

#[Object]
impl CustomAttributeQuery {
    /// The organization's custom attribute definitions for an entity, by identifier.
    async fn custom_attribute_definitions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Contacts or conversations.")] entity: AttributeEntityGql,
        #[graphql(desc = "Include archived definitions.", default)] include_archived: bool,
    ) -> async_graphql::Result<Vec<CustomAttributeDefinition>> {
        let app = ctx.app();
        let rows =
            service::list(app.db(), app.principal()?, entity.into(), include_archived).await?;
        Ok(rows.into_iter().map(CustomAttributeDefinition).collect())
    }
}

/// A new custom attribute definition.
#[derive(InputObject)]
pub struct CreateCustomAttributeDefinitionInput {
    /// Contacts or conversations.
    pub entity: AttributeEntityGql,
    /// Machine name: lower-case letters, digits and `_`, starting with a letter.
    pub identifier: String,
    /// Shown label.
    pub label: String,
    /// Description.
    pub description: Option<String>,
    /// Value type.
    pub value_type: AttributeTypeGql,
    /// Select options (SELECT only).
    #[graphql(default)]
    pub options: Vec<CustomAttributeOptionInput>,
    /// Whether a value is required.
    #[graphql(default)]
    pub required: bool,
}

/// Changes to a custom attribute definition; identifier, entity and type never change.
#[derive(InputObject)]
pub struct UpdateCustomAttributeDefinitionInput {
    /// The definition.
    pub id: ID,
    /// New label.
    pub label: Option<String>,
    /// New description; `null` clears.
    pub description: MaybeUndefined<String>,
    /// New required flag.
    pub required: Option<bool>,
    /// New options (replace them; give existing ids to keep options, `deactivated` to retire one).
    pub options: Option<Vec<CustomAttributeOptionInput>>,
}

/// Names one definition.
#[derive(InputObject)]
pub struct CustomAttributeDefinitionIdInput {
    /// The definition.
    pub id: ID,
}

/// Result of a mutation on a custom attribute definition.
#[derive(SimpleObject)]
pub struct CustomAttributeDefinitionPayload {
    /// The definition after the change; null when it failed.
    pub definition: Option<CustomAttributeDefinition>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

impl CustomAttributeDefinitionPayload {
    fn from(
        result: AppResult<entity::custom_attribute_definition::Model>,
    ) -> async_graphql::Result<Self> {
        let (definition, user_errors) = split(result)?;
        Ok(Self {
            definition: definition.map(CustomAttributeDefinition),
            user_errors,
        })
    }
}

/// Custom attribute mutations.
#[derive(Default)]
pub struct CustomAttributeMutation;

async fn change(
    ctx: &Context<'_>,
    id: &ID,
    patch: DefinitionPatch,
) -> async_graphql::Result<CustomAttributeDefinitionPayload> {
    let app = ctx.app();
    let principal = app.principal()?;
    let result = match input_id("id", id, "CustomAttributeDefinition") {
        Ok(id) => service::update(app.db(), principal, id, patch).await,
        Err(e) => Err(e),
    };
    CustomAttributeDefinitionPayload::from(result)
}

#[Object]
impl CustomAttributeMutation {
    /// Defines a custom attribute (ADMIN).
    async fn create_custom_attribute_definition(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CreateCustomAttributeDefinitionInput,
    ) -> async_graphql::Result<CustomAttributeDefinitionPayload> {
        let app = ctx.app();
        let new = NewDefinition {
            entity: input.entity.into(),
            identifier: input.identifier,
            label: input.label,
            description: input.description,
            value_type: input.value_type.into(),
            options: input.options.into_iter().map(option_in).collect(),
            required: input.required,
        };
        CustomAttributeDefinitionPayload::from(
            service::create(app.db(), app.principal()?, new).await,
        )
    }

    /// Changes a custom attribute definition (ADMIN).
    async fn update_custom_attribute_definition(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UpdateCustomAttributeDefinitionInput,
    ) -> async_graphql::Result<CustomAttributeDefinitionPayload> {
        let patch_input = DefinitionPatch {
            label: input.label,
            description: patch(input.description),
            required: input.required,
            options: input
                .options
                .map(|o| o.into_iter().map(option_in).collect()),
            archived: None,
        };
        change(ctx, &input.id, patch_input).await
    }

    /// Archives a custom attribute: it takes no new values; existing values stay (ADMIN).
    async fn archive_custom_attribute_definition(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CustomAttributeDefinitionIdInput,
    ) -> async_graphql::Result<CustomAttributeDefinitionPayload> {
        let archive = DefinitionPatch {
            archived: Some(true),
            ..Default::default()
        };
        change(ctx, &input.id, archive).await
    }

    /// Unarchives a custom attribute (ADMIN).
    async fn unarchive_custom_attribute_definition(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CustomAttributeDefinitionIdInput,
    ) -> async_graphql::Result<CustomAttributeDefinitionPayload> {
        let unarchive = DefinitionPatch {
            archived: Some(false),
            ..Default::default()
        };
        change(ctx, &input.id, unarchive).await
    }
}
