//! The desired-state bundle: what one device must converge to, signed by the backend.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::signed::{self, Envelope, SignatureError};
use crate::system::{ConnectivityWatchdog, Ntp, Passwords, ProcessWatch, SshKeys, Users};

/// Bundle format understood by this agent.
pub const FORMAT: u32 = 1;

/// Default seconds between check-ins when no settings policy says otherwise.
pub const DEFAULT_INTERVAL_SECONDS: u64 = 300;

/// The signed payload of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// Payload format; an agent refuses formats it does not know.
    pub format: u32,
    /// The only device that may apply this bundle.
    pub device_id: String,
    /// Increases with every new bundle for this device; older bundles are refused.
    pub serial: u64,
    /// The configuration commit this bundle was compiled from.
    pub commit_id: u64,
    /// Unix seconds at which the backend compiled it.
    pub issued_at: u64,
    /// Random, in bundles that carry secrets: their hash then says nothing about a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// The desired state.
    pub policies: Policies,
}

/// Every policy a bundle may carry; an absent policy is not managed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policies {
    /// Values for `$(key)` in policy fields and `{{key}}` in templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Parameters>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Settings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_distribution: Option<FileDistribution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Users>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_keys: Option<SshKeys>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passwords: Option<Passwords>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ntp: Option<Ntp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_watch: Option<ProcessWatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectivity_watchdog: Option<ConnectivityWatchdog>,
}

/// The parameters in force on a device, after inheritance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameters {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    /// Like `values`, but the agent never lets them into reports or logs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
}

/// Agent behaviour settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Seconds between check-ins (jitter is added on the device).
    pub interval_seconds: u64,
    /// Whether policy reports are sent to the backend.
    pub reports: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            interval_seconds: DEFAULT_INTERVAL_SECONDS,
            reports: true,
        }
    }
}

/// Files kept identical to sources from the backend's file manager.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDistribution {
    pub sets: Vec<FileSet>,
}

/// A group of files that share parameters, a pre-condition and a command run on change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSet {
    /// Operator's name for the set, used in reports.
    #[serde(default)]
    pub label: String,
    /// Shell command that must exit 0 for the set to be applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_condition: Option<String>,
    /// Shell command run after any file of the set changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Values for `{{key}}` in the set's templates.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    pub files: Vec<DistributedFile>,
}

/// One file: where its content comes from and where it goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistributedFile {
    /// File-manager path of the source, for reports.
    pub source: String,
    /// SHA-256 of the source content; also its download name.
    pub sha256: String,
    /// Size of the source in bytes.
    pub size: u64,
    /// Absolute path on the device.
    pub destination: String,
    /// Render the source as a mustache template with the set's parameters.
    #[serde(default)]
    pub template: bool,
    /// Owner by name (looked up on the device) or numeric id; `None` keeps the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Group by name or numeric id; `None` keeps the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Permission bits; `None` keeps the current mode (0644 for a new file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// True for an absolute file path without empty, `.` or `..` segments or control characters:
/// a destination that cannot climb out of where it points. Both sides hold destinations to it.
pub fn is_clean_absolute_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() > 1
        && path[1..]
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
        && !path.chars().any(char::is_control)
}

/// Why a bundle was refused; the last good bundle stays in force.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    #[error("bundle signature rejected: {0}")]
    Signature(#[from] SignatureError),
    #[error("bundle is for device {found}, not this device ({expected})")]
    WrongDevice { expected: String, found: String },
    #[error("bundle serial {found} is older than the applied serial {current}")]
    Stale { current: u64, found: u64 },
    #[error("bundle format {0} is not supported by this agent (supports {FORMAT})")]
    Format(u32),
    #[error("bundle is invalid: {0}")]
    Invalid(String),
}

/// Verifies an envelope and returns its bundle, if it may be applied by `device_id`.
///
/// `current_serial` is the serial of the bundle in force; an equal serial is accepted only
/// for the very same payload (re-applying from disk), never for different content.
pub fn verify(
    envelope: &Envelope,
    signing_key_hex: &str,
    device_id: &str,
    current: Option<(u64, &str)>,
) -> Result<Bundle, BundleError> {
    signed::verify_ed25519(envelope, signing_key_hex)?;
    let bundle: Bundle = envelope.parse_payload()?;
    if bundle.format != FORMAT {
        return Err(BundleError::Format(bundle.format));
    }
    if bundle.device_id != device_id {
        return Err(BundleError::WrongDevice {
            expected: device_id.to_string(),
            found: bundle.device_id,
        });
    }
    if let Some((serial, hash)) = current {
        let same_payload = envelope.payload_hash() == hash;
        if bundle.serial < serial || (bundle.serial == serial && !same_payload) {
            return Err(BundleError::Stale {
                current: serial,
                found: bundle.serial,
            });
        }
    }
    bundle.validate().map_err(BundleError::Invalid)?;
    Ok(bundle)
}

