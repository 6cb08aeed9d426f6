//! Local users against the agent: in the Debian root filesystem, unprivileged accounts plant
//! symlinks, FIFOs and hard links where the agent (root) reads and writes, then the real static
//! agent converges a real bundle. Nothing outside the places the bundle names may change, and
//! the agent must neither hang nor follow a link a local user made.
//!
//! Hard links to files a user does not own cannot be made by that user on this kernel
//! (`fs.protected_hardlinks`); root plants them here, standing in for a device without that
//! protection. Likewise the link under `/etc` that a local user owns is put there by root, as
//! a misconfigured image would have it.
//!
//! Ignored by default: needs the roots (`tests/rootfs/build`), the static agent (`cross/build`)
//! and root. `scripts/test` provides all three and runs it.

use std::os::unix::fs::MetadataExt;

use apiary_tests::rootfs::RootFs;
use apiary_tests::{Agent, Backend, report_messages};
use serde_json::json;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq3v0Yb8m1cJ2WzQw5b4hB0v1rN8kq2m3x4y5z6a7b8 ops@fleet";
const SECRET: &[u8] = b"secret\n";

/// Runs `script` inside the root as the unprivileged `user`, with that user's `HOME`
/// (`setpriv` keeps the caller's environment). `script` must not contain a single quote.
fn as_user(root: &RootFs, user: &str, script: &str) {
    assert!(
        !script.contains('\''),
        "as_user scripts are single-quoted: {script}"
    );
    root.sh_ok(&format!(
        "setpriv --reuid={user} --regid={user} --init-groups env HOME=/home/{user} sh -c '{script}'"
    ));
}

