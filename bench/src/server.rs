//! The servers under test: the real GraphQL server and the plain reference handlers, on the same
//! database connection pool, seeded with one organization.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use switchboard::Config;
use switchboard::config::SqliteSync;
use switchboard::error::AppError;
use switchboard::organizations::service::NewOrganization;
use switchboard::users::service::NewUser;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::pin::run_on;
use crate::scenario;

/// What the scenarios may use.
#[derive(Clone, Debug)]
pub struct Env {
    /// Address of the GraphQL server (`POST /graphql`).
    pub graphql: SocketAddr,
    /// Address of the plain reference server.
    pub plain: SocketAddr,
    /// The owner's API token secret.
    pub owner_token: String,
    /// Users in the organization, the owner included.
    pub users: usize,
    /// Contacts in the organization.
    pub contacts: usize,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The durability settings the database runs with, as read back from it (SQLite:
    /// `journal_mode` and `synchronous`; PostgreSQL: `synchronous_commit` and `fsync`).
    pub durability: String,
    /// SQL statements run so far on the shared pool (both servers).
    pub statements: Statements,
    /// The pool both servers use.
    pub db: DatabaseConnection,
    /// The organization.
    pub org_id: uuid::Uuid,
    /// The owner (whose token the requests carry).
    pub owner_id: uuid::Uuid,
    /// What the inbox seed created, when it ran.
    pub inbox: Option<Arc<crate::inbox::Fixture>>,
    /// Seconds seeding the contacts took.
    pub contacts_seed_seconds: f64,
    /// Seconds refreshing the planner statistics took after seeding.
    pub statistics_seconds: f64,
}

/// Reads the app's SQL statement counter (`switchboard_db_statements_total`).
#[derive(Clone)]
pub struct Statements(std::sync::Arc<switchboard::http::metrics::Metrics>);

impl Statements {
    /// Statements executed so far.
    pub fn get(&self) -> u64 {
        self.0.db_statements.get()
    }
}

impl std::fmt::Debug for Statements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Statements({})", self.get())
    }
}

/// Both servers, running on the server runtime.
pub struct Servers {
    /// What the scenarios may use.
    pub env: Env,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    /// Keeps the SQLite file alive until the servers are stopped.
    _dir: Option<tempfile::TempDir>,
}

pub fn app_error(error: AppError) -> anyhow::Error {
    anyhow::anyhow!("{}: {:?}", error.code(), error)
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// What to start and seed.
#[derive(Clone, Debug)]
pub struct Options {
    /// The database (a fresh SQLite file in a temporary directory when `None`).
    pub database_url: Option<String>,
    /// SQLite `synchronous` level; the server's default when `None`.
    pub sqlite_synchronous: Option<SqliteSync>,
    /// Users besides the owner.
    pub extra_users: usize,
    /// Contacts for the `contacts` scenario.
    pub contacts: usize,
    /// Conversations and messages per conversation for `inbox` and `send`.
    pub inbox: Option<(usize, usize)>,
}

/// The durability settings in effect, read from the database.
pub async fn durability(db: &DatabaseConnection) -> anyhow::Result<String> {
    let value = |sql: &'static str, column: &'static str| {
        let db = db.clone();
        async move {
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    sql,
                ))
                .await?
                .context("no row")?;
            let text = match row.try_get::<String>("", column) {
                Ok(text) => text,
                Err(_) => row.try_get::<i64>("", column)?.to_string(),
            };
            anyhow::Ok(text)
        }
    };
    Ok(match db.get_database_backend() {
        DbBackend::Postgres => format!(
            "synchronous_commit={}, fsync={}",
            value("SHOW synchronous_commit", "synchronous_commit").await?,
            value("SHOW fsync", "fsync").await?
        ),
        _ => {
            let level = match value("PRAGMA synchronous", "synchronous").await?.as_str() {
                "0" => "OFF".to_string(),
                "1" => "NORMAL".to_string(),
                "2" => "FULL".to_string(),
                "3" => "EXTRA".to_string(),
                other => other.to_string(),
            };
            format!(
                "journal_mode={}, synchronous={level}",
                value("PRAGMA journal_mode", "journal_mode").await?
            )
        }
    })
}

