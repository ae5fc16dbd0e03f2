//! Tenant isolation in the data path. Every read of an organization-owned table starts from
//! [`in_org`], so no query can name another organization's row, whatever id it was given.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Select};

use crate::error::{AppError, AppResult, FieldError, UserErrorCode};
use uuid::Uuid;

/// An entity whose rows belong to one organization.
pub trait OrgScoped: EntityTrait {
    /// The column holding the owning organization's id.
    fn org_column() -> Self::Column;
    /// The primary key column.
    fn id_column() -> Self::Column;
    /// The id of a row.
    fn model_id(model: &Self::Model) -> Uuid;
}

/// All rows of `E` in organization `org_id`.
pub fn in_org<E: OrgScoped>(org_id: Uuid) -> Select<E> {
    E::find().filter(E::org_column().eq(org_id))
}

/// The row of `E` with id `id` if it is in organization `org_id`.
pub fn by_id<E: OrgScoped>(org_id: Uuid, id: Uuid) -> Select<E> {
    in_org::<E>(org_id).filter(E::id_column().eq(id))
}

/// Rows of `E` with the given ids that are in organization `org_id`.
pub fn by_ids<E: OrgScoped>(org_id: Uuid, ids: impl IntoIterator<Item = Uuid>) -> Select<E> {
    in_org::<E>(org_id).filter(E::id_column().is_in(ids))
}

/// Each id once, in first-occurrence order.
pub fn distinct(ids: &[Uuid]) -> Vec<Uuid> {
    let mut seen = std::collections::HashSet::new();
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

/// The rows of `E` with these ids in organization `org_id`, by id (one query). Every id that names
/// none gets `NOT_FOUND` at `field.<index>` with `message`; all of them are reported together.
pub async fn require_all<E, C>(
    conn: &C,
    org_id: Uuid,
    ids: &[Uuid],
    field: &str,
    message: &str,
) -> AppResult<HashMap<Uuid, E::Model>>
where
    E: OrgScoped,
    C: ConnectionTrait,
{
    let found: HashMap<Uuid, E::Model> = by_ids::<E>(org_id, ids.iter().copied())
        .all(conn)
        .await?
        .into_iter()
        .map(|m| (E::model_id(&m), m))
        .collect();
    let errors: Vec<FieldError> = ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !found.contains_key(id))
        .map(|(i, _)| FieldError::new(&format!("{field}.{i}"), UserErrorCode::NotFound, message))
        .collect();
    if errors.is_empty() {
        Ok(found)
    } else {
        Err(AppError::Validation(errors))
    }
}

macro_rules! org_scoped {
    ($($module:ident),*) => {$(
        impl OrgScoped for entity::$module::Entity {
            fn org_column() -> Self::Column {
                entity::$module::Column::OrgId
            }
            fn id_column() -> Self::Column {
                entity::$module::Column::Id
            }
            fn model_id(model: &Self::Model) -> Uuid {
                model.id
            }
        }
    )*};
}

org_scoped!(
    user,
    api_token,
    tag,
    team,
    queue,
    custom_attribute_definition,
    contact,
    contact_group,
    conversation,
    message,
    anonymization_request,
    channel,
    conversation_participant,
    message_reaction,
    message_status_event,
    attachment,
    note,
    conversation_offer,
    template,
    webhook_subscription,
    webhook_delivery,
    webhook_attempt,
    auto_responder,
    auto_responder_reply,
    broadcast,
    broadcast_recipient,
    room,
    room_participant,
    room_recording,
    call,
    call_campaign,
    call_campaign_receiver
);

impl OrgScoped for entity::organization::Entity {
    fn org_column() -> Self::Column {
        entity::organization::Column::Id
    }
    fn id_column() -> Self::Column {
        entity::organization::Column::Id
    }
    fn model_id(model: &Self::Model) -> Uuid {
        model.id
    }
}
