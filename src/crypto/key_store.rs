//! Our own key pairs on disk (a SQLite state; on PostgreSQL they live in the state database,
//! `keys::SharedKeys`): the current one and the archived ones that still open messages from
//! peers who have not yet learnt our new certificate (answered with 7025).
//!
//! Layout of the key directory:
//! * `current.pem` (mode 0600): the private key, then its certificate, in one file, so that
//!   making a pair current is one rename: a crash at any moment leaves the old pair or the
//!   new one, never a key with another pair's certificate (issue 22, K1);
//! * `archive/<key fingerprint>.pem`: an archived pair, named by the SHA-256 of the key's own
//!   public half, so that no entry can be named after another key; an entry whose contents
//!   differ is never overwritten;
//! * the two-file layout, read so that an upgraded install keeps its keys: `current.key.pem` + `current.cert.pem`, and
//!   `archive/<notBefore>-<fingerprint>.key.pem|.cert.pem`. The first rotation writes
//!   `current.pem` and removes the two old current files.
//!
//! At load, a current key that does not match its certificate (what a crash between the two
//! renames of the old layout left) is recovered from the archive: the newest archived pair
//! holding that certificate (what peers know) or that key; it is written back as
//! `current.pem` and logged as an error. Archived entries that are incomplete or do not match
//! are skipped, with an error in the log, rather than stopping the daemon.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{CertSubject, CryptoError, Identity, Keyring, generate_identity};

const CURRENT: &str = "current.pem";
const OLD_CURRENT_KEY: &str = "current.key.pem";
const OLD_CURRENT_CERT: &str = "current.cert.pem";
/// Held (flock) while a rotation writes, so two processes (serve's own rotation and `usestats
/// keys rotate`) never interleave their steps.
const ROTATION_LOCK: &str = ".rotation.lock";

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

/// A temporary name beside `path`, this writer's own (process and time), dot-prefixed so
/// the loader never reads it as a pair.
fn temp_beside(path: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("key");
    path.with_file_name(format!(".{name}.{}.{nanos}.tmp", std::process::id()))
}

/// Makes `path`'s directory entry changes (a rename, a removal) durable.
fn sync_dir(dir: &Path) -> Result<(), CryptoError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| store_err(dir, e))
}

/// Writes `data` to `path` whole or not at all: a temporary file, synced, then renamed over
/// `path`, then the directory synced.
fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), CryptoError> {
    let tmp = temp_beside(path);
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(store_err(&tmp, e));
    }
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        store_err(path, e)
    })?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// A pair as one file: the key (PKCS#8), then the certificate.
fn pair_pem(id: &Identity) -> Result<Vec<u8>, CryptoError> {
    let mut pem = id.key.private_key_to_pem_pkcs8()?;
    pem.extend_from_slice(id.cert_pem.as_bytes());
    if !pem.ends_with(b"\n") {
        pem.push(b'\n');
    }
    Ok(pem)
}

/// A pair read from one file (key and certificate, in either order).
fn read_pair(path: &Path) -> Result<Identity, CryptoError> {
    let bytes = fs::read(path).map_err(|e| store_err(path, e))?;
    let text = String::from_utf8_lossy(&bytes);
    let Some(at) = text.find("-----BEGIN CERTIFICATE-----") else {
        return Err(store_err(path, "no certificate in the file"));
    };
    let end = text[at..]
        .find("-----END CERTIFICATE-----")
        .map(|i| at + i + "-----END CERTIFICATE-----".len())
        .ok_or_else(|| store_err(path, "the certificate is cut short"))?;
    let cert = &text[at..end];
    let key = format!("{}{}", &text[..at], &text[end..]);
    Identity::from_pem(key.as_bytes(), cert.as_bytes()).map_err(|e| store_err(path, e))
}

/// A pair read from the two files of the old layout.
fn read_split(key_path: &Path, cert_path: &Path) -> Result<Identity, CryptoError> {
    let key = fs::read(key_path).map_err(|e| store_err(key_path, e))?;
    let cert = fs::read(cert_path).map_err(|e| store_err(cert_path, e))?;
    Identity::from_pem(&key, &cert).map_err(|e| store_err(key_path, e))
}

