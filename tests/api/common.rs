//! The test harness: the app started in-process on a random port with a fresh database (SQLite by
//! default; PostgreSQL when `SWITCHBOARD_TEST_POSTGRES_URL` is set), and an HTTP client.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};
use switchboard::organizations::service::{self as orgs, NewOrganization};
use switchboard::{AppState, Config, build_app};
use tokio::sync::oneshot;

/// Everything the app logged during this test binary's run.
pub fn logs() -> String {
    let buffer = log_buffer();
    let bytes = buffer.lock().map(|b| b.clone()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn log_buffer() -> Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER
        .get_or_init(|| {
            let buffer = Arc::new(Mutex::new(Vec::new()));
            let writer = BufferWriter(buffer.clone());
            let _ = tracing_subscriber::fmt()
                .with_env_filter("info,sea_orm=warn,sqlx=warn")
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .try_init();
            buffer
        })
        .clone()
}

#[derive(Clone)]
struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A fresh database URL: a new PostgreSQL database, or a SQLite file in a temporary folder.
async fn fresh_database() -> (String, Option<tempfile::TempDir>) {
    if let Ok(admin_url) = std::env::var("SWITCHBOARD_TEST_POSTGRES_URL") {
        let name = format!("sb_test_{}", uuid::Uuid::now_v7().simple());
        let admin = Database::connect(&admin_url)
            .await
            .expect("connect to PostgreSQL");
        drop_stale_databases(&admin).await;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        admin.close().await.ok();
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&admin_url);
        (format!("{base}/{name}"), None)
    } else {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("test.db");
        (path.to_string_lossy().into_owned(), Some(dir))
    }
}

/// Drops, once per test binary, the test databases earlier runs left behind (a test's database
/// lives as long as its app, which may still be running when the test ends, so tests do not drop
/// their own). A database's name starts with its UUIDv7, whose first 48 bits are its creation
/// time in milliseconds: those more than two hours old go.
async fn drop_stale_databases(admin: &sea_orm::DatabaseConnection) {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let cutoff = chrono::Utc::now().timestamp_millis() - 2 * 3600 * 1000;
            let rows = admin
                .query_all_raw(Statement::from_string(
                    admin.get_database_backend(),
                    "SELECT datname FROM pg_database WHERE datname LIKE 'sb_test_%'",
                ))
                .await
                .unwrap_or_default();
            for row in rows {
                let Ok(name) = row.try_get::<String>("", "datname") else {
                    continue;
                };
                let created = name
                    .strip_prefix("sb_test_")
                    .and_then(|hex| hex.get(..12))
                    .and_then(|ms| i64::from_str_radix(ms, 16).ok());
                if created.is_some_and(|ms| ms < cutoff) {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await;
                }
            }
        })
        .await;
}

/// An organization with its owner's token.
#[derive(Clone, Debug)]
pub struct TestOrg {
    /// The owner's API token.
    pub token: String,
    /// The organization's slug.
    pub slug: String,
    /// The owner's global id.
    pub owner_id: String,
    /// The organization's global id.
    pub org_id: String,
}

/// A running app.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    /// The first organization ("Acme"), created at start.
    pub org: TestOrg,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
    _watchdog: Watchdog,
}

/// Ends the whole test run, naming the test, when a test holds its app longer than
/// [`Watchdog::LIMIT`]: a test waiting for something that never comes fails the run in minutes
/// instead of holding CI until its own time limit. Dropped with the app, it stands down.
struct Watchdog {
    _stand_down: std::sync::mpsc::Sender<()>,
}

impl Watchdog {
    const LIMIT: Duration = Duration::from_secs(600);

    fn start() -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let test = std::thread::current()
            .name()
            .unwrap_or("a test")
            .to_string();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(Self::LIMIT) {
                eprintln!(
                    "{test} still held its app after {} s: ending the test run",
                    Self::LIMIT.as_secs()
                );
                std::process::exit(101);
            }
        });
        Self { _stand_down: tx }
    }
}

