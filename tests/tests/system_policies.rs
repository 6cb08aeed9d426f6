//! The system policies converged on real root filesystems: a debootstrap'd Debian (shadow-utils,
//! chrony) and a busybox-only root (adduser, busybox ntpd). The static agent runs inside each
//! through `nsenter` into a container (`apiary_tests::rootfs`), against a real backend on
//! loopback. For each policy: converge, assert the real files, run again and assert nothing
//! changed, change it by hand and assert it is restored and reported as a warning.
//!
//! Ignored by default: they need the roots (`tests/rootfs/build`), the static agent
//! (`cross/build`) and root. `scripts/test` provides all three and runs them.

use std::os::unix::fs::MetadataExt;

use apiary_tests::rootfs::RootFs;
use apiary_tests::{Agent, Backend, report_messages};
use serde_json::{Value, json};
use sha_crypt::{PasswordHashRef, PasswordVerifier, ShaCrypt};

const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq3v0Yb8m1cJ2WzQw5b4hB0v1rN8kq2m3x4y5z6a7b8 ops@fleet";
const KEY_B: &str =
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7p0q9w8e7r6t5y4u3i2o1p0a9s8d7f6g5h4j3k2l1 backup";
const KEY_HAND: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHandAddedKeyThatMustGoAway000000000000000 intruder";
const PASSWORD: &str = "correct horse battery";

/// A backend, and a device living in `root`, enrolled in `/lab`.
fn device(root: &RootFs) -> (Backend, Agent, String) {
    let backend = Backend::start();
    let agent = Agent::in_root(&format!("{}-device", root.kind), root);
    let id = backend.enroll(&agent, "/lab");
    (backend, agent, id)
}

/// Lines the agent logged for `policy` (changed or failed items; unchanged ones are quiet).
fn logged<'a>(log: &'a str, policy: &str) -> Vec<&'a str> {
    let tag = format!(": {policy}: ");
    log.lines().filter(|l| l.contains(&tag)).collect()
}

fn run(agent: &Agent) -> String {
    let (code, log) = agent.run_once();
    assert!(code == 0 || code == 2, "agent run failed ({code}): {log}");
    log
}

fn passwd_line(root: &RootFs, user: &str) -> Option<String> {
    root.read("/etc/passwd")
        .lines()
        .find(|l| l.split(':').next() == Some(user))
        .map(str::to_string)
}

fn shadow_hash(root: &RootFs, user: &str) -> String {
    root.read("/etc/shadow")
        .lines()
        .find(|l| l.split(':').next() == Some(user))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or_default()
        .to_string()
}

fn uid_of(root: &RootFs, user: &str) -> u32 {
    passwd_line(root, user)
        .expect("user exists")
        .split(':')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap()
}

