//! A call campaign: recorded or spoken audio played to a list of phone numbers (a voice
//! broadcast, an RSVP call collecting accepts, or a keypad survey), dialled inside an active
//! window with redials, until every receiver is done, enough accepts came in or the end time.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "call_campaigns")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    /// `BROADCAST | RSVP | SURVEY`.
    pub kind: String,
    /// The voice channel it dials from (cleared when the channel is deleted).
    pub channel_id: Option<Uuid>,
    /// The uploaded audio file played, or `None` for text-to-speech.
    pub audio_attachment_id: Option<Uuid>,
    /// Text spoken by text-to-speech.
    pub tts_text: Option<String>,
    /// Locale of the text-to-speech voice.
    pub tts_locale: Option<String>,
    /// Where the receivers came from: `{"contactIds": [...], "groupIds": [...], "phoneNumbers": [...]}`.
    pub sources: Json,
    /// Not before this time (`None`: as soon as created).
    pub start_time: Option<DateTimeUtc>,
    /// No calls after this time; the campaign completes then.
    pub end_time: DateTimeUtc,
    /// Start of the daily window, seconds since local midnight (org timezone).
    pub active_from: i32,
    /// End of the daily window (excluded), seconds since local midnight, up to 86400.
    pub active_to: i32,
    /// Weekdays it dials on: JSON array of `MONDAY` … `SUNDAY`.
    pub active_weekdays: Json,
    /// Redials of an unanswered receiver after the first call.
    pub max_redials: i32,
    /// Seconds between an unanswered call and the redial.
    pub redial_interval_seconds: i32,
    /// Keypad buttons: JSON array of `{"button": "5", "action": "ACCEPT"}`.
    pub action_buttons: Json,
    /// Stop once this many receivers accepted.
    pub accepts_wanted: Option<i32>,
    /// Client metadata (JSON object), passed as is in receiver events.
    pub metadata: Json,
    /// `WAITING_TO_ACTIVE | ACTIVE | HALTED | COMPLETE`.
    pub state: String,
    /// The dialer job's token while one is queued: an older job that finds another one stops.
    pub job_token: Option<Uuid>,
    /// When it first became active.
    pub started_at: Option<DateTimeUtc>,
    pub halted_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    /// `ALL_DONE | ACCEPTS_WANTED_REACHED | END_TIME_PASSED`.
    pub completion_reason: Option<String>,
    /// Receivers (distinct phone numbers).
    pub receivers: i64,
    /// Receivers done: answered, or not answered after every redial.
    pub finished: i64,
    /// Receivers never finished because the campaign completed first.
    pub cancelled: i64,
    /// Calls placed.
    pub dialed: i64,
    /// Calls answered.
    pub answered: i64,
    /// Talk seconds of answered calls.
    pub total_duration: i64,
    pub accepts: i64,
    pub declines: i64,
    /// Receivers who answered and pressed no action button.
    pub no_replies: i64,
    /// Receivers finished without answering.
    pub not_answered: i64,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
