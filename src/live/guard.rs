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
//!   server never queues more for one connection, and other connections are not affected. Live
//!   events shared by a cohort close such a client at once; what a client asked to be replayed
//!   (a resume) and what the protocol engine sends wait for room up to [`ROOM_PATIENCE`] first.
//!
//! Subscriptions beyond the per-connection cap get an `error` message for their id (the
//! connection stays open).

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::lock;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::time::Instant;

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

/// One connection's state, shared by its reader, its writer and whoever queues frames for it
/// (the protocol engine, the cohorts). Nothing here allocates until it is used: an idle
/// connection costs its socket, this and one task.
#[derive(Default)]
struct Shared {
    acked: AtomicBool,
    running: Mutex<HashSet<String>>,
    queue: Mutex<Queue>,
    /// Wakes the writer: a frame was queued, a close was requested, or the engine finished.
    wake: Notify,
    /// Wakes a writer blocked on a send: a close was requested.
    closing: Notify,
    /// Wakes producers waiting for room ([`OutSink::offer_waiting`]).
    room: Notify,
    /// Someone waits for room.
    waiting: AtomicBool,
}

/// What waits for the writer.
#[derive(Default)]
struct Queue {
    frames: VecDeque<Out>,
    /// A close requested by the rules or by a full queue: it goes before queued frames.
    close: Option<(u16, String)>,
    /// The engine and the reader are done: the writer stops once `frames` are sent.
    finished: bool,
    /// Nothing queued any more will be sent (a close was requested or the writer stopped).
    ended: bool,
    /// Producers waiting for room are woken once no more than this many frames wait.
    room_at: usize,
}

/// How long closing may wait for a client that does not read.
const CLOSE_PATIENCE: Duration = Duration::from_secs(1);

/// Control frames that may wait beyond the limit ([`OutSink::offer_control`]).
const CONTROL_ALLOWANCE: usize = 16;

/// Queued frames kept beyond this after a burst are given back once the queue drains.
const KEPT_CAPACITY: usize = 8;

impl Shared {
    fn running(&self) -> MutexGuard<'_, HashSet<String>> {
        lock(&self.running)
    }

    /// Asks the writer to close with `code` (the first request wins).
    fn request_close(&self, (code, reason): (u16, String)) {
        {
            let mut queue = lock(&self.queue);
            if queue.close.is_none() {
                queue.close = Some((code, reason));
            }
            queue.ended = true;
        }
        self.closing.notify_one();
        self.wake.notify_one();
        self.room.notify_waiters();
    }

    /// The engine and the reader are done.
    fn finish(&self) {
        lock(&self.queue).finished = true;
        self.wake.notify_one();
    }

    /// What the writer does next.
    fn next(&self) -> Next {
        let mut queue = lock(&self.queue);
        if let Some(close) = queue.close.take() {
            return Next::Send(Out::Close(close.0, close.1));
        }
        match queue.frames.pop_front() {
            Some(out) => {
                if queue.frames.is_empty() && queue.frames.capacity() > KEPT_CAPACITY {
                    queue.frames = VecDeque::new();
                }
                if queue.frames.len() <= queue.room_at && self.waiting.swap(false, Ordering::SeqCst)
                {
                    self.room.notify_waiters();
                }
                Next::Send(out)
            }
            None if queue.finished => Next::Stop,
            None => Next::Wait,
        }
    }
}

/// The writer's next step.
enum Next {
    Send(Out),
    Wait,
    Stop,
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

/// Whether a frame was queued.
enum Queued {
    Yes,
    /// The connection is closed or closing.
    Gone,
    /// The client's queue is full: the frame back.
    Full(Out),
}

/// What the writer is given to send.
enum Out {
    Frame(Message),
    Close(u16, String),
}

/// A connection's queue as producers see it: offers never wait (when the client's queue is
/// full the connection is closed as a slow consumer) unless they say so. Cohorts hold clones.
#[derive(Clone)]
pub struct OutSink {
    shared: Arc<Shared>,
    max_queued: usize,
}

impl OutSink {
    /// Queues a message of the protocol engine (see [`Self::observe`]); the engine waited for
    /// room first ([`EngineSink`]), and what cohorts queued meanwhile may take it: the control
    /// allowance covers that.
    fn push(&self, item: Message) -> Result<(), axum::Error> {
        self.queue_within(self.observe(item), self.max_queued + CONTROL_ALLOWANCE)
            .map_err(axum::Error::new)
    }

