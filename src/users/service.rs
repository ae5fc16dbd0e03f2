//! Business rules for users.

use chrono::Utc;
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, Set,
};
use serde_json::json;
use uuid::Uuid;

use crate::auth::{Permission, Principal, Role, secrets};
use crate::config::Config;
use crate::db::{self, like_pattern};
use crate::error::{AppError, AppResult, UserErrorCode};
use crate::events::{self, Subject};
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::tenancy;
use crate::tokens::service::{TokenKind, issue};
use crate::validate::Errors;

use entity::user::{self, Column};

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;
/// Longest password accepted (argon2 input stays bounded).
pub const MAX_PASSWORD_LEN: usize = 256;

/// Whether a user can sign in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserStatus {
    /// Can sign in and be assigned work.
    Active,
    /// Removed: cannot sign in; history stays.
    Deactivated,
}

impl UserStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "ACTIVE",
            UserStatus::Deactivated => "DEACTIVATED",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> UserStatus {
        if s == "ACTIVE" {
            UserStatus::Active
        } else {
            UserStatus::Deactivated
        }
    }
}

/// Which users to list.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// Users holding any of these roles.
    pub roles: Option<Vec<Role>>,
    /// Users in this status.
    pub status: Option<UserStatus>,
    /// Case-insensitive substring of the display, first or last name or the email.
    pub search: Option<String>,
}

/// How to order users.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UserOrderField {
    /// Creation time.
    #[default]
    CreatedAt,
    /// Display name.
    DisplayName,
    /// Email address.
    Email,
}

fn sort(field: UserOrderField, direction: SortDirection) -> Sort<user::Entity> {
    match field {
        UserOrderField::CreatedAt => Sort {
            name: "CREATED_AT",
            column: Column::CreatedAt,
            direction,
            value: |m| SortValue::Time(m.created_at),
        },
        UserOrderField::DisplayName => Sort {
            name: "DISPLAY_NAME",
            column: Column::DisplayName,
            direction,
            value: |m| SortValue::Text(m.display_name.clone()),
        },
        UserOrderField::Email => Sort {
            name: "EMAIL",
            column: Column::Email,
            direction,
            value: |m| SortValue::Text(m.email.clone()),
        },
    }
}

/// One page of the organization's users.
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    filter: UserFilter,
    order: (UserOrderField, SortDirection),
    args: &PageArgs,
) -> AppResult<(Page<user::Model>, TotalCount)> {
    principal.require(Permission::ReadDirectory)?;
    let mut select = tenancy::in_org::<user::Entity>(principal.org_id);
    if let Some(roles) = filter.roles.filter(|r| !r.is_empty()) {
        let mut any = Condition::any();
        for role in roles {
            any = any.add(Column::Roles.like(format!("%{}%", role.as_str())));
        }
        select = select.filter(any);
    }
    if let Some(status) = filter.status {
        select = select.filter(Column::Status.eq(status.as_str()));
    }
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        use sea_orm::sea_query::ExprTrait as _;
        let mut any = Condition::any();
        for column in [
            Column::DisplayName,
            Column::FirstName,
            Column::LastName,
            Column::Email,
        ] {
            any = any.add(Expr::expr(Func::lower(Expr::col(column))).like(like_pattern(search)));
        }
        select = select.filter(any);
    }
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "users", &sort(order.0, order.1), args).await?;
    Ok((page, total))
}

/// A user in the caller's organization.
pub async fn get<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    id: Uuid,
) -> AppResult<user::Model> {
    principal.require(Permission::ReadDirectory)?;
    find(conn, principal.org_id, id).await
}

async fn find<C: ConnectionTrait>(conn: &C, org_id: Uuid, id: Uuid) -> AppResult<user::Model> {
    tenancy::by_id::<user::Entity>(org_id, id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid("id", UserErrorCode::NotFound, "no such user"))
}

