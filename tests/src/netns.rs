//! A network namespace of the test's own, joined to the host by one veth pair: processes run
//! in it reach the host side's address and nothing else (not the host's loopback), as a
//! device behind a gateway reaches only its proxy.

use std::process::{Child, Command};

use crate::wait_for;

/// A namespace held open by a sleeping process, with `ns_addr` inside and `host_addr` on the
/// host's end of the pair (a /30 of 10.203.0.0/16 picked from the holder's PID); for an
/// [`NetNs::isolated`] one, the addresses the pair would have.
pub struct NetNs {
    holder: Child,
    pub host_addr: String,
    pub ns_addr: String,
}

impl NetNs {
    /// Creates the namespace and its link (needs root).
    pub fn new() -> Self {
        let ns = Self::isolated();
        let pid = ns.holder.id();
        let veth = format!("apx{pid}");
        sh_ok(&format!(
            "ip link add {veth} type veth peer name eth0 netns {pid} && \
             ip addr add {}/30 dev {veth} && ip link set {veth} up",
            ns.host_addr
        ));
        let inside = ns
            .command("/bin/sh")
            .args([
                "-c",
                &format!(
                    "ip addr add {}/30 dev eth0 && ip link set eth0 up",
                    ns.ns_addr
                ),
            ])
            .output()
            .expect("nsenter runs");
        assert!(inside.status.success(), "{inside:?}");
        ns
    }

    /// A namespace with its loopback only: no route anywhere (an air-gapped device).
    pub fn isolated() -> Self {
        let ours = std::fs::read_link("/proc/self/ns/net").expect("own namespace");
        let holder = Command::new("unshare")
            .args(["--net", "sleep", "3600"])
            .spawn()
            .expect("unshare runs (as root)");
        let pid = holder.id();
        wait_for(|| {
            let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
            (ns != ours && exe.ends_with("sleep")).then_some(())
        });
        let n = pid % 16384;
        let (third, fourth) = (n >> 6, (n & 63) * 4);
        let host_addr = format!("10.203.{third}.{}", fourth + 1);
        let ns_addr = format!("10.203.{third}.{}", fourth + 2);
        let ns = Self {
            holder,
            host_addr,
            ns_addr,
        };
        let lo = ns
            .command("ip")
            .args(["link", "set", "lo", "up"])
            .output()
            .expect("nsenter runs");
        assert!(lo.status.success(), "{lo:?}");
        ns
    }

    /// `program` run inside the namespace (the host's filesystem, the namespace's network).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.holder.id().to_string())
            .args(["-n", "--"])
            .arg(program);
        cmd
    }

    /// `cmd` moved inside the namespace, with its arguments and the variables it sets.
    pub fn wrap(&self, cmd: &Command) -> Command {
        let mut inside = self.command(cmd.get_program());
        inside.args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(v) => inside.env(key, v),
                None => inside.env_remove(key),
            };
        }
        inside
    }
}

impl Default for NetNs {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // The veth pair goes with the namespace.
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn sh_ok(script: &str) {
    let out = Command::new("/bin/sh")
        .args(["-c", script])
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
