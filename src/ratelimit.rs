//! Per-token budget of query cost per minute, as a token bucket: the budget refills continuously at
//! `limit / 60` per second up to `limit`. Kept in memory per server instance.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// The budget after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateStatus {
    /// Budget per minute.
    pub limit: u64,
    /// Budget left now.
    pub remaining: u64,
    /// Seconds until the budget is full again.
    pub reset_secs: u64,
}

#[derive(Debug)]
struct Bucket {
    level: f64,
    updated: Instant,
}

/// Budgets by key (token id or client address).
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter granting `per_minute` cost per key; 0 disables it.
    pub fn new(per_minute: u64) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The budget per minute (0 when off).
    pub fn per_minute(&self) -> u64 {
        self.per_minute
    }

    /// Whether limiting is on.
    pub fn enabled(&self) -> bool {
        self.per_minute > 0
    }

    fn status(&self, level: f64) -> RateStatus {
        let rate = self.per_minute as f64 / 60.0;
        RateStatus {
            limit: self.per_minute,
            remaining: level.max(0.0).floor() as u64,
            reset_secs: ((self.per_minute as f64 - level) / rate).max(0.0).ceil() as u64,
        }
    }

    /// Spends `cost` from `key`'s budget. When the budget is short, nothing is spent and the error
    /// carries the seconds until it would suffice.
    pub fn spend(&self, key: &str, cost: u64) -> Result<RateStatus, (RateStatus, u64)> {
        if !self.enabled() {
            return Ok(RateStatus {
                limit: 0,
                remaining: 0,
                reset_secs: 0,
            });
        }
        let now = Instant::now();
        let limit = self.per_minute as f64;
        let rate = limit / 60.0;
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() > 100_000 {
            buckets.retain(|_, b| now.duration_since(b.updated).as_secs() < 60);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            level: limit,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.level = (bucket.level + elapsed * rate).min(limit);
        bucket.updated = now;
        let cost = cost as f64;
        if cost <= bucket.level {
            bucket.level -= cost;
            Ok(self.status(bucket.level))
        } else {
            let wait = ((cost.min(limit) - bucket.level) / rate).ceil().max(1.0) as u64;
            Err((self.status(bucket.level), wait))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spends_until_empty_then_refuses_without_spending() {
        // 6 a minute: a unit refills in 10 s, so the figures below hold while this runs in
        // under 10 s.
        let limiter = RateLimiter::new(6);
        let start = Instant::now();
        assert_eq!(limiter.spend("a", 5).map(|s| s.remaining), Ok(1));
        let refused = limiter.spend("a", 2);
        // The missing unit refills 10 s after the first spend: the wait is 10 s less what has
        // passed since, in whole seconds up (10 when this runs in under a second).
        let since = start.elapsed().as_secs_f64();
        let soonest = (10.0 - since).ceil().max(1.0) as u64;
        assert!(
            matches!(
                refused,
                Err((RateStatus { remaining: 1, .. }, wait)) if (soonest..=10).contains(&wait)
            ),
            "{refused:?} ({since} s since the first spend)"
        );
        assert_eq!(limiter.spend("a", 1).map(|s| s.remaining), Ok(0));
        assert_eq!(limiter.spend("b", 1).map(|s| s.remaining), Ok(5));
    }
}
