use sea_orm::entity::prelude::*;

/// A custom attribute of contacts or conversations (Dixa custom attributes).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "custom_attribute_definitions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    /// `CONTACT` or `CONVERSATION`.
    pub entity: String,
    /// Machine name, unique per organization and entity.
    pub identifier: String,
    pub label: String,
    pub description: Option<String>,
    /// `TEXT`, `SELECT`, `NUMBER`, `BOOLEAN` or `DATE`.
    pub value_type: String,
    /// JSON array of select options: `{id, value, label, deactivated, options}` (nested).
    pub options: Json,
    pub required: bool,
    pub archived: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
