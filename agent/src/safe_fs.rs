//! Link-safe file access: every file the agent reads or writes on the device goes through here.
//!
//! The agent runs as root and writes into trees that local users may own parts of, so a path is
//! never handed whole to the kernel. It is walked one component at a time from a held directory
//! descriptor (`openat` with `O_NOFOLLOW`): a directory swapped for a symlink during the walk
//! is seen as a symlink, never followed blindly, and once a directory is open, renaming things
//! above it cannot move the agent's writes elsewhere.
//!
//! - A symlink on the way to the last component is followed only when root or the agent's own
//!   user owns both it and the directory holding it (`/var/run -> /run`): such a link was put
//!   there by the system, not by a local user.
//! - The last component is never followed. A read opens with `O_NONBLOCK` (a FIFO cannot block
//!   the agent), refuses anything but a regular file, and is bounded in size.
//! - Owner and mode are set through a descriptor of the very file that was checked.
//! - A write goes to a new temporary file in the held directory and is renamed over the last
//!   component there, so it replaces a link or a file and never writes through one.
//!
//! Kernel files under `/proc` and `/sys` are read directly elsewhere; they are not the
//! concern of this module.

use std::ffi::{CString, OsStr};
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Symlinks followed in one walk before giving up, as the kernel's own limit.
pub const MAX_LINKS: u32 = 40;
/// Largest state or config file the agent reads back (files it wrote itself).
pub const STATE_FILE_LIMIT: u64 = 32 * 1024 * 1024;

/// Why a file could not be reached safely; every variant names the path.
#[derive(Debug, thiserror::Error)]
pub enum SafeFsError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{} is a symlink owned by uid {owner} in a directory owned by uid {dir_owner}; refusing to follow it",
        path.display()
    )]
    UntrustedLink {
        path: PathBuf,
        owner: u32,
        dir_owner: u32,
    },
    #[error("{} is a {kind}, not a directory; refusing to go through it", path.display())]
    NotDirectory { path: PathBuf, kind: &'static str },
    #[error("{} is a {kind}, not a regular file; refusing to open it", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{} has {links} hard links; refusing to change it in place", path.display())]
    HardLinked { path: PathBuf, links: u64 },
    #[error("{} is larger than {limit} bytes; not read", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{}: more than {MAX_LINKS} symlinks on the way", path.display())]
    TooManyLinks { path: PathBuf },
    #[error("{} changed while it was being opened", path.display())]
    Raced { path: PathBuf },
    #[error("{} has no file name", path.display())]
    NoFileName { path: PathBuf },
}