    /// Queues `frame` for the client; `false` when the connection is gone or was just closed as
    /// a slow consumer (nothing more should be offered).
    pub fn offer(&self, frame: Message) -> bool {
        self.queue(Out::Frame(frame)).is_ok()
    }

    /// Queues `frame` unless the client's queue is full (which, unlike [`Self::offer`], does not
    /// close the connection): `Some(true)` queued, `Some(false)` full, `None` gone.
    pub fn try_offer(&self, frame: Message) -> Option<bool> {
        match self.try_queue(Out::Frame(frame)) {
            Queued::Yes => Some(true),
            Queued::Full(_) => Some(false),
            Queued::Gone => None,
        }
    }

    /// Queues `frame`, waiting up to `patience` for room while the client's queue is full (for
    /// replays, which the client asked for and may read at its pace); `false` when the
    /// connection is gone, or was closed as a slow consumer because no room came in time.
    pub async fn offer_waiting(&self, frame: Message, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        let mut out = Out::Frame(frame);
        loop {
            out = match self.try_queue(out) {
                Queued::Yes => return true,
                Queued::Gone => return false,
                Queued::Full(out) => out,
            };
            if !self.clone().room(deadline).await {
                return false;
            }
        }
    }

    /// Whether the client's queue is full (and the connection not closed).
    fn full(&self) -> bool {
        let queue = lock(&self.shared.queue);
        !queue.ended && queue.frames.len() >= self.max_queued
    }

    /// Waits until the client's queue has room (`true`) or the connection is gone (`false`); a
    /// queue still full at `deadline` closes it as a slow consumer.
    async fn room(self, deadline: Instant) -> bool {
        loop {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            self.shared.waiting.store(true, Ordering::SeqCst);
            {
                let queue = lock(&self.shared.queue);
                if queue.ended {
                    return false;
                }
                if queue.frames.len() < self.max_queued {
                    return true;
                }
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                self.shared.request_close(slow_consumer(self.max_queued));
                return false;
            }
        }
    }

    /// Queues a control frame (`complete`, an answer of the protocol engine): it may go up to
    /// [`CONTROL_ALLOWANCE`] frames over the limit, so that a client keeping up with a replay
    /// that filled its queue is not closed for it.
    pub fn offer_control(&self, frame: Message) -> bool {
        self.queue_within(Out::Frame(frame), self.max_queued + CONTROL_ALLOWANCE)
            .is_ok()
    }

    /// Queues `out` unless the client's queue is full.
    fn try_queue(&self, out: Out) -> Queued {
        self.try_queue_within(out, self.max_queued)
    }

    /// Queues `out` unless `limit` frames wait.
    fn try_queue_within(&self, out: Out, limit: usize) -> Queued {
        let mut queue = lock(&self.shared.queue);
        if queue.ended {
            return Queued::Gone;
        }
        if queue.frames.len() >= limit {
            return Queued::Full(out);
        }
        queue.frames.push_back(out);
        drop(queue);
        self.shared.wake.notify_one();
        Queued::Yes
    }

    /// Queues `out` without waiting; a full queue closes the connection as a slow consumer.
    fn queue(&self, out: Out) -> Result<(), &'static str> {
        self.queue_within(out, self.max_queued)
    }

