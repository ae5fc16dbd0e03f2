use sea_orm::entity::prelude::*;

/// A group of contacts: static members plus optional rules (see `src/contact_groups`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_groups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    /// Lower-cased name; unique per organization.
    pub name_key: String,
    pub description: Option<String>,
    /// JSON array of rules `{field, operator, value, attributeType?}`, matched all-of; empty for a
    /// purely static group.
    pub rules: Json,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
