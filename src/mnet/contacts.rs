//! Peers' last contact times, kept in memory and written to the state database in batches.
//!
//! Every verified request is a contact. Writing it there and then is an UPDATE per call,
//! taking SQLite's single write lock under concurrency, for a column that people read in
//! `peer list` and `/metrics` at the granularity of seconds. So the latest time per peer is
//! kept here and written at most once per [`FLUSH_INTERVAL`]; `serve` writes what is left
//! when it shuts down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::background::BackgroundWrites;
use crate::store::Db;
use crate::store::state;

/// How long a contact may wait in memory before it is in the state database.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(2);

pub struct ContactTimes {
    db: Db,
    background: Arc<BackgroundWrites>,
    interval: Duration,
    /// Peer id → latest contact time not yet written.
    latest: Mutex<HashMap<i64, i64>>,
    /// A timed flush is waiting: the next contacts ride along with it.
    scheduled: AtomicBool,
}

impl ContactTimes {
    pub fn new(db: Db, background: Arc<BackgroundWrites>, interval: Duration) -> Arc<Self> {
        Arc::new(ContactTimes {
            db,
            background,
            interval,
            latest: Mutex::new(HashMap::new()),
            scheduled: AtomicBool::new(false),
        })
    }

    /// Remember a contact; it reaches the database within the flush interval.
    pub fn note(self: &Arc<Self>, peer_id: i64, now: i64) {
        if let Ok(mut latest) = self.latest.lock() {
            let at = latest.entry(peer_id).or_insert(now);
            *at = (*at).max(now);
        }
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime, no timer: the contact waits for the next flush.
            self.scheduled.store(false, Ordering::Release);
            return;
        };
        // The timer itself is not a pending write: only the write it starts is, so that
        // waiting for the writes in flight never waits out an interval.
        let me = self.clone();
        runtime.spawn(async move {
            tokio::time::sleep(me.interval).await;
            me.flush();
        });
    }

    /// Hand every contact noted so far to a background write; shutdown then waits for it
    /// with the other background writes.
    pub fn flush(&self) {
        self.scheduled.store(false, Ordering::Release);
        let batch: Vec<(i64, i64)> = match self.latest.lock() {
            Ok(mut latest) => latest.drain().collect(),
            Err(_) => return,
        };
        if batch.is_empty() {
            return;
        }
        let db = self.db.clone();
        self.background.spawn(async move {
            if let Err(e) = db.run(move |c| state::touch_peers(c, &batch)).await {
                tracing::warn!(error = %e, "could not record the peers' last contact");
            }
        });
    }

    /// Contacts noted and not yet handed to a write.
    pub fn unwritten(&self) -> usize {
        self.latest.lock().map(|l| l.len()).unwrap_or(0)
    }
}

impl std::fmt::Debug for ContactTimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContactTimes")
            .field("unwritten", &self.unwritten())
            .finish_non_exhaustive()
    }
}
