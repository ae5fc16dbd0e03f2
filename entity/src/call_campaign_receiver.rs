//! One phone number of a call campaign and its outcome.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "call_campaign_receivers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub campaign_id: Uuid,
    /// The contact it came from (or the contact with this number, for a raw number).
    pub contact_id: Option<Uuid>,
    /// E.164.
    pub phone_number: String,
    /// `PENDING | DIALING | FINISHED | CANCELLED`.
    pub status: String,
    pub answered: bool,
    /// `ACCEPT | DECLINE | NO_REPLY` once finished.
    pub reply: Option<String>,
    /// Keypad digits pressed on the answered call.
    pub keypad: Option<String>,
    /// Talk seconds of the answered call.
    pub duration_seconds: i32,
    /// Calls placed to it.
    pub dial_count: i32,
    pub latest_call_id: Option<Uuid>,
    pub latest_call_at: Option<DateTimeUtc>,
    /// When it is due to be dialled (pending receivers).
    pub next_dial_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
