//! GraphQL types, queries, mutations and the subscription of presence (rules in
//! [`super::service`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::futures_util::Stream;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::service::{self, Presence, PresenceFilter, PresenceUpdate};
use crate::auth::Permission;
use crate::channels::graphql::ChannelTypeGql;
use crate::error::{AppError, AppResult};
use crate::graphql::context::{ById, ContextExt, RequestCtx, ScopedLoader};
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, decode_id};
use crate::live::graphql::{encode_cursor, existing, start, stream};
use crate::teams::graphql::MAX_MEMBERS_PER_CALL;
use crate::users::graphql::User;

/// Whether a user is connected.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "ConnectionStatus", remote = "service::ConnectionStatus")]
pub enum ConnectionStatusGql {
    /// A websocket of the user is connected to the server, or the last one ended less than the
    /// grace period ago.
    Online,
    /// Not connected.
    Offline,
}

/// What a user says they are doing.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "PresenceStatus", remote = "service::PresenceStatus")]
pub enum PresenceStatusGql {
    /// Working: takes conversations.
    Working,
    /// Away from the desk.
    Away,
    /// Busy: connected, not to be disturbed.
    Busy,
}

/// What a presence change changed.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "PresenceChange", remote = "service::Change")]
pub enum PresenceChangeGql {
    /// The connection status (online or offline).
    ConnectionStatus,
    /// The presence status (working, away or busy).
    PresenceStatus,
    /// The channel types the user takes.
    ActiveChannels,
    /// The capacity per channel type.
    Capacity,
}

/// How many open conversations of one channel type a user takes at once.
#[derive(SimpleObject, InputObject, Clone, Debug)]
#[graphql(input_name = "ChannelCapacityInput")]
pub struct ChannelCapacity {
    /// The channel type.
    pub channel_type: ChannelTypeGql,
    /// Open conversations of that type at once (0-1000).
    pub conversations: i32,
}

/// A user's presence.
#[derive(Clone)]
pub struct UserPresence {
    presence: Presence,
    user: Option<entity::user::Model>,
}

impl UserPresence {
    /// The presence of a user whose row is already at hand.
    pub fn new(presence: Presence, user: Option<entity::user::Model>) -> Self {
        Self { presence, user }
    }
}

/// A user's presence: connected or not, what they are doing, which channel types they take and
/// how many conversations of each at once.
#[Object]
impl UserPresence {
    /// The user.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        if let Some(user) = &self.user {
            return Ok(User(user.clone()));
        }
        ctx.app()
            .load::<entity::user::Entity>(self.presence.user_id)
            .await?
            .map(User)
            .ok_or_else(|| AppError::NotFound("user".into()).into())
    }

    /// `ONLINE` while a websocket of the user is connected to any server instance, and for the
    /// grace period after the last one ended; `OFFLINE` otherwise.
    async fn connection_status(&self) -> ConnectionStatusGql {
        self.presence.connection_status.into()
    }

    /// What the user says they are doing (`WORKING` until they set it).
    async fn presence_status(&self) -> PresenceStatusGql {
        self.presence.presence_status.into()
    }

    /// The channel types the user takes, in the order of the `ChannelType` enum.
    async fn active_channels(&self) -> Vec<ChannelTypeGql> {
        self.presence
            .active_channels
            .iter()
            .map(|c| (*c).into())
            .collect()
    }

    /// Open conversations the user takes at once, per channel type (only the types set), in the
    /// order of the `ChannelType` enum.
    async fn capacity(&self) -> Vec<ChannelCapacity> {
        self.presence
            .capacity
            .iter()
            .map(|(c, n)| ChannelCapacity {
                channel_type: (*c).into(),
                conversations: *n,
            })
            .collect()
    }

    /// When the user was last seen: connected, disconnected, still connected at a heartbeat, or
    /// changed their own presence; null when never.
    async fn last_seen(&self) -> Option<DateTime<Utc>> {
        self.presence.last_seen
    }
}

/// Presence rows per user id, batched across the users of a request.
pub struct PresenceRows {
    db: DatabaseConnection,
    org_id: Uuid,
}

impl ScopedLoader for PresenceRows {
    fn new(db: DatabaseConnection, org_id: Uuid) -> Self {
        Self { db, org_id }
    }
}

impl Loader<Uuid> for PresenceRows {
    type Value = entity::user_presence::Model;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[Uuid],
    ) -> Result<HashMap<Uuid, entity::user_presence::Model>, AppError> {
        service::rows_of(&self.db, self.org_id, keys).await
    }
}

