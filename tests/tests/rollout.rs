//! Rollout tracking: each device a commit touches goes from pending to converged or failed.

use apiary_tests::{Agent, Backend};
use serde_json::{Value, json};

fn config(agent: &Agent, template_key: &str) -> Value {
    json!({"sets": [{
        "label": "app",
        "parameters": {template_key: "value"},
        "files": [{"source": "/configs/app.tmpl", "destination": agent.root("etc/app"), "template": true}]
    }]})
}

fn rollout(backend: &Backend, commit: &Value) -> Value {
    backend.cli_json(&["commits", "show", &commit["id"].to_string()])["rollout"].clone()
}

fn state_of<'a>(rollout: &'a Value, device: &str) -> &'a Value {
    &rollout["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_id"] == device)
        .unwrap()["state"]
}

#[test]
fn devices_move_from_pending_to_converged_or_failed() {
    let backend = Backend::start();
    let good = Agent::new("good-1");
    let bad = Agent::new("bad-1");
    let good_id = backend.enroll(&good, "/plant");
    let bad_id = backend.enroll(&bad, "/plant");
    backend.upload("/configs/app.tmpl", b"key={{key}}\n");
    backend.set_config("/plant", "file_distribution", &config(&good, "key"));
    // The bad device's own document leaves {{key}} without a value: its policy fails.
    backend.set_config(&bad_id, "file_distribution", &config(&bad, "other"));
    let commit = backend.cli_json(&["commit", "-m", "app"]);

    let r = rollout(&backend, &commit);
    assert_eq!(r["counts"]["pending"], 2, "{r}");
    assert_eq!(r["counts"]["converged"], 0);

    assert_eq!(good.run_once().0, 0);
    assert_eq!(
        bad.run_once().0,
        2,
        "a failing policy shows in the exit status"
    );
    let r = rollout(&backend, &commit);
    assert_eq!(state_of(&r, &good_id), "converged", "{r}");
    assert_eq!(state_of(&r, &bad_id), "failed", "{r}");
    let bad_entry = r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_id"] == bad_id)
        .unwrap();
    assert_eq!(bad_entry["failed_policies"], json!(["file_distribution"]));
    let text = backend.cli_ok(&["commits", "show", &commit["id"].to_string()]);
    assert!(
        text.contains("rollout: 1 converged, 1 failed, 0 pending, 0 superseded"),
        "{text}"
    );
    assert!(text.contains("bad-1 (file_distribution)"), "{text}");

    // Fixing the device's configuration converges it under the new commit.
    backend.set_config(&bad_id, "file_distribution", &config(&bad, "key"));
    let fix = backend.cli_json(&["commit", "-m", "fix bad-1"]);
    assert_eq!(bad.run_once().0, 0);
    assert_eq!(state_of(&rollout(&backend, &fix), &bad_id), "converged");

    // A bundle replaced before the device ever applied it is superseded, not pending forever.
    backend.set_config("/plant", "settings", &json!({"interval_seconds": 600}));
    let skipped = backend.cli_json(&["commit", "-m", "slower"]);
    backend.set_config("/plant", "settings", &json!({"interval_seconds": 900}));
    let latest = backend.cli_json(&["commit", "-m", "slower still"]);
    assert_eq!(good.run_once().0, 0);
    assert_eq!(
        state_of(&rollout(&backend, &skipped), &good_id),
        "superseded"
    );
    assert_eq!(state_of(&rollout(&backend, &latest), &good_id), "converged");
    assert_eq!(state_of(&rollout(&backend, &latest), &bad_id), "pending");
}
