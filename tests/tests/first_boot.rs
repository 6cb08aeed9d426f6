//! The first-boot enrolment that Yocto and Buildroot images run
//! (`packaging/files/apiary-agent-enroll`, from `/etc/apiary-bootstrap`): against a real
//! backend it enrols with the baked-in key, the device shows up pending, approval completes
//! it, and a second boot does nothing. Bad bootstrap files fail with a message. Buildroot's
//! start script runs the same enrolment in the BusyBox root filesystem.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use apiary_tests::{Agent, Backend, bin, wait_child, wait_for};

fn enroll_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .join("packaging/files/apiary-agent-enroll")
}

/// The enrolment script under `shell` (program and arguments), with the device's
/// directories and `bootstrap` as its /etc/apiary-bootstrap.
fn enroll(shell: &[&str], agent: &Agent, bootstrap: &Path) -> Command {
    let mut cmd = Command::new(shell[0]);
    cmd.args(&shell[1..])
        .arg(enroll_script())
        .arg("--no-start")
        .env("APIARY_BOOTSTRAP_DIR", bootstrap)
        .env("APIARY_AGENT", bin("apiary-agent"))
        .env("APIARY_CONFIG_DIR", agent.config_dir())
        .env("APIARY_STATE_DIR", agent.state_dir())
        .stdin(Stdio::null());
    cmd
}

/// What an image build writes: the key (0600), enroll.conf and the CA.
fn seed(dir: &Path, key: &str, conf: &str, ca: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).expect("mkdir bootstrap dir");
    std::fs::write(dir.join("key"), format!("{key}\n")).expect("write key");
    std::fs::set_permissions(dir.join("key"), std::fs::Permissions::from_mode(0o600))
        .expect("chmod key");
    std::fs::write(dir.join("enroll.conf"), conf).expect("write enroll.conf");
    std::fs::copy(ca, dir.join("ca.pem")).expect("copy CA");
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn first_boot_enrols_with_the_baked_in_key_then_stays_out_of_the_way() {
    let backend = Backend::start();
    let agent = Agent::new("first-boot");
    let bootstrap = agent.dir.path().join("apiary-bootstrap");
    let key = backend
        .cli_ok(&["bootstrap-keys", "create", "--group", "/images"])
        .trim()
        .to_string();
    // A value the shell would run if the script ever expanded it: it must reach the
    // agent as text (and is then just part of the device's name).
    let name = "first-boot-$(touch pwned)";
    seed(
        &bootstrap,
        &key,
        &format!(
            "# written by the image build\nserver={}\ndevice_name={name}\n",
            backend.device_url
        ),
        &backend.data_dir().join("ca.crt"),
    );

    let mut child = enroll(&["/bin/sh"], &agent, &bootstrap)
        .current_dir(agent.dir.path())
        .spawn()
        .expect("start the enrolment script");
    let id = wait_for(|| {
        let pending = backend.cli_json(&["devices", "list", "--pending"]);
        pending.as_array()?.iter().find(|d| d["name"] == name)?["id"]
            .as_str()
            .map(str::to_string)
    });
    assert!(
        !agent.config_dir().join("agent.json").exists(),
        "no identity while the device is pending"
    );
    backend.cli_ok(&["devices", "approve", &id]);
    assert!(
        wait_child(&mut child).success(),
        "enrolment ends once approved"
    );
    assert!(agent.config_dir().join("agent.json").exists());
    assert!(
        !agent.dir.path().join("pwned").exists(),
        "enroll.conf's values are data, never run"
    );
    // The identity works: the agent checks in.
    let run = agent.command().arg("run-once").output().expect("run-once");
    assert!(run.status.success(), "run-once: {}", text(&run));

    // Next boot, under busybox ash as on a Buildroot image: nothing to do.
    let again = enroll(&["/bin/busybox", "sh"], &agent, &bootstrap)
        .output()
        .expect("second run");
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("already enrolled"),
        "{}",
        text(&again)
    );
}

