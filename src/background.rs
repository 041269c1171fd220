//! Writes made off the request path, and how shutdown waits for them.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Writes made off the request path (audit rows, a peer's last contact), counted so that
/// shutdown can let them land instead of dropping them, and so that a caller can wait for
/// the rows of the calls it has made.
#[derive(Debug, Default)]
pub struct BackgroundWrites {
    pending: AtomicUsize,
    idle: tokio::sync::Notify,
    /// Bumped (and `hurry` notified) by [`BackgroundWrites::settled`]: batches waiting out
    /// their delay write at once.
    hurry_count: AtomicU64,
    hurry: tokio::sync::Notify,
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
    /// Returns whether it was spawned.
    pub fn spawn(self: &Arc<Self>, write: impl Future<Output = ()> + Send + 'static) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        self.pending.fetch_add(1, Ordering::AcqRel);
        let guard = PendingWrite(self.clone());
        runtime.spawn(async move {
            let _guard = guard;
            write.await;
        });
        true
    }

    fn hurry_batches(&self) {
        self.hurry_count.fetch_add(1, Ordering::AcqRel);
        self.hurry.notify_waiters();
    }

    /// A token for [`BackgroundWrites::wait_unless_hurried`], taken when a batch is started.
    fn hurried(&self) -> u64 {
        self.hurry_count.load(Ordering::Acquire)
    }

