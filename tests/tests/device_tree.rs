//! The device tree end to end: groups, moves, and what devices converge to afterwards.

use std::fs;

use apiary_tests::{Agent, Backend};
use serde_json::{Value, json};

fn site_config(agent: &Agent, site: &str) -> Value {
    json!({"sets": [{
        "label": "site",
        "parameters": {"site": site},
        "files": [{"source": "/configs/site.tmpl", "destination": agent.root("etc/site"), "template": true}]
    }]})
}

#[test]
fn moving_a_device_changes_its_files_at_its_next_run() {
    let backend = Backend::start();
    let agent = Agent::new("mover-1");
    let id = backend.enroll(&agent, "/fleet/oslo");
    backend.cli_ok(&["groups", "create", "/fleet/bergen"]);
    backend.upload("/configs/site.tmpl", b"site={{site}}\n");
    backend.set_config(
        "/fleet/oslo",
        "file_distribution",
        &site_config(&agent, "oslo"),
    );
    backend.set_config(
        "/fleet/bergen",
        "file_distribution",
        &site_config(&agent, "bergen"),
    );
    backend.cli_ok(&["commit", "-m", "sites"]);
    assert_eq!(agent.run_once().0, 0);
    let file = agent.root("etc/site");
    assert_eq!(fs::read_to_string(&file).unwrap(), "site=oslo\n");

    backend.cli_ok(&["devices", "move", "mover-1", "/fleet/bergen"]);
    assert_eq!(agent.run_once().0, 0);
    assert_eq!(fs::read_to_string(&file).unwrap(), "site=bergen\n");
    assert_eq!(backend.device(&id)["group"], "/fleet/bergen");

    // Renaming the group keeps its configuration with it: nothing changes on the device.
    backend.cli_ok(&["groups", "rename", "/fleet/bergen", "/fleet/west"]);
    let (_, log) = agent.run_once();
    assert!(log.contains("0 changed, 0 failed"), "{log}");
    assert_eq!(backend.device(&id)["group"], "/fleet/west");
    let groups = backend.cli_json(&["groups", "list"]);
    let west = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["path"] == "/fleet/west")
        .unwrap();
    assert_eq!(west["devices"], 1);

    // Unassigned devices inherit nothing: the file stays as last written, no longer managed.
    backend.cli_ok(&["devices", "move", &id, "unassigned"]);
    assert_eq!(agent.run_once().0, 0);
    assert_eq!(backend.device(&id)["group"], Value::Null);
}

#[test]
fn tree_changes_that_cannot_apply_are_refused_and_change_nothing() {
    let backend = Backend::start();
    let agent = Agent::new("stay-1");
    let id = backend.enroll(&agent, "/here");
    backend.cli_ok(&["groups", "create", "/broken"]);
    // A committed configuration that cannot compile for new members (its file was never
    // uploaded under that name) is only possible on an empty group: commit checks members.
    backend.set_config("/broken", "file_distribution", &site_config(&agent, "x"));
    backend.cli_ok(&["commit", "-m", "config for an empty group"]);

    let refused = |args: &[&str], want: &str| {
        let out = backend.cli(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(err.contains(want), "{args:?}: {err}");
    };
    refused(
        &["devices", "move", &id, "/broken"],
        "not in the file manager",
    );
    assert_eq!(backend.device(&id)["group"], "/here", "the device stayed");
    refused(
        &["groups", "move", "/here", "/broken"],
        "not in the file manager",
    );
    assert!(
        backend
            .cli_json(&["groups", "list"])
            .to_string()
            .contains("\"/here\""),
        "the group stayed"
    );
    refused(
        &["groups", "delete", "/here"],
        "only empty groups can be deleted",
    );
    refused(&["groups", "create", "/here"], "already exists");
    refused(&["groups", "rename", "/", "/top"], "cannot be renamed");
    refused(&["devices", "move", &id, "/nowhere"], "no group /nowhere");
}

#[test]
fn a_three_level_tree_gives_each_branch_its_own_values() {
    let backend = Backend::start();
    let oslo = Agent::new("oslo-1");
    let bergen = Agent::new("bergen-1");
    let lab = Agent::new("lab-1");
    backend.enroll(&oslo, "/prod/norway/oslo");
    backend.enroll(&bergen, "/prod/norway/bergen");
    let lab_id = backend.enroll(&lab, "/lab");
    backend.upload("/configs/broker.tmpl", b"broker={{broker}}\n");
    let out = tempfile::tempdir().unwrap();
    let dest = |name: &str| out.path().join(name);
    let set = |label: &str, broker: &str, file: &str| {
        json!({"label": label, "parameters": {"broker": broker},
               "files": [{"source": "/configs/broker.tmpl", "destination": dest(file), "template": true}]})
    };

    // "/" is the fleet default; /prod/norway/bergen breaks inheritance with its own broker;
    // oslo-1 extends what it inherits with one more set of its own.
    backend.set_config(
        "/",
        "file_distribution",
        &json!({"sets": [set("broker", "mqtt.fleet", "fleet.conf")]}),
    );
    backend.set_config(
        "/prod/norway/bergen",
        "file_distribution",
        &json!({"sets": [set("broker", "mqtt.bergen", "bergen.conf")]}),
    );
    let oslo_id = backend.device("oslo-1")["id"].as_str().unwrap().to_string();
    backend.set_config(
        &oslo_id,
        "file_distribution",
        &json!({"merge": "extend", "sets": [set("extra", "mqtt.oslo-extra", "oslo-extra.conf")]}),
    );
    backend.cli_ok(&["commit", "-m", "three levels"]);

    assert_eq!(bergen.run_once().0, 0);
    assert_eq!(
        fs::read_to_string(dest("bergen.conf")).unwrap(),
        "broker=mqtt.bergen\n"
    );
    assert!(
        !dest("fleet.conf").exists(),
        "bergen broke inheritance from /"
    );
    assert_eq!(oslo.run_once().0, 0);
    assert_eq!(
        fs::read_to_string(dest("fleet.conf")).unwrap(),
        "broker=mqtt.fleet\n"
    );
    assert_eq!(
        fs::read_to_string(dest("oslo-extra.conf")).unwrap(),
        "broker=mqtt.oslo-extra\n"
    );
    fs::remove_file(dest("fleet.conf")).unwrap();
    assert_eq!(lab.run_once().0, 0);
    assert_eq!(
        fs::read_to_string(dest("fleet.conf")).unwrap(),
        "broker=mqtt.fleet\n"
    );
    let lab_reports = backend.device(&lab_id)["reports"].to_string();
    assert!(
        !lab_reports.contains("oslo-extra"),
        "the extension is oslo-1's alone: {lab_reports}"
    );

    let effective = backend.cli_json(&["config", "show", "oslo-1", "--effective"]);
    let fd = &effective["file_distribution"];
    assert_eq!(fd["from"], "/");
    assert_eq!(fd["items_from"], json!(["/", oslo_id]));
    let bergen_group = backend.cli_json(&["config", "show", "/prod/norway/bergen", "--effective"]);
    assert_eq!(
        bergen_group["file_distribution"]["from"],
        "/prod/norway/bergen"
    );
    let text = backend.cli_ok(&["config", "show", "oslo-1", "--effective"]);
    assert!(text.contains(&format!("sets[1] from {oslo_id}")), "{text}");
}
