//! The desired-state bundle: what one device must converge to, signed by the backend.

use serde::{Deserialize, Serialize};

use crate::policy::Policies;
use crate::signed::{self, Envelope, SignatureError};

/// Bundle format understood by this agent.
pub const FORMAT: u32 = 1;

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

/// Why a bundle was refused; the last good bundle stays in force.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    #[error("bundle signature rejected: {0}")]
    Signature(#[from] SignatureError),
    #[error("bundle is for device {found}, not this device ({expected})")]
    WrongDevice { expected: String, found: String },
    #[error(
        "bundle serial {found} is not newer than the applied serial {current} (an equal serial must be the same bundle)"
    )]
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
        self.policies.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::file_distribution::{DistributedFile, FileDistribution, FileSet};
    use crate::policy::settings::Settings;
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
