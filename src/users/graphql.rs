//! GraphQL types, queries and mutations of users.

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::service::{self, NewUser, SetPassword, UserFilter, UserPatch};
use crate::auth::{self, Role};
use crate::graphql::context::{ContextExt, page_selects};
use crate::graphql::payload::{UserError, input_id, split};
use crate::graphql::relay::{Connection, PageArgs, SortDirection, decode_id, encode_id};
use crate::organizations::graphql::{Organization, patch};

/// A staff role. Each role includes the rights of the roles below it.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "Role", remote = "auth::Role")]
pub enum RoleGql {
    /// Also other users' tokens and deleting the organization.
    Owner,
    /// Also users, channels, webhooks, custom attributes, settings, anonymization and audit log.
    Admin,
    /// Also teams, queues, tags, templates, broadcasts and campaigns.
    TeamLead,
    /// Works conversations, messages, notes and contacts.
    Agent,
}

fn roles_in(roles: Vec<RoleGql>) -> Vec<Role> {
    roles.into_iter().map(Role::from).collect()
}

/// Whether a user can sign in.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "UserStatus", remote = "service::UserStatus")]
pub enum UserStatusGql {
    /// Can sign in and be assigned work.
    Active,
    /// Removed: cannot sign in; history stays.
    Deactivated,
}

/// A staff member who signs in and works conversations.
#[derive(Clone)]
pub struct User(pub entity::user::Model);

fn json_strings(value: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

/// A staff member who signs in and works conversations.
#[Object]
impl User {
    /// Globally unique, opaque id.
    pub async fn id(&self) -> ID {
        encode_id("User", self.0.id)
    }

    /// Sign-in email, unique in the organization (lower case).
    async fn email(&self) -> &str {
        &self.0.email
    }

    /// Name shown to colleagues and contacts.
    async fn display_name(&self) -> &str {
        &self.0.display_name
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

    /// Avatar image URL.
    async fn avatar_url(&self) -> Option<&str> {
        self.0.avatar_url.as_deref()
    }

    /// Phone number (E.164).
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }

    /// More email addresses.
    async fn additional_emails(&self) -> Vec<String> {
        json_strings(&self.0.additional_emails)
    }

    /// More phone numbers (E.164).
    async fn additional_phones(&self) -> Vec<String> {
        json_strings(&self.0.additional_phones)
    }

    /// Roles, highest first.
    async fn roles(&self) -> Vec<RoleGql> {
        Role::parse_list(&self.0.roles)
            .into_iter()
            .map(RoleGql::from)
            .collect()
    }

    /// Preferred locale.
    async fn locale(&self) -> Option<&str> {
        self.0.locale.as_deref()
    }

    /// Preferred IANA timezone.
    async fn timezone(&self) -> Option<&str> {
        self.0.timezone.as_deref()
    }

    /// Whether the user can sign in.
    async fn status(&self) -> UserStatusGql {
        service::UserStatus::parse(&self.0.status).into()
    }

    /// Whether a password is set (so `login` works for this user).
    async fn has_password(&self) -> bool {
        self.0.password_hash.is_some()
    }

    /// The teams the user belongs to, in joining order.
    async fn teams(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::teams::graphql::Team>> {
        crate::teams::graphql::teams_of_user(ctx, self.0.id).await
    }

    /// The user's presence: connection status, presence status, channel types taken and
    /// capacity.
    async fn presence(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<crate::presence::graphql::UserPresence> {
        crate::presence::graphql::presence_of(ctx, &self.0).await
    }

    /// When the user was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the user last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// When the user was deactivated, if they are.
    async fn deactivated_at(&self) -> Option<DateTime<Utc>> {
        self.0.deactivated_at
    }
}

/// Which users to list. All given conditions must hold.
#[derive(InputObject, Default)]
pub struct UserFilterInput {
    /// Users holding any of these roles.
    pub roles: Option<Vec<RoleGql>>,
    /// Users in this status.
    pub status: Option<UserStatusGql>,
    /// Case-insensitive text in the display, first or last name or the email.
    pub search: Option<String>,
}

/// What users can be ordered by.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[graphql(remote = "service::UserOrderField")]
pub enum UserOrderField {
    /// Creation time.
    #[default]
    CreatedAt,
    /// Display name.
    DisplayName,
    /// Email address.
    Email,
}

/// Order of a users list.
#[derive(InputObject, Default)]
pub struct UserOrder {
    /// What to order by.
    #[graphql(default)]
    pub field: UserOrderField,
    /// Which way.
    #[graphql(default)]
    pub direction: SortDirection,
}

/// Who is calling.
pub struct Viewer;

/// Who is calling: the authenticated user, their organization and roles.
#[Object]
impl Viewer {
    /// The authenticated user.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        Ok(User((*ctx.app().principal()?.user).clone()))
    }

    /// The user's organization.
    async fn organization(&self, ctx: &Context<'_>) -> async_graphql::Result<Organization> {
        let app = ctx.app();
        let principal = app.principal()?;
        Ok(Organization(
            crate::organizations::service::current(app.db(), principal).await?,
        ))
    }

    /// The user's roles, highest first.
    async fn roles(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RoleGql>> {
        Ok(ctx
            .app()
            .principal()?
            .roles
            .iter()
            .map(|r| RoleGql::from(*r))
            .collect())
    }
}

/// User queries.
#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// The caller: user, organization and roles.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
        ctx.app().principal()?;
        Ok(Viewer)
    }

    /// A user of the caller's organization by id; null when there is none.
    async fn user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user's global id.")] id: ID,
    ) -> async_graphql::Result<Option<User>> {
        let app = ctx.app();
        app.principal()?.require(auth::Permission::ReadDirectory)?;
        let id = decode_id(&id, "User")?;
        Ok(app.load::<entity::user::Entity>(id).await?.map(User))
    }

    /// The organization's users.
    #[graphql(
        complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only users matching this filter.")] filter: Option<UserFilterInput>,
        #[graphql(desc = "Order of the list; oldest first by default.")] order_by: Option<
            UserOrder,
        >,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<Connection<User>> {
        let app = ctx.app();
        let filter = filter.unwrap_or_default();
        let order = order_by.unwrap_or_default();
        let (page, total) = service::list(
            app.db(),
            app.principal()?,
            UserFilter {
                roles: filter.roles.map(roles_in),
                status: filter.status.map(Into::into),
                search: filter.search,
            },
            (order.field.into(), order.direction),
            &PageArgs {
                after,
                before,
                first,
                last,
            },
        )
        .await?;
        if page_selects(ctx, &["teams"]) {
            crate::teams::graphql::prefetch_teams_of_users(
                ctx,
                page.items.iter().map(|(_, u)| u.id).collect(),
            )
            .await?;
        }
        Ok(Connection::new(page.map(User), total))
    }
}