impl TestApp {
    /// The app with default configuration.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// The app with configuration changed by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        let _ = log_buffer();
        let (url, dir) = fresh_database().await;
        let mut config = Config::with_database(url);
        config.db_max_connections = 5;
        config.shutdown_grace_seconds = 1;
        // No background sweeps: statement-counting tests must see only their own requests.
        config.pending_sweep_seconds = 0;
        config.routing_sweep_seconds = 0;
        // No presence heartbeat either: presence tests run the sweep with the time they choose.
        config.presence_heartbeat_seconds = 0;
        // No job workers: tests that see outbound messages `QUEUED` must not race a delivery.
        // Job and delivery tests turn them on.
        config.job_workers = 0;
        // Generous limits for a slow, loaded machine: a request is not cut short, and a
        // websocket that is not read for a while is not closed as idle. Tests of these limits
        // set their own.
        config.execution_timeout_ms = 120_000;
        config.ws_idle_timeout_seconds = 600;
        configure(&mut config);
        let org = TestOrg {
            token: String::new(),
            slug: String::new(),
            owner_id: String::new(),
            org_id: String::new(),
        };
        let mut test = Self::start(config, org, dir).await;
        test.org = test.create_org("Acme", "acme", "owner@acme.test").await;
        test
    }

    /// A second instance on this app's database, with the same first organization: for tests of
    /// what crosses instances.
    pub async fn spawn_beside(&self) -> Self {
        Self::start((*self.state.config).clone(), self.org.clone(), None).await
    }

    async fn start(config: Config, org: TestOrg, dir: Option<tempfile::TempDir>) -> Self {
        let app = build_app(config).await.expect("build app");
        let state = app.state.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.serve(listener, async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            // A request that never answers fails its test rather than holding it.
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(180))
                .build()
                .expect("http client"),
            state,
            org,
            shutdown: Some(tx),
            server: Some(server),
            _dir: dir,
            _watchdog: Watchdog::start(),
        }
    }

    /// Creates another organization with an owner.
    pub async fn create_org(&self, name: &str, slug: &str, owner_email: &str) -> TestOrg {
        let created = orgs::create_with_owner(
            &self.state.db,
            NewOrganization {
                name: name.into(),
                slug: Some(slug.into()),
                timezone: None,
                locale: None,
                owner_email: owner_email.into(),
                owner_name: Some(format!("{name} Owner")),
            },
        )
        .await
        .map_err(|e| e.public_message())
        .expect("create organization");
        TestOrg {
            token: created.owner_token,
            slug: created.organization.slug,
            owner_id: switchboard::graphql::relay::encode_id("User", created.owner.id).0,
            org_id: switchboard::graphql::relay::encode_id("Organization", created.organization.id)
                .0,
        }
    }

    /// The base URL.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs a GraphQL operation as JSON; returns status, headers and the JSON body.
    pub async fn post(&self, token: Option<&str>, body: Value) -> (StatusCode, HeaderMap, Value) {
        let mut request = self.client.post(self.url("/graphql")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("send");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, value)
    }

    /// Runs an operation with a token and variables; asserts HTTP 200 and returns the body.
    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        let (status, _, body) = self
            .post(
                Some(token),
                json!({ "query": query, "variables": variables }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "body: {body}");
        body
    }

    /// Like [`gql`], and asserts there are no errors; returns `data`.
    pub async fn data(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Rows in a table, read directly from the database.
    pub async fn count(&self, table: &str) -> i64 {
        let db = &self.state.db;
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .expect("count query")
            .expect("count row");
        row.try_get::<i64>("", "n").expect("count value")
    }

    /// Signals shutdown (as SIGTERM would) without waiting.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Stops the server and its job runner at once, as a crash would: running job handlers are
    /// dropped mid-job, nothing is released.
    pub fn crash(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    /// Waits for the server to finish after [`begin_shutdown`].
    pub async fn stopped(&mut self) -> anyhow::Result<()> {
        match self.server.take() {
            Some(server) => server.await?,
            None => Ok(()),
        }
    }

    /// SQL statements the app has executed so far.
    pub fn statements(&self) -> u64 {
        self.state.metrics.db_statements.get()
    }

    /// Statements executed by one request, after a warm-up request with the same token has
    /// recorded the token's use (a write made at most once a minute per token).
    pub async fn statements_of(&self, token: &str, query: &str) -> (u64, Value) {
        self.data(token, "{ viewer { roles } }", json!({})).await;
        let before = self.statements();
        let data = self.data(token, query, json!({})).await;
        (self.statements() - before, data)
    }

    /// The cursor of the latest committed event (`event:<seq>`, base64url without padding), or
    /// of the log's start when there is none: a subscription started `after` it misses nothing
    /// committed from now on, however long the server takes to start it.
    pub async fn log_end_cursor(&self) -> String {
        use base64::Engine;
        use sea_orm::{EntityTrait, QueryOrder};
        let last = entity::event::Entity::find()
            .order_by_desc(entity::event::Column::Seq)
            .one(&self.state.db)
            .await
            .expect("latest event")
            .map_or(0, |event| event.seq);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("event:{last}"))
    }

    /// Runs raw SQL against the app's database.
    pub async fn sql(&self, sql: &str) {
        self.state
            .db
            .execute_unprepared(sql)
            .await
            .expect("raw sql");
    }

    /// Creates a user through the API as the first organization's owner; returns (id, token).
    pub async fn user_with_token(&self, email: &str, roles: &[&str]) -> (String, String) {
        let data = self
            .data(
                &self.org.token,
                "mutation($input: CreateUserInput!) { createUser(input: $input) { user { id } userErrors { message } } }",
                json!({ "input": { "email": email, "roles": roles } }),
            )
            .await;
        let id = data["createUser"]["user"]["id"]
            .as_str()
            .expect("user id")
            .to_string();
        let data = self
            .data(
                &self.org.token,
                "mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token userErrors { message } } }",
                json!({ "input": { "name": "test", "userId": id } }),
            )
            .await;
        let token = data["createApiToken"]["token"]
            .as_str()
            .expect("token")
            .to_string();
        (id, token)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The `extensions.code` of each top-level error.
pub fn codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    e["extensions"]["code"]
                        .as_str()
                        .unwrap_or("<none>")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}
