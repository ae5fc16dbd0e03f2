//! The `inbox` scenario: a page of 50 conversations with what an inbox list shows (requester,
//! assignee, queue, channel type, tags, last message with its author, unread count), in an
//! organization holding `--conversations` conversations of `--messages-per-conversation` messages
//! each (100,000 and 10 by default: 1,000,000 messages).
//!
//! Seeding writes the rows directly with multi-row INSERTs in transactions of
//! [`CONVERSATIONS_PER_TRANSACTION`] conversations (the API would take hours for a million
//! messages), keeping every denormalized column consistent with what the server itself maintains:
//! `last_message_id`/`last_message_at` (the newest message), `message_count`, `waiting_since`/
//! `waiting_key` (the first inbound message not yet answered by a user, else
//! [`switchboard::conversations::NOT_WAITING`]) and `first_response_at`. Channels, queues and tags
//! go through the services.
//!
//! The GraphQL side rotates over [`VARIANTS`] (filters and a second page), so no single page
//! stays hot in a cache. The plain side reads the same request body (the GraphQL variables), and
//! answers the same JSON from hand-written SQL: one statement for the page joined with its
//! requester, assignee, queue, last message and its author, and the unread count as a
//! correlated per-conversation count over the `(conversation_id, created_at, id)` index; one
//! statement for the page's tags.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, TimeZone, Utc};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Statement, Value,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard::auth::Principal;
use switchboard::channels::ChannelType;
use switchboard::channels::service::ChannelInput;
use switchboard::conversations::NOT_WAITING;
use switchboard::graphql::relay::{decode_id, encode_id};
use uuid::Uuid;

use crate::scenario::{authenticate, json_response};

/// The GraphQL request of the scenario: the inbox query of `tests/api/inbox.rs` with `first: 50`,
/// a filter and a cursor as variables, and the page info a client needs for the next page.
pub const QUERY: &str = "query Inbox($filter: ConversationFilterInput, $after: String) { \
conversations(filter: $filter, first: 50, after: $after) { pageInfo { hasNextPage endCursor } \
edges { node { number requester { name } assignee { email } queue { name } channelType \
tags { name } lastMessage { text author { __typename ... on Contact { name } ... on User { email } } } \
unreadCount } } } }";

/// Page size of [`QUERY`].
const PAGE: usize = 50;

