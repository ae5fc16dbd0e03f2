//! Facts and rollups, maintained from the event write path: [`on_event`] runs inside
//! [`crate::events::record`], in the transaction of the change, and turns the event (with the
//! conversation or message it is about, read in that transaction) into facts, adds them to the
//! hourly rollups (one upsert statement for all grains) and stores them (one insert).

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Value};
use serde_json::Value as Json;
use uuid::Uuid;

use super::catalog::ids;
use super::sql::Sql;
use crate::conversations::event_types as ev;
use crate::error::AppResult;

/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;

/// Which dimensions a rollup row keeps. A query reads the smallest grain that keeps every
/// dimension it filters or groups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grain {
    /// No dimension: totals per hour.
    Total = 0,
    /// Channel (and its type).
    Channel = 1,
    /// Queue.
    Queue = 2,
    /// User.
    User = 3,
    /// Direction.
    Direction = 4,
    /// Channel, channel type, queue, user and direction.
    Full = 5,
}

impl Grain {
    /// Every grain, each fact is added to all of them.
    pub const ALL: [Grain; 6] = [
        Grain::Total,
        Grain::Channel,
        Grain::Queue,
        Grain::User,
        Grain::Direction,
        Grain::Full,
    ];

    fn keeps(self) -> (bool, bool, bool, bool) {
        // (channel, queue, user, direction)
        match self {
            Grain::Total => (false, false, false, false),
            Grain::Channel => (true, false, false, false),
            Grain::Queue => (false, true, false, false),
            Grain::User => (false, false, true, false),
            Grain::Direction => (false, false, false, true),
            Grain::Full => (true, true, true, true),
        }
    }

    /// The smallest grain keeping the channel (or channel type), queue, user (or team) and
    /// direction as asked.
    pub fn for_dims(channel: bool, queue: bool, user: bool, direction: bool) -> Grain {
        match (channel, queue, user, direction) {
            (false, false, false, false) => Grain::Total,
            (true, false, false, false) => Grain::Channel,
            (false, true, false, false) => Grain::Queue,
            (false, false, true, false) => Grain::User,
            (false, false, false, true) => Grain::Direction,
            _ => Grain::Full,
        }
    }
}

/// One measured occurrence.
#[derive(Clone, Debug, PartialEq)]
pub struct Fact {
    /// Metric id.
    pub metric: &'static str,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The conversation it belongs to, if any (tags are read through it).
    pub conversation_id: Option<Uuid>,
    /// Channel.
    pub channel_id: Option<Uuid>,
    /// Channel type.
    pub channel_type: Option<String>,
    /// Queue.
    pub queue_id: Option<Uuid>,
    /// User.
    pub user_id: Option<Uuid>,
    /// Direction.
    pub direction: Option<String>,
    /// Value.
    pub value: f64,
}

/// The literal of the nil UUID (a rollup's "no value" for id dimensions) for `backend`.
pub fn nil_literal(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "'00000000-0000-0000-0000-000000000000'::uuid",
        _ => "X'00000000000000000000000000000000'",
    }
}

fn uuid_in(payload: &Json, key: &str) -> Option<Uuid> {
    payload
        .get(key)
        .and_then(Json::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

/// Seconds from `from` to `to`, both taken to the millisecond (as facts store times).
fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to.timestamp_millis() - from.timestamp_millis()).max(0) as f64 / 1000.0
}

fn of_conversation(
    c: &entity::conversation::Model,
    metric: &'static str,
    at: DateTime<Utc>,
    user_id: Option<Uuid>,
    value: f64,
) -> Fact {
    Fact {
        metric,
        at,
        conversation_id: Some(c.id),
        channel_id: c.channel_id,
        channel_type: Some(c.channel_type.clone()),
        queue_id: c.queue_id,
        user_id,
        direction: Some(c.direction.clone()),
        value,
    }
}

/// Writes the facts an event stands for. Called by [`crate::events::record`] for every event,
/// in its transaction; events that measure nothing cost nothing.
pub async fn on_event<C: ConnectionTrait>(conn: &C, event: &entity::event::Model) -> AppResult<()> {
    let facts = facts_of(conn, event).await?;
    write(conn, event.org_id, &facts).await
}

