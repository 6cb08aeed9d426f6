//! Host facts sent at enrolment: hostname, OS, kernel, architecture, network interfaces.

use std::ffi::CStr;
use std::fs;

use apiary_proto::device_api::HostFacts;

/// Reads the facts of this host.
pub fn collect() -> HostFacts {
    let uts = uname();
    HostFacts {
        hostname: uts
            .as_ref()
            .map(|u| u.nodename.clone())
            .unwrap_or_else(|| read_trimmed("/proc/sys/kernel/hostname")),
        os: os_release("PRETTY_NAME").unwrap_or_else(|| "Linux".to_string()),
        kernel: uts
            .as_ref()
            .map(|u| format!("{} {}", u.sysname, u.release))
            .unwrap_or_default(),
        arch: std::env::consts::ARCH.to_string(),
        agent_version: apiary_proto::VERSION.to_string(),
        network: crate::network::interfaces(),
    }
}

/// What `uname(2)` says.
pub struct Uname {
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub machine: String,
}

/// The kernel's names for itself and this host.
pub fn uname() -> Option<Uname> {
    // SAFETY: utsname is plain data; uname fills it and NUL-terminates every field.
    unsafe {
        let mut uts: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut uts) != 0 {
            return None;
        }
        let field = |f: &[libc::c_char]| CStr::from_ptr(f.as_ptr()).to_string_lossy().into_owned();
        Some(Uname {
            sysname: field(&uts.sysname),
            nodename: field(&uts.nodename),
            release: field(&uts.release),
            machine: field(&uts.machine),
        })
    }
}

/// A field of os-release (`/etc/os-release`, else `/usr/lib/os-release`), unquoted.
pub fn os_release(key: &str) -> Option<String> {
    let text = fs::read_to_string("/etc/os-release")
        .or_else(|_| fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    os_release_field(&text, key)
}

fn os_release_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let value = l.strip_prefix(key)?.strip_prefix('=')?.trim();
        let unquoted = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        Some(unquoted.replace("\\\"", "\""))
    })
}

fn read_trimmed(path: &str) -> String {
    fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values_are_unquoted() {
        let text = "NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID='12'\nPRETTY_NAME=\"Say \\\"hi\\\"\"\n";
        assert_eq!(os_release_field(text, "ID").as_deref(), Some("debian"));
        assert_eq!(os_release_field(text, "VERSION_ID").as_deref(), Some("12"));
        assert_eq!(
            os_release_field(text, "NAME").as_deref(),
            Some("Debian GNU/Linux")
        );
        assert_eq!(
            os_release_field(text, "PRETTY_NAME").as_deref(),
            Some("Say \"hi\"")
        );
        assert_eq!(os_release_field(text, "VERSION"), None);
    }
}
