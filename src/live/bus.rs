//! The event bus: committed events of the event log, in sequence order, to every subscriber of
//! this instance.
//!
//! One tailer per instance reads the log after the last sequence it delivered and broadcasts each
//! row. It wakes when told that something committed: on PostgreSQL by `LISTEN` (the event's
//! write transaction sends `NOTIFY`, which PostgreSQL delivers only at commit, to every instance), on
//! SQLite (one instance) by [`EventBus::poke`] after a write finished. A slow interval read covers
//! anything else. Events are therefore published only after commit.
//!
//! Order without gaps: SQLite has one writer, so sequence order is commit order. On PostgreSQL
//! sequence values are taken at insert and transactions may commit out of that order, so
//! [`crate::events::record`] takes a transaction-scoped advisory lock before inserting: event
//! writers commit one at a time, in sequence order. A reader that saw sequence `n` has seen every
//! event before it.

use std::sync::Arc;
use std::time::Duration;

use entity::event;
use sea_orm::{
    DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

use crate::error::AppResult;

/// The PostgreSQL channel event writers notify.
pub const CHANNEL: &str = "switchboard_events";

/// Events read per statement by the tailer and by replays.
pub const READ_BATCH: u64 = 500;

/// How often the tailer reads the log without being woken (other writers, lost wake-ups).
const FALLBACK_INTERVAL: Duration = Duration::from_secs(1);

/// The committed events of this database, as they commit.
pub struct EventBus {
    sender: broadcast::Sender<Arc<event::Model>>,
    wake: Notify,
}

impl EventBus {
    /// A bus whose subscribers may fall `capacity` events behind before they lag.
    pub fn new(capacity: usize) -> Arc<Self> {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Arc::new(Self {
            sender,
            wake: Notify::new(),
        })
    }

    /// Tells the tailer that events may have committed.
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    /// Every event committed from now on, in sequence order. A receiver that falls more than
    /// the bus's capacity behind gets `Lagged`.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<event::Model>> {
        self.sender.subscribe()
    }

    /// Starts the tailer (and on PostgreSQL its listener) from the log's current end.
    pub async fn start(self: &Arc<Self>, db: DatabaseConnection) -> AppResult<Vec<JoinHandle<()>>> {
        let mut tasks = Vec::new();
        if db.get_database_backend() == DbBackend::Postgres {
            tasks.push(self.listen(&db).await?);
        }
        let last = last_seq(&db).await?;
        let bus = self.clone();
        tasks.push(tokio::spawn(async move { bus.tail(db, last).await }));
        Ok(tasks)
    }

    async fn listen(self: &Arc<Self>, db: &DatabaseConnection) -> AppResult<JoinHandle<()>> {
        use sea_orm::sqlx::postgres::PgListener;
        let pool = db.get_postgres_connection_pool().clone();
        let mut listener = PgListener::connect_with(&pool)
            .await
            .map_err(|e| crate::error::AppError::internal(format!("LISTEN: {e}")))?;
        listener
            .listen(CHANNEL)
            .await
            .map_err(|e| crate::error::AppError::internal(format!("LISTEN: {e}")))?;
        let bus = self.clone();
        Ok(tokio::spawn(async move {
            loop {
                // `recv` reconnects by itself after a lost connection; the tailer's interval
                // read covers what was notified meanwhile.
                match listener.recv().await {
                    Ok(_) => bus.poke(),
                    Err(error) => {
                        tracing::warn!(%error, "event listener");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        bus.poke();
                    }
                }
            }
        }))
    }

    async fn tail(&self, db: DatabaseConnection, mut last: i64) {
        loop {
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(FALLBACK_INTERVAL) => {}
            }
            loop {
                match after(&db, None, last, READ_BATCH).await {
                    Ok(rows) => {
                        let full = rows.len() as u64 == READ_BATCH;
                        for row in rows {
                            last = row.seq;
                            // No receivers is not an error: nobody listens yet.
                            let _ = self.sender.send(Arc::new(row));
                        }
                        if !full {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = ?error, "reading the event log");
                        break;
                    }
                }
            }
        }
    }
}

/// The last committed sequence (0 for an empty log).
pub async fn last_seq(db: &DatabaseConnection) -> AppResult<i64> {
    let last: Option<Option<i64>> = event::Entity::find()
        .select_only()
        .expr(Expr::col(event::Column::Seq).max())
        .into_tuple()
        .one(db)
        .await?;
    Ok(last.flatten().unwrap_or(0))
}

/// Committed events after `seq`, in order, at most `limit`, of `org_id` or of every organization.
pub async fn after(
    db: &DatabaseConnection,
    org_id: Option<uuid::Uuid>,
    seq: i64,
    limit: u64,
) -> AppResult<Vec<event::Model>> {
    use sea_orm::ColumnTrait;
    let mut select = event::Entity::find().filter(event::Column::Seq.gt(seq));
    if let Some(org_id) = org_id {
        select = select.filter(event::Column::OrgId.eq(org_id));
    }
    Ok(select
        .order_by_asc(event::Column::Seq)
        .limit(limit)
        .all(db)
        .await?)
}