    /// Sleep `delay`, or less if someone waited for the writes since `token` was taken.
    async fn wait_unless_hurried(&self, delay: Duration, token: u64) {
        let hurry = self.hurry.notified();
        tokio::pin!(hurry);
        hurry.as_mut().enable();
        if self.hurried() != token {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = hurry => {}
        }
    }

    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Resolves once every write spawned so far (and any spawned meanwhile) has finished.
    pub async fn settled(&self) {
        loop {
            self.hurry_batches();
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

/// Rows written off the request path in batches: one transaction per batch instead of one
/// per call, each of which cost a hand-off to a blocking thread, the database's write lock
/// and a commit. A row waits at most `delay` (less when someone waits for the writes:
/// [`BackgroundWrites::settled`] hurries every batch), and a waiting batch counts as a
/// pending write, so shutdown writes it instead of dropping it.
pub struct Batched<T> {
    background: Arc<BackgroundWrites>,
    delay: Duration,
    queue: Mutex<Vec<T>>,
    /// Batches taken from the queue whose write has not finished: still to be asked about
    /// (see [`Batched::any`]).
    writing: Mutex<Vec<Arc<Vec<T>>>>,
    /// A write is waiting out the delay: the next rows ride along with it.
    scheduled: AtomicBool,
    write: BatchWrite<T>,
}

/// Writes one batch; true when it is in the database.
type BatchWrite<T> =
    Box<dyn Fn(Arc<Vec<T>>) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// Attempts at writing one batch before it is given up (logged as an error). The waits between
/// them grow by `delay` each time, so a state database that is down for a few seconds (a
/// restart, a lock held by another writer) loses nothing; a shutdown hurries through them.
const WRITE_ATTEMPTS: u32 = 10;

impl<T: Send + Sync + 'static> Batched<T> {
    pub fn new<F, Fut>(background: Arc<BackgroundWrites>, delay: Duration, write: F) -> Arc<Self>
    where
        F: Fn(Arc<Vec<T>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        Arc::new(Batched {
            background,
            delay,
            queue: Mutex::new(Vec::new()),
            writing: Mutex::new(Vec::new()),
            scheduled: AtomicBool::new(false),
            write: Box::new(move |batch| Box::pin(write(batch))),
        })
    }

    /// Queue a row; it is written within the delay.
    pub fn push(self: &Arc<Self>, row: T) {
        lock(&self.queue).push(row);
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        let hurried = self.background.hurried();
        let spawned = self.background.spawn(async move {
            me.background.wait_unless_hurried(me.delay, hurried).await;
            me.write_queued(hurried).await;
        });
        if !spawned {
            // No runtime (a CLI command outside tokio): nothing to protect, and no way to
            // write later; as a lone write would be, the rows are dropped.
            self.scheduled.store(false, Ordering::Release);
            lock(&self.queue).clear();
        }
    }

    /// `hurried`: the token the write was scheduled with; once someone waits for the writes
    /// (a shutdown), the retries below go at once too.
    async fn write_queued(&self, hurried: u64) {
        // Cleared before the queue is taken: a row queued after this either is in the batch
        // taken below or schedules a write of its own.
        self.scheduled.store(false, Ordering::Release);
        // Moved to `writing` before the queue's lock is let go: a row must never be in
        // neither, or `any` could miss it in between (a replay key, then run twice).
        let batch = {
            let mut queue = lock(&self.queue);
            if queue.is_empty() {
                return;
            }
            let batch = Arc::new(std::mem::take(&mut *queue));
            lock(&self.writing).push(batch.clone());
            batch
        };
        // The batch stays in `writing`, and so is still seen by `any`, until it is written
        // or given up.
        let mut attempt = 1;
        while !(self.write)(batch.clone()).await {
            if attempt >= WRITE_ATTEMPTS {
                tracing::error!(
                    rows = batch.len(),
                    attempts = attempt,
                    "background writes given up: the state database refused them every time"
                );
                break;
            }
            self.background
                .wait_unless_hurried(self.delay.saturating_mul(attempt), hurried)
                .await;
            attempt += 1;
        }
        lock(&self.writing).retain(|b| !Arc::ptr_eq(b, &batch));
    }

    /// Whether a row matching `wanted` is queued or being written: not yet in the database,
    /// but already seen.
    pub fn any(&self, wanted: impl Fn(&T) -> bool) -> bool {
        lock(&self.queue).iter().any(&wanted)
            || lock(&self.writing)
                .iter()
                .any(|batch| batch.iter().any(&wanted))
    }

    /// Rows not yet handed to a write.
    pub fn queued(&self) -> usize {
        lock(&self.queue).len()
    }
}

/// A panic while a lock is held cannot leave a half-pushed Vec behind: the data is usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<T> std::fmt::Debug for Batched<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batched")
            .field("delay", &self.delay)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queued_rows_are_seen_and_written_in_one_batch_when_someone_waits() {
        let background = Arc::new(BackgroundWrites::default());
        let written = Arc::new(Mutex::new(Vec::new()));
        let sink = written.clone();
        // A delay no test would wait out: `settled` must hurry the batch.
        let batch = Batched::new(background.clone(), Duration::from_secs(3600), move |rows| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(rows.as_ref().clone());
                true
            }
        });
        for n in 0..5u32 {
            batch.push(n);
        }
        assert!(
            batch.any(|&n| n == 3),
            "a queued row is seen before it is written"
        );
        assert!(!batch.any(|&n| n == 9));
        assert_eq!(background.pending(), 1, "one write for the batch");
        tokio::time::timeout(Duration::from_secs(5), background.settled())
            .await
            .expect("settled hurries the batch");
        assert_eq!(*written.lock().unwrap(), vec![vec![0, 1, 2, 3, 4]]);
        assert_eq!(batch.queued(), 0);
        assert!(
            !batch.any(|&n| n == 3),
            "written rows are the database's to answer for"
        );
        // The next row starts a batch of its own.
        batch.push(7);
        background.settled().await;
        assert_eq!(written.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_failed_write_is_tried_again_and_its_rows_stay_seen_meanwhile() {
        let background = Arc::new(BackgroundWrites::default());
        let attempts = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let written = Arc::new(Mutex::new(Vec::new()));
        let (tries, sink) = (attempts.clone(), written.clone());
        let batch = Batched::new(background.clone(), Duration::from_millis(20), move |rows| {
            let (tries, sink) = (tries.clone(), sink.clone());
            async move {
                // The database refuses the first two attempts.
                if tries.fetch_add(1, Ordering::SeqCst) < 2 {
                    return false;
                }
                sink.lock().unwrap().push(rows.as_ref().clone());
                true
            }
        });
        batch.push(1u32);
        batch.push(2u32);
        // Between the attempts the rows are neither queued nor written, but still seen.
        for _ in 0..200 {
            if attempts.load(Ordering::SeqCst) >= 1 && written.lock().unwrap().is_empty() {
                assert!(batch.any(|&n| n == 2), "a row waiting for a retry is seen");
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::timeout(Duration::from_secs(5), background.settled())
            .await
            .expect("the retries end");
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        assert_eq!(*written.lock().unwrap(), vec![vec![1, 2]]);
        assert!(!batch.any(|&n| n == 2));
    }

    #[tokio::test]
    async fn a_batch_refused_every_time_is_given_up_not_retried_forever() {
        let background = Arc::new(BackgroundWrites::default());
        let attempts = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let tries = attempts.clone();
        let batch = Batched::new(
            background.clone(),
            Duration::from_secs(3600),
            move |_rows| {
                let tries = tries.clone();
                async move {
                    tries.fetch_add(1, Ordering::SeqCst);
                    false
                }
            },
        );
        batch.push(1u8);
        tokio::time::timeout(Duration::from_secs(5), background.settled())
            .await
            .expect("settled hurries through the attempts");
        assert_eq!(attempts.load(Ordering::SeqCst), WRITE_ATTEMPTS);
        assert!(!batch.any(|_| true));
    }

    #[test]
    fn without_a_runtime_rows_are_dropped_and_later_ones_are_not_stuck() {
        let background = Arc::new(BackgroundWrites::default());
        let batch = Batched::new(background, Duration::from_millis(1), |_rows| async { true });
        batch.push(1u8);
        assert_eq!(batch.queued(), 0);
        batch.push(2u8);
        assert_eq!(batch.queued(), 0);
    }
}
