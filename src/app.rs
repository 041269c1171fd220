//! The running daemon's shared context: configuration, keys, databases, clock, client.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use crate::audit::Audit;
pub use crate::background::BackgroundWrites;
use crate::blocking::CpuPool;
pub use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::{self, CertSubject, CryptoStatus, Keyring, KeyringCell};
use crate::keys::{KeyHome, KeysError};
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::mnet::client::{ClientHandles, MnetClient};
pub use crate::mnet::node::Node;
use crate::mnet::services::Services;
use crate::reports::Reports;
use crate::store::{self, Db, PoolTarget, StoreError, state};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeysError),
}

/// Everything the daemon holds. The MNET layer and the services see only the [`Node`]
/// part; the HTTP front, the web services, the CLI and maintenance see all of it (through
/// `Deref`, `app.state` is the node's state database).
pub struct App {
    pub node: Arc<Node>,
    /// The Moodle database the numbers come from (the state database on the demo).
    pub source: Db,
    /// Every number a front end gives comes from here.
    pub reports: Reports,
    pub crypto: CryptoStatus,
    /// This start generated our first key pair (there was none on disk).
    pub keys_generated_now: bool,
    /// Guarded requests whose body is being received (they hold no request slot yet).
    pub receiving: AtomicUsize,
    /// KiB of request bodies that may be held in memory at once (`server.max_receiving_bytes`).
    pub body_budget: tokio::sync::Semaphore,
}

impl std::ops::Deref for App {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.node
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
        store::set_lock_wait(std::time::Duration::from_secs(
            config.database.lock_wait_secs,
        ));
        let (state, source) = open_databases(&config)?;
        let clock = Arc::new(Clock::default());
        let key_home = Arc::new(KeyHome::for_config(&config, &state)?);
        let (keyring, generated) = key_home.load_or_generate(
            &cert_subject(&config),
            config.keys.lifetime_days,
            clock.now(),
        )?;
        let config = Arc::new(config);
        let keys = Arc::new(KeyringCell::new(keyring));
        let peer_keys = Arc::new(crypto::PublicKeyCache::default());
        let background = Arc::new(BackgroundWrites::default());
        let cpu = CpuPool::new(config.server.cpu_threads);
        let client = MnetClient::new(
            &config,
            ClientHandles {
                wwwroot: config.wwwroot().to_string(),
                keys: keys.clone(),
                state: state.clone(),
                clock: clock.clone(),
                peer_keys: peer_keys.clone(),
                cpu: cpu.clone(),
            },
        );
        // The writers off the request path get a connection of their own.
        let writers = state.writers(std::time::Duration::from_secs(2))?;
        let contacts = crate::mnet::contacts::ContactTimes::new(
            writers.clone(),
            background.clone(),
            crate::mnet::contacts::FLUSH_INTERVAL,
        );
        let reports = Reports::new(&config, source.clone(), &state);
        let node = Node {
            services: Services::new(vec![crate::services::use_stats::use_stats_service(
                source.clone(),
                reports.clone(),
            )]),
            limits: Limits::new(&config.limits, &config.console),
            metrics: Metrics::default(),
            audit: Audit::new(
                config.audit.enabled,
                writers,
                clock.clone(),
                background.clone(),
            ),
            config: config.clone(),
            keys,
            key_home,
            key_follow: tokio::sync::Mutex::new(()),
            state,
            clock,
            client,
            cpu,
            peer_keys,
            contacts,
            known_peers: crate::mnet::known_peers::KnownPeers::default(),
            background,
        };
        let app = App {
            node: Arc::new(node),
            source,
            reports,
            crypto,
            keys_generated_now: generated,
            receiving: AtomicUsize::new(0),
            body_budget: tokio::sync::Semaphore::new(
                config.server.max_receiving_bytes.div_ceil(1024),
            ),
        };
        if generated {
            tracing::info!(keys = %app.key_home.describe(), "generated our first key pair");
        }
        // History for operators only: a state that cannot take the write now (a full disk)
        // must not keep the daemon from starting.
        if let Err(e) = app.record_current_key() {
            tracing::warn!(error = %e, "our key's history not recorded");
        }
        Ok(Arc::new(app))
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
        let ring = Arc::new(self.key_home.rotate(
            &cert_subject(&self.config),
            self.config.keys.lifetime_days,
            self.now(),
        )?);
        self.keys.replace(ring.clone());
        self.record_current_key()?;
        Ok(ring)
    }

    /// Rotate when our certificate expires before `deadline`. With several instances, the
    /// one that gets there first rotates; the others find the new key already made and take
    /// it up (`None` from this one, the new ring through [`App::follow_keys`]).
    pub fn rotate_keys_if_expiring(&self, deadline: i64) -> Result<Option<Arc<Keyring>>, AppError> {
        let Some(ring) = self.key_home.rotate_if_expiring(
            &cert_subject(&self.config),
            self.config.keys.lifetime_days,
            self.now(),
            deadline,
        )?
        else {
            return Ok(None);
        };
        let ring = Arc::new(ring);
        self.keys.replace(ring.clone());
        self.record_current_key()?;
        Ok(Some(ring))
    }

    /// Take up a key pair rotated elsewhere (another instance, `usestats keys rotate`).
    pub fn follow_keys(&self) -> Result<Option<Arc<Keyring>>, AppError> {
        Ok(crate::keys::follow(&self.key_home, &self.keys)?)
    }
}

/// The state database (migrated) and the source one: the state's own pool on the demo, where
/// they are one database.
fn open_databases(config: &Config) -> Result<(Db, Db), AppError> {
    let state_url = config.state_url();
    let state = Db::open(
        &state_url,
        store::pool_spec(
            config.database.role,
            config.database.max_connections,
            config.database.idle_timeout_secs,
            PoolTarget::State,
        ),
    )?;
    {
        let mut conn = state.get()?;
        store::migrate_state(&mut conn)?;
    }
    let source = if config.source_is_separate() {
        // A separate source is someone's Moodle: the connections themselves refuse writes,
        // and one that is missing or down now does not stop us (store::Db::open_source).
        let (source, problem) = Db::open_source(
            &config.source_url(),
            store::pool_spec(
                config.database.role,
                config.database.max_connections,
                config.database.idle_timeout_secs,
                PoolTarget::Source,
            ),
            &config.source.prefix,
        );
        if let Some(e) = problem {
            tracing::error!(
                source = %crate::config::redacted_url(&config.source_url()),
                error = %e,
                "the source database is unavailable: answers say so and /healthz is 503 until it is back"
            );
        }
        source
    } else {
        state.clone()
    };
    Ok((state, source))
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
