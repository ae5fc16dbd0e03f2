//! The metric catalog: every metric with its definition, unit, aggregations and dimensions. The
//! definitions here are the contract; `README.md` repeats them.

/// What a metric's values measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Occurrences (each fact counts 1).
    Count,
    /// Durations in seconds.
    Seconds,
    /// A share in percent: each fact is 100 (yes) or 0 (no), so the average is the percentage.
    Percent,
}

/// How a metric's facts are aggregated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Aggregation {
    /// Number of facts.
    Count,
    /// Sum of the values.
    Sum,
    /// Mean of the values (for percent metrics: the percentage).
    Avg,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Median (nearest rank), computed exactly from the facts.
    P50,
    /// 90th percentile (nearest rank), computed exactly from the facts.
    P90,
    /// Population standard deviation.
    Stddev,
}

impl Aggregation {
    /// The name clients use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Count => "COUNT",
            Self::Sum => "SUM",
            Self::Avg => "AVG",
            Self::Min => "MIN",
            Self::Max => "MAX",
            Self::P50 => "P50",
            Self::P90 => "P90",
            Self::Stddev => "STDDEV",
        }
    }

    /// Whether it needs the facts (rollups keep no distribution).
    pub fn is_percentile(self) -> bool {
        matches!(self, Self::P50 | Self::P90)
    }
}

/// What a metric can be filtered and grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// The channel.
    Channel,
    /// The channel's type (`EMAIL`, `SMS`, …).
    ChannelType,
    /// The queue.
    Queue,
    /// Teams of the user (a user in two teams counts in both).
    Team,
    /// The user (see each metric for which user).
    User,
    /// The conversation's tags (current tags; computed from the facts).
    Tag,
    /// `INBOUND` or `OUTBOUND`.
    Direction,
}

impl Dimension {
    /// The name clients use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Channel => "CHANNEL",
            Self::ChannelType => "CHANNEL_TYPE",
            Self::Queue => "QUEUE",
            Self::Team => "TEAM",
            Self::User => "USER",
            Self::Tag => "TAG",
            Self::Direction => "DIRECTION",
        }
    }

    /// Whether values are ids of rows (as opposed to a fixed set of names).
    pub fn is_entity(self) -> bool {
        !matches!(self, Self::ChannelType | Self::Direction)
    }

    /// The GraphQL type of its ids.
    pub fn type_name(self) -> Option<&'static str> {
        match self {
            Self::Channel => Some("Channel"),
            Self::Queue => Some("Queue"),
            Self::Team => Some("Team"),
            Self::User => Some("User"),
            Self::Tag => Some("Tag"),
            Self::ChannelType | Self::Direction => None,
        }
    }
}

/// Where a metric's numbers come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Facts written when things happen, with hourly rollups.
    Facts,
    /// A count of the conversations as they are now (no time series; the period is ignored).
    OpenNow,
}

/// One metric of the catalog.
#[derive(Debug)]
pub struct MetricDef {
    /// Stable id (`first_response_time`).
    pub id: &'static str,
    /// What it measures, precisely.
    pub description: &'static str,
    /// Unit of its values.
    pub unit: Unit,
    /// Aggregations it supports.
    pub aggregations: &'static [Aggregation],
    /// Aggregations returned when none are asked for.
    pub default_aggregations: &'static [Aggregation],
    /// Dimensions it can be filtered and grouped by.
    pub dimensions: &'static [Dimension],
    /// Where the numbers come from.
    pub kind: Kind,
}

use Aggregation as A;
use Dimension as D;

const COUNT_ONLY: &[Aggregation] = &[A::Count];
const DURATION: &[Aggregation] = &[
    A::Count,
    A::Sum,
    A::Avg,
    A::Min,
    A::Max,
    A::P50,
    A::P90,
    A::Stddev,
];
const DURATION_DEFAULT: &[Aggregation] = &[A::Count, A::Avg];
const SHARE: &[Aggregation] = &[A::Avg, A::Count];
const CONVERSATION_DIMS: &[Dimension] = &[
    D::Channel,
    D::ChannelType,
    D::Queue,
    D::Team,
    D::User,
    D::Tag,
    D::Direction,
];
const CALL_DIMS: &[Dimension] = &[
    D::Channel,
    D::ChannelType,
    D::Queue,
    D::Team,
    D::User,
    D::Direction,
];

