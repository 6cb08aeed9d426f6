//! The fault suite: real agent and backend processes killed, cut off and lied to. What must
//! hold every time: nothing an agent numbered as a report is lost or stored twice, no
//! destination ever holds part of a file, and the last good bundle stays in force.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use apiary_tests::{Agent, Backend, wait_for};
use serde_json::{Value, json};

/// Enrols `agent` with an auto-accepting `key`.
fn bootstrap(backend: &Backend, agent: &Agent, key: &str) {
    let out = backend.bootstrap_with_key(agent, key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A policy that reports on every run: a watched process that never runs, whose command
/// succeeds.
fn report_every_run(backend: &Backend, group: &str, items: usize) {
    let items: Vec<Value> = (0..items)
        .map(|i| json!({"name": format!("apiary-absent-{i}"), "state": "present", "command": "true"}))
        .collect();
    backend.set_config(group, "process_watch", &json!({ "items": items }));
    backend.cli_ok(&["commit", "-m", "reports on every run"]);
}

/// The agent's queue as it is on disk: its id, the next number, and the numbers it holds.
fn local_queue(agent: &Agent) -> (String, u64, BTreeSet<u64>, u64) {
    let bytes = std::fs::read(agent.state_dir().join("reports.json")).expect("a queue");
    let q: Value = serde_json::from_slice(&bytes).expect("queue JSON");
    let seqs = q["reports"]
        .as_array()
        .expect("reports")
        .iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect();
    (
        q["queue_id"].as_str().expect("id").to_string(),
        q["next_seq"].as_u64().expect("next_seq"),
        seqs,
        q["dropped"].as_u64().unwrap_or(0),
    )
}

/// The report numbers the backend holds for `device` and `queue`, asserting none is twice.
fn stored_seqs(backend: &Backend, device: &str, queue: &str) -> BTreeSet<u64> {
    let db = rusqlite::Connection::open(backend.data_dir().join("apiary.db")).expect("db");
    let mut stmt = db
        .prepare(
            "SELECT seq, count(*) FROM reports WHERE device_id = ?1 AND queue_id = ?2 GROUP BY seq",
        )
        .expect("query");
    let rows = stmt
        .query_map([device, queue], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })
        .expect("rows");
    rows.map(|r| {
        let (seq, n) = r.expect("row");
        assert_eq!(n, 1, "report {seq} of {device} stored {n} times");
        seq as u64
    })
    .collect()
}

fn device_id(agent: &Agent) -> String {
    let bytes = std::fs::read(agent.config_dir().join("agent.json")).expect("agent.json");
    let config: Value = serde_json::from_slice(&bytes).expect("agent.json is JSON");
    config["device_id"].as_str().expect("device_id").to_string()
}

/// Every number the agent handed out is stored once or still queued: none lost.
fn assert_nothing_lost(backend: &Backend, agent: &Agent) -> usize {
    let (queue, next, queued, _) = local_queue(agent);
    let stored = stored_seqs(backend, &device_id(agent), &queue);
    let all: BTreeSet<u64> = stored.union(&queued).copied().collect();
    let expected: BTreeSet<u64> = (1..next).collect();
    assert_eq!(
        all, expected,
        "{}: stored {stored:?}, queued {queued:?}",
        agent.name
    );
    stored.len()
}

#[test]
fn a_backend_killed_under_fifty_agents_loses_and_doubles_no_report() {
    const AGENTS: usize = 50;
    const RUNS: usize = 6;
    let mut backend = Backend::start();
    let key = backend.auto_accept_key("/fleet");
    report_every_run(&backend, "/fleet", 1);
    let agents: Vec<Agent> = (0..AGENTS)
        .map(|i| Agent::new(&format!("fleet-{i}")))
        .collect();
    thread::scope(|s| {
        for agent in &agents {
            s.spawn(|| bootstrap(&backend, agent, &key));
        }
    });

    let runs = AtomicUsize::new(0);
    let codes = std::sync::Mutex::new(Vec::new());
    thread::scope(|s| {
        for agent in &agents {
            s.spawn(|| {
                for _ in 0..RUNS {
                    let (code, _) = agent.run_once();
                    codes.lock().expect("codes").push(code);
                    runs.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        // Killed twice mid-stream, each time restarted while agents keep running.
        for round in 1..=2 {
            let at = |fraction: usize| AGENTS * RUNS * fraction / 6;
            wait_for(|| (runs.load(Ordering::SeqCst) >= at(2 * round - 1)).then_some(()));
            backend.stop();
            wait_for(|| {
                (runs.load(Ordering::SeqCst) >= at(2 * round - 1) + AGENTS / 2).then_some(())
            });
            backend.restart();
        }
    });
    let codes = codes.into_inner().expect("codes");
    assert!(
        codes.iter().all(|&c| c == 0 || c == 1),
        "only unreachable or clean: {codes:?}"
    );
    assert!(codes.contains(&1), "some runs met the dead backend");

    // Back to normal: one clean run each, then nothing is missing anywhere.
    let mut stored = 0;
    for agent in &agents {
        let (code, log) = agent.run_once();
        assert_eq!(code, 0, "{}: {log}", agent.name);
        stored += assert_nothing_lost(&backend, agent);
    }
    assert!(stored >= AGENTS * RUNS, "{stored} reports stored");
}

#[test]
fn an_agent_killed_anywhere_in_a_converge_never_leaves_a_partial_file_or_a_lost_report() {
    let backend = Backend::start();
    let key = backend.auto_accept_key("/killed");
    let agent = Agent::new("killed");
    bootstrap(&backend, &agent, &key);
    // Two generations of large files, alternated, so each run rewrites every one.
    let generation = |g: u8| -> Vec<Vec<u8>> {
        (0..4u8)
            .map(|i| vec![b'a' + i + g * 4; 3 * 1024 * 1024])
            .collect()
    };
    let set = |g: u8| {
        let files: Vec<Value> = (0..4)
            .map(|i| {
                let remote = format!("/big/{g}-{i}");
                backend.upload(&remote, &generation(g)[i]);
                json!({"source": remote, "destination": agent.root(&format!("srv/{i}.bin")).to_str().unwrap()})
            })
            .collect();
        json!({"sets": [{"label": "big", "files": files}]})
    };
    let sets = [set(0), set(1)];
    for iteration in 0..24u64 {
        let g = (iteration % 2) as usize;
        backend.set_config("/killed", "file_distribution", &sets[g]);
        backend.cli_ok(&["commit", "-m", &format!("generation {g}")]);
        let mut child = agent
            .command()
            .arg("run-once")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the agent starts");
        // Killed at a different point each time, from at once to well into the writes.
        thread::sleep(Duration::from_millis(iteration * 15));
        let _ = child.kill();
        let _ = child.wait();
        for i in 0..4 {
            let path = agent.root(&format!("srv/{i}.bin"));
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let whole = [0u8, 1].iter().any(|&g| bytes == generation(g)[i]);
            assert!(
                whole,
                "iteration {iteration}: {} holds {} bytes of neither generation",
                path.display(),
                bytes.len()
            );
        }
    }
    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "the next run converges: {log}");
    for i in 0..4 {
        let bytes = std::fs::read(agent.root(&format!("srv/{i}.bin"))).expect("converged");
        assert_eq!(bytes, generation(1)[i]);
    }
    let leftovers: Vec<_> = std::fs::read_dir(agent.root("srv"))
        .expect("srv")
        .map(|e| e.expect("entry").file_name())
        .filter(|n| !n.to_string_lossy().ends_with(".bin"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
    assert_nothing_lost(&backend, &agent);
}

#[test]
fn a_long_outage_keeps_the_queue_bounded_and_counts_what_it_dropped() {
    let mut backend = Backend::start();
    let key = backend.auto_accept_key("/outage");
    // 50 reports a run: the queue's 1000 fill in 20 runs.
    report_every_run(&backend, "/outage", 50);
    let agent = Agent::new("outage");
    bootstrap(&backend, &agent, &key);
    assert_eq!(agent.run_once().0, 0);
    backend.stop();
    // Weeks of runs with the backend gone, compressed into 26.
    for _ in 0..26 {
        let (code, log) = agent.run_once();
        assert_eq!(code, 1, "{log}");
        let (_, _, queued, _) = local_queue(&agent);
        assert!(
            queued.len() <= 1000,
            "the queue stays within its bound: {}",
            queued.len()
        );
    }
    let (queue, next, queued, dropped) = local_queue(&agent);
    assert_eq!(queued.len(), 1000);
    assert!(
        dropped >= 300,
        "26 runs × 50 reports, 1000 kept: {dropped} dropped"
    );
    let stored = stored_seqs(&backend, &device_id(&agent), &queue).len() as u64;
    assert_eq!(
        stored + queued.len() as u64 + dropped,
        next - 1,
        "every number accounted for"
    );

    backend.restart();
    let told = format!("{dropped} reports were dropped because the queue of 1000 was full");
    let id = device_id(&agent);
    let mut runs = 0;
    while reports_like(&backend, &id, &format!("{told}%")) == 0 {
        let (code, log) = agent.run_once();
        assert_eq!(code, 0, "{log}");
        runs += 1;
        assert!(runs <= 20, "the drop is reported once the queue drains");
    }
    let (_, _, _, dropped) = local_queue(&agent);
    assert_eq!(dropped, 0, "told once");
}

/// A test server on a loopback port, killed when dropped.
struct Hostile {
    child: std::process::Child,
    port: u16,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Answers check-ins the way `behaviour` says, with the backend's own server certificate
/// (or another one), on a loopback port.
fn hostile_server(backend: &Backend, behaviour: &'static str) -> Hostile {
    let script = backend.dir.path().join("hostile.py");
    std::fs::write(&script, HOSTILE_SERVER).expect("script");
    let data = backend.data_dir();
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(behaviour)
        .arg(data.join("server.crt"))
        .arg(data.join("server.key"))
        .arg(data.join("ca.crt"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("the server prints its port");
    let port = line.trim().parse().expect("a port");
    Hostile { child, port }
}

const HOSTILE_SERVER: &str = r#"
import socket, ssl, sys, threading, time
behaviour, cert, key, ca = sys.argv[1:5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
if behaviour == "wrong-certificate":
    import subprocess, tempfile, os
    d = tempfile.mkdtemp()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", d + "/k", "-out", d + "/c"], check=True, capture_output=True)
    cert, key = d + "/c", d + "/k"
ctx.load_cert_chain(cert, key)
ctx.verify_mode = ssl.CERT_OPTIONAL
ctx.load_verify_locations(cafile=ca)
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0)); ls.listen(16)
print(ls.getsockname()[1], flush=True)
def head(n, extra=""):
    return ("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n" % (n, extra)).encode()
def serve(c):
    try:
        s = ctx.wrap_socket(c, server_side=True)
        s.recv(65536)
        if behaviour == "slow":
            time.sleep(3600)
        elif behaviour == "oversized":
            s.sendall(head(1 << 30))
            chunk = b'{"bundle": null, "pad": "' + b"x" * 65536
            while True:
                s.sendall(chunk)
                chunk = b"x" * 65536
        elif behaviour == "truncated":
            s.sendall(head(1000) + b'{"bundle": {"pay')
            s.close()
        elif behaviour == "malformed":
            body = b'{"bundle": [1, 2, "three"'
            s.sendall(head(len(body)) + body)
            s.close()
        else:
            s.close()
    except Exception:
        pass
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Max resident set of a finished child, from `wait4`.
#[allow(clippy::zombie_processes, reason = "wait4 reaps the child")]
fn run_measured(agent: &Agent) -> (i32, String, u64) {
    let mut child = agent
        .command()
        .arg("run-once")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the agent starts");
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = thread::spawn(move || {
        let mut log = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut log).expect("log");
        log
    });
    let mut status = 0;
    // SAFETY: wait4 on our own child, with valid out-pointers.
    let rusage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let pid = libc::wait4(child.id() as i32, &mut status, 0, &mut usage);
        assert_eq!(pid, child.id() as i32, "wait4");
        usage
    };
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (
        code,
        reader.join().expect("reader"),
        rusage.ru_maxrss as u64 * 1024,
    )
}

fn point_at(agent: &Agent, port: u16) {
    let path = agent.config_dir().join("agent.json");
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("agent.json")).expect("JSON");
    config["server_url"] = json!(format!("https://127.0.0.1:{port}"));
    std::fs::write(&path, serde_json::to_vec(&config).expect("JSON")).expect("agent.json");
}

#[test]
fn a_hostile_server_gets_bounded_time_and_memory_and_the_last_bundle_stays() {
    let backend = Backend::start();
    let key = backend.auto_accept_key("/hostile");
    let agent = Agent::new("hostile");
    bootstrap(&backend, &agent, &key);
    // A template: its source is cached on the device, so it is enforced offline too.
    let managed = agent.root("etc/managed.conf");
    backend.upload("/managed.conf", b"managed=yes\n");
    backend.set_config(
        "/hostile",
        "file_distribution",
        &json!({"sets": [{"label": "m", "files": [{"source": "/managed.conf", "destination": managed.to_str().unwrap(), "template": true}]}]}),
    );
    backend.cli_ok(&["commit", "-m", "managed"]);
    assert_eq!(agent.run_once().0, 0);

    for (behaviour, says) in [
        ("slow", "check-in failed"),
        ("oversized", "check-in failed"),
        ("truncated", "check-in failed"),
        ("malformed", "check-in failed"),
        ("wrong-certificate", "check-in failed"),
        ("closed", "check-in failed"),
    ] {
        let server = hostile_server(&backend, behaviour);
        point_at(&agent, server.port);
        std::fs::write(&managed, "tampered\n").expect("tamper");
        let (code, log, rss) = run_measured(&agent);
        assert_eq!(
            code, 1,
            "{behaviour}: the backend counts as unreachable: {log}"
        );
        assert!(log.contains(says), "{behaviour}: {log}");
        assert!(rss < 64 * 1024 * 1024, "{behaviour}: {rss} bytes resident");
        assert_eq!(
            std::fs::read_to_string(&managed).expect("managed"),
            "managed=yes\n",
            "{behaviour}: the last good bundle is still enforced: {log}"
        );
    }
}

/// A mount namespace of the test's own, held open by a sleeping process, so small tmpfs
/// mounts over the agent's dirs are seen by the agents run in it and by nothing else.
struct MountNs {
    holder: std::process::Child,
}

impl MountNs {
    fn new() -> Self {
        let holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sleep", "3600"])
            .spawn()
            .expect("unshare runs (as root)");
        let ours = std::fs::read_link("/proc/self/ns/mnt").expect("own namespace");
        let pid = holder.id();
        wait_for(|| {
            let ns = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()?;
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
            (ns != ours && exe.ends_with("sleep")).then_some(())
        });
        Self { holder }
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.holder.id().to_string())
            .args(["-m", "--"])
            .arg(program);
        cmd
    }

    fn sh(&self, script: &str) -> std::process::Output {
        self.command("/bin/sh")
            .args(["-c", script])
            .output()
            .expect("nsenter runs")
    }

    /// Puts a `size` tmpfs over `dir`, holding a copy of what `dir` held.
    fn small_tmpfs(&self, dir: &std::path::Path, size: &str) {
        let d = dir.display();
        let out = self.sh(&format!(
            "set -e; c=$(mktemp -d); cp -a {d}/. $c/; mount -t tmpfs -o size={size},mode=0700 apiary-test {d}; cp -a $c/. {d}/; rm -rf $c"
        ));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Fills the filesystem of `dir` to the last block.
    fn fill(&self, dir: &std::path::Path) {
        let d = dir.display();
        self.sh(&format!(
            "dd if=/dev/zero of={d}/fill bs=1024 2>/dev/null; true"
        ));
        let out = self.sh(&format!("echo x > {d}/probe"));
        assert!(!out.status.success(), "{d} is full");
    }

    fn free(&self, dir: &std::path::Path) {
        let out = self.sh(&format!("rm -f {}/fill", dir.display()));
        assert!(out.status.success());
    }

    /// One agent cycle inside the namespace: its exit code and log.
    fn run_once(&self, agent: &Agent) -> (i32, String) {
        let out = self
            .command(apiary_tests::bin("apiary-agent"))
            .arg("--config-dir")
            .arg(agent.config_dir())
            .arg("--state-dir")
            .arg(agent.state_dir())
            .arg("run-once")
            .output()
            .expect("the agent runs");
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code().unwrap_or(-1), log)
    }
}

impl Drop for MountNs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Reports of `device` whose message contains `text`.
fn stored_messages(backend: &Backend, device: &str, text: &str) -> i64 {
    reports_like(backend, device, &format!("%{text}%"))
}

/// Reports of `device` whose message matches the SQL `LIKE` pattern.
fn reports_like(backend: &Backend, device: &str, pattern: &str) -> i64 {
    let db = rusqlite::Connection::open(backend.data_dir().join("apiary.db")).expect("db");
    db.query_row(
        "SELECT count(*) FROM reports WHERE device_id = ?1 AND message LIKE ?2",
        [device, pattern],
        |r| r.get(0),
    )
    .expect("count")
}

#[test]
#[ignore = "needs root for a mount namespace of its own; scripts/test runs it"]
fn full_state_and_config_dirs_keep_the_agent_enforcing_the_last_good_bundle() {
    let backend = Backend::start();
    let key = backend.auto_accept_key("/full");
    let agent = Agent::new("full");
    bootstrap(&backend, &agent, &key);
    let managed = agent.root("etc/managed.conf");
    let bundle = |content: &[u8], message: &str| {
        backend.upload("/managed.conf", content);
        backend.set_config(
            "/full",
            "file_distribution",
            &json!({"sets": [{"label": "m", "files": [{"source": "/managed.conf", "destination": managed.to_str().unwrap(), "template": true}]}]}),
        );
        backend.cli_ok(&["commit", "-m", message]);
    };
    bundle(b"generation=1\n", "first");
    assert_eq!(agent.run_once().0, 0);
    let id = device_id(&agent);

    let ns = MountNs::new();
    ns.small_tmpfs(&agent.state_dir(), "256k");
    ns.small_tmpfs(&agent.config_dir(), "256k");

    // A full state dir: the agent goes on enforcing, and says why it cannot save.
    ns.fill(&agent.state_dir());
    std::fs::write(&managed, "tampered\n").expect("tamper");
    let (code, log) = ns.run_once(&agent);
    assert!(code == 0 || code == 2, "no crash ({code}): {log}");
    assert_eq!(
        std::fs::read_to_string(&managed).expect("managed"),
        "generation=1\n",
        "{log}"
    );
    assert_eq!(
        stored_messages(&backend, &id, "cannot save the report queue"),
        1,
        "{log}"
    );
    ns.free(&agent.state_dir());
    let (code, log) = ns.run_once(&agent);
    assert_eq!(code, 0, "{log}");
    let (code, log) = ns.run_once(&agent);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        stored_messages(&backend, &id, "cannot save the report queue"),
        1,
        "told while it lasted, not after"
    );

    // A full config dir: a new bundle cannot be kept, so the last good one stays in force.
    ns.fill(&agent.config_dir());
    bundle(b"generation=2\n", "second");
    let (code, log) = ns.run_once(&agent);
    assert_eq!(code, 2, "the new bundle is refused: {log}");
    assert!(log.contains("cannot persist the bundle"), "{log}");
    assert_eq!(
        std::fs::read_to_string(&managed).expect("managed"),
        "generation=1\n"
    );
    assert!(
        stored_messages(&backend, &id, "cannot persist the bundle") >= 1,
        "{log}"
    );
    ns.free(&agent.config_dir());
    let (code, log) = ns.run_once(&agent);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        std::fs::read_to_string(&managed).expect("managed"),
        "generation=2\n"
    );
}
