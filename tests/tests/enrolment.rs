//! Enrolment decisions that must hold: a rejection survives the device enrolling again (even
//! with an auto-accepting key and its identity wiped), until an operator approves or deletes
//! the device; deleting forgets it.

use apiary_tests::{Agent, Backend};

fn status(backend: &Backend, id: &str) -> String {
    backend.device(id)["status"]
        .as_str()
        .expect("a status")
        .to_string()
}

#[test]
fn a_rejection_holds_until_an_operator_approves_or_deletes_the_device() {
    let backend = Backend::start();
    let key = backend.auto_accept_key("/auto");
    let agent = Agent::new("turncoat");
    assert!(backend.bootstrap_with_key(&agent, &key).status.success());
    let id = backend.cli_json(&["devices", "list"])[0]["id"]
        .as_str()
        .expect("an id")
        .to_string();
    assert_eq!(agent.run_once().0, 0);

    backend.cli_ok(&["devices", "reject", &id]);
    let (code, log) = agent.run_once();
    assert!(
        log.contains("is rejected"),
        "the old certificate is dead ({code}): {log}"
    );

    // Wiping its identity and enrolling again with the same device key changes nothing.
    std::fs::remove_file(agent.config_dir().join("agent.json")).expect("agent.json exists");
    let again = backend.bootstrap_with_key(&agent, &key);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success(), "{err}");
    assert!(err.contains("rejected"), "{err}");
    assert_eq!(status(&backend, &id), "rejected");
    assert!(!agent.config_dir().join("agent.json").exists());

    // The operator reverses the rejection: a new certificate, and the device is back.
    backend.cli_ok(&["devices", "approve", &id]);
    assert!(backend.bootstrap_with_key(&agent, &key).status.success());
    assert_eq!(agent.run_once().0, 0);

    // Deleting forgets it: check-ins fail, enrolling again is a new request.
    let out = backend.cli(&["devices", "delete", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("deleted"));
    let (_, log) = agent.run_once();
    assert!(log.contains("is not enrolled"), "{log}");
    let listed = backend.cli_json(&["devices", "list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");
    let audit = backend.cli_ok(&["audit"]);
    assert!(audit.contains("device.delete"), "{audit}");
    std::fs::remove_file(agent.config_dir().join("agent.json")).expect("agent.json exists");
    assert!(backend.bootstrap_with_key(&agent, &key).status.success());
    assert_eq!(
        status(&backend, &id),
        "approved",
        "the auto-accepting key approves it afresh"
    );
    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "{log}");
}

#[test]
fn the_pending_list_is_paged() {
    let backend = Backend::start();
    let key = backend
        .cli_ok(&["bootstrap-keys", "create", "--group", "/wait"])
        .trim()
        .to_string();
    let mut waiting = Vec::new();
    for n in 0..3 {
        let agent = Agent::new(&format!("waiting-{n}"));
        let child = agent
            .command()
            .args(["bootstrap", "-k", &key, "--server", &backend.device_url])
            .args(["--device-name", &format!("waiting-{n}")])
            .arg("--ca-cert")
            .arg(backend.data_dir().join("ca.crt"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the agent runs");
        waiting.push((agent, child));
    }
    let all = apiary_tests::wait_for(|| {
        let list = backend.cli_json(&["devices", "list", "--pending"]);
        (list.as_array()?.len() == 3).then_some(list)
    });
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .expect("a list")
            .iter()
            .map(|d| d["name"].as_str().expect("a name").to_string())
            .collect()
    };
    assert_eq!(names(&all), ["waiting-0", "waiting-1", "waiting-2"]);
    let first = backend.cli(&["devices", "list", "--pending", "--limit", "2", "--json"]);
    let page: serde_json::Value = serde_json::from_slice(&first.stdout).expect("JSON");
    assert_eq!(names(&page), ["waiting-0", "waiting-1"]);
    let hint = String::from_utf8_lossy(&first.stderr);
    assert!(hint.contains("--offset 2 for more"), "{hint}");
    let rest = backend.cli_json(&[
        "devices",
        "list",
        "--pending",
        "--limit",
        "2",
        "--offset",
        "2",
    ]);
    assert_eq!(names(&rest), ["waiting-2"]);
    for (_, mut child) in waiting {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[test]
fn the_key_comes_from_a_file_or_the_environment_and_only_once() {
    let backend = Backend::start();
    let key = backend.auto_accept_key("/auto");
    let ca = backend.data_dir().join("ca.crt");
    let run = |agent: &Agent, args: &[&str], env: Option<&str>| {
        let mut cmd = agent.command();
        cmd.arg("bootstrap")
            .args(args)
            .args(["--server", &backend.device_url])
            .arg("--ca-cert")
            .arg(&ca);
        if let Some(key) = env {
            cmd.env("APIARY_BOOTSTRAP_KEY", key);
        }
        cmd.output().expect("the agent runs")
    };
    let from_file = Agent::new("key-from-file");
    let key_file = from_file.config_dir().with_file_name("bootstrap.key");
    std::fs::write(&key_file, format!("{key}\n")).expect("key file");
    let out = run(
        &from_file,
        &["--key-file", key_file.to_str().unwrap()],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let from_env = Agent::new("key-from-env");
    let out = run(&from_env, &[], Some(&key));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let twice = Agent::new("key-twice");
    let out = run(&twice, &["-k", &key], Some(&key));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("give the bootstrap key once"), "{err}");
    let out = run(&twice, &["--key-file", "/nonexistent/key"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read the bootstrap key from /nonexistent/key"),
        "{err}"
    );
    assert_eq!(
        backend
            .cli_json(&["devices", "list"])
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

#[test]
fn a_device_with_a_p384_key_from_before_p256_enrols_and_checks_in() {
    use apiary_proto::signed::DeviceKey;
    let backend = Backend::start();
    let key = backend.auto_accept_key("/legacy");
    let agent = Agent::new("legacy-curve");
    // A key made before new devices got P-256 keys: bootstrap keeps an existing device.key.
    std::fs::create_dir_all(agent.config_dir()).expect("config dir");
    let pkcs8 = DeviceKey::generate_legacy_p384_pkcs8().expect("a P-384 key");
    let pem = apiary_proto::pem::encode("PRIVATE KEY", &pkcs8);
    std::fs::write(agent.config_dir().join("device.key"), pem).expect("device.key");
    let out = backend.bootstrap_with_key(&agent, &key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public_key = DeviceKey::from_pkcs8(&pkcs8)
        .expect("loads")
        .public_key()
        .to_vec();
    assert_eq!(public_key.len(), 97, "an uncompressed P-384 point");
    let device = &backend.cli_json(&["devices", "list"])[0];
    assert_eq!(
        device["id"].as_str(),
        Some(apiary_proto::digest::device_id(&public_key).as_str()),
        "enrolled with the key it had: {device}"
    );
    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "{log}");
    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "{log}");
}
