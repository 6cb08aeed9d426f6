//! Inventory and metrics end to end: the static agent inside the Debian and busybox roots,
//! a real backend, and what the CLI shows compared with the roots' own tools (`dpkg-query`,
//! `ss`, `getent`, `chage`, `ps`, `df`) and with `/proc`.
//!
//! Ignored by default: they need the roots (`tests/rootfs/build`), the static agent
//! (`cross/build`) and root. `scripts/test` provides all three and runs them.

use std::collections::BTreeSet;

use apiary_tests::rootfs::RootFs;
use apiary_tests::{Agent, Backend};
use serde_json::{Value, json};

fn device(root: &RootFs) -> (Backend, Agent, String) {
    let backend = Backend::start();
    let agent = Agent::in_root(&format!("{}-device", root.kind), root);
    let id = backend.enroll(&agent, "/lab");
    (backend, agent, id)
}

fn run(agent: &Agent) -> String {
    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "agent run failed: {log}");
    log
}

fn inventory(backend: &Backend, id: &str, kind: &str) -> Value {
    backend.cli_json(&["inventory", id, kind])
}

/// Each kind's (changed_at, received_at).
fn arrivals(backend: &Backend, id: &str) -> Vec<(String, i64, i64)> {
    let all = backend.cli_json(&["inventory", id]);
    all.as_array()
        .expect("kinds")
        .iter()
        .map(|k| {
            (
                k["kind"].as_str().expect("kind").to_string(),
                k["changed_at"].as_i64().expect("changed_at"),
                k["received_at"].as_i64().expect("received_at"),
            )
        })
        .collect()
}

fn arrival(list: &[(String, i64, i64)], kind: &str) -> (i64, i64) {
    let (_, c, r) = list
        .iter()
        .find(|(k, _, _)| k == kind)
        .unwrap_or_else(|| panic!("{kind} in {list:?}"));
    (*c, *r)
}

/// Waits for the clock's next second, so times recorded after it differ from those before.
fn next_second() {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    };
    let start = now();
    apiary_tests::wait_for(|| (now() > start).then_some(()));
}

/// A TCP listener inside the root, held by perl (in Debian's minbase): its port and pid.
fn perl_listener(root: &RootFs) -> (u16, u32) {
    root.sh_ok(
        "perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalAddr => \"127.0.0.1\", LocalPort => 0, Listen => 5) or die; open(F, \">/tmp/port\"); print F $s->sockport; close F; sleep 100000' >/dev/null 2>&1 &",
    );
    let port: u16 = apiary_tests::wait_for(|| {
        let text = std::fs::read_to_string(root.path("/tmp/port")).ok()?;
        text.trim().parse().ok()
    });
    // The pid as the root's own tools see it (its PID namespace's).
    let pid = root
        .sh_ok("pgrep -x perl")
        .trim()
        .parse()
        .expect("perl's pid");
    (port, pid)
}