/// A new user.
#[derive(Clone, Debug, Default)]
pub struct NewUser {
    /// Email (unique in the organization).
    pub email: String,
    /// Display name; built from first and last name, or the email, when absent.
    pub display_name: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Middle name.
    pub middle_name: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Phone (E.164).
    pub phone: Option<String>,
    /// More email addresses.
    pub additional_emails: Vec<String>,
    /// More phones (E.164).
    pub additional_phones: Vec<String>,
    /// Roles; `[AGENT]` when empty.
    pub roles: Vec<Role>,
    /// Locale.
    pub locale: Option<String>,
    /// IANA timezone.
    pub timezone: Option<String>,
    /// Initial password.
    pub password: Option<String>,
}

fn check_password(errors: &mut Errors, field: &str, password: &str) {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        errors.add(
            field,
            UserErrorCode::TooShort,
            format!("password must be at least {MIN_PASSWORD_LEN} characters"),
        );
    } else if len > MAX_PASSWORD_LEN {
        errors.add(
            field,
            UserErrorCode::TooLong,
            format!("password must be at most {MAX_PASSWORD_LEN} characters"),
        );
    }
}

fn check_list(errors: &mut Errors, field: &str, values: &[String], phone: bool) -> Vec<String> {
    if values.len() > 20 {
        errors.add(
            field,
            UserErrorCode::TooLong,
            format!("{field} takes at most 20 values"),
        );
    }
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let name = format!("{field}.{i}");
            if phone {
                errors.phone(&name, v)
            } else {
                errors.email(&name, v)
            }
        })
        .collect()
}

async fn email_taken<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    email: &str,
    except: Option<Uuid>,
) -> AppResult<bool> {
    let mut select = tenancy::in_org::<user::Entity>(org_id).filter(Column::Email.eq(email));
    if let Some(id) = except {
        select = select.filter(Column::Id.ne(id));
    }
    Ok(select.count(conn).await? > 0)
}

/// Validates and inserts a user, recording `USER_CREATED`. The caller owns the transaction.
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    actor: Option<Uuid>,
    input: NewUser,
) -> AppResult<user::Model> {
    let mut errors = Errors::default();
    let email = errors.email("email", &input.email);
    let first_name = errors.optional_text("firstName", input.first_name.as_deref(), 100);
    let last_name = errors.optional_text("lastName", input.last_name.as_deref(), 100);
    let middle_name = errors.optional_text("middleName", input.middle_name.as_deref(), 100);
    let display_name = match input.display_name.as_deref() {
        Some(name) => errors.required_text("displayName", name, 200),
        None => {
            let full = [first_name.as_deref(), last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            if full.is_empty() {
                email.split('@').next().unwrap_or_default().to_string()
            } else {
                full
            }
        }
    };
    let avatar_url = input
        .avatar_url
        .as_deref()
        .map(|u| errors.url("avatarUrl", u));
    let phone = input.phone.as_deref().map(|p| errors.phone("phone", p));
    let additional_emails = check_list(
        &mut errors,
        "additionalEmails",
        &input.additional_emails,
        false,
    );
    let additional_phones = check_list(
        &mut errors,
        "additionalPhones",
        &input.additional_phones,
        true,
    );
    let locale = input.locale.as_deref().map(|l| errors.locale("locale", l));
    let timezone = input
        .timezone
        .as_deref()
        .map(|t| errors.timezone("timezone", t));
    if let Some(password) = &input.password {
        check_password(&mut errors, "password", password);
    }
    let roles = if input.roles.is_empty() {
        vec![Role::Agent]
    } else {
        input.roles.clone()
    };
    errors.finish()?;
    if email_taken(conn, org_id, &email, None).await? {
        return Err(AppError::invalid(
            "email",
            UserErrorCode::Taken,
            format!("a user with email {email:?} exists"),
        ));
    }
    let password_hash = match input.password {
        Some(password) => Some(secrets::hash_password(password).await?),
        None => None,
    };
    let now = Utc::now();
    let model = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(org_id),
        email: Set(email),
        display_name: Set(display_name),
        first_name: Set(first_name),
        last_name: Set(last_name),
        middle_name: Set(middle_name),
        avatar_url: Set(avatar_url),
        phone: Set(phone),
        additional_emails: Set(json!(additional_emails)),
        additional_phones: Set(json!(additional_phones)),
        roles: Set(Role::store_list(&roles)),
        locale: Set(locale),
        timezone: Set(timezone),
        status: Set(UserStatus::Active.as_str().to_string()),
        password_hash: Set(password_hash),
        created_at: Set(now),
        updated_at: Set(now),
        deactivated_at: Set(None),
    }
    .insert(conn)
    .await?;
    events::record(
        conn,
        org_id,
        actor,
        "USER_CREATED",
        Subject::new("User", model.id),
        json!({ "email": model.email, "roles": model.roles }),
    )
    .await?;
    Ok(model)
}

