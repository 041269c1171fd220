//! Abuse limits: per-key token-bucket rate limits, the replay cache, and the cap on
//! requests in flight.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::{Mutex, RwLock};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter as GovernorLimiter};

use tokio::sync::Semaphore;

use crate::config::{ConsoleConfig, LimitsConfig};

/// Keys kept in a limiter or the replay cache at most; beyond, the oldest go first. Bounds
/// memory whatever an attacker sends.
const MAX_TRACKED: usize = 100_000;

/// `per_minute` requests per key, with bursts up to the same number: governor's GCRA, which
/// behaves as a token bucket of `per_minute` tokens refilled continuously. Its keyed store
/// grows with every key it sees, so the key count is bounded here: past `MAX_TRACKED`,
/// keys whose bucket is full again are dropped (they carry no information), and if that is
/// not enough the whole store is started afresh.
pub struct RateLimiter {
    limiter: Option<RwLock<DefaultKeyedRateLimiter<String>>>,
    quota: Option<Quota>,
}

impl RateLimiter {
    /// 0 = unlimited.
    pub fn new(per_minute: u32) -> RateLimiter {
        let quota = NonZeroU32::new(per_minute).map(Quota::per_minute);
        RateLimiter {
            limiter: quota.map(|q| RwLock::new(GovernorLimiter::keyed(q))),
            quota,
        }
    }

    /// Take one token for `key`; false when the key is over its rate.
    pub fn allow(&self, key: &str) -> bool {
        let (Some(limiter), Some(quota)) = (&self.limiter, self.quota) else {
            return true;
        };
        let key = key.to_string();
        {
            let current = limiter.read().unwrap_or_else(|p| p.into_inner());
            if current.len() < MAX_TRACKED {
                return current.check_key(&key).is_ok();
            }
        }
        let mut current = limiter.write().unwrap_or_else(|p| p.into_inner());
        if current.len() >= MAX_TRACKED {
            current.retain_recent();
            if current.len() >= MAX_TRACKED {
                *current = GovernorLimiter::keyed(quota);
            }
        }
        current.check_key(&key).is_ok()
    }
}

/// What identifies one sealed request: the first 16 bytes of a SHA-256 over the peer, the
/// signature and the RSA-wrapped session key. Short and fixed-size, so memory per request
/// is bounded whatever the sender puts in it; 128 bits leave no room for collisions.
pub type ReplayKey = [u8; 16];

pub fn replay_key(peer_id: i64, signature: &[u8], sealed_key: &[u8]) -> ReplayKey {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(&peer_id.to_be_bytes());
    // The length keeps (signature, key) pairs from sliding into one another.
    hasher.update(&(signature.len() as u64).to_be_bytes());
    hasher.update(signature);
    hasher.update(sealed_key);
    let digest = hasher.finish();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// What the replay cache knows about a key it was just shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    New,
    Replay,
    /// Not in memory, but memory was full and let go of keys still inside the window:
    /// only the state database can tell.
    AskDatabase,
}

#[derive(Default)]
struct SeenKeys {
    first_seen: HashMap<ReplayKey, i64>,
    /// The same keys in arrival order, for expiry and eviction.
    order: VecDeque<(i64, ReplayKey)>,
    /// The newest first-seen time of a key evicted for room (not for age).
    evicted_up_to: Option<i64>,
}

/// Signed requests already executed, so a captured request sent again is refused. Memory
/// holds the newest `capacity` keys and refuses the replays it knows at once; every other key
/// is claimed in the state database before its call runs (by the caller,
/// `state::claim_replay_key`), which is the whole truth across restarts and instances.
pub struct ReplayCache {
    window: i64,
    capacity: usize,
    seen: Mutex<SeenKeys>,
}

impl ReplayCache {
    pub fn new(window_secs: i64, capacity: usize) -> ReplayCache {
        ReplayCache {
            window: window_secs,
            capacity: capacity.max(1),
            seen: Mutex::new(SeenKeys::default()),
        }
    }

    pub fn window(&self) -> i64 {
        self.window
    }

    /// Keys seen at this time or later still count.
    pub fn cutoff(&self, now: i64) -> i64 {
        now.saturating_sub(self.window)
    }

