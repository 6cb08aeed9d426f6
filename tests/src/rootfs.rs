//! Real root filesystems for policy tests: a Debian tree and a busybox-only tree, built once by
//! `tests/rootfs/build` and used here through a throwaway overlay, so every test starts from
//! the pristine root and the cache is never written.
//!
//! Each [`RootFs`] is a small container: a long-lived process holds new mount, PID and UTS
//! namespaces with the root as its `chroot`, `/proc` and `/dev` mounted. Commands (the agent
//! among them) enter it with `nsenter`, so processes they start outlive them, as on a device,
//! and die with the container. The network namespace is the host's: the agent reaches the
//! backend on loopback.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::wait_for;

/// Where `tests/rootfs/build` caches the roots.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("APIARY_ROOTFS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/apiary-rootfs")
        })
}

/// A running container on an overlay of a cached root filesystem.
pub struct RootFs {
    pub kind: &'static str,
    dir: tempfile::TempDir,
    holder: Child,
    init_pid: u32,
}

impl RootFs {
    /// Debian bookworm (debootstrap minbase, shadow-utils, chrony).
    pub fn debian() -> Self {
        Self::start("debian")
    }

    /// Busybox only, as on Buildroot images.
    pub fn busybox() -> Self {
        Self::start("busybox")
    }

    fn start(kind: &'static str) -> Self {
        let lower = cache_dir().join(kind).join("root");
        assert!(
            lower.join("bin").exists(),
            "{} missing: run tests/rootfs/build first (scripts/test does)",
            lower.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        for d in ["upper", "work", "merged"] {
            std::fs::create_dir(dir.path().join(d)).expect("overlay dirs");
        }
        let merged = dir.path().join("merged");
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            dir.path().join("upper").display(),
            dir.path().join("work").display()
        );
        run_ok(
            Command::new("mount")
                .args(["-t", "overlay", "overlay", "-o", &options])
                .arg(&merged),
        );
        // `--kill-child`: when the holder dies, so does the namespace's init, and with it every
        // process the tests started inside.
        let holder = Command::new("unshare")
            .args(["--fork", "--pid", "--mount", "--uts", "--kill-child"])
            .arg(format!("--mount-proc={}", merged.join("proc").display()))
            .args([
                "/bin/sh",
                "-c",
                r#"mount --rbind /dev "$1/dev" && hostname "$2" && exec chroot "$1" sleep 1000000000"#,
                "sh",
            ])
            .arg(&merged)
            .arg(format!("{kind}-device"))
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare starts");
        let holder_pid = holder.id();
        let init_pid = wait_for(|| {
            let children =
                std::fs::read_to_string(format!("/proc/{holder_pid}/task/{holder_pid}/children"))
                    .ok()?;
            let pid: u32 = children.split_whitespace().next()?.parse().ok()?;
            // The root link turns to the tree once `chroot` ran, after every mount.
            let root = std::fs::read_link(format!("/proc/{pid}/root")).ok()?;
            (root == merged).then_some(pid)
        });
        RootFs {
            kind,
            dir,
            holder,
            init_pid,
        }
    }

    /// The host path of `rel` inside the root (for reading and writing its files).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir
            .path()
            .join("merged")
            .join(rel.trim_start_matches('/'))
    }

    /// PID, in the host's namespace, of the container's init.
    pub fn init_pid(&self) -> u32 {
        self.init_pid
    }

    /// A command run inside the container, with a device-like `PATH`.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.init_pid.to_string())
            .args(["-m", "-p", "-u", "-r", "-w", "--", program])
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        cmd
    }

    /// Runs a shell script inside, returning its output whatever the status.
    pub fn sh(&self, script: &str) -> Output {
        self.command("/bin/sh")
            .args(["-c", script])
            .output()
            .expect("nsenter runs")
    }

    /// Runs a shell script inside, asserting success; returns stdout.
    pub fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "{script:?} failed in the {} root: {}{}",
            self.kind,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Reads a file of the root.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel))
            .unwrap_or_else(|e| panic!("cannot read {rel} in the {} root: {e}", self.kind))
    }

    /// PIDs (host namespace) of live processes in this container named `name` by the agent's
    /// rule: the executable's file name, or `argv[0]`'s for a root busybox applet. Zombies
    /// do not count: the container's init
    /// does not reap them, as a device's would.
    pub fn running(&self, name: &str) -> Vec<u32> {
        let merged = self.path("/");
        let merged = merged.to_str().expect("utf-8 path").trim_end_matches('/');
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc")
            .expect("/proc is readable")
            .flatten()
        {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let dir = entry.path();
            let inside =
                std::fs::read_link(dir.join("root")).is_ok_and(|r| r.to_str() == Some(merged));
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'));
            if !inside || zombie {
                continue;
            }
            let exe = std::fs::read_link(dir.join("exe")).ok();
            let exe_name = exe
                .as_ref()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str());
            let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
            let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
            let argv0_name = String::from_utf8_lossy(argv0)
                .rsplit('/')
                .next()
                .map(str::to_string);
            let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
            let root = status.lines().any(|l| {
                l.strip_prefix("Uid:")
                    .is_some_and(|ids| ids.split_whitespace().take(2).all(|id| id == "0"))
            });
            let applet = root && matches!(exe_name, Some("busybox" | "toybox"));
            if exe_name == Some(name) || (applet && argv0_name.as_deref() == Some(name)) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Copies a host file into the root.
    pub fn install(&self, from: &Path, to: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let dest = self.path(to);
        std::fs::create_dir_all(dest.parent().expect("absolute path")).expect("create parent");
        std::fs::copy(from, &dest).expect("copy into root");
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
}

impl Drop for RootFs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        // Lazy: the namespace's last processes may still be exiting.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path().join("merged"))
            .status();
    }
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
