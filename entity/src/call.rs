//! A voice call leg: inbound, click-to-call, callback or campaign dial.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "calls")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub channel_id: Uuid,
    /// The `VOICE` conversation it belongs to (campaign dials have none).
    pub conversation_id: Option<Uuid>,
    /// `INBOUND CLICK_TO_CALL CALLBACK CAMPAIGN`.
    pub kind: String,
    /// `INBOUND OUTBOUND`.
    pub direction: String,
    pub from_number: String,
    pub to_number: String,
    pub contact_id: Option<Uuid>,
    /// The agent on the call (or rung).
    pub user_id: Option<Uuid>,
    pub queue_id: Option<Uuid>,
    /// `QUEUED RINGING IN_PROGRESS COMPLETED BUSY NO_ANSWER FAILED CANCELED VOICEMAIL`.
    pub status: String,
    pub on_hold: bool,
    pub hold_started_at: Option<DateTimeUtc>,
    pub hold_seconds: i32,
    pub created_at: DateTimeUtc,
    pub ringing_at: Option<DateTimeUtc>,
    pub answered_at: Option<DateTimeUtc>,
    pub ended_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
    pub wait_seconds: Option<i32>,
    pub talk_seconds: Option<i32>,
    pub end_reason: Option<String>,
    /// Keypad digits the callee pressed.
    pub keypad: Option<String>,
    pub recording_url: Option<String>,
    pub recording_seconds: Option<i32>,
    pub transcription: Option<String>,
    /// `PENDING COMPLETED FAILED`.
    pub transcription_status: Option<String>,
    /// Price estimate in millionths of the channel's currency.
    pub price_micros: Option<i64>,
    pub provider_call_id: Option<String>,
    pub campaign_id: Option<Uuid>,
    pub campaign_receiver_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    /// The agent's number or endpoint a click-to-call or callback rings first.
    pub agent_to: Option<String>,
    /// When the agent answered their leg (the contact is dialled from then on).
    pub agent_answered_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
