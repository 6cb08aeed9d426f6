//! The simulated fleet: devices enrolled once, stored as JSON lines, loaded for every run.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use apiary_proto::device_api::{EnrollRequest, EnrollState, EnrollStatus, HostFacts};
use apiary_proto::signed::DeviceKey;
use serde::{Deserialize, Serialize};

use crate::client::Target;

/// One enrolled device: what it needs to check in.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimDevice {
    pub id: String,
    pub cert_pem: String,
    /// The device's key (P-256, or P-384 for a legacy fleet), PKCS#8, hex.
    pub key_pkcs8_hex: String,
}

/// Enrols `count` devices with the auto-accepting bootstrap `key`, `threads` at a time,
/// appending each to `path` as it is approved; `legacy_p384` gives them P-384 keys, as
/// devices enrolled before P-256 have.
pub fn enrol(
    target: &Target,
    key: &str,
    count: usize,
    threads: usize,
    legacy_p384: bool,
    path: &Path,
) -> Result<(), String> {
    let config = target.config(None, false)?;
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<Result<SimDevice, String>>();
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            let tx = tx.clone();
            let (next, config) = (&next, &config);
            s.spawn(move || {
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    if tx
                        .send(enrol_one(target, config, key, legacy_p384))
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut done = 0;
        for device in rx {
            let device = device?;
            let line = serde_json::to_string(&device).expect("a device serialises");
            writeln!(out, "{line}").map_err(|e| format!("{}: {e}", path.display()))?;
            done += 1;
            if done % 1000 == 0 {
                eprintln!("apiary-sim: {done} of {count} devices enrolled");
            }
        }
        Ok(())
    })
}

fn enrol_one(
    target: &Target,
    config: &std::sync::Arc<rustls::ClientConfig>,
    bootstrap_key: &str,
    legacy_p384: bool,
) -> Result<SimDevice, String> {
    let pkcs8 = if legacy_p384 {
        DeviceKey::generate_legacy_p384_pkcs8()
    } else {
        DeviceKey::generate_pkcs8()
    }
    .map_err(|_| "key generation failed")?;
    let key = DeviceKey::from_pkcs8(&pkcs8).map_err(|e| e.to_string())?;
    let id = apiary_proto::digest::device_id(key.public_key());
    let name = format!("sim-{}", &id[..12]);
    let request = EnrollRequest {
        bootstrap_key: bootstrap_key.to_string(),
        public_key: apiary_proto::hex::encode(key.public_key()),
        device_name: name.clone(),
        facts: HostFacts {
            hostname: name,
            os: "apiary-sim".into(),
            kernel: "sim".into(),
            arch: std::env::consts::ARCH.into(),
            agent_version: apiary_proto::VERSION.into(),
            network: Vec::new(),
        },
    };
    let envelope = key.sign(&request).map_err(|_| "signing failed")?;
    let answer: EnrollStatus = target.post_json(
        config,
        apiary_proto::paths::BOOTSTRAP,
        &envelope,
        "enrolment",
    )?;
    match (answer.state, answer.credentials) {
        (EnrollState::Approved, Some(credentials)) => Ok(SimDevice {
            id,
            cert_pem: credentials.certificate_pem,
            key_pkcs8_hex: apiary_proto::hex::encode(&pkcs8),
        }),
        (state, _) => Err(format!(
            "device {id} is {state:?}: the simulator needs an auto-accepting bootstrap key"
        )),
    }
}

/// The devices stored in `path`.
pub fn load(path: &Path) -> Result<Vec<SimDevice>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut devices = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        let device = serde_json::from_str(&line)
            .map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        devices.push(device);
    }
    if devices.is_empty() {
        return Err(format!(
            "{}: no devices; run `apiary-sim enrol` first",
            path.display()
        ));
    }
    Ok(devices)
}
