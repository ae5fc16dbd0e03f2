//! The events a webhook can subscribe to: event log types, each with what it means.

/// Every event type a subscription may name, with its description.
pub const EVENT_TYPES: &[(&str, &str)] = &[
    (
        "CONVERSATION_CREATED",
        "A conversation was created (inbound or outbound).",
    ),
    ("CONVERSATION_ENQUEUED", "A conversation entered a queue."),
    (
        "CONVERSATION_OFFERED",
        "A queued conversation was offered to an agent.",
    ),
    ("CONVERSATION_OFFER_ACCEPTED", "An agent accepted an offer."),
    ("CONVERSATION_OFFER_DECLINED", "An agent declined an offer."),
    ("CONVERSATION_OFFER_TIMED_OUT", "An offer timed out."),
    ("CONVERSATION_CLAIMED", "An agent claimed a conversation."),
    (
        "CONVERSATION_ASSIGNED",
        "A conversation was assigned to an agent.",
    ),
    (
        "CONVERSATION_UNASSIGNED",
        "A conversation's agent was removed.",
    ),
    (
        "CONVERSATION_TRANSFERRED",
        "A conversation was transferred to another queue.",
    ),
    (
        "CONVERSATION_PENDING",
        "A conversation was set pending (snoozed).",
    ),
    (
        "CONVERSATION_PENDING_EXPIRED",
        "A pending conversation's time came: it is open again.",
    ),
    ("CONVERSATION_CLOSED", "A conversation was closed."),
    (
        "CONVERSATION_ABANDONED",
        "An inbound conversation was closed before anyone answered or took it.",
    ),
    (
        "CONVERSATION_REOPENED",
        "A closed or pending conversation was reopened.",
    ),
    ("CONVERSATION_RATED", "The contact rated a conversation."),
    (
        "CONVERSATION_TAG_ADDED",
        "A tag was added to a conversation.",
    ),
    (
        "CONVERSATION_TAG_REMOVED",
        "A tag was removed from a conversation.",
    ),
    (
        "CONVERSATION_PRIORITY_CHANGED",
        "A conversation's priority changed.",
    ),
    (
        "CONVERSATION_LINKED",
        "A conversation was linked to a parent conversation.",
    ),
    ("CONVERSATION_ARCHIVED", "A conversation was archived."),
    ("CONVERSATION_UNARCHIVED", "A conversation was unarchived."),
    (
        "CONVERSATION_ATTRIBUTES_SET",
        "A conversation's custom attributes changed.",
    ),
    ("CONVERSATION_ANONYMIZED", "A conversation was anonymized."),
    (
        "CONVERSATION_READ",
        "Someone read a conversation up to a message.",
    ),
    (
        "PARTICIPANT_ADDED",
        "A participant joined a group conversation.",
    ),
    (
        "PARTICIPANT_REMOVED",
        "A participant left a group conversation.",
    ),
    (
        "MESSAGE_ADDED",
        "A message was added to a conversation (inbound or outbound).",
    ),
    ("MESSAGE_EDITED", "A message's content was edited."),
    ("MESSAGE_REDACTED", "A message's content was redacted."),
    ("MESSAGE_REMOVED", "A message was removed."),
    (
        "MESSAGE_STATUS_CHANGED",
        "A message's delivery status changed.",
    ),
    ("REACTION_ADDED", "A reaction was added to a message."),
    ("REACTION_REMOVED", "A reaction was removed from a message."),
    (
        "NOTE_ADDED",
        "An internal note was added to a conversation.",
    ),
    ("NOTE_UPDATED", "An internal note was changed."),
    ("NOTE_REMOVED", "An internal note was removed."),
    ("CONTACT_CREATED", "A contact was created."),
    ("CONTACT_UPDATED", "A contact's fields changed."),
    ("CONTACT_TAGGED", "A tag was added to a contact."),
    ("CONTACT_UNTAGGED", "A tag was removed from a contact."),
    (
        "CONTACT_CONSENT_CHANGED",
        "A contact's consent for a channel type changed.",
    ),
    (
        "CONTACT_ATTRIBUTES_SET",
        "A contact's custom attributes changed.",
    ),
    ("CONTACT_ANONYMIZED", "A contact was anonymized."),
    ("PRESENCE_CHANGED", "A user's presence changed."),
    ("BROADCAST_CREATED", "A broadcast was created (a draft)."),
    ("BROADCAST_SCHEDULED", "A broadcast was scheduled."),
    ("BROADCAST_STARTED", "A broadcast started sending."),
    ("BROADCAST_PAUSED", "A broadcast was paused."),
    ("BROADCAST_RESUMED", "A paused broadcast was resumed."),
    ("BROADCAST_CANCELLED", "A broadcast was cancelled."),
    (
        "BROADCAST_COMPLETED",
        "Every recipient of a broadcast was sent to (or failed or was skipped).",
    ),
    (
        "BROADCAST_FAILED",
        "A broadcast could not go on (its channel or template went away).",
    ),
    (
        "BROADCAST_PROGRESS",
        "A broadcast's counters moved (at most once per batch, or once a second).",
    ),
    (
        "CALL_CREATED",
        "A call was created: inbound, click-to-call, callback or a campaign's dial.",
    ),
    (
        "CALL_STATUS_CHANGED",
        "A call's status moved (ringing, answered, queued again), short of ending.",
    ),
    ("CALL_HELD", "A call was put on hold."),
    ("CALL_RESUMED", "A held call was taken off hold."),
    (
        "CALL_TRANSFERRED",
        "A call was transferred to another queue or agent.",
    ),
    (
        "CALL_ENDED",
        "A call ended (completed, busy, no answer, failed, canceled or voicemail).",
    ),
    (
        "CALL_AGENT_ANSWERED",
        "The agent answered their leg of a click-to-call or callback; the contact is dialled next.",
    ),
    (
        "CALL_RECORDING_ADDED",
        "A call's recording or transcription was reported.",
    ),
    (
        "ROOM_CREATED",
        "A voice or video room was created (open or scheduled).",
    ),
    ("ROOM_OPENED", "A scheduled room opened."),
    (
        "ROOM_PARTICIPANT_INVITED",
        "Users or contacts were invited to a room.",
    ),
    ("ROOM_PARTICIPANT_JOINED", "Someone joined a room."),
    ("ROOM_PARTICIPANT_LEFT", "Someone left a room."),
    ("ROOM_AUDIO_CHANGED", "A participant was muted or unmuted."),
    (
        "ROOM_COMPLETED",
        "A room completed (empty past the grace period, or at its end).",
    ),
    ("ROOM_TERMINATED", "A room was terminated."),
    (
        "ROOM_FAILED",
        "A room failed (its provider reported a failure).",
    ),
    (
        "ROOM_RECORDING_READY",
        "A room's recording finished processing.",
    ),
    (
        "ROOM_RECORDING_FAILED",
        "The provider could not process a room's recording.",
    ),
    (
        "CALL_CAMPAIGN_CREATED",
        "A call campaign was created (waiting for its start time).",
    ),
    (
        "CALL_CAMPAIGN_UPDATED",
        "A call campaign was changed before it started.",
    ),
    ("CALL_CAMPAIGN_DELETED", "A call campaign was deleted."),
    (
        "CALL_CAMPAIGN_STATE_CHANGED",
        "A call campaign's state changed (WAITING_TO_ACTIVE, ACTIVE, HALTED), with its stats.",
    ),
    (
        "CALL_CAMPAIGN_COMPLETED",
        "A call campaign completed (every receiver done, accepts wanted reached or end time passed), with its stats.",
    ),
    (
        "CALL_CAMPAIGN_RECEIVER_FINISHED",
        "A call campaign's receiver finished: answered (with its reply), or not answered after its last redial.",
    ),
];

/// Whether `name` is an event type a subscription may name.
pub fn exists(name: &str) -> bool {
    EVENT_TYPES.iter().any(|(known, _)| *known == name)
}

/// The `type` of a ping sent by `testWebhookSubscription`.
pub const PING: &str = "WEBHOOK_PING";
