//! A channel's send rate (messages per second, as Text Request throttles), held across workers
//! and instances: `send_throttles` keeps each channel's next free send slot, and every send
//! takes the next slot in a write transaction (one writer at a time on both databases), so two
//! sends of a channel are never closer than `1 / rate` seconds apart.

use chrono::{DateTime, Duration, Utc};
use entity::send_throttle;
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, IntoActiveModel, Set};
use uuid::Uuid;

use crate::db;
use crate::error::AppResult;

/// The time between two sends at `rate` messages per second (whole microseconds, rounded up).
pub fn interval(rate: f64) -> Duration {
    let rate = if rate.is_finite() && rate > 0.0 {
        rate
    } else {
        1.0
    };
    Duration::microseconds((1_000_000.0 / rate).ceil() as i64)
}

/// Takes the channel's next send slot at `now` or later; the caller sends at that time.
pub async fn reserve(
    db: &DatabaseConnection,
    channel_id: Uuid,
    rate: f64,
    now: DateTime<Utc>,
) -> AppResult<DateTime<Utc>> {
    let txn = db::begin_write(db).await?;
    let current = send_throttle::Entity::find_by_id(channel_id)
        .one(&txn)
        .await?;
    let slot = current.as_ref().map_or(now, |c| c.next_at.max(now));
    let next_at = slot + interval(rate);
    match current {
        Some(current) => {
            let mut model = current.into_active_model();
            model.next_at = Set(next_at);
            model.update(&txn).await?;
        }
        None => {
            send_throttle::ActiveModel {
                channel_id: Set(channel_id),
                next_at: Set(next_at),
            }
            .insert(&txn)
            .await?;
        }
    }
    txn.commit().await?;
    Ok(slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_follow_the_rate() {
        assert_eq!(interval(1.0), Duration::seconds(1));
        assert_eq!(interval(5.0), Duration::milliseconds(200));
        assert_eq!(interval(3.0), Duration::microseconds(333_334));
        assert_eq!(interval(0.0), Duration::seconds(1));
    }
}
