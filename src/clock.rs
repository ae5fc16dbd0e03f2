//! The time routing and other timers go by: the system clock, or in tests a clock that stands
//! still until moved.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// The server's clock.
#[derive(Debug, Default)]
pub struct Clock {
    manual: Mutex<Option<DateTime<Utc>>>,
}

impl Clock {
    /// Now: the system time, or the time the clock was set to.
    pub fn now(&self) -> DateTime<Utc> {
        self.held().unwrap_or_else(Utc::now)
    }

    fn held(&self) -> Option<DateTime<Utc>> {
        match self.manual.lock() {
            Ok(held) => *held,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Stops the clock at `at` (tests drive time with it).
    pub fn set(&self, at: DateTime<Utc>) {
        match self.manual.lock() {
            Ok(mut held) => *held = Some(at),
            Err(poisoned) => *poisoned.into_inner() = Some(at),
        }
    }

    /// Moves a stopped clock forward by `by` (a running one is stopped at now + `by`).
    pub fn advance(&self, by: Duration) {
        self.set(self.now() + by);
    }
}