fn require_can_grant(principal: &Principal, roles: &[Role]) -> AppResult<()> {
    if roles.contains(&Role::Owner) {
        principal.require(Permission::ManageOwners)?;
    }
    Ok(())
}

/// Creates a user (ADMIN; granting OWNER needs OWNER).
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    input: NewUser,
) -> AppResult<user::Model> {
    principal.require(Permission::ManageUsers)?;
    require_can_grant(principal, &input.roles)?;
    let txn = db::begin_write(db).await?;
    let model = insert(&txn, principal.org_id, Some(principal.user_id()), input).await?;
    txn.commit().await?;
    Ok(model)
}

/// Changes to a user's profile; `None` leaves a field, `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    /// New email.
    pub email: Option<String>,
    /// New display name.
    pub display_name: Option<String>,
    /// New first name.
    pub first_name: Option<Option<String>>,
    /// New last name.
    pub last_name: Option<Option<String>>,
    /// New middle name.
    pub middle_name: Option<Option<String>>,
    /// New avatar URL.
    pub avatar_url: Option<Option<String>>,
    /// New phone.
    pub phone: Option<Option<String>>,
    /// New additional emails (replaces the list).
    pub additional_emails: Option<Vec<String>>,
    /// New additional phones (replaces the list).
    pub additional_phones: Option<Vec<String>>,
    /// New locale.
    pub locale: Option<Option<String>>,
    /// New timezone.
    pub timezone: Option<Option<String>>,
}

/// Guards changes to another user: ADMIN, and OWNER to touch an owner.
fn require_can_manage(principal: &Principal, target: &user::Model) -> AppResult<()> {
    if target.id == principal.user_id() {
        return principal.require(Permission::ManageOwnCredentials);
    }
    principal.require(Permission::ManageUsers)?;
    if Role::parse_list(&target.roles).contains(&Role::Owner) {
        principal.require(Permission::ManageOwners)?;
    }
    Ok(())
}

