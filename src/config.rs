//! One typed configuration struct, filled from command-line flags and `SWITCHBOARD_*` environment
//! variables. Every default is documented here and in the README.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgAction, Args, ValueEnum};

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// SQLite `synchronous` setting (ignored on PostgreSQL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SqliteSync {
    /// Durable against application crashes; the last commits may be lost on power failure (WAL).
    Normal,
    /// Every commit reaches the disk before it returns; about six times fewer writes per second.
    Full,
}

/// Server configuration.
#[derive(Args, Clone, Debug)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Database: a SQLite file path, a `sqlite://` URL or a `postgres://` URL.
    #[arg(
        long,
        env = "SWITCHBOARD_DATABASE_URL",
        default_value = "switchboard.db"
    )]
    pub database_url: String,

    /// Maximum database connections in the pool.
    #[arg(long, env = "SWITCHBOARD_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// Statements taking longer than this many milliseconds are logged (a warning with the SQL,
    /// its rows and its time, target `sqlx::query`); 0 logs none.
    #[arg(long, env = "SWITCHBOARD_DB_SLOW_STATEMENT_MS", default_value_t = 1000)]
    pub db_slow_statement_ms: u64,

    /// SQLite durability (`normal` or `full`).
    #[arg(long, env = "SWITCHBOARD_SQLITE_SYNCHRONOUS", value_enum, default_value_t = SqliteSync::Normal)]
    pub sqlite_synchronous: SqliteSync,

    /// MiB of the SQLite database file each connection reads through a memory map (`mmap_size`;
    /// address space, not resident memory: the pages are the operating system's page cache,
    /// shared by all connections); 0 reads every page with read(2) into the connection's cache.
    /// A map makes large reads (inbox pages, counts) cheaper; while the file grows, every
    /// connection remaps it and faults its pages in again.
    #[arg(long, env = "SWITCHBOARD_SQLITE_MMAP_MB", default_value_t = 1024)]
    pub sqlite_mmap_mb: u64,

    /// Minutes between refreshes of SQLite's query planner statistics (`ANALYZE` over a sample);
    /// 0 turns the periodic refresh off (it still runs once at start).
    #[arg(long, env = "SWITCHBOARD_SQLITE_ANALYZE_MINUTES", default_value_t = 10)]
    pub sqlite_analyze_minutes: u64,

    /// Seconds between sweeps that reopen pending conversations whose `pendingUntil` has passed;
    /// 0 turns the sweep off.
    #[arg(long, env = "SWITCHBOARD_PENDING_SWEEP_SECONDS", default_value_t = 30)]
    pub pending_sweep_seconds: u64,

    /// Seconds between routing sweeps (offers that timed out move on to the next agent; waiting
    /// conversations are offered to agents who became available); 0 turns the sweep off
    /// (conversations are still routed as they enter a queue).
    #[arg(long, env = "SWITCHBOARD_ROUTING_SWEEP_SECONDS", default_value_t = 2)]
    pub routing_sweep_seconds: u64,

    /// Jobs this instance runs at once (deliveries and other background work); 0 makes it run
    /// none (other instances on the same database still do).
    #[arg(long, env = "SWITCHBOARD_JOB_WORKERS", default_value_t = 4)]
    pub job_workers: usize,

    /// Milliseconds between looks for due jobs when nothing woke the runner (committed events
    /// wake it at once; on PostgreSQL those of every instance).
    #[arg(long, env = "SWITCHBOARD_JOB_POLL_MS", default_value_t = 1_000)]
    pub job_poll_ms: u64,

    /// Seconds a claimed job's lease lasts; renewed every third of it while the job runs. A job
    /// whose worker died is claimed again once its lease expired.
    #[arg(long, env = "SWITCHBOARD_JOB_LEASE_SECONDS", default_value_t = 60)]
    pub job_lease_seconds: u64,

    /// Milliseconds before a job's first retry; each further retry waits twice as long.
    #[arg(long, env = "SWITCHBOARD_JOB_BACKOFF_BASE_MS", default_value_t = 1_000)]
    pub job_backoff_base_ms: u64,

    /// Longest wait between two attempts of a job, in seconds.
    #[arg(
        long,
        env = "SWITCHBOARD_JOB_BACKOFF_MAX_SECONDS",
        default_value_t = 3_600
    )]
    pub job_backoff_max_seconds: u64,

    /// Hours a succeeded job is kept before it is deleted (failed jobs are kept).
    #[arg(long, env = "SWITCHBOARD_JOB_RETENTION_HOURS", default_value_t = 72)]
    pub job_retention_hours: u64,

    /// Serve GraphiQL at `/graphiql`.
    #[arg(long, env = "SWITCHBOARD_GRAPHIQL", action = ArgAction::Set, default_value_t = true)]
    pub graphiql: bool,

    /// Allow schema introspection. When off, error messages carry no "did you mean" suggestions.
    #[arg(long, env = "SWITCHBOARD_INTROSPECTION", action = ArgAction::Set, default_value_t = true)]
    pub introspection: bool,

    /// On an empty database, create a demo organization and print its owner token.
    #[arg(long, env = "SWITCHBOARD_DEMO", action = ArgAction::Set, default_value_t = true)]
    pub demo: bool,

    /// Log filter (`tracing` env-filter syntax), e.g. `info` or `switchboard=debug`.
    #[arg(long, env = "SWITCHBOARD_LOG", default_value = "info")]
    pub log_level: String,

    /// Log format.
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Deepest field nesting a query may have (introspection fields are not counted).
    #[arg(long, env = "SWITCHBOARD_MAX_DEPTH", default_value_t = 12)]
    pub max_depth: usize,

    /// Highest query cost; a connection costs its page size times its selection.
    #[arg(long, env = "SWITCHBOARD_MAX_COMPLEXITY", default_value_t = 20_000)]
    pub max_complexity: usize,

    /// Most aliased fields in one document.
    #[arg(long, env = "SWITCHBOARD_MAX_ALIASES", default_value_t = 50)]
    pub max_aliases: usize,

    /// Most root fields in one operation.
    #[arg(long, env = "SWITCHBOARD_MAX_ROOT_FIELDS", default_value_t = 20)]
    pub max_root_fields: usize,

    /// Most operations in one batched (JSON array) request.
    #[arg(long, env = "SWITCHBOARD_MAX_BATCH", default_value_t = 10)]
    pub max_batch: usize,

    /// Largest request body in bytes.
    #[arg(long, env = "SWITCHBOARD_MAX_BODY_BYTES", default_value_t = 1_048_576)]
    pub max_body_bytes: usize,

    /// Longest a query may run, in milliseconds (answered `TIMEOUT`). Mutations are never cut
    /// short: one that may have committed is not answered as failed.
    #[arg(
        long,
        env = "SWITCHBOARD_EXECUTION_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub execution_timeout_ms: u64,

    /// Query cost each token (or anonymous client address) may spend per minute; 0 turns it off.
    #[arg(
        long,
        env = "SWITCHBOARD_RATE_LIMIT_PER_MINUTE",
        default_value_t = 100_000
    )]
    pub rate_limit_per_minute: u64,

    /// Events a subscriber may fall behind the live stream before it is stopped (and told to
    /// resume with its last cursor).
    #[arg(long, env = "SWITCHBOARD_EVENT_BUS_CAPACITY", default_value_t = 4_096)]
    pub event_bus_capacity: usize,

    /// Seconds a websocket client has to send `connection_init` before it is closed (4408).
    #[arg(
        long,
        env = "SWITCHBOARD_WS_INIT_TIMEOUT_SECONDS",
        default_value_t = 10
    )]
    pub ws_init_timeout_seconds: u64,

    /// Subscriptions one websocket connection may run at once.
    #[arg(long, env = "SWITCHBOARD_WS_MAX_SUBSCRIPTIONS", default_value_t = 100)]
    pub ws_max_subscriptions: usize,

    /// Whether webhook URLs may point to private, loopback and link-local addresses (off in
    /// production: a webhook must not reach the server's own network).
    #[arg(
        long,
        env = "SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE_ADDRESSES",
        default_value_t = false
    )]
    pub webhook_allow_private_addresses: bool,

    /// Seconds a webhook receiver has to answer one attempt.
    #[arg(
        long,
        env = "SWITCHBOARD_WEBHOOK_TIMEOUT_SECONDS",
        default_value_t = 10
    )]
    pub webhook_timeout_seconds: u64,

    /// Password for the SMTP channels whose `providerSettings.username` is set (secrets are never
    /// stored in provider settings). Unset: those channels send without authentication.
    #[arg(long, env = "SWITCHBOARD_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,

    /// Seconds an SMTP server has for each step of a send (connect, each command).
    #[arg(long, env = "SWITCHBOARD_SMTP_TIMEOUT_SECONDS", default_value_t = 30)]
    pub smtp_timeout_seconds: u64,

    /// Seconds between a webhook delivery's attempts after a failure, one per retry
    /// (comma-separated; the default is Standard Webhooks' schedule: 5 s, 5 min, 30 min, 2 h, 5 h,
    /// 10 h, 10 h). A receiver's `Retry-After` may ask for a longer wait (up to a day). When the
    /// retries are used up the delivery fails and the subscription is disabled with the reason.
    #[arg(
        long,
        env = "SWITCHBOARD_WEBHOOK_RETRY_SCHEDULE",
        value_delimiter = ',',
        default_value = "5,300,1800,7200,18000,36000,36000"
    )]
    pub webhook_retry_schedule: Vec<u64>,

    /// Seconds between looks for new events of an idle webhook subscription when nothing woke it
    /// (committed events of the types it wants wake it at once).
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_IDLE_SECONDS", default_value_t = 10)]
    pub webhook_idle_seconds: u64,

    /// Messages the server queues for one websocket client before closing it as a slow consumer
    /// (4413).
    #[arg(long, env = "SWITCHBOARD_WS_MAX_QUEUED", default_value_t = 1_024)]
    pub ws_max_queued: usize,

    /// Seconds between the server's websocket pings to each client.
    #[arg(
        long,
        env = "SWITCHBOARD_WS_PING_INTERVAL_SECONDS",
        default_value_t = 20
    )]
    pub ws_ping_interval_seconds: u64,

    /// Seconds a websocket client may send nothing, not even a pong, before it is closed
    /// (4504). Keep it above the ping interval.
    #[arg(
        long,
        env = "SWITCHBOARD_WS_IDLE_TIMEOUT_SECONDS",
        default_value_t = 60
    )]
    pub ws_idle_timeout_seconds: u64,
    /// Websocket connections one API token may hold at once on one instance. Over it, an
    /// upgrade authenticated by header gets HTTP 429 and one authenticated in `connection_init`
    /// is closed with 4403.
    #[arg(
        long,
        env = "SWITCHBOARD_WS_MAX_CONNECTIONS_PER_TOKEN",
        default_value_t = 20
    )]
    pub ws_max_connections_per_token: usize,

    /// Seconds a user stays `ONLINE` after their last websocket connection ended (a reconnect
    /// within it changes nothing).
    #[arg(long, env = "SWITCHBOARD_PRESENCE_GRACE_SECONDS", default_value_t = 60)]
    pub presence_grace_seconds: u64,

    /// Seconds a room stays open after its last connected participant left: it completes then
    /// unless someone joined meanwhile.
    #[arg(
        long,
        env = "SWITCHBOARD_ROOM_EMPTY_GRACE_SECONDS",
        default_value_t = 60
    )]
    pub room_empty_grace_seconds: u64,

    /// Seconds between presence heartbeats: each instance renews its own record (one row, which
    /// keeps all the connections it holds), then sweeps the connections of expired instances
    /// (instances that stopped) and users whose grace period is over. 0 turns both off.
    #[arg(
        long,
        env = "SWITCHBOARD_PRESENCE_HEARTBEAT_SECONDS",
        default_value_t = 20
    )]
    pub presence_heartbeat_seconds: u64,

    /// Seconds an instance's record (and with it the records of the connections it holds) lives
    /// without renewal: longer than the heartbeat, so the connections of a live instance never
    /// expire, and how long a crashed instance's users may stay online (plus the grace period).
    #[arg(
        long,
        env = "SWITCHBOARD_PRESENCE_CONNECTION_TTL_SECONDS",
        default_value_t = 60
    )]
    pub presence_connection_ttl_seconds: u64,

    /// Lifetime of a session token returned by `login`, in hours.
    #[arg(long, env = "SWITCHBOARD_SESSION_TTL_HOURS", default_value_t = 720)]
    pub session_ttl_hours: i64,

    /// Origins allowed by CORS (comma-separated); empty means no CORS headers, `*` allows any.
    #[arg(
        long,
        env = "SWITCHBOARD_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub cors_origins: Vec<String>,

    /// Largest message body in bytes, for the text and the HTML each (SMS text is further limited
    /// to 1,600 characters).
    #[arg(long, env = "SWITCHBOARD_MAX_MESSAGE_BYTES", default_value_t = 65_536)]
    pub max_message_bytes: usize,

    /// Folder where attachments are stored (one subfolder per organization); created on first
    /// upload.
    #[arg(
        long,
        env = "SWITCHBOARD_ATTACHMENTS_DIR",
        default_value = "./data/attachments"
    )]
    pub attachments_dir: PathBuf,

    /// Largest attachment in bytes. A multipart request may carry up to `max_body_bytes` plus ten
    /// times this.
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_ATTACHMENT_BYTES",
        default_value_t = 10_485_760
    )]
    pub max_attachment_bytes: usize,

    /// Content types attachments may have (comma-separated); others are refused.
    #[arg(
        long,
        env = "SWITCHBOARD_ATTACHMENT_TYPES",
        value_delimiter = ',',
        default_value = "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain,text/csv,audio/mpeg,audio/ogg,video/mp4"
    )]
    pub attachment_types: Vec<String>,

    /// Longest period a metric query may cover, in days (longer intervals are refused).
    #[arg(
        long,
        env = "SWITCHBOARD_METRICS_MAX_INTERVAL_DAYS",
        default_value_t = 400
    )]
    pub metrics_max_interval_days: i64,

    /// Most time buckets one metric series may have (e.g. `HOUR` over a year is refused).
    #[arg(long, env = "SWITCHBOARD_METRICS_MAX_BUCKETS", default_value_t = 1_000)]
    pub metrics_max_buckets: usize,

    /// Most groups a metric query's `groupBy` may make: the product of the dimensions' possible
    /// values (rows of the organization, plus one for "none") must stay under it.
    #[arg(long, env = "SWITCHBOARD_METRICS_MAX_GROUPS", default_value_t = 1_000)]
    pub metrics_max_groups: usize,

    /// Seconds to wait for in-flight requests, and for running jobs, on shutdown (jobs still
    /// running then are stopped and released to run again).
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,
}

impl Config {
    /// The configuration with every default and the given database.
    pub fn with_database(database_url: impl Into<String>) -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            config: Config,
        }
        let mut config = <Defaults as clap::Parser>::parse_from(["switchboard"]).config;
        config.database_url = database_url.into();
        config
    }

    /// The database URL in the form SeaORM takes: bare paths become `sqlite://PATH?mode=rwc`.
    pub fn normalized_database_url(&self) -> String {
        let url = self.database_url.trim();
        if url.starts_with("postgres://")
            || url.starts_with("postgresql://")
            || url.starts_with("sqlite:")
        {
            url.to_string()
        } else {
            format!("sqlite://{url}?mode=rwc")
        }
    }

    /// Whether the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.normalized_database_url().starts_with("postgres")
    }
}