async fn conversation<C: ConnectionTrait>(
    conn: &C,
    event: &entity::event::Model,
) -> AppResult<Option<entity::conversation::Model>> {
    use entity::conversation::{Column, Entity};
    Ok(Entity::find_by_id(event.subject_id)
        .filter(Column::OrgId.eq(event.org_id))
        .one(conn)
        .await?)
}

async fn message<C: ConnectionTrait>(
    conn: &C,
    event: &entity::event::Model,
) -> AppResult<Option<entity::message::Model>> {
    use entity::message::{Column, Entity};
    let Some(id) = uuid_in(&event.payload, "messageId") else {
        return Ok(None);
    };
    Ok(Entity::find_by_id(id)
        .filter(Column::OrgId.eq(event.org_id))
        .one(conn)
        .await?)
}

async fn facts_of<C: ConnectionTrait>(
    conn: &C,
    event: &entity::event::Model,
) -> AppResult<Vec<Fact>> {
    let p = &event.payload;
    let kind = event.event_type.as_str();
    let mut facts = Vec::new();
    match kind {
        ev::CREATED
        | ev::CLOSED
        | ev::ABANDONED
        | ev::REOPENED
        | ev::CLAIMED
        | ev::ASSIGNED
        | ev::RATED
        | ev::MESSAGE_ADDED => {}
        // Only final delivery reports measure anything (sent, read, canceled: nothing to read).
        ev::MESSAGE_STATUS_CHANGED => {
            if !matches!(
                p.get("status").and_then(Json::as_str),
                Some("DELIVERED" | "FAILED")
            ) {
                return Ok(facts);
            }
        }
        "CALL_ENDED" => {
            // Times of calls go by the app's clock: the call's own end time.
            let call = entity::call::Entity::find_by_id(event.subject_id)
                .filter(entity::call::Column::OrgId.eq(event.org_id))
                .one(conn)
                .await?;
            let at = call
                .as_ref()
                .and_then(|c| c.ended_at)
                .unwrap_or(event.created_at);
            let conversation_id = call.and_then(|c| c.conversation_id);
            return Ok(call_facts(event, at, conversation_id));
        }
        "CALL_CAMPAIGN_RECEIVER_FINISHED" => {
            if p.get("reply").and_then(Json::as_str) == Some("ACCEPT") {
                facts.push(Fact {
                    metric: ids::CAMPAIGN_ACCEPTS,
                    at: event.created_at,
                    conversation_id: None,
                    channel_id: None,
                    channel_type: None,
                    queue_id: None,
                    user_id: None,
                    direction: None,
                    value: 1.0,
                });
            }
            return Ok(facts);
        }
        crate::presence::service::PRESENCE_CHANGED => {
            // An online stretch that ended: from the first connection to going offline.
            let at = |key: &str| {
                p.get("online")
                    .and_then(|o| o.get(key))
                    .and_then(Json::as_str)
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| t.with_timezone(&Utc))
            };
            if let (Some(from), Some(to)) = (at("from"), at("to")) {
                facts.push(Fact {
                    metric: ids::AGENT_ONLINE_TIME,
                    at: to,
                    conversation_id: None,
                    channel_id: None,
                    channel_type: None,
                    queue_id: None,
                    user_id: Some(event.subject_id),
                    direction: None,
                    value: seconds(from, to),
                });
            }
            return Ok(facts);
        }
        _ => return Ok(facts),
    }
    let Some(c) = conversation(conn, event).await? else {
        return Ok(facts);
    };
    match kind {
        ev::CREATED => facts.push(of_conversation(
            &c,
            ids::CONVERSATIONS_CREATED,
            c.created_at,
            c.assignee_id,
            1.0,
        )),
        ev::CLOSED => {
            let at = c.closed_at.unwrap_or(event.created_at);
            facts.push(of_conversation(
                &c,
                ids::CONVERSATIONS_CLOSED,
                at,
                c.assignee_id,
                1.0,
            ));
            facts.push(of_conversation(
                &c,
                ids::RESOLUTION_TIME,
                at,
                c.assignee_id,
                seconds(c.created_at, at),
            ));
        }
        ev::ABANDONED => {
            let at = c.closed_at.unwrap_or(event.created_at);
            facts.push(of_conversation(
                &c,
                ids::CONVERSATIONS_ABANDONED,
                at,
                c.assignee_id,
                1.0,
            ));
        }
        ev::REOPENED => {
            let at = if p.get("reason").and_then(Json::as_str) == Some("INBOUND_MESSAGE") {
                c.last_message_at
            } else {
                c.updated_at
            };
            facts.push(of_conversation(
                &c,
                ids::CONVERSATIONS_REOPENED,
                at,
                c.assignee_id,
                1.0,
            ));
        }
        ev::CLAIMED | ev::ASSIGNED => {
            let first_assignment = p.get("previousAssigneeId").is_none_or(Json::is_null);
            if let (true, Some(queued), Some(assigned)) =
                (first_assignment, c.queued_at, c.assigned_at)
            {
                facts.push(of_conversation(
                    &c,
                    ids::QUEUE_WAIT_TIME,
                    assigned,
                    c.assignee_id,
                    seconds(queued, assigned),
                ));
            }
        }
        ev::RATED => {
            let at = c.rated_at.unwrap_or(event.created_at);
            facts.push(of_conversation(
                &c,
                ids::CSAT_RESPONSES,
                at,
                c.assignee_id,
                1.0,
            ));
            if let (Some("CSAT"), Some(score)) = (c.rating_type.as_deref(), c.rating_score) {
                let value = if score >= 4 { 100.0 } else { 0.0 };
                facts.push(of_conversation(
                    &c,
                    ids::CSAT_SCORE,
                    at,
                    c.assignee_id,
                    value,
                ));
            }
        }
        ev::MESSAGE_ADDED => {
            let Some(m) = message(conn, event).await? else {
                return Ok(facts);
            };
            let inbound = m.direction == "INBOUND";
            let mut fact = of_conversation(
                &c,
                if inbound {
                    ids::MESSAGES_INBOUND
                } else {
                    ids::MESSAGES_OUTBOUND
                },
                m.created_at,
                m.author_user_id,
                1.0,
            );
            fact.direction = Some(m.direction.clone());
            facts.push(fact);
            if !inbound
                && m.author_kind == "USER"
                && c.direction == "INBOUND"
                && let Some(start) = unanswered_since(conn, &c, &m).await?
            {
                facts.push(of_conversation(
                    &c,
                    ids::FIRST_RESPONSE_TIME,
                    m.created_at,
                    m.author_user_id,
                    seconds(start, m.created_at),
                ));
            }
        }
        ev::MESSAGE_STATUS_CHANGED => {
            // Only DELIVERED or FAILED get here (checked before the conversation was read).
            let status = p.get("status").and_then(Json::as_str);
            let Some(m) = message(conn, event).await? else {
                return Ok(facts);
            };
            if m.direction != "OUTBOUND" {
                return Ok(facts);
            }
            let delivered = status == Some("DELIVERED");
            let mut rate = of_conversation(
                &c,
                ids::DELIVERY_RATE,
                event.created_at,
                m.author_user_id,
                if delivered { 100.0 } else { 0.0 },
            );
            rate.direction = Some(m.direction.clone());
            if !delivered {
                let mut failed = rate.clone();
                failed.metric = ids::MESSAGES_FAILED;
                failed.value = 1.0;
                facts.push(failed);
            }
            // A broadcast's message (the delivery hook names its broadcast in the event).
            if p.get("broadcastId").is_some_and(Json::is_string) {
                let mut broadcast = rate.clone();
                broadcast.metric = ids::BROADCAST_DELIVERY_RATE;
                broadcast.queue_id = None;
                broadcast.user_id = None;
                broadcast.direction = None;
                facts.push(broadcast);
            }
            facts.push(rate);
        }
        _ => {}
    }
    Ok(facts)
}

