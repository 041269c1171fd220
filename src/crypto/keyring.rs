//! The key ring in use: our current key pair and the archived ones that still open messages
//! from peers who have not yet learnt our new certificate (answered with 7025). Where the
//! pairs are kept: `key_store` (files) or the state database (`keys::SharedKeys`).

use super::Identity;

/// The keys in use: `current` signs and is offered to peers; `archived` (newest first)
/// only ever open requests, which are then answered with 7025.
#[derive(Clone, Debug)]
pub struct Keyring {
    pub current: Identity,
    pub archived: Vec<Identity>,
}

/// The keyring in use, shared by the server and the client: read for every message,
/// replaced whole when keys rotate, so a reader never sees half a rotation.
#[derive(Debug)]
pub struct KeyringCell(std::sync::RwLock<std::sync::Arc<Keyring>>);

impl KeyringCell {
    pub fn new(ring: Keyring) -> KeyringCell {
        KeyringCell(std::sync::RwLock::new(std::sync::Arc::new(ring)))
    }

    pub fn current(&self) -> std::sync::Arc<Keyring> {
        match self.0.read() {
            Ok(guard) => guard.clone(),
            // A writer that panicked left a whole keyring behind (it swaps one Arc).
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace(&self, ring: std::sync::Arc<Keyring>) {
        match self.0.write() {
            Ok(mut guard) => *guard = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
    }
}
