//! CPU time of a software inventory of 2,000 packages: the static agent in the Debian root,
//! whose dpkg status file is filled up to 2,000 packages, against a real backend.
//!
//! `APIARY_BIN_DIR=$PWD/target/debug cargo bench -p apiary-tests --bench inventory` (as
//! root, after `cargo build --bins`, `tests/rootfs/build` and
//! `cross/build x86_64-unknown-linux-musl`). Each round times two `run-once` cycles
//! by the CPU time (user + system) of the agent process: one with the inventory state
//! removed, so every kind is collected and sent, software included; one right after, when
//! nothing is due or changed. Their difference is what the inventory costs. Prints the
//! median over the rounds; the results go in docs/benchmarks.md.

use apiary_tests::rootfs::RootFs;
use apiary_tests::{Agent, Backend};

const PACKAGES: usize = 2000;
const ROUNDS: usize = 7;

/// User + system CPU seconds of the waited-for children so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage writes one rusage struct that we own.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut u), 0);
        u
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// CPU milliseconds of one agent cycle.
fn cycle(agent: &Agent) -> f64 {
    let before = children_cpu();
    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "agent run failed: {log}");
    (children_cpu() - before) * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Appends made-up packages in dpkg's status format until the root has `PACKAGES`.
fn fill_dpkg_status(root: &RootFs) -> usize {
    let path = root.path("/var/lib/dpkg/status");
    let mut text = std::fs::read_to_string(&path).expect("the root's dpkg status");
    let real = text
        .split("\n\n")
        .filter(|s| s.contains("Status: install ok installed"))
        .count();
    for i in real..PACKAGES {
        text.push_str(&format!(
            "\nPackage: bench-package-{i}\nStatus: install ok installed\nPriority: optional\n\
             Section: libs\nInstalled-Size: {}\nMaintainer: Apiary Bench <bench@example.invalid>\n\
             Architecture: amd64\nSource: bench-source-{}\nVersion: {}.{}.{}-{}\n\
             Depends: libc6 (>= 2.36)\nDescription: package {i} of the inventory benchmark\n \
             Filler text of a typical length for a package's long description.\n",
            100 + i % 900,
            i / 3,
            i % 7,
            i % 13,
            i % 31,
            1 + i % 4
        ));
    }
    std::fs::write(&path, text).expect("write the dpkg status");
    real
}

fn main() {
    let root = RootFs::debian();
    let real = fill_dpkg_status(&root);
    let backend = Backend::start();
    let agent = Agent::in_root("inventory-bench", &root);
    let id = backend.enroll(&agent, "/bench");
    cycle(&agent);
    let software = backend.cli_json(&["inventory", &id, "software"]);
    let listed = software["data"][0]["packages"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(listed, PACKAGES, "the backend has every package");

    let (mut full, mut idle) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        std::fs::remove_file(agent.state_dir().join("inventory.json"))
            .expect("the inventory state exists after a cycle");
        full.push(cycle(&agent));
        idle.push(cycle(&agent));
    }
    let (full, idle) = (median(full), median(idle));
    println!(
        "software inventory of {PACKAGES} packages ({real} real, {} made up), median of {ROUNDS} rounds:",
        PACKAGES - real
    );
    println!("  cycle collecting and sending every kind: {full:.1} ms CPU");
    println!("  cycle with nothing due or changed:       {idle:.1} ms CPU");
    println!(
        "  the inventory's share:                   {:.1} ms CPU",
        full - idle
    );
}
