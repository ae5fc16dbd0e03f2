//! The `contacts` scenario: a page of 100 contacts with their tags, contact groups (one static,
//! two rule-based) and custom attribute values, in an organization holding `--contacts` contacts
//! (100,000 by default). Seeding writes rows
//! directly in batches (the API's per-item validation would take minutes for that many); tags,
//! attribute definitions and groups go through the services.

use std::collections::HashMap;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};
use serde::Serialize;
use serde_json::{Value, json};
use switchboard::auth::Principal;
use switchboard::contact_groups::rules::{Operator, Rule};
use switchboard::contact_groups::service as groups;
use switchboard::contacts::service::{self as contacts, ContactFilter, ContactOrderField};
use switchboard::custom_attributes::service::{self as attributes, AttributeEntity, AttributeType};
use switchboard::graphql::relay::{PageArgs, SortDirection, encode_id};
use uuid::Uuid;

use crate::scenario::{authenticate, json_response};

/// The GraphQL request of the scenario.
pub const QUERY: &str = "{ contacts(first: 100) { nodes { id displayName email tags { name } contactGroups { name } customAttributes { identifier value } } } }";

/// Tags in the organization; each contact has one or two of them.
const TAGS: usize = 10;

/// Rows per INSERT statement (SQLite allows 32,766 bound values).
const BATCH: usize = 500;

fn app_error(error: switchboard::error::AppError) -> anyhow::Error {
    anyhow::anyhow!("{}: {:?}", error.code(), error)
}

/// Seeds `count` contacts: names `Contact 000000…`, an email each, tags `(i % 10)` and
/// `(i * 7 % 10)`, a NUMBER `score` (`i % 100`) on every contact and a TEXT `plan` on every other
/// one; a static group "Every tenth" (every tenth contact) and rule groups "High score"
/// (`attributes.score GTE 90`) and "Enterprise" (`attributes.plan EQ enterprise`).
pub async fn seed(
    db: &DatabaseConnection,
    principal: &Principal,
    count: usize,
) -> anyhow::Result<()> {
    let org_id = principal.org_id;
    let mut tags = Vec::new();
    for i in 0..TAGS {
        let tag = switchboard::tags::service::create(db, principal, &format!("Tag {i}"), None)
            .await
            .map_err(app_error)?;
        tags.push(tag.id);
    }
    let mut definitions = HashMap::new();
    for (identifier, value_type) in [
        ("plan", AttributeType::Text),
        ("score", AttributeType::Number),
    ] {
        let definition = attributes::create(
            db,
            principal,
            attributes::NewDefinition {
                entity: AttributeEntity::Contact,
                identifier: identifier.into(),
                label: identifier.into(),
                description: None,
                value_type,
                options: Vec::new(),
                required: false,
            },
        )
        .await
        .map_err(app_error)?;
        definitions.insert(identifier, definition.id);
    }
    let mut static_group = None;
    for (name, rules) in [
        ("Every tenth", vec![]),
        (
            "High score",
            vec![rule("attributes.score", Operator::Gte, json!(90))],
        ),
        (
            "Enterprise",
            vec![rule("attributes.plan", Operator::Eq, json!("enterprise"))],
        ),
    ] {
        let group = groups::create(
            db,
            principal,
            groups::NewGroup {
                name: name.into(),
                description: None,
                rules,
            },
        )
        .await
        .map_err(app_error)?;
        static_group.get_or_insert(group.id);
    }
    let static_group = static_group.context("no static group")?;
    let now = Utc::now();
    let txn = switchboard::db::begin_write(db).await.map_err(app_error)?;
    for start in (0..count).step_by(BATCH) {
        let end = (start + BATCH).min(count);
        let mut people = Vec::with_capacity(end - start);
        let mut tagged = Vec::new();
        let mut values = Vec::new();
        let mut members = Vec::new();
        for i in start..end {
            let id = Uuid::now_v7();
            let name = format!("Contact {i:06}");
            let mut model = entity::contact::ActiveModel {
                id: Set(id),
                org_id: Set(org_id),
                display_name: Set(Some(name.clone())),
                first_name: Set(None),
                last_name: Set(None),
                middle_name: Set(None),
                email: Set(Some(format!("c{i}@bench.example.com"))),
                phone: Set(None),
                additional_emails: Set(json!([])),
                additional_phones: Set(json!([])),
                avatar_url: Set(None),
                external_id: Set(Some(format!("ext-{i}"))),
                company: Set(None),
                address: Set(json!({})),
                note: Set(None),
                birth_date: Set(None),
                consent: Set(json!({})),
                sort_name: Set(name.to_lowercase()),
                anonymized_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            };
            contacts::set_last_contacted(&mut model, None);
            people.push(model);
            if i % 10 == 0 {
                members.push(entity::contact_group_member::ActiveModel {
                    group_id: Set(static_group),
                    contact_id: Set(id),
                    org_id: Set(org_id),
                    added_at: Set(now),
                });
            }
            let mut ids = vec![tags[i % TAGS]];
            if (i * 7) % TAGS != i % TAGS {
                ids.push(tags[(i * 7) % TAGS]);
            }
            for tag_id in ids {
                tagged.push(entity::contact_tag::ActiveModel {
                    contact_id: Set(id),
                    tag_id: Set(tag_id),
                    org_id: Set(org_id),
                    created_at: Set(now),
                });
            }
            let mut value =
                |identifier: &'static str, text: Option<String>, number: Option<f64>| {
                    values.push(entity::contact_attribute_value::ActiveModel {
                        contact_id: Set(id),
                        definition_id: Set(definitions[identifier]),
                        org_id: Set(org_id),
                        identifier: Set(identifier.into()),
                        text_value: Set(text),
                        number_value: Set(number),
                        bool_value: Set(None),
                        date_value: Set(None),
                        updated_at: Set(now),
                    })
                };
            value("score", None, Some((i % 100) as f64));
            if i % 2 == 0 {
                value(
                    "plan",
                    Some(["free", "team", "enterprise"][i % 3].into()),
                    None,
                );
            }
        }
        entity::contact::Entity::insert_many(people)
            .exec(&txn)
            .await?;
        for chunk in tagged.chunks(BATCH) {
            entity::contact_tag::Entity::insert_many(chunk.to_vec())
                .exec(&txn)
                .await?;
        }
        if !members.is_empty() {
            entity::contact_group_member::Entity::insert_many(members)
                .exec(&txn)
                .await?;
        }
        for chunk in values.chunks(BATCH) {
            entity::contact_attribute_value::Entity::insert_many(chunk.to_vec())
                .exec(&txn)
                .await?;
        }
    }
    txn.commit().await.context("cannot commit the contacts")?;
    Ok(())
}

