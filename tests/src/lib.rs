//! Harness for end-to-end tests: real `apiary-backend`, `apiary` and `apiary-agent`
//! processes on loopback, each with its own temporary directories.
//!
//! The binaries come from the workspace's target directory (`cargo build --bins` first; the
//! project's test script does), or from `$APIARY_BIN_DIR`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod browser;
pub mod dashboard_client;
pub mod netns;
pub mod relay;
pub mod rootfs;

/// Generous bound for a process to become ready; a hang fails the test instead of blocking CI.
pub const READY_WITHIN: Duration = Duration::from_secs(120);

/// Path of a workspace binary.
pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("APIARY_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // target/<profile>/deps/<test> -> target/<profile>
            let exe = std::env::current_exe().expect("the test knows its own path");
            exe.parent()
                .and_then(Path::parent)
                .expect("test binaries live in target/<profile>/deps")
                .to_path_buf()
        });
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: run `cargo build --bins` before the end-to-end tests (or set APIARY_BIN_DIR)",
        path.display()
    );
    path
}

/// A running backend with a temporary data dir.
pub struct Backend {
    pub dir: tempfile::TempDir,
    pub operator_url: String,
    pub device_url: String,
    pub token: String,
    /// The dashboard password of `admin`, printed on the first start.
    pub dashboard_password: String,
    operator_addr: String,
    device_addr: String,
    /// Extra `serve` flags used from the next (re)start on.
    pub extra_args: Vec<String>,
    child: Option<Child>,
}