    /// Record `key` at `now` and say whether it was seen inside the window.
    pub fn check(&self, key: &ReplayKey, now: i64) -> Seen {
        if self.window <= 0 {
            return Seen::New;
        }
        let Ok(mut seen) = self.seen.lock() else {
            return Seen::AskDatabase;
        };
        let cutoff = self.cutoff(now);
        seen.expire(cutoff);
        if seen.first_seen.get(key).is_some_and(|at| *at >= cutoff) {
            return Seen::Replay;
        }
        seen.insert(*key, now, self.capacity);
        if seen.evicted_up_to.is_some_and(|at| at >= cutoff) {
            Seen::AskDatabase
        } else {
            Seen::New
        }
    }

    /// Fill memory at start with keys from the state database, newest first. `complete`
    /// says whether these are all the keys inside the window.
    pub fn preload(&self, keys: impl IntoIterator<Item = (ReplayKey, i64)>, complete: bool) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        let mut keys: Vec<(ReplayKey, i64)> = keys.into_iter().collect();
        keys.sort_by_key(|(_, at)| *at);
        if !complete && let Some((_, oldest)) = keys.first() {
            seen.evicted_up_to = Some(*oldest);
        }
        for (key, at) in keys {
            seen.insert(key, at, self.capacity);
        }
    }

    /// Treat every key seen up to `at` as possibly forgotten (see [`Seen::AskDatabase`]).
    pub fn assume_incomplete_until(&self, at: i64) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.evicted_up_to = Some(seen.evicted_up_to.map_or(at, |e| e.max(at)));
        }
    }

    pub fn len(&self) -> usize {
        self.seen.lock().map(|s| s.first_seen.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SeenKeys {
    fn expire(&mut self, cutoff: i64) {
        while let Some((at, oldest)) = self.order.front().copied() {
            if at >= cutoff {
                break;
            }
            self.forget(at, &oldest);
        }
        if self.evicted_up_to.is_some_and(|at| at < cutoff) {
            self.evicted_up_to = None;
        }
    }

    fn insert(&mut self, key: ReplayKey, at: i64, capacity: usize) {
        self.first_seen.insert(key, at);
        self.order.push_back((at, key));
        while self.first_seen.len() > capacity || self.order.len() > capacity.saturating_mul(2) {
            let Some((at, oldest)) = self.order.front().copied() else {
                break;
            };
            if self.forget(at, &oldest) {
                self.evicted_up_to = Some(self.evicted_up_to.map_or(at, |e| e.max(at)));
            }
        }
    }

    /// Drop the oldest arrival; true when it removed a live key (not a stale duplicate).
    fn forget(&mut self, at: i64, key: &ReplayKey) -> bool {
        self.order.pop_front();
        if self.first_seen.get(key) == Some(&at) {
            self.first_seen.remove(key);
            true
        } else {
            false
        }
    }
}

/// Who may register by keyswap, and how fast (`mnet.auto_register`).
pub struct Registrations {
    overall: RateLimiter,
    per_address: RateLimiter,
    pub max_peers: i64,
}

impl Registrations {
    /// Take a registration slot for a request from `address` (None: not over TCP).
    pub fn allow(&self, address: Option<std::net::IpAddr>) -> bool {
        let address = address.map(|a| a.to_string()).unwrap_or_default();
        self.per_address.allow(&address) && self.overall.allow("")
    }
}

/// The console's login limits (docs/console.md, "Accounts, sessions, forms"): per client
/// address and account, per client address whatever the account, and one ceiling for every
/// attempt together. The account is kept as a hash of at most its first 256 bytes, so a
/// guesser's names cost a fixed few bytes each, whatever their length.
///
/// The pair limit is what a guesser meets; the address limit keeps one address from running
/// through many accounts; the ceiling bounds guessing from many addresses at once. Since the
/// address limit is well below the ceiling, one source alone cannot spend the ceiling and
/// lock everyone else out, and guesses against an account from one address leave its owner,
/// coming from another, able to log in.
pub struct LoginLimits {
    per_account: RateLimiter,
    per_address: RateLimiter,
    overall: RateLimiter,
}

/// Which of the login limits refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    Account,
    Address,
    Overall,
}

impl LoginRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginRefusal::Account => "this address and account",
            LoginRefusal::Address => "this address",
            LoginRefusal::Overall => "all addresses together",
        }
    }
}

/// Bytes of an attempted account name that count: names are short, and a longer one is not
/// worth remembering whole.
pub const LOGIN_NAME_BYTES: usize = 256;

impl LoginLimits {
    /// Attempts per minute: `per_account` for one (address, account), `per_address` for one
    /// address, `overall` for all (0 = no limit, each).
    pub fn new(per_account: u32, per_address: u32, overall: u32) -> LoginLimits {
        LoginLimits {
            per_account: RateLimiter::new(per_account),
            per_address: RateLimiter::new(per_address),
            overall: RateLimiter::new(overall),
        }
    }