impl Bundle {
    /// Structural checks a signature cannot give: a signed bundle is trusted, not infallible.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(fd) = &self.policies.file_distribution {
            for set in &fd.sets {
                for file in &set.files {
                    if !crate::digest::is_sha256_hex(&file.sha256) {
                        return Err(format!("file {} has a malformed sha256", file.source));
                    }
                    // `$(key)` is expanded (and the result checked) by the agent.
                    if !file.destination.starts_with('/') && !file.destination.starts_with("$(") {
                        return Err(format!(
                            "destination {:?} of {} is not an absolute path",
                            file.destination, file.source
                        ));
                    }
                }
            }
        }
        if let Some(s) = &self.policies.settings
            && s.interval_seconds == 0
        {
            return Err("settings.interval_seconds must be positive".into());
        }
        let p = &self.policies;
        let checks: [(&str, Option<Result<(), String>>); 6] = [
            ("users", p.users.as_ref().map(Users::validate)),
            ("ssh_keys", p.ssh_keys.as_ref().map(SshKeys::validate)),
            ("passwords", p.passwords.as_ref().map(Passwords::validate)),
            ("ntp", p.ntp.as_ref().map(Ntp::validate)),
            (
                "process_watch",
                p.process_watch.as_ref().map(ProcessWatch::validate),
            ),
            (
                "connectivity_watchdog",
                p.connectivity_watchdog
                    .as_ref()
                    .map(ConnectivityWatchdog::validate),
            ),
        ];
        for (name, check) in checks {
            if let Some(Err(e)) = check {
                return Err(format!("{name}: {e}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signed::BundleSigner;

    fn signer() -> BundleSigner {
        BundleSigner::from_pkcs8(&BundleSigner::generate_pkcs8().unwrap()).unwrap()
    }

    fn bundle(device: &str, serial: u64) -> Bundle {
        Bundle {
            format: FORMAT,
            device_id: device.into(),
            serial,
            commit_id: 1,
            issued_at: 0,
            salt: None,
            policies: Policies {
                settings: Some(Settings::default()),
                file_distribution: Some(FileDistribution {
                    sets: vec![FileSet {
                        label: "x".into(),
                        files: vec![DistributedFile {
                            source: "/a".into(),
                            sha256: crate::digest::sha256_hex(b"a"),
                            size: 1,
                            destination: "/etc/a".into(),
                            template: false,
                            owner: None,
                            group: None,
                            mode: None,
                        }],
                        ..FileSet::default()
                    }],
                }),
                ..Policies::default()
            },
        }
    }

    #[test]
    fn clean_absolute_paths() {
        for ok in ["/etc/a", "/a/b.c", "/x"] {
            assert!(is_clean_absolute_path(ok), "{ok}");
        }
        for bad in [
            "", "/", "etc/a", "/a/../b", "/a/./b", "/a//b", "/a/", "/a\nb", "/a\0b",
        ] {
            assert!(!is_clean_absolute_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn accepts_a_good_bundle() {
        let s = signer();
        let env = s.sign(&bundle("dev", 2));
        let got = verify(&env, &s.public_key_hex(), "dev", Some((1, "h"))).unwrap();
        assert_eq!(got, bundle("dev", 2));
    }

    #[test]
    fn rejects_tampered_payload() {
        let s = signer();
        let mut env = s.sign(&bundle("dev", 2));
        env.payload = env.payload.replace("/etc/a", "/etc/b");
        assert!(matches!(
            verify(&env, &s.public_key_hex(), "dev", None),
            Err(BundleError::Signature(SignatureError::Invalid))
        ));
    }

    #[test]
    fn rejects_wrong_key() {
        let env = signer().sign(&bundle("dev", 2));
        assert!(matches!(
            verify(&env, &signer().public_key_hex(), "dev", None),
            Err(BundleError::Signature(SignatureError::Invalid))
        ));
    }

    #[test]
    fn rejects_bundle_for_another_device() {
        let s = signer();
        let env = s.sign(&bundle("other", 2));
        assert_eq!(
            verify(&env, &s.public_key_hex(), "dev", None),
            Err(BundleError::WrongDevice {
                expected: "dev".into(),
                found: "other".into()
            })
        );
    }

    #[test]
    fn rejects_older_or_conflicting_serial_but_reaccepts_same_payload() {
        let s = signer();
        let env = s.sign(&bundle("dev", 3));
        let hash = env.payload_hash();
        assert_eq!(
            verify(&env, &s.public_key_hex(), "dev", Some((4, "h"))),
            Err(BundleError::Stale {
                current: 4,
                found: 3
            })
        );
        assert!(verify(&env, &s.public_key_hex(), "dev", Some((3, "other"))).is_err());
        assert!(verify(&env, &s.public_key_hex(), "dev", Some((3, &hash))).is_ok());
    }

    #[test]
    fn rejects_signed_but_malformed_content() {
        let s = signer();
        let mut b = bundle("dev", 1);
        b.policies.file_distribution.as_mut().unwrap().sets[0].files[0].destination =
            "relative/path".into();
        assert!(matches!(
            verify(&s.sign(&b), &s.public_key_hex(), "dev", None),
            Err(BundleError::Invalid(_))
        ));
    }
}