/// Owner, group, mode and inode of a file of the root, without following a link.
fn stat(root: &RootFs, rel: &str) -> (u32, u32, u32, u64) {
    let m = std::fs::symlink_metadata(root.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    (m.uid(), m.gid(), m.mode() & 0o7777, m.ino())
}

fn plant(root: &RootFs) {
    root.sh_ok(
        "for u in mallory eve trudy carol; do useradd --create-home $u; done \
         && mkdir -p /srv/app /srv/keep && chown mallory:mallory /srv/app \
         && echo keep > /srv/keep/file \
         && printf 'secret\\n' > /etc/app-secret && chmod 600 /etc/app-secret \
         && printf 'other\\n' > /etc/app-secret2 && chmod 600 /etc/app-secret2",
    );
    // file_distribution: a directory on the path swapped for a link to /etc, a link over the
    // destination to a root file with the desired content, a link to /dev/zero, a FIFO.
    as_user(
        root,
        "mallory",
        "ln -s /etc /srv/app/conf && ln -s /etc/app-secret /srv/app/mode.conf \
         && ln -s /etc/shadow /srv/app/shadow.conf && ln -s /dev/zero /srv/app/zero.conf \
         && mkfifo /srv/app/fifo.conf \
         && mkdir -m 700 ~/.ssh && mkdir ~/chrony && echo \"server 10.9.9.9\" > ~/chrony/chrony.conf",
    );
    root.sh_ok("ln /etc/app-secret /srv/app/linked.conf");
    // ssh_keys: a hard link to a root file, a FIFO, and ~/.ssh as a link to root's.
    root.sh_ok("ln /etc/app-secret2 /home/mallory/.ssh/authorized_keys");
    as_user(
        root,
        "eve",
        "mkdir -m 700 ~/.ssh && mkfifo ~/.ssh/authorized_keys",
    );
    root.sh_ok("mkdir -p -m 700 /root/.ssh");
    as_user(root, "trudy", "ln -s /root/.ssh ~/.ssh");
    // ntp: the config directory is a link a local user owns.
    root.sh_ok(
        "rm -rf /etc/chrony && ln -s /home/mallory/chrony /etc/chrony && chown -h mallory /etc/chrony",
    );
    // users: the home of a user being removed holds links to system directories.
    as_user(root, "carol", "ln -s /etc ~/etc && ln -s /srv/keep ~/keep");
}

fn bundle(backend: &Backend) {
    backend.upload("/app/app.conf", b"level=debug\n");
    backend.upload("/app/secret", SECRET);
    let file = |source: &str, dest: &str| json!({"source": source, "destination": dest, "owner": "mallory", "mode": "0644"});
    backend.set_config(
        "/lab",
        "file_distribution",
        &json!({"sets": [{"label": "attacked", "files": [
            file("/app/app.conf", "/srv/app/conf/app.conf"),
            file("/app/secret", "/srv/app/mode.conf"),
            file("/app/app.conf", "/srv/app/shadow.conf"),
            file("/app/app.conf", "/srv/app/zero.conf"),
            file("/app/app.conf", "/srv/app/fifo.conf"),
            file("/app/secret", "/srv/app/linked.conf"),
        ]}]}),
    );
    backend.set_config(
        "/lab",
        "ssh_keys",
        &json!({"items": [
            {"user": "mallory", "keys": [KEY]},
            {"user": "eve", "keys": [KEY]},
            {"user": "trudy", "keys": [KEY]}
        ]}),
    );
    backend.set_config("/lab", "ntp", &json!({"servers": ["127.0.0.1"]}));
    backend.set_config(
        "/lab",
        "users",
        &json!({"items": [{"name": "carol", "state": "absent"}]}),
    );
    backend.cli_ok(&["commit", "-m", "attacked"]);
}

#[test]
#[ignore = "needs tests/rootfs/build, cross/build and root; scripts/test runs it"]
fn local_users_cannot_redirect_the_agent() {
    let root = RootFs::debian();
    let backend = Backend::start();
    let agent = Agent::in_root("debian-device", &root);
    let id = backend.enroll(&agent, "/lab");
    plant(&root);
    let shadow_before = (root.read("/etc/shadow"), stat(&root, "/etc/shadow"));
    let secret_before = stat(&root, "/etc/app-secret");
    let secret2_before = stat(&root, "/etc/app-secret2");
    bundle(&backend);

    let (code, log) = agent.run_once();
    assert_eq!(code, 2, "the refused items fail the run: {log}");

    // Nothing outside the named places changed.
    assert!(
        !root.path("/etc/app.conf").exists(),
        "wrote through /srv/app/conf: {log}"
    );
    let shadow = root.read("/etc/shadow");
    assert!(!shadow.contains("carol:"), "carol was removed: {log}");
    for line in shadow_before.0.lines().filter(|l| !l.starts_with("carol:")) {
        assert!(
            shadow.lines().any(|l| l == line),
            "{line} kept in /etc/shadow"
        );
    }
    let (uid, gid, mode, _) = stat(&root, "/etc/shadow");
    assert_eq!(
        (uid, gid, mode),
        (shadow_before.1.0, shadow_before.1.1, shadow_before.1.2)
    );
    assert_eq!(stat(&root, "/etc/app-secret"), secret_before, "{log}");
    assert_eq!(std::fs::read(root.path("/etc/app-secret")).unwrap(), SECRET);
    assert_eq!(stat(&root, "/etc/app-secret2"), secret2_before, "{log}");
    assert_eq!(root.read("/etc/app-secret2"), "other\n");
    assert!(!root.path("/root/.ssh/authorized_keys").exists(), "{log}");
    assert_eq!(
        root.read("/home/mallory/chrony/chrony.conf"),
        "server 10.9.9.9\n",
        "{log}"
    );
    assert_eq!(root.read("/srv/keep/file"), "keep\n");
    assert!(root.path("/etc/passwd").exists());

    // The links, FIFOs and hard links were replaced by the agent's own files.
    let mallory = stat(&root, "/home/mallory").0;
    for (dest, content) in [
        ("/srv/app/mode.conf", SECRET),
        ("/srv/app/shadow.conf", b"level=debug\n".as_slice()),
        ("/srv/app/zero.conf", b"level=debug\n"),
        ("/srv/app/fifo.conf", b"level=debug\n"),
        ("/srv/app/linked.conf", SECRET),
    ] {
        let meta = std::fs::symlink_metadata(root.path(dest)).unwrap();
        assert!(meta.is_file() && meta.nlink() == 1, "{dest}: {log}");
        assert_eq!(
            (meta.uid(), meta.mode() & 0o7777),
            (mallory, 0o644),
            "{dest}"
        );
        assert_eq!(std::fs::read(root.path(dest)).unwrap(), content, "{dest}");
    }
    for user in ["mallory", "eve"] {
        let keys = format!("/home/{user}/.ssh/authorized_keys");
        assert_eq!(root.read(&keys), format!("{KEY}\n"), "{log}");
        let (uid, _, mode, _) = stat(&root, &keys);
        assert_eq!(
            (uid, mode),
            (stat(&root, &format!("/home/{user}")).0, 0o600)
        );
    }

    // And each refusal names what was refused.
    let reports = report_messages(&backend.device(&id)).join("\n");
    for want in [
        "/srv/app/conf is a symlink owned by uid",
        "refusing to follow it",
        "/home/trudy/.ssh is a symlink, not a directory; refusing to go through it",
        "/etc/chrony is a symlink owned by uid",
        "authorized_keys was a FIFO; replaced with 1 key(s)",
        "authorized_keys was a file with 2 hard links; replaced",
    ] {
        assert!(reports.contains(want), "missing {want:?} in:\n{reports}");
    }
}
