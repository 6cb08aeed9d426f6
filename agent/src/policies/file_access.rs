//! Who writes a distributed file: the agent itself, or, when it is not root and the file is
//! not its own to write, the elevated helper (`crate::elevated`) as root. Without elevation
//! that second route ends in a "needs root" failure naming the file.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::file_attributes::{Actual, Wanted};
use crate::elevated;
use crate::privilege::{self, egid, euid};

/// The way to a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Through `safe_fs` in this process (root, or the agent's own files).
    Direct,
    /// Through `apiary-agent elevated` as root.
    Elevated,
}

impl Route {
    /// Direct for root; for another user, direct only when it may create files in `parent`
    /// (or the directory it would create `parent` under) and the wanted owner is its own.
    pub fn for_destination(parent: &Path, wanted: &Wanted) -> Self {
        if privilege::current().is_root() {
            return Route::Direct;
        }
        let own = wanted.uid.is_none_or(|u| u == euid()) && wanted.gid.is_none_or(|g| g == egid());
        if own && nearest_existing(parent).is_some_and(writable) {
            Route::Direct
        } else {
            Route::Elevated
        }
    }
}

/// True when a file with `actual` attributes is this process's to replace or change: root's
/// are all, another user's only its own.
pub fn owned_by_agent(actual: Actual) -> bool {
    privilege::current().is_root() || actual.uid == euid()
}

/// A new file the agent writes itself gets its own user and group where the bundle names
/// none (root's default is root).
pub fn default_to_agent(wanted: &Wanted, attributes: &mut Actual) {
    if privilege::current().is_root() {
        return;
    }
    if wanted.uid.is_none() {
        attributes.uid = euid();
    }
    if wanted.gid.is_none() {
        attributes.gid = egid();
    }
}

/// Gives `path`, which has `actual`, the wanted attributes through the elevated helper.
pub fn apply_elevated(path: &Path, wanted: &Wanted, actual: Actual) -> Result<(), String> {
    let target = wanted.for_new_content(Some(actual));
    let owner = (target.uid, target.gid);
    let chown = (owner != (actual.uid, actual.gid)).then_some(owner);
    elevated::set_attributes(path, target.mode, chown)
}

fn nearest_existing(path: &Path) -> Option<&Path> {
    path.ancestors()
        .find(|p| std::fs::symlink_metadata(p).is_ok())
}

/// The kernel's answer for this process's effective ids (`faccessat` with `AT_EACCESS`).
fn writable(dir: &Path) -> bool {
    let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a NUL-terminated path; faccessat only reads it.
    unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::W_OK | libc::X_OK,
            libc::AT_EACCESS,
        ) == 0
    }
}