    /// Take a token for an attempt at `account` from `address`, or say which limit refused
    /// it. The narrowest limit is asked first, so an address over its pair limit does not
    /// spend the wider ones.
    pub fn allow(&self, address: &str, account: &str) -> Result<(), LoginRefusal> {
        if !self.per_account.allow(&login_key(address, account)) {
            return Err(LoginRefusal::Account);
        }
        if !self.per_address.allow(address) {
            return Err(LoginRefusal::Address);
        }
        if !self.overall.allow("") {
            return Err(LoginRefusal::Overall);
        }
        Ok(())
    }
}

/// The key of (address, account): the address (at most 45 bytes as text) and 16 bytes of a
/// SHA-256 of the account's first [`LOGIN_NAME_BYTES`] bytes, in hex.
fn login_key(address: &str, account: &str) -> String {
    let name = account.as_bytes();
    let name = &name[..name.len().min(LOGIN_NAME_BYTES)];
    let digest = openssl::sha::sha256(name);
    format!("{address} {}", hex::encode(&digest[..16]))
}

pub struct Limits {
    pub per_ip: RateLimiter,
    pub per_peer: RateLimiter,
    pub replay: ReplayCache,
    pub in_flight: Semaphore,
    pub registrations: Registrations,
    /// Key refreshes per claimed peer: every request that fails verification under a peer's
    /// name would otherwise make us call that peer's URL.
    pub key_refresh: RateLimiter,
    /// Looks into a shared state for a key pair rotated by another instance, prompted by a
    /// request sealed to a key this one does not hold (one bucket for all senders).
    pub key_follow: RateLimiter,
    /// Logins at the console.
    pub logins: LoginLimits,
}

/// Looks for a rotated key pair prompted by requests; the poll every two seconds finds it
/// anyway, so this only shortens the wait.
const KEY_FOLLOWS_PER_MINUTE: u32 = 120;

/// At most one key refresh per peer per minute; a real rotation needs only one.
const KEY_REFRESHES_PER_MINUTE: u32 = 1;

impl Limits {
    pub fn new(config: &LimitsConfig, console: &ConsoleConfig) -> Limits {
        Limits {
            per_ip: RateLimiter::new(config.per_ip_per_minute),
            per_peer: RateLimiter::new(config.per_peer_per_minute),
            replay: ReplayCache::new(config.replay_window_secs, config.replay_keys_in_memory),
            in_flight: Semaphore::new(config.max_concurrent_requests),
            registrations: Registrations {
                overall: RateLimiter::new(config.auto_register_per_minute),
                per_address: RateLimiter::new(config.auto_register_per_address_per_minute),
                max_peers: i64::from(config.auto_register_max_peers),
            },
            key_refresh: RateLimiter::new(KEY_REFRESHES_PER_MINUTE),
            key_follow: RateLimiter::new(KEY_FOLLOWS_PER_MINUTE),
            logins: LoginLimits::new(
                console.login_attempts_per_minute,
                console.login_attempts_per_address_per_minute,
                console.login_attempts_overall_per_minute,
            ),
        }
    }
}

/// Replay keys from the state database into memory, so that a request captured before a
/// restart is still refused after it.
pub fn load_replay_keys(
    cache: &ReplayCache,
    conn: &mut crate::store::DbConnection,
    now: i64,
) -> Result<usize, crate::store::StoreError> {
    if cache.window() <= 0 {
        return Ok(0);
    }
    let limit = cache.capacity as i64;
    let rows = crate::store::state::recent_replay_keys(conn, cache.cutoff(now), limit + 1)?;
    let complete = rows.len() as i64 <= limit;
    let keys: Vec<(ReplayKey, i64)> = rows
        .iter()
        .take(cache.capacity)
        .filter_map(|(text, at)| Some((key_from_hex(text)?, *at)))
        .collect();
    let loaded = keys.len();
    cache.preload(keys, complete);
    Ok(loaded)
}

pub fn key_to_hex(key: &ReplayKey) -> String {
    hex::encode(key)
}

