//! Live updates: the event bus over the event log, GraphQL subscriptions, and the websocket
//! endpoint that serves them.

pub mod bus;
pub mod cohort;
pub mod conversations;
pub mod graphql;
pub mod guard;
pub mod typing;
pub mod ws;

pub use bus::EventBus;

/// Locks `mutex`, taking over a poisoned one (the state it guards stays consistent: every
/// critical section of this module leaves it whole).
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
