//! Cohorts: subscriptions that would produce the same results run once and share them.
//!
//! Subscriptions with the same document, operation and variables, by callers of the same
//! organization with the same roles (and, when the selection depends on who asks, the same user)
//! form a cohort. The cohort executes the subscription once, serialises each result once, and
//! hands the same bytes to every member's connection queue; a member's frame differs only by its
//! subscription id, and members with the same id share one frame. Each member keeps its own
//! queue: a member that does not read is closed as a slow consumer without holding up the others.
//!
//! Only live subscriptions join cohorts: one resuming with `after` replays from its own cursor
//! and runs alone (through the protocol engine), as do documents the cohort rules don't
//! recognise.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// What makes subscriptions identical.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Key {
    query: String,
    operation_name: Option<String>,
    variables: String,
    org_id: Uuid,
    roles: String,
    user_id: Option<Uuid>,
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
}

/// A running shared subscription.
pub struct Cohort {
    key: Key,
    members: Mutex<Members>,
    emptied: Notify,
}

#[derive(Default)]
struct Members {
    list: Vec<Member>,
    /// Set when the cohort stopped: nobody joins it any more.
    closed: bool,
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
    if !SHARED_ROOTS.contains(&name) || resumes {
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
        if let Some(cohort) = running.get(&key) {
            let mut members = lock(&cohort.members);
            if !members.closed {
                members.list.push(member);
                return Some(cohort.clone());
            }
        }
        let cohort = Arc::new(Cohort {
            key: key.clone(),
            members: Mutex::new(Members {
                list: vec![member],
                closed: false,
            }),
            emptied: Notify::new(),
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
    pub fn leave(&self, connection: u64, id: &str) {
        let mut members = lock(&self.members);
        members
            .list
            .retain(|m| !(m.connection == connection && m.id == id));
        if members.list.is_empty() {
            self.emptied.notify_one();
        }
    }

    /// Runs the subscription and shares each result with the members, until it ends or the
    /// last member left.
    async fn run(
        self: Arc<Self>,
        mut stream: futures_util::stream::BoxStream<'static, async_graphql::Response>,
        registry: Arc<Cohorts>,
    ) {
        loop {
            let response = tokio::select! {
                response = stream.next() => response,
                () = self.emptied.notified() => {
                    if self.close_if_empty(&registry) {
                        return;
                    }
                    continue;
                }
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
        // The stream ended (an error, or nothing more to send): complete every member.
        registry.remove(&self);
        let mut members = lock(&self.members);
        members.closed = true;
        for member in members.list.drain(..) {
            member.out.finished(&member.id);
            let _ = member
                .out
                .offer(frame(member.dialect, &member.id, "complete", None));
        }
    }

    /// Sends one frame per distinct (dialect, id) to every member.
    fn deliver(&self, kind: &str, payload: Option<&str>) {
        // Members mostly share their id (clients number subscriptions from 1): few frames.
        let mut frames: Vec<(Dialect, String, Message)> = Vec::new();
        let mut members = lock(&self.members);
        members.list.retain(|member| {
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
