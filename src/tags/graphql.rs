//! GraphQL types, queries and mutations of tags.

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::service::{self, TagFilter};
use crate::auth::Permission;
use crate::error::AppResult;
use crate::graphql::context::ContextExt;
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, decode_id, encode_id};
use crate::organizations::graphql::patch;

/// Whether a tag can be applied.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "TagStatus", remote = "service::TagStatus")]
pub enum TagStatusGql {
    /// Can be applied.
    Active,
    /// Stays where applied; cannot be newly applied.
    Inactive,
}

/// A tag.
#[derive(Clone)]
pub struct Tag(pub entity::tag::Model);

/// A label with an optional color, applied to conversations and contacts.
#[Object]
impl Tag {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("Tag", self.0.id)
    }

    /// Name, unique in the organization regardless of case.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Color as `#rrggbb`.
    async fn color(&self) -> Option<&str> {
        self.0.color.as_deref()
    }

    /// Whether it can be applied.
    async fn status(&self) -> TagStatusGql {
        service::TagStatus::parse(&self.0.status).into()
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

/// Which tags to list.
#[derive(InputObject, Default)]
pub struct TagFilterInput {
    /// Tags in this status.
    pub status: Option<TagStatusGql>,
    /// Case-insensitive text in the name.
    pub search: Option<String>,
}

/// Tag queries.
#[derive(Default)]
pub struct TagQuery;

#[Object]
impl TagQuery {
    /// The organization's tags, by name.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    async fn tags(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only tags matching this filter.")] filter: Option<TagFilterInput>,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<Tag>> {
        let app = ctx.app();
        let filter = filter.unwrap_or_default();
        let (page, total) = service::list(
            app.db(),
            app.principal()?,
            TagFilter {
                status: filter.status.map(Into::into),
                search: filter.search,
            },
            &PageArgs {
                after,
                before,
                first,
                last,
            },
        )
        .await?;
        Ok(Connection::new(page.map(Tag), total))
    }

    /// A tag by id; null when there is none.
    async fn tag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The tag's global id.")] id: ID,
    ) -> async_graphql::Result<Option<Tag>> {
        let app = ctx.app();
        app.principal()?.require(Permission::WorkContacts)?;
        let id = decode_id(&id, "Tag")?;
        Ok(app.load::<entity::tag::Entity>(id).await?.map(Tag))
    }
}

/// A new tag.
#[derive(InputObject)]
pub struct CreateTagInput {
    /// Name, unique in the organization regardless of case.
    pub name: String,
    /// Color as `#rrggbb`.
    pub color: Option<String>,
}

/// Changes to a tag; omitted fields stay, `null` clears the color.
#[derive(InputObject)]
pub struct UpdateTagInput {
    /// The tag.
    pub id: ID,
    /// New name.
    pub name: Option<String>,
    /// New color as `#rrggbb`.
    pub color: MaybeUndefined<String>,
}

/// Names one tag.
#[derive(InputObject)]
pub struct TagIdInput {
    /// The tag.
    pub id: ID,
}

/// Result of a mutation on one tag.
#[derive(SimpleObject)]
pub struct TagPayload {
    /// The tag after the change; null when it failed.
    pub tag: Option<Tag>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

impl TagPayload {
    fn from(result: AppResult<entity::tag::Model>) -> async_graphql::Result<Self> {
        let (tag, user_errors) = split(result)?;
        Ok(Self {
            tag: tag.map(Tag),
            user_errors,
        })
    }
}

/// Tag mutations.
#[derive(Default)]
pub struct TagMutation;

#[Object]
impl TagMutation {
    /// Creates a tag (TEAM_LEAD).
    async fn create_tag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CreateTagInput,
    ) -> async_graphql::Result<TagPayload> {
        let app = ctx.app();
        let result = service::create(
            app.db(),
            app.principal()?,
            &input.name,
            input.color.as_deref(),
        )
        .await;
        TagPayload::from(result)
    }

    /// Renames or recolors a tag (TEAM_LEAD).
    async fn update_tag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UpdateTagInput,
    ) -> async_graphql::Result<TagPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("id", &input.id, "Tag") {
            Ok(id) => {
                let color = patch(input.color);
                let color = color.as_ref().map(|c| c.as_deref());
                service::update(app.db(), principal, id, input.name.as_deref(), color).await
            }
            Err(e) => Err(e),
        };
        TagPayload::from(result)
    }

    /// Activates an inactive tag so it can be applied again (TEAM_LEAD).
    async fn activate_tag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: TagIdInput,
    ) -> async_graphql::Result<TagPayload> {
        set_status(ctx, input, service::TagStatus::Active).await
    }

    /// Deactivates a tag: it stays where applied but cannot be newly applied (TEAM_LEAD).
    async fn deactivate_tag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: TagIdInput,
    ) -> async_graphql::Result<TagPayload> {
        set_status(ctx, input, service::TagStatus::Inactive).await
    }
}

async fn set_status(
    ctx: &Context<'_>,
    input: TagIdInput,
    status: service::TagStatus,
) -> async_graphql::Result<TagPayload> {
    let app = ctx.app();
    let principal = app.principal()?;
    let result = match input_id("id", &input.id, "Tag") {
        Ok(id) => service::set_status(app.db(), principal, id, status).await,
        Err(e) => Err(e),
    };
    TagPayload::from(result)
}
