//! The daemon's clock: every "now" comes from here, so that tests can play a peer whose
//! clock is wrong or pin time to a recorded vector's.

use std::sync::atomic::{AtomicI64, Ordering};

/// Wall-clock seconds, with an adjustable offset so tests can play a peer whose clock is
/// wrong, or pin "now" to a recorded vector's time.
#[derive(Debug, Default)]
pub struct Clock {
    offset: AtomicI64,
    pinned: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> i64 {
        let pinned = self.pinned.load(Ordering::Relaxed);
        if pinned != 0 {
            return pinned;
        }
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        real + self.offset.load(Ordering::Relaxed)
    }

    pub fn set_offset(&self, seconds: i64) {
        self.offset.store(seconds, Ordering::Relaxed);
    }

    pub fn pin(&self, at: i64) {
        self.pinned.store(at, Ordering::Relaxed);
    }
}
