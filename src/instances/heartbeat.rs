//! This instance's identity and the loop that writes its row.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{BEAT_INTERVAL, FORGET_AFTER_SECS, InstancesError};
use crate::clock::Clock;
use crate::crypto::KeyringCell;
use crate::store::state::{self, InstanceRow};
use crate::store::{Db, StoreError};

/// What an instance is, fixed at start; its key is read at every beat since keys rotate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// 16 hex digits, random: a restarted process is a new instance.
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub version: String,
    pub listen: String,
    pub started_at: i64,
}

impl Identity {
    /// The identity of this process, listening on `listen`.
    pub fn new(listen: &str, now: i64) -> Result<Identity, InstancesError> {
        let mut bytes = [0u8; 8];
        openssl::rand::rand_bytes(&mut bytes)?;
        Ok(Identity {
            id: hex::encode(bytes),
            host: host_name(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            listen: listen.to_string(),
            started_at: now,
        })
    }
}

/// The kernel's host name (what `hostname` prints), or `unknown`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Writes this instance's row, off the request path.
pub struct Heartbeat {
    identity: Identity,
    state: Db,
    keys: Arc<KeyringCell>,
    clock: Arc<Clock>,
}

/// Prune rows of long-gone instances every this many beats (a minute).
const PRUNE_EVERY: u32 = 12;
/// While beats fail, say so at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

impl Heartbeat {
    pub fn new(
        identity: Identity,
        state: Db,
        keys: Arc<KeyringCell>,
        clock: Arc<Clock>,
    ) -> Heartbeat {
        Heartbeat {
            identity,
            state,
            keys,
            clock,
        }
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The row as of now, with the key the instance signs with now.
    pub fn row(&self) -> InstanceRow {
        let id = &self.identity;
        InstanceRow {
            id: id.id.clone(),
            host: id.host.clone(),
            pid: i64::from(id.pid),
            version: id.version.clone(),
            listen: id.listen.clone(),
            key_fingerprint: self.keys.current().current.info().fingerprint_sha1,
            started_at: id.started_at,
            seen_at: self.clock.now(),
        }
    }

    /// One beat: the row written as of now.
    pub async fn beat(&self) -> Result<(), StoreError> {
        let row = self.row();
        self.state
            .run(move |c| state::upsert_instance(c, &row))
            .await
    }

    /// Deletes the rows of instances gone for more than a day.
    pub async fn prune(&self) -> Result<usize, StoreError> {
        let cutoff = self.clock.now() - FORGET_AFTER_SECS;
        self.state
            .run(move |c| state::prune_instances(c, cutoff))
            .await
    }

    /// Takes this instance's row away: it stopped cleanly, so it is not listed as one that
    /// stopped beating.
    pub async fn leave(&self) -> Result<(), StoreError> {
        let id = self.identity.id.clone();
        self.state
            .run(move |c| state::delete_instance(c, &id))
            .await
            .map(|_| ())
    }

    /// Beats at once and every [`BEAT_INTERVAL`] until `stop` completes, then leaves. A beat
    /// that fails is logged (at most once a minute while they keep failing) and the next one
    /// tries again: the instance serves whether or not its row is written.
    pub async fn run(&self, stop: impl Future<Output = ()>) {
        let mut tick = tokio::time::interval(BEAT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing_since: Option<Instant> = None;
        let mut last_warned: Option<Instant> = None;
        let mut beats: u32 = 0;
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = &mut stop => break,
            }
            // Each beat runs to its end before `stop` is looked at again, so no beat can land
            // after the row is deleted below.
            match self.beat().await {
                Ok(()) => {
                    if let Some(since) = failing_since.take() {
                        tracing::info!(
                            failing_for_secs = since.elapsed().as_secs(),
                            "heartbeat written again"
                        );
                    }
                    last_warned = None;
                }
                Err(e) => {
                    failing_since.get_or_insert_with(Instant::now);
                    if last_warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                        tracing::warn!(error = %e, "heartbeat not written: doctor and /metrics will not list this instance");
                        last_warned = Some(Instant::now());
                    }
                }
            }
            if beats.is_multiple_of(PRUNE_EVERY)
                && let Err(e) = self.prune().await
            {
                tracing::debug!(error = %e, "old instance rows not pruned");
            }
            beats = beats.wrapping_add(1);
        }
        if let Err(e) = self.leave().await {
            tracing::warn!(error = %e, "instance row not deleted at shutdown; it ages out of the listings in 5 minutes");
        }
    }

    /// Runs [`Heartbeat::run`] on a task of its own.
    pub fn spawn(self: Arc<Self>) -> Beating {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            self.run(async {
                let _ = stopped.await;
            })
            .await;
        });
        Beating { stop, task }
    }
}

/// A heartbeat running on its own task.
pub struct Beating {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Beating {
    /// Stops beating and deletes the row, waiting up to 5 s for the state database.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .is_err()
        {
            tracing::warn!("heartbeat still busy after 5 s at shutdown; its row ages out");
        }
    }
}