/// The filters the load rotates over; `true` marks a second page (after the first page's end
/// cursor). `QUEUE` stands for the first queue's id.
pub const VARIANTS: &[(&str, bool)] = &[
    ("{}", false),
    ("{}", true),
    (r#"{"status": ["OPEN"]}"#, false),
    (r#"{"status": ["OPEN"]}"#, true),
    (r#"{"assignee": {"me": true}}"#, false),
    (
        r#"{"queueIds": ["QUEUE"], "status": ["OPEN", "PENDING"]}"#,
        false,
    ),
];

/// Conversations written per transaction while seeding.
const CONVERSATIONS_PER_TRANSACTION: usize = 5_000;

/// Bound values per INSERT statement (SQLite allows 32,766).
const VALUES_PER_INSERT: usize = 30_000;

/// Open SMS conversations kept for the `send` scenario.
const SEND_CONVERSATIONS: usize = 256;

/// What the seed created, for building requests.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// Conversations seeded.
    pub conversations: usize,
    /// Messages seeded.
    pub messages: usize,
    /// Contacts seeded (requesters).
    pub contacts: usize,
    /// Queues, the first one used by a filter.
    pub queue_ids: Vec<Uuid>,
    /// Open SMS conversations (for `send`).
    pub send_conversations: Vec<Uuid>,
    /// Seconds the seed took (rows, not statistics).
    pub seed_seconds: f64,
}

fn app_error(error: switchboard::error::AppError) -> anyhow::Error {
    anyhow::anyhow!("{}: {:?}", error.code(), error)
}

/// SplitMix64: a cheap, well-mixed hash, so the data is the same on every run.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Rows per INSERT for a table of `columns` columns.
fn rows_per_insert(columns: usize) -> usize {
    (VALUES_PER_INSERT / columns).max(1)
}

const LOREM: &[&str] = &[
    "Hi, my order has not arrived yet, can you check where it is?",
    "Thanks, that solved it.",
    "Could you send me the invoice for last month again please?",
    "We have shipped a replacement; it should arrive within two days.",
    "I would like to change the delivery address on my subscription.",
    "Sorry for the wait! I have looked into this and refunded the difference.",
    "Is there a way to pause my plan over the summer?",
    "Yes, you can pause it from the account page or I can do it for you.",
];

/// One seeded conversation and what hangs off it.
struct Generated {
    conversation: entity::conversation::ActiveModel,
    messages: Vec<entity::message::ActiveModel>,
    tags: Vec<entity::conversation_tag::ActiveModel>,
    read: Option<entity::conversation_read::ActiveModel>,
    /// An open SMS conversation.
    sendable: Option<Uuid>,
}

/// What generating conversations needs.
struct World {
    org_id: Uuid,
    owner_id: Uuid,
    users: Vec<Uuid>,
    contacts: Vec<(Uuid, String)>,
    channels: Vec<(Uuid, ChannelType, String)>,
    queues: Vec<Uuid>,
    tags: Vec<Uuid>,
    conversations: usize,
    per_conversation: usize,
    origin: DateTime<Utc>,
}

impl World {
    /// Conversation `i` (0-based) with its messages: spread over 180 days, newer ones more
    /// often open; channels 40% SMS, 30% email, 20% WhatsApp, 10% chat; 80% started by the
    /// contact; 75% assigned (to one of the users, the owner included); 65% in a queue; a third
    /// tagged (one or two of ten tags); messages a minute to half an hour apart, after the first
    /// one inbound or outbound at random; the owner has read 30% of them part way.
    fn conversation(&self, i: usize) -> Generated {
        let h = mix(i as u64);
        let pick = |shift: u32, n: usize| ((h >> shift) as usize) % n.max(1);
        let id = Uuid::now_v7();
        let number = i as i64 + 1;
        let channel = &self.channels[match h % 10 {
            0..=3 => 0,
            4..=6 => 1,
            7..=8 => 2,
            _ => 3,
        }
        .min(self.channels.len() - 1)];
        let (requester_id, requester_address) = self.contacts[pick(8, self.contacts.len())].clone();
        let inbound = pick(12, 10) < 8;
        let recent = i * 10 >= self.conversations * 8;
        let status = match (recent, pick(16, 20)) {
            (true, 0..=11) | (false, 0..=1) => "OPEN",
            (true, 12..=14) | (false, 2) => "PENDING",
            _ => "CLOSED",
        };
        let assignee = (pick(20, 4) != 0).then(|| self.users[pick(24, self.users.len())]);
        let queue = (pick(32, 20) < 13).then(|| self.queues[pick(36, self.queues.len())]);
        let (priority, rank) = match pick(40, 20) {
            0..=1 => ("LOW", 0),
            2..=15 => ("NORMAL", 1),
            16..=18 => ("HIGH", 2),
            _ => ("URGENT", 3),
        };
        let span = Duration::days(180).num_milliseconds();
        let offset = span * i as i64 / self.conversations.max(1) as i64;
        let start = self.origin
            + Duration::milliseconds(offset)
            + Duration::seconds(pick(44, 3600) as i64)
            + Duration::milliseconds(pick(4, 1000) as i64);

        let mut messages = Vec::with_capacity(self.per_conversation);
        let mut at = start;
        let mut waiting_since = None;
        let mut first_response_at = None;
        let mut last = None;
        for j in 0..self.per_conversation {
            let hj = mix(h ^ (j as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
            if j > 0 {
                at += Duration::seconds(60 + (hj % 1800) as i64);
            }
            let message_inbound = if j == 0 { inbound } else { hj >> 20 & 1 == 0 };
            let author_user = (!message_inbound)
                .then(|| assignee.unwrap_or(self.users[((hj >> 24) as usize) % self.users.len()]));
            if message_inbound {
                waiting_since.get_or_insert(at);
            } else {
                waiting_since = None;
                if inbound && first_response_at.is_none() {
                    first_response_at = Some(at);
                }
            }
            let message_id = Uuid::now_v7();
            let (from, to) = if message_inbound {
                (requester_address.clone(), channel.2.clone())
            } else {
                (channel.2.clone(), requester_address.clone())
            };
            messages.push(entity::message::ActiveModel {
                id: Set(message_id),
                org_id: Set(self.org_id),
                conversation_id: Set(id),
                author_kind: Set(if message_inbound { "CONTACT" } else { "USER" }.into()),
                author_contact_id: Set(message_inbound.then_some(requester_id)),
                author_user_id: Set(author_user),
                direction: Set(if message_inbound {
                    "INBOUND"
                } else {
                    "OUTBOUND"
                }
                .into()),
                text_body: Set(Some(format!(
                    "{} (#{number}, {})",
                    LOREM[((hj >> 32) as usize) % LOREM.len()],
                    j + 1
                ))),
                html_body: Set(None),
                email_subject: Set(None),
                from_address: Set(Some(from)),
                to_addresses: Set(Some(json!([to]))),
                cc_addresses: Set(None),
                bcc_addresses: Set(None),
                external_id: Set(None),
                delivery_status: Set("DELIVERED".into()),
                delivery_reason: Set(None),
                provider_channel_id: Set(None),
                provider_message_id: Set(None),
                message_id_header: Set(None),
                scheduled_at: Set(None),
                edited_at: Set(None),
                redacted_at: Set(None),
                removed_at: Set(None),
                anonymized_at: Set(None),
                created_at: Set(at),
                updated_at: Set(at),
            });
            last = Some((message_id, at));
        }
        let (last_message_id, last_message_at) = match last {
            Some((id, at)) => (Some(id), at),
            None => (None, start),
        };
        let closed_at = (status == "CLOSED").then(|| last_message_at + Duration::minutes(30));
        let conversation = entity::conversation::ActiveModel {
            id: Set(id),
            org_id: Set(self.org_id),
            number: Set(number),
            channel_id: Set(Some(channel.0)),
            channel_type: Set(channel.1.as_str().into()),
            kind: Set("DIRECT".into()),
            direction: Set(if inbound { "INBOUND" } else { "OUTBOUND" }.into()),
            subject: Set(
                (channel.1 == ChannelType::Email).then(|| format!("Question about order {number}"))
            ),
            status: Set(status.into()),
            pending_until: Set(None),
            close_reason: Set(None),
            closed_at: Set(closed_at),
            requester_id: Set(requester_id),
            assignee_id: Set(assignee),
            assigned_at: Set(assignee.map(|_| start)),
            queue_id: Set(queue),
            queued_at: Set(queue.map(|_| start)),
            priority: Set(priority.into()),
            priority_rank: Set(rank),
            parent_id: Set(None),
            link_type: Set(None),
            rating_type: Set(None),
            rating_score: Set(None),
            rating_comment: Set(None),
            rated_at: Set(None),
            first_response_at: Set(first_response_at),
            last_message_at: Set(last_message_at),
            last_message_id: Set(last_message_id),
            waiting_since: Set(waiting_since),
            waiting_key: Set(waiting_since.unwrap_or(NOT_WAITING)),
            message_count: Set(self.per_conversation as i64),
            archived_at: Set(None),
            anonymized_at: Set(None),
            created_at: Set(start),
            updated_at: Set(closed_at.unwrap_or(last_message_at)),
        };
        let mut tags = Vec::new();
        if pick(48, 3) == 0 {
            let first = pick(52, self.tags.len());
            let mut chosen = vec![first];
            if pick(56, 2) == 0 && self.tags.len() > 1 {
                chosen.push((first + 1 + pick(58, self.tags.len() - 1)) % self.tags.len());
            }
            for t in chosen {
                tags.push(entity::conversation_tag::ActiveModel {
                    conversation_id: Set(id),
                    tag_id: Set(self.tags[t]),
                    org_id: Set(self.org_id),
                    created_at: Set(start),
                });
            }
        }
        let read = (pick(60, 10) < 3 && !messages.is_empty()).then(|| {
            let upto = &messages[pick(0, messages.len())];
            let at = match &upto.created_at {
                sea_orm::ActiveValue::Set(at) | sea_orm::ActiveValue::Unchanged(at) => *at,
                sea_orm::ActiveValue::NotSet => start,
            };
            entity::conversation_read::ActiveModel {
                conversation_id: Set(id),
                reader_id: Set(self.owner_id),
                org_id: Set(self.org_id),
                reader_kind: Set("USER".into()),
                last_read_at: Set(at),
            }
        });
        let sendable =
            (status == "OPEN" && channel.1 == ChannelType::Sms && assignee.is_some()).then_some(id);
        Generated {
            conversation,
            messages,
            tags,
            read,
            sendable,
        }
    }
}

/// Inserts `rows` in multi-row statements sized to the entity's column count (a count written
/// by hand went stale when migrations added columns, and SQLite refused the statements).
async fn insert_chunks<E, A, C>(conn: &C, rows: Vec<A>) -> anyhow::Result<()>
where
    E: EntityTrait,
    A: sea_orm::ActiveModelTrait<Entity = E> + Clone,
    C: ConnectionTrait,
{
    use sea_orm::Iterable;
    let columns = E::Column::iter().count();
    for chunk in rows.chunks(rows_per_insert(columns)) {
        E::insert_many(chunk.to_vec())
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Seeds the scenario's organization: 4 channels (SMS, email, WhatsApp, chat), 5 queues, 10
/// tags, `conversations / 2` contacts, `conversations` conversations of `per_conversation`
/// messages each (see [`World::conversation`] for the spread), then the conversation counter.
pub async fn seed(
    db: &DatabaseConnection,
    principal: &Principal,
    conversations: usize,
    per_conversation: usize,
) -> anyhow::Result<Fixture> {
    let started = Instant::now();
    let org_id = principal.org_id;
    let mut channels = Vec::new();
    for (channel_type, name, address) in [
        (ChannelType::Sms, "Support line", Some("+4570000001")),
        (
            ChannelType::Email,
            "Support email",
            Some("support@bench.example.com"),
        ),
        (ChannelType::Whatsapp, "WhatsApp", Some("+4570000002")),
        (ChannelType::Chat, "Website chat", None),
    ] {
        let channel = switchboard::channels::service::create(
            db,
            principal,
            channel_type,
            ChannelInput {
                name: Some(name.into()),
                address: address.map(Into::into),
                ..Default::default()
            },
        )
        .await
        .map_err(app_error)
        .with_context(|| format!("cannot create the {} channel", channel_type.as_str()))?
        .0;
        channels.push((channel.id, channel_type, channel.address));
    }
    let mut queues = Vec::new();
    for name in ["Support", "Sales", "Billing", "VIP", "Returns"] {
        let queue = switchboard::queues::service::create(
            db,
            principal,
            switchboard::queues::service::QueueInput {
                name: Some(name.into()),
                ..Default::default()
            },
        )
        .await
        .map_err(app_error)
        .context("cannot create a queue")?;
        queues.push(queue.id);
    }
    let mut tags = Vec::new();
    for name in [
        "VIP",
        "Refund",
        "Bug",
        "Billing",
        "Shipping",
        "Urgent",
        "Feedback",
        "Churn risk",
        "B2B",
        "Spam",
    ] {
        let tag = switchboard::tags::service::create(db, principal, name, None)
            .await
            .map_err(app_error)
            .context("cannot create a tag")?;
        tags.push(tag.id);
    }
    let users: Vec<Uuid> = entity::user::Entity::find()
        .filter(sea_orm::ColumnTrait::eq(
            &entity::user::Column::OrgId,
            org_id,
        ))
        .order_by_asc(entity::user::Column::Email)
        .select_only()
        .column(entity::user::Column::Id)
        .into_tuple()
        .all(db)
        .await?;

    // Contacts: the requesters.
    let contact_count = (conversations / 2).max(1);
    let now = Utc::now();
    let mut contacts = Vec::with_capacity(contact_count);
    let txn = switchboard::db::begin_write(db).await.map_err(app_error)?;
    let mut rows = Vec::new();
    for i in 0..contact_count {
        let id = Uuid::now_v7();
        let phone = format!("+4540{i:07}");
        // Every fourth contact has only first and last name, so `name` is built from them.
        let (display_name, first_name, last_name) = if i % 4 == 0 {
            (None, Some(format!("Kim{i}")), Some("Jensen".to_string()))
        } else {
            (Some(format!("Customer {i:06}")), None, None)
        };
        let sort_name = display_name
            .clone()
            .unwrap_or_else(|| format!("Kim{i} Jensen"))
            .to_lowercase();
        let mut model = entity::contact::ActiveModel {
            id: Set(id),
            org_id: Set(org_id),
            display_name: Set(display_name),
            first_name: Set(first_name),
            last_name: Set(last_name),
            middle_name: Set(None),
            email: Set(Some(format!("customer{i}@bench.example.com"))),
            phone: Set(Some(phone.clone())),
            additional_emails: Set(json!([])),
            additional_phones: Set(json!([])),
            avatar_url: Set(None),
            external_id: Set(None),
            company: Set(None),
            address: Set(json!({})),
            note: Set(None),
            birth_date: Set(None),
            consent: Set(json!({})),
            sort_name: Set(sort_name),
            anonymized_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        switchboard::contacts::service::set_last_contacted(&mut model, None);
        rows.push(model);
        contacts.push((id, phone));
    }
    insert_chunks(&txn, rows).await?;
    txn.commit().await.context("cannot commit the contacts")?;

    let origin = Utc
        .timestamp_opt(now.timestamp() - 200 * 86_400, 0)
        .single()
        .context("bad origin time")?;
    let world = World {
        org_id,
        owner_id: principal.user_id(),
        users,
        contacts,
        channels,
        queues: queues.clone(),
        tags,
        conversations,
        per_conversation,
        origin,
    };
    let mut send_conversations = Vec::new();
    let mut messages_total = 0;
    for start in (0..conversations).step_by(CONVERSATIONS_PER_TRANSACTION) {
        let end = (start + CONVERSATIONS_PER_TRANSACTION).min(conversations);
        let mut conversation_rows = Vec::with_capacity(end - start);
        let mut message_rows = Vec::with_capacity((end - start) * per_conversation);
        let mut tag_rows = Vec::new();
        let mut read_rows = Vec::new();
        for i in start..end {
            let generated = world.conversation(i);
            conversation_rows.push(generated.conversation);
            message_rows.extend(generated.messages);
            tag_rows.extend(generated.tags);
            read_rows.extend(generated.read);
            if send_conversations.len() < SEND_CONVERSATIONS {
                send_conversations.extend(generated.sendable);
            }
        }
        messages_total += message_rows.len();
        let txn = switchboard::db::begin_write(db).await.map_err(app_error)?;
        insert_chunks(&txn, conversation_rows).await?;
        insert_chunks(&txn, message_rows).await?;
        insert_chunks(&txn, tag_rows).await?;
        insert_chunks(&txn, read_rows).await?;
        txn.commit()
            .await
            .context("cannot commit the conversations")?;
    }
    let backend = db.get_database_backend();
    let mut counter = Sql::new(backend);
    counter.push("INSERT INTO conversation_counters (org_id, last_number) VALUES (");
    counter.bind(org_id);
    counter.push(", ");
    counter.bind(conversations as i64);
    counter.push(")");
    db.execute_raw(counter.statement()).await?;
    Ok(Fixture {
        conversations,
        messages: messages_total,
        contacts: contact_count,
        queue_ids: queues,
        send_conversations,
        seed_seconds: started.elapsed().as_secs_f64(),
    })
}

/// The request bodies of the scenario: [`QUERY`] with each of [`VARIANTS`]' variables; the
/// cursor of a second page is `None` until known (`after` is filled in by the caller).
pub fn variables(fixture: &Fixture) -> anyhow::Result<Vec<(serde_json::Value, bool)>> {
    let queue = fixture
        .queue_ids
        .first()
        .map(|id| encode_id("Queue", *id).0)
        .context("no queue")?;
    VARIANTS
        .iter()
        .map(|(filter, second)| {
            let filter: serde_json::Value = serde_json::from_str(&filter.replace("QUEUE", &queue))
                .context("bad variant filter")?;
            Ok((json!({ "filter": filter, "after": null }), *second))
        })
        .collect()
}

/// A request body of [`QUERY`] with `variables`.
pub fn body(variables: &serde_json::Value) -> Bytes {
    Bytes::from(json!({ "query": QUERY, "variables": variables }).to_string())
}

/// SQL text with placeholders for the backend (`?` on SQLite, `$n` on PostgreSQL).
pub struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    /// Empty SQL.
    pub fn new(backend: DbBackend) -> Self {
        Self {
            backend,
            text: String::new(),
            values: Vec::new(),
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => {
                let _ = write!(self.text, "${}", self.values.len());
            }
            _ => self.text.push('?'),
        }
        self
    }

    /// Appends `(?, ?, …)` bound to `values`.
    pub fn bind_list<V: Into<Value>>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Self {
        self.push("(");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(value);
        }
        self.push(")")
    }

    /// The statement.
    pub fn statement(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}

/// The request body the plain handler reads: the GraphQL variables.
#[derive(Deserialize)]
struct RequestBody {
    #[serde(default)]
    variables: Variables,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Variables {
    filter: Option<Filter>,
    after: Option<String>,
}

/// The filters of [`VARIANTS`] (others are refused).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Filter {
    status: Option<Vec<String>>,
    assignee: Option<AssigneeFilter>,
    queue_ids: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AssigneeFilter {
    #[serde(default)]
    me: bool,
}

#[derive(Serialize)]
struct Data {
    data: ConversationsData,
}

#[derive(Serialize)]
struct ConversationsData {
    conversations: ConnectionOut,
}

/// Fields in the order of the GraphQL selection, so the bytes match too.
#[derive(Serialize)]
struct ConnectionOut {
    #[serde(rename = "pageInfo")]
    page_info: PageInfoOut,
    edges: Vec<EdgeOut>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageInfoOut {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Serialize)]
struct EdgeOut {
    node: NodeOut,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeOut {
    number: i64,
    requester: Option<NameOut>,
    assignee: Option<EmailOut>,
    queue: Option<NameOut>,
    channel_type: Option<String>,
    tags: Vec<NameOut>,
    last_message: Option<MessageOut>,
    unread_count: i64,
}

#[derive(Serialize)]
struct NameOut {
    name: String,
}

#[derive(Serialize)]
struct EmailOut {
    email: String,
}

#[derive(Serialize)]
struct MessageOut {
    text: Option<String>,
    author: Option<AuthorOut>,
}

#[derive(Serialize)]
#[serde(tag = "__typename")]
enum AuthorOut {
    Contact { name: String },
    User { email: String },
    SystemAuthor {},
}

/// A row of the page statement.
#[derive(FromQueryResult)]
struct PageRow {
    id: Uuid,
    number: i64,
    channel_type: String,
    last_message_at: DateTime<Utc>,
    rq_display_name: Option<String>,
    rq_first_name: Option<String>,
    rq_last_name: Option<String>,
    rq_email: Option<String>,
    rq_phone: Option<String>,
    rq_id: Option<Uuid>,
    assignee_email: Option<String>,
    queue_name: Option<String>,
    lm_id: Option<Uuid>,
    lm_text: Option<String>,
    lm_author_kind: Option<String>,
    lm_author_user_id: Option<Uuid>,
    lm_author_contact_id: Option<Uuid>,
    au_email: Option<String>,
    ac_id: Option<Uuid>,
    ac_display_name: Option<String>,
    ac_first_name: Option<String>,
    ac_last_name: Option<String>,
    ac_email: Option<String>,
    ac_phone: Option<String>,
    unread: i64,
}

#[derive(FromQueryResult)]
struct TagRow {
    conversation_id: Uuid,
    name: String,
}

/// A contact's `name` as the GraphQL `Contact.name` computes it.
fn contact_name(
    display_name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
) -> String {
    let full = [first_name.as_deref(), last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    display_name
        .or(Some(full).filter(|f| !f.is_empty()))
        .or(email)
        .or(phone)
        .unwrap_or_default()
}

/// The position in a cursor of the `conversations` connection ordered by `lastMessageAt`.
fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    if json.get(0)?.as_str()? != "conversations" || json.get(1)?.as_str()? != "lastMessageAt" {
        return None;
    }
    let value = json.get(2)?;
    if value.get(0)?.as_str()? != "d" {
        return None;
    }
    let at = DateTime::parse_from_rfc3339(value.get(1)?.as_str()?)
        .ok()?
        .with_timezone(&Utc);
    let id = Uuid::parse_str(json.get(3)?.as_str()?).ok()?;
    Some((at, id))
}

fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    let json = json!([
        "conversations",
        "lastMessageAt",
        ["d", at.to_rfc3339()],
        id.simple().to_string()
    ]);
    URL_SAFE_NO_PAD.encode(json.to_string())
}

fn bad_request(message: &str) -> Response {
    let mut response = json_response(
        json!({ "errors": [{ "message": message, "extensions": { "code": "BAD_USER_INPUT" } }] })
            .to_string()
            .into_bytes(),
    );
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
}

/// `POST /inbox`: what [`QUERY`] does, without GraphQL, from the same request body.
pub async fn handler(
    State(db): State<DatabaseConnection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let principal = match authenticate(&db, &headers).await {
        Ok(principal) => principal,
        Err(response) => return response,
    };
    if principal
        .require(switchboard::auth::Permission::WorkConversations)
        .is_err()
    {
        return StatusCode::FORBIDDEN.into_response();
    }
    let request: RequestBody = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => return bad_request(&format!("bad request body: {error}")),
    };
    let after = match request.variables.after.as_deref().map(decode_cursor) {
        None => None,
        Some(Some(position)) => Some(position),
        Some(None) => return bad_request("not a cursor of this list"),
    };
    let filter = request.variables.filter.unwrap_or_default();
    let mut queue_ids = Vec::new();
    for id in filter.queue_ids.unwrap_or_default() {
        match decode_id(&id, "Queue") {
            Ok(id) => queue_ids.push(id),
            Err(error) => return bad_request(&error.public_message()),
        }
    }
    let statuses = filter.status.unwrap_or_default();
    if statuses
        .iter()
        .any(|s| !matches!(s.as_str(), "OPEN" | "PENDING" | "CLOSED"))
    {
        return bad_request("unknown status");
    }
    let me = filter.assignee.is_some_and(|a| a.me);
    match page(&db, &principal, &statuses, me, &queue_ids, after).await {
        Ok(body) => match serde_json::to_vec(&body) {
            Ok(bytes) => json_response(bytes),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn page(
    db: &DatabaseConnection,
    principal: &Principal,
    statuses: &[String],
    me: bool,
    queue_ids: &[Uuid],
    after: Option<(DateTime<Utc>, Uuid)>,
) -> Result<Data, sea_orm::DbErr> {
    let org = principal.org_id;
    let reader = principal.user_id();
    let backend = db.get_database_backend();
    let mut sql = Sql::new(backend);
    sql.push(
        "SELECT c.id, c.number, c.channel_type, c.last_message_at, \
         rq.id AS rq_id, rq.display_name AS rq_display_name, rq.first_name AS rq_first_name, \
         rq.last_name AS rq_last_name, rq.email AS rq_email, rq.phone AS rq_phone, \
         a.email AS assignee_email, q.name AS queue_name, \
         m.id AS lm_id, m.text_body AS lm_text, m.author_kind AS lm_author_kind, \
         m.author_user_id AS lm_author_user_id, m.author_contact_id AS lm_author_contact_id, \
         au.email AS au_email, ac.id AS ac_id, ac.display_name AS ac_display_name, \
         ac.first_name AS ac_first_name, ac.last_name AS ac_last_name, ac.email AS ac_email, \
         ac.phone AS ac_phone, \
         (SELECT COUNT(*) FROM messages um WHERE um.conversation_id = c.id \
            AND (r.last_read_at IS NULL OR um.created_at > r.last_read_at) \
            AND (um.author_user_id IS NULL OR um.author_user_id <> ",
    );
    sql.bind(reader);
    sql.push(
        ") AND um.removed_at IS NULL) AS unread \
         FROM (SELECT id, org_id, number, channel_type, last_message_at, requester_id, \
                      assignee_id, queue_id, last_message_id \
               FROM conversations WHERE org_id = ",
    );
    sql.bind(org);
    sql.push(" AND archived_at IS NULL");
    if !statuses.is_empty() {
        sql.push(" AND status IN ");
        sql.bind_list(statuses.iter().cloned());
    }
    if me {
        sql.push(" AND assignee_id = ");
        sql.bind(reader);
    }
    if !queue_ids.is_empty() {
        sql.push(" AND queue_id IN ");
        sql.bind_list(queue_ids.iter().copied());
    }
    if let Some((at, id)) = after {
        sql.push(" AND (last_message_at < ");
        sql.bind(at);
        sql.push(" OR (last_message_at = ");
        sql.bind(at);
        sql.push(" AND id < ");
        sql.bind(id);
        sql.push("))");
    }
    let _ = write!(
        sql.text,
        " ORDER BY last_message_at DESC, id DESC LIMIT {}) c",
        PAGE + 1
    );
    sql.push(" LEFT JOIN conversation_reads r ON r.conversation_id = c.id AND r.reader_id = ");
    sql.bind(reader);
    sql.push(
        " LEFT JOIN contacts rq ON rq.id = c.requester_id AND rq.org_id = c.org_id \
         LEFT JOIN users a ON a.id = c.assignee_id AND a.org_id = c.org_id \
         LEFT JOIN queues q ON q.id = c.queue_id AND q.org_id = c.org_id \
         LEFT JOIN messages m ON m.id = c.last_message_id AND m.org_id = c.org_id \
         LEFT JOIN users au ON au.id = m.author_user_id AND au.org_id = c.org_id \
         LEFT JOIN contacts ac ON ac.id = m.author_contact_id AND ac.org_id = c.org_id \
         ORDER BY c.last_message_at DESC, c.id DESC",
    );
    let mut rows = PageRow::find_by_statement(sql.statement()).all(db).await?;
    let has_next_page = rows.len() > PAGE;
    rows.truncate(PAGE);

    let mut tags: HashMap<Uuid, Vec<NameOut>> = HashMap::new();
    if !rows.is_empty() {
        let mut sql = Sql::new(backend);
        sql.push(
            "SELECT ct.conversation_id, t.name FROM conversation_tags ct \
             JOIN tags t ON t.id = ct.tag_id AND t.org_id = ct.org_id \
             WHERE ct.org_id = ",
        );
        sql.bind(org);
        sql.push(" AND ct.conversation_id IN ");
        sql.bind_list(rows.iter().map(|r| r.id));
        sql.push(" ORDER BY t.name_key");
        for row in TagRow::find_by_statement(sql.statement()).all(db).await? {
            tags.entry(row.conversation_id)
                .or_default()
                .push(NameOut { name: row.name });
        }
    }

    let end_cursor = rows.last().map(|r| encode_cursor(r.last_message_at, r.id));
    let edges = rows
        .into_iter()
        .map(|r| {
            let author = match (r.lm_author_user_id, r.lm_author_contact_id) {
                (Some(_), _) => r.au_email.map(|email| AuthorOut::User { email }),
                (None, Some(_)) => r.ac_id.map(|_| AuthorOut::Contact {
                    name: contact_name(
                        r.ac_display_name,
                        r.ac_first_name,
                        r.ac_last_name,
                        r.ac_email,
                        r.ac_phone,
                    ),
                }),
                (None, None) if r.lm_author_kind.as_deref() == Some("SYSTEM") => {
                    Some(AuthorOut::SystemAuthor {})
                }
                (None, None) => None,
            };
            EdgeOut {
                node: NodeOut {
                    number: r.number,
                    requester: r.rq_id.map(|_| NameOut {
                        name: contact_name(
                            r.rq_display_name,
                            r.rq_first_name,
                            r.rq_last_name,
                            r.rq_email,
                            r.rq_phone,
                        ),
                    }),
                    assignee: r.assignee_email.map(|email| EmailOut { email }),
                    queue: r.queue_name.map(|name| NameOut { name }),
                    channel_type: ChannelType::parse(&r.channel_type)
                        .map(|t| t.as_str().to_string()),
                    tags: tags.remove(&r.id).unwrap_or_default(),
                    last_message: r.lm_id.map(|_| MessageOut {
                        text: r.lm_text,
                        author,
                    }),
                    unread_count: r.unread,
                },
            }
        })
        .collect();
    Ok(Data {
        data: ConversationsData {
            conversations: ConnectionOut {
                page_info: PageInfoOut {
                    has_next_page,
                    end_cursor,
                },
                edges,
            },
        },
    })
}
