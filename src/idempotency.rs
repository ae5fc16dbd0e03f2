//! Idempotency keys (DESIGN §6): a client may send `Idempotency-Key: <key>` with a request; a
//! retry with the same key and the same body replays the first response instead of running again.
//! Keys are per user and kept for 24 hours. A key reused with a different body is refused, and a
//! retry while the first request still runs gets `CONFLICT`.
//!
//! The response is recorded right after the operation's own transaction commits; a crash between
//! the two leaves the key pending until it expires, so the retry is refused rather than run twice.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set, SqlErr,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{AppError, AppResult};

use entity::idempotency_key::{self, Column, Entity};

/// How long keys are remembered.
pub const TTL_HOURS: i64 = 24;
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// A recorded response.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// HTTP status.
    pub status: u16,
    /// Content type.
    pub content_type: String,
    /// Body.
    pub body: Vec<u8>,
}

/// What to do with a request carrying a key.
#[derive(Debug)]
pub enum Claim {
    /// First use: run the request, then [`complete`] or [`release`] the claim.
    Fresh(Uuid),
    /// Seen before with the same body: answer with the recorded response.
    Replay(Recorded),
}

/// Checks a key's shape: 1 to 255 visible ASCII characters.
pub fn check_key(key: &str) -> AppResult<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::BadUserInput(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
        )));
    }
    Ok(())
}

fn hash(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Claims `key` for this request body, or finds the response recorded for it.
pub async fn claim(
    db: &DatabaseConnection,
    principal: &Principal,
    key: &str,
    body: &[u8],
) -> AppResult<Claim> {
    check_key(key)?;
    let request_hash = hash(body);
    let expired = Utc::now() - chrono::Duration::hours(TTL_HOURS);
    Entity::delete_many()
        .filter(Column::UserId.eq(principal.user_id()))
        .filter(Column::CreatedAt.lt(expired))
        .exec(db)
        .await?;
    let id = Uuid::now_v7();
    let inserted = idempotency_key::ActiveModel {
        id: Set(id),
        org_id: Set(principal.org_id),
        user_id: Set(principal.user_id()),
        key: Set(key.to_string()),
        request_hash: Set(request_hash.clone()),
        status: Set("PENDING".into()),
        response_status: Set(None),
        response_body: Set(None),
        response_content_type: Set(None),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await;
    match inserted {
        Ok(_) => Ok(Claim::Fresh(id)),
        Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            let existing = Entity::find()
                .filter(Column::UserId.eq(principal.user_id()))
                .filter(Column::Key.eq(key))
                .one(db)
                .await?
                .ok_or_else(|| {
                    AppError::Conflict("the idempotency key was just released; retry".into())
                })?;
            if existing.request_hash != request_hash {
                return Err(AppError::BadUserInput(
                    "this Idempotency-Key was used with a different request".into(),
                ));
            }
            match (
                existing.status.as_str(),
                existing.response_status,
                existing.response_body,
            ) {
                ("DONE", Some(status), Some(body)) => Ok(Claim::Replay(Recorded {
                    status: u16::try_from(status).unwrap_or(200),
                    content_type: existing
                        .response_content_type
                        .unwrap_or_else(|| "application/json".into()),
                    body: body.into_bytes(),
                })),
                _ => Err(AppError::Conflict(
                    "a request with this Idempotency-Key is still running".into(),
                )),
            }
        }
        Err(error) => Err(error.into()),
    }
}

/// Records the response of a claimed request.
pub async fn complete(db: &DatabaseConnection, id: Uuid, response: &Recorded) -> AppResult<()> {
    Entity::update_many()
        .col_expr(Column::Status, Expr::value("DONE"))
        .col_expr(
            Column::ResponseStatus,
            Expr::value(i32::from(response.status)),
        )
        .col_expr(
            Column::ResponseBody,
            Expr::value(String::from_utf8_lossy(&response.body).into_owned()),
        )
        .col_expr(
            Column::ResponseContentType,
            Expr::value(response.content_type.clone()),
        )
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets a claim whose request did not run (refused, rate limited, failed), so a retry runs.
pub async fn release(db: &DatabaseConnection, id: Uuid) -> AppResult<()> {
    Entity::delete_many()
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