/// A new user.
#[derive(InputObject)]
pub struct CreateUserInput {
    /// Sign-in email, unique in the organization.
    pub email: String,
    /// Display name; built from first and last name, or the email, when omitted.
    pub display_name: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Middle name.
    pub middle_name: Option<String>,
    /// Avatar image URL.
    pub avatar_url: Option<String>,
    /// Phone number (E.164).
    pub phone: Option<String>,
    /// More email addresses.
    #[graphql(default)]
    pub additional_emails: Vec<String>,
    /// More phone numbers (E.164).
    #[graphql(default)]
    pub additional_phones: Vec<String>,
    /// Roles; `[AGENT]` when omitted. Granting OWNER needs OWNER.
    #[graphql(default)]
    pub roles: Vec<RoleGql>,
    /// Preferred locale.
    pub locale: Option<String>,
    /// Preferred IANA timezone.
    pub timezone: Option<String>,
    /// Initial password (at least 10 characters) so the user can `login`.
    pub password: Option<String>,
}

/// Result of a mutation on one user.
#[derive(SimpleObject)]
pub struct UserPayload {
    /// The user after the change; null when it failed.
    pub user: Option<User>,
    /// Why the input was refused; empty on success.
    pub user_errors: Vec<UserError>,
}

impl UserPayload {
    fn from(result: crate::error::AppResult<entity::user::Model>) -> async_graphql::Result<Self> {
        let (user, user_errors) = split(result)?;
        Ok(Self {
            user: user.map(User),
            user_errors,
        })
    }
}

/// Changes to a user; omitted fields stay as they are, `null` clears.
#[derive(InputObject)]
pub struct UpdateUserInput {
    /// The user.
    pub id: ID,
    /// New sign-in email.
    pub email: Option<String>,
    /// New display name.
    pub display_name: Option<String>,
    /// New first name.
    pub first_name: MaybeUndefined<String>,
    /// New last name.
    pub last_name: MaybeUndefined<String>,
    /// New middle name.
    pub middle_name: MaybeUndefined<String>,
    /// New avatar image URL.
    pub avatar_url: MaybeUndefined<String>,
    /// New phone number (E.164).
    pub phone: MaybeUndefined<String>,
    /// Replaces the additional email addresses.
    pub additional_emails: Option<Vec<String>>,
    /// Replaces the additional phone numbers.
    pub additional_phones: Option<Vec<String>>,
    /// New locale.
    pub locale: MaybeUndefined<String>,
    /// New IANA timezone.
    pub timezone: MaybeUndefined<String>,
}

/// Names one user.
#[derive(InputObject)]
pub struct UserIdInput {
    /// The user.
    pub id: ID,
}

/// New roles for a user.
#[derive(InputObject)]
pub struct SetUserRolesInput {
    /// The user.
    pub id: ID,
    /// The complete new list of roles (at least one).
    pub roles: Vec<RoleGql>,
}

/// A password change.
#[derive(InputObject)]
pub struct SetPasswordInput {
    /// Whose password; the caller's when omitted. Another user's needs ADMIN (OWNER for owners).
    pub user_id: Option<ID>,
    /// The caller's current password, required when changing one's own existing password.
    pub current_password: Option<String>,
    /// The new password (10-256 characters).
    pub new_password: String,
}

