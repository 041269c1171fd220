//! Where our key pairs live. One instance (a SQLite state, the default): PEM files in the key
//! directory (`crypto::KeyStore`). Several instances (a PostgreSQL state): the state database,
//! the private keys sealed under a key-encryption key each instance reads from its own file or
//! environment (docs/instances.md), so every instance signs, opens and rotates with the same
//! keys, and a rotation made anywhere reaches the others within seconds
//! ([`KeyHome::changed_since`], polled by `serve`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::crypto::kek::{Kek, KekError};
use crate::crypto::{self, CertSubject, CryptoError, Identity, KeyStore, Keyring};
use crate::store::state::{self, SharedKeyRow};
use crate::store::{Db, DbKind, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("key-encryption key from {origin}: {source}")]
    Kek { origin: String, source: KekError },
    #[error("key-encryption key file {path}: {source}")]
    KekFile {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "no key-encryption key: {path} does not exist and ${env} is not set, but the state database \
         already holds our sealed key pairs. Copy the key-encryption key of a running instance to \
         {path} (mode 0600) or set ${env} (docs/instances.md)"
    )]
    KekMissing { path: String, env: String },
    #[error(
        "our key pair {fingerprint} in the state database was sealed with key-encryption key \
         {sealed_with}, but this instance has {have} (from {origin}). Every instance needs the \
         same key-encryption key: copy it from a running instance, or list the old one in \
         [keys] old_kek_files while rotating it (docs/instances.md)"
    )]
    WrongKek {
        fingerprint: String,
        sealed_with: String,
        have: String,
        origin: String,
    },
    #[error("our key pair {0} in the state database does not match its certificate")]
    Mismatch(String),
    #[error("our keys are files in {0}: there is nothing sealed to rewrap")]
    NotShared(String),
}

impl From<diesel::result::Error> for KeysError {
    fn from(e: diesel::result::Error) -> KeysError {
        KeysError::Store(e.into())
    }
}

/// Our key pairs, wherever they are kept.
pub enum KeyHome {
    Files(KeyStore),
    Shared(SharedKeys),
}

impl std::fmt::Debug for KeyHome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Our key pairs in a PostgreSQL state shared by several instances.
pub struct SharedKeys {
    state: Db,
    /// The current key-encryption key first (it seals), then older ones (they only open).
    keks: Vec<Kek>,
    /// Where the current key-encryption key came from, for messages.
    origin: String,
    keep_archived: usize,
    /// A key directory imported into the database the first time (a single instance that
    /// moves to a PostgreSQL state keeps its keys, so its peers need not change anything).
    files: KeyStore,
}

impl KeyHome {
    /// Files for a SQLite state; the state database for a PostgreSQL one, reading (or, for
    /// the very first instance, generating) the key-encryption key.
    pub fn for_config(config: &Config, state: &Db) -> Result<KeyHome, KeysError> {
        let files = KeyStore::new(config.keys_dir(), config.keys.keep_archived);
        if state.kind() != DbKind::Postgres {
            return Ok(KeyHome::Files(files));
        }
        let (current, origin) = current_kek(config, state)?;
        let mut keks = vec![current];
        for path in config.old_kek_files() {
            keks.push(read_kek_file(&path)?);
        }
        Ok(KeyHome::Shared(SharedKeys {
            state: state.clone(),
            keks,
            origin,
            keep_archived: config.keys.keep_archived,
            files,
        }))
    }

    /// Where the keys are, for people.
    pub fn describe(&self) -> String {
        match self {
            KeyHome::Files(files) => files.dir().display().to_string(),
            KeyHome::Shared(shared) => format!(
                "the state database, sealed under key-encryption key {} ({})",
                shared.keks[0].id(),
                shared.origin
            ),
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self, KeyHome::Shared(_))
    }

    /// The ring as stored, or `None` when no key pair exists yet.
    pub fn load(&self) -> Result<Option<Keyring>, KeysError> {
        match self {
            KeyHome::Files(files) => Ok(files.load()?),
            KeyHome::Shared(shared) => {
                let mut conn = shared.state.get()?;
                shared.ring(&state::shared_key_rows(&mut conn)?)
            }
        }
    }

