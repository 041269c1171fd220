//! A bounded pool for CPU work on the request path: RSA, RC4, and parsing what a caller
//! sent before we know who it is.
//!
//! Such work must never run on tokio's async workers: a few expensive requests would stall
//! every other connection, `/healthz` included. Tokio's blocking pool alone is not enough
//! either, since it grows to 512 threads on demand; a semaphore holds the work to as many
//! jobs at a time as there are cores, and the rest wait their turn without a thread.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// Clones share one set of slots.
#[derive(Clone)]
pub struct CpuPool {
    permits: Arc<Semaphore>,
    size: usize,
}

impl CpuPool {
    /// `threads = 0` means one per available core.
    pub fn new(threads: usize) -> CpuPool {
        let size = match threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        CpuPool {
            permits: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Run `job` on a blocking thread once a slot is free. A job that panics is a bug, not
    /// input: it is reported as such and the panic is passed on.
    pub async fn run<T, F>(&self, job: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // The semaphore is never closed, so acquiring cannot fail; if it ever did, running
        // the job without a permit is better than dropping the call.
        let permit = self.permits.clone().acquire_owned().await.ok();
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await;
        match joined {
            Ok(value) => value,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_jobs_run_at_once_than_the_pool_has_slots() {
        let pool = Arc::new(CpuPool::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..8)
            .map(|_| {
                let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
                tokio::spawn(async move {
                    pool.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for job in jobs {
            job.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
