//! The websocket connection's guard: it stands between the socket and async-graphql's protocol
//! engine and enforces the transport rules with the `graphql-transport-ws` close codes, for both
//! subprotocols:
//!
//! - 4400 a message that is not a protocol message;
//! - 4401 `subscribe` (`start`) before the server acknowledged `connection_init`;
//! - 4403 `connection_init` refused (bad or missing token);
//! - 4408 no `connection_init` within the configured time;
//! - 4409 `subscribe` with the id of a running subscription;
//! - 4429 a second `connection_init`;
//! - 4504 nothing (not even a pong to the server's pings) came from the client within the idle
//!   timeout;
//! - 4413 the client reads too slowly: more than the configured number of frames wait for it. The
//!   server never queues more for one connection, and other connections are not affected.
//!
//! Subscriptions beyond the per-connection cap get an `error` message for their id (the
//! connection stays open).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Close codes of the transport.
pub mod close {
    /// Not a protocol message.
    pub const BAD_MESSAGE: u16 = 4400;
    /// `subscribe` before `connection_ack`.
    pub const UNAUTHORIZED: u16 = 4401;
    /// `connection_init` refused.
    pub const FORBIDDEN: u16 = 4403;
    /// Unknown subprotocol.
    pub const UNKNOWN_SUBPROTOCOL: u16 = 4406;
    /// No `connection_init` in time.
    pub const INIT_TIMEOUT: u16 = 4408;
    /// Duplicate subscription id.
    pub const DUPLICATE_ID: u16 = 4409;
    /// The client does not keep up with what the server sends.
    pub const SLOW_CONSUMER: u16 = 4413;
    /// Second `connection_init`.
    pub const TOO_MANY_INITS: u16 = 4429;
    /// Nothing from the client (not even a pong) within the idle timeout.
    pub const IDLE_TIMEOUT: u16 = 4504;
}

/// Limits of one connection.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Time to send `connection_init`.
    pub init_timeout: Duration,
    /// Subscriptions running at once.
    pub max_subscriptions: usize,
    /// Frames the server queues for a client before closing it as a slow consumer.
    pub max_queued: usize,
    /// How often the server pings the client (websocket ping frames, which clients answer by
    /// themselves).
    pub ping_interval: Duration,
    /// How long the client may send nothing (no message, no pong) before it is closed.
    pub idle_timeout: Duration,
}

/// Which subprotocol the connection speaks: its message names differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// `graphql-transport-ws`.
    TransportWs,
    /// The legacy `graphql-ws` (subscriptions-transport-ws).
    Legacy,
}

impl Dialect {
    fn subscribe(self) -> &'static str {
        match self {
            Dialect::TransportWs => "subscribe",
            Dialect::Legacy => "start",
        }
    }

    fn stop(self) -> &'static str {
        match self {
            Dialect::TransportWs => "complete",
            Dialect::Legacy => "stop",
        }
    }

    fn known(self, kind: &str) -> bool {
        match self {
            Dialect::TransportWs => matches!(
                kind,
                "connection_init" | "subscribe" | "complete" | "ping" | "pong"
            ),
            Dialect::Legacy => matches!(
                kind,
                "connection_init" | "start" | "stop" | "connection_terminate"
            ),
        }
    }
}

/// The close frame with `code` and `reason`.
fn close_frame(code: u16, reason: String) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// Closes `socket` right away with `code` (e.g. an unknown subprotocol).
pub async fn refuse(mut socket: WebSocket, code: u16, reason: &str) {
    let _ = socket.send(close_frame(code, reason.to_string())).await;
}

#[derive(Default)]
struct State {
    acked: AtomicBool,
    running: Mutex<HashSet<String>>,
}

impl State {
    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        match self.running.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// The close request for a client with more than `max_queued` messages waiting.
fn slow_consumer(max_queued: usize) -> (u16, String) {
    (
        close::SLOW_CONSUMER,
        format!("slow consumer: more than {max_queued} messages waited to be read"),
    )
}

/// The parts of a server message the guard follows (the payload is skipped, not parsed).
#[derive(serde::Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
}

/// What the writer task is told to do.
enum Out {
    Frame(Message),
    Close(u16, String),
}

/// The guarded pair for async-graphql: a stream of the client's accepted messages and a sink
/// for the server's, plus the tasks that move frames between them and the socket.
pub struct Guarded {
    /// Client messages that passed the rules.
    pub incoming: mpsc::Receiver<Result<Message, axum::Error>>,
    /// Where the protocol engine writes.
    pub outgoing: OutSink,
}