    /// Queues `out` unless `limit` frames wait, which closes the connection as a slow consumer.
    fn queue_within(&self, out: Out, limit: usize) -> Result<(), &'static str> {
        match self.try_queue_within(out, limit) {
            Queued::Yes => Ok(()),
            Queued::Gone => Err("closed"),
            Queued::Full(_) => {
                self.shared.request_close(slow_consumer(self.max_queued));
                Err("slow consumer")
            }
        }
    }

    /// Subscription `id` ended: its id is free again.
    pub fn finished(&self, id: &str) {
        self.shared.running().remove(id);
    }

    /// Tracks acknowledgement and finished subscriptions, and turns the engine's refusal of
    /// `connection_init` into 4403.
    fn observe(&self, item: Message) -> Out {
        match item {
            Message::Text(text) => {
                if let Ok(head) = serde_json::from_str::<Head>(&text) {
                    match (head.kind.as_ref(), head.id.as_deref()) {
                        ("connection_ack", _) => self.shared.acked.store(true, Ordering::SeqCst),
                        ("complete" | "error", Some(id)) => {
                            self.shared.running().remove(id);
                        }
                        _ => {}
                    }
                }
                Out::Frame(Message::Text(text))
            }
            Message::Close(Some(frame))
                if frame.code == 1002 && !self.shared.acked.load(Ordering::SeqCst) =>
            {
                Out::Close(close::FORBIDDEN, format!("Forbidden: {}", frame.reason))
            }
            Message::Close(Some(frame)) => Out::Close(frame.code, frame.reason.to_string()),
            other => Out::Frame(other),
        }
    }
}

/// How long a producer that may wait (a replay, the protocol engine) waits for room in a full
/// client queue before the connection is closed as a slow consumer.
pub const ROOM_PATIENCE: Duration = Duration::from_secs(10);

/// The protocol engine's sink: like [`OutSink`], but when the client's queue is full the engine
/// waits for room (up to [`ROOM_PATIENCE`]) instead of the connection being closed at once, so
/// a replay the engine runs goes at the client's pace. Live events the engine holds meanwhile
/// wait in their streams, which end with a "resume" error when they fall too far behind.
pub struct EngineSink {
    out: OutSink,
    room: Option<std::pin::Pin<Box<dyn Future<Output = bool> + Send>>>,
}

impl futures_util::Sink<Message> for EngineSink {
    type Error = axum::Error;

    fn poll_ready(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        use std::task::Poll;
        let this = self.get_mut();
        loop {
            if let Some(room) = this.room.as_mut() {
                let ready = std::task::ready!(room.as_mut().poll(cx));
                this.room = None;
                return Poll::Ready(if ready {
                    Ok(())
                } else {
                    Err(axum::Error::new("slow consumer"))
                });
            }
            if !this.out.full() {
                return Poll::Ready(Ok(()));
            }
            let deadline = Instant::now() + ROOM_PATIENCE;
            this.room = Some(Box::pin(this.out.clone().room(deadline)));
        }
    }