#[derive(Serialize)]
struct Data {
    data: ContactsData,
}

#[derive(Serialize)]
struct ContactsData {
    contacts: Nodes,
}

#[derive(Serialize)]
struct Nodes {
    nodes: Vec<ContactOut>,
}

/// Fields in the order of the GraphQL selection.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContactOut {
    id: String,
    display_name: Option<String>,
    email: Option<String>,
    tags: Vec<NameOut>,
    contact_groups: Vec<NameOut>,
    custom_attributes: Vec<AttributeOut>,
}

/// A tag's or group's name.
#[derive(Serialize)]
struct NameOut {
    name: String,
}

#[derive(Serialize)]
struct AttributeOut {
    identifier: String,
    value: Value,
}

/// `POST /contacts`: what [`QUERY`] does, without GraphQL: the same page, then one query each
/// for the page's tag links, their tags and the attribute values, and the groups' statements.
pub async fn handler(
    State(db): State<DatabaseConnection>,
    headers: HeaderMap,
    _body: Bytes,
) -> Response {
    let principal = match authenticate(&db, &headers).await {
        Ok(principal) => principal,
        Err(response) => return response,
    };
    match page(&db, &principal).await {
        Ok(body) => match serde_json::to_vec(&body) {
            Ok(bytes) => json_response(bytes),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn page(
    db: &DatabaseConnection,
    principal: &Principal,
) -> Result<Data, switchboard::error::AppError> {
    let args = PageArgs {
        first: Some(100),
        ..Default::default()
    };
    let (page, _) = contacts::list(
        db,
        principal,
        ContactFilter::default(),
        (ContactOrderField::Name, SortDirection::Asc),
        &args,
    )
    .await?;
    let ids: Vec<Uuid> = page.items.iter().map(|(_, c)| c.id).collect();
    let mut tag_ids = contacts::tag_ids(db, principal.org_id, &ids).await?;
    let tags: HashMap<Uuid, String> = switchboard::tenancy::by_ids::<entity::tag::Entity>(
        principal.org_id,
        tag_ids.values().flatten().copied(),
    )
    .all(db)
    .await?
    .into_iter()
    .map(|t| (t.id, t.name))
    .collect();
    let mut values = contacts::attribute_values(db, principal.org_id, &ids).await?;
    let mut groups_of = groups::groups_of_contacts(db, principal.org_id, &ids).await?;
    let nodes = page
        .items
        .into_iter()
        .map(|(_, c)| ContactOut {
            id: encode_id("Contact", c.id).0,
            tags: tag_ids
                .remove(&c.id)
                .unwrap_or_default()
                .iter()
                .filter_map(|t| tags.get(t).map(|name| NameOut { name: name.clone() }))
                .collect(),
            contact_groups: groups_of
                .remove(&c.id)
                .unwrap_or_default()
                .into_iter()
                .map(|g| NameOut { name: g.name })
                .collect(),
            custom_attributes: values
                .remove(&c.id)
                .unwrap_or_default()
                .iter()
                .map(|v| AttributeOut {
                    identifier: v.identifier.clone(),
                    value: contacts::stored_value(v),
                })
                .collect(),
            display_name: c.display_name,
            email: c.email,
        })
        .collect();
    Ok(Data {
        data: ContactsData {
            contacts: Nodes { nodes },
        },
    })
}

fn rule(field: &str, operator: Operator, value: Value) -> Rule {
    Rule {
        field: field.into(),
        operator,
        value,
        attribute_type: None,
    }
}
