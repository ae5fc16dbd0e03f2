//! The servers under test: the real GraphQL server and the plain reference handlers, on the same
//! database connection pool, seeded with one organization.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use sea_orm::DatabaseConnection;
use switchboard::Config;
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
    /// SQL statements run so far on the shared pool (both servers).
    pub statements: Statements,
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

fn app_error(error: AppError) -> anyhow::Error {
    anyhow::anyhow!("{}: {:?}", error.code(), error)
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Builds the app on a fresh database (a SQLite file in a temporary directory unless
/// `database_url` is given), seeds it and starts both servers on `127.0.0.1:0`.
pub fn start(
    runtime: &tokio::runtime::Runtime,
    database_url: Option<String>,
    extra_users: usize,
    contacts: usize,
) -> anyhow::Result<Servers> {
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
    let backend = if config.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let (stop, stop_rx) = watch::channel(false);
    let (env, tasks) = run_on(runtime, async move {
        let app = switchboard::build_app(config)
            .await
            .context("cannot build the app")?;
        let db = app.state.db.clone();
        let statements = Statements(app.state.metrics.clone());
        let owner_token = seed(&db, extra_users).await?;
        if contacts > 0 {
            let owner = switchboard::auth::authenticate(&db, &owner_token)
                .await
                .map_err(app_error)?;
            crate::contacts::seed(&db, &owner, contacts)
                .await
                .context("cannot seed the contacts")?;
        }
        // What the server's periodic refresh (every `sqlite_analyze_minutes`) would have done
        // since the load; measuring before it would measure SQLite's guesses, not the app.
        switchboard::db::refresh_statistics(&db)
            .await
            .context("cannot refresh the statistics")?;

        let graphql_listener = TcpListener::bind("127.0.0.1:0").await?;
        let plain_listener = TcpListener::bind("127.0.0.1:0").await?;
        let graphql = graphql_listener.local_addr()?;
        let plain = plain_listener.local_addr()?;

        let graphql_task = tokio::spawn(app.serve(graphql_listener, stopped(stop_rx.clone())));
        let plain_router =
            switchboard::http::with_middleware(scenario::plain_routes().with_state(db), &[]);
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
            statements,
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
async fn seed(db: &DatabaseConnection, extra_users: usize) -> anyhow::Result<String> {
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
