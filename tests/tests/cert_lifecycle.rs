//! Device certificates over their life: renewed when the backend says they are due (with a
//! request signed by the device's key), the replaced one accepted only until the device
//! first presents the new one (a renewal whose answer was lost locks nothing out), and every
//! certificate of a deleted device refused. Short-lived certificates (an hour) make the
//! renewal due at once.

use apiary_tests::{Agent, Backend};

/// Restarts `backend` with device certificates of an hour, renewed `renew_before` seconds
/// before their end.
fn certificates(backend: &mut Backend, renew_before: u32) {
    backend.extra_args = vec![
        "--device-cert-lifetime".into(),
        "3600".into(),
        "--device-cert-renew-before".into(),
        renew_before.to_string(),
    ];
    backend.restart();
}

fn fingerprint(backend: &Backend, id: &str) -> String {
    backend.cli_json(&["devices", "show", id])["certificate"]["fingerprint"]
        .as_str()
        .expect("the backend shows the certificate's fingerprint")
        .to_string()
}

#[test]
fn certificates_are_renewed_and_superseded_ones_refused() {
    let mut backend = Backend::start();
    certificates(&mut backend, 0);
    let agent = Agent::new("renewing");
    let id = backend.enroll(&agent, "/lab");
    let cert_file = agent.config_dir().join("device.crt");
    let first = std::fs::read(&cert_file).unwrap();
    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "{log}");
    assert!(!log.contains("renewed"), "not due yet: {log}");

    // Due (an hour left is less than the hour asked for): renewed in the same cycle.
    certificates(&mut backend, 3600);
    let before = fingerprint(&backend, &id);
    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("device certificate renewed"), "{log}");
    let second = std::fs::read(&cert_file).unwrap();
    assert_ne!(first, second, "a new certificate in device.crt");
    assert_ne!(fingerprint(&backend, &id), before);

    // As if the answer had been lost: the device still holds the first one, which works
    // until the new one is used.
    certificates(&mut backend, 1800);
    std::fs::write(&cert_file, &first).unwrap();
    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "the replaced certificate still works once: {log}");
    std::fs::write(&cert_file, &second).unwrap();
    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "{log}");
    assert!(!log.contains("renewed"), "not due again: {log}");

    // The new one used: the old one is refused from now on.
    std::fs::write(&cert_file, &first).unwrap();
    let (code, log) = agent.run_once();
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("superseded certificate"), "{log}");
    std::fs::write(&cert_file, &second).unwrap();
    assert_eq!(agent.run_once().0, 0);

    // Deleted (decommissioned): its certificate is refused.
    backend.cli_ok(&["devices", "delete", &id]);
    let (code, log) = agent.run_once();
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("is not enrolled"), "{log}");
}
