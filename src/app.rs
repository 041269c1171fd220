//! The running daemon's shared context: configuration, keys, databases, clock, client.

use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use crate::config::Config;
use crate::crypto::{self, CertSubject, CryptoStatus, KeyStore, Keyring};
use crate::mnet::client::MnetClient;
use crate::mnet::services::Services;
use crate::store::{self, Db, PoolTarget, StoreError, state};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

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

pub struct App {
    pub config: Config,
    pub keystore: KeyStore,
    keyring: RwLock<Arc<Keyring>>,
    pub state: Db,
    pub source: Db,
    pub clock: Clock,
    pub client: MnetClient,
    pub services: Services,
    pub crypto: CryptoStatus,
    pub metrics: crate::metrics::Metrics,
    pub limits: crate::limits::Limits,
    /// This start generated our first key pair (there was none on disk).
    pub keys_generated_now: bool,
    pub peer_keys: crypto::PublicKeyCache,
    pub background: Arc<BackgroundWrites>,
    /// RSA, RC4 and the parsing of unauthenticated input run here, never on the async
    /// workers.
    pub cpu: crate::blocking::CpuPool,
    /// Guarded requests whose body is being received (they hold no request slot yet).
    pub receiving: AtomicUsize,
    /// KiB of request bodies that may be held in memory at once (`server.max_receiving_bytes`).
    pub body_budget: tokio::sync::Semaphore,
}

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

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("wwwroot", &self.config.site.wwwroot)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Everything a command needs: crypto self-test, databases (state migrated), keys
    /// (generated on first start).
    pub fn open(config: Config) -> Result<Arc<App>, AppError> {
        let crypto = crypto::init()?;
        let state_url = config.state_url();
        let state = Db::open(
            &state_url,
            store::pool_spec(&config.database, PoolTarget::State),
        )?;
        {
            let mut conn = state.get()?;
            store::migrate_state(&mut conn)?;
        }
        let source = if config.source_is_separate() {
            // A separate source is someone's Moodle: the connections themselves refuse writes.
            Db::open_read_only(
                &config.source_url(),
                store::pool_spec(&config.database, PoolTarget::Source),
            )?
        } else {
            state.clone()
        };
        let clock = Clock::default();
        let keystore = KeyStore::new(config.keys_dir(), config.keys.keep_archived);
        let (keyring, generated) = keystore.load_or_generate(
            &cert_subject(&config),
            config.keys.lifetime_days,
            clock.now(),
        )?;
        let app = App {
            keyring: RwLock::new(Arc::new(keyring)),
            keystore,
            state,
            source,
            clock,
            client: MnetClient::new(&config),
            services: Services::new(vec![crate::services::use_stats::use_stats_service()]),
            crypto,
            metrics: Default::default(),
            limits: crate::limits::Limits::new(&config.limits),
            keys_generated_now: generated,
            peer_keys: Default::default(),
            background: Default::default(),
            cpu: crate::blocking::CpuPool::new(config.server.cpu_threads),
            receiving: AtomicUsize::new(0),
            body_budget: tokio::sync::Semaphore::new(
                config.server.max_receiving_bytes.div_ceil(1024),
            ),
            config,
        };
        if generated {
            tracing::info!(dir = %app.keystore.dir().display(), "generated our first key pair");
        }
        app.record_current_key()?;
        Ok(Arc::new(app))
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn wwwroot(&self) -> &str {
        self.config.wwwroot()
    }

    pub fn keyring(&self) -> Arc<Keyring> {
        match self.keyring.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn record_current_key(&self) -> Result<(), AppError> {
        let info = self.keyring().current.info();
        let mut conn = self.state.get()?;
        state::record_own_key(
            &mut conn,
            &info.fingerprint_sha1,
            info.not_before,
            info.not_after,
            self.now(),
        )?;
        Ok(())
    }

    /// Generate a new key pair; the old one is archived and keeps opening requests from
    /// peers that have not yet learnt the new certificate (they get 7025).
    pub fn rotate_keys(&self) -> Result<Arc<Keyring>, AppError> {
        let ring = Arc::new(self.keystore.rotate(
            &cert_subject(&self.config),
            self.config.keys.lifetime_days,
            self.now(),
        )?);
        match self.keyring.write() {
            Ok(mut guard) => *guard = ring.clone(),
            Err(poisoned) => *poisoned.into_inner() = ring.clone(),
        }
        self.record_current_key()?;
        Ok(ring)
    }

    /// Re-read the key files (another process, e.g. `usestats keys rotate`, may have
    /// rotated them).
    pub fn reload_keys(&self) -> Result<(), AppError> {
        if let Some(ring) = self.keystore.load()? {
            match self.keyring.write() {
                Ok(mut guard) => *guard = Arc::new(ring),
                Err(poisoned) => *poisoned.into_inner() = Arc::new(ring),
            }
        }
        Ok(())
    }
}

pub fn cert_subject(config: &Config) -> CertSubject {
    CertSubject {
        wwwroot: config.site.wwwroot.clone(),
        organisation: config.site.name.clone(),
        country: config.keys.country.clone(),
        state: config.keys.state.clone(),
        locality: config.keys.locality.clone(),
        email: config.keys.email.clone(),
    }
}
