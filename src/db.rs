//! Database connection, migrations and write transactions.
//!
//! SQLite runs in WAL mode with foreign keys on, a busy timeout, and `BEGIN IMMEDIATE` for writes so
//! that concurrent writers queue on the lock instead of failing on upgrade. PostgreSQL needs nothing
//! special. The same code runs on both.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::LikeExpr;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, ExecResult, QueryResult, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{Config, SqliteSync};
use crate::error::AppResult;

/// Opens the pool configured for the backend.
pub async fn connect(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let url = config.normalized_database_url();
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(config.db_max_connections.max(1))
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10));
    if config.db_slow_statement_ms == 0 {
        options.sqlx_logging(false);
    } else {
        // Only slow statements: every statement's own line stays off.
        options
            .sqlx_logging(true)
            .sqlx_logging_level(log::LevelFilter::Off)
            .sqlx_slow_statements_logging_settings(
                log::LevelFilter::Warn,
                Duration::from_millis(config.db_slow_statement_ms),
            );
    }
    let mmap_mb = config.sqlite_mmap_mb;
    let synchronous = match config.sqlite_synchronous {
        SqliteSync::Normal => SqliteSynchronous::Normal,
        SqliteSync::Full => SqliteSynchronous::Full,
    };
    options.map_sqlx_sqlite_opts(move |opts| {
        opts.journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .synchronous(synchronous)
            .create_if_missing(true)
            // `--sqlite-mmap-mb`: see there.
            .pragma("mmap_size", (mmap_mb << 20).to_string())
    });
    Ok(Database::connect(options).await?)
}

/// Applies all pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await?;
    Ok(())
}

/// Refreshes SQLite's query planner statistics: `ANALYZE` over a sample of at most 1,000 rows per
/// index (about 0.1 s with 100,000 contacts). Without statistics SQLite assumes `org_id = ?` picks
/// a few rows, so for `org_id = ? AND id IN (…page ids…)` it prefers an organization index over
/// the primary key and reads the whole organization. PostgreSQL keeps its own statistics
/// (autovacuum); there this does nothing.
///
/// The bundled SQLite is built with the query planner stability guarantee (`.cargo/config.toml`):
/// plans never depend on bound values, so statistics never make a prepared statement re-plan.
pub async fn refresh_statistics(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    if db.get_database_backend() != DbBackend::Sqlite {
        return Ok(());
    }
    // In this process's turn to write (ANALYZE writes its tables at the end): outside the turns
    // it met a long write transaction (a bulk seed) in SQLite's busy handler and one of the two
    // failed with "database is locked".
    let _turn = write_turn(db)
        .await
        .map_err(|e| sea_orm::DbErr::Custom(format!("{e:?}")))?;
    // One connection throughout: the pragma is per connection.
    let txn = db.begin().await?;
    txn.execute_unprepared("PRAGMA analysis_limit = 1000")
        .await?;
    txn.execute_unprepared("ANALYZE").await?;
    txn.commit().await
}

/// The transaction-scoped advisory lock PostgreSQL write transactions take first.
const WRITE_LOCK: i64 = 0x5357_4254_4f41_5244; // "SWBTOARD"

