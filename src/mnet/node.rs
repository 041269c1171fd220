//! The handles the MNET layer works with, assembled once by `App::open`: our keys and
//! configuration, the state database, the clock, the client, the service registry, the
//! limits, metrics and audit trail. The server pipeline and the services take a `Node`,
//! never the whole application, so this layer depends only on the ones below it.

use std::sync::Arc;

use crate::audit::Audit;
use crate::background::BackgroundWrites;
use crate::blocking::CpuPool;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::{Keyring, KeyringCell, PublicKeyCache};
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::mnet::client::MnetClient;
use crate::mnet::contacts::ContactTimes;
use crate::mnet::known_peers::KnownPeers;
use crate::mnet::services::Services;
use crate::store::Db;

pub struct Node {
    pub config: Arc<Config>,
    pub keys: Arc<KeyringCell>,
    /// Where the keys are kept: with a shared state, a request sealed to a key this instance
    /// has not taken up yet makes it look there at once.
    pub key_home: Arc<crate::keys::KeyHome>,
    /// Held while a request looks for a key pair rotated elsewhere: the requests that found
    /// no key at the same moment wait for that one look instead of being refused by its rate
    /// limit while it runs.
    pub key_follow: tokio::sync::Mutex<()>,
    pub state: Db,
    pub clock: Arc<Clock>,
    pub client: MnetClient,
    pub services: Services,
    pub limits: Limits,
    pub metrics: Metrics,
    pub audit: Audit,
    /// RSA, RC4 and the parsing of unauthenticated input run here, never on the async
    /// workers.
    pub cpu: CpuPool,
    pub peer_keys: Arc<PublicKeyCache>,
    pub background: Arc<BackgroundWrites>,
    /// Verified peers' last contact times, written in batches.
    pub contacts: Arc<ContactTimes>,
    /// Live peers and their services, so that a request reads no database.
    pub known_peers: KnownPeers,
}

impl Node {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn wwwroot(&self) -> &str {
        self.config.wwwroot()
    }

    pub fn keyring(&self) -> Arc<Keyring> {
        self.keys.current()
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("wwwroot", &self.config.site.wwwroot)
            .finish_non_exhaustive()
    }
}