/// The protocol engine's sink: never waits; when the client's queue is full the connection is
/// closed as a slow consumer. Cohorts write to clones of it.
#[derive(Clone)]
pub struct OutSink {
    sender: mpsc::Sender<Out>,
    state: Arc<State>,
    closer: mpsc::UnboundedSender<(u16, String)>,
    max_queued: usize,
}

impl futures_util::Sink<Message> for OutSink {
    type Error = axum::Error;

    fn poll_ready(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn start_send(self: std::pin::Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        let this = self.get_mut();
        let item = this.observe(item);
        this.queue(item).map_err(axum::Error::new)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl OutSink {
    /// Queues `frame` for the client; `false` when the connection is gone or was just closed as
    /// a slow consumer (nothing more should be offered).
    pub fn offer(&self, frame: Message) -> bool {
        self.queue(Out::Frame(frame)).is_ok()
    }

    /// Queues `out` without waiting; a full queue closes the connection as a slow consumer.
    fn queue(&self, out: Out) -> Result<(), &'static str> {
        match self.sender.try_send(out) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                let _ = self.closer.send(slow_consumer(self.max_queued));
                Err("slow consumer")
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err("closed"),
        }
    }

    /// Subscription `id` ended: its id is free again.
    pub fn finished(&self, id: &str) {
        self.state.running().remove(id);
    }

    /// Tracks acknowledgement and finished subscriptions, and turns the engine's refusal of
    /// `connection_init` into 4403.
    fn observe(&self, item: Message) -> Out {
        match item {
            Message::Text(text) => {
                if let Ok(head) = serde_json::from_str::<Head>(&text) {
                    match (head.kind.as_ref(), head.id.as_deref()) {
                        ("connection_ack", _) => self.state.acked.store(true, Ordering::SeqCst),
                        ("complete" | "error", Some(id)) => {
                            self.state.running().remove(id);
                        }
                        _ => {}
                    }
                }
                Out::Frame(Message::Text(text))
            }
            Message::Close(Some(frame))
                if frame.code == 1002 && !self.state.acked.load(Ordering::SeqCst) =>
            {
                Out::Close(close::FORBIDDEN, format!("Forbidden: {}", frame.reason))
            }
            Message::Close(Some(frame)) => Out::Close(frame.code, frame.reason.to_string()),
            other => Out::Frame(other),
        }
    }
}

/// Where a connection's shareable subscriptions go: the instance's cohorts, once the
/// connection is authenticated.
pub struct Sharing {
    /// The application (schema, cohorts).
    pub state: crate::AppState,
    /// The caller, set when `connection_init` is accepted.
    pub principal: Arc<std::sync::OnceLock<crate::auth::Principal>>,
}

/// The cohorts a connection's subscriptions joined; it leaves them when it ends.
struct Memberships {
    connection: u64,
    joined: std::collections::HashMap<String, Arc<super::cohort::Cohort>>,
}

impl Drop for Memberships {
    fn drop(&mut self) {
        for (id, cohort) in self.joined.drain() {
            cohort.leave(self.connection, &id);
        }
    }
}

static CONNECTIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Splits `socket` into the guarded pair and starts its reader and writer tasks. With
/// `sharing`, shareable subscriptions join cohorts instead of reaching the engine.
pub fn guard(
    socket: WebSocket,
    dialect: Dialect,
    limits: Limits,
    sharing: Option<Sharing>,
) -> Guarded {
    let (mut sink, mut stream) = socket.split();
    let state = Arc::new(State::default());
    let (out_sender, mut out_receiver) = mpsc::channel::<Out>(limits.max_queued.max(1));
    let (closer, mut close_requests) = mpsc::unbounded_channel::<(u16, String)>();
    let (in_sender, in_receiver) = mpsc::channel::<Result<Message, axum::Error>>(16);

    // Writer: frames in order; a close request wins over queued frames; a ping when it is time.
    tokio::spawn(async move {
        let mut pings = tokio::time::interval_at(
            tokio::time::Instant::now() + limits.ping_interval,
            limits.ping_interval,
        );
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let out = tokio::select! {
                biased;
                request = close_requests.recv() => match request {
                    Some((code, reason)) => Out::Close(code, reason),
                    None => break,
                },
                _ = pings.tick() => Out::Frame(Message::Ping(Default::default())),
                out = out_receiver.recv() => match out {
                    Some(out) => out,
                    None => break,
                },
            };
            match out {
                Out::Frame(frame) => {
                    // A client that stopped reading blocks the send: a close request still
                    // ends the connection (the socket is dropped, unsent frames with it).
                    tokio::select! {
                        sent = sink.send(frame) => if sent.is_err() { break },
                        _ = close_requests.recv() => break,
                    }
                }
                Out::Close(code, reason) => {
                    let _ = sink.send(close_frame(code, reason)).await;
                    break;
                }
            }
        }
        let _ = sink.close().await;
    });

