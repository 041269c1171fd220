//! One `serve` per SQLite state: an exclusive lock on `<state file>.serve.lock`, held for the
//! life of the process.
//!
//! Two daemons on one SQLite file would each keep their own replay cache, key rotation and
//! compile passes while fighting over the file's write lock; a shared state needs
//! PostgreSQL. Only `serve` takes this lock, so the other commands (`peer add`, `grant`,
//! `stats`, `doctor`, …) work beside a running daemon as before.
//!
//! The lock is `flock(2)` (std's `File::try_lock`): the kernel drops it when the process
//! ends, however it ends, so a crash leaves no stale lock to clean up. The file itself stays
//! (deleting it could let two processes lock two different files of one name); it holds the
//! pid of the daemon that holds it, for the message a second one prints.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::store::DbKind;

#[derive(Debug, thiserror::Error)]
pub enum ServeLockError {
    #[error(
        "another `usestats serve`{holder} is running on the SQLite state {state} ({lock} is locked): a SQLite state serves one instance; several instances need a PostgreSQL state (README, \"Running several instances\")"
    )]
    Taken {
        state: String,
        lock: String,
        /// " (pid N)" when the lock file says, else empty.
        holder: String,
    },
    #[error("cannot lock {lock}: {source}")]
    Io {
        lock: String,
        #[source]
        source: std::io::Error,
    },
}

/// Held by `serve` for its whole life; dropping it (or the process ending) lets another
/// `serve` start.
#[derive(Debug)]
pub struct ServeLock {
    _file: File,
    path: PathBuf,
}

impl ServeLock {
    /// Takes the lock of the SQLite state at `state_url`, or says who holds it. None for a
    /// PostgreSQL state (any number of instances) and for an in-memory SQLite database
    /// (nothing to share).
    pub fn acquire(state_url: &str) -> Result<Option<ServeLock>, ServeLockError> {
        let Some(path) = lock_path(state_url) else {
            return Ok(None);
        };
        let io = |source| ServeLockError::Io {
            lock: path.display().to_string(),
            source,
        };
        // Not truncated on open: the holder's pid is in it.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(ServeLockError::Taken {
                    state: sqlite_file(state_url),
                    lock: path.display().to_string(),
                    holder: holder_pid(&mut file)
                        .map(|pid| format!(" (pid {pid})"))
                        .unwrap_or_default(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // The pid is for the message a second `serve` prints, nothing more: on a full disk the
        // lock is held without it (issue 22, K4), written over the old one in place so that no
        // new space is needed when the file already has some.
        let pid = format!("{:<10}\n", std::process::id());
        let written = file
            .rewind()
            .and_then(|()| file.write_all(pid.as_bytes()))
            .and_then(|()| file.set_len(pid.len() as u64));
        if let Err(e) = written {
            tracing::warn!(lock = %path.display(), error = %e, "serve lock held, but its pid not written");
        }
        Ok(Some(ServeLock { _file: file, path }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The pid a holder wrote, if it did (it writes it just after locking).
fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// The lock file of the SQLite state at `state_url`; None when the state is not a SQLite
/// file. A `file:` URI is read as SQLite does for the path (`file:/abs`, `file:///abs`,
/// `file://localhost/abs`, `file:rel`) and `mode=memory` (percent escapes are not decoded).
pub fn lock_path(state_url: &str) -> Option<PathBuf> {
    if DbKind::of(state_url) != DbKind::Sqlite {
        return None;
    }
    let path = sqlite_file(state_url);
    let in_memory = state_url.strip_prefix("file:").is_some_and(|uri| {
        uri.split_once('?')
            .is_some_and(|(_, query)| query.split('&').any(|p| p == "mode=memory"))
    });
    if in_memory || path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(format!("{path}.serve.lock")))
}

/// The file a SQLite URL names.
fn sqlite_file(state_url: &str) -> String {
    let Some(uri) = state_url.strip_prefix("file:") else {
        return state_url.to_string();
    };
    let path = uri.split_once('?').map_or(uri, |(path, _)| path);
    match path.strip_prefix("//") {
        // An authority (empty or localhost), then the absolute path.
        Some(rest) => rest.find('/').map_or("", |i| &rest[i..]).to_string(),
        None => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_sits_beside_a_sqlite_file_only() {
        let at = |url: &str| lock_path(url).map(|p| p.display().to_string());
        assert_eq!(
            at("/srv/usestats/usestats.sqlite3").as_deref(),
            Some("/srv/usestats/usestats.sqlite3.serve.lock")
        );
        assert_eq!(
            at("file:///srv/s.db?mode=rwc").as_deref(),
            Some("/srv/s.db.serve.lock")
        );
        assert_eq!(
            at("file://localhost/srv/s.db").as_deref(),
            Some("/srv/s.db.serve.lock")
        );
        assert_eq!(at("file:s.db").as_deref(), Some("s.db.serve.lock"));
        assert_eq!(at(":memory:"), None);
        assert_eq!(at(""), None);
        assert_eq!(at("file:shared?mode=memory&cache=shared"), None);
        assert_eq!(at("postgres://u@localhost/usestats"), None);
    }

    #[test]
    fn a_second_lock_on_one_state_is_refused_until_the_first_goes() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.sqlite3").display().to_string();
        let first = ServeLock::acquire(&state).unwrap().unwrap();
        let written = std::fs::read_to_string(first.path()).unwrap();
        assert_eq!(written.trim(), std::process::id().to_string());
        let refused = ServeLock::acquire(&state).unwrap_err();
        let message = refused.to_string();
        assert!(
            message.contains(&format!("(pid {})", std::process::id()))
                && message.contains(&format!("{state}.serve.lock"))
                && message.contains("PostgreSQL"),
            "{message}"
        );
        drop(first);
        let again = ServeLock::acquire(&state).unwrap().unwrap();
        assert_eq!(
            std::fs::read_to_string(again.path()).unwrap().trim(),
            std::process::id().to_string()
        );
    }
}
