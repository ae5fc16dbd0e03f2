//! Business rules for contact groups.
//!
//! A group has static members (contacts added by hand, as in Multisender, Text Request and
//! courier groups) and optional rules (Multisender's account filters). Its members are the
//! static members together with every contact matching all of its rules; a group without rules
//! is a plain static group, a group with rules and no static members is a segment. One model
//! serves both seeds, and a segment can still take a few hand-picked extra contacts.
//!
//! Anonymized contacts belong to no group: they never match rules and their static memberships
//! do not count (their personal data is gone, so they must not land in an audience). They cannot
//! be added; they can be removed.
//!
//! Membership is always decided in SQL by [`membership`], used by a group's contacts and
//! count, by the contacts list's group filter, and (through [`groups_of_contacts`]) by a
//! contact's groups.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait as _, Func, Query, SelectStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend,
    DbErr, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, Set, SqlErr,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::rules::{self, ATTRIBUTE_PREFIX, Compiled, MAX_RULES, Operator, Problem, Rule};
use crate::auth::{Permission, Principal};
use crate::custom_attributes::service::{AttributeEntity, AttributeType, SelectOption, options_of};
use crate::db::{self, like_pattern};
use crate::error::{AppError, AppResult, FieldError, UserErrorCode};
use crate::events::{self, Subject};
use crate::graphql::relay::{Page, PageArgs, Sort, SortDirection, SortValue, TotalCount, paginate};
use crate::tenancy;
use crate::validate::Errors;

use entity::{contact, contact_group as group, contact_group_member as member};

/// Most contacts one `addContactGroupMembers` or `removeContactGroupMembers` call takes.
pub const MAX_MEMBERS_PER_CALL: usize = 1000;

/// Most groups compiled into one membership or count statement; more groups take more
/// statements (SQLite caps compound selects at 500 terms and expression depth at 1000).
const GROUPS_PER_STATEMENT: usize = 100;
/// Most rule values bound in one statement (well under SQLite's 32766 and PostgreSQL's 65535
/// parameters, leaving room for the contact ids).
const VALUES_PER_STATEMENT: usize = 5000;

/// A new group.
#[derive(Clone, Debug, Default)]
pub struct NewGroup {
    /// Name, unique in the organization regardless of case.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Rules, matched all-of; empty for a static group.
    pub rules: Vec<Rule>,
}

/// Changes to a group; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct GroupPatch {
    /// New name.
    pub name: Option<String>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New rules, replacing all of them (`Some(vec![])` removes them).
    pub rules: Option<Vec<Rule>>,
}

/// The group's stored rules.
pub fn stored_rules(model: &group::Model) -> AppResult<Vec<Rule>> {
    rules::parse_rules(&model.rules).map_err(AppError::internal)
}

fn compiled_rules(model: &group::Model) -> AppResult<Vec<Compiled>> {
    stored_rules(model)?
        .iter()
        .map(|rule| {
            rules::compile(rule).map_err(|problem| {
                AppError::internal(format!("stored rule of group {}: {problem:?}", model.id))
            })
        })
        .collect()
}

/// How many bound values a group's rules take, for splitting statements.
fn weight(model: &group::Model) -> usize {
    let rules = rules::parse_rules(&model.rules).unwrap_or_default();
    1 + rules
        .iter()
        .map(|r| 2 + r.value.as_array().map_or(1, Vec::len))
        .sum::<usize>()
}

/// Splits groups into batches small enough for one statement each.
fn batches(groups: &[group::Model]) -> Vec<&[group::Model]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut values = 0;
    for (i, g) in groups.iter().enumerate() {
        let w = weight(g);
        if i > start && (i - start == GROUPS_PER_STATEMENT || values + w > VALUES_PER_STATEMENT) {
            out.push(&groups[start..i]);
            start = i;
            values = 0;
        }
        values += w;
    }
    if start < groups.len() {
        out.push(&groups[start..]);
    }
    out
}

fn option_exists(options: &[SelectOption], value: &str) -> bool {
    options
        .iter()
        .any(|o| o.value == value || option_exists(&o.options, value))
}

