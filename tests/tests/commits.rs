//! Drafts, commit history, revert and the audit log, end to end.

use std::fs;

use apiary_tests::{Agent, Backend};
use serde_json::{Value, json};

fn motd(agent: &Agent, text: &str) -> Value {
    json!({"sets": [{
        "label": "motd",
        "parameters": {"text": text},
        "files": [{"source": "/configs/motd.tmpl", "destination": agent.root("etc/motd"), "template": true}]
    }]})
}

#[test]
fn drafts_can_be_discarded_and_commits_shown_and_reverted() {
    let backend = Backend::start();
    let agent = Agent::new("history-1");
    backend.enroll(&agent, "/office");
    backend.upload("/configs/motd.tmpl", b"{{text}}\n");
    let file = agent.root("etc/motd");

    backend.set_config("/office", "file_distribution", &motd(&agent, "hello"));
    // A dry run says which devices would change and how, and commits nothing.
    let dry = backend.cli_json(&["commit", "-m", "greet", "--dry-run"]);
    assert_eq!(dry["id"], Value::Null);
    assert_eq!(dry["impacted"][0]["name"], "history-1");
    assert_eq!(dry["impacted"][0]["policies"], json!(["file_distribution"]));
    let text = backend.cli_ok(&["commit", "-m", "greet", "--dry-run"]);
    assert!(text.contains("history-1: file_distribution"), "{text}");
    assert_eq!(backend.cli_json(&["commits", "list"]), json!([]));
    let first = backend.cli_json(&["commit", "-m", "greet"]);
    backend.set_config("/office", "file_distribution", &motd(&agent, "goodbye"));
    let second = backend.cli_json(&["commit", "-m", "part"]);
    assert_eq!(agent.run_once().0, 0);
    assert_eq!(fs::read_to_string(&file).unwrap(), "goodbye\n");

    // A draft that is thrown away never reaches a device.
    backend.set_config("/office", "file_distribution", &motd(&agent, "typo"));
    assert_eq!(
        backend
            .cli_json(&["drafts", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let out = backend.cli(&["drafts", "discard", "/office"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 draft(s) discarded"));
    assert_eq!(backend.cli_json(&["drafts", "list"]), json!([]));
    let nothing = backend.cli(&["commit", "-m", "empty"]);
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("nothing to commit"));

    // History: who, when, what, and a diff.
    let commits = backend.cli_json(&["commits", "list"]);
    assert_eq!(commits[0]["id"], second["id"]);
    assert_eq!(commits[1]["message"], "greet");
    let shown = backend.cli_ok(&["commits", "show", &second["id"].to_string()]);
    assert!(shown.contains("by admin"), "{shown}");
    let line = |mark: char, text: &str| {
        shown
            .lines()
            .any(|l| l.starts_with(mark) && l.trim_start_matches(mark).trim() == text)
    };
    assert!(line('-', r#""text": "hello""#), "{shown}");
    assert!(line('+', r#""text": "goodbye""#), "{shown}");

    // Revert makes a new commit restoring the earlier state; the device follows.
    let reverted = backend.cli_json(&["commits", "revert", &second["id"].to_string()]);
    assert_eq!(
        reverted["message"],
        format!("Revert commit {}: part", second["id"])
    );
    assert!(reverted["id"].as_i64().unwrap() > second["id"].as_i64().unwrap());
    assert_eq!(agent.run_once().0, 0);
    assert_eq!(fs::read_to_string(&file).unwrap(), "hello\n");

    // Reverting the very first commit unsets the policy again.
    let back = backend.cli_json(&["commits", "revert", &first["id"].to_string()]);
    assert_eq!(back["changes"][0]["after"], Value::Null);

    // Pending drafts block a revert rather than being swept into it.
    backend.set_config("/office", "settings", &json!({"interval_seconds": 60}));
    let blocked = backend.cli(&["commits", "revert", &second["id"].to_string()]);
    assert!(String::from_utf8_lossy(&blocked.stderr).contains("uncommitted drafts"));
    let missing = backend.cli(&["commits", "show", "999"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no commit 999"));

    // The audit log answers who did what, filtered.
    let reverts = backend.cli_json(&["audit", "--action", "commit.revert"]);
    assert_eq!(reverts.as_array().unwrap().len(), 2);
    assert_eq!(reverts[0]["actor"], "admin");
    let office = backend.cli_json(&["audit", "--target", "/office", "--since", "1h"]);
    assert!(
        office
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["target"].as_str().unwrap().starts_with("/office"))
    );
    assert!(
        office
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "config.set")
    );
    let text = backend.cli_ok(&["audit", "--limit", "3"]);
    assert_eq!(
        text.lines().count(),
        4,
        "a header and three entries: {text}"
    );
}
