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
