//! Atomic file writes: a temporary file in the target's directory, fsync, rename, fsync dir.
//!
//! A crash leaves either the old file or the new one, never a torn mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A file being written next to its target; becomes the target on [`AtomicFile::commit`].
///
/// Dropped without commit, the temporary file is removed and the target is untouched.
pub struct AtomicFile {
    file: Option<File>,
    tmp: PathBuf,
    target: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file with `mode` beside `target`.
    pub fn create(target: &Path, mode: u32) -> io::Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = parent_dir(target);
        let name = target.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "target has no file name")
        })?;
        let tmp = dir.join(format!(
            ".{}.apiary-{}-{}",
            name.to_string_lossy(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed the mode; the caller asked for exactly this one.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        Ok(Self {
            file: Some(file),
            tmp,
            target: target.to_path_buf(),
        })
    }

    /// Gives the file to `uid`:`gid` and sets `mode` again (a chown clears set-id bits).
    pub fn chown(&self, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
        let file = self.file.as_ref().expect("file is present until commit");
        std::os::unix::fs::fchown(file, Some(uid), Some(gid))?;
        file.set_permissions(fs::Permissions::from_mode(mode))
    }

    /// Empties the temporary file, to write the content again from its start.
    pub fn restart(&mut self) -> io::Result<()> {
        use std::io::Seek;
        let file = self.file.as_mut().expect("file is present until commit");
        file.set_len(0)?;
        file.rewind()
    }

    /// Makes the written content the target, durably.
    pub fn commit(mut self) -> io::Result<()> {
        let file = self.file.take().expect("file is present until commit");
        file.sync_all()?;
        drop(file);
        fs::rename(&self.tmp, &self.target)?;
        sync_dir(parent_dir(&self.target))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file
            .as_mut()
            .expect("file is present until commit")
            .write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file
            .as_mut()
            .expect("file is present until commit")
            .flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Replaces `target` with `bytes` atomically.
pub fn write_atomic(target: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut file = AtomicFile::create(target, mode)?;
    file.write_all(bytes)?;
    file.commit()
}

/// Replaces `target` with `bytes` atomically, owned by `uid`:`gid` from the first moment.
pub fn write_atomic_owned(
    target: &Path,
    bytes: &[u8],
    mode: u32,
    (uid, gid): (u32, u32),
) -> io::Result<()> {
    let mut file = AtomicFile::create(target, mode)?;
    file.chown(uid, gid, mode)?;
    file.write_all(bytes)?;
    file.commit()
}

/// Reads a file, `None` when it does not exist.
pub fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_replaces_with_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o640).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn abandoned_write_leaves_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"good", 0o644).unwrap();
        {
            let mut f = AtomicFile::create(&path, 0o644).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert_eq!(fs::read(&path).unwrap(), b"good");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file removed"
        );
    }

    #[test]
    fn restart_discards_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut f = AtomicFile::create(&path, 0o644).unwrap();
        f.write_all(b"wrong content").unwrap();
        f.restart().unwrap();
        f.write_all(b"right").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"right");
    }

    #[test]
    fn missing_directory_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_atomic(&dir.path().join("no/such/f"), b"x", 0o644).is_err());
        assert_eq!(read_optional(&dir.path().join("none")).unwrap(), None);
    }
}