fn accounts(root: RootFs) {
    let (backend, agent, id) = device(&root);
    // An account the policy must remove, made by hand with the root's own tools.
    let add_carol = if root.kind == "debian" {
        "useradd --create-home carol"
    } else {
        "adduser -D carol"
    };
    root.sh_ok(add_carol);
    assert!(root.path("/home/carol").is_dir());

    backend.set_config(
        "/lab",
        "users",
        &json!({"items": [
            {"name": "alice", "shell": "/bin/sh"},
            {"name": "carol", "state": "absent"},
            {"name": "daemon", "state": "absent"}
        ]}),
    );
    // Plaintext in, hash stored: the backend turns it into SHA-512 crypt.
    backend.set_config(
        "/lab",
        "passwords",
        &json!({"items": [{"user": "alice", "password": PASSWORD}]}),
    );
    backend.set_config(
        "/lab",
        "ssh_keys",
        &json!({"items": [{"user": "alice", "keys": [KEY_A, KEY_B]}]}),
    );
    let shown = backend.cli_json(&["config", "show", "/lab"]);
    assert!(
        !shown.to_string().contains(PASSWORD),
        "plaintext never comes back: {shown}"
    );
    backend.cli_ok(&["commit", "-m", "accounts"]);

    // One run: the account is added, then given its password and keys.
    let log = run(&agent);
    let alice = passwd_line(&root, "alice").expect("alice added");
    assert!(alice.ends_with(":/home/alice:/bin/sh"), "{alice}");
    let hash = shadow_hash(&root, "alice");
    assert!(
        hash.starts_with("$6$"),
        "SHA-512 crypt hash in /etc/shadow: {hash}"
    );
    ShaCrypt::SHA512
        .verify_password(PASSWORD.as_bytes(), PasswordHashRef::new(&hash).unwrap())
        .expect("the hash is of the configured password");
    let keys = root.path("/home/alice/.ssh/authorized_keys");
    assert_eq!(
        std::fs::read_to_string(&keys).unwrap(),
        format!("{KEY_A}\n{KEY_B}\n")
    );
    let uid = uid_of(&root, "alice");
    let meta = std::fs::metadata(&keys).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (uid, 0o600));
    let dir = std::fs::metadata(root.path("/home/alice/.ssh")).unwrap();
    assert_eq!((dir.uid(), dir.mode() & 0o7777), (uid, 0o700));
    assert!(passwd_line(&root, "carol").is_none(), "carol removed");
    assert!(
        !root.path("/home/carol").exists(),
        "with her home directory"
    );
    assert!(
        passwd_line(&root, "daemon").is_some(),
        "system accounts are never removed"
    );
    let users_log = logged(&log, "users").join("\n");
    assert!(
        users_log.contains("deleted its home directory /home/carol"),
        "{log}"
    );
    assert!(
        users_log.contains("error: users: daemon is a system account"),
        "{log}"
    );

    let reports = report_messages(&backend.device(&id)).join("\n");
    assert!(
        reports.contains("info users removed user carol"),
        "{reports}"
    );
    assert!(
        reports.contains("info passwords password of alice set"),
        "{reports}"
    );
    assert!(!reports.contains(&hash), "hashes stay out of reports");

    // Second run: every item unchanged (only the refused system account is reported again).
    let log = run(&agent);
    assert_eq!(
        logged(&log, "users"),
        vec![
            "error: users: daemon is a system account (uid 1, below 1000); the users policy manages regular accounts only"
        ],
        "{log}"
    );
    assert!(logged(&log, "passwords").is_empty(), "{log}");
    assert!(logged(&log, "ssh_keys").is_empty(), "{log}");

    // Drift: changed by hand, restored and reported as warnings.
    let drift = if root.kind == "debian" {
        "usermod --shell /bin/false alice && useradd carol && echo 'alice:$6$hand$madeHashXXXXXXXX' | chpasswd -e"
    } else {
        "sed -i 's#^alice:\\(.*\\):/bin/sh$#alice:\\1:/bin/false#' /etc/passwd && adduser -D carol && echo 'alice:$6$hand$madeHashXXXXXXXX' | chpasswd -e"
    };
    root.sh_ok(drift);
    root.sh_ok(&format!(
        "echo '{KEY_HAND}' >> /home/alice/.ssh/authorized_keys && chmod 644 /home/alice/.ssh/authorized_keys"
    ));
    assert!(passwd_line(&root, "alice").unwrap().ends_with("/bin/false"));
    let log = run(&agent);
    assert!(
        passwd_line(&root, "alice").unwrap().ends_with(":/bin/sh"),
        "shell restored"
    );
    assert!(passwd_line(&root, "carol").is_none(), "carol removed again");
    assert_eq!(shadow_hash(&root, "alice"), hash, "password restored");
    assert_eq!(
        std::fs::read_to_string(&keys).unwrap(),
        format!("{KEY_A}\n{KEY_B}\n")
    );
    assert_eq!(std::fs::metadata(&keys).unwrap().mode() & 0o7777, 0o600);
    let warnings: Vec<&str> = log.lines().filter(|l| l.starts_with("warning: ")).collect();
    let all = warnings.join("\n");
    for want in [
        "warning: users: user alice was changed on the device; restored shell /bin/false -> /bin/sh",
        "warning: users: user carol had been added again on the device; removed user carol",
        "warning: passwords: password of alice was changed on the device; restored",
        "warning: ssh_keys: SSH keys of alice were changed on the device; restored:",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{log}");
    }
    assert!(all.contains("mode 0644 -> 0600"), "{log}");

    // A key list for a user that does not exist is an error naming the user.
    backend.set_config(
        "/lab",
        "ssh_keys",
        &json!({"items": [{"user": "nobody-here", "keys": [KEY_A]}]}),
    );
    backend.cli_ok(&["commit", "-m", "missing user"]);
    let log = run(&agent);
    assert!(
        log.contains("error: ssh_keys: user nobody-here does not exist"),
        "{log}"
    );
}

/// Processes for `process_watch`, per root: real daemons of the root where it has them.
struct Processes {
    setup: &'static str,
    watched: &'static str,
    watched_start: &'static str,
    forbidden: &'static str,
    forbidden_start: &'static str,
}

