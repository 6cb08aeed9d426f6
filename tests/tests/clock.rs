//! Devices without a clock: the agent runs under libfaketime (Debian `faketime`) with its
//! clock at 1970 or a year ahead, and still enrols and checks in, with certificate checks on
//! (another backend's CA is still refused), and the backend shows the skew.
//!
//! libfaketime works through `LD_PRELOAD`, so these run the host build of the agent
//! (dynamically linked), not the static one.

use std::process::{Command, Stdio};

use apiary_tests::{Agent, Backend, wait_for};

/// `cmd` run with its clock set by `faketime -f spec` (starting there and ticking).
fn faked(spec: &str, cmd: &Command) -> Command {
    let mut faked = Command::new("faketime");
    faked
        .args(["-f", spec])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        if let Some(v) = value {
            faked.env(key, v);
        }
    }
    faked
}

const IN_1970: &str = "@1970-01-02 00:00:00";
const A_YEAR_AHEAD: &str = "+365d";

fn bootstrap(
    backend: &Backend,
    agent: &Agent,
    spec: &str,
    ca: &std::path::Path,
) -> std::process::Child {
    let key = backend
        .cli_ok(&["bootstrap-keys", "create", "--group", "/lab"])
        .trim()
        .to_string();
    let key_file = agent.dir.path().join("bootstrap.key");
    std::fs::write(&key_file, key).unwrap();
    let mut cmd = agent.command();
    cmd.args([
        "bootstrap",
        "--server",
        &backend.device_url,
        "--device-name",
        &agent.name,
    ])
    .args(["--poll-interval", "1", "--key-file"])
    .arg(&key_file)
    .arg("--ca-cert")
    .arg(ca);
    faked(spec, &cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("faketime runs the agent")
}

fn run_once(agent: &Agent, spec: &str) -> (i32, String) {
    let mut cmd = agent.command();
    cmd.arg("run-once");
    let out = faked(spec, &cmd).output().expect("faketime runs the agent");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    eprint!("{log}");
    (out.status.code().unwrap_or(-1), log)
}

#[test]
fn a_device_in_1970_enrols_and_checks_in_with_certificates_checked() {
    let backend = Backend::start();
    let agent = Agent::new("no-rtc");

    // Certificates are still checked: another backend's CA is refused, in 1970 too.
    let other = Backend::start();
    let mut wrong = bootstrap(&backend, &agent, IN_1970, &other.data_dir().join("ca.crt"));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut wrong.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!wrong.wait().unwrap().success(), "wrong CA accepted: {err}");
    assert!(err.contains("certificate"), "{err}");

    let mut child = bootstrap(
        &backend,
        &agent,
        IN_1970,
        &backend.data_dir().join("ca.crt"),
    );
    let id = wait_for(|| {
        let pending = backend.cli_json(&["devices", "list", "--pending"]);
        pending.as_array()?.iter().find(|d| d["name"] == "no-rtc")?["id"]
            .as_str()
            .map(str::to_string)
    });
    backend.cli_ok(&["devices", "approve", &id]);
    assert!(child.wait().unwrap().success(), "enrolled from 1970");
    backend.upload("/clock/motd", b"hello\n");
    let dest = agent.root("motd");
    backend.set_config(
        "/lab",
        "file_distribution",
        &serde_json::json!({"sets": [{"label": "motd", "files": [
            {"source": "/clock/motd", "destination": dest.to_str().unwrap()}
        ]}]}),
    );
    backend.cli_ok(&["commit", "-m", "motd"]);

    let (code, log) = run_once(&agent, IN_1970);
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("warning: the system clock is 56 years behind the backend's"),
        "{log}"
    );
    let shown = backend.cli_json(&["devices", "show", &id]);
    let skew = shown["clock_skew"].as_i64().expect("skew recorded");
    assert!(skew < -56 * 365 * 86400, "{skew}");
    let text = backend.cli_ok(&["devices", "show", &id]);
    assert!(text.contains("clock:          56 years behind"), "{text}");
    let mut dashboard =
        apiary_tests::dashboard_client::login(&backend, "admin", &backend.dashboard_password);
    let (status, page) = dashboard.get(&format!("/devices/{id}"));
    assert_eq!(status, 200);
    assert!(
        page.contains("<th>Clock</th><td>56 years behind</td>"),
        "the device page shows the skew"
    );
    assert!(
        page.contains("<th>Certificate</th><td>valid until "),
        "and the certificate's end"
    );
    // The backend's time is the floor from now on, kept in tmpfs and (skewed) in flash.
    for dir in [agent.state_dir(), agent.config_dir()] {
        let kept: i64 = std::fs::read_to_string(dir.join("clock"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!((kept - shown["last_checkin"].as_i64().unwrap()).abs() < 60);
    }

    // Reports are stamped on the trusted clock, not in 1970.
    let reports = shown["reports"].as_array().cloned().unwrap_or_default();
    assert!(!reports.is_empty(), "{shown}");
    assert!(
        reports
            .iter()
            .all(|r| r["time"].as_i64().unwrap_or(0) > 1_700_000_000),
        "{reports:?}"
    );

    // A year ahead: checks in, skew shown.
    let (code, log) = run_once(&agent, A_YEAR_AHEAD);
    assert_eq!(code, 0, "{log}");
    let skew = backend.cli_json(&["devices", "show", &id])["clock_skew"]
        .as_i64()
        .unwrap();
    assert!((skew - 365 * 86400).abs() < 600, "{skew}");
    let text = backend.cli_ok(&["devices", "show", &id]);
    assert!(text.contains("clock:          365 days ahead"), "{text}");

    // And in step again: the skew goes back to near zero.
    let (code, _) = agent.run_once();
    assert_eq!(code, 0);
    let skew = backend.cli_json(&["devices", "show", &id])["clock_skew"]
        .as_i64()
        .unwrap();
    assert!(skew.abs() < 60, "{skew}");
}