#[test]
#[ignore = "needs tests/rootfs/build, cross/build and root (scripts/test runs it)"]
fn inventory_in_debian_matches_the_systems_own_tools() {
    let root = RootFs::debian();
    root.sh_ok(
        "useradd -m -p '$1$vendor$0123456789abcdefghijkl' vendor && chage -d 2020-01-15 vendor",
    );
    let (port, perl_pid) = perl_listener(&root);
    let (backend, agent, id) = device(&root);
    run(&agent);

    // System: os-release and uname, as the root says them.
    let system = &inventory(&backend, &id, "system")["data"];
    assert_eq!(system["os_id"], "debian");
    assert_eq!(system["os_version"], "12");
    assert_eq!(system["kernel"], root.sh_ok("uname -r").trim());
    assert_eq!(system["hostnames"][0], "debian-device");

    // Software: exactly what dpkg-query lists as installed.
    let listed = root.sh_ok(
        "dpkg-query -W -f '${db:Status-Status}\\t${Package}\\t${Version}\\t${Architecture}\\n'",
    );
    let want: BTreeSet<String> = listed
        .lines()
        .filter_map(|l| l.strip_prefix("installed\t"))
        .map(str::to_string)
        .collect();
    let software = inventory(&backend, &id, "software");
    let dpkg = software["data"]
        .as_array()
        .expect("lists")
        .iter()
        .find(|l| l["manager"] == "dpkg")
        .expect("dpkg list");
    let got: BTreeSet<String> = dpkg["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            format!(
                "{}\t{}\t{}",
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap(),
                p["arch"].as_str().unwrap()
            )
        })
        .collect();
    assert!(want.len() > 100, "a minbase has more: {}", want.len());
    assert_eq!(got, want);
    let libc = dpkg["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "libc6")
        .expect("libc6");
    assert_eq!(
        libc["source"], "glibc",
        "the source package, as advisories name it"
    );

    // Users: getent's accounts, shadow's facts, and no hash.
    let users = inventory(&backend, &id, "users");
    let accounts = users["data"].as_array().expect("accounts");
    for line in root.sh_ok("getent passwd").lines() {
        let f: Vec<&str> = line.split(':').collect();
        let a = accounts
            .iter()
            .find(|a| a["name"] == f[0])
            .unwrap_or_else(|| panic!("{line}"));
        assert_eq!(a["uid"].to_string(), f[2], "{line}");
        assert_eq!(a["gid"].to_string(), f[3], "{line}");
        assert_eq!(
            (a["home"].as_str(), a["shell"].as_str()),
            (Some(f[5]), Some(f[6]))
        );
    }
    let vendor = accounts
        .iter()
        .find(|a| a["name"] == "vendor")
        .expect("vendor");
    assert_eq!(
        (vendor["password"].as_str(), vendor["algorithm"].as_str()),
        (Some("set"), Some("md5"))
    );
    let chage = root.sh_ok("chage -l -i vendor");
    let last = chage
        .lines()
        .find(|l| l.starts_with("Last password change"))
        .and_then(|l| l.split(':').nth(1))
        .expect("chage line")
        .trim()
        .to_string();
    assert_eq!(last, "2020-01-15");
    assert_eq!(
        vendor["last_change_day"], 18276,
        "2020-01-15 in days since 1970"
    );
    assert!(
        !users.to_string().contains("$1$vendor"),
        "no hash leaves the device"
    );
    let cli = backend.cli_ok(&["inventory", &id, "users"]);
    assert!(cli.contains("md5 (weak)"), "{cli}");

    // Ports: perl's listener, with the pid and name ss gives it.
    let ss = root.sh_ok(&format!("ss -ltnpH 'sport = :{port}'"));
    assert!(ss.contains(&format!("pid={perl_pid},")), "{ss}");
    let ports = inventory(&backend, &id, "ports");
    let entry = ports["data"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["port"] == port && p["protocol"] == "tcp")
        .unwrap_or_else(|| panic!("port {port} in {ports}"));
    assert_eq!(entry["address"], "127.0.0.1");
    assert_eq!(entry["pid"], perl_pid);
    assert!(
        ss.contains(&format!("((\"{}\"", entry["process"].as_str().unwrap())),
        "{ss}"
    );
    let found = backend.cli_json(&["find", "--port", &port.to_string()]);
    assert!(
        found
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["device_id"] == id.as_str()),
        "{found}"
    );
    let found = backend.cli_json(&["find", "--package", "libssl"]);
    assert!(
        found
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["device_id"] == id.as_str()),
        "{found}"
    );

    // Processes: on through settings; perl with the user and memory ps shows.
    assert!(
        backend.cli(&["inventory", &id, "processes"]).status.code() != Some(0),
        "off by default"
    );
    backend.set_config("/lab", "settings", &json!({"process_inventory": true}));
    backend.cli_ok(&["commit", "-m", "processes on"]);
    run(&agent);
    run(&agent);
    let processes = inventory(&backend, &id, "processes");
    let perl = processes["data"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|p| p["pid"] == perl_pid)
        .unwrap_or_else(|| panic!("perl in {processes}"));
    let ps = root.sh_ok(&format!("ps -o user=,rss=,args= -p {perl_pid}"));
    let mut fields = ps.split_whitespace();
    assert_eq!(perl["user"].as_str(), fields.next());
    let rss: u64 = fields.next().expect("rss").parse().expect("number");
    let ours = perl["rss_kib"].as_u64().expect("rss_kib");
    assert!(
        ours.abs_diff(rss) * 10 <= rss,
        "rss {ours} KiB against ps's {rss} KiB"
    );
    assert!(
        perl["command"]
            .as_str()
            .unwrap()
            .starts_with("perl -MIO::Socket::INET"),
        "{perl}"
    );
    let ps_pids: BTreeSet<u64> = root
        .sh_ok("ps -e -o pid=")
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let listed: BTreeSet<u64> = processes["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["pid"].as_u64())
        .collect();
    // Long-lived processes (init, perl) are in both; the agent and ps themselves differ.
    assert!(
        ps_pids.intersection(&listed).count() >= 2,
        "{ps_pids:?} {listed:?}"
    );
}

