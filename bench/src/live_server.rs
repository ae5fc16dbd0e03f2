//! The server process of the `fanout` and `replay` scenarios (the hidden `--live-server` role of
//! this binary): the real app ([`switchboard::build_app`], rate limit off, no demo data) on a fresh
//! database seeded with one organization, its owner and an SMS conversation, plus the plain
//! reference routes, which exist only in this binary:
//!
//! - `GET /bench/plain/ws`: a plain websocket (same 4 KiB read buffer as `/graphql/ws`;
//!   authenticated once by the upgrade's `Authorization` header) that gets every frame broadcast
//!   by `POST /bench/plain/send`. One task per connection, which waits on a
//!   [`tokio::sync::broadcast`] receiver and the socket.
//! - `POST /bench/plain/send`: the trigger. It takes the same body as the GraphQL `sendMessage`
//!   request and does the `send` scenario's plain work (authentication, the message row and the
//!   conversation update in one transaction, see `send.rs`), then serialises ONE frame shaped
//!   byte for byte like the GraphQL `next` message of `messageAdded { cursor message { id text } }`
//!   (the same fields in the same order, a cursor of the same form) and broadcasts it: every
//!   connection writes the same bytes, nothing is serialised per subscriber.
//! - `POST /bench/plain/replay` (`{"after": seq}`): reads the organization's `MESSAGE_ADDED`
//!   events after `seq` from the event log and their messages, and keeps the frames the GraphQL
//!   replay would send (same cursors, ids and texts) serialised in memory; not measured.
//!   `GET /bench/plain/replay/ws` then sends every kept frame to each new connection, then the
//!   live broadcast as `/bench/plain/ws`.
//! - `GET /bench/last-seq`: the event log's last sequence (where a replay cursor starts).
//! - `GET /bench/statements`: SQL statements run so far on the app's pool (the plain routes use
//!   the same pool).
//!
//! The process prints [`crate::process::READY`] and what the driver needs as JSON on standard
//! output, serves until its standard input closes, and shuts down.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;
use switchboard::Config;
use switchboard::conversations::event_types;
use switchboard::graphql::relay::{decode_id, encode_id};
use switchboard::live::bus;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

use crate::process::{READY, Ready};
use crate::scenario::{authenticate, json_response};
use crate::{Args, pin, server};

/// The read buffer of `/graphql/ws` (`src/live/ws.rs`), used by the plain endpoint too.
const READ_BUFFER: usize = 4 * 1024;

/// The subscription id every client of the scenarios uses.
pub const SUBSCRIPTION_ID: &str = "1";

/// The cursor of event `seq`, as the server makes it (`src/live/graphql.rs`).
pub fn cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("event:{seq}"))
}

/// The sequence of a cursor made by [`cursor`].
pub fn cursor_seq(cursor: &[u8]) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix("event:")?
        .parse()
        .ok()
}

/// The `next` frame async-graphql sends for `messageAdded { cursor message { id text } }`:
/// the same fields in the same order (`type`, `id`, `payload.data`).
pub fn frame(cursor: &str, message_id: &str, text: Option<&str>) -> String {
    let string = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    format!(
        "{{\"type\":\"next\",\"id\":{},\"payload\":{{\"data\":{{\"messageAdded\":{{\"cursor\":{},\
         \"message\":{{\"id\":{},\"text\":{}}}}}}}}}}}",
        string(SUBSCRIPTION_ID),
        string(cursor),
        string(message_id),
        text.map_or_else(|| "null".to_string(), string),
    )
}

/// The plain endpoint's state.
struct Plain {
    db: DatabaseConnection,
    /// Every connection's receiver of broadcast frames.
    frames: broadcast::Sender<Message>,
    /// The sequence of the last frame sent (its cursor), counting on from the log's end.
    seq: AtomicI64,
    /// The frames `/bench/plain/replay/ws` sends first.
    replay: RwLock<Arc<Vec<Message>>>,
    /// The app's metrics (for its SQL statement counter).
    metrics: Arc<switchboard::http::metrics::Metrics>,
}

