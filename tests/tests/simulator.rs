//! The device simulator against a real backend: it enrols devices with an auto-accepting
//! key and drives their check-ins, resumed and full, idle and with reports. Only that it
//! works is tested here; what it measures is a benchmark (docs/benchmarks.md).

use std::process::Command;

use apiary_tests::{Backend, bin};

fn sim(backend: &Backend, devices: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(bin("apiary-sim"))
        .args(["--server", &backend.device_url, "--ca"])
        .arg(backend.data_dir().join("ca.crt"))
        .arg("--devices")
        .arg(devices)
        .args(args)
        .output()
        .expect("apiary-sim runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn the_simulator_enrols_devices_and_drives_their_check_ins() {
    let backend = Backend::start();
    let key = backend.auto_accept_key("/sim");
    let key_file = backend.dir.path().join("sim.key");
    std::fs::write(&key_file, &key).expect("key file");
    let devices = backend.dir.path().join("sim-devices.jsonl");
    // Three new (P-256) devices and three with P-384 keys, as enrolled before P-256.
    for legacy in [&[][..], &["--legacy-p384"][..]] {
        let mut args = vec!["enrol", "--count", "3", "--threads", "2", "--key-file"];
        args.push(key_file.to_str().unwrap());
        args.extend_from_slice(legacy);
        sim(&backend, &devices, &args);
    }
    let listed = backend.cli_json(&["devices", "list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(6), "{listed}");

    let modes = [
        &[][..],
        &["--full-handshake"][..],
        &["--reports", "3"][..],
        &["--storm"][..],
    ];
    for mode in modes {
        let mut args = vec!["run", "--seconds", "1", "--threads", "2"];
        args.extend_from_slice(mode);
        let out = sim(&backend, &devices, &args);
        assert!(out.contains("errors:      0"), "{mode:?}: {out}");
        let count: u64 = out
            .lines()
            .find_map(|l| l.strip_prefix("check-ins:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("a count");
        assert!(count > 0, "{mode:?}: {out}");
    }
    let id = listed[0]["id"].as_str().expect("an id");
    let device = backend.device(id);
    assert!(device["last_checkin"].is_number(), "{device}");
    let reports = device["reports"].as_array().expect("reports");
    assert!(
        reports
            .iter()
            .any(|r| r["message"] == "/etc/sim.conf is up to date"),
        "{device}"
    );
}
