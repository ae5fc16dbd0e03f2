//! GraphQL types, queries and mutations of message templates.

use async_graphql::{Context, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::service::{self, TemplateFilter, TemplateInput, TemplatePatch, Which};
use crate::channels::graphql::ChannelTypeGql;
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::graphql::context::ContextExt;
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, decode_id, encode_id};
use crate::organizations::graphql::patch;

/// A message template variant.
#[derive(Clone)]
pub struct Template(pub entity::template::Model);

/// One variant of a named message template: text with `{{ variable }}` placeholders (with an
/// optional default, `{{ contact.firstName | "there" }}`) for one channel type or any, in one
/// locale or as the fallback.
#[Object]
impl Template {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("Template", self.0.id)
    }

    /// Name, shared by the template's variants (unique per channel type and locale, regardless
    /// of case).
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The channel type this variant is for; null for any.
    async fn channel_type(&self) -> Option<ChannelTypeGql> {
        self.0
            .channel_type
            .as_deref()
            .and_then(crate::channels::ChannelType::parse)
            .map(Into::into)
    }

    /// BCP 47 locale of this variant; null for the fallback used when no locale matches.
    async fn locale(&self) -> Option<&str> {
        self.0.locale.as_deref()
    }

    /// Subject (email), with placeholders.
    async fn subject(&self) -> Option<&str> {
        self.0.subject.as_deref()
    }

    /// Text body, with placeholders.
    async fn text(&self) -> &str {
        &self.0.text
    }

    /// HTML body (email), with placeholders.
    async fn html(&self) -> Option<&str> {
        self.0.html.as_deref()
    }

    /// The variables its placeholders use, in order of first use (subject, text, then HTML).
    async fn variables(&self) -> Vec<String> {
        serde_json::from_value(self.0.variables.clone()).unwrap_or_default()
    }

    /// When it was archived (no longer chosen for sending); null when active.
    async fn archived_at(&self) -> Option<DateTime<Utc>> {
        self.0.archived_at
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

/// Which templates to list.
#[derive(InputObject, Default)]
pub struct TemplateFilterInput {
    /// Case-insensitive text in the name.
    pub search: Option<String>,
    /// The variants of this name (any case).
    pub name: Option<String>,
    /// Variants for this channel type (not those for any channel).
    pub channel_type: Option<ChannelTypeGql>,
    /// Variants in this locale.
    pub locale: Option<String>,
    /// Archived variants instead of active ones (default false).
    #[graphql(default)]
    pub archived: bool,
}

/// What to render: a variant by id, or a template by name for a channel type and locale.
#[derive(InputObject)]
pub struct RenderTemplateInput {
    /// This variant.
    pub id: Option<ID>,
    /// The template of this name; its variant is chosen by `channelType` and `locale`: the exact
    /// channel type before "any channel", and within each the exact locale, its language (`en`
    /// for `en-US`), then the variant without locale.
    pub name: Option<String>,
    /// The channel type it will be sent on (with `name`).
    pub channel_type: Option<ChannelTypeGql>,
    /// The recipient's locale (with `name`).
    pub locale: Option<String>,
    /// A contact whose fields are the `contact.*` variables (`name`, `firstName`, `lastName`,
    /// `middleName`, `email`, `phone`, `company`, `externalId`).
    pub contact_id: Option<ID>,
    /// More variables as a JSON object (nested objects for dotted names); they take precedence
    /// over the built-in `contact.*`, `organization.name` and `agent.*` (the caller's `name`,
    /// `firstName`, `lastName`, `email`).
    pub variables: Option<Json<serde_json::Value>>,
}

/// A rendered template.
#[derive(SimpleObject)]
pub struct RenderedTemplate {
    /// The variant used.
    pub template: Template,
    /// Rendered subject.
    pub subject: Option<String>,
    /// Rendered text body.
    pub text: String,
    /// Rendered HTML body.
    pub html: Option<String>,
}

/// Result of rendering a template.
#[derive(SimpleObject)]
pub struct RenderTemplatePayload {
    /// The rendering; null when it failed.
    pub rendered: Option<RenderedTemplate>,
    /// Why it could not be rendered: each variable missing (code `REQUIRED`) or not a text,
    /// number or boolean (code `INVALID`) at `["input", "variables", …its name]`; empty on
    /// success.
    pub user_errors: Vec<UserError>,
}

/// Template queries.
#[derive(Default)]
pub struct TemplateQuery;

#[Object]
impl TemplateQuery {
    /// The organization's template variants, by name.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    async fn templates(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only variants matching this filter.")] filter: Option<
            TemplateFilterInput,
        >,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<Template>> {
        let app = ctx.app();
        let filter = filter.unwrap_or_default();
        let (page, total) = service::list(
            app.db(),
            app.principal()?,
            TemplateFilter {
                search: filter.search,
                name: filter.name,
                channel_type: filter.channel_type.map(Into::into),
                locale: filter.locale,
                archived: filter.archived,
            },
            &PageArgs {
                after,
                before,
                first,
                last,
            },
        )
        .await?;
        Ok(Connection::new(page.map(Template), total))
    }

    /// A template variant by id; null when there is none.
    async fn template(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The variant's global id.")] id: ID,
    ) -> async_graphql::Result<Option<Template>> {
        let app = ctx.app();
        app.principal()?
            .require(crate::auth::Permission::WorkConversations)?;
        let id = decode_id(&id, "Template")?;
        Ok(app
            .load::<entity::template::Entity>(id)
            .await?
            .map(Template))
    }

    /// Renders a template with a contact's fields and given variables (a preview, or the text to
    /// send). Missing variables are user errors naming them; nothing is stored.
    async fn render_template(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to render and with what.")] input: RenderTemplateInput,
    ) -> async_graphql::Result<RenderTemplatePayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = async {
            let which = match (input.id, input.name) {
                (Some(id), None) => Which::Id(input_id("id", &id, "Template")?),
                (None, Some(name)) => Which::Name {
                    name,
                    channel_type: input.channel_type.map(Into::into),
                    locale: input.locale,
                },
                _ => {
                    return Err(AppError::invalid(
                        "id",
                        UserErrorCode::Invalid,
                        "give either `id` or `name`",
                    ));
                }
            };
            let contact = input
                .contact_id
                .map(|id| input_id("contactId", &id, "Contact"))
                .transpose()?;
            service::render(
                app.db(),
                principal,
                which,
                contact,
                input.variables.map(|v| v.0),
            )
            .await
        }
        .await;
        let (rendered, user_errors) = split(result)?;
        Ok(RenderTemplatePayload {
            rendered: rendered.map(|r| RenderedTemplate {
                template: Template(r.template),
                subject: r.subject,
                text: r.text,
                html: r.html,
            }),
            user_errors,
        })
    }
}

