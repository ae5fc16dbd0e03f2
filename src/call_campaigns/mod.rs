//! Call campaigns (DESIGN §2.4): a recorded file or text-to-speech played to receivers (contacts,
//! group members and raw numbers, one per phone number) — a voice broadcast, an RSVP call that
//! collects keypad accepts, or a keypad survey. A durable dialer job places the calls through the
//! voice channel's provider between the start and end times, inside the daily active window and
//! on the active weekdays (the organization's timezone), redials unanswered receivers, records
//! each receiver's outcome and completes when every receiver is done, enough accepts came in or
//! the end time passed.

pub mod dialer;
pub mod graphql;
pub mod service;

/// Subject kind of call campaign events.
pub const SUBJECT: &str = "CallCampaign";

/// Event types of call campaigns (subject [`SUBJECT`]).
pub mod event_types {
    /// Created (payload `name`, `kind`, `receivers`, `startTime`, `endTime`).
    pub const CREATED: &str = "CALL_CAMPAIGN_CREATED";
    /// Changed before it started (payload `changed`: the fields).
    pub const UPDATED: &str = "CALL_CAMPAIGN_UPDATED";
    /// Deleted (payload `name`).
    pub const DELETED: &str = "CALL_CAMPAIGN_DELETED";
    /// Its state moved, except to `COMPLETE` (payload `from`, `state`, `reason` when the dialer
    /// halted it, and the stats).
    pub const STATE_CHANGED: &str = "CALL_CAMPAIGN_STATE_CHANGED";
    /// It completed (payload `from`, `state` = `COMPLETE`, `reason`, and the stats).
    pub const COMPLETED: &str = "CALL_CAMPAIGN_COMPLETED";
    /// One receiver is done: answered, or not answered after its last redial (payload
    /// `campaignId`, `receiverId`, `contactId`, `phoneNumber`, `answered`, `reply`, `keypad`,
    /// `dialCount`, `durationSeconds`, `callId`, `metadata`).
    pub const RECEIVER_FINISHED: &str = "CALL_CAMPAIGN_RECEIVER_FINISHED";
}

stored_enum!(
    /// What a campaign is for.
    Kind {
        /// A message played to everyone (action buttons optional).
        Broadcast => "BROADCAST",
        /// An invitation: receivers accept or decline on the keypad, until enough accepted.
        Rsvp => "RSVP",
        /// Questions answered on the keypad (the digits are kept per receiver).
        Survey => "SURVEY",
    }
);

stored_enum!(
    /// Where a campaign stands.
    State {
        /// Before its start time (or halted before it ever started and resumed early).
        WaitingToActive => "WAITING_TO_ACTIVE",
        /// Dialling (inside its window).
        Active => "ACTIVE",
        /// Stopped until set `ACTIVE` again.
        Halted => "HALTED",
        /// Done for good.
        Complete => "COMPLETE",
    }
);

stored_enum!(
    /// Where one receiver stands.
    ReceiverStatus {
        /// Waiting for its (first or next) call.
        Pending => "PENDING",
        /// A call to it is going on.
        Dialing => "DIALING",
        /// Done: answered, or not answered after every redial.
        Finished => "FINISHED",
        /// Never finished: the campaign completed first.
        Cancelled => "CANCELLED",
    }
);

stored_enum!(
    /// What a receiver answered.
    Reply {
        /// Pressed an `ACCEPT` button.
        Accept => "ACCEPT",
        /// Pressed a `DECLINE` button.
        Decline => "DECLINE",
        /// Pressed no action button, or did not answer.
        NoReply => "NO_REPLY",
    }
);

stored_enum!(
    /// What pressing a keypad button means.
    ButtonAction {
        /// The receiver accepts.
        Accept => "ACCEPT",
        /// The receiver declines.
        Decline => "DECLINE",
    }
);

stored_enum!(
    /// Why a campaign completed.
    CompletionReason {
        /// Every receiver is done.
        AllDone => "ALL_DONE",
        /// `acceptsWanted` receivers accepted.
        AcceptsWantedReached => "ACCEPTS_WANTED_REACHED",
        /// Its end time passed.
        EndTimePassed => "END_TIME_PASSED",
    }
);