/// Checks rules against the contact model and the organization's contact attributes; returns
/// them as stored (attribute types filled in, lower-case fields lower-cased). Problems are
/// recorded at `rules.<i>.field`, `rules.<i>.operator` or `rules.<i>.value[.<j>]`.
async fn check_rules<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    input: &[Rule],
    errors: &mut Errors,
) -> AppResult<Vec<Rule>> {
    if input.len() > MAX_RULES {
        errors.add(
            "rules",
            UserErrorCode::TooLong,
            format!("a group has at most {MAX_RULES} rules"),
        );
        return Ok(Vec::new());
    }
    let definitions = if input.iter().any(|r| r.field.starts_with(ATTRIBUTE_PREFIX)) {
        crate::custom_attributes::service::list(conn, principal, AttributeEntity::Contact, true)
            .await?
    } else {
        Vec::new()
    };
    let mut stored = Vec::with_capacity(input.len());
    for (i, rule) in input.iter().enumerate() {
        let path = |part: &str| format!("rules.{i}.{part}");
        let mut rule = Rule {
            field: rule.field.trim().to_string(),
            attribute_type: None,
            ..rule.clone()
        };
        let mut options = None;
        if let Some(identifier) = rule.field.strip_prefix(ATTRIBUTE_PREFIX) {
            match definitions.iter().find(|d| d.identifier == identifier) {
                None => {
                    errors.add(
                        &path("field"),
                        UserErrorCode::NotFound,
                        format!("no contact attribute {identifier:?}"),
                    );
                    continue;
                }
                Some(d) if d.archived => {
                    errors.add(
                        &path("field"),
                        UserErrorCode::InvalidState,
                        format!("attribute {identifier:?} is archived"),
                    );
                    continue;
                }
                Some(d) => {
                    rule.attribute_type = Some(d.value_type.clone());
                    if d.value_type == AttributeType::Select.as_str() {
                        options = Some((d.identifier.clone(), options_of(d)));
                    }
                }
            }
        }
        match rules::compile(&rule) {
            Err(Problem::Field(message)) => {
                errors.add(&path("field"), UserErrorCode::Invalid, message);
                continue;
            }
            Err(Problem::Operator(message)) => {
                errors.add(&path("operator"), UserErrorCode::Invalid, message);
                continue;
            }
            Err(Problem::Value(suffix, message)) => {
                errors.add(
                    &format!("{}{suffix}", path("value")),
                    UserErrorCode::Invalid,
                    message,
                );
                continue;
            }
            Ok(_) => {}
        }
        // SELECT attributes compare option values: naming a value that is no option is a typo.
        if let Some((identifier, options)) = &options
            && matches!(rule.operator, Operator::Eq | Operator::Ne | Operator::In)
        {
            let values: Vec<(String, &Value)> = match &rule.value {
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(j, v)| (format!("{}.{j}", path("value")), v))
                    .collect(),
                value => vec![(path("value"), value)],
            };
            for (field, value) in values {
                let value = value.as_str().unwrap_or_default();
                if !option_exists(options, value) {
                    errors.add(
                        &field,
                        UserErrorCode::Invalid,
                        format!("{value:?} is not an option of {identifier}"),
                    );
                }
            }
        }
        rule.value = rules::normalized_value(&rule);
        stored.push(rule);
    }
    Ok(stored)
}

async fn name_taken<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    key: &str,
    except: Option<Uuid>,
) -> AppResult<bool> {
    let mut select =
        tenancy::in_org::<group::Entity>(org_id).filter(group::Column::NameKey.eq(key));
    if let Some(id) = except {
        select = select.filter(group::Column::Id.ne(id));
    }
    Ok(select.count(conn).await? > 0)
}

fn taken(name: &str) -> AppError {
    AppError::invalid(
        "name",
        UserErrorCode::Taken,
        format!("a contact group named {name:?} exists"),
    )
}

/// A unique-name race lost to a concurrent writer is the same user error as a name found taken.
fn saved<T>(result: Result<T, DbErr>, name: &str) -> AppResult<T> {
    match result {
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(taken(name))
        }
        other => Ok(other?),
    }
}