impl SafeFsError {
    /// True when the path (or a directory on it) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// True when the kernel refused access to the path or a directory on it.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == io::ErrorKind::PermissionDenied)
    }

    fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<SafeFsError> for io::Error {
    fn from(e: SafeFsError) -> Self {
        let kind = match &e {
            SafeFsError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

type Result<T> = std::result::Result<T, SafeFsError>;

/// The kind of file `meta` describes, in words for messages.
pub fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_file() {
        "regular file"
    } else if t.is_dir() {
        "directory"
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// An open directory: every name below is looked up relative to it.
#[derive(Debug)]
pub struct Dir {
    file: File,
    path: PathBuf,
}

impl Dir {
    /// Opens the directory at `path`, which must exist.
    pub fn open(path: &Path) -> Result<Dir> {
        walk(path, None)
    }

    /// Opens the directory at `path`, creating what is missing with `mode` (owned by the agent).
    pub fn create_all(path: &Path, mode: u32) -> Result<Dir> {
        walk(path, Some(mode))
    }

    /// The path this directory was opened by, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` in this directory, for messages.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The directory's own metadata.
    pub fn metadata(&self) -> Result<Metadata> {
        self.file
            .metadata()
            .map_err(|e| SafeFsError::io(&self.path, e))
    }

    /// Gives this very directory an owner (if given) and `mode`, through its descriptor.
    pub fn set_own_attributes(&self, owner: Option<(u32, u32)>, mode: u32) -> Result<()> {
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&self.file, Some(uid), Some(gid))
                .map_err(|e| SafeFsError::io(&self.path, e))?;
        }
        self.file
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| SafeFsError::io(&self.path, e))
    }

    /// The metadata of `name` itself (a symlink is described, not followed); `None` if absent.
    pub fn stat(&self, name: &str) -> Result<Option<Metadata>> {
        match self.open_path(name) {
            Ok(f) => f
                .metadata()
                .map(Some)
                .map_err(|e| SafeFsError::io(self.join(name), e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SafeFsError::io(self.join(name), e)),
        }
    }

    /// Opens the regular file `name` for reading; `None` if absent. Anything else is refused
    /// without being opened for reading (a FIFO, a device, a symlink).
    pub fn open_file(&self, name: &str) -> Result<Option<(File, Metadata)>> {
        self.open_regular(name, libc::O_RDONLY)
    }

    /// Opens the regular file `name` with `access` (`O_RDONLY` or `O_WRONLY`, never
    /// creating or truncating); `None` if absent. It is looked at before it is opened, never
    /// through a link, without blocking on a FIFO, and must still be the same inode once open.
    fn open_regular(&self, name: &str, access: i32) -> Result<Option<(File, Metadata)>> {
        let Some(before) = self.stat(name)? else {
            return Ok(None);
        };
        if !before.is_file() {
            return Err(SafeFsError::NotRegular {
                path: self.join(name),
                kind: kind_of(&before),
            });
        }
        let file = self
            .open_at(name, access | libc::O_NONBLOCK | libc::O_NOCTTY, 0)
            .map_err(|e| SafeFsError::io(self.join(name), e))?;
        let meta = self.checked_same(name, &file, &before)?;
        Ok(Some((file, meta)))
    }

    /// Reads the regular file `name`, at most `limit` bytes; `None` if absent.
    pub fn read(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let Some((file, meta)) = self.open_file(name)? else {
            return Ok(None);
        };
        let too_large = || SafeFsError::TooLarge {
            path: self.join(name),
            limit,
        };
        if meta.len() > limit {
            return Err(too_large());
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| SafeFsError::io(self.join(name), e))?;
        if bytes.len() as u64 > limit {
            return Err(too_large());
        }
        Ok(Some(bytes))
    }

    /// Opens the subdirectory `name` without following a link; `None` if absent.
    pub fn open_dir(&self, name: &str) -> Result<Option<Dir>> {
        match self.open_at(name, libc::O_RDONLY | libc::O_DIRECTORY, 0) {
            Ok(file) => Ok(Some(Dir {
                file,
                path: self.join(name),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) if not_a_dir(&e) => Err(self.not_directory(name)),
            Err(e) => Err(SafeFsError::io(self.join(name), e)),
        }
    }

    /// Creates the subdirectory `name` with exactly `mode`, owned by the agent.
    pub fn mkdir(&self, name: &str, mode: u32) -> Result<Dir> {
        let c = cname(name, &self.path)?;
        // SAFETY: a valid descriptor and a NUL-terminated name.
        if unsafe { libc::mkdirat(self.file.as_raw_fd(), c.as_ptr(), 0o700) } != 0 {
            return Err(SafeFsError::io(self.join(name), io::Error::last_os_error()));
        }
        let dir = self.open_dir(name)?.ok_or_else(|| SafeFsError::Raced {
            path: self.join(name),
        })?;
        dir.file
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| SafeFsError::io(self.join(name), e))?;
        Ok(dir)
    }

    /// Gives the regular file or directory `name` an owner (if given) and `mode`, through a
    /// descriptor of the checked file; owner first, as a chown clears set-id bits. A file with
    /// another hard link is refused: the other name may be anywhere.
    pub fn set_attributes(&self, name: &str, owner: Option<(u32, u32)>, mode: u32) -> Result<()> {
        let path = || self.join(name);
        let before = self
            .stat(name)?
            .ok_or_else(|| SafeFsError::io(path(), io::ErrorKind::NotFound.into()))?;
        let flags = if before.is_dir() {
            libc::O_RDONLY | libc::O_DIRECTORY
        } else if before.is_file() {
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY
        } else {
            return Err(SafeFsError::NotRegular {
                path: path(),
                kind: kind_of(&before),
            });
        };
        let file = self
            .open_at(name, flags, 0)
            .map_err(|e| SafeFsError::io(path(), e))?;
        let meta = self.checked_same(name, &file, &before)?;
        if meta.is_file() && meta.nlink() != 1 {
            return Err(SafeFsError::HardLinked {
                path: path(),
                links: meta.nlink(),
            });
        }
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
                .map_err(|e| SafeFsError::io(path(), e))?;
        }
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| SafeFsError::io(path(), e))
    }

    /// Starts replacing `name` with a new file of `mode`; see [`AtomicFile`].
    pub fn atomic(&self, name: &str, mode: u32) -> Result<AtomicFile> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        // Short enough for NAME_MAX whatever the target's name.
        let stem: String = name.chars().take(200).collect();
        let prefix = format!(".{stem}.apiary-");
        self.remove_stale_temps(&prefix);
        let tmp = format!(
            "{prefix}{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let file = self
            .open_at(
                &tmp,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                mode & 0o777,
            )
            .map_err(|e| SafeFsError::io(self.join(name), e))?;
        let dir = Dir {
            file: self
                .file
                .try_clone()
                .map_err(|e| SafeFsError::io(&self.path, e))?,
            path: self.path.clone(),
        };
        let atomic = AtomicFile {
            file: Some(file),
            dir,
            tmp: cname(&tmp, &self.path)?,
            name: cname(name, &self.path)?,
        };
        // The umask may have narrowed the mode; the caller asked for exactly this one.
        atomic
            .file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| SafeFsError::io(self.join(name), e))?;
        Ok(atomic)
    }

    /// Removes what an agent killed mid-write left of a replacement: regular files of this
    /// user named `prefix` + another process's id (one agent runs at a time, so any other
    /// process's are stale). Best effort: a leftover only costs space.
    fn remove_stale_temps(&self, prefix: &str) {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return;
        };
        let own = format!("{prefix}{}-", std::process::id());
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with(prefix) || name.starts_with(&own) {
                continue;
            }
            if let Ok(Some(meta)) = self.stat(name)
                && meta.file_type().is_file()
                && meta.uid() == euid
            {
                let _ = self.remove_file(name);
            }
        }
    }

    /// Removes the file or link `name` (never what a link points to); absent is fine.
    pub fn remove_file(&self, name: &str) -> Result<()> {
        let c = cname(name, &self.path)?;
        // SAFETY: a valid descriptor and a NUL-terminated name.
        if unsafe { libc::unlinkat(self.file.as_raw_fd(), c.as_ptr(), 0) } != 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::NotFound {
                return Err(SafeFsError::io(self.join(name), e));
            }
        }
        Ok(())
    }

    /// Flushes the directory itself, so a rename in it survives a power cut.
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| SafeFsError::io(&self.path, e))
    }

    fn open_path(&self, name: &str) -> io::Result<File> {
        self.open_at(name, libc::O_PATH, 0)
    }

    /// `openat` relative to this directory, never following a link in `name`.
    fn open_at(&self, name: &str, flags: i32, mode: u32) -> io::Result<File> {
        open_at(&self.file, OsStr::new(name).as_bytes(), flags, mode)
    }

    /// The metadata of `file`, which must be the same inode `before` described.
    fn checked_same(&self, name: &str, file: &File, before: &Metadata) -> Result<Metadata> {
        let meta = file
            .metadata()
            .map_err(|e| SafeFsError::io(self.join(name), e))?;
        if (meta.dev(), meta.ino()) != (before.dev(), before.ino()) {
            return Err(SafeFsError::Raced {
                path: self.join(name),
            });
        }
        Ok(meta)
    }

    fn not_directory(&self, name: &str) -> SafeFsError {
        match self.stat(name) {
            Ok(Some(meta)) => SafeFsError::NotDirectory {
                path: self.join(name),
                kind: kind_of(&meta),
            },
            Ok(None) => SafeFsError::Raced {
                path: self.join(name),
            },
            Err(e) => e,
        }
    }
}