/// Builds the app on a fresh database (a SQLite file in a temporary directory unless
/// `database_url` is given), seeds it and starts both servers on `127.0.0.1:0`.
pub fn start(runtime: &tokio::runtime::Runtime, options: Options) -> anyhow::Result<Servers> {
    let Options {
        database_url,
        sqlite_synchronous,
        extra_users,
        contacts,
        inbox,
    } = options;
    let (dir, url) = match database_url {
        Some(url) => (None, url),
        None => {
            let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
            let path = dir.path().join("bench.db");
            let path = path
                .to_str()
                .context("the temporary directory's path is not UTF-8")?
                .to_string();
            (Some(dir), path)
        }
    };
    let mut config = Config::with_database(url);
    config.rate_limit_per_minute = 0;
    config.demo = false;
    config.shutdown_grace_seconds = 1;
    if let Some(level) = sqlite_synchronous {
        config.sqlite_synchronous = level;
    }
    let backend = if config.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let (stop, stop_rx) = watch::channel(false);
    let (env, tasks) = run_on(runtime, async move {
        // Seeding runs on a first instance of the app, which is then shut down: the serving
        // instance opens its pool on a database that already holds the data and its planner
        // statistics, as a server (re)started on it does. On SQLite `ANALYZE` updates only the
        // planner of the connection that runs it; connections opened before keep the plans of
        // an empty database until they are recycled, which measures a stale pool, not the app.
        let app = switchboard::build_app(config.clone())
            .await
            .context("cannot build the app")?;
        let db = app.state.db.clone();
        let owner_token = seed(&db, extra_users).await?;
        let owner = switchboard::auth::authenticate(&db, &owner_token)
            .await
            .map_err(app_error)?;
        let started = Instant::now();
        if contacts > 0 {
            crate::contacts::seed(&db, &owner, contacts)
                .await
                .context("cannot seed the contacts")?;
        }
        let contacts_seed_seconds = started.elapsed().as_secs_f64();
        let inbox = match inbox {
            Some((conversations, per_conversation)) => Some(Arc::new(
                crate::inbox::seed(&db, &owner, conversations, per_conversation)
                    .await
                    .context("cannot seed the inbox")?,
            )),
            None => None,
        };
        // What the server's periodic refresh (every `sqlite_analyze_minutes`) would have done
        // since the load, and PostgreSQL's autovacuum soon after it; measuring before it would
        // measure the planner's guesses, not the app.
        let started = Instant::now();
        switchboard::db::refresh_statistics(&db)
            .await
            .context("cannot refresh the statistics")?;
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("ANALYZE")
                .await
                .context("cannot analyze")?;
        }
        let statistics_seconds = started.elapsed().as_secs_f64();
        drop(app);
        db.close().await.context("cannot close the seeding pool")?;

        let app = switchboard::build_app(config)
            .await
            .context("cannot build the app")?;
        let db = app.state.db.clone();
        let statements = Statements(app.state.metrics.clone());
        let durability = durability(&db).await?;

        let graphql_listener = TcpListener::bind("127.0.0.1:0").await?;
        let plain_listener = TcpListener::bind("127.0.0.1:0").await?;
        let graphql = graphql_listener.local_addr()?;
        let plain = plain_listener.local_addr()?;

        let graphql_task = tokio::spawn(app.serve(graphql_listener, stopped(stop_rx.clone())));
        let plain_router = switchboard::http::with_middleware(
            scenario::plain_routes().with_state(db.clone()),
            &[],
        );
        let plain_task = tokio::spawn(async move {
            axum::serve(
                plain_listener,
                plain_router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stopped(stop_rx))
            .await
            .context("the plain server failed")
        });
        let env = Env {
            graphql,
            plain,
            owner_token,
            users: extra_users + 1,
            contacts,
            backend,
            durability,
            statements,
            db,
            org_id: owner.org_id,
            owner_id: owner.user_id(),
            inbox,
            contacts_seed_seconds,
            statistics_seconds,
        };
        Ok((env, vec![graphql_task, plain_task]))
    })?;
    Ok(Servers {
        env,
        stop,
        tasks,
        _dir: dir,
    })
}

/// Creates an organization with its owner and `extra_users` agents; returns the owner's token.
pub async fn seed(db: &DatabaseConnection, extra_users: usize) -> anyhow::Result<String> {
    // Unique per run, so that repeated runs against one PostgreSQL database do not collide.
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let created = switchboard::organizations::service::create_with_owner(
        db,
        NewOrganization {
            name: format!("Bench {nanos}"),
            slug: None,
            timezone: None,
            locale: None,
            owner_email: "owner@bench.example.com".into(),
            owner_name: Some("Bench Owner".into()),
        },
    )
    .await
    .map_err(app_error)
    .context("cannot create the organization")?;
    let txn = switchboard::db::begin_write(db).await.map_err(app_error)?;
    for i in 0..extra_users {
        switchboard::users::service::insert(
            &txn,
            created.organization.id,
            Some(created.owner.id),
            NewUser {
                email: format!("agent{i}@bench.example.com"),
                display_name: Some(format!("Agent {i}")),
                ..Default::default()
            },
        )
        .await
        .map_err(app_error)
        .context("cannot create a user")?;
    }
    txn.commit().await?;
    Ok(created.owner_token)
}

impl Servers {
    /// Stops both servers and waits (a few seconds at most) for them to finish.
    pub fn stop(self, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let tasks = self.tasks;
        run_on(runtime, async move {
            for task in tasks {
                tokio::time::timeout(Duration::from_secs(5), task)
                    .await
                    .context("a server did not stop in time")?
                    .context("a server panicked")??;
            }
            Ok(())
        })
    }
}