/// Metric ids, as stored in facts and rollups.
pub mod ids {
    /// See the catalog.
    pub const CONVERSATIONS_CREATED: &str = "conversations_created";
    /// See the catalog.
    pub const CONVERSATIONS_CLOSED: &str = "conversations_closed";
    /// See the catalog.
    pub const CONVERSATIONS_REOPENED: &str = "conversations_reopened";
    /// See the catalog.
    pub const CONVERSATIONS_ABANDONED: &str = "conversations_abandoned";
    /// See the catalog.
    pub const CONVERSATIONS_OPEN: &str = "conversations_open";
    /// See the catalog.
    pub const QUEUE_WAIT_TIME: &str = "queue_wait_time";
    /// See the catalog.
    pub const FIRST_RESPONSE_TIME: &str = "first_response_time";
    /// See the catalog.
    pub const RESOLUTION_TIME: &str = "resolution_time";
    /// See the catalog.
    pub const MESSAGES_INBOUND: &str = "messages_inbound";
    /// See the catalog.
    pub const MESSAGES_OUTBOUND: &str = "messages_outbound";
    /// See the catalog.
    pub const DELIVERY_RATE: &str = "delivery_rate";
    /// See the catalog.
    pub const MESSAGES_FAILED: &str = "messages_failed";
    /// See the catalog.
    pub const CSAT_SCORE: &str = "csat_score";
    /// See the catalog.
    pub const CSAT_RESPONSES: &str = "csat_responses";
    /// See the catalog.
    pub const CALLS_INBOUND: &str = "calls_inbound";
    /// See the catalog.
    pub const CALLS_OUTBOUND: &str = "calls_outbound";
    /// See the catalog.
    pub const CALLS_ANSWERED: &str = "calls_answered";
    /// See the catalog.
    pub const CALLS_MISSED: &str = "calls_missed";
    /// See the catalog.
    pub const CALL_ANSWER_RATE: &str = "call_answer_rate";
    /// See the catalog.
    pub const CALL_TALK_TIME: &str = "call_talk_time";
    /// See the catalog.
    pub const CALL_WAIT_TIME: &str = "call_wait_time";
    /// See the catalog.
    pub const CAMPAIGN_ACCEPTS: &str = "campaign_accepts";
    /// See the catalog.
    pub const AGENT_ONLINE_TIME: &str = "agent_online_time";
    /// See the catalog.
    pub const BROADCAST_DELIVERY_RATE: &str = "broadcast_delivery_rate";
}

const fn counting(
    id: &'static str,
    description: &'static str,
    dimensions: &'static [Dimension],
) -> MetricDef {
    MetricDef {
        id,
        description,
        unit: Unit::Count,
        aggregations: COUNT_ONLY,
        default_aggregations: COUNT_ONLY,
        dimensions,
        kind: Kind::Facts,
    }
}

const fn timing(
    id: &'static str,
    description: &'static str,
    dimensions: &'static [Dimension],
) -> MetricDef {
    MetricDef {
        id,
        description,
        unit: Unit::Seconds,
        aggregations: DURATION,
        default_aggregations: DURATION_DEFAULT,
        dimensions,
        kind: Kind::Facts,
    }
}

const fn share(
    id: &'static str,
    description: &'static str,
    dimensions: &'static [Dimension],
) -> MetricDef {
    MetricDef {
        id,
        description,
        unit: Unit::Percent,
        aggregations: SHARE,
        default_aggregations: SHARE,
        dimensions,
        kind: Kind::Facts,
    }
}