impl Plain {
    fn replay(&self) -> Arc<Vec<Message>> {
        match self.replay.read() {
            Ok(frames) => frames.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

fn routes(plain: Arc<Plain>) -> Router {
    Router::new()
        .route("/bench/plain/ws", get(plain_ws))
        .route("/bench/plain/replay/ws", get(plain_replay_ws))
        .route("/bench/plain/send", post(plain_send))
        .route("/bench/plain/replay", post(prepare_replay))
        .route("/bench/last-seq", get(last_seq).post(last_seq))
        .route("/bench/statements", get(statements).post(statements))
        .with_state(plain)
}

async fn upgrade(
    plain: Arc<Plain>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
    replay: bool,
) -> Response {
    if let Err(response) = authenticate(&plain.db, &headers).await {
        return response;
    }
    // Subscribed before the upgrade's answer: a client whose handshake finished gets every
    // frame sent after it.
    let receiver = plain.frames.subscribe();
    let replay = replay.then(|| plain.replay());
    upgrade
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| connection(socket, receiver, replay))
}

async fn plain_ws(
    State(plain): State<Arc<Plain>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(plain, headers, ws, false).await
}

async fn plain_replay_ws(
    State(plain): State<Arc<Plain>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(plain, headers, ws, true).await
}

/// One plain connection: the replay frames if any, then every broadcast frame; a connection
/// that falls behind the broadcast channel is closed with 4413, as the GraphQL transport closes
/// a slow consumer.
async fn connection(
    mut socket: WebSocket,
    mut frames: broadcast::Receiver<Message>,
    replay: Option<Arc<Vec<Message>>>,
) {
    if let Some(replay) = replay {
        for frame in replay.iter() {
            if socket.send(frame.clone()).await.is_err() {
                return;
            }
        }
    }
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            frame = frames.recv() => match frame {
                Ok(frame) => {
                    if socket.send(frame).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame {
                            code: 4413,
                            reason: format!("slow consumer: {missed} frames missed").into(),
                        })))
                        .await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// `POST /bench/plain/send`: the `send` scenario's plain write, then one frame to everyone.
async fn plain_send(State(plain): State<Arc<Plain>>, headers: HeaderMap, body: Bytes) -> Response {
    let principal = match authenticate(&plain.db, &headers).await {
        Ok(principal) => principal,
        Err(response) => return response,
    };
    let Some(input) = crate::send::input(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let Ok(conversation_id) = decode_id(&input.conversation_id, "Conversation") else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let id = match crate::send::write(
        &plain.db,
        principal.org_id,
        principal.user_id(),
        conversation_id,
        &input.text,
        &input.external_id,
    )
    .await
    {
        Ok(Some(id)) => id,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(error) => {
            eprintln!("bench: the plain send failed: {error}");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let seq = plain.seq.fetch_add(1, Ordering::SeqCst) + 1;
    let text = frame(
        &cursor(seq),
        &encode_id("Message", id).0,
        Some(input.text.as_str()),
    );
    // No receivers is not an error.
    let _ = plain.frames.send(Message::Text(text.into()));
    crate::send::payload(Some(id), json!([]))
}

/// `POST /bench/plain/replay` `{"after": seq}`: keeps the frames of the messages added after
/// `seq` (answers how many).
async fn prepare_replay(
    State(plain): State<Arc<Plain>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let principal = match authenticate(&plain.db, &headers).await {
        Ok(principal) => principal,
        Err(response) => return response,
    };
    let Some(after) = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["after"].as_i64())
    else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    match replay_frames(&plain.db, principal.org_id, after).await {
        Ok(frames) => {
            let count = frames.len();
            match plain.replay.write() {
                Ok(mut kept) => *kept = Arc::new(frames),
                Err(poisoned) => *poisoned.into_inner() = Arc::new(frames),
            }
            json_response(json!({ "frames": count }).to_string().into_bytes())
        }
        Err(error) => {
            eprintln!("bench: preparing the replay failed: {error:#}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn replay_frames(
    db: &DatabaseConnection,
    org_id: uuid::Uuid,
    mut after: i64,
) -> anyhow::Result<Vec<Message>> {
    let mut events = Vec::new();
    loop {
        let rows = bus::after(db, Some(org_id), after, bus::READ_BATCH)
            .await
            .map_err(server::app_error)?;
        let full = rows.len() as u64 == bus::READ_BATCH;
        for row in rows {
            after = row.seq;
            if row.event_type != event_types::MESSAGE_ADDED {
                continue;
            }
            if let Some(id) = row
                .payload
                .get("messageId")
                .and_then(|v| v.as_str())
                .and_then(|v| uuid::Uuid::parse_str(v).ok())
            {
                events.push((row.seq, id));
            }
        }
        if !full {
            break;
        }
    }
    let mut texts = std::collections::HashMap::new();
    for chunk in events.chunks(500) {
        let ids: Vec<uuid::Uuid> = chunk.iter().map(|(_, id)| *id).collect();
        for message in entity::message::Entity::find()
            .filter(entity::message::Column::OrgId.eq(org_id))
            .filter(entity::message::Column::Id.is_in(ids))
            .all(db)
            .await?
        {
            texts.insert(message.id, message.text_body);
        }
    }
    let mut frames = Vec::with_capacity(events.len());
    for (seq, id) in events {
        let text = texts
            .get(&id)
            .with_context(|| format!("message {id} of event {seq} is missing"))?;
        frames.push(Message::Text(
            frame(&cursor(seq), &encode_id("Message", id).0, text.as_deref()).into(),
        ));
    }
    Ok(frames)
}

/// `GET /bench/last-seq`.
async fn last_seq(State(plain): State<Arc<Plain>>) -> Response {
    match bus::last_seq(&plain.db).await {
        Ok(seq) => seq.to_string().into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `GET /bench/statements`: SQL statements the app's pool has run (both sides use it).
async fn statements(State(plain): State<Arc<Plain>>) -> Response {
    plain
        .metrics
        .db_statements
        .get()
        .to_string()
        .into_response()
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The server role: see the module documentation.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let (nofile, _) = crate::process::raise_nofile()?;
    let core = if args.no_pin {
        None
    } else {
        Some(pin::core(args.server_core)?)
    };
    let runtime = pin::runtime("bench-server", args.server_threads, core)?;
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let url = match &args.database_url {
        Some(url) => url.clone(),
        None => dir
            .path()
            .join("bench.db")
            .to_str()
            .context("the temporary directory's path is not UTF-8")?
            .to_string(),
    };
    let mut config = Config::with_database(url);
    config.rate_limit_per_minute = 0;
    config.demo = false;
    config.shutdown_grace_seconds = 1;
    // Every subscriber connects with the same token.
    config.ws_max_connections_per_token = 1_000_000;
    if let Some(level) = args.sqlite_synchronous {
        config.sqlite_synchronous = level;
    }
    if let Some(queued) = args.ws_max_queued {
        config.ws_max_queued = queued;
    }
    if let Some(capacity) = args.event_bus_capacity {
        config.event_bus_capacity = capacity;
    }
    let capacity = config.event_bus_capacity;
    let backend = if config.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let (stop, stop_rx) = watch::channel(false);
    let (ready, task) = pin::run_on(&runtime, async move {
        // Seeded on a first instance, served by a second one (as `server.rs` does).
        let app = switchboard::build_app(config.clone())
            .await
            .context("cannot build the app")?;
        let db = app.state.db.clone();
        let token = server::seed(&db, 0).await?;
        let owner = switchboard::auth::authenticate(&db, &token)
            .await
            .map_err(server::app_error)?;
        let fixture = crate::inbox::seed(&db, &owner, 64, 1)
            .await
            .context("cannot seed the conversations")?;
        let conversation = *fixture
            .send_conversations
            .first()
            .context("no open SMS conversation was seeded")?;
        switchboard::db::refresh_statistics(&db)
            .await
            .context("cannot refresh the statistics")?;
        drop(app);
        db.close().await.context("cannot close the seeding pool")?;

        let mut app = switchboard::build_app(config)
            .await
            .context("cannot build the app")?;
        let db = app.state.db.clone();
        let durability = server::durability(&db).await?;
        let (frames, _) = broadcast::channel(capacity.max(1));
        let plain = Arc::new(Plain {
            seq: AtomicI64::new(bus::last_seq(&db).await.map_err(server::app_error)?),
            db,
            frames,
            replay: RwLock::new(Arc::new(Vec::new())),
            metrics: app.state.metrics.clone(),
        });
        app.router = app
            .router
            .merge(switchboard::http::with_middleware(routes(plain), &[]));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let task = tokio::spawn(app.serve(listener, stopped(stop_rx)));
        let ready = Ready {
            addr,
            token,
            conversation,
            nofile,
            database: format!("{backend} ({durability})"),
        };
        Ok((ready, task))
    })?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{READY}{}", serde_json::to_string(&ready)?)?;
    stdout.flush()?;
    // Serve until the driver closes our standard input (or exits).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    let _ = stop.send(true);
    pin::run_on(&runtime, async move {
        tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .context("the server did not stop in time")?
            .context("the server panicked")?
    })?;
    drop(dir);
    Ok(())
}
