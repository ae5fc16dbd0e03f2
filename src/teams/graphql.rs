//! GraphQL types, queries and mutations of teams.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::service;
use crate::auth::Permission;
use crate::error::{AppError, AppResult};
use crate::graphql::context::{ById, ContextExt, ScopedLoader, page_selects};
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, decode_id, encode_id};
use crate::organizations::graphql::patch;
use crate::users::graphql::User;

/// Member user ids per team, batched across the teams of a request.
pub struct TeamMemberIds {
    db: DatabaseConnection,
    org_id: Uuid,
}

impl ScopedLoader for TeamMemberIds {
    fn new(db: DatabaseConnection, org_id: Uuid) -> Self {
        Self { db, org_id }
    }
}

impl Loader<Uuid> for TeamMemberIds {
    type Value = Vec<Uuid>;
    type Error = AppError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<Uuid>>, AppError> {
        service::member_ids(&self.db, self.org_id, keys).await
    }
}

/// Team ids per user, batched across the users of a request.
pub struct UserTeamIds {
    db: DatabaseConnection,
    org_id: Uuid,
}

impl ScopedLoader for UserTeamIds {
    fn new(db: DatabaseConnection, org_id: Uuid) -> Self {
        Self { db, org_id }
    }
}

impl Loader<Uuid> for UserTeamIds {
    type Value = Vec<Uuid>;
    type Error = AppError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<Uuid>>, AppError> {
        service::team_ids_of_users(&self.db, self.org_id, keys).await
    }
}

/// Loads the teams of a page of users up front (two statements whatever the page size).
pub async fn prefetch_teams_of_users(
    ctx: &Context<'_>,
    user_ids: Vec<Uuid>,
) -> async_graphql::Result<()> {
    let app = ctx.app();
    let teams = app.loader::<UserTeamIds>()?.load_many(user_ids).await?;
    app.loader::<ById<entity::team::Entity>>()?
        .load_many(teams.into_values().flatten())
        .await?;
    Ok(())
}

/// The teams of a user, in joining order (two batched queries per request).
pub async fn teams_of_user(ctx: &Context<'_>, user_id: Uuid) -> async_graphql::Result<Vec<Team>> {
    let app = ctx.app();
    let ids = app
        .loader::<UserTeamIds>()?
        .load_one(user_id)
        .await?
        .unwrap_or_default();
    let teams = app
        .loader::<ById<entity::team::Entity>>()?
        .load_many(ids.iter().copied())
        .await?;
    Ok(ids
        .iter()
        .filter_map(|id| teams.get(id).cloned().map(Team))
        .collect())
}

/// A team.
#[derive(Clone)]
pub struct Team(pub entity::team::Model);

/// A group of users.
#[Object]
impl Team {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("Team", self.0.id)
    }

    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Description.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// The members, in joining order.
    async fn members(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        let app = ctx.app();
        let ids = app
            .loader::<TeamMemberIds>()?
            .load_one(self.0.id)
            .await?
            .unwrap_or_default();
        let users = app
            .loader::<ById<entity::user::Entity>>()?
            .load_many(ids.iter().copied())
            .await?;
        Ok(ids
            .iter()
            .filter_map(|id| users.get(id).cloned().map(User))
            .collect())
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

/// Team queries.
#[derive(Default)]
pub struct TeamQuery;

#[Object]
impl TeamQuery {
    /// The organization's teams, by name.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    async fn teams(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Case-insensitive text in the name.")] search: Option<String>,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<Team>> {
        let app = ctx.app();
        let args = PageArgs {
            after,
            before,
            first,
            last,
        };
        let (page, total) =
            service::list(app.db(), app.principal()?, search.as_deref(), &args).await?;
        if page_selects(ctx, &["members"]) {
            // One statement for the page's memberships and one for their users, whatever its size.
            let members = app
                .loader::<TeamMemberIds>()?
                .load_many(page.items.iter().map(|(_, t)| t.id))
                .await?;
            app.loader::<ById<entity::user::Entity>>()?
                .load_many(members.into_values().flatten())
                .await?;
        }
        Ok(Connection::new(page.map(Team), total))
    }

    /// A team by id; null when there is none.
    async fn team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team's global id.")] id: ID,
    ) -> async_graphql::Result<Option<Team>> {
        let app = ctx.app();
        app.principal()?.require(Permission::ReadDirectory)?;
        let id = decode_id(&id, "Team")?;
        Ok(app.load::<entity::team::Entity>(id).await?.map(Team))
    }
}

