//! Tenant isolation in the data path. Every read of an organization-owned table starts from
//! [`in_org`], so no query can name another organization's row, whatever id it was given.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Select};
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
    anonymization_request
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
