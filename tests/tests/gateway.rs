//! Devices behind an HTTP proxy: the agent runs in a network namespace whose only way out is
//! a veth pair to a real squid on the host side, configured with the block in
//! `docs/gateway.md`; the backend listens on the host's loopback, out of the namespace's
//! reach. Enrolment, check-ins and downloads go through squid's CONNECT tunnel with basic
//! auth; a wrong password, a destination squid does not allow and a dead proxy each give
//! their message, and reports queued meanwhile arrive once the proxy works again.
//!
//! The squid tests are ignored by default: they need root (namespaces) and squid
//! (`scripts/setup` installs it); `scripts/test` runs them. The `NO_PROXY` test needs
//! neither and always runs.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use apiary_tests::netns::NetNs;
use apiary_tests::{Agent, Backend, report_messages, wait_for};
use serde_json::{Value, json};

const USER: &str = "device";
const PASSWORD: &str = "gw-pass:w0rd/16";

/// A squid running the documented configuration for one backend port.
struct Squid {
    child: Child,
    _dir: tempfile::TempDir,
    addr: String,
}

impl Squid {
    /// Starts squid on `listen` (an address of the host's end of the veth pair), letting
    /// `USER`/`PASSWORD` open tunnels to `localhost:backend_port` only.
    fn start(listen: &str, backend_port: u16) -> Self {
        Self::start_on(listen, free_port(listen), backend_port)
    }

    /// Like [`Squid::start`], on a given port (a restart where the agent expects it).
    fn start_on(listen: &str, port: u16, backend_port: u16) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // squid drops to its own user, which must read the config and write the logs.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let passwords = dir.path().join("apiary-devices");
        let hash = Command::new("openssl")
            .args(["passwd", "-1", PASSWORD])
            .output()
            .expect("openssl runs");
        assert!(hash.status.success());
        std::fs::write(
            &passwords,
            format!("{USER}:{}", String::from_utf8_lossy(&hash.stdout)),
        )
        .unwrap();
        let documented = documented_config()
            .replace("http_port 3128", &format!("http_port {listen}:{port}"))
            .replace("apiary.example.com", "localhost")
            .replace("port 8443", &format!("port {backend_port}"))
            .replace("/etc/squid/apiary-devices", passwords.to_str().unwrap());
        let d = dir.path().display();
        // Where this run keeps squid's files, ahead of the documented block.
        let conf = format!(
            "pid_filename {d}/squid.pid\ncache_log {d}/cache.log\naccess_log {d}/access.log\n\
             coredump_dir {d}\nshutdown_lifetime 0 seconds\npinger_enable off\n{documented}"
        );
        let conf_path = dir.path().join("squid.conf");
        std::fs::write(&conf_path, conf).unwrap();
        for f in [&passwords, &conf_path] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let child = Command::new("/usr/sbin/squid")
            .args(["-N", "-f"])
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("squid starts");
        let addr = format!("{listen}:{port}");
        wait_for(|| TcpStream::connect(&addr).ok());
        Squid {
            child,
            _dir: dir,
            addr,
        }
    }

    fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }
}

impl Drop for Squid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ```squid block of docs/gateway.md, as written there.
fn documented_config() -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/gateway.md"))
            .expect("docs/gateway.md");
    let start = doc.find("```squid\n").expect("a ```squid block") + "```squid\n".len();
    let len = doc[start..].find("```").expect("the block ends");
    doc[start..start + len].to_string()
}

fn free_port(addr: &str) -> u16 {
    TcpListener::bind((addr, 0))
        .expect("bind on the veth address")
        .local_addr()
        .unwrap()
        .port()
}

/// A device in its own network namespace, with its agent's commands moved inside.
struct Device {
    ns: NetNs,
    agent: Agent,
}

impl Device {
    fn new(name: &str) -> Self {
        Self {
            ns: NetNs::new(),
            agent: Agent::new(name),
        }
    }

