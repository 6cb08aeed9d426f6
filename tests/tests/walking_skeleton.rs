//! End to end: real backend, CLI and agent processes on loopback.

use std::fs;

use apiary_tests::{Agent, Backend, report_messages, wait_child, wait_for};
use serde_json::{Value, json};

const TEMPLATE: &[u8] = b"server = \"{{server}}\"\nport = {{port}}\n";

/// A templated file distribution whose command appends to a marker file and prints the result.
fn app_config(agent: &Agent, server: &str) -> Value {
    let dest = agent.root("etc/app/app.conf");
    let marker = agent.root("restarts.log");
    json!({"sets": [{
        "label": "app",
        "command": format!("echo restarted >> {}; cat {}", marker.display(), dest.display()),
        "parameters": {"server": server, "port": "8883"},
        "files": [{"source": "/configs/app.conf.tmpl", "destination": dest, "template": true}]
    }]})
}

fn rendered(server: &str) -> String {
    format!("server = \"{server}\"\nport = 8883\n")
}

#[test]
fn enrol_configure_converge_restore_and_refuse_a_tampered_bundle() {
    let backend = Backend::start();
    let agent = Agent::new("device-1");
    let id = backend.enroll(&agent, "/lab");
    for file in ["agent.json", "device.key", "device.crt", "ca.crt"] {
        assert!(
            agent.config_dir().join(file).exists(),
            "{file} stored at bootstrap"
        );
    }

    backend.upload("/configs/app.conf.tmpl", TEMPLATE);
    backend.set_config("/lab", "file_distribution", &app_config(&agent, "mqtt.lab"));
    let commit = backend.cli_json(&["commit", "-m", "app config"]);
    assert_eq!(commit["impacted_devices"], json!([id]));

    // First run: file rendered, command run, reports and applied commit visible at once.
    let (code, _) = agent.run_once();
    assert_eq!(code, 0);
    let dest = agent.root("etc/app/app.conf");
    assert_eq!(fs::read_to_string(&dest).unwrap(), rendered("mqtt.lab"));
    assert_eq!(
        fs::read_to_string(agent.root("restarts.log")).unwrap(),
        "restarted\n"
    );
    let device = backend.device(&id);
    assert_eq!(device["applied_commit"], commit["id"]);
    assert!(device["last_checkin"].is_i64());
    let reports = device["reports"].as_array().unwrap().clone();
    let command_report = reports
        .iter()
        .find(|r| r["item"] == "app: command")
        .expect("command reported");
    assert_eq!(command_report["level"], "info");
    assert!(
        command_report["output"]
            .as_str()
            .unwrap()
            .contains("server = \"mqtt.lab\""),
        "{command_report}"
    );
    assert!(
        report_messages(&device)
            .iter()
            .any(|m| m.starts_with("info file_distribution")
                && m.contains("written from /configs/app.conf.tmpl"))
    );
    let text = backend.cli_ok(&["devices", "show", &id]);
    assert!(text.contains("ran command after change"), "{text}");
    assert!(
        text.contains(&format!("applied commit: {}", commit["id"])),
        "{text}"
    );

    // Second run: nothing to do, nothing reported.
    let (code, log) = agent.run_once();
    assert_eq!(code, 0);
    assert!(log.contains("0 changed, 0 failed"), "{log}");
    // Sent once per process, and kept by the backend across check-ins without it.
    assert_eq!(
        backend.device(&id)["agent_version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        backend.device(&id)["reports"].as_array().unwrap().len(),
        reports.len()
    );

    // A manual change on the device is restored and reported as a warning.
    fs::write(&dest, "server = \"rogue\"\n").unwrap();
    let (code, _) = agent.run_once();
    assert_eq!(code, 0);
    assert_eq!(fs::read_to_string(&dest).unwrap(), rendered("mqtt.lab"));
    let newest = report_messages(&backend.device(&id));
    assert!(
        newest
            .iter()
            .any(|m| m.starts_with("warning file_distribution")
                && m.contains("was changed on the device; restored")),
        "{newest:?}"
    );

    // A bundle altered in the backend's database (no signing key there) is refused.
    backend.set_config(
        "/lab",
        "file_distribution",
        &app_config(&agent, "mqtt.next"),
    );
    let next = backend.cli_json(&["commit", "-m", "next server"]);
    tamper_current_bundle(&backend, &id, "mqtt.next", "mqtt.attacker");
    let (code, log) = agent.run_once();
    assert_eq!(code, 2, "{log}");
    assert_eq!(
        fs::read_to_string(&dest).unwrap(),
        rendered("mqtt.lab"),
        "the last good bundle stays in force"
    );
    let device = backend.device(&id);
    let rejection = &device["reports"][0];
    assert_eq!(rejection["level"], "error");
    assert_eq!(rejection["policy"], "bundle");
    let rollout = &backend.cli_json(&["commits", "show", &next["id"].to_string()])["rollout"];
    assert_eq!(rollout["devices"][0]["state"], "failed", "{rollout}");
    assert_eq!(rollout["devices"][0]["failed_policies"], json!(["bundle"]));
    assert!(
        rejection["message"]
            .as_str()
            .unwrap()
            .contains("signature does not match"),
        "{rejection}"
    );

    // The next genuine bundle is accepted again.
    backend.set_config(
        "/lab",
        "file_distribution",
        &app_config(&agent, "mqtt.fixed"),
    );
    let fixed = backend.cli_json(&["commit", "-m", "fixed"]);
    let (code, _) = agent.run_once();
    assert_eq!(code, 0);
    assert_eq!(fs::read_to_string(&dest).unwrap(), rendered("mqtt.fixed"));
    assert_eq!(backend.device(&id)["applied_commit"], fixed["id"]);
}

/// Rewrites the payload of the device's newest bundle in the SQLite file, keeping its signature.
fn tamper_current_bundle(backend: &Backend, device: &str, from: &str, to: &str) {
    let db = rusqlite::Connection::open(backend.data_dir().join("apiary.db")).unwrap();
    let (serial, envelope): (i64, String) = db
        .query_row(
            "SELECT serial, envelope FROM bundles WHERE device_id = ?1 ORDER BY serial DESC LIMIT 1",
            [device],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let mut env: Value = serde_json::from_str(&envelope).unwrap();
    let payload = env["payload"].as_str().unwrap().replace(from, to);
    assert!(payload.contains(to), "the bundle carried {from}");
    env["payload"] = Value::String(payload);
    db.execute(
        "UPDATE bundles SET envelope = ?1 WHERE device_id = ?2 AND serial = ?3",
        rusqlite::params![env.to_string(), device, serial],
    )
    .unwrap();
}

#[test]
fn reports_made_while_the_backend_is_down_arrive_after_it_returns() {
    let mut backend = Backend::start();
    let agent = Agent::new("offline-1");
    let id = backend.enroll(&agent, "/field");
    backend.upload("/configs/app.conf.tmpl", TEMPLATE);
    backend.set_config(
        "/field",
        "file_distribution",
        &app_config(&agent, "mqtt.field"),
    );
    backend.cli_ok(&["commit", "-m", "field config"]);
    assert_eq!(agent.run_once().0, 0);

    backend.stop();
    let dest = agent.root("etc/app/app.conf");
    fs::write(&dest, "tampered while offline\n").unwrap();
    let (code, log) = agent.run_once();
    assert_eq!(code, 1, "offline is reported in the exit status: {log}");
    assert_eq!(
        fs::read_to_string(&dest).unwrap(),
        rendered("mqtt.field"),
        "converged from the last good bundle"
    );

    backend.restart();
    assert_eq!(agent.run_once().0, 0);
    let messages = report_messages(&backend.device(&id));
    assert!(
        messages
            .iter()
            .any(|m| m.contains("was changed on the device; restored")),
        "{messages:?}"
    );
}

#[test]
fn start_converges_at_once_and_stops_cleanly_on_sigterm() {
    let backend = Backend::start();
    let agent = Agent::new("looping-1");
    backend.enroll(&agent, "/loop");
    backend.upload("/configs/app.conf.tmpl", TEMPLATE);
    backend.set_config(
        "/loop",
        "file_distribution",
        &app_config(&agent, "mqtt.loop"),
    );
    backend.set_config("/loop", "settings", &json!({"interval_seconds": 3600}));
    backend.cli_ok(&["commit", "-m", "loop config"]);

    let mut child = agent.command().arg("start").spawn().unwrap();
    let dest = agent.root("etc/app/app.conf");
    wait_for(|| {
        fs::read_to_string(&dest)
            .ok()
            .filter(|t| *t == rendered("mqtt.loop"))
    });
    // SAFETY: signalling our own child process.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = wait_child(&mut child);
    assert!(
        status.success(),
        "SIGTERM ends the loop cleanly: {status:?}"
    );
}

#[test]
fn auto_accept_keys_enrol_without_an_operator_and_revoked_keys_do_not() {
    let backend = Backend::start();
    let key = backend.auto_accept_key("/auto");
    let agent = Agent::new("auto-1");
    let ca = backend.data_dir().join("ca.crt");
    let out = backend.bootstrap_with_key(&agent, &key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let devices = backend.cli_json(&["devices", "list"]);
    assert_eq!(devices[0]["status"], "approved");
    assert_eq!(devices[0]["group"], "/auto");
    assert_eq!(
        agent.run_once().0,
        0,
        "an approved device checks in with an empty bundle"
    );

    let keys = backend.cli_json(&["bootstrap-keys", "list"]);
    let key_id = keys[0]["id"].to_string();
    backend.cli_ok(&["bootstrap-keys", "revoke", &key_id]);
    let late = Agent::new("late-1");
    let out = late
        .command()
        .args(["bootstrap", "-k", &key, "--server", &backend.device_url])
        .arg("--ca-cert")
        .arg(&ca)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bootstrap key is unknown or revoked"), "{err}");
    assert!(!late.config_dir().join("agent.json").exists());
}

#[test]
fn bad_operator_input_is_refused_with_a_message_and_changes_nothing() {
    let backend = Backend::start();
    let agent = Agent::new("strict-1");
    let id = backend.enroll(&agent, "/strict");

    let no_token = std::process::Command::new(apiary_tests::bin("apiary"))
        .args(["devices", "list"])
        .env("APIARY_SERVER", &backend.operator_url)
        .env("APIARY_TOKEN", "apiary_wrong")
        .output()
        .unwrap();
    assert!(!no_token.status.success());
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("invalid API token"));

    let refused = |args: &[&str], want: &str| {
        let out = backend.cli(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(err.contains(want), "{args:?}: {err}");
    };
    let file = backend.dir.path().join("p.json");
    let path = file.to_str().unwrap();
    fs::write(&file, "{\"interval_seconds\": ").unwrap();
    refused(
        &["config", "set", "/strict", "settings", "--file", path],
        "is not valid JSON",
    );
    fs::write(&file, "{\"interval\": 60}").unwrap();
    refused(
        &["config", "set", "/strict", "settings", "--file", path],
        "unknown field `interval`",
    );
    refused(
        &["config", "set", "/strict", "firmware", "--file", path],
        "unknown policy \"firmware\"",
    );
    refused(
        &["config", "set", "/nowhere", "settings", "--file", path],
        "no such node /nowhere",
    );
    refused(
        &["files", "upload", path, "/a/../b"],
        "without . or .. segments",
    );

    // A commit whose bundle cannot compile is refused whole; the draft waits for a fix.
    backend.set_config("/strict", "file_distribution", &app_config(&agent, "x"));
    refused(
        &["commit", "-m", "broken"],
        "/configs/app.conf.tmpl, which is not in the file manager",
    );
    let config = backend.cli_json(&["config", "show", "/strict"]);
    assert!(
        config["policies"]["file_distribution"]["draft"].is_object(),
        "{config}"
    );
    assert!(
        config["policies"]["file_distribution"]
            .get("active")
            .is_none()
    );
    assert_eq!(backend.cli_json(&["commits", "list"]), json!([]));
    refused(&["devices", "approve", &id], "already approved");
}
