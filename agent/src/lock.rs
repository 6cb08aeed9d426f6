//! One agent at a time per state dir: `run-once` beside a running `start` waits, never races.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Held for the life of a cycle loop; released when dropped (or when the process dies).
pub struct Lock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
#[error("cannot lock {path}: {source}")]
pub struct LockError {
    path: PathBuf,
    source: io::Error,
}

impl Lock {
    /// Takes the lock, waiting for another agent process to finish.
    pub fn acquire(path: &Path) -> Result<Self, LockError> {
        let err = |source| LockError {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(err)?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(err(io::Error::last_os_error()));
        }
        Ok(Self { _file: file })
    }
}
