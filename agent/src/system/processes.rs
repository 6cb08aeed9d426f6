//! Running processes, read from `/proc`.
//!
//! A process's names are the file name of its executable (`/proc/PID/exe`) and the file
//! name of its `argv[0]`. Both count because each misses a common case: busybox applets all
//! run the `busybox` executable (so only `argv[0]` says `crond`), while daemons that rewrite
//! their `argv[0]` (`nginx: master process`) are known by their executable. Kernel threads
//! have neither and never match.

use std::fs;
use std::path::Path;

/// A running process and its names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub exe_name: Option<String>,
    pub argv0_name: Option<String>,
}

impl Process {
    /// True when either name is exactly `name`.
    pub fn is_named(&self, name: &str) -> bool {
        self.exe_name.as_deref() == Some(name) || self.argv0_name.as_deref() == Some(name)
    }
}

/// Every process visible in `/proc` (the agent's own namespace), except the agent itself.
pub fn list() -> Vec<Process> {
    let own = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own)
        .map(|pid| read(Path::new("/proc").join(pid.to_string()).as_path(), pid))
        .collect()
}

/// The PIDs of processes named `name`.
pub fn pids_named(name: &str) -> Vec<u32> {
    list()
        .into_iter()
        .filter(|p| p.is_named(name))
        .map(|p| p.pid)
        .collect()
}

fn read(dir: &Path, pid: u32) -> Process {
    let exe_name = fs::read_link(dir.join("exe")).ok().and_then(|p| {
        // An executable replaced on disk reads as "/usr/sbin/x (deleted)": still x.
        let name = p.file_name()?.to_string_lossy().into_owned();
        Some(name.trim_end_matches(" (deleted)").to_string())
    });
    let argv0_name = fs::read(dir.join("cmdline"))
        .ok()
        .and_then(|raw| argv0_name(&raw));
    Process {
        pid,
        exe_name,
        argv0_name,
    }
}

/// The file name of `argv[0]` in a raw `cmdline` (NUL-separated arguments).
fn argv0_name(cmdline: &[u8]) -> Option<String> {
    let argv0 = cmdline.split(|&b| b == 0).next()?;
    if argv0.is_empty() {
        return None;
    }
    let argv0 = String::from_utf8_lossy(argv0);
    // A login shell's argv[0] is "-sh": the name is still "sh".
    let name = argv0.rsplit('/').next()?.trim_start_matches('-');
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv0_names() {
        assert_eq!(argv0_name(b"/usr/sbin/crond\0-f\0"), Some("crond".into()));
        assert_eq!(argv0_name(b"-sh\0"), Some("sh".into()));
        assert_eq!(
            argv0_name(b"nginx: master process\0"),
            Some("nginx: master process".into())
        );
        assert_eq!(argv0_name(b""), None);
    }

    #[test]
    fn names_match_exactly() {
        let p = Process {
            pid: 1,
            exe_name: Some("busybox".into()),
            argv0_name: Some("crond".into()),
        };
        assert!(p.is_named("crond") && p.is_named("busybox"));
        assert!(!p.is_named("cron") && !p.is_named("crond2") && !p.is_named("rond"));
    }

    #[test]
    fn sees_a_child_by_its_executable_name() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let found = pids_named("sleep").contains(&child.id());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(found);
    }
}
