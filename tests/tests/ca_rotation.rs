//! Rotating the device CA without re-enrolling: `apiary-backend ca prepare` (devices are sent
//! the next CA with the current one), `promote` (the server certificate moves to the new CA
//! and each device renews its certificate under it), `retire` (the old CA is forgotten). A
//! device that stayed away through `prepare` cannot follow, and says why.

use std::process::Command;

use apiary_tests::{Agent, Backend, bin};

fn ca_step(backend: &mut Backend, step: &str) -> String {
    backend.stop();
    let out = Command::new(bin("apiary-backend"))
        .args(["ca", "--data-dir"])
        .arg(backend.data_dir())
        .arg(step)
        .output()
        .expect("apiary-backend runs");
    assert!(
        out.status.success(),
        "ca {step}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    backend.restart();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cas_held(agent: &Agent) -> usize {
    std::fs::read_to_string(agent.config_dir().join("ca.crt"))
        .unwrap()
        .matches("BEGIN CERTIFICATE")
        .count()
}

#[test]
fn the_device_ca_is_rotated_without_enrolling_again() {
    let mut backend = Backend::start();
    let agent = Agent::new("rotating");
    let id = backend.enroll(&agent, "/lab");
    let away = Agent::new("away");
    backend.enroll(&away, "/lab");
    assert_eq!(agent.run_once().0, 0);
    let first_ca = std::fs::read_to_string(agent.config_dir().join("ca.crt")).unwrap();

    // Prepared: the device is sent both CAs and keeps them.
    let said = ca_step(&mut backend, "prepare");
    assert!(said.contains("prepared the next CA"), "{said}");
    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("trusting 2 CA certificate(s)"), "{log}");
    assert_eq!(cas_held(&agent), 2);

    // Promoted: the backend presents a certificate from the new CA, which the device
    // already trusts, and asks it to renew its own under that CA.
    let before = backend.cli_json(&["devices", "show", &id])["certificate"]["fingerprint"].clone();
    ca_step(&mut backend, "promote");
    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("device certificate renewed"), "{log}");
    let after = backend.cli_json(&["devices", "show", &id])["certificate"]["fingerprint"].clone();
    assert_ne!(before, after);
    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "{log}");
    assert!(!log.contains("renewed"), "renewed once: {log}");

    // The device that stayed away never got the new CA: it refuses the new server
    // certificate, as it should.
    let (code, log) = away.run_once();
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("certificate"), "{log}");

    // Retired: the device is sent the new CA alone and goes on checking in.
    ca_step(&mut backend, "retire");
    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "{log}");
    assert_eq!(cas_held(&agent), 1);
    let now_ca = std::fs::read_to_string(agent.config_dir().join("ca.crt")).unwrap();
    assert_ne!(now_ca, first_ca);
    assert_eq!(agent.run_once().0, 0);
    let status = ca_step(&mut backend, "status");
    assert!(status.contains("no rotation under way"), "{status}");
}