    fn agent_command(&self) -> Command {
        self.ns.wrap(&self.agent.command())
    }

    /// Runs one cycle in the namespace: exit code and log.
    fn run_once(&self, env: &[(&str, &str)]) -> (i32, String) {
        let mut cmd = self.agent_command();
        cmd.arg("run-once").envs(env.iter().copied());
        let out = cmd.output().expect("agent runs");
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        eprint!("{log}");
        (out.status.code().unwrap_or(-1), log)
    }

    /// Starts `bootstrap` with `extra` flags and `env`; the key comes in a file.
    fn bootstrap(
        &self,
        backend: &Backend,
        server: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Child {
        let key = backend
            .cli_ok(&["bootstrap-keys", "create", "--group", "/lab"])
            .trim()
            .to_string();
        let key_file = self.agent.dir.path().join("bootstrap.key");
        std::fs::write(&key_file, key).unwrap();
        let mut cmd = self.agent_command();
        cmd.args([
            "bootstrap",
            "--server",
            server,
            "--device-name",
            &self.agent.name,
        ])
        .args(["--poll-interval", "1", "--key-file"])
        .arg(&key_file)
        .arg("--ca-cert")
        .arg(backend.data_dir().join("ca.crt"))
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        cmd.spawn().expect("bootstrap starts")
    }

    /// Enrols through `squid` with the proxy kept in agent.json; returns the device id.
    fn enrol_through(&self, backend: &Backend, squid: &Squid) -> String {
        let host = self.ns.host_addr.clone();
        let port = squid.port().to_string();
        let mut child = self.bootstrap(
            backend,
            &server_url(backend),
            &[
                "--proxy-host",
                &host,
                "--proxy-port",
                &port,
                "--proxy-user",
                USER,
            ],
            &[("APIARY_PROXY_PASSWORD", PASSWORD)],
        );
        let name = self.agent.name.clone();
        let id = wait_for(|| {
            let pending = backend.cli_json(&["devices", "list", "--pending"]);
            pending
                .as_array()?
                .iter()
                .find(|d| d["name"] == name.as_str())?["id"]
                .as_str()
                .map(str::to_string)
        });
        backend.cli_ok(&["devices", "approve", &id]);
        let status = child.wait().expect("bootstrap ends");
        assert!(status.success(), "bootstrap through squid succeeds");
        id
    }

    fn agent_json(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.agent.config_dir().join("agent.json")).unwrap())
            .unwrap()
    }

    fn set_agent_json(&self, json: &Value) {
        let path = self.agent.config_dir().join("agent.json");
        std::fs::write(path, serde_json::to_vec_pretty(json).unwrap()).unwrap();
    }
}

/// The backend's device API by name: squid resolves it, as a gateway does.
fn server_url(backend: &Backend) -> String {
    backend.device_url.replace("127.0.0.1", "localhost")
}