    /// The ring, making the first key pair when there is none (or, for a new shared state,
    /// importing the key directory). The flag says a key pair was generated now.
    pub fn load_or_generate(
        &self,
        subject: &CertSubject,
        lifetime_days: u32,
        now: i64,
    ) -> Result<(Keyring, bool), KeysError> {
        match self {
            KeyHome::Files(files) => Ok(files.load_or_generate(subject, lifetime_days, now)?),
            KeyHome::Shared(shared) => shared.load_or_generate(subject, lifetime_days, now),
        }
    }

    /// A new current key pair; the old one is archived and keeps opening requests (7025).
    pub fn rotate(
        &self,
        subject: &CertSubject,
        lifetime_days: u32,
        now: i64,
    ) -> Result<Keyring, KeysError> {
        match self {
            KeyHome::Files(files) => Ok(files.rotate(subject, lifetime_days, now)?),
            KeyHome::Shared(shared) => {
                shared
                    .rotate(subject, lifetime_days, now, None)
                    .and_then(|ring| {
                        ring.ok_or_else(|| {
                            KeysError::Mismatch("(none current after rotating)".into())
                        })
                    })
            }
        }
    }

    /// Rotate only if the current certificate expires before `deadline`. Shared: decided
    /// under the state's write lock, so of several instances deciding at once one rotates
    /// and the others find the new key.
    pub fn rotate_if_expiring(
        &self,
        subject: &CertSubject,
        lifetime_days: u32,
        now: i64,
        deadline: i64,
    ) -> Result<Option<Keyring>, KeysError> {
        match self {
            KeyHome::Files(files) => match files.load()? {
                Some(ring) if ring.current.info().not_after > deadline => Ok(None),
                _ => Ok(Some(files.rotate(subject, lifetime_days, now)?)),
            },
            KeyHome::Shared(shared) => shared.rotate(subject, lifetime_days, now, Some(deadline)),
        }
    }

    /// Whether the stored current key pair differs from `ring`'s: cheap enough to ask every
    /// few seconds (one small file read, or one indexed row).
    pub fn changed_since(&self, ring: &Keyring) -> Result<bool, KeysError> {
        match self {
            KeyHome::Files(files) => Ok(files
                .current_cert_pem()
                .is_some_and(|pem| pem != ring.current.cert_pem)),
            KeyHome::Shared(shared) => {
                let mut conn = shared.state.get()?;
                let stored = state::current_shared_key(&mut conn)?;
                Ok(stored.is_some_and(|fp| fp != ring.current.info().fingerprint_sha1))
            }
        }
    }

    /// Seal every stored private key under the current key-encryption key (after a new one
    /// was rolled out with the old one in `old_kek_files`). Returns how many were resealed.
    pub fn rewrap(&self) -> Result<usize, KeysError> {
        match self {
            KeyHome::Files(files) => Err(KeysError::NotShared(files.dir().display().to_string())),
            KeyHome::Shared(shared) => shared.rewrap(),
        }
    }
}

impl SharedKeys {
    fn kek_for(&self, row: &SharedKeyRow) -> Result<&Kek, KeysError> {
        self.keks
            .iter()
            .find(|k| k.id() == row.kek_id)
            .ok_or_else(|| KeysError::WrongKek {
                fingerprint: row.fingerprint.clone(),
                sealed_with: row.kek_id.clone(),
                have: self.keks[0].id().to_string(),
                origin: self.origin.clone(),
            })
    }

    fn identity(&self, row: &SharedKeyRow) -> Result<Identity, KeysError> {
        let kek = self.kek_for(row)?;
        let pem = kek
            .open(&row.key_sealed, row.fingerprint.as_bytes())
            .map_err(|source| KeysError::Kek {
                origin: self.origin.clone(),
                source,
            })?;
        let id = Identity::from_pem(&pem, row.cert_pem.as_bytes())?;
        if id.info().fingerprint_sha1 != row.fingerprint || !id.key.public_eq(&*id.public_key()?) {
            return Err(KeysError::Mismatch(row.fingerprint.clone()));
        }
        Ok(id)
    }

