//! The static, cross-built agents (`cross/build`) on every target, run under qemu-user
//! against a real backend: bootstrap, approval, check-in, a templated file, reports.
//!
//! Ignored by a plain `cargo test` because they need `cross/build` first; `scripts/test`
//! (and so CI) builds the agents and runs them.

use std::fs;

use apiary_tests::{Agent, Backend, report_messages};
use serde_json::json;

fn converge_under_emulation(target: &str, expected_arch: &str) {
    let backend = Backend::start();
    let agent = Agent::cross(&format!("{expected_arch}-device"), target);
    let group = format!("/emulated/{expected_arch}");
    let id = backend.enroll(&agent, &group);

    backend.upload(
        "/configs/arch.conf.tmpl",
        b"arch = {{arch}}\nbroker = {{broker}}\n",
    );
    let dest = agent.root("etc/arch.conf");
    backend.set_config(
        &group,
        "file_distribution",
        &json!({"sets": [{
            "label": "arch",
            "parameters": {"arch": expected_arch, "broker": "mqtt.example"},
            "files": [{"source": "/configs/arch.conf.tmpl", "destination": dest, "template": true}],
            "command": format!("cat {}", dest.display())
        }]}),
    );
    let commit = backend.cli_json(&["commit", "-m", &format!("{expected_arch} config")]);

    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        fs::read_to_string(&dest).unwrap(),
        format!("arch = {expected_arch}\nbroker = mqtt.example\n")
    );
    let device = backend.device(&id);
    // The facts come from the agent binary itself: proof the emulated build did the work.
    assert_eq!(device["facts"]["arch"], expected_arch);
    assert_eq!(device["applied_commit"], commit["id"]);
    let messages = report_messages(&device);
    assert!(
        messages
            .iter()
            .any(|m| m.contains("written from /configs/arch.conf.tmpl")),
        "{messages:?}"
    );
    let second = agent.run_once();
    assert!(
        second.1.contains("0 changed, 0 failed"),
        "idempotent under emulation: {}",
        second.1
    );
}

#[test]
#[ignore = "needs cross/build; scripts/test runs it"]
fn x86_64_musl_static() {
    converge_under_emulation("x86_64-unknown-linux-musl", "x86_64");
}

#[test]
#[ignore = "needs cross/build; scripts/test runs it"]
fn aarch64_under_qemu() {
    converge_under_emulation("aarch64-unknown-linux-musl", "aarch64");
}

#[test]
#[ignore = "needs cross/build; scripts/test runs it"]
fn armhf_under_qemu() {
    converge_under_emulation("armv7-unknown-linux-musleabihf", "arm");
}

#[test]
#[ignore = "needs cross/build; scripts/test runs it"]
fn mips_big_endian_under_qemu() {
    converge_under_emulation("mips-unknown-linux-musl", "mips");
}

#[test]
#[ignore = "needs cross/build; scripts/test runs it"]
fn mipsel_under_qemu() {
    converge_under_emulation("mipsel-unknown-linux-musl", "mips");
}
