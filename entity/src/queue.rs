use sea_orm::entity::prelude::*;

/// A routing queue (Dixa queues): where conversations wait to be offered to its members.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "queues")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    /// Lower number first.
    pub priority: i32,
    /// Exactly one queue per organization is the default.
    pub is_default: bool,
    /// One of Dixa's six offer algorithms, e.g. `ALL_AT_ONCE`.
    pub offer_algorithm: String,
    /// Seconds an offer waits for an answer.
    pub offer_timeout_seconds: Option<i32>,
    /// Seconds of wrap-up after a conversation.
    pub wrapup_timeout_seconds: Option<i32>,
    /// `DEFAULT` or `SKILL_BASED`.
    pub member_list_type: String,
    /// JSON object: threshold kind → value.
    pub thresholds: Json,
    pub do_not_offer_enabled: bool,
    /// JSON object: channel type → seconds.
    pub do_not_offer_timeouts: Json,
    pub preferred_agent_enabled: bool,
    /// JSON object: channel type → seconds.
    pub preferred_agent_timeouts: Json,
    pub offer_abandoned_conversations: bool,
    pub personal_agent_offline_timeout_seconds: Option<i32>,
    pub preferred_agent_offline_timeout_seconds: Option<i32>,
    pub call_functionality: bool,
    /// `ABANDONED_IGNORED`.
    pub sla_calculation_method: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
