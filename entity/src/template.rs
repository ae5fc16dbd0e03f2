//! A message template: one variant (channel type and locale) of a named text with placeholders.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "templates")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    /// Lowercased name: variants of one template share it.
    pub name_key: String,
    /// The channel type it is for; `None` for any.
    pub channel_type: Option<String>,
    /// BCP 47 locale; `None` for the fallback.
    pub locale: Option<String>,
    /// `name_key|channel type or *|locale or *`, unique per organization.
    pub variant_key: String,
    pub subject: Option<String>,
    pub text: String,
    pub html: Option<String>,
    /// The placeholders' variables (JSON list of strings), in order of first use.
    pub variables: Json,
    pub archived_at: Option<DateTimeUtc>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
