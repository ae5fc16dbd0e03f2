//! Cohorts: subscriptions that would produce the same results run once and share them.
//!
//! Subscriptions with the same document, operation and variables, by callers of the same
//! organization with the same roles (and, when the selection depends on who asks, the same user)
//! form a cohort. The cohort executes the subscription once, serialises each result once, and
//! hands the same bytes to every member's connection queue; a member's frame differs only by its
//! subscription id, and members with the same id share one frame. Each member keeps its own
//! queue: a member that does not read is closed as a slow consumer without holding up the others.
//!
//! Subscriptions resuming with `after` share too, with those resuming from the same cursor: such
//! a cohort keeps what it sent (its history, up to [`HISTORY_BYTES`], for [`HISTORY_WINDOW`],
//! and within [`TOTAL_HISTORY_BYTES`] for all cohorts) so that a member joining later first gets
//! all of it, then continues with the others. A replay is read at the client's
//! pace: a member whose queue is full falls behind and is caught up from the history, the
//! cohort waiting up to [`CATCH_UP_PATIENCE`] for room before closing it as a slow consumer.
//! Once the history outgrew its limit, nobody joins any more (a later resume starts a cohort of
//! its own) and only what members behind still need is kept. Documents the cohort rules don't
//! recognise run alone, through the protocol engine.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned};
use axum::extract::ws::{Message, Utf8Bytes};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::Notify;
use uuid::Uuid;

use super::guard::{Dialect, OutSink};
use super::lock;
use crate::AppState;
use crate::auth::Principal;
use crate::graphql::context::RequestCtx;

/// Root subscription fields that may be shared.
const SHARED_ROOTS: &[&str] = &[
    "messageAdded",
    "messageUpdated",
    "conversationChanged",
    "typing",
    "queueStats",
    "presenceChanged",
];

/// Root fields whose results depend on the caller's user (their arguments may say "me").
const PER_USER_ROOTS: &[&str] = &["conversationChanged"];

/// Fields whose values depend on who asks.
const PER_USER_FIELDS: &[&str] = &["unreadCount", "lastReadAt"];

/// Bytes of results a resumed cohort keeps for members that join later.
pub const HISTORY_BYTES: usize = 16 * 1024 * 1024;

/// How long after its start a resumed cohort keeps its history for members that join later.
pub const HISTORY_WINDOW: Duration = Duration::from_secs(60);

/// Bytes of history all resumed cohorts of this process keep at most for later members.
pub const TOTAL_HISTORY_BYTES: usize = 256 * 1024 * 1024;

/// Bytes of history kept by all cohorts.
static HISTORY_TOTAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How long a resumed cohort waits for room in a member's queue.
pub const CATCH_UP_PATIENCE: Duration = super::guard::ROOM_PATIENCE;

/// Results queued for one member behind per catch-up pass (the members' lock is held).
const CATCH_UP_BATCH: usize = 64;

/// What makes subscriptions identical.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Key {
    query: String,
    operation_name: Option<String>,
    variables: String,
    org_id: Uuid,
    roles: String,
    user_id: Option<Uuid>,
    /// Resumes from a cursor (`after` is set): the cohort keeps a history.
    resumes: bool,
}

/// One member: a subscription id on a connection.
pub struct Member {
    /// The connection (unique per instance).
    pub connection: u64,
    /// The subscription id the client chose.
    pub id: String,
    /// The connection's subprotocol.
    pub dialect: Dialect,
    /// The connection's queue.
    pub out: OutSink,
    /// In a resumed cohort, the position in the history of the next result this member needs,
    /// when it is behind.
    behind: Option<usize>,
    /// Unique per member ever (a connection may reuse a subscription id).
    serial: u64,
}

static SERIALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Member {
    /// A member on `connection` with subscription `id`.
    pub fn new(connection: u64, id: String, dialect: Dialect, out: OutSink) -> Self {
        Self {
            connection,
            id,
            dialect,
            out,
            behind: None,
            serial: SERIALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// A running shared subscription.
pub struct Cohort {
    key: Key,
    members: Mutex<Members>,
    emptied: Notify,
    /// A member fell behind or joined with a history to catch up on.
    behind: Notify,
}

#[derive(Default)]
struct Members {
    list: Vec<Member>,
    /// Set when the cohort stopped: nobody joins it any more.
    closed: bool,
    /// A resumed cohort's results so far.
    history: Option<History>,
}

/// What a resumed cohort sent, from position `base` on.
struct History {
    results: VecDeque<Sent>,
    base: usize,
    bytes: usize,
    started: std::time::Instant,
}

impl History {
    fn new() -> Self {
        Self {
            results: VecDeque::new(),
            base: 0,
            bytes: 0,
            started: std::time::Instant::now(),
        }
    }

    /// The position of the next result.
    fn end(&self) -> usize {
        self.base + self.results.len()
    }

    /// Whether the whole history is kept for members that join later: within the limits.
    fn complete(&self) -> bool {
        self.base == 0
            && self.bytes <= HISTORY_BYTES
            && self.started.elapsed() < HISTORY_WINDOW
            && HISTORY_TOTAL.load(std::sync::atomic::Ordering::Relaxed) <= TOTAL_HISTORY_BYTES
    }

    /// Bytes counted for a result: its payload and the frames it may keep.
    fn cost(sent: &Sent) -> usize {
        sent.payload.len() * (1 + KEPT_FRAMES) + 128 * KEPT_FRAMES
    }

    fn push(&mut self, sent: Sent) {
        let cost = Self::cost(&sent);
        self.bytes += cost;
        HISTORY_TOTAL.fetch_add(cost, std::sync::atomic::Ordering::Relaxed);
        self.results.push_back(sent);
    }

    fn pop(&mut self) -> Option<Sent> {
        let sent = self.results.pop_front()?;
        let cost = Self::cost(&sent);
        self.bytes -= cost;
        HISTORY_TOTAL.fetch_sub(cost, std::sync::atomic::Ordering::Relaxed);
        self.base += 1;
        Some(sent)
    }
}

impl Drop for History {
    fn drop(&mut self) {
        HISTORY_TOTAL.fetch_sub(self.bytes, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Frames kept per result (for the first subscription ids asked); others are made when sent.
const KEPT_FRAMES: usize = 2;

/// One result as sent: its payload and the frames made of it for the first few subscription ids
/// (clients mostly number subscriptions alike, so members share them).
struct Sent {
    payload: Arc<str>,
    frames: Vec<(Dialect, String, Message)>,
}

impl Sent {
    /// The frame of this result for subscription `id`.
    fn frame(&mut self, dialect: Dialect, id: &str) -> Message {
        if let Some((_, _, message)) = self
            .frames
            .iter()
            .find(|(d, known, _)| *d == dialect && known == id)
        {
            return message.clone();
        }
        let message = frame(dialect, id, "next", Some(&self.payload));
        // Within what the history counts for it ([`History::cost`]).
        if self.frames.len() < KEPT_FRAMES && id.len() <= 64 {
            self.frames.push((dialect, id.to_string(), message.clone()));
        }
        message
    }
}

impl Members {
    /// Whether a new member may join: not stopped, and with the whole history if resumed.
    fn joinable(&self) -> bool {
        !self.closed && self.history.as_ref().is_none_or(History::complete)
    }
}

/// The cohorts of this instance.
#[derive(Default)]
pub struct Cohorts {
    running: Mutex<HashMap<Key, Arc<Cohort>>>,
}

/// A subscribe message's payload.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    query: String,
    #[serde(default)]
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<Value>,
}

/// The cohort key of a subscription, if it may be shared.
fn key_of(payload: &Payload, principal: &Principal) -> Option<Key> {
    let document = async_graphql::parser::parse_query(&payload.query).ok()?;
    let operation = match (&document.operations, payload.operation_name.as_deref()) {
        (DocumentOperations::Single(operation), _) => &operation.node,
        (DocumentOperations::Multiple(operations), Some(name)) => {
            &operations.get(&Name::new(name))?.node
        }
        (DocumentOperations::Multiple(_), None) => return None,
    };
    if operation.ty != OperationType::Subscription {
        return None;
    }
    let [root] = operation.selection_set.node.items.as_slice() else {
        return None;
    };
    let Selection::Field(root) = &root.node else {
        return None;
    };
    let root = &root.node;
    let name = root.name.node.as_str();
    let resumes = root.arguments.iter().any(|(argument, value)| {
        argument.node == "after"
            && value
                .node
                .clone()
                .into_const_with(|name| Ok::<_, ()>(variable(&name, operation, payload)))
                .map_or(true, |value| value != async_graphql::Value::Null)
    });
    if !SHARED_ROOTS.contains(&name) {
        return None;
    }
    let per_user = PER_USER_ROOTS.contains(&name) || mentions(&document, PER_USER_FIELDS);
    Some(Key {
        query: payload.query.clone(),
        operation_name: payload.operation_name.clone(),
        variables: payload
            .variables
            .as_ref()
            .map(Value::to_string)
            .unwrap_or_default(),
        org_id: principal.org_id,
        roles: format!("{:?}", principal.roles),
        user_id: per_user.then(|| principal.user_id()),
        resumes,
    })
}

/// The value of variable `name`: given, else its default, else null.
fn variable(
    name: &Name,
    operation: &async_graphql::parser::types::OperationDefinition,
    payload: &Payload,
) -> async_graphql::Value {
    let given = payload
        .variables
        .as_ref()
        .and_then(|variables| variables.get(name.as_str()));
    if let Some(given) = given {
        return async_graphql::Value::from_json(given.clone()).unwrap_or_default();
    }
    operation
        .variable_definitions
        .iter()
        .find(|definition| definition.node.name.node == *name)
        .and_then(|definition| definition.node.default_value.as_ref())
        .map(|value| value.node.clone())
        .unwrap_or_default()
}

/// Whether any selection of the document (operations and fragments) names one of `fields`.
fn mentions(document: &ExecutableDocument, fields: &[&str]) -> bool {
    fn walk(set: &Positioned<SelectionSet>, fields: &[&str]) -> bool {
        set.node.items.iter().any(|item| match &item.node {
            Selection::Field(field) => {
                fields.contains(&field.node.name.node.as_str())
                    || walk(&field.node.selection_set, fields)
            }
            Selection::InlineFragment(fragment) => walk(&fragment.node.selection_set, fields),
            Selection::FragmentSpread(_) => false,
        })
    }
    document
        .operations
        .iter()
        .any(|(_, operation)| walk(&operation.node.selection_set, fields))
        || document
            .fragments
            .values()
            .any(|fragment| walk(&fragment.node.selection_set, fields))
}

/// The frame of `payload` (serialised once) for a member with subscription `id`.
fn frame(dialect: Dialect, id: &str, kind: &str, payload: Option<&str>) -> Message {
    let id = Value::String(id.to_string()).to_string();
    let kind = match (dialect, kind) {
        (Dialect::Legacy, "next") => "data",
        (_, kind) => kind,
    };
    let text = match payload {
        Some(payload) => format!(r#"{{"id":{id},"type":"{kind}","payload":{payload}}}"#),
        None => format!(r#"{{"id":{id},"type":"{kind}"}}"#),
    };
    Message::Text(Utf8Bytes::from(text))
}

/// Removes `cohort` from the running ones (unless a newer cohort took its key).
fn forget(running: &mut HashMap<Key, Arc<Cohort>>, cohort: &Arc<Cohort>) {
    if running
        .get(&cohort.key)
        .is_some_and(|current| Arc::ptr_eq(current, cohort))
    {
        running.remove(&cohort.key);
    }
}

/// Once the history is no longer kept whole (past its limits), drops the results no member
/// behind still needs (nobody joins from then on).
fn trim(history: &mut History, members: &[Member]) {
    if history.complete() {
        return;
    }
    let needed = members
        .iter()
        .filter_map(|m| m.behind)
        .min()
        .unwrap_or(history.end());
    while history.base < needed && history.pop().is_some() {}
}

/// The `complete` frame for subscription `id`.
pub fn complete_frame(dialect: Dialect, id: &str) -> Message {
    frame(dialect, id, "complete", None)
}

impl Cohorts {
    /// Joins `member`'s subscription (`payload`) to its cohort, starting the cohort when it is
    /// the first; `None` when the subscription is not shareable, and the caller runs it alone.
    /// Returns the cohort to leave later.
    pub fn join(
        &self,
        state: &AppState,
        principal: &Principal,
        member: Member,
        payload: &Value,
    ) -> Option<Arc<Cohort>> {
        let payload: Payload = serde_json::from_value(payload.clone()).ok()?;
        let key = key_of(&payload, principal)?;
        let mut running = lock(&self.running);
        let mut member = member;
        if let Some(cohort) = running.get(&key) {
            let mut members = lock(&cohort.members);
            if members.joinable() {
                let sent = members.history.as_ref().map_or(0, History::end);
                member.behind = (sent > 0).then_some(0);
                members.list.push(member);
                if sent > 0 {
                    cohort.behind.notify_one();
                }
                return Some(cohort.clone());
            }
        }
        let cohort = Arc::new(Cohort {
            key: key.clone(),
            members: Mutex::new(Members {
                list: vec![member],
                closed: false,
                history: key.resumes.then(History::new),
            }),
            emptied: Notify::new(),
            behind: Notify::new(),
        });
        running.insert(key, cohort.clone());
        drop(running);
        let mut request = async_graphql::Request::new(payload.query);
        if let Some(name) = payload.operation_name {
            request = request.operation_name(name);
        }
        if let Some(variables) = payload.variables {
            request = request.variables(async_graphql::Variables::from_json(variables));
        }
        let request = request.data(Arc::new(RequestCtx::new(
            state.clone(),
            Some(principal.clone()),
        )));
        let stream = state.schema.execute_stream(request);
        let registry = state.cohorts.clone();
        tokio::spawn(cohort.clone().run(stream, registry));
        Some(cohort)
    }

    fn remove(&self, cohort: &Arc<Cohort>) {
        forget(&mut lock(&self.running), cohort);
    }

    /// Shared subscriptions running on this instance (for metrics and tests).
    pub fn len(&self) -> usize {
        lock(&self.running).len()
    }

    /// Whether no shared subscription runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Cohort {
    /// Removes member `id` of `connection`; the cohort stops once it has no members.
    /// Whether it was a member (it is not once the cohort ended).
    pub fn leave(&self, connection: u64, id: &str) -> bool {
        let mut members = lock(&self.members);
        let before = members.list.len();
        members
            .list
            .retain(|m| !(m.connection == connection && m.id == id));
        let was = members.list.len() < before;
        if members.list.is_empty() {
            self.emptied.notify_one();
        }
        was
    }

    /// Runs the subscription and shares each result with the members, until it ends or the
    /// last member left.
    async fn run(
        self: Arc<Self>,
        mut stream: futures_util::stream::BoxStream<'static, async_graphql::Response>,
        registry: Arc<Cohorts>,
    ) {
        loop {
            self.catch_up().await;
            let response = tokio::select! {
                response = stream.next() => response,
                () = self.emptied.notified() => {
                    if self.close_if_empty(&registry) {
                        return;
                    }
                    continue;
                }
                () = self.behind.notified() => continue,
            };
            let Some(response) = response else {
                break;
            };
            let payload = match serde_json::to_string(&response) {
                Ok(payload) => payload,
                Err(error) => {
                    tracing::error!(%error, "serialising a subscription result");
                    break;
                }
            };
            self.deliver("next", Some(&payload));
            if self.close_if_empty(&registry) {
                return;
            }
        }
        // The stream ended (an error, or nothing more to send): nobody joins any more; complete
        // every member, once those behind have what was sent.
        registry.remove(&self);
        self.catch_up().await;
        let mut members = lock(&self.members);
        members.closed = true;
        members.history = None;
        for member in members.list.drain(..) {
            member.out.finished(&member.id);
            let _ = member
                .out
                .offer_control(frame(member.dialect, &member.id, "complete", None));
        }
    }

    /// Sends one frame per distinct (dialect, id) to every member. In a resumed cohort the
    /// result joins the history, and a member whose queue is full falls behind instead of
    /// being closed.
    fn deliver(&self, kind: &str, payload: Option<&str>) {
        let mut members = lock(&self.members);
        let Members { list, history, .. } = &mut *members;
        let Some(history) = history else {
            // Members mostly share their id (clients number subscriptions from 1): few frames.
            let mut frames: Vec<(Dialect, String, Message)> = Vec::new();
            list.retain(|member| {
                let known = frames
                    .iter()
                    .find(|(dialect, id, _)| *dialect == member.dialect && *id == member.id)
                    .map(|(_, _, message)| message.clone());
                let message = match known {
                    Some(message) => message,
                    None => {
                        let message = frame(member.dialect, &member.id, kind, payload);
                        frames.push((member.dialect, member.id.clone(), message.clone()));
                        message
                    }
                };
                member.out.offer(message)
            });
            return;
        };
        let payload: Arc<str> = Arc::from(payload.unwrap_or("null"));
        let position = history.end();
        history.push(Sent {
            payload,
            frames: Vec::new(),
        });
        let mut fell_behind = false;
        if let Some(sent) = history.results.back_mut() {
            list.retain_mut(|member| {
                if member.behind.is_some() {
                    return true;
                }
                match member.out.try_offer(sent.frame(member.dialect, &member.id)) {
                    Some(true) => true,
                    Some(false) => {
                        member.behind = Some(position);
                        fell_behind = true;
                        true
                    }
                    None => false,
                }
            });
        }
        if fell_behind {
            self.behind.notify_one();
        }
        trim(history, list);
    }

    /// Brings the members of a resumed cohort that are behind up to date from the history.
    /// Each pass queues what fits for every member behind (at most [`CATCH_UP_BATCH`] each);
    /// when nothing fitted anywhere, it waits for room in the first one's queue, up to
    /// [`CATCH_UP_PATIENCE`], and closes it as a slow consumer when none came.
    async fn catch_up(&self) {
        loop {
            let stuck = {
                let mut members = lock(&self.members);
                let Members { list, history, .. } = &mut *members;
                let Some(history) = history else {
                    return;
                };
                let end = history.end();
                let mut progressed = false;
                let mut stuck = None;
                list.retain_mut(|member| {
                    let Some(mut position) = member.behind else {
                        return true;
                    };
                    let mut batch = 0;
                    while position < end && batch < CATCH_UP_BATCH {
                        // Members behind keep what they need: it is never trimmed.
                        let Some(sent) = position
                            .checked_sub(history.base)
                            .and_then(|i| history.results.get_mut(i))
                        else {
                            return false;
                        };
                        match member.out.try_offer(sent.frame(member.dialect, &member.id)) {
                            Some(true) => {
                                position += 1;
                                batch += 1;
                                progressed = true;
                            }
                            Some(false) => break,
                            None => return false,
                        }
                    }
                    if position >= end {
                        member.behind = None;
                        return true;
                    }
                    member.behind = Some(position);
                    if stuck.is_none()
                        && let Some(sent) = position
                            .checked_sub(history.base)
                            .and_then(|i| history.results.get_mut(i))
                    {
                        let message = sent.frame(member.dialect, &member.id);
                        stuck = Some((member.serial, position, member.out.clone(), message));
                    }
                    true
                });
                if list.is_empty() {
                    self.emptied.notify_one();
                }
                if stuck.is_none() {
                    trim(history, list);
                    return;
                }
                if progressed { None } else { stuck }
            };
            let Some((serial, position, out, message)) = stuck else {
                tokio::task::yield_now().await;
                continue;
            };
            let queued = out.offer_waiting(message, CATCH_UP_PATIENCE).await;
            let mut members = lock(&self.members);
            if queued {
                if let Some(member) = members
                    .list
                    .iter_mut()
                    .find(|m| m.serial == serial && m.behind == Some(position))
                {
                    member.behind = Some(position + 1);
                }
            } else {
                // Gone, or closed as a slow consumer.
                members.list.retain(|m| m.serial != serial);
                if members.list.is_empty() {
                    self.emptied.notify_one();
                }
            }
        }
    }

    /// Closes the cohort when nobody is left; `true` when it did.
    fn close_if_empty(self: &Arc<Self>, registry: &Cohorts) -> bool {
        let mut running = lock(&registry.running);
        let mut members = lock(&self.members);
        if !members.list.is_empty() {
            return false;
        }
        members.closed = true;
        forget(&mut running, self);
        true
    }
}
