//! Running processes, read from `/proc`.
//!
//! A process is named after the file name of its executable (`/proc/PID/exe`), which no
//! process can change: `argv[0]` can be anything (`exec -a crond sleep 1000`), so by itself
//! it names nothing. The one exception is a multi-call binary (busybox, toybox), whose
//! applets all run the same executable and differ only by `argv[0]`: a process of one of
//! those is also named after its `argv[0]`, but only when it runs as root, which no local
//! user can fake. Kernel threads have no executable and never match.

use std::fs;
use std::path::Path;

/// Executables whose applets are told apart by `argv[0]` alone.
const MULTI_CALL: &[&str] = &["busybox", "toybox"];

/// A running process and its names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub exe_name: Option<String>,
    pub argv0_name: Option<String>,
    /// Real and effective user ids are both 0.
    pub root: bool,
    /// The executable exists but this process may not see it (another user's, to a
    /// process that is not root).
    pub exe_hidden: bool,
}

impl Process {
    /// True when the executable is `name`, or it is a root applet of a multi-call binary
    /// started as `name`.
    pub fn is_named(&self, name: &str) -> bool {
        let Some(exe) = self.exe_name.as_deref() else {
            return false;
        };
        exe == name
            || (self.root && MULTI_CALL.contains(&exe) && self.argv0_name.as_deref() == Some(name))
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
    visible_named(name).0
}

/// The PIDs of processes named `name`, and how many processes hide their executable from
/// this one (each of which might be `name`).
pub fn visible_named(name: &str) -> (Vec<u32>, usize) {
    let all = list();
    let hidden = all.iter().filter(|p| p.exe_hidden).count();
    let pids = all
        .into_iter()
        .filter(|p| p.is_named(name))
        .map(|p| p.pid)
        .collect();
    (pids, hidden)
}

fn read(dir: &Path, pid: u32) -> Process {
    let exe = fs::read_link(dir.join("exe"));
    let exe_hidden = exe
        .as_ref()
        .is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied);
    let exe_name = exe.ok().and_then(|p| {
        // An executable replaced on disk reads as "/usr/sbin/x (deleted)": still x.
        let name = p.file_name()?.to_string_lossy().into_owned();
        Some(name.trim_end_matches(" (deleted)").to_string())
    });
    let argv0_name = fs::read(dir.join("cmdline"))
        .ok()
        .and_then(|raw| argv0_name(&raw));
    let root = fs::read_to_string(dir.join("status"))
        .ok()
        .is_some_and(|status| runs_as_root(&status));
    Process {
        pid,
        exe_name,
        argv0_name,
        root,
        exe_hidden,
    }
}

/// From `/proc/PID/status`: the `Uid:` line's real and effective ids are 0.
fn runs_as_root(status: &str) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|ids| {
            let mut ids = ids.split_whitespace();
            ids.next() == Some("0") && ids.next() == Some("0")
        })
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
            root: true,
            exe_hidden: false,
        };
        assert!(p.is_named("crond") && p.is_named("busybox"));
        assert!(!p.is_named("cron") && !p.is_named("crond2") && !p.is_named("rond"));
    }

    #[test]
    fn argv0_alone_names_nothing() {
        let renamed = |exe: &str, root| Process {
            pid: 2,
            exe_name: Some(exe.into()),
            argv0_name: Some("crond".into()),
            root,
            exe_hidden: false,
        };
        assert!(
            !renamed("sleep", true).is_named("crond"),
            "exec -a crond sleep"
        );
        assert!(
            !renamed("busybox", false).is_named("crond"),
            "a user's busybox applet"
        );
        assert!(renamed("busybox", true).is_named("crond"));
        let no_exe = Process {
            exe_name: None,
            ..renamed("busybox", true)
        };
        assert!(!no_exe.is_named("crond"));
        assert!(runs_as_root("Name:\tx\nUid:\t0\t0\t0\t0\n"));
        assert!(!runs_as_root("Uid:\t1000\t0\t0\t0\n"));
        assert!(!runs_as_root("Name:\tx\n"));
    }

    #[test]
    fn a_renamed_process_is_known_by_its_executable() {
        // bash: dash's exec has no -a.
        let mut child = std::process::Command::new("/bin/bash")
            .args(["-c", "exec -a crond sleep 30"])
            .spawn()
            .unwrap();
        let pid = child.id();
        // Until the exec, the child is sh; wait for it to become sleep.
        while !std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|p| p.file_name().is_some_and(|n| n == "sleep"))
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let as_crond = pids_named("crond").contains(&pid);
        let as_sleep = pids_named("sleep").contains(&pid);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!as_crond && as_sleep);
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
