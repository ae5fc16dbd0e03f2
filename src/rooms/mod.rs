//! Rooms: voice conferences and video rooms. A room is opened at once or scheduled; users and
//! contacts are invited, join (getting the provider's signed, expiring credentials), leave, are
//! muted and unmuted; it completes when it stayed empty for a grace period or at its planned end,
//! or is terminated; a recorded room gets a recording that is then processed. Live changes come
//! through the `roomChanged` subscription.

pub mod credentials;
pub mod graphql;
pub mod service;

pub use service::SUBJECT;

/// Event types of rooms (subject `Room`).
pub mod event_types {
    /// Created (scheduled or open).
    pub const CREATED: &str = "ROOM_CREATED";
    /// A scheduled room opened (at its start, or when someone joined early).
    pub const OPENED: &str = "ROOM_OPENED";
    /// A user or contact was invited.
    pub const PARTICIPANT_INVITED: &str = "ROOM_PARTICIPANT_INVITED";
    /// A participant connected.
    pub const PARTICIPANT_JOINED: &str = "ROOM_PARTICIPANT_JOINED";
    /// A participant disconnected.
    pub const PARTICIPANT_LEFT: &str = "ROOM_PARTICIPANT_LEFT";
    /// A participant was muted or unmuted.
    pub const AUDIO_CHANGED: &str = "ROOM_AUDIO_CHANGED";
    /// Completed: empty past the grace period, or at its end.
    pub const COMPLETED: &str = "ROOM_COMPLETED";
    /// Terminated by a user.
    pub const TERMINATED: &str = "ROOM_TERMINATED";
    /// The provider reported a failure.
    pub const FAILED: &str = "ROOM_FAILED";
    /// A recording finished processing.
    pub const RECORDING_READY: &str = "ROOM_RECORDING_READY";
    /// The provider could not process a recording (payload `recordingId`, `reason`).
    pub const RECORDING_FAILED: &str = "ROOM_RECORDING_FAILED";
}