    fn start_send(self: std::pin::Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        self.out.push(item)
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

/// Serves `socket` under the rules: `engine` gets the client's accepted messages and a sink for
/// its own, and runs alongside the writer in this one task (no task or channel per connection
/// besides). Returns when the connection is over. With `sharing`, shareable subscriptions join
/// cohorts instead of reaching the engine.
pub async fn serve<F, Fut>(
    socket: WebSocket,
    dialect: Dialect,
    limits: Limits,
    sharing: Option<Sharing>,
    engine: F,
) where
    F: FnOnce(Incoming, EngineSink) -> Fut,
    Fut: Future<Output = ()>,
{
    let (sink, stream) = socket.split();
    let shared = Arc::new(Shared::default());
    lock(&shared.queue).room_at = limits.max_queued / 2;
    let outgoing = OutSink {
        shared: shared.clone(),
        max_queued: limits.max_queued.max(1),
    };
    let now = Instant::now();
    let incoming = Incoming {
        stream,
        timer: tokio::time::sleep_until(now + limits.init_timeout.min(limits.idle_timeout)),
        init_deadline: now + limits.init_timeout,
        initialised: false,
        dialect,
        limits,
        out: outgoing.clone(),
        sharing,
        memberships: Memberships {
            connection: CONNECTIONS.fetch_add(1, Ordering::Relaxed),
            joined: Default::default(),
        },
    };
    let engine = engine(
        incoming,
        EngineSink {
            out: outgoing,
            room: None,
        },
    );
    let writer = write(sink, shared.clone(), limits.ping_interval);
    tokio::pin!(engine, writer);
    tokio::select! {
        () = &mut engine => {
            shared.finish();
            writer.await;
        }
        // The writer stopped (a close was sent, or the socket failed): nothing more to serve.
        () = &mut writer => {}
    }
}

/// Sends queued frames in order (a close request first), and a ping when it is time.
async fn write(mut sink: SplitSink<WebSocket, Message>, shared: Arc<Shared>, ping: Duration) {
    let mut pings = tokio::time::interval_at(Instant::now() + ping, ping);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // A ping when it is time, even while frames keep waiting (a long replay).
        if futures_util::FutureExt::now_or_never(pings.tick()).is_some() {
            tokio::select! {
                biased;
                () = shared.closing.notified() => continue,
                sent = sink.send(Message::Ping(Default::default())) => if sent.is_err() { break },
            }
        }
        let frame = match shared.next() {
            Next::Send(Out::Frame(frame)) => frame,
            Next::Send(Out::Close(code, reason)) => {
                // A client that does not read cannot hold the connection open.
                let _ = tokio::time::timeout(CLOSE_PATIENCE, sink.send(close_frame(code, reason)))
                    .await;
                break;
            }
            Next::Stop => break,
            Next::Wait => tokio::select! {
                biased;
                () = shared.wake.notified() => continue,
                _ = pings.tick() => Message::Ping(Default::default()),
            },
        };
        // A client that stopped reading blocks the send: a close request still ends the
        // connection (its close frame goes next, waiting at most `CLOSE_PATIENCE`; unsent
        // frames are dropped).
        tokio::select! {
            biased;
            () = shared.closing.notified() => continue,
            sent = sink.send(frame) => if sent.is_err() { break },
        }
    }
    lock(&shared.queue).ended = true;
    shared.room.notify_waiters();
    let _ = tokio::time::timeout(CLOSE_PATIENCE, sink.close()).await;
}

pin_project_lite::pin_project! {
    /// The client's messages that passed the rules, for the protocol engine. Reading happens as
    /// the engine asks for the next message; subscriptions that join cohorts never reach it.
    pub struct Incoming {
        stream: SplitStream<WebSocket>,
        // The init deadline until `connection_init` came, then the idle deadline.
        #[pin]
        timer: tokio::time::Sleep,
        init_deadline: Instant,
        initialised: bool,
        dialect: Dialect,
        limits: Limits,
        out: OutSink,
        sharing: Option<Sharing>,
        memberships: Memberships,
    }
}

impl futures_util::Stream for Incoming {
    type Item = Result<Message, axum::Error>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let mut this = self.project();
        let shared = this.out.shared.clone();
        loop {
            if this.timer.as_mut().poll(cx).is_ready() {
                let timeout = if !*this.initialised && this.timer.deadline() >= *this.init_deadline
                {
                    (
                        close::INIT_TIMEOUT,
                        "Connection initialisation timeout".into(),
                    )
                } else {
                    (
                        close::IDLE_TIMEOUT,
                        format!(
                            "idle timeout: nothing received for {} s",
                            this.limits.idle_timeout.as_secs()
                        ),
                    )
                };
                shared.request_close(timeout);
                return Poll::Ready(None);
            }
            let frame = match this.stream.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(_) => return Poll::Ready(None),
            };
            let text = match &frame {
                Message::Text(text) => text.as_str(),
                Message::Close(_) => return Poll::Ready(None),
                Message::Ping(_) | Message::Pong(_) => {
                    this.timer.as_mut().reset(deadline(
                        *this.initialised,
                        *this.init_deadline,
                        this.limits,
                    ));
                    continue;
                }
                Message::Binary(_) => {
                    shared.request_close((
                        close::BAD_MESSAGE,
                        "binary messages are not protocol messages".into(),
                    ));
                    return Poll::Ready(None);
                }
            };
            let verdict = check(*this.dialect, &shared, this.initialised, *this.limits, text);
            this.timer.as_mut().reset(deadline(
                *this.initialised,
                *this.init_deadline,
                this.limits,
            ));
            match verdict {
                Verdict::Subscribe(id, payload) => {
                    // The id is free (the rules checked): an entry for it is of a cohort that
                    // ended.
                    this.memberships.joined.remove(&id);
                    let sharing = this.sharing.as_ref();
                    if let Some((sharing, principal)) =
                        sharing.and_then(|s| Some((s, s.principal.get()?)))
                        && let Some(cohort) = sharing.state.cohorts.join(
                            &sharing.state,
                            principal,
                            super::cohort::Member::new(
                                this.memberships.connection,
                                id.clone(),
                                *this.dialect,
                                this.out.clone(),
                            ),
                            &payload,
                        )
                    {
                        this.memberships.joined.insert(id, cohort);
                        continue;
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Verdict::Stop(id) => {
                    // A cohort that ended completed its members itself: the id may since
                    // belong to a subscription of the engine.
                    let Some(cohort) = this.memberships.joined.remove(&id) else {
                        return Poll::Ready(Some(Ok(frame)));
                    };
                    if !cohort.leave(this.memberships.connection, &id) {
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    let complete = super::cohort::complete_frame(*this.dialect, &id);
                    if !this.out.offer_control(complete) {
                        return Poll::Ready(None);
                    }
                }
                Verdict::Pass => return Poll::Ready(Some(Ok(frame))),
                Verdict::Answer(message) => {
                    if !this.out.offer(Message::Text(message.to_string().into())) {
                        return Poll::Ready(None);
                    }
                }
                Verdict::Close(code, reason) => {
                    shared.request_close((code, reason));
                    return Poll::Ready(None);
                }
            }
        }
    }
}

/// When the reader gives up waiting: the init deadline until `connection_init` came (or the
/// idle deadline if sooner), then the idle deadline, counted from now.
fn deadline(initialised: bool, init_deadline: Instant, limits: &Limits) -> Instant {
    let idle = Instant::now() + limits.idle_timeout;
    if initialised {
        idle
    } else {
        idle.min(init_deadline)
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
    state: &Shared,
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

    fn sink(max_queued: usize) -> OutSink {
        let shared = Arc::new(Shared::default());
        lock(&shared.queue).room_at = max_queued / 2;
        OutSink { shared, max_queued }
    }

    #[tokio::test]
    async fn a_replay_waits_for_room_and_a_reader_that_never_makes_room_is_closed() {
        let sink = sink(2);
        assert_eq!(sink.try_offer(Message::Text("1".into())), Some(true));
        assert_eq!(sink.try_offer(Message::Text("2".into())), Some(true));
        assert_eq!(sink.try_offer(Message::Text("3".into())), Some(false));
        assert!(
            lock(&sink.shared.queue).close.is_none(),
            "full is not closed"
        );
        // The writer takes one: the waiting offer gets its place.
        let waiting = {
            let sink = sink.clone();
            tokio::spawn(async move {
                sink.offer_waiting(Message::Text("3".into()), Duration::from_secs(5))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        assert!(matches!(sink.shared.next(), Next::Send(_)));
        assert!(waiting.await.unwrap());
        assert_eq!(lock(&sink.shared.queue).frames.len(), 2);
        // Nobody reads: after its patience the connection is closed as a slow consumer.
        assert!(
            !sink
                .offer_waiting(Message::Text("4".into()), Duration::from_millis(50))
                .await
        );
        assert_eq!(
            lock(&sink.shared.queue).close.as_ref().map(|c| c.0),
            Some(4413)
        );
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_is_closed_once_its_queue_is_full() {
        let sink = sink(2);
        assert!(sink.offer(Message::Text("1".into())));
        assert!(sink.offer(Message::Text("2".into())));
        assert!(
            lock(&sink.shared.queue).close.is_none(),
            "nothing closed while under the limit"
        );
        assert!(!sink.offer(Message::Text("3".into())));
        // The close goes first; only what fitted was queued: the server holds at most the limit.
        let mut sent = Vec::new();
        while let Next::Send(out) = sink.shared.next() {
            sent.push(match out {
                Out::Frame(Message::Text(text)) => text.to_string(),
                Out::Close(code, reason) => format!("{code} {reason}"),
                Out::Frame(_) => "other".into(),
            });
        }
        assert_eq!(
            sent,
            [
                "4413 slow consumer: more than 2 messages waited to be read",
                "1",
                "2"
            ]
        );
        // Nothing is queued after the close.
        assert!(!sink.offer(Message::Text("4".into())));
    }

    #[tokio::test]
    async fn the_engine_waits_for_room_instead_of_closing_the_connection() {
        let out = sink(2);
        let mut engine = EngineSink {
            out: out.clone(),
            room: None,
        };
        engine.send(Message::Text("1".into())).await.unwrap();
        engine.send(Message::Text("2".into())).await.unwrap();
        let third =
            tokio::spawn(
                async move { engine.send(Message::Text("3".into())).await.map(|_| engine) },
            );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!third.is_finished(), "waits while the queue is full");
        assert!(lock(&out.shared.queue).close.is_none());
        // The writer takes two (down to half the limit): the engine goes on.
        assert!(matches!(out.shared.next(), Next::Send(_)));
        assert!(matches!(out.shared.next(), Next::Send(_)));
        let engine = third.await.unwrap().unwrap();
        assert_eq!(lock(&out.shared.queue).frames.len(), 1);
        drop(engine);
    }

    #[tokio::test]
    async fn control_frames_may_go_a_little_over_the_limit() {
        let sink = sink(2);
        assert!(sink.offer(Message::Text("1".into())));
        assert!(sink.offer(Message::Text("2".into())));
        for _ in 0..CONTROL_ALLOWANCE {
            assert!(sink.offer_control(Message::Text("complete".into())));
        }
        assert!(lock(&sink.shared.queue).close.is_none());
        assert!(!sink.offer_control(Message::Text("complete".into())));
        assert_eq!(
            lock(&sink.shared.queue).close.as_ref().map(|c| c.0),
            Some(4413)
        );
    }

    #[tokio::test]
    async fn a_drained_queue_gives_back_what_a_burst_took() {
        let sink = sink(100);
        for i in 0..50 {
            assert!(sink.offer(Message::Text(i.to_string().into())));
        }
        assert!(lock(&sink.shared.queue).frames.capacity() >= 50);
        while let Next::Send(_) = sink.shared.next() {}
        assert_eq!(lock(&sink.shared.queue).frames.capacity(), 0);
        sink.shared.finish();
        assert!(matches!(sink.shared.next(), Next::Stop));
    }

    #[tokio::test]
    async fn a_refused_init_closes_with_4403_and_finished_subscriptions_free_their_id() {
        let sink = sink(8);
        sink.shared.running().insert("a".into());
        sink.push(Message::Text(r#"{"id":"a","type":"complete"}"#.into()))
            .unwrap();
        assert!(sink.shared.running().is_empty());
        sink.push(Message::Close(Some(CloseFrame {
            code: 1002,
            reason: "invalid token".into(),
        })))
        .unwrap();
        let _ = sink.shared.next();
        match sink.shared.next() {
            Next::Send(Out::Close(code, reason)) => {
                assert_eq!((code, reason.as_str()), (4403, "Forbidden: invalid token"))
            }
            _ => panic!("expected a close"),
        }
    }
}
