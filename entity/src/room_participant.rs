//! A user or a contact in a room: invited, connected or disconnected, muted or not.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "room_participants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub room_id: Uuid,
    /// The user, when the participant is staff (exactly one of user and contact).
    pub user_id: Option<Uuid>,
    /// The contact, when the participant is an end user.
    pub contact_id: Option<Uuid>,
    /// `INVITED | CONNECTED | DISCONNECTED`.
    pub status: String,
    /// `MUTED | UNMUTED`.
    pub audio: String,
    pub invited_by: Option<Uuid>,
    pub invited_at: Option<DateTimeUtc>,
    /// When they last connected.
    pub joined_at: Option<DateTimeUtc>,
    /// When they last disconnected.
    pub left_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
