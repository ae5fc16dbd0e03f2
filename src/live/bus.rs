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
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

use crate::error::AppResult;

/// The PostgreSQL channel event writers notify.
pub const CHANNEL: &str = "switchboard_events";

/// The PostgreSQL channel of signals: ephemeral notices (typing) that are never stored.
pub const SIGNAL_CHANNEL: &str = "switchboard_signals";

/// An ephemeral notice for subscribers, never stored: it reaches those connected when it is sent.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Signal {
    /// A user started or stopped typing in a conversation.
    #[serde(rename_all = "camelCase")]
    Typing {
        /// The conversation's organization.
        org_id: uuid::Uuid,
        /// The conversation.
        conversation_id: uuid::Uuid,
        /// Who types.
        user_id: uuid::Uuid,
        /// Typing (`true`) or stopped (`false`).
        typing: bool,
        /// When the indicator lapses unless renewed.
        expires_at: chrono::DateTime<chrono::Utc>,
    },
}

/// Events read per statement by the tailer and by replays.
pub const READ_BATCH: u64 = 500;

/// How often the tailer reads the log without being woken (other writers, lost wake-ups).
const FALLBACK_INTERVAL: Duration = Duration::from_secs(1);

/// The committed events of this database, as they commit.
pub struct EventBus {
    sender: broadcast::Sender<Arc<event::Model>>,
    signals: broadcast::Sender<Arc<Signal>>,
    wake: Notify,
}

impl EventBus {
    /// A bus whose subscribers may fall `capacity` events behind before they lag.
    pub fn new(capacity: usize) -> Arc<Self> {
        let (sender, _) = broadcast::channel(capacity.max(1));
        let (signals, _) = broadcast::channel(capacity.max(1));
        Arc::new(Self {
            sender,
            signals,
            wake: Notify::new(),
        })
    }

    /// Every signal sent from now on (by any instance).
    pub fn subscribe_signals(&self) -> broadcast::Receiver<Arc<Signal>> {
        self.signals.subscribe()
    }

    /// Sends `signal` to the subscribers of every instance: on PostgreSQL by `NOTIFY` (which
    /// this instance's listener hears too), otherwise directly.
    pub async fn signal(&self, db: &DatabaseConnection, signal: Signal) -> AppResult<()> {
        if db.get_database_backend() != DbBackend::Postgres {
            let _ = self.signals.send(Arc::new(signal));
            return Ok(());
        }
        let payload = serde_json::to_string(&signal)
            .map_err(|e| crate::error::AppError::internal(format!("signal: {e}")))?;
        db.execute_raw(sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [SIGNAL_CHANNEL.into(), payload.into()],
        ))
        .await?;
        Ok(())
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
            .listen_all([CHANNEL, SIGNAL_CHANNEL])
            .await
            .map_err(|e| crate::error::AppError::internal(format!("LISTEN: {e}")))?;
        let bus = self.clone();
        Ok(tokio::spawn(async move {
            loop {
                // `recv` reconnects by itself after a lost connection; the tailer's interval
                // read covers what was notified meanwhile.
                match listener.recv().await {
                    Ok(notification) if notification.channel() == SIGNAL_CHANNEL => {
                        match serde_json::from_str::<Signal>(notification.payload()) {
                            Ok(signal) => {
                                let _ = bus.signals.send(Arc::new(signal));
                            }
                            Err(error) => tracing::warn!(%error, "unreadable signal"),
                        }
                    }
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
