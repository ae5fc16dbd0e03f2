//! Conversations: the inbox. Creation (inbound and outbound), the status machine (open, pending,
//! closed), routing actions (claim, assign, transfer), links, tags, attributes, ratings, archive,
//! participants, per-reader read positions and the inbox queries.

pub mod graphql;
pub mod inbox;
pub mod service;

/// Event types recorded about conversations. Every event about a conversation, its messages and
/// notes has the conversation as its subject (`Subject::new("Conversation", id)`), so the activity
/// log of one conversation is one indexed read of the event log.
pub mod event_types {
    /// A conversation was created. Payload: `direction`, `channelId`, `requesterId`, `number`.
    pub const CREATED: &str = "CONVERSATION_CREATED";
    /// A message was added. Payload: `messageId`, `direction`, `authorKind`.
    pub const MESSAGE_ADDED: &str = "MESSAGE_ADDED";
    /// A message was edited. Payload: `messageId`.
    pub const MESSAGE_EDITED: &str = "MESSAGE_EDITED";
    /// A message's content was redacted. Payload: `messageId`.
    pub const MESSAGE_REDACTED: &str = "MESSAGE_REDACTED";
    /// A message was removed. Payload: `messageId`.
    pub const MESSAGE_REMOVED: &str = "MESSAGE_REMOVED";
    /// A reaction was added to a message. Payload: `messageId`, `reaction`.
    pub const REACTION_ADDED: &str = "REACTION_ADDED";
    /// A reaction was removed from a message. Payload: `messageId`, `reaction`.
    pub const REACTION_REMOVED: &str = "REACTION_REMOVED";
    /// A message's delivery status moved (a provider's report). Payload: `messageId`, `status`,
    /// `reason`.
    pub const MESSAGE_STATUS_CHANGED: &str = "MESSAGE_STATUS_CHANGED";
    /// A reader's read position moved forward (a contact's read receipt, a user marking read).
    /// Payload: `readerKind`, `readerId`, `readAt`.
    pub const READ: &str = "CONVERSATION_READ";
    /// A note was added. Payload: `noteId`, `backdated` (true when imported with an earlier
    /// `createdAt`; the event itself is dated when the note was added).
    pub const NOTE_ADDED: &str = "NOTE_ADDED";
    /// A note's body was changed. Payload: `noteId`.
    pub const NOTE_UPDATED: &str = "NOTE_UPDATED";
    /// A note was removed. Payload: `noteId`.
    pub const NOTE_REMOVED: &str = "NOTE_REMOVED";
    /// Put into a queue. Payload: `queueId`.
    pub const ENQUEUED: &str = "CONVERSATION_ENQUEUED";
    /// Claimed by the acting user. Payload: `userId`, `previousAssigneeId`, `force`.
    pub const CLAIMED: &str = "CONVERSATION_CLAIMED";
    /// Assigned to a user. Payload: `userId`, `previousAssigneeId`.
    pub const ASSIGNED: &str = "CONVERSATION_ASSIGNED";
    /// Assignee removed. Payload: `previousAssigneeId`.
    pub const UNASSIGNED: &str = "CONVERSATION_UNASSIGNED";
    /// Moved to another queue. Payload: `fromQueueId`, `toQueueId`.
    pub const TRANSFERRED: &str = "CONVERSATION_TRANSFERRED";
    /// Set pending. Payload: `pendingUntil`.
    pub const PENDING: &str = "CONVERSATION_PENDING";
    /// A pending conversation's `pendingUntil` passed and it reopened. Payload: `pendingUntil`.
    pub const PENDING_EXPIRED: &str = "CONVERSATION_PENDING_EXPIRED";
    /// Closed. Payload: `reason`.
    pub const CLOSED: &str = "CONVERSATION_CLOSED";
    /// An inbound conversation closed without a person's reply and without an assignee (Dixa's
    /// `ConversationAbandoned`); recorded right after its `CONVERSATION_CLOSED`. Payload: `queueId`.
    pub const ABANDONED: &str = "CONVERSATION_ABANDONED";
    /// Reopened. Payload: `reason` (`MANUAL`, `INBOUND_MESSAGE`).
    pub const REOPENED: &str = "CONVERSATION_REOPENED";
    /// Linked to a parent. Payload: `parentId`, `linkType`.
    pub const LINKED: &str = "CONVERSATION_LINKED";
    /// Priority changed. Payload: `from`, `to`.
    pub const PRIORITY_CHANGED: &str = "CONVERSATION_PRIORITY_CHANGED";
    /// A tag was added. Payload: `tagId`.
    pub const TAG_ADDED: &str = "CONVERSATION_TAG_ADDED";
    /// A tag was removed. Payload: `tagId`.
    pub const TAG_REMOVED: &str = "CONVERSATION_TAG_REMOVED";
    /// Custom attribute values set. Payload: `identifiers`.
    pub const ATTRIBUTES_SET: &str = "CONVERSATION_ATTRIBUTES_SET";
    /// Offered to an agent by routing. Payload: `offerId`, `userId`, `queueId`, `expiresAt`.
    pub const OFFERED: &str = "CONVERSATION_OFFERED";
    /// An offer was accepted (the conversation is claimed by it). Payload: `offerId`, `userId`.
    pub const OFFER_ACCEPTED: &str = "CONVERSATION_OFFER_ACCEPTED";
    /// An offer was declined. Payload: `offerId`, `userId`.
    pub const OFFER_DECLINED: &str = "CONVERSATION_OFFER_DECLINED";
    /// An offer lapsed unanswered. Payload: `offerId`, `userId`.
    pub const OFFER_TIMED_OUT: &str = "CONVERSATION_OFFER_TIMED_OUT";
    /// An offer was withdrawn (another agent accepted, or the conversation left the queue).
    /// Payload: `offerId`, `userId`.
    pub const OFFER_WITHDRAWN: &str = "CONVERSATION_OFFER_WITHDRAWN";
    /// Archived.
    pub const ARCHIVED: &str = "CONVERSATION_ARCHIVED";
    /// Unarchived.
    pub const UNARCHIVED: &str = "CONVERSATION_UNARCHIVED";
    /// Rated. Payload: `ratingType`, `score`.
    pub const RATED: &str = "CONVERSATION_RATED";
    /// Personal data erased. Payload: `erasedMessages`.
    pub const ANONYMIZED: &str = "CONVERSATION_ANONYMIZED";
    /// A participant joined. Payload: `participantKind`, `participantId`.
    pub const PARTICIPANT_ADDED: &str = "PARTICIPANT_ADDED";
    /// A participant left. Payload: `participantKind`, `participantId`.
    pub const PARTICIPANT_REMOVED: &str = "PARTICIPANT_REMOVED";
}

/// The GraphQL type name of conversations, used as the subject kind of their events.
pub const SUBJECT: &str = "Conversation";

/// `waiting_key` of a conversation nobody waits on: 9999-12-31T23:59:59Z (waiting time zero).
pub const NOT_WAITING: chrono::DateTime<chrono::Utc> =
    match chrono::DateTime::from_timestamp(253_402_300_799, 0) {
        Some(t) => t,
        None => chrono::DateTime::<chrono::Utc>::MAX_UTC,
    };

/// Who wrote a message or reads a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    /// A staff user.
    User(uuid::Uuid),
    /// A contact.
    Contact(uuid::Uuid),
    /// The system (auto replies, imports).
    System,
}

impl Party {
    /// Stored kind: `USER`, `CONTACT` or `SYSTEM`.
    pub fn kind(self) -> &'static str {
        match self {
            Party::User(_) => "USER",
            Party::Contact(_) => "CONTACT",
            Party::System => "SYSTEM",
        }
    }
}