/// What [`KeyStore::inspect`] finds wrong in the key directory, for `usestats doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProblem {
    /// The current pair does not match: it is (or would be) recovered from the archive.
    pub current_mismatch: bool,
    pub detail: String,
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

    fn archive_dir(&self) -> PathBuf {
        self.dir.join("archive")
    }

    /// The current pair as stored (either layout), unchecked; None when there is none.
    fn read_current(&self) -> Result<Option<Identity>, CryptoError> {
        let current = self.dir.join(CURRENT);
        if current.exists() {
            return read_pair(&current).map(Some);
        }
        let key = self.dir.join(OLD_CURRENT_KEY);
        if !key.exists() {
            return Ok(None);
        }
        read_split(&key, &self.dir.join(OLD_CURRENT_CERT)).map(Some)
    }

    /// The current certificate as stored, cheap enough to read every few seconds.
    pub fn current_cert_pem(&self) -> Option<String> {
        let current = self.dir.join(CURRENT);
        if current.exists() {
            return read_pair(&current).ok().map(|id| id.cert_pem);
        }
        let pem = fs::read(self.dir.join(OLD_CURRENT_CERT)).ok()?;
        openssl::x509::X509::from_pem(&pem)
            .ok()
            .and_then(|cert| super::canonical_pem_of(&cert).ok())
    }

    /// Every archived pair that reads and matches, newest certificate first, with what was
    /// skipped and why.
    fn read_archive(&self) -> Result<(Vec<Identity>, Vec<String>), CryptoError> {
        let dir = self.archive_dir();
        if !dir.exists() {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut pairs = Vec::new();
        let mut skipped = Vec::new();
        let names: Vec<String> = fs::read_dir(&dir)
            .map_err(|e| store_err(&dir, e))?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
            .filter(|name| !name.starts_with('.'))
            .collect();
        for name in &names {
            let read = if let Some(stem) = name.strip_suffix(".key.pem") {
                let cert = dir.join(format!("{stem}.cert.pem"));
                if !cert.exists() {
                    skipped.push(format!("{name}: a key without its certificate"));
                    continue;
                }
                read_split(&dir.join(name), &cert)
            } else if name.ends_with(".cert.pem") {
                continue;
            } else if name.ends_with(".pem") {
                read_pair(&dir.join(name))
            } else {
                continue;
            };
            match read {
                Ok(id) if id.key_matches() => pairs.push(id),
                Ok(_) => skipped.push(format!("{name}: the key is not the certificate's")),
                Err(e) => skipped.push(format!("{name}: {e}")),
            }
        }
        pairs.sort_by_key(|id| std::cmp::Reverse(id.info().not_before));
        let mut seen = std::collections::HashSet::new();
        pairs.retain(|id| seen.insert(id.info().fingerprint_sha1));
        Ok((pairs, skipped))
    }

    /// What is wrong with the key directory, without changing anything: a current pair whose
    /// key is not its certificate's, archived entries that cannot be used.
    pub fn inspect(&self) -> Result<Vec<KeyProblem>, CryptoError> {
        let mut problems = Vec::new();
        if let Some(current) = self.read_current()?
            && !current.key_matches()
        {
            let (archive, _) = self.read_archive()?;
            problems.push(KeyProblem {
                current_mismatch: true,
                detail: match recovery(&current, &archive) {
                    Some(pair) => format!(
                        "our current key is not the key of our current certificate {}: the next start recovers pair {} from the archive",
                        current.info().fingerprint_sha1,
                        pair.info().fingerprint_sha1
                    ),
                    None => format!(
                        "our current key is not the key of our current certificate {}, and no archived pair holds either: restore the key directory {} from a backup",
                        current.info().fingerprint_sha1,
                        self.dir.display()
                    ),
                },
            });
        }
        for skipped in self.read_archive()?.1 {
            problems.push(KeyProblem {
                current_mismatch: false,
                detail: format!("archived key skipped: {skipped}"),
            });
        }
        Ok(problems)
    }

    /// The key ring on disk, or `None` when no current key has been generated yet. A current
    /// pair that does not match is recovered from the archive and written back (see the
    /// module's comment); when nothing in the archive can stand in for it, an error.
    pub fn load(&self) -> Result<Option<Keyring>, CryptoError> {
        let Some(mut current) = self.read_current()? else {
            return Ok(None);
        };
        let (mut archived, skipped) = self.read_archive()?;
        for skipped in &skipped {
            tracing::error!(dir = %self.dir.display(), entry = %skipped, "an archived key pair cannot be used and is skipped");
        }
        if !current.key_matches() {
            let Some(pair) = recovery(&current, &archived).cloned() else {
                return Err(store_err(
                    &self.dir,
                    format!(
                        "our current key is not the key of our current certificate {}, and no archived pair holds either: restore the key directory from a backup",
                        current.info().fingerprint_sha1
                    ),
                ));
            };
            tracing::error!(
                dir = %self.dir.display(),
                certificate = %current.info().fingerprint_sha1,
                recovered = %pair.info().fingerprint_sha1,
                "OUR CURRENT KEY DID NOT MATCH OUR CERTIFICATE (a rotation cut short): the pair from the archive is current again; check `usestats doctor` and rotate if needed"
            );
            self.write_current(&pair)?;
            current = pair;
        }
        let current_fp = current.info().fingerprint_sha1;
        archived.retain(|id| id.info().fingerprint_sha1 != current_fp);
        Ok(Some(Keyring { current, archived }))
    }

    fn ensure_dirs(&self) -> Result<(), CryptoError> {
        // Created 0700 from the start: create-then-chmod would leave a window in which a
        // umask of 000 makes the directory of our private keys world-writable.
        for dir in [self.dir.clone(), self.archive_dir()] {
            crate::files::private_dir(&dir).map_err(|e| store_err(&dir, e))?;
        }
        Ok(())
    }

    /// Makes `id` current in one rename, then drops the files of the old layout (a crash in
    /// between leaves both, and `current.pem` wins).
    fn write_current(&self, id: &Identity) -> Result<(), CryptoError> {
        write_atomic(&self.dir.join(CURRENT), &pair_pem(id)?, 0o600)?;
        let mut removed = false;
        for old in [OLD_CURRENT_KEY, OLD_CURRENT_CERT] {
            let path = self.dir.join(old);
            if path.exists() {
                fs::remove_file(&path).map_err(|e| store_err(&path, e))?;
                removed = true;
            }
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Archives `id` as `archive/<key fingerprint>.pem`. An entry already there with the same
    /// contents is kept as it is; one with other contents (the same key under another
    /// certificate) is never overwritten: this pair goes beside it, named by both
    /// fingerprints.
    fn archive(&self, id: &Identity) -> Result<(), CryptoError> {
        if !id.key_matches() {
            return Err(store_err(
                &self.archive_dir(),
                "refusing to archive a key with another pair's certificate",
            ));
        }
        let pem = pair_pem(id)?;
        let key_fp = id.key_fingerprint();
        let dir = self.archive_dir();
        for name in [
            format!("{key_fp}.pem"),
            format!("{key_fp}-{}.pem", id.info().fingerprint_sha1),
        ] {
            let path = dir.join(name);
            match fs::read(&path) {
                Ok(existing) if existing == pem => return Ok(()),
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return write_atomic(&path, &pem, 0o600);
                }
                Err(e) => return Err(store_err(&path, e)),
            }
        }
        Err(store_err(
            &dir,
            format!("archive entries for key {key_fp} exist with other contents: left as they are"),
        ))
    }

    /// Removes archived pairs beyond the newest `keep_archived`, and temporary files a crash
    /// left behind.
    fn prune(&self, current: &Identity) -> Result<(), CryptoError> {
        let dir = self.archive_dir();
        let (pairs, _) = self.read_archive()?;
        let current_fp = current.info().fingerprint_sha1;
        let keep: std::collections::HashSet<String> = pairs
            .iter()
            .filter(|id| id.info().fingerprint_sha1 != current_fp)
            .take(self.keep_archived)
            .map(|id| id.info().fingerprint_sha1)
            .chain(std::iter::once(current_fp.clone()))
            .collect();
        let names: Vec<String> = fs::read_dir(&dir)
            .map_err(|e| store_err(&dir, e))?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
            .collect();
        for name in names {
            let path = dir.join(&name);
            let unkept = |id: Identity| !keep.contains(&id.info().fingerprint_sha1);
            if name.starts_with('.') && name.ends_with(".tmp") {
                fs::remove_file(&path).map_err(|e| store_err(&path, e))?;
            } else if let Some(stem) = name.strip_suffix(".key.pem") {
                // An old-layout pair that reads is dropped, both files, once it is not kept;
                // one that does not read is left for the operator (every load names it).
                let cert = dir.join(format!("{stem}.cert.pem"));
                if read_split(&path, &cert).is_ok_and(unkept) {
                    fs::remove_file(&path).map_err(|e| store_err(&path, e))?;
                    fs::remove_file(&cert).map_err(|e| store_err(&cert, e))?;
                }
            } else if name.ends_with(".pem")
                && !name.ends_with(".cert.pem")
                && read_pair(&path).is_ok_and(unkept)
            {
                fs::remove_file(&path).map_err(|e| store_err(&path, e))?;
            }
        }
        for name in fs::read_dir(&self.dir)
            .map_err(|e| store_err(&self.dir, e))?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
            .filter(|name| name.starts_with('.') && name.ends_with(".tmp"))
        {
            let _ = fs::remove_file(self.dir.join(name));
        }
        Ok(())
    }

    /// Holds the rotation lock of the key directory until dropped.
    fn rotation_lock(&self) -> Result<fs::File, CryptoError> {
        let path = self.dir.join(ROTATION_LOCK);
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| store_err(&path, e))?;
        file.lock().map_err(|e| store_err(&path, e))?;
        Ok(file)
    }

    /// Makes `fresh` current: the current pair (if any) is archived first, then `fresh`
    /// replaces it in one rename, then old archives beyond the limit go. A crash at any step
    /// leaves a directory that loads: the old pair current (perhaps also archived), or the
    /// new one with the old archived.
    fn make_current(&self, fresh: &Identity) -> Result<(), CryptoError> {
        self.ensure_dirs()?;
        let _lock = self.rotation_lock()?;
        if let Some(ring) = self.load()? {
            self.archive(&ring.current)?;
        }
        self.write_current(fresh)?;
        self.prune(fresh)
    }

    /// Make a new key pair current; the previous one is archived first.
    pub fn rotate(
        &self,
        subject: &CertSubject,
        lifetime_days: u32,
        now: i64,
    ) -> Result<Keyring, CryptoError> {
        let fresh = generate_identity(subject, lifetime_days, now)?;
        self.make_current(&fresh)?;
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
        if !id.key_matches() {
            return Err(store_err(
                &self.dir,
                "the key to install is not its certificate's",
            ));
        }
        self.make_current(id)
    }
}