fn backend_port(backend: &Backend) -> u16 {
    backend
        .device_url
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// A file set whose command records the proxy the agent hands to operator commands.
fn configure(backend: &Backend, device: &Device) -> (PathBuf, PathBuf) {
    backend.upload("/gw/app.conf", b"through the gateway\n");
    let dest = device.agent.root("srv/app.conf");
    let seen = device.agent.root("seen-proxy");
    backend.set_config(
        "/lab",
        "file_distribution",
        &json!({"sets": [{"label": "app", "files": [
            {"source": "/gw/app.conf", "destination": dest.to_str().unwrap(), "mode": "0644"}
        ], "command": format!("printf %s \"$HTTPS_PROXY\" > {}", seen.display())}]}),
    );
    backend.cli_ok(&["commit", "-m", "through the gateway"]);
    (dest, seen)
}

#[test]
#[ignore = "needs root and squid; scripts/test runs it"]
fn the_whole_cycle_goes_through_squid() {
    let backend = Backend::start();
    let device = Device::new("gw-device");
    let squid = Squid::start(&device.ns.host_addr.clone(), backend_port(&backend));

    // The namespace has no other way to the backend.
    let mut direct = device.bootstrap(&backend, &server_url(&backend), &[], &[]);
    let status = direct.wait().unwrap();
    let mut err = String::new();
    direct
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "no route without the proxy: {err}");

    let id = device.enrol_through(&backend, &squid);
    let config = device.agent_json();
    assert_eq!(
        config["proxy"],
        json!({"host": device.ns.host_addr, "port": squid.port(), "user": USER})
    );
    assert!(!config.to_string().contains(PASSWORD), "{config}");
    let password_file = device.agent.config_dir().join("proxy-password");
    assert_eq!(std::fs::read_to_string(&password_file).unwrap(), PASSWORD);
    let mode = std::fs::metadata(&password_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let (dest, seen) = configure(&backend, &device);
    let (code, log) = device.run_once(&[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"through the gateway\n");
    // Credentials percent-encoded, as curl and apt expect them.
    let expected = format!(
        "http://{USER}:gw-pass%3Aw0rd%2F16@{}:{}/",
        device.ns.host_addr,
        squid.port()
    );
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), expected);
    assert!(!log.contains(PASSWORD), "the password is never logged");
    let shown = backend.cli_json(&["devices", "show", &id]);
    let messages = report_messages(&shown).join("\n");
    assert!(messages.contains("written from /gw/app.conf"), "{messages}");

    // HTTPS_PROXY in the environment does the same when agent.json names no proxy.
    let mut config = device.agent_json();
    config.as_object_mut().unwrap().remove("proxy");
    device.set_agent_json(&config);
    let (code, log) = device.run_once(&[]);
    assert_eq!(
        code, 1,
        "without a proxy the backend is out of reach: {log}"
    );
    let env_proxy = format!("http://{USER}:gw-pass%3Aw0rd%2F16@{}", squid.addr);
    let (code, log) = device.run_once(&[("HTTPS_PROXY", &env_proxy)]);
    assert_eq!(code, 0, "{log}");
}

#[test]
#[ignore = "needs root and squid; scripts/test runs it"]
fn proxy_failures_are_named_and_reports_wait() {
    let backend = Backend::start();
    let device = Device::new("gw-failures");
    let mut squid = Squid::start(&device.ns.host_addr.clone(), backend_port(&backend));
    let id = device.enrol_through(&backend, &squid);
    let (dest, _) = configure(&backend, &device);
    assert_eq!(device.run_once(&[]).0, 0);
    let proxy = squid.addr.clone();

    // A wrong password: 407, named; a mode changed by hand is restored offline (no download
    // needed) and its report waits in the queue.
    let password_file = device.agent.config_dir().join("proxy-password");
    std::fs::write(&password_file, "not the password").unwrap();
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (code, log) = device.run_once(&[]);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains(&format!("the proxy {proxy} refused the credentials (407)")),
        "{log}"
    );
    let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644, "restored while offline");

    // A destination the allow-list does not name (another port): 403, named.
    std::fs::write(&password_file, PASSWORD).unwrap();
    let mut config = device.agent_json();
    let good_url = config["server_url"].as_str().unwrap().to_string();
    config["server_url"] = json!(format!("https://localhost:{}", backend_port(&backend) + 1));
    device.set_agent_json(&config);
    let (code, log) = device.run_once(&[]);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains(&format!(
            "the proxy {proxy} does not allow a tunnel to this backend (403)"
        )),
        "{log}"
    );
    config["server_url"] = json!(good_url);
    device.set_agent_json(&config);

    // The proxy gone: named as unreachable.
    let _ = squid.child.kill();
    let _ = squid.child.wait();
    let (code, log) = device.run_once(&[]);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains(&format!("the proxy {proxy} could not be reached")),
        "{log}"
    );

    // Back: the queued drift report arrives.
    squid = Squid::start_on(&device.ns.host_addr, squid.port(), backend_port(&backend));
    let (code, log) = device.run_once(&[]);
    assert_eq!(code, 0, "{log}");
    let shown = backend.cli_json(&["devices", "show", &id]);
    let messages = report_messages(&shown).join("\n");
    assert!(
        messages.contains("had its attributes changed on the device; restored: mode 0666 -> 0644"),
        "the report made offline arrived: {messages}"
    );
    drop(squid);
}

