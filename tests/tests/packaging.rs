//! Installing the agent on a device: the packages of `packaging/build` (`.deb`, `.ipk`,
//! tarball), `scripts/install-agent`, and the systemd unit with its unprivileged drop-in.
//!
//! The `.deb` goes through lintian and `dpkg -i` in the Debian root; the tarball through
//! `install-agent` under busybox ash, enrolling against a real backend and starting the
//! real init script. opkg itself does not exist here: the `.ipk` is checked member by
//! member against opkg's format, and its procd script is not run.
//!
//! Most are ignored by default: they need `cross/build`, `packaging/build`, the root
//! filesystems and root. `scripts/test` provides all of them and runs them.

use std::path::{Path, PathBuf};
use std::process::Command;

use apiary_tests::rootfs::RootFs;
use apiary_tests::{Backend, wait_for};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const TARGET: &str = "x86_64-unknown-linux-musl";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// A file `packaging/build` wrote into `dist/`.
fn dist(name: &str) -> PathBuf {
    let path = repo().join("dist").join(name);
    assert!(
        path.exists(),
        "{} missing: run cross/build and packaging/build first (scripts/test does)",
        path.display()
    );
    path
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("command runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A backend with an auto-accepting key for `/field`, and that key and its CA inside `root`
/// at /tmp/key and /tmp/ca.crt.
fn backend_for(root: &RootFs) -> Backend {
    let backend = Backend::start();
    let key = backend.auto_accept_key("/field");
    std::fs::write(root.path("/tmp/key"), key).expect("write key into root");
    root.install(&backend.data_dir().join("ca.crt"), "/tmp/ca.crt", 0o644);
    backend
}

/// Waits until the backend has a check-in from the device named `name`; returns its id.
fn checked_in(backend: &Backend, name: &str) -> String {
    wait_for(|| {
        let devices = backend.cli_json(&["devices", "list"]);
        let device = devices.as_array()?.iter().find(|d| d["name"] == name)?;
        device["last_checkin"].as_u64()?;
        device["id"].as_str().map(str::to_string)
    })
}

/// Copies this target's release tarball and `scripts/install-agent` into `root`'s /tmp;
/// returns the tarball's file name.
fn stage_installer(root: &RootFs) -> String {
    let tarball = format!("apiary-agent-{VERSION}-{TARGET}.tar.gz");
    root.install(&dist(&tarball), &format!("/tmp/{tarball}"), 0o644);
    root.install(
        &repo().join("scripts/install-agent"),
        "/tmp/install-agent",
        0o755,
    );
    tarball
}

/// Writes /tmp/evil.tar.gz into `root`: one member, `../../../../../../../etc/apiary-evil`
/// (tar's -P keeps the `../`).
fn climbing_tarball(root: &RootFs) {
    let evil = tempfile::tempdir().expect("temp dir");
    let deep = evil.path().join("a/b/c/d/e/f/g");
    std::fs::create_dir_all(&deep).expect("mkdir");
    std::fs::create_dir_all(evil.path().join("etc")).expect("mkdir");
    std::fs::write(evil.path().join("etc/apiary-evil"), "x").expect("write");
    let (ok, out) = run(Command::new("tar")
        .arg("-czPf")
        .arg(root.path("/tmp/evil.tar.gz"))
        .arg("-C")
        .arg(&deep)
        .arg("../../../../../../../etc/apiary-evil"));
    assert!(ok, "{out}");
}

/// The PID of the agent the init script started, from its pidfile.
fn agent_pid(root: &RootFs) -> u32 {
    wait_for(|| {
        let pids = root.running("apiary-agent");
        (pids.len() == 1).then(|| pids[0])
    })
}

fn no_agent_runs(root: &RootFs) {
    wait_for(|| root.running("apiary-agent").is_empty().then_some(()));
}

/// Copies the host's systemd units (for the targets the unit names) and `files` into a
/// scratch root, as `systemd-analyze --root` needs them.
fn unit_root(with_dropin: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("lib/systemd")).expect("mkdir");
    let (ok, out) = run(Command::new("cp")
        .arg("-a")
        .arg("/lib/systemd/system")
        .arg(root.join("lib/systemd/")));
    assert!(ok, "copy host units: {out}");
    let files = repo().join("packaging/files");
    let etc = root.join("etc/systemd/system");
    std::fs::create_dir_all(etc.join("apiary-agent.service.d")).expect("mkdir");
    std::fs::copy(
        files.join("apiary-agent.service"),
        etc.join("apiary-agent.service"),
    )
    .expect("copy unit");
    if with_dropin {
        std::fs::copy(
            files.join("unprivileged.conf"),
            etc.join("apiary-agent.service.d/unprivileged.conf"),
        )
        .expect("copy drop-in");
    }
    std::fs::create_dir_all(root.join("usr/bin")).expect("mkdir");
    std::fs::copy("/bin/true", root.join("usr/bin/apiary-agent")).expect("stand-in binary");
    dir
}

/// `systemd-analyze security` of the unit in `root`: the overall exposure score.
fn exposure(root: &Path) -> f64 {
    let (_, out) = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--root"])
        .arg(root)
        .arg("apiary-agent.service"));
    let line = out
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no score in: {out}"));
    line.split(": ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unreadable score: {line}"))
}

