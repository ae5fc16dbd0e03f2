//! Database connection, migrations and write transactions.
//!
//! SQLite runs in WAL mode with foreign keys on, a busy timeout, and `BEGIN IMMEDIATE` for writes so
//! that concurrent writers queue on the lock instead of failing on upgrade. PostgreSQL needs nothing
//! special. The same code runs on both.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::LikeExpr;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};

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
            // Reads pages through a memory map instead of copying each into the connection's
            // cache with read(2): large read queries (inbox pages, counts) cost less CPU.
            .pragma("mmap_size", MMAP_BYTES.to_string())
    });
    Ok(Database::connect(options).await?)
}

/// Bytes of the SQLite database file each connection maps into memory (address space, not
/// resident memory: the pages are the operating system's page cache, shared by all connections).
const MMAP_BYTES: u64 = 1 << 30;

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
pub async fn begin_write(db: &DatabaseConnection) -> AppResult<DatabaseTransaction> {
    let backend = db.get_database_backend();
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
    Ok(txn)
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