    let outgoing = OutSink {
        sender: out_sender.clone(),
        state: state.clone(),
        closer: closer.clone(),
        max_queued: limits.max_queued,
    };

    // Reader: the rules, then the cohorts or the engine.
    {
        let state = state.clone();
        let closer = closer.clone();
        let out = out_sender.clone();
        let shared_out = outgoing.clone();
        tokio::spawn(async move {
            let mut memberships = Memberships {
                connection: CONNECTIONS.fetch_add(1, Ordering::Relaxed),
                joined: Default::default(),
            };
            let mut initialised = false;
            let deadline = tokio::time::sleep(limits.init_timeout);
            tokio::pin!(deadline);
            let idle = tokio::time::sleep(limits.idle_timeout);
            tokio::pin!(idle);
            loop {
                let frame = tokio::select! {
                    () = in_sender.closed() => return,
                    () = &mut deadline, if !initialised => {
                        let _ = closer.send((close::INIT_TIMEOUT, "Connection initialisation timeout".into()));
                        return;
                    }
                    () = &mut idle => {
                        let _ = closer.send((
                            close::IDLE_TIMEOUT,
                            format!(
                                "idle timeout: nothing received for {} s",
                                limits.idle_timeout.as_secs()
                            ),
                        ));
                        return;
                    }
                    frame = stream.next() => frame,
                };
                let frame = match frame {
                    Some(Ok(frame)) => frame,
                    _ => return,
                };
                idle.as_mut()
                    .reset(tokio::time::Instant::now() + limits.idle_timeout);
                let text = match &frame {
                    Message::Text(text) => text.as_str(),
                    Message::Close(_) => return,
                    Message::Ping(_) | Message::Pong(_) => continue,
                    Message::Binary(_) => {
                        let _ = closer.send((
                            close::BAD_MESSAGE,
                            "binary messages are not protocol messages".into(),
                        ));
                        return;
                    }
                };
                let verdict = check(dialect, &state, &mut initialised, limits, text);
                match verdict {
                    Verdict::Subscribe(id, payload) => {
                        let principal =
                            sharing.as_ref().and_then(|s| Some((s, s.principal.get()?)));
                        if let Some((sharing, principal)) = principal
                            && let Some(cohort) = sharing.state.cohorts.join(
                                &sharing.state,
                                principal,
                                super::cohort::Member {
                                    connection: memberships.connection,
                                    id: id.clone(),
                                    dialect,
                                    out: shared_out.clone(),
                                },
                                &payload,
                            )
                        {
                            memberships.joined.insert(id, cohort);
                            continue;
                        }
                        if in_sender.send(Ok(frame)).await.is_err() {
                            return;
                        }
                    }
                    Verdict::Stop(id) => {
                        if let Some(cohort) = memberships.joined.remove(&id) {
                            cohort.leave(memberships.connection, &id);
                            let complete = super::cohort::complete_frame(dialect, &id);
                            if !shared_out.offer(complete) {
                                return;
                            }
                            continue;
                        }
                        if in_sender.send(Ok(frame)).await.is_err() {
                            return;
                        }
                    }
                    Verdict::Pass => {
                        if in_sender.send(Ok(frame)).await.is_err() {
                            return;
                        }
                    }
                    Verdict::Answer(message) => {
                        let answer = Out::Frame(Message::Text(message.to_string().into()));
                        if out.try_send(answer).is_err() {
                            let _ = closer.send(slow_consumer(limits.max_queued));
                            return;
                        }
                    }
                    Verdict::Close(code, reason) => {
                        let _ = closer.send((code, reason));
                        return;
                    }
                }
            }
        });
    }

    Guarded {
        incoming: in_receiver,
        outgoing,
    }
}

enum Verdict {
    Pass,
    /// A subscription that passed the rules: its id and payload.
    Subscribe(String, Value),
    /// The client stops a subscription.
    Stop(String),
    Answer(Value),
    Close(u16, String),
}