/// When the episode a human reply `m` answers began (the conversation's creation or its last
/// reopen), or `None` when a person already replied in it.
async fn unanswered_since<C: ConnectionTrait>(
    conn: &C,
    c: &entity::conversation::Model,
    m: &entity::message::Model,
) -> AppResult<Option<DateTime<Utc>>> {
    let backend = conn.get_database_backend();
    let mut sql = Sql::new(backend);
    sql.push("SELECT metric, MAX(at_ms) AS at_ms FROM metric_facts WHERE conversation_id = ")
        .bind(c.id)
        .push(" AND metric IN ")
        .bind_list([
            Value::from(ids::CONVERSATIONS_REOPENED),
            Value::from(ids::FIRST_RESPONSE_TIME),
        ])
        .push(" GROUP BY metric");
    let rows = conn.query_all_raw(sql.statement()).await?;
    let (mut reopened, mut responded) = (None, None);
    for row in rows {
        let metric: String = row.try_get("", "metric")?;
        let at: i64 = row.try_get("", "at_ms")?;
        if metric == ids::CONVERSATIONS_REOPENED {
            reopened = Some(at);
        } else {
            responded = Some(at);
        }
    }
    match (reopened, responded) {
        // Never reopened: this reply is the first one when it set the first response.
        (None, _) => Ok((c.first_response_at == Some(m.created_at)).then_some(c.created_at)),
        (Some(r), Some(f)) if f >= r => Ok(None),
        (Some(r), _) => Ok(DateTime::from_timestamp_millis(r)),
    }
}

