//! Abuse limits: per-key token-bucket rate limits, the replay cache, and the cap on
//! requests in flight.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::Semaphore;

use crate::config::LimitsConfig;

/// Keys kept in a limiter or the replay cache at most; beyond, the oldest go first. Bounds
/// memory whatever an attacker sends.
const MAX_TRACKED: usize = 100_000;

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// `per_minute` requests per key, with bursts up to the same number.
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one token for `key`; false when the key is over its rate. 0 = unlimited.
    pub fn allow(&self, key: &str) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        let now = Instant::now();
        let capacity = f64::from(self.per_minute);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(key) {
            // Drop full buckets first: they carry no information.
            let rate = capacity / 60.0;
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < capacity
            });
            if buckets.len() >= MAX_TRACKED {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let refill = now.duration_since(bucket.updated).as_secs_f64() * capacity / 60.0;
        bucket.tokens = (bucket.tokens + refill).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Keys with the time they were first seen, and the same keys in arrival order for expiry.
type SeenKeys = (HashMap<String, i64>, VecDeque<(i64, String)>);

/// Signed requests already executed, so a captured request sent again is refused.
pub struct ReplayCache {
    window: i64,
    seen: Mutex<SeenKeys>,
}

impl ReplayCache {
    pub fn new(window_secs: i64) -> ReplayCache {
        ReplayCache {
            window: window_secs,
            seen: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    /// Record `key` at `now`; true if it was already seen inside the window.
    pub fn seen_before(&self, key: &str, now: i64) -> bool {
        if self.window <= 0 {
            return false;
        }
        let Ok(mut guard) = self.seen.lock() else {
            return false;
        };
        let (map, order) = &mut *guard;
        while let Some((at, oldest)) = order.front() {
            if *at + self.window < now || order.len() > MAX_TRACKED {
                if map.get(oldest) == Some(at) {
                    map.remove(oldest);
                }
                order.pop_front();
            } else {
                break;
            }
        }
        if let Some(at) = map.get(key)
            && *at + self.window >= now
        {
            return true;
        }
        map.insert(key.to_string(), now);
        order.push_back((now, key.to_string()));
        false
    }
}

pub struct Limits {
    pub per_ip: RateLimiter,
    pub per_peer: RateLimiter,
    pub replay: ReplayCache,
    pub in_flight: Semaphore,
    /// Key refreshes per claimed peer: every request that fails verification under a peer's
    /// name would otherwise make us call that peer's URL.
    pub key_refresh: RateLimiter,
}

/// At most one key refresh per peer per minute; a real rotation needs only one.
const KEY_REFRESHES_PER_MINUTE: u32 = 1;

impl Limits {
    pub fn new(config: &LimitsConfig) -> Limits {
        Limits {
            per_ip: RateLimiter::new(config.per_ip_per_minute),
            per_peer: RateLimiter::new(config.per_peer_per_minute),
            replay: ReplayCache::new(config.replay_window_secs),
            in_flight: Semaphore::new(config.max_concurrent_requests),
            key_refresh: RateLimiter::new(KEY_REFRESHES_PER_MINUTE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refuse_beyond_the_rate() {
        let limiter = RateLimiter::new(3);
        assert!(limiter.allow("a") && limiter.allow("a") && limiter.allow("a"));
        assert!(!limiter.allow("a"));
        assert!(limiter.allow("b"), "keys are independent");
        assert!(RateLimiter::new(0).allow("x"));
    }

    #[test]
    fn replays_are_seen_inside_the_window_only() {
        let cache = ReplayCache::new(300);
        assert!(!cache.seen_before("k", 1000));
        assert!(cache.seen_before("k", 1200));
        assert!(
            !cache.seen_before("k", 1301),
            "outside the window it is new again"
        );
        assert!(!ReplayCache::new(0).seen_before("k", 1));
    }
}
