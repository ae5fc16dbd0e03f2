use sea_orm::entity::prelude::*;

/// A message in a conversation (core columns; the inbox extends them).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub conversation_id: Uuid,
    /// The contact who wrote it, for messages from contacts.
    pub author_contact_id: Option<Uuid>,
    /// The user who wrote it, for messages from staff.
    pub author_user_id: Option<Uuid>,
    /// `INBOUND` or `OUTBOUND`.
    pub direction: String,
    pub text_body: Option<String>,
    pub html_body: Option<String>,
    pub anonymized_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