#[test]
fn bootstrap_files_that_cannot_enrol_say_why() {
    let agent = Agent::new("first-boot-bad");
    let ca = agent.dir.path().join("ca.crt");
    std::fs::write(&ca, "").expect("write CA");

    // No key in the image: enrolment by hand, said so, not an error.
    let none = agent.dir.path().join("none");
    std::fs::create_dir_all(&none).expect("mkdir");
    let out = enroll(&["/bin/sh"], &agent, &none).output().expect("run");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no bootstrap key"), "{}", text(&out));

    // A key without the server to give it to.
    let noserver = agent.dir.path().join("noserver");
    seed(&noserver, "bk_x", "device_name=x\n", &ca);
    let out = enroll(&["/bin/sh"], &agent, &noserver)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert!(text(&out).contains("names no server="), "{}", text(&out));
    assert!(!agent.config_dir().join("agent.json").exists());
}

/// Buildroot's start script (`buildroot/package/apiary-agent/S95apiary-agent`) on a BusyBox
/// root, with the files the package installs: at first boot it starts the enrolment in the
/// background, which starts the agent once approved; later boots start the agent.
#[test]
#[ignore = "needs cross/build, the busybox root and root (scripts/test runs it)"]
fn buildroot_start_script_enrols_at_first_boot_then_starts_the_agent_under_busybox() {
    use apiary_tests::cross_dir;
    use apiary_tests::rootfs::RootFs;

    let root = RootFs::busybox();
    let backend = Backend::start();
    let key = backend
        .cli_ok(&["bootstrap-keys", "create", "--group", "/buildroot"])
        .trim()
        .to_string();
    let repo = enroll_script()
        .ancestors()
        .nth(3)
        .expect("the checkout")
        .to_path_buf();
    let agent = cross_dir()
        .join("x86_64-unknown-linux-musl")
        .join("apiary-agent");
    root.install(&agent, "/usr/bin/apiary-agent", 0o755);
    let s95 = repo.join("buildroot/package/apiary-agent/S95apiary-agent");
    root.install(&s95, "/etc/init.d/S95apiary-agent", 0o755);
    root.install(&enroll_script(), "/usr/libexec/apiary-agent/enroll", 0o755);
    // What apiary-agent.mk writes with BR2_PACKAGE_APIARY_AGENT_DATA_DIR="/data/apiary".
    std::fs::create_dir_all(root.path("/data")).expect("mkdir /data");
    std::fs::create_dir_all(root.path("/etc/default")).expect("mkdir /etc/default");
    std::fs::write(
        root.path("/etc/default/apiary-agent"),
        "APIARY_CONFIG_DIR=/data/apiary\n",
    )
    .expect("write defaults");
    seed(
        &root.path("/etc/apiary-bootstrap"),
        &key,
        &format!("server={}\ndevice_name=br-device\n", backend.device_url),
        &backend.data_dir().join("ca.crt"),
    );

    let out = root.sh_ok("/etc/init.d/S95apiary-agent start");
    assert!(out.contains("Starting apiary-agent enrolment: OK"), "{out}");
    let id = wait_for(|| {
        let pending = backend.cli_json(&["devices", "list", "--pending"]);
        pending
            .as_array()?
            .iter()
            .find(|d| d["name"] == "br-device")?["id"]
            .as_str()
            .map(str::to_string)
    });
    backend.cli_ok(&["devices", "approve", &id]);
    let checked_in = || {
        wait_for(|| {
            let devices = backend.cli_json(&["devices", "list"]);
            let device = devices
                .as_array()?
                .iter()
                .find(|d| d["name"] == "br-device")?;
            device["last_checkin"].as_u64()
        })
    };
    let first = checked_in();
    assert!(
        root.path("/data/apiary/agent.json").exists(),
        "identity on /data"
    );
    assert_eq!(root.running("apiary-agent").len(), 1, "the agent runs");

    let out = root.sh_ok("/etc/init.d/S95apiary-agent stop");
    // busybox's start-stop-daemon says what it stopped between the two.
    assert!(
        out.contains("Stopping apiary-agent:") && out.trim_end().ends_with("OK"),
        "{out}"
    );
    wait_for(|| root.running("apiary-agent").is_empty().then_some(()));

    // The next boot: enrolled, so the agent itself starts and checks in again. Check-in
    // times are whole seconds, so the restart waits for the next one to tell them apart.
    wait_for(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        (now > first).then_some(())
    });
    let out = root.sh_ok("/etc/init.d/S95apiary-agent start");
    assert!(out.contains("Starting apiary-agent: OK"), "{out}");
    wait_for(|| (checked_in() > first).then_some(()));
    root.sh_ok("/etc/init.d/S95apiary-agent stop");
}
