//! Routing of queued conversations: offers to eligible agents by the queue's algorithm, accept
//! and decline, timeouts, wrap-up. The router of each instance routes conversations as they
//! enter a queue (from the event bus) and sweeps on an interval; offers are rows with partial
//! unique indexes, so several instances never make two offer rounds for one conversation.

pub mod graphql;
pub mod service;

use std::time::Duration;

use crate::AppState;
use crate::conversations::event_types;

/// Event types after which a conversation may wait for an agent (a declined offer is routed on
/// by `declineOffer` itself, a lapsed one by the sweep that timed it out).
const ROUTE_AFTER: &[&str] = &[
    event_types::CREATED,
    event_types::ENQUEUED,
    event_types::TRANSFERRED,
    event_types::REOPENED,
    event_types::PENDING_EXPIRED,
    event_types::UNASSIGNED,
];

/// Runs the sweep once at the server clock's now (tests call it after moving the clock).
pub async fn tick(state: &AppState) -> crate::error::AppResult<usize> {
    Ok(service::sweep(&state.db, state.clock.now()).await?.len())
}

/// Starts this instance's router on `db`: routes conversations as events say they entered a
/// queue, and sweeps every `interval` (none when zero).
pub fn start(
    state: AppState,
    db: sea_orm::DatabaseConnection,
    interval: Duration,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let mut events = state.bus.subscribe();
    let routing = state.clone();
    let routing_db = db.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                // Missed events are covered by the sweep.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            if event.subject_type != crate::conversations::SUBJECT
                || !ROUTE_AFTER.contains(&event.event_type.as_str())
            {
                continue;
            }
            let now = routing.clock.now();
            if let Err(error) = service::route(&routing_db, event.subject_id, now).await {
                tracing::warn!(?error, "routing a conversation");
            }
        }
    }));
    if !interval.is_zero() {
        tasks.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(error) = service::sweep(&db, state.clock.now()).await {
                    tracing::warn!(?error, "routing sweep");
                }
            }
        }));
    }
    tasks
}
