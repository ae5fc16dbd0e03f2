//! Switchboard: a self-hosted communications platform with one GraphQL API.
//!
//! [`build_app`] is the one way to assemble the server; `main` and the tests both use it.

#![recursion_limit = "256"]

#[macro_use]
mod macros;

pub mod activity;
pub mod anonymization;
pub mod attachments;
pub mod auth;
pub mod broadcasts;
pub mod call_campaigns;
pub mod calls;
pub mod channels;
pub mod cli;
pub mod clock;
pub mod config;
pub mod contact_groups;
pub mod contacts;
pub mod conversations;
pub mod custom_attributes;
pub mod db;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod idempotency;
pub mod ingest;
pub mod jobs;
pub mod live;
pub mod messages;
pub mod metrics;
pub mod notes;
pub mod organizations;
pub mod presence;
pub mod providers;
pub mod queues;
pub mod ratelimit;
pub mod responders;
pub mod rooms;
pub mod routing;
pub mod search;
pub mod tags;
pub mod teams;
pub mod telemetry;
pub mod templates;
pub mod tenancy;
pub mod tokens;
pub mod users;
pub mod validate;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

pub use config::Config;
use graphql::AppSchema;
use http::metrics::Metrics;
use ratelimit::RateLimiter;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database pool.
    pub db: DatabaseConnection,
    /// The configuration.
    pub config: Arc<Config>,
    /// The GraphQL schema.
    pub schema: AppSchema,
    /// Per-token cost budgets.
    pub rate_limiter: Arc<RateLimiter>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Committed events, as they commit, for subscriptions.
    pub bus: Arc<live::EventBus>,
    /// The clock routing goes by (stopped and moved by tests).
    pub clock: Arc<clock::Clock>,
    /// Shared subscriptions (identical subscriptions execute once).
    pub cohorts: Arc<live::cohort::Cohorts>,
    /// This instance's websocket connections (per-token cap, presence records).
    pub presence: Arc<presence::Registry>,
    /// Job handlers by kind (tests register their own) and the job runner's wake-up call.
    pub jobs: Arc<jobs::Jobs>,
}

/// An assembled server, not yet listening.
pub struct App {
    /// Shared state (database, schema, config).
    pub state: AppState,
    /// All routes with their middleware.
    pub router: Router,
    /// Background tasks of the event bus, stopped when the server stops.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The job runner's own pool.
    jobs_db: DatabaseConnection,
}

/// Connects to the database, applies migrations and assembles the router.
pub async fn build_app(config: Config) -> anyhow::Result<App> {
    let config = Arc::new(config);
    let mut db = db::connect(&config).await?;
    db::migrate(&db).await?;
    db::refresh_statistics(&db).await?;
    let metrics = Arc::new(Metrics::default());
    let (statements, failures) = (
        metrics.db_statements.clone(),
        metrics.db_statement_errors.clone(),
    );
    db.set_metric_callback(move |info| {
        statements.inc();
        if info.failed {
            failures.inc();
        }
    });
    let rate_limiter = Arc::new(RateLimiter::new(config.rate_limit_per_minute));
    let schema = graphql::build_schema(config.clone(), rate_limiter.clone());
    let bus = live::EventBus::new(config.event_bus_capacity);
    // The tailer reads on its own small pool: its reads are not the requests' statements.
    let bus_db = db::connect(&Config {
        db_max_connections: 2,
        ..(*config).clone()
    })
    .await?;
    let mut tasks = bus
        .start(bus_db.clone())
        .await
        .map_err(|e| anyhow::anyhow!("starting the event bus: {e:?}"))?;
    let presence = presence::Registry::new(&config, db.clone(), bus.clone());
    // The job runner works on its own pool too: two per worker (its handler's and its lease
    // renewals'), one to claim.
    let jobs_db = if config.job_workers == 0 {
        bus_db.clone()
    } else {
        db::connect(&Config {
            db_max_connections: u32::try_from(config.job_workers * 2 + 1).unwrap_or(u32::MAX),
            ..(*config).clone()
        })
        .await?
    };
    let jobs = Arc::new(jobs::Jobs::default());
    let clock: Arc<clock::Clock> = Default::default();
    let providers = Arc::new(providers::Providers::new(config.clone()));
    messages::delivery::register(&jobs, providers.clone());
    calls::placement::register(&jobs, providers);
    webhooks::dispatch::register(&jobs);
    broadcasts::service::register(&jobs);
    call_campaigns::dialer::register(&jobs);
    rooms::service::register(&jobs);
    tasks.push(
        webhooks::dispatch::Waker {
            db: bus_db.clone(),
            bus: bus.clone(),
            jobs: jobs.clone(),
            clock: clock.clone(),
        }
        .start(),
    );
    let state = AppState {
        db,
        config,
        schema,
        rate_limiter,
        metrics,
        bus,
        cohorts: Default::default(),
        clock,
        presence,
        jobs,
    };
    // The router works on the bus's small pool too: its reads are not the requests'.
    tasks.extend(routing::start(
        state.clone(),
        bus_db,
        Duration::from_secs(state.config.routing_sweep_seconds),
    ));
    let router = http::router(state.clone());
    Ok(App {
        state,
        router,
        tasks,
        jobs_db,
    })
}

