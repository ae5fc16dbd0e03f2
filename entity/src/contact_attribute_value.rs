use sea_orm::entity::prelude::*;

/// A contact's value of a custom attribute, typed so rules can compare it in SQL.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_attribute_values")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub contact_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub definition_id: Uuid,
    pub org_id: Uuid,
    pub identifier: String,
    /// TEXT values, SELECT option values and DATE values (`YYYY-MM-DD`).
    pub text_value: Option<String>,
    pub number_value: Option<f64>,
    pub bool_value: Option<bool>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