/// A file being written beside its target in a held directory; becomes the target on
/// [`AtomicFile::commit`]. Dropped without commit, the temporary file is removed.
pub struct AtomicFile {
    file: Option<File>,
    dir: Dir,
    tmp: CString,
    name: CString,
}

impl AtomicFile {
    fn file(&self) -> &File {
        self.file.as_ref().expect("file is present until commit")
    }

    fn target(&self) -> PathBuf {
        self.dir.path.join(OsStr::from_bytes(self.name.as_bytes()))
    }

    /// Gives the file to `uid`:`gid` and sets `mode` again (a chown clears set-id bits).
    pub fn chown(&self, uid: u32, gid: u32, mode: u32) -> Result<()> {
        let path = || self.target();
        std::os::unix::fs::fchown(self.file(), Some(uid), Some(gid))
            .map_err(|e| SafeFsError::io(path(), e))?;
        self.file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| SafeFsError::io(path(), e))
    }

    /// The written content, read from its start through a descriptor of its own (to hand to
    /// another process as stdin before, or instead of, a commit).
    pub fn reader(&self) -> Result<File> {
        let fd = self.dir.file.as_raw_fd();
        // SAFETY: a valid descriptor and a NUL-terminated name we created.
        let raw = unsafe {
            libc::openat(
                fd,
                self.tmp.as_ptr(),
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(SafeFsError::io(self.target(), io::Error::last_os_error()));
        }
        // SAFETY: openat returned a new descriptor that nothing else owns.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(raw) }))
    }

    /// Empties the temporary file, to write the content again from its start.
    pub fn restart(&mut self) -> io::Result<()> {
        use std::io::Seek;
        let file = self.file.as_mut().expect("file is present until commit");
        file.set_len(0)?;
        file.rewind()
    }

    /// Makes the written content the target, durably.
    pub fn commit(mut self) -> Result<()> {
        let target = self.target();
        let file = self.file.take().expect("file is present until commit");
        file.sync_all().map_err(|e| SafeFsError::io(&target, e))?;
        drop(file);
        let fd = self.dir.file.as_raw_fd();
        // SAFETY: a valid descriptor and NUL-terminated names.
        if unsafe { libc::renameat(fd, self.tmp.as_ptr(), fd, self.name.as_ptr()) } != 0 {
            let e = io::Error::last_os_error();
            // SAFETY: as above; the temporary file is ours to remove.
            unsafe { libc::unlinkat(fd, self.tmp.as_ptr(), 0) };
            return Err(SafeFsError::io(target, e));
        }
        self.dir.sync()
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
            // SAFETY: a valid descriptor and a NUL-terminated name we created.
            unsafe { libc::unlinkat(self.dir.file.as_raw_fd(), self.tmp.as_ptr(), 0) };
        }
    }
}