/// A new team.
#[derive(InputObject)]
pub struct CreateTeamInput {
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
}

/// Changes to a team; omitted fields stay, `null` clears the description.
#[derive(InputObject)]
pub struct UpdateTeamInput {
    /// The team.
    pub id: ID,
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: MaybeUndefined<String>,
}

/// Names one team.
#[derive(InputObject)]
pub struct TeamIdInput {
    /// The team.
    pub id: ID,
}

/// Users to add to or remove from a team.
#[derive(InputObject)]
pub struct TeamMembersInput {
    /// The team.
    pub team_id: ID,
    /// The users (at most 100).
    pub user_ids: Vec<ID>,
}

/// Result of a mutation on one team.
#[derive(SimpleObject)]
pub struct TeamPayload {
    /// The team after the change; null when it failed.
    pub team: Option<Team>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

impl TeamPayload {
    fn from(result: AppResult<entity::team::Model>) -> async_graphql::Result<Self> {
        let (team, user_errors) = split(result)?;
        Ok(Self {
            team: team.map(Team),
            user_errors,
        })
    }
}

/// Result of `deleteTeam`.
#[derive(SimpleObject)]
pub struct DeleteTeamPayload {
    /// The id of the deleted team; null when it failed.
    pub deleted_team_id: Option<ID>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Most users one membership change takes.
pub const MAX_MEMBERS_PER_CALL: usize = 100;

/// Decodes a list of user ids in input field `field`.
pub fn user_ids(field: &str, ids: &[ID]) -> AppResult<Vec<Uuid>> {
    if ids.len() > MAX_MEMBERS_PER_CALL {
        return Err(AppError::invalid(
            field,
            crate::error::UserErrorCode::TooLong,
            format!("at most {MAX_MEMBERS_PER_CALL} users per call"),
        ));
    }
    ids.iter()
        .enumerate()
        .map(|(i, id)| input_id(&format!("{field}.{i}"), id, "User"))
        .collect()
}

/// Team mutations.
#[derive(Default)]
pub struct TeamMutation;

#[Object]
impl TeamMutation {
    /// Creates a team (TEAM_LEAD).
    async fn create_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CreateTeamInput,
    ) -> async_graphql::Result<TeamPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = service::create(
            app.db(),
            principal,
            &input.name,
            input.description.as_deref(),
        )
        .await;
        TeamPayload::from(result)
    }

    /// Renames a team or changes its description (TEAM_LEAD).
    async fn update_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UpdateTeamInput,
    ) -> async_graphql::Result<TeamPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let description = patch(input.description);
        let result = match input_id("id", &input.id, "Team") {
            Ok(id) => {
                let description = description.as_ref().map(|d| d.as_deref());
                service::update(app.db(), principal, id, input.name.as_deref(), description).await
            }
            Err(e) => Err(e),
        };
        TeamPayload::from(result)
    }

    /// Deletes a team and its memberships (TEAM_LEAD).
    async fn delete_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: TeamIdInput,
    ) -> async_graphql::Result<DeleteTeamPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("id", &input.id, "Team") {
            Ok(id) => service::delete(app.db(), principal, id).await,
            Err(e) => Err(e),
        };
        let (deleted, user_errors) = split(result)?;
        Ok(DeleteTeamPayload {
            deleted_team_id: deleted.map(|id| encode_id("Team", id)),
            user_errors,
        })
    }

    /// Adds users to a team; users already in it stay (TEAM_LEAD).
    async fn add_team_members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: TeamMembersInput,
    ) -> async_graphql::Result<TeamPayload> {
        change_members(ctx, input, true).await
    }

    /// Removes users from a team (TEAM_LEAD).
    async fn remove_team_members(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: TeamMembersInput,
    ) -> async_graphql::Result<TeamPayload> {
        change_members(ctx, input, false).await
    }
}

async fn change_members(
    ctx: &Context<'_>,
    input: TeamMembersInput,
    add: bool,
) -> async_graphql::Result<TeamPayload> {
    let app = ctx.app();
    let principal = app.principal()?;
    let ids = input_id("teamId", &input.team_id, "Team")
        .and_then(|team| Ok((team, user_ids("userIds", &input.user_ids)?)));
    let result = match ids {
        Ok((team, users)) if add => service::add_members(app.db(), principal, team, &users).await,
        Ok((team, users)) => service::remove_members(app.db(), principal, team, &users).await,
        Err(e) => Err(e),
    };
    TeamPayload::from(result)
}
