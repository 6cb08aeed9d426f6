//! Offline bundles: `apiary bundles export` writes a device's signed bundle and its files as
//! one tar archive; `apiary-agent apply` runs in a network namespace with no route anywhere
//! (air-gapped) and converges from it; the reports made there arrive at the next check-in.
//! A bundle for another device, a tampered signature, a tampered file, an older serial and
//! a member the format does not know are each refused and change nothing.
//!
//! Ignored by default: the namespace needs root. `scripts/test` runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

use apiary_tests::netns::NetNs;
use apiary_tests::{Agent, Backend, report_messages};
use serde_json::json;

const CONF: &[u8] = b"mode=offline\n";

/// Runs `apiary-agent apply FILE` in `ns` (no network): exit code and log.
fn apply(ns: &NetNs, agent: &Agent, file: &Path) -> (i32, String) {
    let mut cmd = agent.command();
    cmd.arg("apply").arg(file);
    let out = ns.wrap(&cmd).output().expect("agent runs");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    eprint!("{log}");
    (out.status.code().unwrap_or(-1), log)
}

fn export(backend: &Backend, device: &str, out: &Path) {
    backend.cli_ok(&["bundles", "export", device, "-o", out.to_str().unwrap()]);
}

fn tar_list(file: &Path) -> Vec<String> {
    let out = Command::new("tar").arg("-tf").arg(file).output().unwrap();
    assert!(out.status.success(), "tar reads it: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Flips one byte at `at` (from the start of the member named `member`'s content).
fn flip(archive: &Path, member: &str, at: usize) -> PathBuf {
    let mut bytes = std::fs::read(archive).unwrap();
    let header = bytes
        .chunks(512)
        .position(|h| h.starts_with(member.as_bytes()))
        .expect("member present");
    bytes[(header + 1) * 512 + at] ^= 0x20;
    let out = archive.with_extension("flipped");
    std::fs::write(&out, bytes).unwrap();
    out
}

#[test]
#[ignore = "needs root (a network namespace); scripts/test runs it"]
fn an_air_gapped_device_applies_an_exported_bundle() {
    let backend = Backend::start();
    let agent = Agent::new("air-gapped");
    let id = backend.enroll(&agent, "/site");
    let other = Agent::new("elsewhere");
    let other_id = backend.enroll(&other, "/site");
    let dest = agent.root("srv/app.conf");
    let rendered = agent.root("srv/motd");
    backend.upload("/offline/app.conf", CONF);
    backend.upload("/offline/motd.tmpl", b"site {{site}}\n");
    backend.cli_ok(&["params", "set", "/site", "site", "north"]);
    backend.set_config(
        "/site",
        "file_distribution",
        &json!({"sets": [{"label": "app", "files": [
            {"source": "/offline/app.conf", "destination": dest.to_str().unwrap()},
            {"source": "/offline/motd.tmpl", "destination": rendered.to_str().unwrap(), "template": true}
        ]}]}),
    );
    backend.cli_ok(&["commit", "-m", "offline"]);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("air-gapped.tar");
    export(&backend, &id, &archive);
    let members = tar_list(&archive);
    assert_eq!(members.len(), 3, "{members:?}");
    assert_eq!(members[0], "bundle.json");
    assert!(members[1..].iter().all(|m| m.starts_with("files/")));
    let audit = backend.cli_ok(&["audit", "--action", "bundle.export"]);
    assert!(audit.contains(&id[..12]) || audit.contains(&id), "{audit}");

    let ns = NetNs::isolated();
    // No route: the agent cannot reach the backend from there.
    let mut cmd = agent.command();
    cmd.arg("run-once");
    let out = ns.wrap(&cmd).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "offline in the namespace");

    // Another device's bundle, a tampered signature, a file changed in the archive, and a
    // member the format does not know: refused, nothing written.
    let foreign = dir.path().join("elsewhere.tar");
    export(&backend, &other_id, &foreign);
    let (code, log) = apply(&ns, &agent, &foreign);
    assert_eq!(code, 2, "{log}");
    assert!(
        log.contains("bundle is for device") && log.contains(&other_id),
        "{log}"
    );
    // Same length, so the archive stays well-formed: only the signature can tell.
    let forged = dir.path().join("forged.tar");
    let bytes = std::fs::read(&archive).unwrap();
    let at = bytes
        .windows(5)
        .position(|w| w == b"north")
        .expect("the parameter is in the bundle");
    let mut tampered = bytes.clone();
    tampered[at..at + 5].copy_from_slice(b"south");
    std::fs::write(&forged, tampered).unwrap();
    let (code, log) = apply(&ns, &agent, &forged);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("signature"), "{log}");
    assert!(!dest.exists() && !rendered.exists());
    let conf_member = members[1..]
        .iter()
        .find(|m| m.ends_with(&apiary_proto::digest::sha256_hex(CONF)))
        .unwrap();
    let damaged = flip(&archive, conf_member, 0);
    let (code, log) = apply(&ns, &agent, &damaged);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("has sha256"), "{log}");
    assert!(!dest.exists(), "a damaged file is never installed");
    let mut odd = std::fs::read(&archive).unwrap();
    odd[..11].copy_from_slice(b"bundle.jsoX");
    let odd_path = dir.path().join("odd.tar");
    std::fs::write(&odd_path, odd).unwrap();
    let (code, log) = apply(&ns, &agent, &odd_path);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("odd.tar: member 0"), "{log}");

    // The real one converges with no network at all.
    let (code, log) = apply(&ns, &agent, &archive);
    assert_eq!(code, 0, "{log}");
    assert_eq!(std::fs::read(&dest).unwrap(), CONF);
    assert_eq!(std::fs::read_to_string(&rendered).unwrap(), "site north\n");
    assert!(log.contains("applied offline"), "{log}");

    // An older bundle after a newer one: refused as a rollback.
    backend.upload("/offline/app.conf", b"mode=newer\n");
    backend.set_config(
        "/site",
        "file_distribution",
        &json!({"sets": [{"label": "app", "files": [
            {"source": "/offline/app.conf", "destination": dest.to_str().unwrap(), "mode": "0640"}
        ]}]}),
    );
    backend.cli_ok(&["commit", "-m", "newer"]);
    let newer = dir.path().join("newer.tar");
    export(&backend, &id, &newer);
    assert_eq!(apply(&ns, &agent, &newer).0, 0);
    assert_eq!(std::fs::read(&dest).unwrap(), b"mode=newer\n");
    let (code, log) = apply(&ns, &agent, &archive);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("serial"), "{log}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"mode=newer\n");

    // Back on the network: what happened offline reaches the backend.
    let (code, log) = agent.run_once();
    assert!(code == 0 || code == 2, "{log}");
    let shown = backend.cli_json(&["devices", "show", &id]);
    let messages = report_messages(&shown).join("\n");
    assert!(
        messages.contains("written from /offline/app.conf"),
        "{messages}"
    );
    assert!(messages.contains("bundle rejected"), "{messages}");
}