    fn row(&self, id: &Identity, now: i64) -> Result<SharedKeyRow, KeysError> {
        let info = id.info();
        let pem = id
            .key
            .private_key_to_pem_pkcs8()
            .map_err(CryptoError::from)?;
        let kek = &self.keks[0];
        let key_sealed = kek
            .seal(&pem, info.fingerprint_sha1.as_bytes())
            .map_err(|source| KeysError::Kek {
                origin: self.origin.clone(),
                source,
            })?;
        Ok(SharedKeyRow {
            fingerprint: info.fingerprint_sha1,
            is_current: false,
            not_before: info.not_before,
            not_after: info.not_after,
            cert_pem: id.cert_pem.clone(),
            key_sealed,
            kek_id: kek.id().to_string(),
            created_at: now,
            archived_at: None,
        })
    }

    /// Rows (current first) into a ring; `None` when there is no current row.
    fn ring(&self, rows: &[SharedKeyRow]) -> Result<Option<Keyring>, KeysError> {
        let Some(first) = rows.first().filter(|r| r.is_current) else {
            return Ok(None);
        };
        let current = self.identity(first)?;
        let archived = rows[1..]
            .iter()
            .map(|row| self.identity(row))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Keyring { current, archived }))
    }

    fn load_or_generate(
        &self,
        subject: &CertSubject,
        lifetime_days: u32,
        now: i64,
    ) -> Result<(Keyring, bool), KeysError> {
        let mut conn = self.state.get()?;
        if let Some(ring) = self.ring(&state::shared_key_rows(&mut conn)?)? {
            return Ok((ring, false));
        }
        // Under the state's write lock: instances starting together on an empty database
        // make one key pair, not one each.
        let generated = crate::store::write_transaction(&mut conn, |conn| {
            if state::current_shared_key(conn)?.is_some() {
                return Ok::<_, KeysError>(false);
            }
            let (current, archived, generated) = match self.files.load()? {
                Some(ring) => (ring.current, ring.archived, false),
                None => (
                    crypto::generate_identity(subject, lifetime_days, now)?,
                    Vec::new(),
                    true,
                ),
            };
            for old in archived.iter().take(self.keep_archived) {
                let mut row = self.row(old, now)?;
                row.archived_at = Some(now);
                state::insert_archived_shared_key(conn, &row)?;
            }
            state::make_shared_key_current(
                conn,
                &self.row(&current, now)?,
                self.keep_archived,
                now,
            )?;
            if !generated {
                tracing::info!(
                    dir = %self.files.dir().display(),
                    archived = archived.len().min(self.keep_archived),
                    "imported our key pairs from the key directory into the shared state database"
                );
            }
            Ok(generated)
        })?;
        let ring = self
            .ring(&state::shared_key_rows(&mut conn)?)?
            .ok_or_else(|| KeysError::Mismatch("(none current after writing)".into()))?;
        Ok((ring, generated))
    }

    fn rotate(
        &self,
        subject: &CertSubject,
        lifetime_days: u32,
        now: i64,
        only_if_expiring_before: Option<i64>,
    ) -> Result<Option<Keyring>, KeysError> {
        let mut conn = self.state.get()?;
        let rotated = crate::store::write_transaction(&mut conn, |conn| {
            if let Some(deadline) = only_if_expiring_before {
                let rows = state::shared_key_rows(conn)?;
                if rows
                    .first()
                    .is_some_and(|r| r.is_current && r.not_after > deadline)
                {
                    return Ok::<_, KeysError>(false);
                }
            }
            let fresh = crypto::generate_identity(subject, lifetime_days, now)?;
            state::make_shared_key_current(conn, &self.row(&fresh, now)?, self.keep_archived, now)?;
            Ok(true)
        })?;
        if !rotated {
            return Ok(None);
        }
        self.ring(&state::shared_key_rows(&mut conn)?)
    }

    fn rewrap(&self) -> Result<usize, KeysError> {
        let mut conn = self.state.get()?;
        crate::store::write_transaction(&mut conn, |conn| {
            let mut resealed = 0;
            for row in state::shared_key_rows(conn)? {
                if row.kek_id == self.keks[0].id() {
                    continue;
                }
                let fresh = self.row(&self.identity(&row)?, row.created_at)?;
                resealed += state::reseal_shared_key(
                    conn,
                    &row.fingerprint,
                    &fresh.key_sealed,
                    &fresh.kek_id,
                )?;
            }
            Ok(resealed)
        })
    }
}

