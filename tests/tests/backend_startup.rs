//! The backend process itself: data-dir safety and the operator API over TLS.

use std::fs;
use std::process::Command;

use apiary_tests::{Backend, bin};

/// Runs `apiary-backend serve` on `data`; callers expect it to refuse to start.
fn serve_expecting_failure(data: &std::path::Path) -> std::process::Output {
    Command::new(bin("apiary-backend"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--device-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data)
        .output()
        .unwrap()
}

#[test]
fn a_half_initialised_data_dir_stops_the_backend_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("apiary.db"), b"left over").unwrap();
    let out = serve_expecting_failure(&data);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("was never fully initialised"), "{err}");
    assert_eq!(
        fs::read(data.join("apiary.db")).unwrap(),
        b"left over",
        "nothing was overwritten"
    );
}

#[test]
fn a_damaged_data_dir_is_refused_not_reinitialised() {
    let mut backend = Backend::start();
    backend.stop();
    fs::remove_file(backend.data_dir().join("ca.key")).unwrap();
    let out = serve_expecting_failure(&backend.data_dir());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ca.key is missing"), "{err}");
    assert!(
        !backend.data_dir().join("ca.key").exists(),
        "no new CA was created"
    );
}

#[test]
fn the_operator_api_serves_tls_when_given_a_certificate() {
    let mut backend = Backend::start();
    // The data dir's server certificate names 127.0.0.1 and is issued by its CA.
    let data = backend.data_dir();
    backend.extra_args = vec![
        "--tls-cert".into(),
        data.join("server.crt").to_string_lossy().into_owned(),
        "--tls-key".into(),
        data.join("server.key").to_string_lossy().into_owned(),
    ];
    backend.restart();
    assert!(
        backend.operator_url.starts_with("https://127.0.0.1:"),
        "{}",
        backend.operator_url
    );

    let ca = data.join("ca.crt");
    let out = Command::new(bin("apiary"))
        .args([
            "--server",
            &backend.operator_url,
            "--token",
            &backend.token,
            "--ca-cert",
        ])
        .arg(&ca)
        .args(["ca"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        fs::read_to_string(&ca).unwrap()
    );

    // Without the CA the client refuses the server instead of trusting it blindly.
    let other_ca = tempfile::NamedTempFile::new().unwrap();
    fs::write(other_ca.path(), another_backends_ca()).unwrap();
    let out = Command::new(bin("apiary"))
        .args([
            "--server",
            &backend.operator_url,
            "--token",
            &backend.token,
            "--ca-cert",
        ])
        .arg(other_ca.path())
        .args(["devices", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The CA of another backend, which did not issue this one's certificate.
fn another_backends_ca() -> String {
    let other = Backend::start();
    fs::read_to_string(other.data_dir().join("ca.crt")).unwrap()
}
