//! The websocket connections of this instance: a count per API token (the per-token cap) and,
//! for presence, a record of each authenticated connection in the database, removed when the
//! connection ends and living as long as the instance's own record, which the instance renews
//! every heartbeat (one row, whatever the number of connections).
//!
//! A connection holds a [`Lease`] for its whole life; dropping it, however the connection
//! ended (client close, server close, slow consumer, error, task cancelled), frees its place under
//! the cap at once and removes its record. The cap is per instance: a token may hold up to the
//! cap on each instance it reaches.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::service::{self, Connection};
use crate::auth::Principal;
use crate::config::Config;
use crate::error::AppResult;
use crate::live::EventBus;

/// The refusal of a connection over the per-token cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimit {
    /// The cap.
    pub max: usize,
}

impl ConnectionLimit {
    /// What the client is told.
    pub fn message(&self) -> String {
        format!(
            "connection limit reached: at most {} websocket connections per API token",
            self.max
        )
    }
}

#[derive(Default)]
struct Inner {
    per_token: HashMap<Uuid, usize>,
    live: HashMap<Uuid, Connection>,
    /// Live connections whose record could not be written (a database failure): the next
    /// heartbeat writes them.
    unrecorded: HashSet<Uuid>,
}

/// This instance's websocket connections.
pub struct Registry {
    instance_id: Uuid,
    max_per_token: usize,
    grace: Duration,
    ttl: Duration,
    db: DatabaseConnection,
    bus: Arc<EventBus>,
    inner: Mutex<Inner>,
}

/// Longest configurable period: ten years (timestamps plus it stay representable).
const MAX_SECONDS: u64 = 10 * 366 * 24 * 3_600;

fn seconds(value: u64) -> Duration {
    Duration::seconds(i64::try_from(value.min(MAX_SECONDS)).unwrap_or(0))
}

impl Registry {
    /// The registry of a new instance (with a new random id).
    pub fn new(config: &Config, db: DatabaseConnection, bus: Arc<EventBus>) -> Arc<Self> {
        Arc::new(Self {
            instance_id: Uuid::now_v7(),
            max_per_token: config.ws_max_connections_per_token.max(1),
            grace: seconds(config.presence_grace_seconds),
            ttl: seconds(config.presence_connection_ttl_seconds.max(1)),
            db,
            bus,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// This instance's id, as recorded with its connections.
    pub fn instance_id(&self) -> Uuid {
        self.instance_id
    }

    /// The grace period after a user's last connection ended before they go offline.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Connections the token holds on this instance.
    pub fn connections_of_token(&self, token_id: Uuid) -> usize {
        self.inner().per_token.get(&token_id).copied().unwrap_or(0)
    }

    /// A place for one more connection of `token_id`, or the refusal when it holds the cap.
    pub fn acquire(self: &Arc<Self>, token_id: Uuid) -> Result<Lease, ConnectionLimit> {
        let mut inner = self.inner();
        let count = inner.per_token.entry(token_id).or_insert(0);
        if *count >= self.max_per_token {
            return Err(ConnectionLimit {
                max: self.max_per_token,
            });
        }
        *count += 1;
        Ok(Lease {
            registry: self.clone(),
            token_id,
            connection: None,
        })
    }

    fn release(&self, token_id: Uuid, connection: Option<Uuid>) {
        let mut inner = self.inner();
        if let Some(count) = inner.per_token.get_mut(&token_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                inner.per_token.remove(&token_id);
            }
        }
        if let Some(id) = connection {
            inner.live.remove(&id);
            inner.unrecorded.remove(&id);
        }
    }

    async fn disconnected(&self, connection_id: Uuid) {
        match service::disconnect(&self.db, connection_id, Utc::now(), self.grace).await {
            Ok(true) => self.bus.poke(),
            Ok(false) => {}
            Err(error) => tracing::warn!(?error, "cannot record the end of a connection"),
        }
    }

    /// Renews this instance's record, and with it its connections' (recording any connection
    /// whose record is missing: a sweep removed them because the instance was stalled past its
    /// expiry, or writing it failed), then sweeps expired instances and users whose grace
    /// period is over.
    pub async fn heartbeat(&self, now: DateTime<Utc>) -> AppResult<service::Swept> {
        if !self.inner().live.is_empty() {
            let renewed = service::renew(&self.db, self.instance_id, now, self.ttl).await?;
            let missing: Vec<Connection> = if renewed {
                let inner = self.inner();
                inner
                    .unrecorded
                    .iter()
                    .filter_map(|id| inner.live.get(id).copied())
                    .collect()
            } else {
                let recorded = service::connection_ids(&self.db, self.instance_id).await?;
                let inner = self.inner();
                inner
                    .live
                    .values()
                    .filter(|c| !recorded.contains(&c.id))
                    .copied()
                    .collect()
            };
            for connection in missing {
                if !self.inner().live.contains_key(&connection.id) {
                    continue;
                }
                if service::connect(&self.db, &connection, now, self.ttl).await? {
                    self.bus.poke();
                }
                self.inner().unrecorded.remove(&connection.id);
            }
        }
        let swept = service::sweep(&self.db, now, self.grace).await?;
        if swept.offline > 0 {
            self.bus.poke();
        }
        Ok(swept)
    }

    /// Ends the records of every connection this instance holds (on shutdown): their users go
    /// offline after the grace period unless they connect elsewhere.
    pub async fn release_all(&self) {
        let live = {
            let mut inner = self.inner();
            inner.unrecorded.clear();
            inner.live.drain().count()
        };
        if live == 0 {
            return;
        }
        match service::disconnect_instance(&self.db, self.instance_id, Utc::now(), self.grace).await
        {
            Ok(0) => {}
            Ok(_) => self.bus.poke(),
            Err(error) => tracing::warn!(?error, "cannot record the end of the connections"),
        }
    }
}

/// One connection's place under the per-token cap and, once registered, its presence record.
/// Dropping it releases both.
pub struct Lease {
    registry: Arc<Registry>,
    token_id: Uuid,
    connection: Option<Uuid>,
}

impl Lease {
    /// Records the connection of `principal` (whose token this lease counts): the user is
    /// online from now on. A database failure is logged; the next heartbeat records the
    /// connection again.
    pub async fn register(&mut self, principal: &Principal) {
        let registry = &self.registry;
        let connection = Connection {
            id: Uuid::now_v7(),
            org_id: principal.org_id,
            user_id: principal.user_id(),
            token_id: self.token_id,
            instance_id: registry.instance_id,
        };
        self.connection = Some(connection.id);
        let recorded =
            match service::connect(&registry.db, &connection, Utc::now(), registry.ttl).await {
                Ok(true) => {
                    registry.bus.poke();
                    true
                }
                Ok(false) => true,
                Err(error) => {
                    tracing::warn!(?error, "cannot record a connection");
                    false
                }
            };
        // Known to the heartbeat only once recorded (or failed), so it never records it a
        // second time.
        let mut inner = registry.inner();
        inner.live.insert(connection.id, connection);
        if !recorded {
            inner.unrecorded.insert(connection.id);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.registry.release(self.token_id, self.connection);
        if let Some(id) = self.connection.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let registry = self.registry.clone();
            runtime.spawn(async move { registry.disconnected(id).await });
        }
    }
}
