use sea_orm::entity::prelude::*;

/// A message in a conversation.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub conversation_id: Uuid,
    /// `USER`, `CONTACT` or `SYSTEM`.
    pub author_kind: String,
    /// The contact who wrote it, for messages from contacts.
    pub author_contact_id: Option<Uuid>,
    /// The user who wrote it, for messages from staff.
    pub author_user_id: Option<Uuid>,
    /// `INBOUND` or `OUTBOUND`.
    pub direction: String,
    pub text_body: Option<String>,
    pub html_body: Option<String>,
    pub email_subject: Option<String>,
    pub from_address: Option<String>,
    /// JSON array of strings.
    pub to_addresses: Option<Json>,
    pub cc_addresses: Option<Json>,
    pub bcc_addresses: Option<Json>,
    /// Client id making sends idempotent per organization.
    pub external_id: Option<String>,
    /// `QUEUED`, `SENT`, `DELIVERED`, `READ` or `FAILED` (inbound messages: `DELIVERED`).
    pub delivery_status: String,
    pub delivery_reason: Option<String>,
    pub scheduled_at: Option<DateTimeUtc>,
    pub edited_at: Option<DateTimeUtc>,
    pub redacted_at: Option<DateTimeUtc>,
    pub removed_at: Option<DateTimeUtc>,
    pub anonymized_at: Option<DateTimeUtc>,
    /// The channel whose provider gave `provider_message_id` (unique together).
    pub provider_channel_id: Option<Uuid>,
    /// The provider's id of the message (inbound: given on ingest; outbound: when sent).
    pub provider_message_id: Option<String>,
    /// Email `Message-ID` header, with its angle brackets.
    pub message_id_header: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
