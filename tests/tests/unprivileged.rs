//! The agent as the unprivileged user `apiary` in the Debian root: without elevation every
//! policy that needs root says so; with `elevation_command` `["/usr/bin/sudo", "-n"]` and
//! the shipped sudoers allow-list, accounts, passwords, SSH keys, files under `/etc`, the time
//! daemon and the process watch converge as they do for a root agent; with the allow-list
//! gone, sudo's refusal is reported in words.
//!
//! Ignored by default: it needs the Debian root (`tests/rootfs/build`), the static agent
//! (`cross/build`) and root. `scripts/test` provides all three and runs it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use apiary_tests::rootfs::RootFs;
use apiary_tests::{Agent, Backend};
use serde_json::{Value, json};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq3v0Yb8m1cJ2WzQw5b4hB0v1rN8kq2m3x4y5z6a7b8 ops@fleet";
const KEY_2: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHandAddedKeyThatMustGoAway000000000000000 second";
const MOTD: &[u8] = b"managed by apiary\n";
/// Where the packages install the agent, the path the sudoers allow-list names.
const AGENT: &str = "/usr/bin/apiary-agent";

/// Runs one cycle as `apiary`; returns the exit code and the log.
fn run_as_apiary(root: &RootFs) -> (i32, String) {
    let out = root
        .command("/usr/bin/setpriv")
        .args([
            "--reuid=apiary",
            "--regid=apiary",
            "--init-groups",
            "--",
            AGENT,
            "--config-dir",
            "/etc/apiary",
            "--state-dir",
            "/run/apiary",
            "run-once",
        ])
        .output()
        .expect("setpriv runs");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    eprint!("{log}");
    (out.status.code().unwrap_or(-1), log)
}

/// The lines the agent logged for `policy`.
fn logged(log: &str, policy: &str) -> Vec<String> {
    let tag = format!(": {policy}: ");
    log.lines()
        .filter(|l| l.contains(&tag))
        .map(str::to_string)
        .collect()
}

fn field(root: &RootFs, file: &str, user: &str, n: usize) -> Option<String> {
    root.read(file)
        .lines()
        .find(|l| l.split(':').next() == Some(user))
        .and_then(|l| l.split(':').nth(n).map(str::to_string))
}