impl Backend {
    /// Starts a backend on free loopback ports.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut backend = Backend {
            dir,
            operator_url: String::new(),
            device_url: String::new(),
            token: String::new(),
            dashboard_password: String::new(),
            operator_addr: "127.0.0.1:0".into(),
            device_addr: "127.0.0.1:0".into(),
            extra_args: Vec::new(),
            child: None,
        };
        backend.spawn();
        backend.token = std::fs::read_to_string(backend.data_dir().join("admin.token"))
            .expect("admin.token is written at initialisation")
            .trim()
            .to_string();
        backend
    }

    /// The backend's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn spawn(&mut self) {
        let mut child = Command::new(bin("apiary-backend"))
            .args(["serve", "--data-dir"])
            .arg(self.data_dir())
            .args([
                "--listen",
                &self.operator_addr,
                "--device-listen",
                &self.device_addr,
            ])
            .args(["--public-url", "https://127.0.0.1:1"])
            .args(&self.extra_args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("apiary-backend starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + READY_WITHIN;
        let (mut operator, mut device) = (None, None);
        while operator.is_none() || device.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("backend prints its listening addresses");
            if let Some(rest) = line.strip_prefix("dashboard login: admin / ") {
                self.dashboard_password = rest
                    .split_whitespace()
                    .next()
                    .expect("a password follows")
                    .to_string();
            }
            if let Some(rest) = line.strip_prefix("operator API listening on ") {
                operator = Some(rest.trim().to_string());
            }
            if let Some(rest) = line.strip_prefix("device API listening on ") {
                device = Some(
                    rest.split_whitespace()
                        .next()
                        .expect("a URL follows")
                        .to_string(),
                );
            }
        }
        self.operator_url = operator.expect("loop ends with both set");
        self.device_url = device.expect("loop ends with both set");
        // Keep the ports across restarts, as a real deployment's agents expect.
        self.operator_addr = self
            .operator_url
            .split("://")
            .nth(1)
            .expect("a URL")
            .to_string();
        self.device_addr = self.device_url.trim_start_matches("https://").to_string();
        self.child = Some(child);
    }

    /// Stops the backend process.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same data dir and ports.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Runs the `apiary` CLI against this backend.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin("apiary"))
            .args(args)
            .env("APIARY_SERVER", &self.operator_url)
            .env("APIARY_TOKEN", &self.token)
            .output()
            .expect("apiary runs")
    }

    /// Runs the CLI, asserting success, and returns its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "apiary {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("CLI output is UTF-8")
    }

    /// Runs the CLI with `--json` and parses the output.
    /// `apiary-agent bootstrap -k KEY` of `agent` against this backend, as its own name, run
    /// to the end (with an auto-accepting key it does not wait).
    pub fn bootstrap_with_key(&self, agent: &Agent, key: &str) -> Output {
        agent
            .command()
            .args(["bootstrap", "-k", key, "--server", &self.device_url])
            .args(["--device-name", &agent.name])
            .arg("--ca-cert")
            .arg(self.data_dir().join("ca.crt"))
            .output()
            .expect("the agent runs")
    }

    /// A new bootstrap key that approves its devices into `group` without an operator.
    pub fn auto_accept_key(&self, group: &str) -> String {
        self.cli_ok(&[
            "bootstrap-keys",
            "create",
            "--group",
            group,
            "--auto-accept",
        ])
        .trim()
        .to_string()
    }

    pub fn cli_json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.cli_ok(&args)).expect("--json prints JSON")
    }

    /// Uploads `content` to the file manager as `remote`.
    pub fn upload(&self, remote: &str, content: &[u8]) {
        let local = self.dir.path().join("upload.tmp");
        std::fs::write(&local, content).expect("write upload");
        self.cli_ok(&[
            "files",
            "upload",
            local.to_str().expect("utf-8 path"),
            remote,
        ]);
    }

    /// Drafts a policy document on a node.
    pub fn set_config(&self, node: &str, policy: &str, body: &Value) {
        let file = self.dir.path().join("policy.json");
        std::fs::write(&file, body.to_string()).expect("write policy");
        self.cli_ok(&[
            "config",
            "set",
            node,
            policy,
            "--file",
            file.to_str().expect("utf-8 path"),
        ]);
    }

    /// `apiary devices show ID --json`.
    pub fn device(&self, id: &str) -> Value {
        self.cli_json(&["devices", "show", id])
    }

    /// Creates a bootstrap key and enrols `agent` with it, approving it as an operator.
    pub fn enroll(&self, agent: &Agent, group: &str) -> String {
        self.enroll_via(agent, group, &self.device_url)
    }

    /// Starts `agent`'s enrolment with a new key for `group` (unassigned when `None`) and
    /// returns the waiting `bootstrap` process, for a test that approves it some other way.
    pub fn start_enrolment(&self, agent: &Agent, group: Option<&str>) -> Child {
        let mut args = vec!["bootstrap-keys", "create"];
        if let Some(g) = group {
            args.extend(["--group", g]);
        }
        let key = self.cli_ok(&args).trim().to_string();
        agent.spawn_bootstrap(&key, &self.device_url, &self.data_dir().join("ca.crt"))
    }

    /// Like [`Backend::enroll`], with the agent reaching the backend at `device_url`.
    pub fn enroll_via(&self, agent: &Agent, group: &str, device_url: &str) -> String {
        let key = self
            .cli_ok(&["bootstrap-keys", "create", "--group", group])
            .trim()
            .to_string();
        let mut child = agent.spawn_bootstrap(&key, device_url, &self.data_dir().join("ca.crt"));
        let id = wait_for(|| {
            let pending = self.cli_json(&["devices", "list", "--pending"]);
            pending
                .as_array()?
                .iter()
                .find(|d| d["name"] == agent.name)?["id"]
                .as_str()
                .map(str::to_string)
        });
        self.cli_ok(&["devices", "approve", &id]);
        let status = wait_child(&mut child);
        assert!(
            status.success(),
            "bootstrap of {} ends successfully after approval",
            agent.name
        );
        id
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where `cross/build` puts the static agents: `target/cross/<target>/apiary-agent`.
pub fn cross_dir() -> PathBuf {
    std::env::var_os("APIARY_CROSS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            bin("apiary-backend")
                .parent()
                .and_then(Path::parent)
                .expect("binaries live in target/<profile>")
                .join("cross")
        })
}

/// The qemu-user emulator for a cross target (`None`: runs natively on this x86_64 host).
pub fn emulator(target: &str) -> Option<&'static str> {
    match target.split('-').next() {
        Some("x86_64") => None,
        Some("aarch64") => Some("qemu-aarch64"),
        Some("armv7") => Some("qemu-arm"),
        Some("mips") => Some("qemu-mips"),
        Some("mipsel") => Some("qemu-mipsel"),
        _ => panic!("no emulator known for {target}"),
    }
}

/// An agent with its own config and state dirs, standing for one device.
pub struct Agent {
    pub dir: tempfile::TempDir,
    pub name: String,
    binary: PathBuf,
    emulator: Option<&'static str>,
    /// Set for an agent living in a [`rootfs::RootFs`]: that container's init PID and root.
    inside: Option<(u32, PathBuf)>,
}

/// Where an in-root agent is installed, and its directories as it sees them.
const ROOT_AGENT: &str = "/usr/sbin/apiary-agent";
const ROOT_CONFIG_DIR: &str = "/etc/apiary";
const ROOT_STATE_DIR: &str = "/run/apiary";

