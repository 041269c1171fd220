//! Open connections: each has an idle deadline counted from accept, and their number is
//! capped below the process's file-descriptor limit.
//!
//! hyper's header timeout only starts with the first byte of a request, so a client that
//! connects and sends nothing (or goes quiet between keep-alive requests) would hold a file
//! descriptor forever; a few hundred of them exhaust the descriptor limit and the daemon
//! can no longer accept anyone, `/healthz` included. Here a connection that has no request
//! in progress and has sent nothing for `idle` is closed, and when the cap is reached the
//! connection idle the longest makes room for the new one.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Descriptors kept free for the databases, outgoing calls, key files and logs.
const RESERVED_FDS: u64 = 64;

/// What the accept loop and a connection's task share about one connection.
#[derive(Debug)]
pub struct ConnState {
    id: u64,
    /// Milliseconds since [`Connections::epoch`] of the last byte read or written.
    last_activity_ms: AtomicU64,
    /// Requests being answered on this connection (hyper runs one at a time on HTTP/1.1,
    /// but a count is as cheap as a flag and cannot be confused by overlap).
    busy: AtomicUsize,
    /// Told to close: the cap was reached and this connection was idle the longest.
    evict: Notify,
}

impl ConnState {
    /// Marks a request in progress until the guard is dropped, so a slow answer (a long
    /// statistics query) never counts as idleness.
    pub fn busy(self: &Arc<Self>) -> BusyGuard {
        self.busy.fetch_add(1, Ordering::AcqRel);
        BusyGuard(self.clone())
    }

    fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire) > 0
    }
}

pub struct BusyGuard(Arc<ConnState>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The registry of open connections.
pub struct Connections {
    cap: usize,
    idle: Duration,
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<ConnState>>>,
    /// Connections closed by the idle deadline or evicted, and refused at the cap.
    pub closed_idle: AtomicU64,
    pub refused: AtomicU64,
}

/// A connection admitted by [`Connections::admit`]; leaving the registry when dropped.
pub struct Admitted {
    pub state: Arc<ConnState>,
    registry: Arc<Connections>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Ok(mut open) = self.registry.open.lock() {
            open.remove(&self.state.id);
        }
    }
}

impl Connections {
    pub fn new(cap: usize, idle: Duration) -> Arc<Connections> {
        Arc::new(Connections {
            cap: cap.max(1),
            idle,
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            closed_idle: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Register a just-accepted connection. At the cap, the connection idle the longest is
    /// told to close to make room; when every connection is busy the new one is refused
    /// (`None`: the caller drops the socket at once).
    pub fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut open = self.open.lock().ok()?;
        if open.len() >= self.cap {
            let victim = open
                .values()
                .filter(|c| !c.is_busy())
                .min_by_key(|c| c.last_activity_ms.load(Ordering::Relaxed))
                .cloned();
            match victim {
                Some(victim) => {
                    open.remove(&victim.id);
                    victim.evict.notify_one();
                    self.closed_idle.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        let state = Arc::new(ConnState {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            last_activity_ms: AtomicU64::new(self.now_ms()),
            busy: AtomicUsize::new(0),
            evict: Notify::new(),
        });
        open.insert(state.id, state.clone());
        Some(Admitted {
            state,
            registry: self.clone(),
        })
    }

    /// Resolves when the connection should be closed: evicted, or idle past the deadline.
    pub async fn closing(&self, state: &ConnState) {
        let idle_ms = self.idle.as_millis() as u64;
        loop {
            let last = state.last_activity_ms.load(Ordering::Relaxed);
            let due = last.saturating_add(idle_ms);
            let now = self.now_ms();
            if now >= due && !state.is_busy() {
                self.closed_idle.fetch_add(1, Ordering::Relaxed);
                return;
            }
            // Busy: look again one idle period later (the answer may take a while).
            let wait = if now >= due { idle_ms } else { due - now };
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait.max(10))) => {}
                // A request may have started since it was picked: then it finishes, and the
                // idle deadline closes the connection afterwards.
                _ = state.evict.notified() => if !state.is_busy() { return },
            }
        }
    }

    /// Wrap the connection's stream so every byte moved counts as activity.
    pub fn track<S>(self: &Arc<Self>, stream: S, state: Arc<ConnState>) -> Tracked<S> {
        Tracked {
            inner: stream,
            state,
            registry: self.clone(),
        }
    }
}

/// A stream that records when bytes last moved.
pub struct Tracked<S> {
    inner: S,
    state: Arc<ConnState>,
    registry: Arc<Connections>,
}

impl<S> Tracked<S> {
    fn touch(&self) {
        self.state
            .last_activity_ms
            .store(self.registry.now_ms(), Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Raise the soft limit on open files to the hard limit (a daemon's default soft limit is
/// often 1024 while the hard one is far higher) and return the soft limit now in force.
pub fn raise_fd_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

/// The soft limit on open files now in force.
pub fn fd_limit() -> Option<u64> {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

/// The connection cap: the configured one, but always some descriptors below the limit so
/// that accepting can never fail for lack of them.
pub fn connection_cap(configured: usize, fd_limit: Option<u64>) -> usize {
    match fd_limit {
        Some(limit) => {
            let room = limit.saturating_sub(RESERVED_FDS).max(8);
            configured.min(usize::try_from(room).unwrap_or(usize::MAX))
        }
        None => configured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_descriptor_limit() {
        assert_eq!(connection_cap(1024, Some(256)), 192);
        assert_eq!(connection_cap(100, Some(65_536)), 100);
        assert_eq!(connection_cap(100, Some(10)), 8);
        assert_eq!(connection_cap(100, None), 100);
    }

    #[tokio::test]
    async fn at_the_cap_the_longest_idle_connection_makes_room() {
        let registry = Connections::new(2, Duration::from_secs(60));
        let first = registry.admit().unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = registry.admit().unwrap();
        let _busy = second.state.busy();
        let third = registry.admit().expect("room is made");
        // The first was told to close; it leaves the registry when its task ends.
        tokio::time::timeout(Duration::from_secs(1), registry.closing(&first.state))
            .await
            .expect("the evicted connection is told at once");
        let _busy_third = third.state.busy();
        assert!(registry.admit().is_none(), "every connection left is busy");
        assert_eq!(registry.refused.load(Ordering::Relaxed), 1);
    }
}