/// A new template variant.
#[derive(InputObject)]
pub struct CreateTemplateInput {
    /// Name, shared by the template's variants.
    pub name: String,
    /// The channel type this variant is for; omit for any.
    pub channel_type: Option<ChannelTypeGql>,
    /// BCP 47 locale (`en`, `en-US`); omit for the fallback variant.
    pub locale: Option<String>,
    /// Subject (email templates, or those for any channel).
    pub subject: Option<String>,
    /// Text body with `{{ variable }}` placeholders.
    pub text: String,
    /// HTML body (email templates, or those for any channel).
    pub html: Option<String>,
}

/// Changes to a template variant; omitted fields stay, `null` clears an optional one.
#[derive(InputObject)]
pub struct UpdateTemplateInput {
    /// The variant.
    pub id: ID,
    /// New name.
    pub name: Option<String>,
    /// New channel type; `null` for any.
    pub channel_type: MaybeUndefined<ChannelTypeGql>,
    /// New locale; `null` for the fallback.
    pub locale: MaybeUndefined<String>,
    /// New subject.
    pub subject: MaybeUndefined<String>,
    /// New text body.
    pub text: Option<String>,
    /// New HTML body.
    pub html: MaybeUndefined<String>,
}

/// Names one template variant.
#[derive(InputObject)]
pub struct TemplateIdInput {
    /// The variant.
    pub id: ID,
}

/// Result of a mutation on one template variant.
#[derive(SimpleObject)]
pub struct TemplatePayload {
    /// The variant after the change; null when it failed.
    pub template: Option<Template>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

impl TemplatePayload {
    fn from(result: AppResult<entity::template::Model>) -> async_graphql::Result<Self> {
        let (template, user_errors) = split(result)?;
        Ok(Self {
            template: template.map(Template),
            user_errors,
        })
    }
}

/// Template mutations.
#[derive(Default)]
pub struct TemplateMutation;

#[Object]
impl TemplateMutation {
    /// Creates a template variant (TEAM_LEAD). A placeholder that is not closed, empty, or not
    /// a variable name is refused with its line and column.
    async fn create_template(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CreateTemplateInput,
    ) -> async_graphql::Result<TemplatePayload> {
        let app = ctx.app();
        let result = service::create(
            app.db(),
            app.principal()?,
            TemplateInput {
                name: input.name,
                channel_type: input.channel_type.map(Into::into),
                locale: input.locale,
                subject: input.subject,
                text: input.text,
                html: input.html,
            },
        )
        .await;
        TemplatePayload::from(result)
    }

    /// Changes a template variant (TEAM_LEAD); the result is checked as on creation.
    async fn update_template(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UpdateTemplateInput,
    ) -> async_graphql::Result<TemplatePayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("id", &input.id, "Template") {
            Ok(id) => {
                let patch = TemplatePatch {
                    name: input.name,
                    channel_type: patch(input.channel_type).map(|c| c.map(Into::into)),
                    locale: patch(input.locale),
                    subject: patch(input.subject),
                    text: input.text,
                    html: patch(input.html),
                };
                service::update(app.db(), principal, id, patch).await
            }
            Err(e) => Err(e),
        };
        TemplatePayload::from(result)
    }

    /// Archives a template variant: it is no longer chosen for sending (TEAM_LEAD).
    async fn archive_template(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: TemplateIdInput,
    ) -> async_graphql::Result<TemplatePayload> {
        set_archived(ctx, input, true).await
    }

    /// Brings an archived template variant back (TEAM_LEAD).
    async fn unarchive_template(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: TemplateIdInput,
    ) -> async_graphql::Result<TemplatePayload> {
        set_archived(ctx, input, false).await
    }
}

async fn set_archived(
    ctx: &Context<'_>,
    input: TemplateIdInput,
    archived: bool,
) -> async_graphql::Result<TemplatePayload> {
    let app = ctx.app();
    let principal = app.principal()?;
    let result = match input_id("id", &input.id, "Template") {
        Ok(id) => service::set_archived(app.db(), principal, id, archived).await,
        Err(e) => Err(e),
    };
    TemplatePayload::from(result)
}
