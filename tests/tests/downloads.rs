//! Large file downloads: a cut transfer resumes with `Range`; content that never matches its
//! digest is given up after bounded retries and never installed.

//!
//! Each runs with the agent on the host and, like the other system policies, inside the
//! Debian and busybox roots (ignored by default; `scripts/test` runs them).

use std::fs;
use std::path::PathBuf;

use apiary_tests::relay::CutRelay;
use apiary_tests::rootfs::RootFs;
use apiary_tests::{Agent, Backend, report_messages};
use serde_json::json;

/// A device: the agent, the root it lives in (if any), and the file's destination as the
/// bundle names it and as the test reads it.
struct Device {
    agent: Agent,
    _root: Option<RootFs>,
    dest: String,
    dest_on_host: PathBuf,
}

fn device(name: &str, root: Option<RootFs>) -> Device {
    match root {
        None => {
            let agent = Agent::new(name);
            let dest_on_host = agent.root("opt/blob.bin");
            Device {
                dest: dest_on_host.to_str().unwrap().to_string(),
                agent,
                _root: None,
                dest_on_host,
            }
        }
        Some(root) => Device {
            agent: Agent::in_root(name, &root),
            dest: "/opt/blob.bin".into(),
            dest_on_host: root.path("/opt/blob.bin"),
            _root: Some(root),
        },
    }
}

fn content() -> Vec<u8> {
    (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

#[test]
fn a_download_cut_halfway_resumes_and_completes() {
    cut_download(None);
}

#[test]
#[ignore = "needs tests/rootfs/build, cross/build and root; scripts/test runs it"]
fn a_download_cut_halfway_resumes_and_completes_on_debian() {
    cut_download(Some(RootFs::debian()));
}

#[test]
#[ignore = "needs tests/rootfs/build, cross/build and root; scripts/test runs it"]
fn a_download_cut_halfway_resumes_and_completes_on_busybox() {
    cut_download(Some(RootFs::busybox()));
}

#[test]
fn content_that_never_matches_is_given_up_after_bounded_retries() {
    never_matching(None);
}

#[test]
#[ignore = "needs tests/rootfs/build, cross/build and root; scripts/test runs it"]
fn content_that_never_matches_is_given_up_after_bounded_retries_on_debian() {
    never_matching(Some(RootFs::debian()));
}

#[test]
#[ignore = "needs tests/rootfs/build, cross/build and root; scripts/test runs it"]
fn content_that_never_matches_is_given_up_after_bounded_retries_on_busybox() {
    never_matching(Some(RootFs::busybox()));
}

fn cut_download(root: Option<RootFs>) {
    let backend = Backend::start();
    let relay = CutRelay::start(backend.device_url.trim_start_matches("https://"), 300_000);
    let Device {
        agent,
        _root,
        dest,
        dest_on_host,
    } = device("flaky-1", root);
    let id = backend.enroll_via(
        &agent,
        "/flaky",
        &format!("https://127.0.0.1:{}", relay.port),
    );
    let data = content();
    backend.upload("/firmware/blob.bin", &data);
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
        fs::read(&dest_on_host).unwrap(),
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

fn never_matching(root: Option<RootFs>) {
    let backend = Backend::start();
    let Device {
        agent,
        _root,
        dest,
        dest_on_host,
    } = device("corrupt-1", root);
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
    backend.set_config(
        "/corrupt",
        "file_distribution",
        &json!({"sets": [{"label": "blob", "files": [{"source": "/firmware/blob.bin", "destination": dest}]}]}),
    );
    backend.cli_ok(&["commit", "-m", "blob"]);

    let (code, log) = agent.run_once();
    assert_eq!(code, 2, "a failed item shows in the exit status: {log}");
    assert!(
        !dest_on_host.exists(),
        "nothing that failed its digest is installed"
    );
    let leftovers: Vec<_> = fs::read_dir(dest_on_host.parent().unwrap())
        .unwrap()
        .collect();
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
