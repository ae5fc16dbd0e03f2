//! Websocket subscribers for the `fanout` and `replay` scenarios: one task per connection
//! (tokio-tungstenite, 4 KiB read buffer, writes flushed at once), connected with bounded
//! concurrency. A GraphQL client speaks `graphql-transport-ws` (token in the `connection_init`
//! payload, one `subscribe` with id `1`); a plain client just connects (token in the upgrade's
//! `Authorization` header). Both read the same frames: for each `next` they find the message id
//! (fanout: recorded with the receipt time, to be matched to the send) or the cursor (replay:
//! counted, and checked to increase); anything else is counted as what it is (an `errors`
//! payload, a lagged subscriber, `complete`, `error`, a close from the server).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Bytes a client reads ahead (tungstenite's default is 128 KiB: 1.3 GB for 10,000 clients).
const READ_BUFFER: usize = 4 * 1024;

/// How the clients of one side connect and subscribe.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The server.
    pub addr: SocketAddr,
    /// `/graphql/ws`, `/bench/plain/ws` or `/bench/plain/replay/ws`.
    pub path: &'static str,
    /// The bearer token.
    pub token: String,
    /// GraphQL: the `subscribe` message to send after `connection_ack`; plain: `None`.
    pub subscribe: Option<String>,
    /// Record the message id and receipt time of every event (fanout).
    pub record: bool,
    /// Replay: events each client must receive before it counts as done (0: none).
    pub target: u64,
}

/// What all clients of a run share.
#[derive(Debug)]
pub struct Shared {
    /// Clients that connected and subscribed.
    pub subscribed: AtomicUsize,
    /// Clients whose connection or subscription failed.
    pub failed: AtomicUsize,
    /// Clients that received at least one event.
    pub ready: AtomicUsize,
    /// Events received by all clients.
    pub received: AtomicU64,
    /// Clients that received `target` events (replay).
    pub done: AtomicUsize,
    /// Clients whose connection ended before they were told to stop.
    pub ended: AtomicUsize,
    stop: watch::Sender<bool>,
}

impl Shared {
    /// Counters at zero.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            subscribed: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            ready: AtomicUsize::new(0),
            received: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            ended: AtomicUsize::new(0),
            stop: watch::channel(false).0,
        })
    }

    /// Tells every client to close its connection and return what it saw.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// What one client saw.
#[derive(Debug, Default)]
pub struct Record {
    /// `(hash of the message id, receipt time)` of every event, when recording.
    pub events: Vec<(u64, Instant)>,
    /// Events received.
    pub count: u64,
    /// When the client had received `target` events.
    pub done_at: Option<Instant>,
    /// Events whose cursor did not follow the previous one's (replay).
    pub out_of_order: u64,
    /// `next` messages with errors, `error` messages and unparseable frames.
    pub errors: u64,
    /// Of those, subscribers stopped for falling behind the bus.
    pub lagged: u64,
    /// The server ended the subscription (`complete`).
    pub completed: bool,
    /// The server closed the connection (code, reason), or it ended without a close frame
    /// (code 0, what happened).
    pub closed: Option<(u16, String)>,
    /// Connecting or subscribing failed.
    pub failure: Option<String>,
    /// The first error message, for the report.
    pub first_error: Option<String>,
    /// Size of the last event frame received.
    pub frame_bytes: usize,
}

/// The hash under which clients record a message id (also used for the sent ids).
pub fn id_hash(id: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish()
}

/// The string value following `key` (e.g. `"id":"`) in `text`, without parsing the JSON.
fn value_after<'a>(text: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let start = find(text, key)? + key.len();
    let length = text[start..].iter().position(|&b| b == b'"')?;
    Some(&text[start..start + length])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

type Socket = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn connect(spec: &Spec) -> anyhow::Result<Socket> {
    let stream = TcpStream::connect(spec.addr)
        .await
        .with_context(|| format!("cannot connect to {}", spec.addr))?;
    stream.set_nodelay(true)?;
    let mut request = format!("ws://{}{}", spec.addr, spec.path).into_client_request()?;
    let headers = request.headers_mut();
    if spec.subscribe.is_some() {
        headers.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
    } else {
        headers.insert(
            "Authorization",
            HeaderValue::from_str(&format!("Bearer {}", spec.token))?,
        );
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0);
    let (mut socket, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .context("websocket handshake")?;
    if let Some(subscribe) = &spec.subscribe {
        let init = serde_json::json!({
            "type": "connection_init",
            "payload": { "authorization": format!("Bearer {}", spec.token) },
        });
        socket.send(Message::text(init.to_string())).await?;
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) if text.contains("\"connection_ack\"") => break,
                Some(Ok(Message::Text(text))) if text.contains("\"ping\"") => {
                    socket.send(Message::text(r#"{"type":"pong"}"#)).await?;
                }
                Some(Ok(Message::Close(frame))) => {
                    anyhow::bail!("closed before connection_ack: {frame:?}")
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error).context("waiting for connection_ack"),
                None => anyhow::bail!("the connection ended before connection_ack"),
            }
        }
        socket.send(Message::text(subscribe.clone())).await?;
    }
    Ok(socket)
}