/// Updates a user's profile (the user themself, or ADMIN).
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    patch: UserPatch,
) -> AppResult<user::Model> {
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id).await?;
    require_can_manage(principal, &current)?;
    let mut errors = Errors::default();
    let mut changed: Vec<&str> = Vec::new();
    let mut model = current.clone().into_active_model();
    if let Some(email) = &patch.email {
        let email = errors.email("email", email);
        changed.push("email");
        model.email = Set(email);
    }
    if let Some(name) = &patch.display_name {
        changed.push("displayName");
        model.display_name = Set(errors.required_text("displayName", name, 200));
    }
    let texts = [
        ("firstName", &patch.first_name, &mut model.first_name),
        ("lastName", &patch.last_name, &mut model.last_name),
        ("middleName", &patch.middle_name, &mut model.middle_name),
    ];
    for (field, value, column) in texts {
        if let Some(value) = value {
            changed.push(field);
            *column = Set(errors.optional_text(field, value.as_deref(), 100));
        }
    }
    if let Some(url) = &patch.avatar_url {
        changed.push("avatarUrl");
        model.avatar_url = Set(url.as_deref().map(|u| errors.url("avatarUrl", u)));
    }
    if let Some(phone) = &patch.phone {
        changed.push("phone");
        model.phone = Set(phone.as_deref().map(|p| errors.phone("phone", p)));
    }
    if let Some(list) = &patch.additional_emails {
        changed.push("additionalEmails");
        model.additional_emails = Set(json!(check_list(
            &mut errors,
            "additionalEmails",
            list,
            false
        )));
    }
    if let Some(list) = &patch.additional_phones {
        changed.push("additionalPhones");
        model.additional_phones = Set(json!(check_list(
            &mut errors,
            "additionalPhones",
            list,
            true
        )));
    }
    if let Some(locale) = &patch.locale {
        changed.push("locale");
        model.locale = Set(locale.as_deref().map(|l| errors.locale("locale", l)));
    }
    if let Some(timezone) = &patch.timezone {
        changed.push("timezone");
        model.timezone = Set(timezone.as_deref().map(|t| errors.timezone("timezone", t)));
    }
    errors.finish()?;
    if let sea_orm::ActiveValue::Set(email) = &model.email
        && email_taken(&txn, principal.org_id, email, Some(id)).await?
    {
        return Err(AppError::invalid(
            "email",
            UserErrorCode::Taken,
            format!("a user with email {email:?} exists"),
        ));
    }
    model.updated_at = Set(Utc::now());
    let updated = model.update(&txn).await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "USER_UPDATED",
        Subject::new("User", id),
        json!({ "changed": changed }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

async fn active_owner_count<C: ConnectionTrait>(conn: &C, org_id: Uuid) -> AppResult<u64> {
    Ok(tenancy::in_org::<user::Entity>(org_id)
        .filter(Column::Status.eq(UserStatus::Active.as_str()))
        .filter(Column::Roles.like("%OWNER%"))
        .count(conn)
        .await?)
}

fn is_active_owner(user: &user::Model) -> bool {
    user.status == UserStatus::Active.as_str()
        && Role::parse_list(&user.roles).contains(&Role::Owner)
}

/// Deactivates or reactivates a user (ADMIN; OWNER for owners). A user cannot deactivate
/// themself, and the last active owner cannot be deactivated.
pub async fn set_status(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    status: UserStatus,
) -> AppResult<user::Model> {
    principal.require(Permission::ManageUsers)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id).await?;
    require_can_manage(principal, &current)?;
    if UserStatus::parse(&current.status) == status {
        return Err(AppError::invalid(
            "id",
            UserErrorCode::InvalidState,
            format!("user is already {}", status.as_str().to_lowercase()),
        ));
    }
    if status == UserStatus::Deactivated {
        if id == principal.user_id() {
            return Err(AppError::invalid(
                "id",
                UserErrorCode::InvalidState,
                "you cannot deactivate yourself",
            ));
        }
        if is_active_owner(&current) && active_owner_count(&txn, principal.org_id).await? <= 1 {
            return Err(AppError::invalid(
                "id",
                UserErrorCode::InvalidState,
                "the last active owner cannot be deactivated",
            ));
        }
    }
    let now = Utc::now();
    let mut model = current.into_active_model();
    model.status = Set(status.as_str().to_string());
    model.deactivated_at = Set((status == UserStatus::Deactivated).then_some(now));
    model.updated_at = Set(now);
    let updated = model.update(&txn).await?;
    let event = match status {
        UserStatus::Active => "USER_REACTIVATED",
        UserStatus::Deactivated => "USER_DEACTIVATED",
    };
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        event,
        Subject::new("User", id),
        json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Replaces a user's roles (ADMIN; granting or removing OWNER needs OWNER). The last active owner
/// keeps the OWNER role.
pub async fn set_roles(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    roles: Vec<Role>,
) -> AppResult<user::Model> {
    principal.require(Permission::ManageUsers)?;
    if roles.is_empty() {
        return Err(AppError::invalid(
            "roles",
            UserErrorCode::Required,
            "a user needs at least one role",
        ));
    }
    require_can_grant(principal, &roles)?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id).await?;
    require_can_manage(principal, &current)?;
    if id == principal.user_id() {
        // Changing one's own roles is an admin action on oneself.
        principal.require(Permission::ManageUsers)?;
    }
    let before = Role::parse_list(&current.roles);
    if is_active_owner(&current)
        && !roles.contains(&Role::Owner)
        && active_owner_count(&txn, principal.org_id).await? <= 1
    {
        return Err(AppError::invalid(
            "roles",
            UserErrorCode::InvalidState,
            "the last active owner must keep the OWNER role",
        ));
    }
    let stored = Role::store_list(&roles);
    let mut model = current.into_active_model();
    model.roles = Set(stored.clone());
    model.updated_at = Set(Utc::now());
    let updated = model.update(&txn).await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "USER_ROLES_CHANGED",
        Subject::new("User", id),
        json!({ "before": Role::store_list(&before), "after": stored }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// A password change.
#[derive(Clone, Debug)]
pub struct SetPassword {
    /// Whose password; the caller's when absent.
    pub user_id: Option<Uuid>,
    /// The caller's current password (required when changing one's own existing password).
    pub current_password: Option<String>,
    /// The new password.
    pub new_password: String,
}

/// Sets a password: one's own (with the current one, if set), or another user's (ADMIN; OWNER for
/// owners). The user's login sessions other than the caller's are revoked.
pub async fn set_password(
    db: &DatabaseConnection,
    principal: &Principal,
    input: SetPassword,
) -> AppResult<user::Model> {
    let id = input.user_id.unwrap_or(principal.user_id());
    let mut errors = Errors::default();
    check_password(&mut errors, "newPassword", &input.new_password);
    errors.finish()?;
    let target = find(db, principal.org_id, id).await?;
    require_can_manage(principal, &target)?;
    if id == principal.user_id()
        && let Some(stored) = &target.password_hash
    {
        let current = input.current_password.clone().unwrap_or_default();
        if !secrets::verify_password(current, stored.clone()).await? {
            return Err(AppError::invalid(
                "currentPassword",
                UserErrorCode::InvalidCredentials,
                "the current password does not match",
            ));
        }
    }
    let hash = secrets::hash_password(input.new_password).await?;
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id).await?;
    let mut model = current.into_active_model();
    model.password_hash = Set(Some(hash));
    model.updated_at = Set(Utc::now());
    let updated = model.update(&txn).await?;
    crate::tokens::service::revoke_sessions(&txn, &updated, Some(principal.token_id)).await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "USER_PASSWORD_SET",
        Subject::new("User", id),
        json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Credentials for `login`.
#[derive(Clone, Debug)]
pub struct Login {
    /// The organization's slug; needed only when the email exists in several organizations.
    pub organization: Option<String>,
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
}

/// Checks credentials and issues a session token. Unknown email, wrong password, no password set
/// and deactivated users all get the same answer.
pub async fn login(
    db: &DatabaseConnection,
    config: &Config,
    input: Login,
) -> AppResult<(entity::api_token::Model, String, user::Model)> {
    let email = input.email.trim().to_lowercase();
    let mut select = user::Entity::find().filter(Column::Email.eq(&email));
    if let Some(slug) = input.organization.as_deref() {
        let org = entity::organization::Entity::find()
            .filter(entity::organization::Column::Slug.eq(slug.trim()))
            .one(db)
            .await?;
        let org_id = org.map(|o| o.id).unwrap_or_else(Uuid::nil);
        select = select.filter(Column::OrgId.eq(org_id));
    }
    let candidates = select.all(db).await?;
    let denied = || {
        AppError::invalid(
            "password",
            UserErrorCode::InvalidCredentials,
            "email or password is wrong",
        )
    };
    if candidates.len() > 1 {
        return Err(AppError::invalid(
            "organization",
            UserErrorCode::Ambiguous,
            "this email belongs to several organizations: name the organization",
        ));
    }
    let Some(user) = candidates.into_iter().next() else {
        // Spend the same time as a real check so timing does not reveal unknown emails.
        let _ = secrets::hash_password(input.password).await;
        return Err(denied());
    };
    let Some(stored) = user.password_hash.clone() else {
        let _ = secrets::hash_password(input.password).await;
        return Err(denied());
    };
    if !secrets::verify_password(input.password, stored).await?
        || user.status != UserStatus::Active.as_str()
    {
        return Err(denied());
    }
    let expires = Utc::now() + chrono::Duration::hours(config.session_ttl_hours.max(1));
    let txn = db::begin_write(db).await?;
    let (token, secret) = issue(
        &txn,
        &user,
        TokenKind::Session,
        "login session",
        Some(expires),
        None,
    )
    .await?;
    events::record(
        &txn,
        user.org_id,
        Some(user.id),
        "USER_LOGGED_IN",
        Subject::new("User", user.id),
        json!({ "tokenId": token.id }),
    )
    .await?;
    txn.commit().await?;
    Ok((token, secret, user))
}
