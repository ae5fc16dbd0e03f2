//! The `send` scenario: `sendMessage` (a plain-text message on an SMS conversation, a unique
//! `externalId` each) with 1, 8 and 64 concurrent clients, client `k` writing to conversation
//! `k` of the open SMS conversations the inbox seed kept.
//!
//! Two references, on the same connection pool, database and `synchronous` level:
//! - **plain** (`POST /send`, the ratio's reference): authenticates the same way, then in one
//!   write transaction (`BEGIN IMMEDIATE` on SQLite) inserts the same message row (same columns
//!   filled: author, direction, text, from/to addresses, external id, `QUEUED`, times) and
//!   applies the conversation update the message implies (`message_count + 1`, last message
//!   id and time, no longer waiting, first response time if unset, `updated_at`) in one
//!   `UPDATE … WHERE id = ? AND org_id = ?`, and commits: no reads, no history or event rows.
//! - **raw-db**: the same transaction in a loop on the server's runtime, without HTTP and
//!   authentication: the database's own rate for these writes.
//!
//! What `sendMessage` does besides (its cost is what the ratio shows): the conversation read
//! (locked on PostgreSQL), the `externalId` lookup, the channel and requester reads, the delivery
//! status history row and the `MESSAGE_ADDED` event row.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, TransactionTrait};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard::conversations::NOT_WAITING;
use switchboard::graphql::relay::{decode_id, encode_id};
use uuid::Uuid;

use crate::inbox::Sql;
use crate::load::{CheckBody, MakeBody, Outcome};
use crate::scenario::{authenticate, json_response};

/// The GraphQL request of the scenario.
pub const MUTATION: &str = "mutation Send($input: SendMessageInput!) { sendMessage(input: $input) \
{ message { id } userErrors { field message code } } }";

/// The message text (the length of a typical SMS answer).
const TEXT: &str = "Thanks for your message! Your replacement has shipped and should arrive \
within two days. Reply here if anything else comes up.";

/// The SMS channel's address and a requester's number, written as the message's from and to by
/// the references (sendMessage reads them from the channel and the requester).
const FROM: &str = "+4570000001";
const TO: &str = "+4540000000";

/// Request bodies: client `k` writes to `conversations[k % n]`, every request with a new
/// `externalId` (unique across runs and sides).
pub fn bodies(conversations: Arc<Vec<Uuid>>) -> MakeBody {
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let sequence = Arc::new(AtomicU64::new(0));
    let ids: Arc<Vec<String>> = Arc::new(
        conversations
            .iter()
            .map(|id| encode_id("Conversation", *id).0)
            .collect(),
    );
    Arc::new(move |client: usize| {
        let n = sequence.fetch_add(1, Ordering::Relaxed);
        let conversation = if ids.is_empty() {
            String::new()
        } else {
            ids[client % ids.len()].clone()
        };
        Bytes::from(
            json!({
                "query": MUTATION,
                "variables": { "input": {
                    "conversationId": conversation,
                    "text": TEXT,
                    "externalId": format!("bench-{run}-{n}"),
                } }
            })
            .to_string(),
        )
    })
}

/// An answer is right when it has the message's id and no user errors (no top-level errors).
pub fn check() -> CheckBody {
    Arc::new(|body: &[u8]| {
        let json: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        if json.get("errors").is_some() {
            return Err("errors".into());
        }
        let payload = &json["data"]["sendMessage"];
        if payload["userErrors"] != json!([]) {
            return Err("user errors".into());
        }
        match payload["message"]["id"].as_str() {
            Some(id) if !id.is_empty() => Ok(()),
            _ => Err("no message id".into()),
        }
    })
}

#[derive(Deserialize)]
struct RequestBody {
    variables: Variables,
}

#[derive(Deserialize)]
struct Variables {
    input: Input,
}

/// The input of a `sendMessage` request body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Input {
    /// The conversation's global id.
    pub conversation_id: String,
    /// The text.
    pub text: String,
    /// The carrier's external id (unique per request).
    pub external_id: String,
}

/// The input of a `sendMessage` request body as [`bodies`] makes it.
pub fn input(body: &[u8]) -> Option<Input> {
    serde_json::from_slice::<RequestBody>(body)
        .ok()
        .map(|request| request.variables.input)
}

/// The answer of `sendMessage` for a message id (or none) and user errors.
pub fn payload(message_id: Option<Uuid>, errors: Value) -> Response {
    let body = json!({ "data": { "sendMessage": {
        "message": message_id.map(|id| json!({ "id": encode_id("Message", id).0 })),
        "userErrors": errors,
    } } });
    json_response(body.to_string().into_bytes())
}

