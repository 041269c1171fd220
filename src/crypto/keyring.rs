//! Our own key pairs on disk: the current one and the archived ones that still open
//! messages from peers who have not yet learnt our new certificate (answered with 7025).
//!
//! Layout of the key directory:
//! `current.key.pem` (mode 0600), `current.cert.pem`, and
//! `archive/<notBefore>-<fingerprint>.key.pem|.cert.pem`, newest first by name.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{CertSubject, CryptoError, Identity, generate_identity};

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

pub struct KeyStore {
    dir: PathBuf,
    keep_archived: usize,
}

fn store_err(path: &Path, message: impl std::fmt::Display) -> CryptoError {
    CryptoError::KeyStore {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), CryptoError> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| store_err(&tmp, e))?;
    file.write_all(data).map_err(|e| store_err(&tmp, e))?;
    file.sync_all().map_err(|e| store_err(&tmp, e))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(|e| store_err(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| store_err(path, e))
}

impl KeyStore {
    pub fn new(dir: impl Into<PathBuf>, keep_archived: usize) -> KeyStore {
        KeyStore {
            dir: dir.into(),
            keep_archived,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn current_paths(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.join("current.key.pem"),
            self.dir.join("current.cert.pem"),
        )
    }

    fn archive_dir(&self) -> PathBuf {
        self.dir.join("archive")
    }

    fn read_identity(key_path: &Path, cert_path: &Path) -> Result<Identity, CryptoError> {
        let key = fs::read(key_path).map_err(|e| store_err(key_path, e))?;
        let cert = fs::read(cert_path).map_err(|e| store_err(cert_path, e))?;
        Identity::from_pem(&key, &cert).map_err(|e| store_err(key_path, e))
    }

    /// The key ring on disk, or `None` when no current key has been generated yet.
    pub fn load(&self) -> Result<Option<Keyring>, CryptoError> {
        let (key_path, cert_path) = self.current_paths();
        if !key_path.exists() {
            return Ok(None);
        }
        let current = Self::read_identity(&key_path, &cert_path)?;
        let mut archived = Vec::new();
        for stem in self.archived_stems()? {
            let dir = self.archive_dir();
            let key = dir.join(format!("{stem}.key.pem"));
            let cert = dir.join(format!("{stem}.cert.pem"));
            archived.push(Self::read_identity(&key, &cert)?);
        }
        Ok(Some(Keyring { current, archived }))
    }

    /// Archive stems, newest first.
    fn archived_stems(&self) -> Result<Vec<String>, CryptoError> {
        let dir = self.archive_dir();
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut stems: Vec<String> = fs::read_dir(&dir)
            .map_err(|e| store_err(&dir, e))?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".key.pem"))
                    .map(str::to_string)
            })
            .collect();
        stems.sort_by(|a, b| b.cmp(a));
        Ok(stems)
    }

    fn ensure_dirs(&self) -> Result<(), CryptoError> {
        // Created 0700 from the start: create-then-chmod would leave a window in which a
        // umask of 000 makes the directory of our private keys world-writable.
        for dir in [self.dir.clone(), self.archive_dir()] {
            crate::files::private_dir(&dir).map_err(|e| store_err(&dir, e))?;
        }
        Ok(())
    }

    fn write_current(&self, id: &Identity) -> Result<(), CryptoError> {
        let (key_path, cert_path) = self.current_paths();
        let key_pem = id.key.private_key_to_pem_pkcs8()?;
        write_atomic(&key_path, &key_pem, 0o600)?;
        write_atomic(&cert_path, id.cert_pem.as_bytes(), 0o644)
    }

    fn archive(&self, id: &Identity) -> Result<(), CryptoError> {
        let info = id.info();
        let stem = format!(
            "{:012}-{}",
            info.not_before.max(0),
            &info.fingerprint_sha1[..12.min(info.fingerprint_sha1.len())]
        );
        let dir = self.archive_dir();
        let key_pem = id.key.private_key_to_pem_pkcs8()?;
        write_atomic(&dir.join(format!("{stem}.key.pem")), &key_pem, 0o600)?;
        write_atomic(
            &dir.join(format!("{stem}.cert.pem")),
            id.cert_pem.as_bytes(),
            0o644,
        )
    }

    fn prune(&self) -> Result<(), CryptoError> {
        let dir = self.archive_dir();
        for stem in self.archived_stems()?.into_iter().skip(self.keep_archived) {
            for ext in ["key.pem", "cert.pem"] {
                let path = dir.join(format!("{stem}.{ext}"));
                if path.exists() {
                    fs::remove_file(&path).map_err(|e| store_err(&path, e))?;
                }
            }
        }
        Ok(())
    }

    /// Make a new key pair current. The previous one, if any, is archived first so that a
    /// crash between the two steps loses nothing.
    pub fn rotate(
        &self,
        subject: &CertSubject,
        lifetime_days: u32,
        now: i64,
    ) -> Result<Keyring, CryptoError> {
        self.ensure_dirs()?;
        let fresh = generate_identity(subject, lifetime_days, now)?;
        if let Some(ring) = self.load()? {
            self.archive(&ring.current)?;
        }
        self.write_current(&fresh)?;
        self.prune()?;
        self.load()?
            .ok_or_else(|| store_err(&self.dir, "key vanished after writing"))
    }

    /// Load the ring, generating the first key pair when there is none.
    pub fn load_or_generate(
        &self,
        subject: &CertSubject,
        lifetime_days: u32,
        now: i64,
    ) -> Result<(Keyring, bool), CryptoError> {
        match self.load()? {
            Some(ring) => {
                // A key directory left open by an older version or a loose umask is closed
                // now; failing to (a directory owned by someone else) must not stop us.
                if let Err(e) = self.ensure_dirs() {
                    tracing::warn!(error = %e, "cannot make the key directory private (mode 0700)");
                }
                Ok((ring, false))
            }
            None => Ok((self.rotate(subject, lifetime_days, now)?, true)),
        }
    }

    /// Install an existing key pair as current (used by tests and operators migrating a
    /// Moodle key), archiving whatever was current.
    pub fn install(&self, id: &Identity) -> Result<(), CryptoError> {
        self.ensure_dirs()?;
        if let Some(ring) = self.load()? {
            self.archive(&ring.current)?;
        }
        self.write_current(id)?;
        self.prune()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> CertSubject {
        CertSubject {
            wwwroot: "http://127.0.0.1:9".into(),
            organisation: "t".into(),
            country: "NZ".into(),
            state: "W".into(),
            locality: "W".into(),
            email: String::new(),
        }
    }

    #[test]
    fn rotation_archives_and_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path().join("keys"), 3);
        let (first, generated) = store.load_or_generate(&subject(), 28, 1_000).unwrap();
        assert!(generated);
        let mode = fs::metadata(dir.path().join("keys/current.key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut fingerprints = vec![first.current.info().fingerprint_sha1];
        for i in 1..=5 {
            let ring = store.rotate(&subject(), 28, 1_000 + i).unwrap();
            fingerprints.push(ring.current.info().fingerprint_sha1);
        }
        let ring = store.load().unwrap().unwrap();
        assert_eq!(ring.current.info().fingerprint_sha1, fingerprints[5]);
        let archived: Vec<String> = ring
            .archived
            .iter()
            .map(|i| i.info().fingerprint_sha1)
            .collect();
        assert_eq!(
            archived,
            vec![
                fingerprints[4].clone(),
                fingerprints[3].clone(),
                fingerprints[2].clone()
            ]
        );
        let (again, generated) = store.load_or_generate(&subject(), 28, 9_999).unwrap();
        assert!(!generated);
        assert_eq!(again.current.info().fingerprint_sha1, fingerprints[5]);
    }
}
