//! Finding system programs. The directories are fixed, not `$PATH`: init systems start the
//! agent with little or no environment, and a tool must not be found somewhere unexpected.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where system tools live, searched in this order.
pub const TOOL_DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// The first executable called `name` in [`TOOL_DIRS`].
pub fn find(name: &str) -> Option<PathBuf> {
    TOOL_DIRS
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| is_executable(p))
}

/// True when `path` is a busybox applet (a link to, or a copy named, `busybox`).
pub fn is_busybox_applet(path: &Path) -> bool {
    std::fs::canonicalize(path)
        .ok()
        .and_then(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().starts_with("busybox"))
        })
        .unwrap_or(false)
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