fn read_kek_file(path: &Path) -> Result<Kek, KeysError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeysError::KekFile {
        path: path.display().to_string(),
        source,
    })?;
    warn_if_readable_by_others(path);
    Kek::parse(&text).map_err(|source| KeysError::Kek {
        origin: path.display().to_string(),
        source,
    })
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "the key-encryption key is readable by others than its owner: chmod 600");
    }
}

/// The key-encryption key: the environment variable named by `[keys] kek_env` if set, else
/// `[keys] kek_file`. With neither, the very first instance (no keys stored yet) makes one.
fn current_kek(config: &Config, state: &Db) -> Result<(Kek, String), KeysError> {
    let env = config.keys.kek_env.trim();
    if !env.is_empty()
        && let Ok(value) = std::env::var(env)
    {
        let origin = format!("environment variable {env}");
        let kek = Kek::parse(&value).map_err(|source| KeysError::Kek {
            origin: origin.clone(),
            source,
        })?;
        return Ok((kek, origin));
    }
    let path = config.kek_file();
    if path.exists() {
        return Ok((read_kek_file(&path)?, path.display().to_string()));
    }
    let mut conn = state.get()?;
    if !state::shared_key_rows(&mut conn)?.is_empty() {
        return Err(KeysError::KekMissing {
            path: path.display().to_string(),
            env: env.to_string(),
        });
    }
    let kek = write_new_kek(&path)?;
    tracing::warn!(
        path = %path.display(),
        id = kek.id(),
        "generated the key-encryption key of our keys in the state database: every other instance needs a copy of it"
    );
    Ok((kek, format!("{} (generated now)", path.display())))
}

/// Write a fresh key-encryption key to `path` (mode 0600), unless a file is already there;
/// either way, return the key the file holds. Linked into place, so of instances racing to
/// make the first one, one wins and every other reads the winner's.
pub fn write_new_kek(path: &Path) -> Result<Kek, KeysError> {
    let file_err = |source| KeysError::KekFile {
        path: path.display().to_string(),
        source,
    };
    // A missing directory is made private; an existing one is left as it is (the file is
    // 0600 itself, and the directory may be /etc/usestats or a shared one such as /tmp).
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        crate::files::private_dir(dir).map_err(file_err)?;
    }
    let kek = Kek::generate().map_err(|source| KeysError::Kek {
        origin: "a new key".into(),
        source,
    })?;
    let tmp = temp_beside(path, kek.id());
    crate::files::write_private(&tmp, format!("{}\n", kek.to_hex()).as_bytes())
        .map_err(file_err)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(kek),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_kek_file(path),
        Err(e) => Err(file_err(e)),
    }
}

/// A temporary name of this writer's own: the process and the new key's id, so that two
/// writers (two processes, or two threads of one) never share it.
fn temp_beside(path: &Path, id: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}-{id}.new", std::process::id()));
    path.with_file_name(name)
}

/// What `serve` does every [`FOLLOW_INTERVAL`]: take up a key pair rotated elsewhere (another
/// instance, or `usestats keys rotate`). Returns the new ring when there was one.
pub fn follow(
    home: &KeyHome,
    cell: &crypto::KeyringCell,
) -> Result<Option<Arc<Keyring>>, KeysError> {
    if !home.changed_since(&cell.current())? {
        return Ok(None);
    }
    let Some(ring) = home.load()? else {
        return Ok(None);
    };
    let ring = Arc::new(ring);
    cell.replace(ring.clone());
    Ok(Some(ring))
}

/// How often `serve` checks for a key pair rotated elsewhere.
pub const FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_kek_file_is_private_and_its_directory_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = shared.join("kek");
        let kek = write_new_kek(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&shared), 0o755, "an existing directory keeps its mode");
        // A second writer reads the first one's key instead of replacing it.
        assert_eq!(write_new_kek(&path).unwrap().id(), kek.id());
        let fresh = tmp.path().join("new/kek");
        write_new_kek(&fresh).unwrap();
        assert_eq!(mode(&tmp.path().join("new")), 0o700);
        let leftovers = std::fs::read_dir(&shared).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left behind");
    }
}