/// Starts one client: it connects (holding a permit of `gate` until it has subscribed) and reads
/// until told to stop.
pub fn spawn(
    spec: Arc<Spec>,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
    capacity: usize,
) -> tokio::task::JoinHandle<Record> {
    tokio::spawn(async move {
        let mut record = Record {
            events: Vec::with_capacity(if spec.record { capacity } else { 0 }),
            ..Record::default()
        };
        let mut stop = shared.stop.subscribe();
        let socket = {
            let Ok(_permit) = gate.acquire().await else {
                record.failure = Some("the connection gate closed".into());
                shared.failed.fetch_add(1, Ordering::SeqCst);
                return record;
            };
            match connect(&spec).await {
                Ok(socket) => socket,
                Err(error) => {
                    record.failure = Some(format!("{error:#}"));
                    shared.failed.fetch_add(1, Ordering::SeqCst);
                    return record;
                }
            }
        };
        shared.subscribed.fetch_add(1, Ordering::SeqCst);
        let mut socket = socket;
        let mut last_seq = i64::MIN;
        loop {
            let message = tokio::select! {
                biased;
                _ = stop.wait_for(|stop| *stop) => break,
                message = socket.next() => message,
            };
            let now = Instant::now();
            let text = match message {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(frame))) => {
                    record.closed = Some(match frame {
                        Some(frame) => (u16::from(frame.code), frame.reason.to_string()),
                        None => (1005, String::new()),
                    });
                    shared.ended.fetch_add(1, Ordering::SeqCst);
                    return record;
                }
                Some(Ok(_)) => continue,
                Some(Err(error)) => {
                    record.closed = Some((0, format!("transport error: {error}")));
                    shared.ended.fetch_add(1, Ordering::SeqCst);
                    return record;
                }
                None => {
                    record.closed = Some((0, "the connection ended".into()));
                    shared.ended.fetch_add(1, Ordering::SeqCst);
                    return record;
                }
            };
            let bytes = text.as_bytes();
            if find(bytes, b"\"type\":\"next\"").is_some() && find(bytes, b"\"errors\"").is_none() {
                let Some(id) = value_after(bytes, b"\"message\":{\"id\":\"") else {
                    record.errors += 1;
                    record
                        .first_error
                        .get_or_insert_with(|| format!("no message id in {text}"));
                    continue;
                };
                if spec.record {
                    record.events.push((id_hash(id), now));
                }
                if spec.target > 0 {
                    let seq = value_after(bytes, b"\"cursor\":\"")
                        .and_then(crate::live_server::cursor_seq)
                        .unwrap_or(i64::MIN);
                    if seq <= last_seq {
                        record.out_of_order += 1;
                    }
                    last_seq = seq;
                }
                record.count += 1;
                record.frame_bytes = bytes.len();
                if record.count == 1 {
                    shared.ready.fetch_add(1, Ordering::SeqCst);
                }
                if record.count == spec.target {
                    record.done_at = Some(now);
                    shared.done.fetch_add(1, Ordering::SeqCst);
                }
                shared.received.fetch_add(1, Ordering::Relaxed);
            } else if find(bytes, b"\"type\":\"ping\"").is_some() {
                let _ = socket.send(Message::text(r#"{"type":"pong"}"#)).await;
            } else if find(bytes, b"\"type\":\"complete\"").is_some() {
                record.completed = true;
            } else {
                record.errors += 1;
                if find(bytes, b"fell").is_some() && find(bytes, b"behind").is_some() {
                    record.lagged += 1;
                }
                record.first_error.get_or_insert_with(|| text.to_string());
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
        record
    })
}

/// Starts `n` clients of `spec`, at most `concurrency` connecting at once.
pub fn start(
    spec: Spec,
    shared: &Arc<Shared>,
    n: usize,
    concurrency: usize,
    capacity: usize,
) -> Vec<tokio::task::JoinHandle<Record>> {
    let spec = Arc::new(spec);
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    (0..n)
        .map(|_| spawn(spec.clone(), shared.clone(), gate.clone(), capacity))
        .collect()
}

/// Tells the clients to stop and collects what they saw.
pub async fn finish(
    shared: &Shared,
    clients: Vec<tokio::task::JoinHandle<Record>>,
) -> anyhow::Result<Vec<Record>> {
    shared.stop();
    let mut records = Vec::with_capacity(clients.len());
    for client in clients {
        records.push(client.await.context("a client panicked")?);
    }
    Ok(records)
}
