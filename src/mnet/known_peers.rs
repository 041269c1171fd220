//! The peers that may call us and the services each may use, kept in memory so that a
//! request costs no state-database query.
//!
//! Without it every request made two trips to the state database (the peer by wwwroot, then
//! its effective services), each a hand-off to a blocking thread and a few SELECTs: a
//! sizeable share of a call beyond its RSA work.
//!
//! Never stale within this process: every write of this process to peers, their
//! certificates or services bumps [`state::peers_generation`], and an entry loaded under an
//! older generation is not used. Another process (`usestats peer …` while `serve` runs, or a
//! second daemon sharing a PostgreSQL state database) cannot bump it: its changes are seen
//! once the entry is [`TTL`] old. That bound was chosen over a version check per call
//! because any check of the database is a trip to it, the very cost this cache removes; a
//! second is below what an operator typing a command can notice. Grants and tokens are not
//! cached: they are read per call.
//! A request already in flight when the command commits is served the old way anyway.
//!
//! Only live peers are kept (not unknown or deleted wwwroots, which anyone can send), keyed
//! by the normalised wwwroot, so the map is bounded by the peers table; `MAX_ENTRIES`
//! bounds it whatever that holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::state::{self, Peer, PeerService};
use crate::store::{Db, StoreError};
use crate::wwwroot::Wwwroot;

/// How long a change made by another process may go unseen.
pub const TTL: Duration = Duration::from_secs(1);

const MAX_ENTRIES: usize = 4096;

/// A live peer as the state database held it when loaded, with its effective services
/// ([`state::effective_services`]: its own rows merged with All Hosts').
#[derive(Debug)]
pub struct KnownPeer {
    pub peer: Peer,
    pub services: Vec<PeerService>,
    generation: u64,
    loaded: Instant,
}

#[derive(Debug)]
pub struct KnownPeers {
    entries: Mutex<HashMap<String, Arc<KnownPeer>>>,
    ttl: Duration,
}

impl Default for KnownPeers {
    fn default() -> Self {
        KnownPeers::new(TTL)
    }
}

impl KnownPeers {
    pub fn new(ttl: Duration) -> KnownPeers {
        KnownPeers {
            entries: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// The peer named `wwwroot` (as a request spells it), when a fresh entry is in memory.
    /// Never touches the database, so it may run on the CPU pool.
    pub fn cached(&self, wwwroot: &str) -> Option<Arc<KnownPeer>> {
        let key = Wwwroot::normalized(wwwroot);
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(key.as_str())?;
        (entry.generation == state::peers_generation() && entry.loaded.elapsed() < self.ttl)
            .then(|| entry.clone())
    }

    /// The live peer named `wwwroot`, from memory or else from the state database; `None`
    /// for an unknown, deleted or All Hosts wwwroot.
    pub async fn lookup(
        &self,
        db: &Db,
        wwwroot: &str,
    ) -> Result<Option<Arc<KnownPeer>>, StoreError> {
        if let Some(known) = self.cached(wwwroot) {
            return Ok(Some(known));
        }
        // Taken before reading: a write that commits meanwhile bumps it past this value,
        // and the entry is then never used.
        let generation = state::peers_generation();
        let wanted = wwwroot.to_string();
        let loaded = db
            .run(move |c| {
                let Some(peer) =
                    state::peer_by_wwwroot(c, &wanted)?.filter(|p| !p.deleted && !p.is_all_hosts())
                else {
                    return Ok::<_, StoreError>(None);
                };
                let services = state::effective_services(c, peer.id)?;
                Ok(Some((peer, services)))
            })
            .await?;
        let Some((peer, services)) = loaded else {
            return Ok(None);
        };
        let known = Arc::new(KnownPeer {
            peer,
            services,
            generation,
            loaded: Instant::now(),
        });
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(known.peer.wwwroot.clone(), known.clone());
        }
        Ok(Some(known))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_goes_stale_with_age_and_with_any_write() {
        let cache = KnownPeers::new(Duration::from_millis(50));
        let peer = Peer {
            id: 7,
            wwwroot: "http://moodle.example".into(),
            name: "m".into(),
            application: crate::store::state::Application::Moodle,
            public_key: String::new(),
            public_key_expires: 0,
            ssl_verification: crate::store::state::SslVerification::Full,
            deleted: false,
            last_connect_time: 0,
            last_error: None,
            last_error_time: None,
            clock_offset: None,
            connect_timeout_ms: None,
            request_timeout_ms: None,
            created_at: 0,
            auto_registered: false,
        };
        let put = |generation| {
            cache.entries.lock().unwrap().insert(
                peer.wwwroot.clone(),
                Arc::new(KnownPeer {
                    peer: peer.clone(),
                    services: Vec::new(),
                    generation,
                    loaded: Instant::now(),
                }),
            );
        };
        // Looked up the way a request may spell it. Other tests of this binary may write
        // peers meanwhile (the counter is the process's), so a few tries are allowed.
        assert!((0..100).any(|_| {
            put(state::peers_generation());
            cache.cached("HTTP://Moodle.Example/").is_some()
        }));
        put(state::peers_generation().wrapping_sub(1));
        assert!(cache.cached("http://moodle.example").is_none());
        put(state::peers_generation());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.cached("http://moodle.example").is_none());
    }
}