/// The directory and last component of `path`.
pub fn split(path: &Path) -> Result<(&Path, &str)> {
    let name = path
        .file_name()
        .and_then(OsStr::to_str)
        .ok_or_else(|| SafeFsError::NoFileName {
            path: path.to_path_buf(),
        })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((parent, name))
}

/// Reads the regular file at `path`, at most `limit` bytes; `None` when it or its directory
/// does not exist.
pub fn read(path: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
    let (parent, name) = split(path)?;
    match Dir::open(parent) {
        Ok(dir) => dir.read(name, limit),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads the regular file at `path`, which must exist, at most `limit` bytes.
pub fn read_existing(path: &Path, limit: u64) -> Result<Vec<u8>> {
    read(path, limit)?.ok_or_else(|| SafeFsError::io(path, io::ErrorKind::NotFound.into()))
}

/// Reads a text file (invalid UTF-8 replaced), as [`read`].
pub fn read_text(path: &Path, limit: u64) -> Result<Option<String>> {
    Ok(read(path, limit)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Replaces `path` with `bytes` atomically; its directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let (parent, name) = split(path)?;
    let dir = Dir::open(parent)?;
    write_in(&dir, name, bytes, mode, None)
}

/// Replaces `name` in `dir` with `bytes` atomically, owned by `owner` from the first moment.
pub fn write_in(
    dir: &Dir,
    name: &str,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let mut file = dir.atomic(name, mode)?;
    if let Some((uid, gid)) = owner {
        file.chown(uid, gid, mode)?;
    }
    file.write_all(bytes)
        .map_err(|e| SafeFsError::io(dir.join(name), e))?;
    file.commit()
}

/// Overwrites the start of the existing regular file at `path` with `bytes`, which must be
/// as long as the file: no block is allocated, so this works on a full filesystem. Not
/// atomic against power loss; meant for fixed-size counters in tmpfs.
pub fn overwrite_in_place(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let (parent, name) = split(path)?;
    let dir = Dir::open(parent)?;
    let Some((file, meta)) = dir.open_regular(name, libc::O_WRONLY)? else {
        return Err(SafeFsError::io(path, io::ErrorKind::NotFound.into()));
    };
    if meta.len() != bytes.len() as u64 {
        return Err(SafeFsError::io(path, io::ErrorKind::InvalidData.into()));
    }
    file.write_all_at(bytes, 0)
        .map_err(|e| SafeFsError::io(path, e))
}

/// Removes the file or link at `path`; absent is fine.
pub fn remove_file(path: &Path) -> Result<()> {
    let (parent, name) = split(path)?;
    match Dir::open(parent) {
        Ok(dir) => dir.remove_file(name),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Walks `path` to a directory from `/` (or the working directory), creating missing
/// directories with `create` when given.
fn walk(path: &Path, create: Option<u32>) -> Result<Dir> {
    let err = |e| SafeFsError::io(path, e);
    let start: &[u8] = if path.is_absolute() { b"/" } else { b"." };
    let root = || open_at_cwd(start).map_err(err);
    let mut dir = root()?;
    let mut pending: Vec<Vec<u8>> = Vec::new();
    push_components(&mut pending, path.as_os_str().as_bytes());
    let mut links = 0;
    while let Some(name) = pending.pop() {
        let flags = libc::O_RDONLY | libc::O_DIRECTORY;
        let opened = match open_at(&dir, &name, flags, 0) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && create.is_some() => {
                make_dir(&dir, &name, create.unwrap_or(0o755)).map_err(err)?;
                open_at(&dir, &name, flags, 0)
            }
            other => other,
        };
        match opened {
            Ok(next) => dir = next,
            Err(e) if not_a_dir(&e) => {
                let at = path_of(path, &name);
                let link = open_at(&dir, &name, libc::O_PATH, 0)
                    .and_then(|f| f.metadata())
                    .map_err(err)?;
                if !link.file_type().is_symlink() {
                    return Err(SafeFsError::NotDirectory {
                        path: at,
                        kind: kind_of(&link),
                    });
                }
                let dir_owner = dir.metadata().map_err(err)?.uid();
                if !trusted(link.uid()) || !trusted(dir_owner) {
                    return Err(SafeFsError::UntrustedLink {
                        path: at,
                        owner: link.uid(),
                        dir_owner,
                    });
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(SafeFsError::TooManyLinks {
                        path: path.to_path_buf(),
                    });
                }
                let target = read_link_at(&dir, &name).map_err(err)?;
                if target.starts_with(b"/") {
                    dir = open_at_cwd(b"/").map_err(err)?;
                }
                push_components(&mut pending, &target);
            }
            Err(e) => return Err(err(e)),
        }
    }
    Ok(Dir {
        file: dir,
        path: path.to_path_buf(),
    })
}

/// Pushes the names of `path` so that the first is popped first; `.` and empty names vanish.
fn push_components(pending: &mut Vec<Vec<u8>>, path: &[u8]) {
    let names = Path::new(OsStr::from_bytes(path))
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.as_bytes().to_vec()),
            Component::ParentDir => Some(b"..".to_vec()),
            _ => None,
        })
        .collect::<Vec<_>>();
    pending.extend(names.into_iter().rev());
}

/// A readable path for a component met during a walk (messages only).
fn path_of(walked: &Path, name: &[u8]) -> PathBuf {
    let name = OsStr::from_bytes(name);
    walked
        .ancestors()
        .find(|a| a.file_name() == Some(name))
        .map(Path::to_path_buf)
        .unwrap_or_else(|| walked.join(name))
}

/// Root and the agent's own user: the owners whose links the agent follows.
fn trusted(uid: u32) -> bool {
    // SAFETY: geteuid cannot fail.
    uid == 0 || uid == unsafe { libc::geteuid() }
}

fn not_a_dir(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR))
}

