//! Large file downloads: a cut transfer resumes with `Range`; content that never matches its
//! digest is given up after bounded retries and never installed.

use std::fs;

use apiary_tests::relay::CutRelay;
use apiary_tests::{Agent, Backend, report_messages};
use serde_json::json;

fn content() -> Vec<u8> {
    (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

#[test]
fn a_download_cut_halfway_resumes_and_completes() {
    let backend = Backend::start();
    let relay = CutRelay::start(backend.device_url.trim_start_matches("https://"), 300_000);
    let agent = Agent::new("flaky-1");
    let id = backend.enroll_via(
        &agent,
        "/flaky",
        &format!("https://127.0.0.1:{}", relay.port),
    );
    let data = content();
    backend.upload("/firmware/blob.bin", &data);
    let dest = agent.root("opt/blob.bin");
    backend.set_config(
        "/flaky",
        "file_distribution",
        &json!({"sets": [{"label": "blob", "files": [{"source": "/firmware/blob.bin", "destination": dest}]}]}),
    );
    backend.cli_ok(&["commit", "-m", "blob"]);

    let before = relay.connections();
    let (code, log) = agent.run_once();
    assert_eq!(code, 0, "{log}");
    assert!(relay.has_cut(), "the relay cut the transfer");
    assert!(
        relay.connections() > before + 1,
        "the agent reconnected to resume"
    );
    assert_eq!(
        fs::read(&dest).unwrap(),
        data,
        "complete and exact after the resume"
    );
    let messages = report_messages(&backend.device(&id));
    assert!(
        messages
            .iter()
            .any(|m| m.contains("written from /firmware/blob.bin")),
        "{messages:?}"
    );
}

#[test]
fn content_that_never_matches_is_given_up_after_bounded_retries() {
    let backend = Backend::start();
    let agent = Agent::new("corrupt-1");
    let id = backend.enroll(&agent, "/corrupt");
    let data = content();
    backend.upload("/firmware/blob.bin", &data);
    // Damage the stored blob: the backend now serves bytes that do not match their name.
    let sha = backend.cli_json(&["files", "list"])[0]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = backend.data_dir().join("files").join(&sha[..2]).join(&sha);
    let mut damaged = data.clone();
    damaged[500_000] ^= 0xff;
    fs::write(&blob, &damaged).unwrap();
    let dest = agent.root("opt/blob.bin");
    backend.set_config(
        "/corrupt",
        "file_distribution",
        &json!({"sets": [{"label": "blob", "files": [{"source": "/firmware/blob.bin", "destination": dest}]}]}),
    );
    backend.cli_ok(&["commit", "-m", "blob"]);

    let (code, log) = agent.run_once();
    assert_eq!(code, 2, "a failed item shows in the exit status: {log}");
    assert!(
        !dest.exists(),
        "nothing that failed its digest is installed"
    );
    let leftovers: Vec<_> = fs::read_dir(dest.parent().unwrap()).unwrap().collect();
    assert!(
        leftovers.is_empty(),
        "no temporary file is left behind: {leftovers:?}"
    );
    let messages = report_messages(&backend.device(&id));
    let failure = messages
        .iter()
        .find(|m| m.starts_with("error file_distribution"))
        .expect("reported");
    assert!(failure.contains("failed after 4 attempts"), "{failure}");
    assert!(failure.contains("not installed"), "{failure}");
}