impl Processes {
    fn of(root: &RootFs) -> Self {
        if root.kind == "debian" {
            // Copies of `sleep` under daemon-like names. `watched-daemon-helper` runs from the
            // start and must not count as `watched-daemon`: names match exactly.
            Self {
                setup: "mkdir -p /usr/local/bin && for n in watched-daemon watched-daemon-helper forbidden-daemon; do cp /bin/sleep /usr/local/bin/$n; done && (/usr/local/bin/watched-daemon-helper 100000 </dev/null >/dev/null 2>&1 &)",
                watched: "watched-daemon",
                watched_start: "/usr/local/bin/watched-daemon 100000 </dev/null >/dev/null 2>&1 &",
                forbidden: "forbidden-daemon",
                forbidden_start: "/usr/local/bin/forbidden-daemon 100000",
            }
        } else {
            // Busybox applets are all the `busybox` executable: they are told apart by
            // argv[0], as the policy documents.
            Self {
                setup: "mkdir -p /tmp/crontabs",
                watched: "crond",
                watched_start: "crond -c /tmp/crontabs",
                forbidden: "nc",
                forbidden_start: "nc -l -p 0 -s 127.0.0.1",
            }
        }
    }
}

fn services(root: RootFs) {
    let (backend, agent, id) = device(&root);
    let procs = Processes::of(&root);
    root.sh_ok(procs.setup);
    root.sh_ok(&format!(
        "{} </dev/null >/dev/null 2>&1 & echo $! > /run/forbidden.pid",
        procs.forbidden_start
    ));
    let (daemon, conf) = if root.kind == "debian" {
        ("chronyd", "/etc/chrony/chrony.conf")
    } else {
        ("ntpd", "/etc/ntp.conf")
    };
    let options = if root.kind == "debian" { " iburst" } else { "" };

    backend.upload("/app/app.conf", b"level=debug\n");
    backend.set_config(
        "/lab",
        "file_distribution",
        &json!({"sets": [{"label": "app", "files": [{"source": "/app/app.conf",
            "destination": "/srv/app/conf/app.conf", "owner": "daemon", "group": "users", "mode": "0640"}]}]}),
    );
    backend.set_config(
        "/lab",
        "ntp",
        &json!({"servers": ["127.0.0.1", "127.0.0.2"]}),
    );
    backend.set_config(
        "/lab",
        "process_watch",
        &json!({"items": [
            {"name": procs.watched, "command": procs.watched_start},
            {"name": procs.forbidden, "state": "absent", "command": "kill $(cat /run/forbidden.pid)"}
        ]}),
    );
    backend.cli_ok(&["commit", "-m", "services"]);

    let log = run(&agent);
    // File attributes, on a file in directories that did not exist.
    let meta = std::fs::metadata(root.path("/srv/app/conf/app.conf")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (1, 100, 0o640),
        "owner daemon, group users, mode 0640"
    );
    // Time servers, and the daemon restarted on them.
    let text = root.read(conf);
    assert!(
        text.ends_with(&format!(
            "server 127.0.0.1{options}\nserver 127.0.0.2{options}\n"
        )),
        "{text}"
    );
    assert!(
        !text.contains("pool "),
        "only the configured servers: {text}"
    );
    assert!(
        logged(&log, "ntp")[0].contains("restarted with /etc/init.d/"),
        "{log}"
    );
    assert!(
        !root.running(daemon).is_empty(),
        "{daemon} runs after the restart: {log}\n{}",
        root.sh_ok("ps")
    );
    // Processes.
    let (watched, forbidden) = (procs.watched, procs.forbidden);
    assert!(
        log.contains(&format!(
            "warning: process_watch: {watched} was not running; ran:"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "warning: process_watch: {forbidden} was running (pid"
        )),
        "{log}"
    );
    let pids = |name: &str| root.running(name);
    apiary_tests::wait_for(|| (!pids(watched).is_empty()).then_some(()));
    apiary_tests::wait_for(|| pids(forbidden).is_empty().then_some(()));

    // Second run: nothing to do.
    let log = run(&agent);
    for policy in ["file_distribution", "ntp", "process_watch"] {
        assert!(
            logged(&log, policy).is_empty(),
            "{policy} idle on the second run: {log}"
        );
    }

    // Drift.
    root.sh_ok(&format!(
        "chmod 0666 /srv/app/conf/app.conf && chown 0:0 /srv/app/conf/app.conf && echo 'pool evil.example' >> {conf}"
    ));
    for pid in root.running(watched) {
        // SAFETY: plain kill(2) on a process of this test's container.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    apiary_tests::wait_for(|| pids(watched).is_empty().then_some(()));
    let log = run(&agent);
    let meta = std::fs::metadata(root.path("/srv/app/conf/app.conf")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (1, 100, 0o640)
    );
    assert!(
        !root.read(conf).contains("evil"),
        "hand-added server removed"
    );
    for want in [
        "warning: file_distribution: /srv/app/conf/app.conf had its attributes changed on the device; restored: owner 0 -> 1, group 0 -> 100, mode 0666 -> 0640",
        "warning: ntp: time servers were changed on the device; restored",
        &format!("warning: process_watch: {watched} was not running; ran:"),
    ] {
        assert!(log.contains(want), "missing {want:?} in:\n{log}");
    }

    // No time daemon at all is an error, not a silent success.
    root.sh_ok(&format!(
        "rm -f {}",
        if root.kind == "debian" {
            "/usr/sbin/chronyd"
        } else {
            "/usr/sbin/ntpd"
        }
    ));
    backend.set_config("/lab", "ntp", &json!({"servers": ["127.0.0.3"]}));
    backend.cli_ok(&["commit", "-m", "new servers"]);
    let (code, log) = agent.run_once();
    assert_eq!(code, 2, "a failed item makes run-once exit 2: {log}");
    assert!(log.contains("error: ntp: no time daemon found"), "{log}");
    let reports = report_messages(&backend.device(&id)).join("\n");
    assert!(
        reports.contains("error ntp no time daemon found"),
        "{reports}"
    );
}

fn watchdog(root: RootFs) {
    let (mut backend, agent, id) = device(&root);
    backend.set_config(
        "/lab",
        "connectivity_watchdog",
        &json!({"failed_checkins": 2, "action": "echo fired >> /var/watchdog-fired", "min_interval_seconds": 3600}),
    );
    backend.cli_ok(&["commit", "-m", "watchdog"]);
    run(&agent);
    let fired = || std::fs::read_to_string(root.path("/var/watchdog-fired")).unwrap_or_default();

    backend.stop();
    let offline = || {
        let (code, log) = agent.run_once();
        assert_eq!(code, 1, "offline: {log}");
        log
    };
    offline();
    assert_eq!(fired(), "", "one failure is below the threshold");
    let log = offline();
    assert_eq!(
        fired(),
        "fired\n",
        "two consecutive failures run the action: {log}"
    );
    offline();
    let log = offline();
    assert_eq!(fired(), "fired\n", "at most once per period: {log}");
    assert!(log.contains("at most once per 3600 s"), "{log}");

    backend.restart();
    run(&agent);
    let reports = report_messages(&backend.device(&id)).join("\n");
    assert!(
        reports.contains(
            "critical connectivity_watchdog after 2 consecutive failed check-ins, ran `echo fired >> /var/watchdog-fired`"
        ),
        "{reports}"
    );
    assert!(reports.contains("it exited with status 0"), "{reports}");
    // The record survives in the persistent config dir (a reboot must not reset the period).
    let record: Value =
        serde_json::from_str(&root.read("/etc/apiary/watchdog-last-action.json")).unwrap();
    assert_eq!(record["reported"], true);
}

#[test]
#[ignore = "needs tests/rootfs/build, cross/build and root; scripts/test runs it"]
fn accounts_on_debian() {
    accounts(RootFs::debian());
}

#[test]
#[ignore = "needs tests/rootfs/build, cross/build and root; scripts/test runs it"]
fn accounts_on_busybox() {
    accounts(RootFs::busybox());
}

#[test]
#[ignore = "needs tests/rootfs/build, cross/build and root; scripts/test runs it"]
fn services_on_debian() {
    services(RootFs::debian());
}

#[test]
#[ignore = "needs tests/rootfs/build, cross/build and root; scripts/test runs it"]
fn services_on_busybox() {
    services(RootFs::busybox());
}

#[test]
#[ignore = "needs tests/rootfs/build, cross/build and root; scripts/test runs it"]
fn watchdog_on_debian() {
    watchdog(RootFs::debian());
}

#[test]
#[ignore = "needs tests/rootfs/build, cross/build and root; scripts/test runs it"]
fn watchdog_on_busybox() {
    watchdog(RootFs::busybox());
}