fn make_dir(dir: &File, name: &[u8], mode: u32) -> io::Result<()> {
    let c = CString::new(name.to_vec()).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: a valid descriptor and a NUL-terminated name.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o700) } != 0 {
        let e = io::Error::last_os_error();
        // Someone made it meanwhile: the open that follows checks what it is.
        return if e.kind() == io::ErrorKind::AlreadyExists {
            Ok(())
        } else {
            Err(e)
        };
    }
    let made = open_at(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    made.set_permissions(std::fs::Permissions::from_mode(mode))
}

fn open_at_cwd(name: &[u8]) -> io::Result<File> {
    let c = CString::new(name.to_vec()).map_err(|_| io::ErrorKind::InvalidInput)?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // SAFETY: a NUL-terminated name; the result is checked.
    let fd = unsafe { libc::openat(libc::AT_FDCWD, c.as_ptr(), flags) };
    owned(fd)
}

fn open_at(dir: &File, name: &[u8], flags: i32, mode: u32) -> io::Result<File> {
    let c = CString::new(name.to_vec()).map_err(|_| io::ErrorKind::InvalidInput)?;
    let flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: a valid descriptor and a NUL-terminated name; the result is checked.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags, mode as libc::c_uint) };
    owned(fd)
}

fn owned(fd: i32) -> io::Result<File> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

