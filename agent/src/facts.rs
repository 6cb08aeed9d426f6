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
            .map(|u| u.0.clone())
            .unwrap_or_else(|| read_trimmed("/proc/sys/kernel/hostname")),
        os: os_name(),
        kernel: uts.as_ref().map(|u| u.1.clone()).unwrap_or_default(),
        arch: std::env::consts::ARCH.to_string(),
        agent_version: apiary_proto::VERSION.to_string(),
        network: crate::network::interfaces(),
    }
}

fn uname() -> Option<(String, String)> {
    // SAFETY: utsname is plain data; uname fills it and NUL-terminates every field.
    unsafe {
        let mut uts: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut uts) != 0 {
            return None;
        }
        let field = |f: &[libc::c_char]| CStr::from_ptr(f.as_ptr()).to_string_lossy().into_owned();
        Some((
            field(&uts.nodename),
            format!("{} {}", field(&uts.sysname), field(&uts.release)),
        ))
    }
}

fn os_name() -> String {
    let text = fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".to_string())
}

fn read_trimmed(path: &str) -> String {
    fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}