fn call_facts(
    event: &entity::event::Model,
    at: DateTime<Utc>,
    conversation_id: Option<Uuid>,
) -> Vec<Fact> {
    let p = &event.payload;
    let direction = p
        .get("direction")
        .and_then(Json::as_str)
        .unwrap_or("INBOUND")
        .to_string();
    let answered = p.get("answered").and_then(Json::as_bool).unwrap_or(false);
    let base = Fact {
        metric: ids::CALLS_INBOUND,
        at,
        conversation_id,
        channel_id: uuid_in(p, "channelId"),
        channel_type: Some("VOICE".into()),
        queue_id: uuid_in(p, "queueId"),
        user_id: uuid_in(p, "userId"),
        direction: Some(direction.clone()),
        value: 1.0,
    };
    let with = |metric: &'static str, value: f64| Fact {
        metric,
        value,
        ..base.clone()
    };
    let inbound = direction == "INBOUND";
    let mut facts = vec![with(
        if inbound {
            ids::CALLS_INBOUND
        } else {
            ids::CALLS_OUTBOUND
        },
        1.0,
    )];
    if answered {
        facts.push(with(ids::CALLS_ANSWERED, 1.0));
        if let Some(talk) = p.get("talkSeconds").and_then(Json::as_f64) {
            facts.push(with(ids::CALL_TALK_TIME, talk));
        }
    } else if inbound {
        facts.push(with(ids::CALLS_MISSED, 1.0));
    }
    if inbound {
        facts.push(with(
            ids::CALL_ANSWER_RATE,
            if answered { 100.0 } else { 0.0 },
        ));
    }
    if let Some(wait) = p.get("waitSeconds").and_then(Json::as_f64) {
        facts.push(with(ids::CALL_WAIT_TIME, wait));
    }
    facts
}