fn read_link_at(dir: &File, name: &[u8]) -> io::Result<Vec<u8>> {
    let c = CString::new(name.to_vec()).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: a valid descriptor, a NUL-terminated name and a buffer of the given length.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

fn cname(name: &str, dir: &Path) -> Result<CString> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(SafeFsError::NoFileName {
            path: dir.join(name),
        });
    }
    CString::new(name).map_err(|_| SafeFsError::NoFileName {
        path: dir.join(name.replace('\0', "\\0")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_killed_writer_s_temporary_files_are_removed_by_the_next_write() {
        let tmp = tempfile::tempdir().unwrap();
        let stale = tmp.path().join(".app.conf.apiary-4000000-3");
        let other = tmp.path().join(".other.conf.apiary-4000000-3");
        let unrelated = tmp.path().join(".app.conf.apiary-notes");
        for p in [&stale, &other] {
            std::fs::write(p, b"half").unwrap();
        }
        std::os::unix::fs::symlink("/etc/passwd", &unrelated).unwrap();
        write_atomic(&tmp.path().join("app.conf"), b"whole", 0o644).unwrap();
        assert!(!stale.exists(), "a stale part of app.conf is removed");
        assert!(
            other.exists(),
            "another file's is left to that file's next write"
        );
        assert!(
            unrelated.symlink_metadata().is_ok(),
            "a link is never removed"
        );
        assert_eq!(
            std::fs::read(tmp.path().join("app.conf")).unwrap(),
            b"whole"
        );
    }

    #[test]
    fn writes_and_replaces_with_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o640).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temp left");
    }

    #[test]
    fn abandoned_write_leaves_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"good", 0o644).unwrap();
        {
            let d = Dir::open(dir.path()).unwrap();
            let mut f = d.atomic("f", 0o644).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert_eq!(fs::read(&path).unwrap(), b"good");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "temp removed");
    }

    #[test]
    fn restart_discards_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let d = Dir::open(dir.path()).unwrap();
        let mut f = d.atomic("f", 0o644).unwrap();
        f.write_all(b"wrong content").unwrap();
        f.restart().unwrap();
        f.write_all(b"right").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"right");
    }

    #[test]
    fn a_missing_file_or_directory_is_none_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_atomic(&dir.path().join("no/such/f"), b"x", 0o644).is_err());
        assert_eq!(read(&dir.path().join("none"), 10).unwrap(), None);
        assert_eq!(read(&dir.path().join("no/such/f"), 10).unwrap(), None);
    }

    #[test]
    fn a_write_replaces_a_final_symlink_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("conf");
        symlink(&victim, &link).unwrap();
        assert!(matches!(
            read(&link, 100),
            Err(SafeFsError::NotRegular {
                kind: "symlink",
                ..
            })
        ));
        write_atomic(&link, b"new", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert!(fs::symlink_metadata(&link).unwrap().is_file());
    }

    #[test]
    fn fifos_and_devices_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let err = read(&fifo, 100).unwrap_err();
        assert!(err.to_string().contains("is a FIFO"), "{err}");
        let err = read(Path::new("/dev/zero"), 100).unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        let d = Dir::open(dir.path()).unwrap();
        assert!(matches!(
            d.set_attributes("fifo", None, 0o600),
            Err(SafeFsError::NotRegular { kind: "FIFO", .. })
        ));
    }

    #[test]
    fn reads_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        fs::write(&path, vec![b'x'; 1000]).unwrap();
        assert_eq!(read(&path, 1000).unwrap().unwrap().len(), 1000);
        let err = read(&path, 999).unwrap_err();
        assert!(matches!(err, SafeFsError::TooLarge { limit: 999, .. }));
    }

    #[test]
    fn own_links_on_the_way_are_followed_and_loops_end() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("real/sub")).unwrap();
        symlink("real", dir.path().join("alias")).unwrap();
        symlink(dir.path().join("real/sub"), dir.path().join("abs")).unwrap();
        write_atomic(&dir.path().join("alias/sub/f"), b"a", 0o644).unwrap();
        write_atomic(&dir.path().join("abs/../g"), b"b", 0o644).unwrap();
        assert_eq!(fs::read(dir.path().join("real/sub/f")).unwrap(), b"a");
        assert_eq!(fs::read(dir.path().join("real/g")).unwrap(), b"b");
        symlink("loop", dir.path().join("loop")).unwrap();
        assert!(matches!(
            write_atomic(&dir.path().join("loop/f"), b"x", 0o644),
            Err(SafeFsError::TooManyLinks { .. })
        ));
        fs::write(dir.path().join("file"), b"").unwrap();
        assert!(matches!(
            Dir::create_all(&dir.path().join("file/sub"), 0o755),
            Err(SafeFsError::NotDirectory {
                kind: "regular file",
                ..
            })
        ));
    }

    #[test]
    fn create_all_makes_directories_with_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let d = Dir::create_all(&dir.path().join("a/b/c"), 0o750).unwrap();
        write_in(&d, "f", b"x", 0o600, None).unwrap();
        let meta = fs::metadata(dir.path().join("a/b")).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o750);
        assert_eq!(fs::read(dir.path().join("a/b/c/f")).unwrap(), b"x");
    }

    /// A link another user made is never followed. Needs root to make such a link; CI runs
    /// the tests as root.
    #[test]
    fn links_of_other_users_are_refused() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root to give a link to another user");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("real")).unwrap();
        let link = dir.path().join("alias");
        symlink("real", &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
        let err = write_atomic(&link.join("f"), b"x", 0o644).unwrap_err();
        assert!(
            matches!(err, SafeFsError::UntrustedLink { owner: 65534, .. }),
            "{err}"
        );
        assert!(!dir.path().join("real/f").exists());
    }
}