fn check(
    dialect: Dialect,
    state: &State,
    initialised: &mut bool,
    limits: Limits,
    text: &str,
) -> Verdict {
    let bad = |why: &str| Verdict::Close(close::BAD_MESSAGE, format!("Invalid message: {why}"));
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return bad("not JSON");
    };
    let Some(kind) = message.get("type").and_then(Value::as_str) else {
        return bad("no `type`");
    };
    if !dialect.known(kind) {
        return bad(&format!("unknown type {kind:?}"));
    }
    if kind == "connection_init" {
        if *initialised {
            return Verdict::Close(
                close::TOO_MANY_INITS,
                "Too many initialisation requests".into(),
            );
        }
        *initialised = true;
        return Verdict::Pass;
    }
    let id = message.get("id").and_then(Value::as_str);
    if kind == dialect.subscribe() {
        let Some(id) = id.filter(|id| !id.is_empty()) else {
            return bad("a subscription needs an `id`");
        };
        if message
            .get("payload")
            .and_then(|p| p.get("query"))
            .is_none()
        {
            return bad("a subscription needs `payload.query`");
        }
        if !state.acked.load(Ordering::SeqCst) {
            return Verdict::Close(close::UNAUTHORIZED, "Unauthorized".into());
        }
        let mut running = state.running();
        if running.contains(id) {
            return Verdict::Close(
                close::DUPLICATE_ID,
                format!("Subscriber for {id} already exists"),
            );
        }
        if running.len() >= limits.max_subscriptions {
            let error = json!({
                "message": format!(
                    "at most {} subscriptions may run on one connection",
                    limits.max_subscriptions
                ),
                "extensions": { "code": "QUERY_TOO_COMPLEX" },
            });
            let payload = match dialect {
                Dialect::TransportWs => json!([error]),
                Dialect::Legacy => error,
            };
            return Verdict::Answer(json!({ "id": id, "type": "error", "payload": payload }));
        }
        running.insert(id.to_string());
        let payload = message.get("payload").cloned().unwrap_or_default();
        return Verdict::Subscribe(id.to_string(), payload);
    }
    if kind == dialect.stop() {
        if let Some(id) = id {
            state.running().remove(id);
            return Verdict::Stop(id.to_string());
        }
        return Verdict::Pass;
    }
    Verdict::Pass
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use futures_util::SinkExt;

    use super::*;

    fn sink(
        max_queued: usize,
    ) -> (
        OutSink,
        mpsc::Receiver<Out>,
        mpsc::UnboundedReceiver<(u16, String)>,
    ) {
        let (sender, receiver) = mpsc::channel(max_queued);
        let (closer, close_requests) = mpsc::unbounded_channel();
        let sink = OutSink {
            sender,
            state: Arc::new(State::default()),
            closer,
            max_queued,
        };
        (sink, receiver, close_requests)
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_is_closed_once_its_queue_is_full() {
        let (mut sink, mut queued, mut closes) = sink(2);
        sink.send(Message::Text("1".into())).await.unwrap();
        sink.send(Message::Text("2".into())).await.unwrap();
        assert!(
            closes.try_recv().is_err(),
            "nothing closed while under the limit"
        );
        assert!(sink.send(Message::Text("3".into())).await.is_err());
        assert_eq!(
            closes.try_recv().unwrap(),
            (
                4413,
                "slow consumer: more than 2 messages waited to be read".to_string()
            )
        );
        // Only what fitted was queued: the server holds at most the limit.
        let mut held = 0;
        while queued.try_recv().is_ok() {
            held += 1;
        }
        assert_eq!(held, 2);
    }

    #[tokio::test]
    async fn a_refused_init_closes_with_4403_and_finished_subscriptions_free_their_id() {
        let (mut sink, mut queued, _) = sink(8);
        sink.state.running().insert("a".into());
        sink.send(Message::Text(r#"{"id":"a","type":"complete"}"#.into()))
            .await
            .unwrap();
        assert!(sink.state.running().is_empty());
        sink.send(Message::Close(Some(CloseFrame {
            code: 1002,
            reason: "invalid token".into(),
        })))
        .await
        .unwrap();
        let _ = queued.try_recv();
        match queued.try_recv() {
            Ok(Out::Close(code, reason)) => {
                assert_eq!((code, reason.as_str()), (4403, "Forbidden: invalid token"))
            }
            _ => panic!("expected a close"),
        }
    }
}