#[test]
fn systemd_units_verify_and_keep_their_documented_exposure() {
    for with_dropin in [false, true] {
        let root = unit_root(with_dropin);
        let (ok, out) = run(Command::new("systemd-analyze")
            .args(["verify", "--man=no", "--root"])
            .arg(root.path())
            .arg("apiary-agent.service"));
        assert!(ok, "systemd-analyze verify failed: {out}");
        // systemd before 254 does not know the back-off keys and says so; nothing else.
        for line in out.lines() {
            assert!(
                line.contains("Unknown key 'RestartSteps'")
                    || line.contains("Unknown key 'RestartMaxDelaySec'"),
                "systemd-analyze verify (drop-in: {with_dropin}): {line}"
            );
        }
    }
    // The scores docs/install.md gives (systemd 252); lower is better.
    let root_unit = exposure(unit_root(false).path());
    assert!(root_unit <= 7.4, "root unit exposure {root_unit} > 7.4");
    let unprivileged = exposure(unit_root(true).path());
    assert!(
        unprivileged <= 9.2,
        "unprivileged exposure {unprivileged} > 9.2"
    );
}

#[test]
fn the_shell_scripts_parse_in_every_device_shell() {
    let files = repo().join("packaging/files");
    let scripts = [
        repo().join("scripts/install-agent"),
        files.join("apiary-agent.init"),
        files.join("apiary-agent.procd"),
        repo().join("packaging/deb/postinst"),
        repo().join("packaging/deb/prerm"),
        repo().join("packaging/deb/postrm"),
        repo().join("packaging/ipk/postinst"),
        repo().join("packaging/ipk/prerm"),
    ];
    for shell in [&["dash"][..], &["bash", "--posix"], &["busybox", "ash"]] {
        for script in &scripts {
            let (ok, out) = run(Command::new(shell[0])
                .args(&shell[1..])
                .arg("-n")
                .arg(script));
            assert!(ok, "{} -n {}: {out}", shell.join(" "), script.display());
        }
    }
}

/// The ELF machine of a binary: (e_machine, big-endian).
fn elf_machine(bytes: &[u8]) -> (u16, bool) {
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF binary");
    let big = bytes[5] == 2;
    let raw = [bytes[18], bytes[19]];
    let machine = if big {
        u16::from_be_bytes(raw)
    } else {
        u16::from_le_bytes(raw)
    };
    (machine, big)
}

/// Unpacks member `member` of the ar archive `ipk` into `dir`; returns its path.
fn ar_extract(ipk: &Path, member: &str, dir: &Path) -> PathBuf {
    let (ok, out) = run(Command::new("ar")
        .arg("x")
        .arg(ipk)
        .arg(member)
        .current_dir(dir));
    assert!(ok, "ar x {} {member}: {out}", ipk.display());
    dir.join(member)
}

/// Unpacks a gzip'd tarball into a new directory `dir`; returns it.
fn untar(tarball: &Path, dir: PathBuf) -> PathBuf {
    std::fs::create_dir(&dir).expect("mkdir");
    let (ok, out) = run(Command::new("tar")
        .arg("-xzf")
        .arg(tarball)
        .arg("-C")
        .arg(&dir));
    assert!(ok, "tar -xzf {}: {out}", tarball.display());
    dir
}