impl App {
    /// Serves on `listener` and runs jobs until `shutdown` completes, then drains in-flight
    /// requests and running jobs for at most the configured grace period (jobs still running
    /// then are released). The job runner lives inside this future: aborting it stops every
    /// running job at once, as a crash would.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let grace = Duration::from_secs(self.state.config.shutdown_grace_seconds);
        let statistics = self.refresh_statistics_periodically();
        let pending = self.expire_pending_periodically();
        let presence = self.presence_heartbeat_periodically();
        let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
        let (jobs_stop, jobs_stop_rx) = tokio::sync::watch::channel(false);
        let jobs_stop = Arc::new(jobs_stop);
        let stop_jobs = jobs_stop.clone();
        let runner = jobs::runner::Runner {
            jobs: self.state.jobs.clone(),
            db: self.jobs_db.clone(),
            config: self.state.config.clone(),
            clock: self.state.clock.clone(),
            bus: self.state.bus.clone(),
        };
        let server = axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            stop_jobs.send_replace(true);
            let _ = stopped_tx.send(());
        });
        let drain = async move {
            let _ = stopped_rx.await;
            tokio::time::sleep(grace).await;
        };
        let http = async {
            let result = tokio::select! {
                result = server => result,
                () = drain => {
                    tracing::warn!("shutdown grace period over; dropping open connections");
                    Ok(())
                }
            };
            // However serving ended, the runner stops claiming now.
            jobs_stop.send_replace(true);
            result
        };
        let (served, ()) = tokio::join!(http, runner.run(jobs_stop_rx));
        served?;
        for task in [statistics, pending, presence]
            .into_iter()
            .flatten()
            .chain(self.tasks)
        {
            task.abort();
        }
        self.state.presence.release_all().await;
        self.jobs_db.close().await?;
        self.state.db.clone().close().await?;
        Ok(())
    }

    /// Every `pending_sweep_seconds`, reopens pending conversations whose time has come.
    fn expire_pending_periodically(&self) -> Option<tokio::task::JoinHandle<()>> {
        let seconds = self.state.config.pending_sweep_seconds;
        if seconds == 0 {
            return None;
        }
        let db = self.state.db.clone();
        Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(seconds));
            loop {
                ticks.tick().await;
                match conversations::service::expire_pending(&db, chrono::Utc::now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(reopened = n, "pending conversations expired"),
                    Err(error) => tracing::warn!(?error, "cannot expire pending conversations"),
                }
            }
        }))
    }

    /// Every `presence_heartbeat_seconds`, renews this instance's connection records and sweeps
    /// expired connections and users whose grace period is over.
    fn presence_heartbeat_periodically(&self) -> Option<tokio::task::JoinHandle<()>> {
        let seconds = self.state.config.presence_heartbeat_seconds;
        if seconds == 0 {
            return None;
        }
        if self.state.config.presence_connection_ttl_seconds <= seconds {
            tracing::warn!(
                "presence connection TTL is not longer than the heartbeat: connections of this \
                 instance may expire between renewals"
            );
        }
        let registry = self.state.presence.clone();
        Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(seconds));
            loop {
                ticks.tick().await;
                match registry.heartbeat(chrono::Utc::now()).await {
                    Ok(swept) if swept.expired > 0 || swept.offline > 0 => tracing::info!(
                        expired = swept.expired,
                        offline = swept.offline,
                        "presence swept"
                    ),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(?error, "presence heartbeat failed"),
                }
            }
        }))
    }

    /// On SQLite, refreshes the planner statistics every `sqlite_analyze_minutes` while serving.
    fn refresh_statistics_periodically(&self) -> Option<tokio::task::JoinHandle<()>> {
        let minutes = self.state.config.sqlite_analyze_minutes;
        if minutes == 0 || self.state.db.get_database_backend() != sea_orm::DbBackend::Sqlite {
            return None;
        }
        let db = self.state.db.clone();
        Some(tokio::spawn(async move {
            let period = Duration::from_secs(minutes.saturating_mul(60));
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                ticks.tick().await;
                if let Err(error) = db::refresh_statistics(&db).await {
                    tracing::warn!(%error, "cannot refresh SQLite statistics");
                }
            }
        }))
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