/// Relays one client to `target`, keeping the first bytes each way.
struct Tap {
    addr: String,
    up: Arc<Mutex<Vec<u8>>>,
    down: Arc<Mutex<Vec<u8>>>,
}

impl Tap {
    fn start(listen: &str, target: String) -> Self {
        let listener = TcpListener::bind((listen, 0)).expect("bind tap");
        let addr = listener.local_addr().unwrap().to_string();
        let (up, down) = (Arc::default(), Arc::default());
        let (u, d) = (Arc::clone(&up), Arc::clone(&down));
        thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let server = TcpStream::connect(&target).expect("tap reaches squid");
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    Arc::clone(&u),
                );
                pipe(server, client, Arc::clone(&d));
            }
        });
        Tap { addr, up, down }
    }

    /// Bytes up to and including the first blank line each way: the CONNECT exchange.
    fn headers(&self) -> (usize, usize, String) {
        let head = |b: &[u8]| b.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
        let up = self.up.lock().unwrap();
        let down = self.down.lock().unwrap();
        let reply = String::from_utf8_lossy(&down[..head(&down).unwrap_or(0)]).into_owned();
        (head(&up).unwrap_or(0), head(&down).unwrap_or(0), reply)
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, keep: Arc<Mutex<Vec<u8>>>) {
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
            let mut kept = keep.lock().unwrap();
            if kept.len() < 4096 {
                kept.extend_from_slice(&buf[..n]);
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

#[test]
#[ignore = "needs root and squid; scripts/test runs it"]
fn what_the_proxy_adds_per_connection() {
    let backend = Backend::start();
    let device = Device::new("gw-bytes");
    let squid = Squid::start(&device.ns.host_addr.clone(), backend_port(&backend));
    device.enrol_through(&backend, &squid);
    let tap = Tap::start(&device.ns.host_addr, squid.addr.clone());
    let mut config = device.agent_json();
    config["proxy"]["port"] = json!(tap.addr.rsplit(':').next().unwrap().parse::<u16>().unwrap());
    device.set_agent_json(&config);
    let (code, log) = device.run_once(&[]);
    assert_eq!(code, 0, "{log}");
    thread::sleep(Duration::from_millis(200));
    let (up, down, reply) = tap.headers();
    assert!(reply.starts_with("HTTP/1.1 200 "), "{reply:?}");
    assert!(up > 0 && down > 0);
    eprintln!("proxy overhead per connection: CONNECT {up} B up, answer {down} B down ({reply:?})");
}

/// `NO_PROXY` sends the backend's host around a proxy named in `HTTPS_PROXY` (here a dead
/// one on loopback); without it the same proxy is named as unreachable. Needs neither root
/// nor squid, so it runs in every test run.
#[test]
fn no_proxy_goes_around_the_environment_s_proxy() {
    let backend = Backend::start();
    let agent = Agent::new("no-proxy");
    backend.enroll(&agent, "/lab");
    let dead = format!("http://127.0.0.1:{}", free_port("127.0.0.1"));
    let run = |env: &[(&str, &str)]| {
        let out = agent
            .command()
            .arg("run-once")
            .envs(env.iter().copied())
            .output()
            .expect("agent runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, log) = run(&[("HTTPS_PROXY", &dead)]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("could not be reached"), "{log}");
    let (code, log) = run(&[("HTTPS_PROXY", &dead), ("NO_PROXY", "127.0.0.1")]);
    assert_eq!(code, 0, "{log}");
}