/// The reference's writes: the message row and the conversation update, in one write
/// transaction. `Ok(None)` when the conversation is not the organization's.
pub async fn write(
    db: &DatabaseConnection,
    org_id: Uuid,
    user_id: Uuid,
    conversation_id: Uuid,
    text: &str,
    external_id: &str,
) -> Result<Option<Uuid>, sea_orm::DbErr> {
    let backend = db.get_database_backend();
    let txn = match backend {
        DbBackend::Sqlite => {
            db.begin_with_options(sea_orm::TransactionOptions {
                sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?
        }
        _ => db.begin().await?,
    };
    let id = Uuid::now_v7();
    let now = Utc::now();
    let mut insert = Sql::new(backend);
    insert.push(
        "INSERT INTO messages (id, org_id, conversation_id, author_kind, author_contact_id, \
         author_user_id, direction, text_body, html_body, email_subject, from_address, \
         to_addresses, cc_addresses, bcc_addresses, external_id, delivery_status, \
         delivery_reason, scheduled_at, edited_at, redacted_at, removed_at, anonymized_at, \
         created_at, updated_at) VALUES (",
    );
    insert.bind(id).push(", ");
    insert.bind(org_id).push(", ");
    insert.bind(conversation_id).push(", 'USER', NULL, ");
    insert.bind(user_id).push(", 'OUTBOUND', ");
    insert.bind(text).push(", NULL, NULL, ");
    insert.bind(FROM).push(", ");
    insert.bind(json!([TO])).push(", NULL, NULL, ");
    insert
        .bind(external_id)
        .push(", 'QUEUED', NULL, NULL, NULL, NULL, NULL, NULL, ");
    insert.bind(now).push(", ");
    insert.bind(now).push(")");
    txn.execute_raw(insert.statement()).await?;
    let mut update = Sql::new(backend);
    update.push("UPDATE conversations SET message_count = message_count + 1, last_message_at = ");
    update.bind(now).push(", last_message_id = ");
    update
        .bind(id)
        .push(", waiting_since = NULL, waiting_key = ");
    update.bind(NOT_WAITING).push(
        ", first_response_at = CASE WHEN first_response_at IS NULL AND direction = 'INBOUND' THEN ",
    );
    update
        .bind(now)
        .push(" ELSE first_response_at END, updated_at = ");
    update.bind(now).push(" WHERE id = ");
    update.bind(conversation_id).push(" AND org_id = ");
    update.bind(org_id);
    let updated = txn.execute_raw(update.statement()).await?;
    if updated.rows_affected() != 1 {
        txn.rollback().await?;
        return Ok(None);
    }
    txn.commit().await?;
    Ok(Some(id))
}

/// `POST /send`: the reference (see the module documentation), from the same request body.
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
    let Some(input) = input(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let not_found = || {
        payload(
            None,
            json!([{ "field": ["conversationId"], "message": "no such conversation", "code": "NOT_FOUND" }]),
        )
    };
    let Ok(conversation_id) = decode_id(&input.conversation_id, "Conversation") else {
        return not_found();
    };
    match write(
        &db,
        principal.org_id,
        principal.user_id(),
        conversation_id,
        &input.text,
        &input.external_id,
    )
    .await
    {
        Ok(Some(id)) => payload(Some(id), json!([])),
        Ok(None) => not_found(),
        Err(error) => {
            eprintln!("bench: the plain send failed: {error}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Runs the reference's transaction in a loop with `clients` concurrent tasks (client `k` on
/// `conversations[k % n]`) for `warmup + measure`, on the current runtime, without HTTP.
pub async fn raw_db(
    db: DatabaseConnection,
    org_id: Uuid,
    user_id: Uuid,
    conversations: Arc<Vec<Uuid>>,
    clients: usize,
    warmup: Duration,
    measure: Duration,
) -> anyhow::Result<Outcome> {
    if conversations.is_empty() {
        anyhow::bail!("no conversations to write to");
    }
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + measure;
    let tasks: Vec<_> = (0..clients.max(1))
        .map(|client| {
            let db = db.clone();
            let conversations = conversations.clone();
            tokio::spawn(async move {
                let mut outcome = Outcome::default();
                let conversation = conversations[client % conversations.len()];
                let mut n = 0u64;
                loop {
                    let started = Instant::now();
                    if started >= end {
                        break;
                    }
                    n += 1;
                    let external_id = format!("raw-{run}-{client}-{n}");
                    let result =
                        write(&db, org_id, user_id, conversation, TEXT, &external_id).await;
                    let finished = Instant::now();
                    match result {
                        Ok(Some(_)) => {
                            outcome.succeeded += 1;
                            if started >= measure_from && finished <= end {
                                let nanos = finished.duration_since(started).as_nanos();
                                outcome
                                    .latencies_ns
                                    .push(u64::try_from(nanos).unwrap_or(u64::MAX));
                            }
                        }
                        Ok(None) => {
                            outcome.errors += 1;
                            outcome
                                .first_error
                                .get_or_insert_with(|| "no such conversation".into());
                        }
                        Err(error) => {
                            outcome.errors += 1;
                            outcome.first_error.get_or_insert_with(|| error.to_string());
                        }
                    }
                }
                outcome
            })
        })
        .collect();
    let mut total = Outcome {
        measured: measure,
        ..Outcome::default()
    };
    for task in tasks {
        let mut one = task.await?;
        one.measured = Duration::ZERO;
        total.absorb(one);
    }
    Ok(total)
}

/// Messages stored in `conversations` so far (for checking that every answered request stored
/// exactly one message).
pub async fn stored(
    db: &DatabaseConnection,
    conversations: &[Uuid],
) -> Result<i64, sea_orm::DbErr> {
    let mut sql = Sql::new(db.get_database_backend());
    sql.push("SELECT COUNT(*) AS n FROM messages WHERE conversation_id IN ");
    sql.bind_list(conversations.iter().copied());
    let row = db.query_one_raw(sql.statement()).await?;
    match row {
        Some(row) => row.try_get::<i64>("", "n"),
        None => Ok(0),
    }
}
