//! Several `usestats serve` processes on one state database: who they are and how they stay
//! out of each other's way.
//!
//! * Each `serve` beats: its row in the `instances` table (a random id, host, pid, version,
//!   listen address, the fingerprint of the key it signs with) is written at start and every
//!   [`BEAT_INTERVAL`], so `usestats doctor` and `/metrics` show every instance seen in the
//!   last [`SEEN_WITHIN_SECS`] and notice one left behind on an old version or key. A clean
//!   shutdown deletes the row; a crashed instance's row ages out of the listings and is
//!   deleted after [`FORGET_AFTER_SECS`].
//! * A SQLite state serves one instance: [`ServeLock`] keeps a second `serve` away.
//! * Jobs that one instance at a time must do take a PostgreSQL advisory lock
//!   (`store::locks`).

use std::time::Duration;

mod heartbeat;
mod seen;
mod serve_lock;

pub use heartbeat::{Beating, Heartbeat, Identity};
pub use seen::{SeenCache, is_live, seen, spread};
pub use serve_lock::{ServeLock, ServeLockError, lock_path};

/// How often an instance writes its row.
pub const BEAT_INTERVAL: Duration = Duration::from_secs(5);
/// The instances listed by `doctor` and `/metrics`: those that beat this recently.
pub const SEEN_WITHIN_SECS: i64 = 300;
/// An instance whose last beat is older than this (three beats missed) is not compared with
/// the others: it stopped without a clean shutdown, or it is stuck.
pub const LIVE_WITHIN_SECS: i64 = 15;
/// Rows older than this are deleted by any instance's heartbeat.
pub const FORGET_AFTER_SECS: i64 = 86_400;

#[derive(Debug, thiserror::Error)]
pub enum InstancesError {
    #[error("cannot make an instance id: {0}")]
    Random(#[from] openssl::error::ErrorStack),
}
