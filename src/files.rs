//! Files that may hold secrets (the configuration with database passwords, the SQLite state
//! with peers, grants and token hashes) are created readable by their owner only, whatever
//! the umask: a umask of 000 would otherwise leave them world-readable or even writable.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of files we create that may hold secrets.
pub const PRIVATE_FILE: u32 = 0o600;
/// Mode of directories holding private keys.
pub const PRIVATE_DIR: u32 = 0o700;

/// Write `data` to `path` with mode 0600, replacing any file there. The data goes to a
/// sibling temporary file first, so a reader never sees half a file and an existing file's
/// looser mode is not inherited.
pub fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = sibling_tmp(path);
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(PRIVATE_FILE)
            .open(&tmp)?;
        // The mode given to open() is filtered by the umask only towards fewer bits, but a
        // leftover temporary file keeps its old mode: set it explicitly.
        file.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE))?;
        file.write_all(data)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path)
}

fn sibling_tmp(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Create an empty file with mode 0600 when there is none at `path` (an existing file is
/// left as it is: the operator may have chosen its mode). SQLite gives its `-wal` and
/// `-shm` companions the mode of the database file, so creating the database this way
/// covers them too.
pub fn create_private_if_missing(path: &Path) -> io::Result<()> {
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE)
        .open(path)
    {
        Ok(file) => file.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Create `dir` (and missing parents) with mode 0700, and bring an existing one to 0700.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode != PRIVATE_DIR {
        fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR))?;
    }
    Ok(())
}

/// Group or other permission bits of `path`, when it exists and has any.
pub fn loose_mode(path: &Path) -> Option<u32> {
    let mode = fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Bytes an unprivileged process may still write on the file system holding `path` (its
/// nearest existing ancestor); None when the system does not say.
pub fn free_space(path: &Path) -> Option<u64> {
    let mut at = Some(path);
    while let Some(dir) = at {
        if dir.exists() {
            let stats = nix::sys::statvfs::statvfs(dir).ok()?;
            return Some(
                stats
                    .blocks_available()
                    .saturating_mul(stats.fragment_size()),
            );
        }
        at = dir.parent();
    }
    None
}

/// Like [`loose_mode`], but group bits do not count when the file's group is this process's
/// own: the packaged config is root:usestats 0640, which lets the daemon read it and nobody
/// else, and keeps it out of the daemon's reach for writing.
pub fn loose_mode_beyond_own_group(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path).ok()?;
    let mode = meta.permissions().mode() & 0o777;
    let own_group = meta.gid() == nix::unistd::getegid().as_raw();
    let loose = if own_group { 0o007 } else { 0o077 };
    (mode & loose != 0).then_some(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_files_and_dirs_have_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let loose = dir.path().join("loose.toml");
        fs::write(&loose, "old").unwrap();
        fs::set_permissions(&loose, fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(loose_mode(&loose), Some(0o666));
        write_private(&loose, b"new").unwrap();
        assert_eq!(mode(&loose), 0o600);
        assert_eq!(fs::read(&loose).unwrap(), b"new");
        assert_eq!(loose_mode(&loose), None);

        let db = dir.path().join("state.sqlite3");
        create_private_if_missing(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        fs::write(&db, "kept").unwrap();
        create_private_if_missing(&db).unwrap();
        assert_eq!(fs::read(&db).unwrap(), b"kept");

        let keys = dir.path().join("a/keys");
        private_dir(&keys).unwrap();
        assert_eq!(mode(&keys), 0o700);
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&keys).unwrap();
        assert_eq!(mode(&keys), 0o700);
    }

    #[test]
    fn group_bits_count_only_for_a_group_not_our_own() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("usestats.toml");
        fs::write(&config, "x").unwrap();
        fs::set_permissions(&config, fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(loose_mode_beyond_own_group(&config), None);
        assert_eq!(loose_mode(&config), Some(0o640));
        fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(loose_mode_beyond_own_group(&config), Some(0o644));
        fs::set_permissions(&config, fs::Permissions::from_mode(0o640)).unwrap();
        // Another group (nogroup) needs root to set: CI runs as root.
        let other = if nix::unistd::getegid().as_raw() == 65534 {
            65533
        } else {
            65534
        };
        match std::os::unix::fs::chown(&config, None, Some(other)) {
            Ok(()) => assert_eq!(loose_mode_beyond_own_group(&config), Some(0o640)),
            Err(e) => eprintln!("not checked for another group (not root): {e}"),
        }
    }
}
