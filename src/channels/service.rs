//! Business rules of channels, over a transaction.

use entity::channel;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::error::{AppError, AppResult, UserErrorCode};
use crate::tenancy;

/// The channel `channel_id` of `org_id` if it is active. Unknown (or another organization's):
/// `NOT_FOUND` at `field`; archived: `INVALID_STATE` at `field`.
pub async fn active_channel<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    channel_id: Uuid,
    field: &str,
) -> AppResult<channel::Model> {
    let channel = tenancy::by_id::<channel::Entity>(org_id, channel_id)
        .one(conn)
        .await?
        .ok_or_else(|| AppError::invalid(field, UserErrorCode::NotFound, "no such channel"))?;
    if channel.status != "ACTIVE" {
        return Err(AppError::invalid(
            field,
            UserErrorCode::InvalidState,
            "the channel is archived",
        ));
    }
    Ok(channel)
}