/// The presence of a user of the caller's organization (batched across a request).
pub async fn presence_of(
    ctx: &Context<'_>,
    user: &entity::user::Model,
) -> async_graphql::Result<UserPresence> {
    let row = ctx
        .app()
        .loader::<PresenceRows>()?
        .load_one(user.id)
        .await?;
    Ok(UserPresence::new(
        Presence::of_row(user.id, row.as_ref()),
        Some(user.clone()),
    ))
}

/// Which users' presence to list. All given conditions must hold.
#[derive(InputObject, Default)]
pub struct PresenceFilterInput {
    /// Only users online or only users offline.
    pub connection_status: Option<ConnectionStatusGql>,
    /// Only users in this presence status.
    pub presence_status: Option<PresenceStatusGql>,
    /// Only users who take this channel type.
    pub channel_type: Option<ChannelTypeGql>,
    /// Only members of this team.
    pub team_id: Option<ID>,
}

async fn presence_page(
    ctx: &Context<'_>,
    filter: PresenceFilter,
    args: PageArgs,
) -> async_graphql::Result<Connection<UserPresence>> {
    let app = ctx.app();
    let (page, total) = service::list(app.db(), app.principal()?, &filter, &args).await?;
    Ok(Connection::new(
        page.map(|(user, presence)| UserPresence::new(presence, Some(user))),
        total,
    ))
}

fn filter_of(input: Option<PresenceFilterInput>) -> AppResult<PresenceFilter> {
    let input = input.unwrap_or_default();
    Ok(PresenceFilter {
        connection_status: input.connection_status.map(Into::into),
        presence_status: input.presence_status.map(Into::into),
        channel_type: input.channel_type.map(Into::into),
        team_id: input.team_id.map(|id| decode_id(&id, "Team")).transpose()?,
    })
}

/// Presence queries.
#[derive(Default)]
pub struct PresenceQuery;

#[Object]
impl PresenceQuery {
    /// The presence of a user of the caller's organization; null when there is no such user.
    async fn presence(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's global id.")] user_id: ID,
    ) -> async_graphql::Result<Option<UserPresence>> {
        let app = ctx.app();
        app.principal()?.require(Permission::ReadDirectory)?;
        let id = decode_id(&user_id, "User")?;
        match app.load::<entity::user::Entity>(id).await? {
            Some(user) => Ok(Some(presence_of(ctx, &user).await?)),
            None => Ok(None),
        }
    }

    /// The presence of the organization's active users (agents, team leads, admins and
    /// owners), by display name.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    async fn agent_presence(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only users matching this filter.")] filter: Option<PresenceFilterInput>,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<UserPresence>> {
        let filter = filter_of(filter)?;
        let args = PageArgs {
            after,
            before,
            first,
            last,
        };
        presence_page(ctx, filter, args).await
    }

    /// The presence of a team's active members, by display name; `NOT_FOUND` when the team is
    /// not in the caller's organization.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn team_presence(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team's global id.")] team_id: ID,
        #[graphql(desc = "Only members matching this filter (its `teamId` must be omitted).")]
        filter: Option<PresenceFilterInput>,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<UserPresence>> {
        let mut filter = filter_of(filter)?;
        if filter.team_id.is_some() {
            return Err(AppError::BadUserInput(
                "give the team as `teamId`, not in the filter".into(),
            )
            .into());
        }
        filter.team_id = Some(decode_id(&team_id, "Team")?);
        let args = PageArgs {
            after,
            before,
            first,
            last,
        };
        presence_page(ctx, filter, args).await
    }
}

/// A change to a presence; omitted fields stay as they are.
#[derive(InputObject)]
pub struct SetPresenceInput {
    /// Whose presence: the caller's when omitted. Another user's needs ADMIN.
    pub user_id: Option<ID>,
    /// The new presence status.
    pub presence_status: Option<PresenceStatusGql>,
    /// The channel types the user takes (replaces them; each at most once).
    pub active_channels: Option<Vec<ChannelTypeGql>>,
    /// The capacity per channel type (replaces the whole set; each type at most once, 0-1000
    /// conversations).
    pub capacity: Option<Vec<ChannelCapacity>>,
}

/// Result of `setPresence`.
#[derive(SimpleObject)]
pub struct SetPresencePayload {
    /// The presence after the change; null when it failed.
    pub presence: Option<UserPresence>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Presence mutations.
#[derive(Default)]
pub struct PresenceMutation;

#[Object]
impl PresenceMutation {
    /// Sets a presence status, the channel types taken or the capacity per channel type: one's
    /// own (anyone), or another user's (ADMIN). Each change is recorded as a `presenceChanged`
    /// event; setting what is already set records nothing.
    async fn set_presence(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: SetPresenceInput,
    ) -> async_graphql::Result<SetPresencePayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let update = PresenceUpdate {
            presence_status: input.presence_status.map(Into::into),
            active_channels: input
                .active_channels
                .map(|list| list.into_iter().map(Into::into).collect()),
            capacity: input.capacity.map(|list| {
                list.into_iter()
                    .map(|c| (c.channel_type.into(), c.conversations))
                    .collect()
            }),
        };
        let result = match input
            .user_id
            .map(|id| input_id("userId", &id, "User"))
            .transpose()
        {
            Ok(user_id) => service::set(app.db(), principal, user_id, &update, Utc::now()).await,
            Err(e) => Err(e),
        };
        let (presence, user_errors) = split(result)?;
        Ok(SetPresencePayload {
            presence: presence.map(|p| UserPresence::new(p, None)),
            user_errors,
        })
    }
}