/// Stores `facts` and adds them to the rollups: two statements whatever their number.
pub async fn write<C: ConnectionTrait>(conn: &C, org_id: Uuid, facts: &[Fact]) -> AppResult<()> {
    if facts.is_empty() {
        return Ok(());
    }
    let backend = conn.get_database_backend();
    let mut sql = Sql::new(backend);
    sql.push(
        "INSERT INTO metric_facts (id, org_id, metric, at_ms, conversation_id, channel_id, \
         channel_type, queue_id, user_id, direction, value) VALUES ",
    );
    for (i, f) in facts.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind_list([
            Value::from(Uuid::now_v7()),
            org_id.into(),
            f.metric.into(),
            f.at.timestamp_millis().into(),
            f.conversation_id.into(),
            f.channel_id.into(),
            f.channel_type.clone().into(),
            f.queue_id.into(),
            f.user_id.into(),
            f.direction.clone().into(),
            f.value.into(),
        ]);
    }
    conn.execute_raw(sql.statement()).await?;

    let mut sql = Sql::new(backend);
    sql.push(
        "INSERT INTO metric_rollups (org_id, metric, grain, hour, channel_id, channel_type, \
         queue_id, user_id, direction, \"count\", \"sum\", sum_sq, \"min\", \"max\") VALUES ",
    );
    let nil = Uuid::nil();
    let mut first = true;
    for f in facts {
        for grain in Grain::ALL {
            let (channel, queue, user, direction) = grain.keeps();
            if !first {
                sql.push(", ");
            }
            first = false;
            sql.bind_list([
                Value::from(org_id),
                f.metric.into(),
                (grain as i16).into(),
                f.at.timestamp_millis().div_euclid(HOUR_MS).into(),
                (if channel { f.channel_id } else { None })
                    .unwrap_or(nil)
                    .into(),
                (if channel {
                    f.channel_type.clone()
                } else {
                    None
                })
                .unwrap_or_default()
                .into(),
                (if queue { f.queue_id } else { None })
                    .unwrap_or(nil)
                    .into(),
                (if user { f.user_id } else { None }).unwrap_or(nil).into(),
                (if direction { f.direction.clone() } else { None })
                    .unwrap_or_default()
                    .into(),
                1i64.into(),
                f.value.into(),
                (f.value * f.value).into(),
                f.value.into(),
                f.value.into(),
            ]);
        }
    }
    let (least, greatest) = match backend {
        DbBackend::Postgres => ("LEAST", "GREATEST"),
        _ => ("MIN", "MAX"),
    };
    sql.push(&format!(
        " ON CONFLICT (org_id, metric, grain, hour, channel_id, queue_id, user_id, direction) \
         DO UPDATE SET \"count\" = metric_rollups.\"count\" + excluded.\"count\", \
         \"sum\" = metric_rollups.\"sum\" + excluded.\"sum\", \
         sum_sq = metric_rollups.sum_sq + excluded.sum_sq, \
         \"min\" = {least}(metric_rollups.\"min\", excluded.\"min\"), \
         \"max\" = {greatest}(metric_rollups.\"max\", excluded.\"max\")"
    ));
    conn.execute_raw(sql.statement()).await?;
    Ok(())
}

/// Recomputes an organization's rollups from its facts (one statement per grain). The event hook
/// keeps them equal; this is for repairs and for checking that they are.
pub async fn rebuild_rollups<C: ConnectionTrait>(conn: &C, org_id: Uuid) -> AppResult<()> {
    let backend = conn.get_database_backend();
    let mut sql = Sql::new(backend);
    sql.push("DELETE FROM metric_rollups WHERE org_id = ")
        .bind(org_id);
    conn.execute_raw(sql.statement()).await?;
    let nil = nil_literal(backend);
    for grain in Grain::ALL {
        let (channel, queue, user, direction) = grain.keeps();
        let id = |keep: bool, col: &str| {
            if keep {
                format!("COALESCE({col}, {nil})")
            } else {
                nil.to_string()
            }
        };
        let text = |keep: bool, col: &str| {
            if keep {
                format!("COALESCE({col}, '')")
            } else {
                "''".to_string()
            }
        };
        let mut sql = Sql::new(backend);
        sql.push(&format!(
            "INSERT INTO metric_rollups (org_id, metric, grain, hour, channel_id, channel_type, \
             queue_id, user_id, direction, \"count\", \"sum\", sum_sq, \"min\", \"max\") \
             SELECT org_id, metric, {g}, at_ms / {HOUR_MS}, {c}, {ct}, {q}, {u}, {d}, COUNT(*), \
             SUM(value), SUM(value * value), MIN(value), MAX(value) FROM metric_facts \
             WHERE org_id = ",
            g = grain as i16,
            c = id(channel, "channel_id"),
            ct = text(channel, "channel_type"),
            q = id(queue, "queue_id"),
            u = id(user, "user_id"),
            d = text(direction, "direction"),
        ))
        .bind(org_id)
        .push(" GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9");
        conn.execute_raw(sql.statement()).await?;
    }
    Ok(())
}
