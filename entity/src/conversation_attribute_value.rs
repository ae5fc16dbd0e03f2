use sea_orm::entity::prelude::*;

/// A conversation's value of a custom attribute, typed like contacts' values.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "conversation_attribute_values")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub conversation_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub definition_id: Uuid,
    pub org_id: Uuid,
    pub identifier: String,
    /// TEXT values and SELECT option values.
    pub text_value: Option<String>,
    pub number_value: Option<f64>,
    pub bool_value: Option<bool>,
    pub date_value: Option<Date>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