fn set_elevation(root: &RootFs, command: Value) {
    let path = root.path("/etc/apiary/agent.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["elevation_command"] = command;
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

/// An enrolled device whose agent then runs as `apiary`, as the install guide sets it up.
fn unprivileged_device(root: &RootFs) -> Backend {
    let backend = Backend::start();
    let agent = Agent::in_root("debian-device", root);
    backend.enroll(&agent, "/lab");
    root.sh_ok(&format!(
        "cp /usr/sbin/apiary-agent {AGENT} && \
         useradd --system --home-dir /etc/apiary --shell /usr/sbin/nologin apiary && \
         mkdir -p /run/apiary && chown -R apiary:apiary /etc/apiary /run/apiary && \
         useradd --create-home --shell /bin/sh alice"
    ));
    let sudoers =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/files/apiary-agent.sudoers");
    root.install(&sudoers, "/etc/sudoers.d/apiary-agent", 0o440);
    root.sh_ok("visudo -c -f /etc/sudoers.d/apiary-agent");

    backend.upload("/etc/motd", MOTD);
    backend.set_config(
        "/lab",
        "users",
        &json!({"items": [{"name": "alice", "shell": "/bin/sh"}, {"name": "bob"}]}),
    );
    backend.set_config(
        "/lab",
        "passwords",
        &json!({"items": [{"user": "alice", "password": "correct horse battery"}]}),
    );
    backend.set_config(
        "/lab",
        "ssh_keys",
        &json!({"items": [{"user": "alice", "keys": [KEY]}]}),
    );
    backend.set_config(
        "/lab",
        "file_distribution",
        &json!({"sets": [{"label": "motd", "files": [
            {"source": "/etc/motd", "destination": "/etc/apiary-test/motd", "owner": "root", "group": "adm", "mode": "0640"}
        ]}]}),
    );
    backend.set_config("/lab", "ntp", &json!({"servers": ["127.0.0.1"]}));
    // The container's init is `sleep`, a root process: hidden from `apiary` without root.
    backend.set_config(
        "/lab",
        "process_watch",
        &json!({"items": [{"name": "sleep", "state": "present", "command": "true"}]}),
    );
    backend.cli_ok(&["commit", "-m", "unprivileged"]);
    backend
}

#[test]
#[ignore = "needs tests/rootfs/build, cross/build and root; scripts/test runs it"]
fn unprivileged_agent_elevates_only_what_needs_root() {
    let root = RootFs::debian();
    let backend = unprivileged_device(&root);

    // No elevation: each policy says what it needs root for; nothing is half done.
    let (code, log) = run_as_apiary(&root);
    assert_eq!(code, 2, "items failed: {log}");
    for (policy, what) in [
        ("users", "needs root: adding account bob"),
        (
            "passwords",
            "needs root: reading the password hash of alice",
        ),
        ("ssh_keys", "needs root: writing the SSH keys of alice"),
        (
            "file_distribution",
            "needs root: reading /etc/apiary-test/motd",
        ),
        ("ntp", "needs root: writing /etc/chrony/chrony.conf"),
        ("process_watch", "needs root: telling whether sleep runs"),
    ] {
        let lines = logged(&log, policy).join("\n");
        assert!(
            lines.contains(what) && lines.contains("without an elevation_command"),
            "{policy}: {lines}"
        );
    }
    assert!(field(&root, "/etc/passwd", "bob", 0).is_none());
    assert!(!root.path("/home/alice/.ssh").exists());
    assert!(!root.path("/etc/apiary-test").exists());
    // The reports reach the backend like any other.
    let device = backend.cli_json(&["devices", "show", "debian-device"]);
    assert!(
        device
            .to_string()
            .contains("needs root: adding account bob"),
        "{device}"
    );

    // Through sudo and the allow-list, everything converges in one run.
    set_elevation(&root, json!(["/usr/bin/sudo", "-n"]));
    let (code, log) = run_as_apiary(&root);
    assert_eq!(code, 0, "all converged: {log}");
    let uid: u32 = field(&root, "/etc/passwd", "alice", 2)
        .expect("alice exists")
        .parse()
        .unwrap();
    assert!(field(&root, "/etc/passwd", "bob", 0).is_some(), "bob added");
    let hash = field(&root, "/etc/shadow", "alice", 1).unwrap();
    assert!(hash.starts_with("$6$"), "password set: {hash}");
    let keys = root.path("/home/alice/.ssh/authorized_keys");
    assert_eq!(std::fs::read_to_string(&keys).unwrap(), format!("{KEY}\n"));
    let meta = std::fs::metadata(&keys).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (uid, 0o600));
    let motd = root.path("/etc/apiary-test/motd");
    assert_eq!(std::fs::read(&motd).unwrap(), MOTD);
    let adm: u32 = field(&root, "/etc/group", "adm", 2)
        .unwrap()
        .parse()
        .unwrap();
    let meta = std::fs::metadata(&motd).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (0, adm, 0o640)
    );
    assert!(
        root.read("/etc/chrony/chrony.conf")
            .contains("server 127.0.0.1 iburst")
    );
    assert!(
        logged(&log, "ntp")[0].contains("restarted with /etc/init.d/chrony restart"),
        "{log}"
    );
    assert!(
        logged(&log, "process_watch").is_empty(),
        "sleep seen running, nothing to fix: {log}"
    );

    // Idempotent through elevation too.
    let (code, log) = run_as_apiary(&root);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("0 changed, 0 failed"), "{log}");

    // Drift restored through elevation, as a warning.
    std::fs::write(&motd, b"edited by hand\n").unwrap();
    let (_, log) = run_as_apiary(&root);
    assert!(
        logged(&log, "file_distribution")
            .iter()
            .any(|l| l.starts_with("warning:") && l.contains("was changed on the device")),
        "{log}"
    );
    assert_eq!(std::fs::read(&motd).unwrap(), MOTD);

    // The allow-list gone: sudo -n refuses, and the report says so in words.
    root.sh_ok("rm /etc/sudoers.d/apiary-agent");
    backend.set_config(
        "/lab",
        "ssh_keys",
        &json!({"items": [{"user": "alice", "keys": [KEY, KEY_2]}]}),
    );
    backend.cli_ok(&["commit", "-m", "second key"]);
    let (code, log) = run_as_apiary(&root);
    assert_eq!(code, 2, "{log}");
    let lines = logged(&log, "ssh_keys").join("\n");
    assert!(
        lines.contains("writing the SSH keys of alice: the elevation command (/usr/bin/sudo -n) refused: a password is required"),
        "{lines}"
    );
    assert_eq!(std::fs::read_to_string(&keys).unwrap(), format!("{KEY}\n"));
}
