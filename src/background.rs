//! Writes made off the request path, and how shutdown waits for them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Writes made off the request path (audit rows, a peer's last contact), counted so that
/// shutdown can let them land instead of dropping them, and so that a caller can wait for
/// the rows of the calls it has made.
#[derive(Debug, Default)]
pub struct BackgroundWrites {
    pending: AtomicUsize,
    idle: tokio::sync::Notify,
}

struct PendingWrite(Arc<BackgroundWrites>);

impl Drop for PendingWrite {
    fn drop(&mut self) {
        if self.0.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl BackgroundWrites {
    /// Run `write` on the current runtime; without one (a plain CLI command outside tokio)
    /// it is dropped, as there is no request to protect from it.
    pub fn spawn(self: &Arc<Self>, write: impl Future<Output = ()> + Send + 'static) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.pending.fetch_add(1, Ordering::AcqRel);
        let guard = PendingWrite(self.clone());
        runtime.spawn(async move {
            let _guard = guard;
            write.await;
        });
    }

    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Resolves once every write spawned so far (and any spawned meanwhile) has finished.
    pub async fn settled(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.pending() == 0 {
                return;
            }
            idle.await;
        }
    }
}