/// Creates a group (TEAM_LEAD).
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    input: NewGroup,
) -> AppResult<group::Model> {
    principal.require(Permission::ManageRouting)?;
    let mut errors = Errors::default();
    let name = errors.required_text("name", &input.name, 200);
    let description = errors.optional_text("description", input.description.as_deref(), 2000);
    let txn = db::begin_write(db).await?;
    let rules = check_rules(&txn, principal, &input.rules, &mut errors).await?;
    errors.finish()?;
    let key = name.to_lowercase();
    if name_taken(&txn, principal.org_id, &key, None).await? {
        return Err(taken(&name));
    }
    let now = Utc::now();
    let model = group::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(principal.org_id),
        name: Set(name.clone()),
        name_key: Set(key),
        description: Set(description),
        rules: Set(json!(rules)),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let model = saved(model.insert(&txn).await, &name)?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "CONTACT_GROUP_CREATED",
        Subject::new("ContactGroup", model.id),
        json!({ "name": model.name, "rules": model.rules }),
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

async fn find<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    id: Uuid,
    field: &str,
) -> AppResult<group::Model> {
    tenancy::by_id::<group::Entity>(org_id, id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid(field, UserErrorCode::NotFound, "no such contact group"))
}

/// Renames a group, changes its description or replaces its rules (TEAM_LEAD).
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    id: Uuid,
    patch: GroupPatch,
) -> AppResult<group::Model> {
    principal.require(Permission::ManageRouting)?;
    let mut errors = Errors::default();
    let name = patch
        .name
        .as_deref()
        .map(|n| errors.required_text("name", n, 200));
    let description = patch
        .description
        .as_ref()
        .map(|d| errors.optional_text("description", d.as_deref(), 2000));
    let txn = db::begin_write(db).await?;
    let current = find(&txn, principal.org_id, id, "id").await?;
    let rules = match &patch.rules {
        Some(rules) => Some(check_rules(&txn, principal, rules, &mut errors).await?),
        None => None,
    };
    errors.finish()?;
    let mut changed = Vec::new();
    let current_name = current.name.clone();
    let mut model = current.into_active_model();
    if let Some(name) = &name {
        let key = name.to_lowercase();
        if name_taken(&txn, principal.org_id, &key, Some(id)).await? {
            return Err(taken(name));
        }
        changed.push("name");
        model.name = Set(name.clone());
        model.name_key = Set(key);
    }
    if let Some(description) = description {
        changed.push("description");
        model.description = Set(description);
    }
    if let Some(rules) = &rules {
        changed.push("rules");
        model.rules = Set(json!(rules));
    }
    model.updated_at = Set(Utc::now());
    let updated = saved(
        model.update(&txn).await,
        name.as_deref().unwrap_or(&current_name),
    )?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "CONTACT_GROUP_UPDATED",
        Subject::new("ContactGroup", id),
        json!({ "changed": changed }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Deletes a group and its static memberships (TEAM_LEAD); the contacts stay.
pub async fn delete(db: &DatabaseConnection, principal: &Principal, id: Uuid) -> AppResult<Uuid> {
    principal.require(Permission::ManageRouting)?;
    let txn = db::begin_write(db).await?;
    let model = find(&txn, principal.org_id, id, "id").await?;
    member::Entity::delete_many()
        .filter(member::Column::GroupId.eq(id))
        .exec(&txn)
        .await?;
    group::Entity::delete_by_id(id).exec(&txn).await?;
    events::record(
        &txn,
        principal.org_id,
        Some(principal.user_id()),
        "CONTACT_GROUP_DELETED",
        Subject::new("ContactGroup", id),
        json!({ "name": model.name }),
    )
    .await?;
    txn.commit().await?;
    Ok(id)
}

/// The contacts with these ids, checked: each must exist in the organization (`NOT_FOUND` at
/// `contactIds.<i>`) and, when adding, not be anonymized (`INVALID_STATE`).
async fn check_contacts<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    ids: &[Uuid],
    adding: bool,
) -> AppResult<()> {
    let found: HashMap<Uuid, contact::Model> =
        tenancy::by_ids::<contact::Entity>(org_id, ids.iter().copied())
            .all(conn)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
    let mut errors = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let path = format!("contactIds.{i}");
        match found.get(id) {
            None => errors.push(FieldError::new(
                &path,
                UserErrorCode::NotFound,
                "no such contact",
            )),
            Some(c) if adding && c.anonymized_at.is_some() => errors.push(FieldError::new(
                &path,
                UserErrorCode::InvalidState,
                "the contact is anonymized",
            )),
            Some(_) => {}
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errors))
    }
}