/// A change to a user's presence.
#[derive(SimpleObject)]
pub struct PresenceChangedEvent {
    /// This event's cursor: subscribe with it as `after` to resume after this event.
    cursor: String,
    /// What changed.
    changes: Vec<PresenceChangeGql>,
    /// The presence right after the change.
    presence: UserPresence,
}

/// What a `presenceChanged` subscriber asked for.
struct PresenceEventFilter {
    team_id: Option<Uuid>,
    user_ids: Option<HashSet<Uuid>>,
}

impl PresenceEventFilter {
    fn event(&self, event: &entity::event::Model) -> Option<PresenceChangedEvent> {
        if event.event_type != service::PRESENCE_CHANGED {
            return None;
        }
        if self
            .user_ids
            .as_ref()
            .is_some_and(|ids| !ids.contains(&event.subject_id))
        {
            return None;
        }
        if let Some(team_id) = self.team_id {
            let team = team_id.to_string();
            let in_team = event
                .payload
                .get("teamIds")
                .and_then(|v| v.as_array())
                .is_some_and(|ids| ids.iter().any(|id| id.as_str() == Some(team.as_str())));
            if !in_team {
                return None;
            }
        }
        let presence = Presence::from_json(event.payload.get("presence")?)?;
        let changes = event
            .payload
            .get("changes")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().and_then(service::Change::parse))
            .map(Into::into)
            .collect();
        Some(PresenceChangedEvent {
            cursor: encode_cursor(event.seq),
            changes,
            presence: UserPresence::new(presence, None),
        })
    }
}

/// The presence subscription.
#[derive(Default)]
pub struct PresenceSubscription;

/// Presence as it changes.
#[Subscription]
impl PresenceSubscription {
    /// Changes to the presence of users of the caller's organization (connection status,
    /// presence status, channel types, capacity): of one team's members (as they were at the
    /// change), of some users, or of everyone. With `after`, first the changes after that
    /// cursor (still in the event log), then live ones. Each event carries the presence right
    /// after its change.
    async fn presence_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only changes of this team's members.")] team_id: Option<ID>,
        #[graphql(desc = "Only changes of these users (at most 100).")] user_ids: Option<Vec<ID>>,
        #[graphql(desc = "Resume after this event cursor (from an earlier event).")] after: Option<
            String,
        >,
    ) -> async_graphql::Result<
        impl Stream<Item = async_graphql::Result<PresenceChangedEvent>> + use<>,
    > {
        let app = ctx.app();
        let principal = app.principal()?.clone();
        principal.require(Permission::ReadDirectory)?;
        let team_id = existing::<entity::team::Entity>(app, team_id, "Team", "team").await?;
        let user_ids = match user_ids {
            Some(ids) => Some(users(app, &ids).await?),
            None => None,
        };
        let filter = Arc::new(PresenceEventFilter { team_id, user_ids });
        let db = app.db().clone();
        let start = start(&db, &app.state.bus, after.as_deref()).await?;
        let app = ctx.data::<Arc<RequestCtx>>()?.clone();
        Ok(stream(db, start, principal.org_id, app, move |_, event| {
            let filter = filter.clone();
            async move { Ok(filter.event(&event)) }
        }))
    }
}

/// The users with these ids in the caller's organization; `NOT_FOUND` when one is not.
async fn users(app: &RequestCtx, ids: &[ID]) -> AppResult<HashSet<Uuid>> {
    if ids.len() > MAX_MEMBERS_PER_CALL {
        return Err(AppError::BadUserInput(format!(
            "`userIds` takes at most {MAX_MEMBERS_PER_CALL} users"
        )));
    }
    let ids = ids
        .iter()
        .map(|id| decode_id(id, "User"))
        .collect::<AppResult<Vec<Uuid>>>()?;
    let found = app
        .loader::<ById<entity::user::Entity>>()?
        .load_many(ids.iter().copied())
        .await?;
    if ids.iter().any(|id| !found.contains_key(id)) {
        return Err(AppError::NotFound("user".into()));
    }
    Ok(ids.into_iter().collect())
}