/// The archived pair that stands in for a current pair whose key and certificate differ: the
/// newest holding its certificate (the one peers know), else the newest holding its key.
fn recovery<'a>(current: &Identity, archive: &'a [Identity]) -> Option<&'a Identity> {
    let cert = current.info().fingerprint_sha1;
    let key = current.key_fingerprint();
    archive
        .iter()
        .find(|id| id.info().fingerprint_sha1 == cert)
        .or_else(|| archive.iter().find(|id| id.key_fingerprint() == key))
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
        let mode = fs::metadata(dir.path().join("keys/current.pem"))
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
        let entries = fs::read_dir(dir.path().join("keys/archive"))
            .unwrap()
            .count();
        assert_eq!(entries, 3, "pruned to keep_archived");
        let (again, generated) = store.load_or_generate(&subject(), 28, 9_999).unwrap();
        assert!(!generated);
        assert_eq!(again.current.info().fingerprint_sha1, fingerprints[5]);
    }

    #[test]
    fn an_archive_entry_with_other_contents_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path().join("keys"), 6);
        let a = generate_identity(&subject(), 28, 1_000).unwrap();
        // The same key under another certificate: the same key fingerprint.
        let b = generate_identity(&subject(), 28, 2_000).unwrap();
        let mut same_key = b.clone();
        same_key.key = a.key.clone();
        store.ensure_dirs().unwrap();
        store.archive(&a).unwrap();
        let first = fs::read(
            store
                .archive_dir()
                .join(format!("{}.pem", a.key_fingerprint())),
        )
        .unwrap();
        assert!(
            store.archive(&same_key).is_err(),
            "a pair whose key is not its certificate's is never archived"
        );
        store.archive(&a).unwrap();
        assert_eq!(
            fs::read(
                store
                    .archive_dir()
                    .join(format!("{}.pem", a.key_fingerprint()))
            )
            .unwrap(),
            first,
            "the same pair again: kept as it was"
        );
    }

    #[test]
    fn a_mismatched_current_pair_is_recovered_from_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let store = KeyStore::new(&keys, 6);
        let old = store.load_or_generate(&subject(), 28, 1_000).unwrap().0;
        let new = generate_identity(&subject(), 28, 2_000).unwrap();
        // What a crash between the two renames of the old layout left: the new key, the old
        // certificate, the old pair archived.
        store.archive(&old.current).unwrap();
        fs::remove_file(keys.join(CURRENT)).unwrap();
        fs::write(
            keys.join(OLD_CURRENT_KEY),
            new.key.private_key_to_pem_pkcs8().unwrap(),
        )
        .unwrap();
        fs::write(keys.join(OLD_CURRENT_CERT), &old.current.cert_pem).unwrap();
        let problems = store.inspect().unwrap();
        assert!(problems[0].current_mismatch, "{problems:?}");
        let ring = store.load().unwrap().unwrap();
        assert_eq!(
            ring.current.info().fingerprint_sha1,
            old.current.info().fingerprint_sha1
        );
        assert!(ring.current.key_matches());
        assert!(store.inspect().unwrap().is_empty(), "written back");
        assert!(!keys.join(OLD_CURRENT_KEY).exists());
    }
}