#[test]
#[ignore = "needs tests/rootfs/build, cross/build and root (scripts/test runs it)"]
fn nothing_is_sent_again_until_a_kind_changes() {
    let root = RootFs::busybox();
    let (backend, agent, id) = device(&root);
    run(&agent);
    let first = arrivals(&backend, &id);
    for kind in ["system", "users", "ports"] {
        arrival(&first, kind);
    }
    let software = inventory(&backend, &id, "software");
    assert_eq!(
        software["data"],
        json!([]),
        "busybox has no package manager"
    );

    next_second();
    run(&agent);
    let second = arrivals(&backend, &id);
    for kind in ["system", "users"] {
        assert_eq!(
            arrival(&first, kind),
            arrival(&second, kind),
            "{kind} was not sent again"
        );
    }

    // One change, one kind: a new account sends the users kind and nothing else. (Ports are
    // the host's, which other tests change, so they are left out of the comparison.)
    root.sh_ok("adduser -D -s /bin/sh newcomer");
    next_second();
    run(&agent);
    let third = arrivals(&backend, &id);
    let (changed, received) = arrival(&third, "users");
    assert!(changed > arrival(&second, "users").0 && received == changed);
    assert_eq!(arrival(&second, "system"), arrival(&third, "system"));
    let users = inventory(&backend, &id, "users");
    assert!(
        users["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "newcomer")
    );

    // A reboot wipes the state dir (tmpfs): every kind goes once more, unchanged.
    std::fs::remove_dir_all(agent.state_dir()).expect("wipe the state dir");
    std::fs::create_dir_all(agent.state_dir()).expect("state dir");
    next_second();
    run(&agent);
    let after = arrivals(&backend, &id);
    let (changed, received) = arrival(&after, "system");
    assert_eq!(changed, arrival(&third, "system").0, "the same content");
    assert!(
        received > arrival(&third, "system").1,
        "sent again after the reboot"
    );
}

#[test]
#[ignore = "needs tests/rootfs/build, cross/build and root (scripts/test runs it)"]
fn metrics_reach_the_backend_and_agree_with_proc() {
    let root = RootFs::debian();
    let (backend, agent, id) = device(&root);
    run(&agent);
    // The agent takes no second sample within a second of the last.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    run(&agent);
    let set = backend.cli_json(&["metrics", &id, "--since", "10m"]);
    assert_eq!(set["resolution"], "raw");
    let times = set["times"].as_array().expect("times");
    assert_eq!(times.len(), 2, "one sample per cycle: {set}");
    let series = |name: &str| -> Vec<Option<f64>> {
        set["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {set}"))["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(Value::as_f64)
            .collect()
    };
    // CPU is a rate: none for the first sample after a boot, a share for the second.
    let cpu = series("cpu.user");
    assert!(
        cpu[0].is_none() && cpu[1].is_some_and(|v| (0.0..=100.0).contains(&v)),
        "{cpu:?}"
    );

    let meminfo = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    let kib = |key: &str| -> f64 {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
            .expect("meminfo field")
    };
    let available = series("memory.available")[1].expect("available");
    let proc_available = kib("MemAvailable:") * 1024.0;
    assert!(
        (available - proc_available).abs() < proc_available * 0.2,
        "{available} vs {proc_available}"
    );
    let total = kib("MemTotal:");
    let used = series("memory.used")[1].expect("used");
    let proc_used = 100.0 * (total - kib("MemAvailable:")) / total;
    assert!((used - proc_used).abs() < 10.0, "{used}% vs {proc_used}%");

    let load: f64 = std::fs::read_to_string("/proc/loadavg")
        .expect("loadavg")
        .split_whitespace()
        .nth(2)
        .expect("load15")
        .parse()
        .expect("number");
    let ours = series("load.15")[1].expect("load.15");
    assert!((ours - load).abs() < 1.0, "load.15 {ours} vs {load}");

    // The root filesystem as df inside the root counts it.
    let df = root.sh_ok("df -P / | tail -1");
    let df_used: f64 = df
        .split_whitespace()
        .nth(4)
        .and_then(|p| p.trim_end_matches('%').parse().ok())
        .expect("df's use%");
    let fs_used = series("fs.used:/")[1].expect("fs.used:/");
    assert!(
        (fs_used - df_used).abs() <= 2.0,
        "fs.used:/ {fs_used}% vs df {df_used}%"
    );

    // Turned off: no more samples.
    backend.set_config("/lab", "settings", &json!({"metrics": false}));
    backend.cli_ok(&["commit", "-m", "metrics off"]);
    run(&agent);
    next_second();
    run(&agent);
    let off = backend.cli_json(&["metrics", &id, "--since", "10m"]);
    assert!(off["times"].as_array().unwrap().len() <= 3, "{off}");
    let text = backend.cli_ok(&["metrics", &id, "--since", "10m"]);
    assert!(
        text.contains("memory.used") && text.contains("MEAN"),
        "{text}"
    );
}

#[test]
#[ignore = "needs tests/rootfs/build, cross/build and root (scripts/test runs it)"]
fn a_threshold_crossing_and_its_recovery_are_reported_once_each() {
    let root = RootFs::busybox();
    let (backend, agent, id) = device(&root);
    // Any filesystem holding this root is more than 0.001 % used.
    backend.set_config(
        "/lab",
        "metrics_monitor",
        &json!({"items": [{"metric": "fs.used", "above": 0.001, "level": "error"}]}),
    );
    let commit = backend.cli_json(&["commit", "-m", "watch the disks"]);
    run(&agent);
    let crossed = |device: &Value| {
        apiary_tests::report_messages(device)
            .into_iter()
            .filter(|m| {
                m.starts_with("error metrics_monitor fs.used:/ is ")
                    && m.contains("past its limit (above 0.001 %)")
            })
            .count()
    };
    let first = backend.device(&id);
    assert_eq!(
        crossed(&first),
        1,
        "{:?}",
        apiary_tests::report_messages(&first)
    );
    let rollout =
        backend.cli_json(&["commits", "show", &commit["id"].to_string()])["rollout"].clone();
    let state = &rollout["devices"].as_array().expect("devices")[0]["state"];
    assert_eq!(
        state, "converged",
        "a crossing is no failed rollout: {rollout}"
    );

    std::thread::sleep(std::time::Duration::from_millis(1200));
    run(&agent);
    assert_eq!(
        crossed(&backend.device(&id)),
        1,
        "still crossed: nothing new"
    );

    backend.set_config(
        "/lab",
        "metrics_monitor",
        &json!({"items": [{"metric": "fs.used", "above": 99.999, "level": "error"}]}),
    );
    backend.cli_ok(&["commit", "-m", "a looser limit"]);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    run(&agent);
    let messages = apiary_tests::report_messages(&backend.device(&id));
    let recovered: Vec<&String> = messages
        .iter()
        .filter(|m| {
            m.starts_with("info metrics_monitor fs.used:/ is ")
                && m.contains("back within its limit")
        })
        .collect();
    assert_eq!(recovered.len(), 1, "{messages:?}");
}
