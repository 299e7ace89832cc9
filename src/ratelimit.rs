//! Per-key token buckets in memory.
//!
//! Each key has its own bucket of `burst` tokens refilled at `requests_per_minute`;
//! one key's burst never touches another key's bucket. Memory is bounded: a bucket
//! that has refilled completely is the same as no bucket, so when the table reaches
//! `MAX_BUCKETS` the full ones are dropped; if every bucket is still draining (more
//! than `MAX_BUCKETS` keys busy at once), the table is cleared, which at worst hands
//! those keys a fresh burst.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

const MAX_BUCKETS: usize = 100_000;

/// What the `RateLimit-*` headers say after one request.
#[derive(Debug, Clone, PartialEq)]
pub struct RateInfo {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// Set when the request was refused: whole seconds (≥ 1) until a token is back.
    pub retry_after: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets, one per key.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(requests_per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_second: f64::from(requests_per_minute.max(1)) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `key`'s bucket if there is one.
    pub fn check(&self, key: &str) -> RateInfo {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> RateInfo {
        let mut buckets = match self.buckets.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let tokens = match buckets.get(key) {
            Some(bucket) => self.refilled(bucket, now),
            None => {
                if buckets.len() >= MAX_BUCKETS {
                    self.shrink(&mut buckets, now);
                }
                self.burst
            }
        };
        let allowed = tokens >= 1.0;
        let left = if allowed { tokens - 1.0 } else { tokens };
        match buckets.get_mut(key) {
            Some(bucket) => {
                bucket.tokens = left;
                bucket.updated = now;
            }
            None => {
                buckets.insert(
                    key.to_string(),
                    Bucket {
                        tokens: left,
                        updated: now,
                    },
                );
            }
        }
        RateInfo {
            limit: self.burst as u32,
            remaining: left.floor().max(0.0) as u32,
            reset_secs: ((self.burst - left) / self.per_second).ceil().max(0.0) as u64,
            retry_after: (!allowed)
                .then(|| ((1.0 - left) / self.per_second).ceil().max(1.0) as u64),
        }
    }

    /// Seconds until `key` has a token again, when it has none now; takes nothing.
    pub fn exhausted(&self, key: &str) -> Option<u64> {
        let now = Instant::now();
        let buckets = match self.buckets.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let tokens = self.refilled(buckets.get(key)?, now);
        (tokens < 1.0).then(|| ((1.0 - tokens) / self.per_second).ceil().max(1.0) as u64)
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.burst)
    }

    fn shrink(&self, buckets: &mut HashMap<String, Bucket>, now: Instant) {
        buckets.retain(|_, bucket| self.refilled(bucket, now) < self.burst);
        if buckets.len() >= MAX_BUCKETS {
            log::warn!("rate limiter: more than {MAX_BUCKETS} keys busy at once; resetting");
            buckets.clear();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refused_then_refilled() {
        let limiter = RateLimiter::new(60, 3);
        let start = Instant::now();
        for remaining in [2, 1, 0] {
            let info = limiter.check_at("k", start);
            assert_eq!(info.remaining, remaining);
            assert_eq!(info.retry_after, None);
        }
        let refused = limiter.check_at("k", start);
        assert_eq!(refused.retry_after, Some(1));
        assert_eq!(refused.limit, 3);
        assert_eq!(refused.reset_secs, 3);
        let later = limiter.check_at("k", start + Duration::from_millis(1100));
        assert_eq!(later.retry_after, None);
    }

    #[test]
    fn keys_are_independent() {
        let limiter = RateLimiter::new(60, 1);
        let now = Instant::now();
        limiter.check_at("a", now);
        assert!(limiter.check_at("a", now).retry_after.is_some());
        assert!(limiter.check_at("b", now).retry_after.is_none());
    }

    #[test]
    fn memory_stays_bounded() {
        let limiter = RateLimiter::new(6000, 1);
        let start = Instant::now();
        for i in 0..MAX_BUCKETS {
            limiter.check_at(&format!("k{i}"), start);
        }
        assert_eq!(limiter.len(), MAX_BUCKETS);
        // A second later every bucket has refilled, so they are dropped.
        limiter.check_at("new", start + Duration::from_secs(1));
        assert_eq!(limiter.len(), 1);
    }
}