/// Every metric, in catalog order.
pub static CATALOG: &[MetricDef] = &[
    counting(
        ids::CONVERSATIONS_CREATED,
        "Conversations created, at their creation. User: the assignee at creation (outbound \
         conversations are assigned to their author). Direction: the conversation's.",
        CONVERSATION_DIMS,
    ),
    counting(
        ids::CONVERSATIONS_CLOSED,
        "Conversation closes, when closed (a conversation closed, reopened and closed again counts \
         twice). Queue and user: the conversation's queue and assignee when closed.",
        CONVERSATION_DIMS,
    ),
    counting(
        ids::CONVERSATIONS_REOPENED,
        "Reopens of closed or pending conversations (by a user or by an inbound message), when \
         reopened.",
        CONVERSATION_DIMS,
    ),
    counting(
        ids::CONVERSATIONS_ABANDONED,
        "Inbound conversations closed without any human reply and without an assignee (Dixa's \
         abandoned conversations), when closed.",
        CONVERSATION_DIMS,
    ),
    MetricDef {
        id: ids::CONVERSATIONS_OPEN,
        description: "Conversations open or pending right now, by their current channel, queue, \
                      assignee (user), tags and direction. A snapshot: the period and granularity \
                      are ignored and there is no time series.",
        unit: Unit::Count,
        aggregations: COUNT_ONLY,
        default_aggregations: COUNT_ONLY,
        dimensions: CONVERSATION_DIMS,
        kind: Kind::OpenNow,
    },
    timing(
        ids::QUEUE_WAIT_TIME,
        "Seconds a queued conversation waited from entering its queue to being assigned (claimed, \
         assigned or an offer accepted) while it had no assignee; at the assignment. User: who got \
         it.",
        CONVERSATION_DIMS,
    ),
    timing(
        ids::FIRST_RESPONSE_TIME,
        "Seconds from an inbound conversation's creation, or from its last reopen, to the first \
         outbound reply written by a person (user) after it; at the reply. Automatic and system \
         messages don't count. User: who replied.",
        CONVERSATION_DIMS,
    ),
    timing(
        ids::RESOLUTION_TIME,
        "Seconds from a conversation's creation to its close; at each close. User: the assignee \
         when closed.",
        CONVERSATION_DIMS,
    ),
    counting(
        ids::MESSAGES_INBOUND,
        "Inbound messages (from contacts), when added. Direction: the message's.",
        CONVERSATION_DIMS,
    ),
    counting(
        ids::MESSAGES_OUTBOUND,
        "Outbound messages (by users, automation and broadcasts), when added. User: the author \
         when a user wrote it. Direction: the message's.",
        CONVERSATION_DIMS,
    ),
    share(
        ids::DELIVERY_RATE,
        "Share of outbound messages reported DELIVERED among those reported DELIVERED or FAILED, \
         when the provider reports it (AVG is the percentage, COUNT the reports).",
        CONVERSATION_DIMS,
    ),
    counting(
        ids::MESSAGES_FAILED,
        "Outbound messages whose delivery failed, when reported.",
        CONVERSATION_DIMS,
    ),
    share(
        ids::CSAT_SCORE,
        "Share of CSAT ratings of 4 or 5 among CSAT ratings (1–5), when rated (AVG is the \
         percentage, COUNT the ratings). User: the assignee when rated.",
        CONVERSATION_DIMS,
    ),
    counting(
        ids::CSAT_RESPONSES,
        "Ratings given (CSAT and thumbs), when rated.",
        CONVERSATION_DIMS,
    ),
    counting(
        ids::CALLS_INBOUND,
        "Inbound calls, when they end.",
        CALL_DIMS,
    ),
    counting(
        ids::CALLS_OUTBOUND,
        "Outbound calls (including campaign calls), when they end.",
        CALL_DIMS,
    ),
    counting(
        ids::CALLS_ANSWERED,
        "Calls answered (inbound by a user, outbound by the callee), when they end.",
        CALL_DIMS,
    ),
    counting(
        ids::CALLS_MISSED,
        "Inbound calls that ended unanswered, when they end.",
        CALL_DIMS,
    ),
    share(
        ids::CALL_ANSWER_RATE,
        "Share of inbound calls answered among inbound calls, when they end.",
        CALL_DIMS,
    ),
    timing(
        ids::CALL_TALK_TIME,
        "Seconds talked on answered calls, when they end.",
        CALL_DIMS,
    ),
    timing(
        ids::CALL_WAIT_TIME,
        "Seconds callers waited before an answer or hanging up, on calls that waited, when they \
         end.",
        CALL_DIMS,
    ),
    counting(
        ids::CAMPAIGN_ACCEPTS,
        "Call campaign receivers who replied ACCEPT, when their outcome is final.",
        &[],
    ),
    timing(
        ids::AGENT_ONLINE_TIME,
        "Seconds users were online: one value per online stretch, from the first websocket \
         connection after being offline to going offline (the last connection ended and the \
         grace period passed, or the connection expired); at its end, so a stretch still going \
         is not counted yet. COUNT is the stretches, SUM the online time. User: whose stretch; \
         team: the user's teams.",
        &[D::User, D::Team],
    ),
    share(
        ids::BROADCAST_DELIVERY_RATE,
        "Share of broadcast messages reported DELIVERED among the broadcast messages reported \
         DELIVERED or FAILED, when the provider reports it (AVG is the percentage, COUNT the \
         reports). Channel: the broadcast's channel.",
        &[D::Channel, D::ChannelType],
    ),
];

/// The definition of metric `id`.
pub fn find(id: &str) -> Option<&'static MetricDef> {
    CATALOG.iter().find(|m| m.id == id)
}
