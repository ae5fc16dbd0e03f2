use sea_orm::entity::prelude::*;

/// A tracked request to erase personal data of a contact, conversation or message.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "anonymization_requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    /// `CONTACT`, `CONVERSATION` or `MESSAGE`.
    pub target_type: String,
    pub target_id: Uuid,
    /// `PENDING` or `COMPLETED`.
    pub status: String,
    /// Whether open conversations were closed to let it proceed.
    pub force: bool,
    /// The user who asked; `None` for the system.
    pub requested_by: Option<Uuid>,
    pub requested_at: DateTimeUtc,
    pub processed_at: Option<DateTimeUtc>,
    /// Conversations closed because of `force`.
    pub closed_conversations: i32,
    /// Conversations whose personal data was erased.
    pub anonymized_conversations: i32,
    /// Messages whose bodies were erased.
    pub erased_messages: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