/// Adds contacts to a group's static members (AGENT, like tagging); contacts already static
/// members stay as they are. At most [`MAX_MEMBERS_PER_CALL`] ids.
pub async fn add_members(
    db: &DatabaseConnection,
    principal: &Principal,
    group_id: Uuid,
    contact_ids: &[Uuid],
) -> AppResult<group::Model> {
    principal.require(Permission::WorkContacts)?;
    if contact_ids.len() > MAX_MEMBERS_PER_CALL {
        return Err(too_many());
    }
    let txn = db::begin_write(db).await?;
    let model = find(&txn, principal.org_id, group_id, "groupId").await?;
    check_contacts(&txn, principal.org_id, contact_ids, true).await?;
    let ids = tenancy::distinct(contact_ids);
    let existing: HashSet<Uuid> = member::Entity::find()
        .filter(member::Column::GroupId.eq(group_id))
        .filter(member::Column::ContactId.is_in(ids.iter().copied()))
        .all(&txn)
        .await?
        .into_iter()
        .map(|m| m.contact_id)
        .collect();
    let added: Vec<Uuid> = ids
        .into_iter()
        .filter(|id| !existing.contains(id))
        .collect();
    if !added.is_empty() {
        let now = Utc::now();
        member::Entity::insert_many(added.iter().map(|contact_id| member::ActiveModel {
            group_id: Set(group_id),
            contact_id: Set(*contact_id),
            org_id: Set(principal.org_id),
            added_at: Set(now),
        }))
        .exec(&txn)
        .await?;
        events::record(
            &txn,
            principal.org_id,
            Some(principal.user_id()),
            "CONTACT_GROUP_MEMBERS_ADDED",
            Subject::new("ContactGroup", group_id),
            json!({ "contactIds": added }),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(model)
}

/// Removes contacts from a group's static members (AGENT); contacts that are not static members
/// are ignored, and contacts matching the group's rules stay members through the rules. At most
/// [`MAX_MEMBERS_PER_CALL`] ids.
pub async fn remove_members(
    db: &DatabaseConnection,
    principal: &Principal,
    group_id: Uuid,
    contact_ids: &[Uuid],
) -> AppResult<group::Model> {
    principal.require(Permission::WorkContacts)?;
    if contact_ids.len() > MAX_MEMBERS_PER_CALL {
        return Err(too_many());
    }
    let txn = db::begin_write(db).await?;
    let model = find(&txn, principal.org_id, group_id, "groupId").await?;
    check_contacts(&txn, principal.org_id, contact_ids, false).await?;
    let ids = tenancy::distinct(contact_ids);
    let present: HashSet<Uuid> = member::Entity::find()
        .filter(member::Column::GroupId.eq(group_id))
        .filter(member::Column::ContactId.is_in(ids.iter().copied()))
        .all(&txn)
        .await?
        .into_iter()
        .map(|m| m.contact_id)
        .collect();
    let removed: Vec<Uuid> = ids.into_iter().filter(|id| present.contains(id)).collect();
    if !removed.is_empty() {
        member::Entity::delete_many()
            .filter(member::Column::GroupId.eq(group_id))
            .filter(member::Column::ContactId.is_in(removed.iter().copied()))
            .exec(&txn)
            .await?;
        events::record(
            &txn,
            principal.org_id,
            Some(principal.user_id()),
            "CONTACT_GROUP_MEMBERS_REMOVED",
            Subject::new("ContactGroup", group_id),
            json!({ "contactIds": removed }),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(model)
}

/// The user error for too many ids in one membership change.
pub fn too_many() -> AppError {
    AppError::invalid(
        "contactIds",
        UserErrorCode::TooLong,
        format!("at most {MAX_MEMBERS_PER_CALL} contacts per call"),
    )
}

/// One page of groups, by name.
pub async fn list(
    db: &DatabaseConnection,
    principal: &Principal,
    search: Option<&str>,
    args: &PageArgs,
) -> AppResult<(Page<group::Model>, TotalCount)> {
    principal.require(Permission::WorkContacts)?;
    let mut select = tenancy::in_org::<group::Entity>(principal.org_id);
    if let Some(search) = search.map(str::trim).filter(|s| !s.is_empty()) {
        select = select.filter(
            Expr::expr(Func::lower(Expr::col(group::Column::Name))).like(like_pattern(search)),
        );
    }
    let sort = Sort {
        name: "NAME",
        column: group::Column::NameKey,
        direction: SortDirection::Asc,
        value: |m: &group::Model| SortValue::Text(m.name_key.clone()),
    };
    let total = TotalCount::of(db, select.clone());
    let page = paginate(db, select, "contactGroups", &sort, args).await?;
    Ok((page, total))
}

/// Static members of `group`: a condition on `contacts`, as a correlated `EXISTS` in which each
/// contact row probes the membership key. (An `IN (SELECT …)` list is built whole for every
/// statement: a 100,000-member group read a batch at a time cost 100,000 rows per batch.)
fn static_members(group_id: Uuid) -> Expr {
    Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(member::Entity)
            .and_where(member::Column::GroupId.eq(group_id))
            .and_where(
                Expr::col((member::Entity, member::Column::ContactId))
                    .equals((contact::Entity, contact::Column::Id)),
            )
            .to_owned(),
    )
}

/// The members of a group as a condition on a row of `contacts` (unaliased): not anonymized, and
/// a static member or (when the group has rules) matching all of them.
pub fn membership(backend: DbBackend, model: &group::Model) -> AppResult<Condition> {
    let compiled = compiled_rules(model)?;
    let mut either = Condition::any().add(static_members(model.id));
    if let Some(rules) = rules::rules_condition(backend, &compiled) {
        either = either.add(rules);
    }
    Ok(Condition::all()
        .add(contact::Column::AnonymizedAt.is_null())
        .add(either))
}

/// The members of the organization's group `group_id` as a condition on `contacts`; a condition
/// no contact meets when there is no such group (one statement).
pub async fn membership_by_id(
    db: &DatabaseConnection,
    org_id: Uuid,
    group_id: Uuid,
) -> AppResult<Condition> {
    match tenancy::by_id::<group::Entity>(org_id, group_id)
        .one(db)
        .await?
    {
        Some(model) => membership(db.get_database_backend(), &model),
        None => Ok(Condition::all().add(Expr::val(1).eq(0))),
    }
}

/// Member counts of groups, computed by the database: one `UNION ALL` of per-group `COUNT(*)`
/// per batch of up to 100 groups.
pub async fn contact_counts(
    db: &DatabaseConnection,
    groups: &[group::Model],
) -> AppResult<HashMap<Uuid, u64>> {
    let backend = db.get_database_backend();
    let mut counts = HashMap::new();
    for batch in batches(groups) {
        let mut selects = Vec::with_capacity(batch.len());
        for (i, model) in batch.iter().enumerate() {
            selects.push(
                Query::select()
                    .expr_as(Expr::val(i as i64), Alias::new("i"))
                    .expr_as(Func::count(Expr::col(Asterisk)), Alias::new("n"))
                    .from(contact::Entity)
                    .and_where(contact::Column::OrgId.eq(model.org_id))
                    .cond_where(membership(backend, model)?)
                    .to_owned(),
            );
        }
        let Some(query) = union_all(selects) else {
            continue;
        };
        for row in db.query_all(&query).await? {
            let i: i64 = row.try_get("", "i")?;
            let n: i64 = row.try_get("", "n")?;
            if let Some(model) = usize::try_from(i).ok().and_then(|i| batch.get(i)) {
                counts.insert(model.id, u64::try_from(n).unwrap_or_default());
            }
        }
    }
    Ok(counts)
}

fn union_all(selects: Vec<SelectStatement>) -> Option<SelectStatement> {
    let mut selects = selects.into_iter();
    let mut first = selects.next()?;
    first.unions(selects.map(|s| (sea_orm::sea_query::UnionType::All, s)));
    Some(first)
}

/// Member counts of the organization's groups with these ids (batched loads).
pub async fn contact_counts_by_id(
    db: &DatabaseConnection,
    org_id: Uuid,
    group_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, u64>> {
    let groups = tenancy::by_ids::<group::Entity>(org_id, group_ids.iter().copied())
        .all(db)
        .await?;
    contact_counts(db, &groups).await
}

/// The groups each contact belongs to (statically or by rule), by name. Statements: one for the
/// organization's groups, then one joining the contacts with the groups per batch of up to 100
/// rule groups (static memberships ride along in the first). The count depends on how many
/// rule groups the organization has, never on how many contacts are asked about: a page of 100
/// contacts costs what a page of 5 does.
pub async fn groups_of_contacts(
    db: &DatabaseConnection,
    org_id: Uuid,
    contact_ids: &[Uuid],
) -> AppResult<HashMap<Uuid, Vec<group::Model>>> {
    let mut result: HashMap<Uuid, Vec<group::Model>> =
        contact_ids.iter().map(|id| (*id, Vec::new())).collect();
    if contact_ids.is_empty() {
        return Ok(result);
    }
    let groups = tenancy::in_org::<group::Entity>(org_id)
        .order_by_asc(group::Column::NameKey)
        .all(db)
        .await?;
    if groups.is_empty() {
        return Ok(result);
    }
    let backend = db.get_database_backend();
    let rule_groups: Vec<group::Model> = groups
        .iter()
        .filter(|g| g.rules.as_array().is_some_and(|r| !r.is_empty()))
        .cloned()
        .collect();
    let mut rule_batches = batches(&rule_groups);
    if rule_batches.is_empty() {
        rule_batches.push(&[]);
    }
    let group_id = || Expr::col((group::Entity, group::Column::Id));
    let mut pairs: HashSet<(Uuid, Uuid)> = HashSet::new();
    for (n, batch) in rule_batches.into_iter().enumerate() {
        let mut any = Condition::any();
        if n == 0 {
            any = any.add(Expr::exists(
                Query::select()
                    .expr(Expr::val(1))
                    .from(member::Entity)
                    .and_where(
                        Expr::col((member::Entity, member::Column::GroupId))
                            .equals((group::Entity, group::Column::Id)),
                    )
                    .and_where(
                        Expr::col((member::Entity, member::Column::ContactId))
                            .equals((contact::Entity, contact::Column::Id)),
                    )
                    .to_owned(),
            ));
        }
        for model in batch {
            if let Some(rules) = rules::rules_condition(backend, &compiled_rules(model)?) {
                any = any.add(Condition::all().add(group_id().eq(model.id)).add(rules));
            }
        }
        let query = Query::select()
            .expr_as(group_id(), Alias::new("group_id"))
            .expr_as(
                Expr::col((contact::Entity, contact::Column::Id)),
                Alias::new("contact_id"),
            )
            .from(contact::Entity)
            .inner_join(
                group::Entity,
                Expr::col((group::Entity, group::Column::OrgId))
                    .equals((contact::Entity, contact::Column::OrgId)),
            )
            .and_where(contact::Column::OrgId.eq(org_id))
            .and_where(contact::Column::Id.is_in(contact_ids.iter().copied()))
            .and_where(contact::Column::AnonymizedAt.is_null())
            .cond_where(any)
            .to_owned();
        for row in db.query_all(&query).await? {
            let group_id: Uuid = row.try_get("", "group_id")?;
            let contact_id: Uuid = row.try_get("", "contact_id")?;
            pairs.insert((contact_id, group_id));
        }
    }
    for (contact_id, groups_of_one) in result.iter_mut() {
        groups_of_one.extend(
            groups
                .iter()
                .filter(|g| pairs.contains(&(*contact_id, g.id)))
                .cloned(),
        );
    }
    Ok(result)
}