fn key_from_hex(text: &str) -> Option<ReplayKey> {
    hex::decode(text).ok()?.try_into().ok()
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
    fn a_flood_of_keys_stays_bounded_and_limits_still_hold() {
        let limiter = RateLimiter::new(2);
        assert!(limiter.allow("busy") && limiter.allow("busy"));
        for i in 0..(MAX_TRACKED + 5_000) {
            limiter.allow(&format!("stranger-{i}"));
        }
        let tracked = limiter.limiter.as_ref().unwrap().read().unwrap().len();
        assert!(tracked <= MAX_TRACKED, "{tracked} keys tracked");
        assert!(
            limiter.allow("fresh"),
            "a new key starts with a full bucket"
        );
        assert!(limiter.allow("fresh") && !limiter.allow("fresh"));
    }

    #[test]
    fn login_limits_keep_a_guesser_from_locking_others_out() {
        let limits = LoginLimits::new(3, 5, 8);
        for _ in 0..3 {
            assert_eq!(limits.allow("192.0.2.1", "admin"), Ok(()));
        }
        assert_eq!(
            limits.allow("192.0.2.1", "admin"),
            Err(LoginRefusal::Account)
        );
        // The owner of the account, from elsewhere, still gets in.
        assert_eq!(limits.allow("198.51.100.7", "admin"), Ok(()));
        // The guesser moving to other names meets its address limit...
        assert_eq!(limits.allow("192.0.2.1", "root"), Ok(()));
        assert_eq!(limits.allow("192.0.2.1", "bob"), Ok(()));
        assert_eq!(
            limits.allow("192.0.2.1", "carol"),
            Err(LoginRefusal::Address)
        );
        // ...before the ceiling, which others still have room under.
        assert_eq!(limits.allow("198.51.100.8", "dave"), Ok(()));
        assert_eq!(limits.allow("198.51.100.9", "erin"), Ok(()));
        assert_eq!(
            limits.allow("198.51.100.10", "frank"),
            Err(LoginRefusal::Overall)
        );
    }

    #[test]
    fn login_keys_are_short_whatever_the_name() {
        let long = "x".repeat(64 * 1024);
        let key = login_key("2001:db8::1", &long);
        assert!(key.len() <= 45 + 1 + 32, "{}", key.len());
        assert!(!key.contains("xxx"));
        // Only the first 256 bytes count.
        let mut other = "x".repeat(LOGIN_NAME_BYTES);
        other.push('y');
        assert_eq!(login_key("a", &long), login_key("a", &other));
        assert_ne!(login_key("a", "admin"), login_key("b", "admin"));
        assert_ne!(login_key("a", "admin"), login_key("a", "admin2"));
    }

    #[test]
    fn replays_are_seen_inside_the_window_only() {
        let cache = ReplayCache::new(300, 10);
        let k = replay_key(1, b"sig", b"key");
        assert_eq!(cache.check(&k, 1000), Seen::New);
        assert_eq!(cache.check(&k, 1200), Seen::Replay);
        assert_eq!(
            cache.check(&k, 1301),
            Seen::New,
            "outside the window it is new again"
        );
        assert_eq!(ReplayCache::new(0, 10).check(&k, 1), Seen::New);
        assert_ne!(k, replay_key(2, b"sig", b"key"), "keys are per peer");
        assert_ne!(replay_key(1, b"sigk", b"ey"), k);
    }

    #[test]
    fn a_full_cache_stays_bounded_and_defers_to_the_database() {
        let cache = ReplayCache::new(300, 3);
        let keys: Vec<ReplayKey> = (0..10).map(|i| replay_key(i, b"s", b"k")).collect();
        assert_eq!(cache.check(&keys[0], 1000), Seen::New);
        assert_eq!(cache.check(&keys[1], 1000), Seen::New);
        assert_eq!(cache.check(&keys[2], 1000), Seen::New);
        // The fourth pushes the first out while it is still inside the window.
        assert_eq!(cache.check(&keys[3], 1001), Seen::AskDatabase);
        assert_eq!(cache.len(), 3);
        for (i, key) in keys.iter().enumerate().skip(4) {
            assert_eq!(cache.check(key, 1002 + i as i64), Seen::AskDatabase);
        }
        assert_eq!(cache.len(), 3);
        // Once the evicted keys are past the window, memory is the whole truth again.
        assert_eq!(cache.check(&keys[0], 1400), Seen::New);
    }

    #[test]
    fn preloaded_keys_are_replays() {
        let cache = ReplayCache::new(300, 2);
        let keys: Vec<ReplayKey> = (0..3).map(|i| replay_key(i, b"s", b"k")).collect();
        cache.preload([(keys[1], 990), (keys[2], 995)], false);
        assert_eq!(cache.check(&keys[2], 1000), Seen::Replay);
        assert_eq!(cache.check(&keys[0], 1000), Seen::AskDatabase);
        assert_eq!(key_from_hex(&key_to_hex(&keys[0])), Some(keys[0]));
    }
}