/// `tar -tvzf` of a gzip'd tarball: (mode string, owner, path) per member.
fn tar_listing(tarball: &Path) -> Vec<(String, String, String)> {
    let (ok, out) = run(Command::new("tar")
        .args(["--numeric-owner", "-tvzf"])
        .arg(tarball));
    assert!(ok, "tar -tvzf {}: {out}", tarball.display());
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[1].to_string(),
                f[f.len() - 1].to_string(),
            )
        })
        .collect()
}

#[test]
#[ignore = "needs cross/build and packaging/build (scripts/test runs it)"]
fn every_ipk_has_opkgs_layout_and_the_right_binary() {
    let expected = [
        ("x86_64", 62, false),
        ("aarch64_generic", 183, false),
        ("arm_cortex-a7_neon-vfpv4", 40, false),
        ("mips_24kc", 8, true),
        ("mipsel_24kc", 8, false),
    ];
    for (arch, machine, big) in expected {
        let ipk = dist(&format!("apiary-agent_{VERSION}_{arch}.ipk"));
        let (ok, members) = run(Command::new("ar").arg("t").arg(&ipk));
        assert!(ok, "ar t: {members}");
        assert_eq!(
            members.lines().collect::<Vec<_>>(),
            ["debian-binary", "control.tar.gz", "data.tar.gz"],
            "{arch}: members and their order"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let version = ar_extract(&ipk, "debian-binary", dir.path());
        assert_eq!(std::fs::read_to_string(version).expect("read"), "2.0\n");

        let control_tgz = ar_extract(&ipk, "control.tar.gz", dir.path());
        let listing = tar_listing(&control_tgz);
        for (mode, owner, path) in &listing {
            assert_eq!(owner, "0/0", "{arch}: {path} owned by root");
            if path.ends_with("postinst") || path.ends_with("prerm") {
                assert_eq!(mode, "-rwxr-xr-x", "{arch}: {path} executable");
            }
        }
        let unpacked = untar(&control_tgz, dir.path().join("control"));
        let control = std::fs::read_to_string(unpacked.join("control")).expect("control");
        for field in [
            "Package: apiary-agent".to_string(),
            format!("Version: {VERSION}"),
            format!("Architecture: {arch}"),
        ] {
            assert!(
                control.lines().any(|l| l == field),
                "{arch}: {field} in {control}"
            );
        }
        for field in ["Maintainer: ", "Description: ", "Installed-Size: "] {
            assert!(control.contains(field), "{arch}: {field} in control");
        }

        let data = ar_extract(&ipk, "data.tar.gz", dir.path());
        let data_paths: Vec<String> = tar_listing(&data)
            .into_iter()
            .map(|(mode, owner, path)| {
                assert_eq!(owner, "0/0", "{arch}: {path} owned by root");
                if path == "./usr/bin/apiary-agent" || path == "./etc/init.d/apiary-agent" {
                    assert_eq!(mode, "-rwxr-xr-x", "{arch}: {path} executable");
                }
                path
            })
            .collect();
        let conffiles = std::fs::read_to_string(unpacked.join("conffiles")).expect("conffiles");
        for conffile in conffiles.lines() {
            assert!(
                data_paths.contains(&format!(".{conffile}")),
                "{arch}: conffile {conffile} is in data.tar.gz"
            );
        }
        let files = untar(&data, dir.path().join("data"));
        let binary = std::fs::read(files.join("usr/bin/apiary-agent")).expect("binary");
        assert_eq!(elf_machine(&binary), (machine, big), "{arch}: ELF machine");
        let init = std::fs::read_to_string(files.join("etc/init.d/apiary-agent")).expect("init");
        assert!(
            init.starts_with("#!/bin/sh /etc/rc.common\n"),
            "{arch}: procd script"
        );
        assert!(init.contains("USE_PROCD=1"), "{arch}: procd script");
    }
}

#[test]
#[ignore = "needs cross/build, packaging/build, the Debian root and root (scripts/test runs it)"]
fn deb_passes_lintian_and_dpkg_installs_starts_and_purges_it() {
    let deb = dist(&format!("apiary-agent_{VERSION}_amd64.deb"));
    let (ok, out) = run(Command::new("lintian")
        .args(["--pedantic", "--fail-on", "error,warning,info,pedantic"])
        .arg(&deb));
    let tags: Vec<&str> = out
        .lines()
        .filter(|l| !l.contains("running with root privileges"))
        .collect();
    assert!(ok && tags.is_empty(), "lintian: {out}");

    let root = RootFs::debian();
    root.install(&deb, "/tmp/apiary-agent.deb", 0o644);
    root.sh_ok("dpkg -i /tmp/apiary-agent.deb");
    let status = root.sh_ok("dpkg-query -W -f='${Status}\\n${Conffiles}\\n' apiary-agent");
    assert!(status.starts_with("install ok installed"), "{status}");
    for conffile in ["/etc/default/apiary-agent", "/etc/init.d/apiary-agent"] {
        assert!(
            status.contains(conffile),
            "{conffile} is a conffile: {status}"
        );
    }
    assert!(
        root.sh_ok("/usr/bin/apiary-agent version")
            .contains(VERSION)
    );
    // Enabled for both init systems: update-rc.d's links and the systemd unit's.
    root.sh_ok("ls /etc/rc2.d/S*apiary-agent /etc/rc0.d/K*apiary-agent");
    root.sh_ok("test -L /etc/systemd/system/multi-user.target.wants/apiary-agent.service");
    // Not enrolled yet: the init script declines to start.
    let early = root.sh_ok("/etc/init.d/apiary-agent start");
    assert!(early.contains("not enrolled yet"), "{early}");
    // install-agent leaves a packaged agent to the package manager.
    root.install(
        &repo().join("scripts/install-agent"),
        "/tmp/install-agent",
        0o755,
    );
    let (ok, out) = run(root
        .command("/tmp/install-agent")
        .args(["--from", "/usr/bin/apiary-agent"]));
    assert!(
        !ok && out.contains("belongs to the apiary-agent Debian package"),
        "{out}"
    );

    let backend = backend_for(&root);
    root.sh_ok(&format!(
        "apiary-agent bootstrap --server {} --ca-cert /tmp/ca.crt --key-file /tmp/key \
         --device-name deb-device",
        backend.device_url
    ));
    let started = root.sh_ok("/etc/init.d/apiary-agent start");
    assert!(started.contains("started"), "{started}");
    checked_in(&backend, "deb-device");
    let pid = agent_pid(&root);
    let status = root.sh_ok("/etc/init.d/apiary-agent status");
    assert!(status.contains("is running"), "{status}");

    // An upgrade (the same package again) restarts the agent on the new binary.
    // The container has no init, so invoke-rc.d asks policy-rc.d, as in any Debian chroot:
    // exit 0 allows the action.
    std::fs::write(root.path("/usr/sbin/policy-rc.d"), "#!/bin/sh\nexit 0\n").expect("write");
    root.sh_ok("chmod 0755 /usr/sbin/policy-rc.d && dpkg -i /tmp/apiary-agent.deb");
    let upgraded = agent_pid(&root);
    assert_ne!(pid, upgraded, "the agent was restarted by the upgrade");

    root.sh_ok("dpkg -r apiary-agent");
    no_agent_runs(&root);
    assert!(!root.path("/usr/bin/apiary-agent").exists());
    assert!(
        root.path("/etc/default/apiary-agent").exists(),
        "conffiles stay"
    );
    assert!(
        root.path("/etc/apiary/agent.json").exists(),
        "identity stays"
    );
    root.sh_ok("dpkg -P apiary-agent");
    assert!(
        !root.path("/etc/apiary").exists(),
        "purge removes the identity"
    );
    assert!(!root.path("/etc/default/apiary-agent").exists());
    let (ok, _) = run(root
        .command("/bin/sh")
        .args(["-c", "ls /etc/rc2.d/*apiary-agent"]));
    assert!(!ok, "purge removes the rc links");
}

#[test]
#[ignore = "needs cross/build, packaging/build, the busybox root and root (scripts/test runs it)"]
fn tarball_installs_enrols_upgrades_and_uninstalls_under_busybox() {
    let root = RootFs::busybox();
    let tarball = stage_installer(&root);
    let backend = backend_for(&root);
    let dir = format!("/tmp/apiary-agent-{VERSION}-{TARGET}");
    root.sh_ok(&format!("cd /tmp && tar -xzf {tarball}"));
    let install = format!(
        "{dir}/install-agent --server {} --ca-cert /tmp/ca.crt --key-file /tmp/key \
         --device-name busybox-device",
        backend.device_url
    );
    let out = root.sh_ok(&install);
    assert!(
        out.contains("installed /etc/init.d/S95apiary-agent"),
        "{out}"
    );
    assert!(out.contains("apiary-agent started"), "{out}");
    checked_in(&backend, "busybox-device");
    let pid = agent_pid(&root);
    let identity = root.read("/etc/apiary/agent.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(root.path("/etc/apiary"))
            .expect("config dir")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o700, "/etc/apiary is private");

    // Again, from the tarball itself with --from: an upgrade in place.
    std::fs::write(root.path("/etc/default/apiary-agent"), "# edited\n").expect("edit");
    let again = root.sh_ok(&format!("{dir}/install-agent --from /tmp/{tarball}"));
    assert!(again.contains("already enrolled"), "{again}");
    assert_eq!(
        root.read("/etc/apiary/agent.json"),
        identity,
        "same identity"
    );
    assert_eq!(
        root.read("/etc/default/apiary-agent"),
        "# edited\n",
        "settings kept"
    );
    let restarted = agent_pid(&root);
    assert_ne!(pid, restarted, "the new binary runs");
    assert_eq!(
        backend
            .cli_json(&["devices", "list"])
            .as_array()
            .map(Vec::len),
        Some(1),
        "no second enrolment"
    );

    let out = root.sh_ok(&format!("{dir}/install-agent --uninstall"));
    assert!(out.contains("kept /etc/apiary"), "{out}");
    no_agent_runs(&root);
    assert!(!root.path("/usr/bin/apiary-agent").exists());
    assert!(!root.path("/etc/init.d/S95apiary-agent").exists());
    assert!(root.path("/etc/apiary/agent.json").exists());
    root.sh_ok(&format!("{dir}/install-agent --uninstall --purge"));
    assert!(!root.path("/etc/apiary").exists());
    assert!(!root.path("/etc/default/apiary-agent").exists());
}

#[test]
#[ignore = "needs cross/build, packaging/build, the busybox root and root (scripts/test runs it)"]
fn install_agent_refuses_bad_input_and_writes_nothing() {
    let root = RootFs::busybox();
    let tarball = stage_installer(&root);
    climbing_tarball(&root);
    std::fs::write(root.path("/tmp/garbage"), [0u8, 1, 2, 3]).expect("write");
    let cases: [(&[&str], &str); 5] = [
        // busybox tar strips the `../` itself, so what is refused is an archive without
        // an agent; GNU tar lists it as it is (see the Debian test).
        (
            &["--from", "/tmp/evil.tar.gz"],
            "install-agent: /tmp/evil.tar.gz",
        ),
        (&["--from", "/tmp/garbage"], "does not run on this machine"),
        (&["--from", "/tmp/nothing-here"], "no such file"),
        (&["--bogus"], "unknown option: --bogus"),
        (&["--init", "upstart"], "unknown init system upstart"),
    ];
    for (args, message) in cases {
        let (ok, out) = run(root.command("/tmp/install-agent").args(args));
        assert!(!ok && out.contains(message), "{args:?}: {out}");
        assert!(
            !root.path("/usr/bin/apiary-agent").exists(),
            "{args:?} installed nothing"
        );
        assert!(
            !root.path("/etc/apiary-evil").exists(),
            "nothing written outside"
        );
    }
    // No key: the binary is installed, but enrolment is refused with the reason.
    let (ok, out) = run(root.command("/tmp/install-agent").args([
        "--from",
        &format!("/tmp/{tarball}"),
        "--server",
        "https://127.0.0.1:1",
    ]));
    assert!(!ok && out.contains("needs a bootstrap key"), "{out}");
    assert!(!root.path("/etc/apiary/agent.json").exists());
}

#[test]
#[ignore = "needs cross/build, packaging/build, the Debian root and root (scripts/test runs it)"]
fn install_agent_sets_up_systemd_in_an_image_without_running_systemd() {
    let root = RootFs::debian();
    let tarball = stage_installer(&root);
    // GNU tar lists a climbing member as it is: install-agent refuses the archive.
    climbing_tarball(&root);
    let (ok, out) = run(root
        .command("/tmp/install-agent")
        .args(["--from", "/tmp/evil.tar.gz"]));
    assert!(!ok && out.contains("points outside the archive"), "{out}");
    assert!(
        !root.path("/etc/apiary-evil").exists(),
        "nothing written outside"
    );

    let out = root.sh_ok(&format!(
        "/tmp/install-agent --from /tmp/{tarball} --init systemd"
    ));
    assert!(
        out.contains("installed /etc/systemd/system/apiary-agent.service"),
        "{out}"
    );
    assert!(out.contains("not enrolled yet"), "{out}");
    root.sh_ok("test -L /etc/systemd/system/multi-user.target.wants/apiary-agent.service");
    assert_eq!(
        root.read("/etc/systemd/system/apiary-agent.service"),
        std::fs::read_to_string(repo().join("packaging/files/apiary-agent.service")).expect("unit")
    );
    root.sh_ok("/tmp/install-agent --uninstall --purge");
    assert!(
        !root
            .path("/etc/systemd/system/apiary-agent.service")
            .exists()
    );
    root.sh_ok("! test -e /etc/systemd/system/multi-user.target.wants/apiary-agent.service");
}

#[test]
#[ignore = "needs cross/build, packaging/build, the Debian root and root (scripts/test runs it)"]
fn install_agent_sets_up_the_unprivileged_mode() {
    let root = RootFs::debian();
    let backend = backend_for(&root);
    let tarball = stage_installer(&root);
    let out = root.sh_ok(&format!(
        "/tmp/install-agent --from /tmp/{tarball} --init systemd --unprivileged --no-start \
         --server {} --key-file /tmp/key --ca-cert /tmp/ca.crt --device-name unprivileged",
        backend.device_url
    ));
    assert!(out.contains("created the system user apiary"), "{out}");
    assert!(
        out.contains("installed /etc/sudoers.d/apiary-agent"),
        "{out}"
    );
    let files = repo().join("packaging/files");
    assert_eq!(
        root.read("/etc/systemd/system/apiary-agent.service.d/unprivileged.conf"),
        std::fs::read_to_string(files.join("unprivileged.conf")).expect("drop-in")
    );
    assert_eq!(
        root.read("/etc/sudoers.d/apiary-agent"),
        std::fs::read_to_string(files.join("apiary-agent.sudoers")).expect("sudoers")
    );
    root.sh_ok("visudo -c -q -f /etc/sudoers.d/apiary-agent && test \"$(stat -c %a /etc/sudoers.d/apiary-agent)\" = 440");
    let config: serde_json::Value =
        serde_json::from_str(&root.read("/etc/apiary/agent.json")).expect("agent.json");
    assert_eq!(
        config["elevation_command"],
        serde_json::json!(["/usr/bin/sudo", "-n"])
    );
    root.sh_ok("test \"$(stat -c %U:%a /etc/apiary)\" = apiary:700 && test \"$(stat -c %U /etc/apiary/device.key)\" = apiary");

    // As systemd would run it: the user, a runtime dir of its own.
    root.sh_ok("install -d -o apiary -g apiary -m 0700 /run/apiary");
    let (ok, out) = run(root.command("/usr/bin/setpriv").args([
        "--reuid=apiary",
        "--regid=apiary",
        "--init-groups",
        "/usr/bin/apiary-agent",
        "run-once",
    ]));
    assert!(ok, "{out}");
    checked_in(&backend, "unprivileged");

    root.sh_ok("/tmp/install-agent --uninstall --purge");
    root.sh_ok("! test -e /etc/sudoers.d/apiary-agent && ! test -e /etc/systemd/system/apiary-agent.service.d");
}