/// Credentials for `login`.
#[derive(InputObject)]
pub struct LoginInput {
    /// The organization's slug; needed only when the email belongs to several organizations.
    pub organization: Option<String>,
    /// Sign-in email.
    pub email: String,
    /// Password.
    pub password: String,
}

/// Result of `login`.
#[derive(SimpleObject)]
pub struct LoginPayload {
    /// The session token, shown once: send it as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// When the session ends.
    pub expires_at: Option<DateTime<Utc>>,
    /// The signed-in user.
    pub user: Option<User>,
    /// Why the credentials were refused; empty on success.
    pub user_errors: Vec<UserError>,
}

/// User mutations.
#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    /// Creates a user (ADMIN; granting OWNER needs OWNER).
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: CreateUserInput,
    ) -> async_graphql::Result<UserPayload> {
        let app = ctx.app();
        let new = NewUser {
            email: input.email,
            display_name: input.display_name,
            first_name: input.first_name,
            last_name: input.last_name,
            middle_name: input.middle_name,
            avatar_url: input.avatar_url,
            phone: input.phone,
            additional_emails: input.additional_emails,
            additional_phones: input.additional_phones,
            roles: roles_in(input.roles),
            locale: input.locale,
            timezone: input.timezone,
            password: input.password,
        };
        UserPayload::from(service::create(app.db(), app.principal()?, new).await)
    }

    /// Changes a user's profile (the user themself, or ADMIN; OWNER for owners).
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UpdateUserInput,
    ) -> async_graphql::Result<UserPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("id", &input.id, "User") {
            Ok(id) => {
                let change = UserPatch {
                    email: input.email,
                    display_name: input.display_name,
                    first_name: patch(input.first_name),
                    last_name: patch(input.last_name),
                    middle_name: patch(input.middle_name),
                    avatar_url: patch(input.avatar_url),
                    phone: patch(input.phone),
                    additional_emails: input.additional_emails,
                    additional_phones: input.additional_phones,
                    locale: patch(input.locale),
                    timezone: patch(input.timezone),
                };
                service::update(app.db(), principal, id, change).await
            }
            Err(e) => Err(e),
        };
        UserPayload::from(result)
    }

    /// Deactivates a user: they can no longer sign in, their tokens stop working, history stays
    /// (ADMIN; OWNER for owners).
    async fn deactivate_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UserIdInput,
    ) -> async_graphql::Result<UserPayload> {
        set_status(ctx, input, service::UserStatus::Deactivated).await
    }

    /// Reactivates a deactivated user (ADMIN; OWNER for owners).
    async fn reactivate_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: UserIdInput,
    ) -> async_graphql::Result<UserPayload> {
        set_status(ctx, input, service::UserStatus::Active).await
    }

    /// Replaces a user's roles (ADMIN; granting or removing OWNER needs OWNER).
    async fn set_user_roles(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: SetUserRolesInput,
    ) -> async_graphql::Result<UserPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let result = match input_id("id", &input.id, "User") {
            Ok(id) => service::set_roles(app.db(), principal, id, roles_in(input.roles)).await,
            Err(e) => Err(e),
        };
        UserPayload::from(result)
    }

    /// Sets a password. Other login sessions of that user are signed out.
    async fn set_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: SetPasswordInput,
    ) -> async_graphql::Result<UserPayload> {
        let app = ctx.app();
        let principal = app.principal()?;
        let user_id = match input
            .user_id
            .as_ref()
            .map(|id| input_id("userId", id, "User"))
        {
            Some(Err(e)) => return UserPayload::from(Err(e)),
            Some(Ok(id)) => Some(id),
            None => None,
        };
        let change = SetPassword {
            user_id,
            current_password: input.current_password,
            new_password: input.new_password,
        };
        UserPayload::from(service::set_password(app.db(), principal, change).await)
    }

    /// Signs in with email and password and returns a session token. Needs no token.
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mutation's input.")] input: LoginInput,
    ) -> async_graphql::Result<LoginPayload> {
        let app = ctx.app();
        let credentials = service::Login {
            organization: input.organization,
            email: input.email,
            password: input.password,
        };
        let (session, user_errors) =
            split(service::login(app.db(), &app.state.config, credentials).await)?;
        Ok(match session {
            Some((token, secret, user)) => LoginPayload {
                token: Some(secret),
                expires_at: token.expires_at,
                user: Some(User(user)),
                user_errors,
            },
            None => LoginPayload {
                token: None,
                expires_at: None,
                user: None,
                user_errors,
            },
        })
    }
}

async fn set_status(
    ctx: &Context<'_>,
    input: UserIdInput,
    status: service::UserStatus,
) -> async_graphql::Result<UserPayload> {
    let app = ctx.app();
    let principal = app.principal()?;
    let result = match input_id("id", &input.id, "User") {
        Ok(id) => service::set_status(app.db(), principal, id, status).await,
        Err(e) => Err(e),
    };
    UserPayload::from(result)
}
