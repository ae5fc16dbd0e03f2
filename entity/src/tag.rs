use sea_orm::entity::prelude::*;

/// A label for conversations and contacts.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tags")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    /// Lower-cased name; unique per organization.
    pub name_key: String,
    /// `#rrggbb`, if set.
    pub color: Option<String>,
    /// `ACTIVE` or `INACTIVE`. Inactive tags stay where applied but cannot be newly applied.
    pub status: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
