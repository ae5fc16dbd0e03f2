//! Calls (DESIGN §2.4): voice call legs a channel takes or places — inbound calls reported by
//! the provider, click-to-call (`startCall`: ring the agent, then the contact), callback
//! requests and campaign dials — with their status machine, times, recording and price.

pub mod graphql;
pub mod placement;
pub mod service;

/// Subject kind of call events.
pub const SUBJECT: &str = "Call";

/// Event types of calls (subject [`SUBJECT`]).
pub mod event_types {
    /// A call was created (payload `direction`, `kind`, `channelId`, `queueId`, `status`).
    pub const CREATED: &str = "CALL_CREATED";
    /// Its status moved (payload `from`, `to`), except to an end status.
    pub const STATUS_CHANGED: &str = "CALL_STATUS_CHANGED";
    /// Put on hold.
    pub const HELD: &str = "CALL_HELD";
    /// Taken off hold (payload `heldSeconds`).
    pub const RESUMED: &str = "CALL_RESUMED";
    /// Moved to another queue or agent (payload `queueId`, `userId`).
    pub const TRANSFERRED: &str = "CALL_TRANSFERRED";
    /// It ended (payload `direction`, `status`, `answered`, `waitSeconds`, `talkSeconds`,
    /// `queueId`, `userId`, `channelId`, `campaignId`).
    pub const ENDED: &str = "CALL_ENDED";
    /// A recording or transcription was attached.
    pub const RECORDING_ADDED: &str = "CALL_RECORDING_ADDED";
    /// The agent answered their leg of a click-to-call or callback (payload `userId`,
    /// `agentTo`): the contact is dialled now.
    pub const AGENT_ANSWERED: &str = "CALL_AGENT_ANSWERED";
}

stored_enum!(
    /// Where a call is.
    CallStatus {
        /// Waiting: in a queue (inbound, callbacks) or to be dialled.
        Queued => "QUEUED",
        /// Ringing the callee (or the agent, for click-to-call).
        Ringing => "RINGING",
        /// Answered and going on.
        InProgress => "IN_PROGRESS",
        /// Answered, then hung up.
        Completed => "COMPLETED",
        /// The callee was busy.
        Busy => "BUSY",
        /// Nobody answered.
        NoAnswer => "NO_ANSWER",
        /// The call could not be placed or broke off.
        Failed => "FAILED",
        /// Given up before it was answered (the caller hung up, an agent cancelled).
        Canceled => "CANCELED",
        /// Went to voicemail.
        Voicemail => "VOICEMAIL",
    }
);

impl CallStatus {
    /// Whether the call is over.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            CallStatus::Queued | CallStatus::Ringing | CallStatus::InProgress
        )
    }

    /// Whether a call may move from `self` to `to`: queued calls ring, are answered, go to
    /// voicemail or end unanswered; ringing calls are answered or end unanswered; calls in
    /// progress complete, fail, or (transferred to a queue or agent) wait or ring again. Nothing
    /// leaves an end status.
    pub fn may_become(self, to: CallStatus) -> bool {
        use CallStatus::*;
        match self {
            Queued => matches!(
                to,
                Ringing | InProgress | Voicemail | Canceled | Failed | NoAnswer | Busy
            ),
            Ringing => matches!(
                to,
                Queued | InProgress | Busy | NoAnswer | Failed | Canceled | Voicemail
            ),
            InProgress => matches!(to, Queued | Ringing | Completed | Failed),
            _ => false,
        }
    }
}

stored_enum!(
    /// How a call came about.
    CallKind {
        /// The contact called in.
        Inbound => "INBOUND",
        /// An agent placed it: the agent's phone rings first, then the contact's.
        ClickToCall => "CLICK_TO_CALL",
        /// A contact asked to be called back: it waits in a queue for an agent.
        Callback => "CALLBACK",
        /// A call campaign's dialler placed it.
        Campaign => "CAMPAIGN",
    }
);

stored_enum!(
    /// One leg of a call a provider places: click-to-call and callbacks ring the agent first,
    /// then (once the agent answers) the contact; other calls have only the contact's leg.
    CallLeg {
        /// The agent's phone or app endpoint.
        Agent => "AGENT",
        /// The contact's phone.
        Contact => "CONTACT",
    }
);

stored_enum!(
    /// Who called whom.
    CallDirection {
        /// The contact called.
        Inbound => "INBOUND",
        /// The organization called.
        Outbound => "OUTBOUND",
    }
);

#[cfg(test)]
mod tests {
    use super::CallStatus::*;

    #[test]
    fn end_statuses_are_final_and_never_left() {
        for status in [Completed, Busy, NoAnswer, Failed, Canceled, Voicemail] {
            assert!(status.is_final());
            assert!(!status.may_become(Queued));
            assert!(!status.may_become(Completed));
        }
        assert!(Queued.may_become(Ringing));
        assert!(Ringing.may_become(InProgress));
        assert!(InProgress.may_become(Completed));
        assert!(!InProgress.may_become(Busy));
        assert!(!Queued.may_become(Completed));
    }
}