impl Agent {
    /// The host build of the agent.
    pub fn new(name: &str) -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            name: name.to_string(),
            binary: bin("apiary-agent"),
            emulator: None,
            inside: None,
        }
    }

    /// The static x86_64 agent installed in `root` at `/usr/sbin/apiary-agent`, run inside it.
    pub fn in_root(name: &str, root: &rootfs::RootFs) -> Self {
        let binary = cross_dir()
            .join("x86_64-unknown-linux-musl")
            .join("apiary-agent");
        assert!(
            binary.exists(),
            "{} not found: run cross/build first",
            binary.display()
        );
        root.install(&binary, ROOT_AGENT, 0o755);
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            name: name.to_string(),
            binary,
            emulator: None,
            inside: Some((root.init_pid(), root.path("/"))),
        }
    }

    /// The static agent cross-built for `target`, run under its qemu-user emulator.
    pub fn cross(name: &str, target: &str) -> Self {
        let binary = cross_dir().join(target).join("apiary-agent");
        assert!(
            binary.exists(),
            "{} not found: run cross/build first",
            binary.display()
        );
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            name: name.to_string(),
            binary,
            emulator: emulator(target),
            inside: None,
        }
    }

    /// The agent's config dir, as the test sees it.
    pub fn config_dir(&self) -> PathBuf {
        match &self.inside {
            Some((_, root)) => root.join(&ROOT_CONFIG_DIR[1..]),
            None => self.dir.path().join("etc"),
        }
    }

    /// The agent's state dir, as the test sees it.
    pub fn state_dir(&self) -> PathBuf {
        match &self.inside {
            Some((_, root)) => root.join(&ROOT_STATE_DIR[1..]),
            None => self.dir.path().join("run"),
        }
    }

    /// A path inside this device's scratch area, standing for its filesystem.
    pub fn root(&self, rel: &str) -> PathBuf {
        self.dir.path().join("root").join(rel)
    }

    /// The agent command with this device's directories.
    pub fn command(&self) -> Command {
        if let Some((pid, _)) = &self.inside {
            let mut cmd = Command::new("nsenter");
            cmd.arg("-t")
                .arg(pid.to_string())
                .args(["-m", "-p", "-u", "-r", "-w", "--", ROOT_AGENT])
                .args([
                    "--config-dir",
                    ROOT_CONFIG_DIR,
                    "--state-dir",
                    ROOT_STATE_DIR,
                ])
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
            return cmd;
        }
        let mut cmd = match self.emulator {
            Some(qemu) => {
                let mut c = Command::new(qemu);
                c.arg(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        };
        cmd.arg("--config-dir")
            .arg(self.config_dir())
            .arg("--state-dir")
            .arg(self.state_dir());
        cmd
    }

    fn spawn_bootstrap(&self, key: &str, server: &str, ca: &Path) -> Child {
        // An in-root agent sees the CA certificate at a path inside its root.
        let ca = match &self.inside {
            Some((_, root)) => {
                std::fs::copy(ca, root.join("etc/apiary-enrol-ca.crt")).expect("copy CA in");
                PathBuf::from("/etc/apiary-enrol-ca.crt")
            }
            None => ca.to_path_buf(),
        };
        // The key on standard input: what a provisioning script should do, as `-k` shows
        // it to every local user in `ps`.
        let mut child = self
            .command()
            .args([
                "bootstrap",
                "--key-file",
                "-",
                "--server",
                server,
                "--device-name",
                &self.name,
                "--poll-interval",
                "1",
            ])
            .arg("--ca-cert")
            .arg(&ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("apiary-agent bootstrap starts");
        let mut stdin = child.stdin.take().expect("stdin is piped");
        writeln!(stdin, "{key}").expect("the agent reads its key");
        child
    }

    /// Runs one cycle, returning the exit code and what the agent printed.
    pub fn run_once(&self) -> (i32, String) {
        let out = self
            .command()
            .arg("run-once")
            .output()
            .expect("apiary-agent runs");
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        eprint!("{}", log);
        (out.status.code().unwrap_or(-1), log)
    }
}

/// Polls `probe` until it yields a value (bounded by [`READY_WITHIN`]).
pub fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not reached within {READY_WITHIN:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for a child to exit (bounded by [`READY_WITHIN`]), killing it if it does not.
pub fn wait_child(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if let Some(status) = child.try_wait().expect("child status is readable") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("process did not exit within {READY_WITHIN:?}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The messages of a device's reports, newest first.
pub fn report_messages(device: &Value) -> Vec<String> {
    device["reports"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| {
                    format!(
                        "{} {} {}",
                        r["level"].as_str().unwrap_or(""),
                        r["policy"].as_str().unwrap_or(""),
                        r["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