/// Starts a write transaction: `BEGIN IMMEDIATE` on SQLite (one writer at a time); on PostgreSQL a
/// transaction that first takes a transaction-scoped advisory lock, so write transactions commit
/// one at a time too. That makes the event log's sequence order its commit order on both
/// databases, which lets event streams resume after a sequence number without gaps (see
/// [`crate::live::bus`]). Taking it first, before any row lock, means it cannot deadlock. The same
/// statement queues a `NOTIFY` for the event bus, which PostgreSQL delivers to every instance only
/// if and when the transaction commits.
///
/// On SQLite the transaction first waits for this process's turn to write ([`write_turn`]), so
/// writers take the lock in the order they asked for it.
pub async fn begin_write(db: &DatabaseConnection) -> AppResult<WriteTxn> {
    let backend = db.get_database_backend();
    let turn = write_turn(db).await?;
    let options = TransactionOptions {
        sqlite_transaction_mode: (backend == DbBackend::Sqlite)
            .then_some(SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    let txn = db.begin_with_options(options).await?;
    if backend == DbBackend::Postgres {
        txn.execute_raw(Statement::from_string(
            backend,
            format!(
                "SELECT pg_advisory_xact_lock({WRITE_LOCK}), pg_notify('{}', '')",
                crate::live::bus::CHANNEL
            ),
        ))
        .await?;
    }
    Ok(WriteTxn { txn, _turn: turn })
}

/// How long a writer waits for its turn before giving up, as SQLite's busy timeout.
const WRITE_TURN_TIMEOUT: Duration = Duration::from_secs(10);

/// The turns of each SQLite database file this process writes to.
static WRITE_TURNS: LazyLock<Mutex<HashMap<PathBuf, Arc<Semaphore>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Waits for this process's turn to write to a SQLite database (`None` on PostgreSQL, whose
/// advisory lock queues writers itself), first come first served; the turn lasts while the
/// permit is held.
///
/// SQLite lets one writer in at a time, and a writer that finds the lock taken sleeps in its
/// busy handler (1, 2, 5, … 100 ms) and tries again: it does not queue. Under a steady stream of
/// writes (a broadcast's deliveries and their jobs) a waiting writer can be passed over again
/// and again until its busy timeout ends in "database is locked", while the lock often sits free
/// during the sleeps. Writers of one process wait here instead, in order, and find the lock free
/// when their turn comes. Writers of other processes on the same file still meet the busy
/// handler. Transactions from [`begin_write`] and the job runner's claims, lease renewals,
/// outcomes and sweeps take turns; a rare write outside them meets the busy handler as before.
pub async fn write_turn(db: &DatabaseConnection) -> AppResult<Option<OwnedSemaphorePermit>> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return Ok(None);
    }
    let file = db
        .get_sqlite_connection_pool()
        .connect_options()
        .get_filename()
        .to_path_buf();
    let turns = {
        let mut all = WRITE_TURNS
            .lock()
            .map_err(|_| DbErr::Custom("the write turns' lock is poisoned".into()))?;
        all.entry(file)
            .or_insert_with(|| Arc::new(Semaphore::new(1)))
            .clone()
    };
    match tokio::time::timeout(WRITE_TURN_TIMEOUT, turns.acquire_owned()).await {
        Ok(Ok(permit)) => Ok(Some(permit)),
        Ok(Err(_)) => Err(DbErr::Custom("the write turns were closed".into()).into()),
        Err(_) => Err(DbErr::Custom(format!(
            "waited {} s for a turn to write: database is locked",
            WRITE_TURN_TIMEOUT.as_secs()
        ))
        .into()),
    }
}

/// Runs the write statement(s) of `write` in this process's turn to write ([`write_turn`]).
pub async fn in_write_turn<T>(
    db: &DatabaseConnection,
    write: impl Future<Output = AppResult<T>>,
) -> AppResult<T> {
    let _turn = write_turn(db).await?;
    write.await
}

/// A write transaction from [`begin_write`]; on SQLite it holds the process's turn to write
/// until it commits, rolls back or is dropped.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    _turn: Option<OwnedSemaphorePermit>,
}

impl WriteTxn {
    /// Commits, then gives the turn to the next writer.
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    /// Rolls back, then gives the turn to the next writer.
    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.txn.support_returning()
    }
}

/// Connections in the pool: `(size, idle)`.
pub fn pool_stats(db: &DatabaseConnection) -> (u32, usize) {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => (0, 0),
    }
}

/// A case-insensitive "contains" pattern for `LOWER(column) LIKE …`, with the user's `%`, `_` and
/// backslash taken literally.
pub fn like_pattern(search: &str) -> LikeExpr {
    let escaped = search
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    LikeExpr::new(format!("%{escaped}%")).escape('\\')
}
