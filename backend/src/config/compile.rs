//! Compiling a device's bundle from its effective configuration, deterministically.
//!
//! The same configuration and files always give the same bytes, so a recompile that changes
//! nothing is recognised (equal content hash) and the device keeps its signed bundle.

use std::collections::BTreeMap;

use apiary_proto::bundle::{self, Bundle};
use apiary_proto::policy::{self, FileRef, Policies, Resolve};
use apiary_proto::signed::BundleSigner;

use super::effective::Effective;
use super::policies::{PolicyError, definition};
use crate::secrets::SecretBox;
use crate::store::{FileEntry, StoredBundle, Timestamp};

/// Why a bundle could not be compiled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CompileError {
    #[error("policy {policy} set on {node} is invalid: {source}")]
    Policy {
        policy: String,
        node: String,
        source: PolicyError,
    },
    #[error("{policy} set on {node} uses {path}, which is not in the file manager")]
    MissingFile {
        policy: String,
        node: String,
        path: String,
    },
    #[error("secret {key} set on {node}: {message}")]
    Secret {
        node: String,
        key: String,
        message: String,
    },
}

/// The compiled policies of one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compiled {
    pub policies: Policies,
    /// SHA-256 of every referenced file.
    pub files: Vec<String>,
    /// SHA-256 of the serialised policies.
    pub content_hash: String,
}

/// The file manager and the secrets key, as compiling sees them; records every file used.
struct Resolver<'a> {
    files: &'a BTreeMap<String, FileEntry>,
    secrets_box: &'a SecretBox,
    referenced: Vec<String>,
}

impl Resolve for Resolver<'_> {
    fn file(&mut self, path: &str) -> Option<FileRef> {
        let entry = self.files.get(path)?;
        self.referenced.push(entry.sha256.clone());
        Some(FileRef {
            sha256: entry.sha256.clone(),
            size: entry.size,
        })
    }

    fn open_secret(&mut self, key: &str, sealed: &str) -> Result<String, String> {
        self.secrets_box
            .open(key, sealed)
            .map_err(|e| e.to_string())
    }
}

/// Compiles the effective configuration through each policy's definition, resolving
/// file-manager paths to content digests and opening sealed secrets.
pub fn compile(
    effective: &BTreeMap<String, Effective>,
    files: &BTreeMap<String, FileEntry>,
    secrets_box: &SecretBox,
) -> Result<Compiled, CompileError> {
    let mut policies = Policies::default();
    let mut resolver = Resolver {
        files,
        secrets_box,
        referenced: Vec::new(),
    };
    for (name, eff) in effective {
        let invalid = |source| CompileError::Policy {
            policy: name.clone(),
            node: eff.from.clone(),
            source,
        };
        let def = definition(name).map_err(invalid)?;
        def.compile_into(&eff.body, &mut resolver, &mut policies)
            .map_err(|e| match e {
                policy::CompileError::Invalid(message) => invalid(PolicyError::Invalid {
                    policy: name.clone(),
                    message,
                }),
                // Name the node the item came from, which an extension may differ from.
                policy::CompileError::MissingFile { item, path } => CompileError::MissingFile {
                    policy: name.clone(),
                    node: eff.items_from.get(item).unwrap_or(&eff.from).clone(),
                    path,
                },
                policy::CompileError::Secret { key, message } => CompileError::Secret {
                    node: eff.keys_from.get(&key).unwrap_or(&eff.from).clone(),
                    key,
                    message,
                },
            })?;
    }
    let mut referenced = resolver.referenced;
    referenced.sort();
    referenced.dedup();
    let content_hash = secrets_box
        .fingerprint(&serde_json::to_vec(&policies).expect("policies serialise infallibly"));
    Ok(Compiled {
        policies,
        files: referenced,
        content_hash,
    })
}

/// The policies whose compiled form differs between a stored bundle and a new compilation
/// (all of the new ones when there is no stored bundle).
pub fn changed_policies(
    current: Option<&StoredBundle>,
    new: &Policies,
    secrets_box: &SecretBox,
) -> Vec<String> {
    let as_map =
        |p: &Policies| match serde_json::to_value(p).expect("policies serialise infallibly") {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
    let old = current
        .and_then(|b| secrets_box.load_envelope(&b.envelope).ok())
        .and_then(|e| serde_json::from_str::<apiary_proto::signed::Envelope>(&e).ok())
        .and_then(|e| e.parse_payload::<Bundle>().ok())
        .map(|b| as_map(&b.policies))
        .unwrap_or_default();
    let new = as_map(new);
    let mut names: Vec<String> = old.keys().chain(new.keys()).cloned().collect();
    names.sort();
    names.dedup();
    names.retain(|n| old.get(n) != new.get(n));
    names
}

/// Signs a new bundle if the compiled content differs from the device's current bundle.
pub fn next_bundle(
    device_id: &str,
    compiled: Compiled,
    current: Option<&StoredBundle>,
    commit_id: i64,
    now: Timestamp,
    signer: &BundleSigner,
    secrets_box: &SecretBox,
) -> Option<StoredBundle> {
    if current.is_some_and(|c| c.content_hash == compiled.content_hash) {
        return None;
    }
    let serial = current.map_or(1, |c| c.serial + 1);
    let has_secrets = compiled
        .policies
        .parameters
        .as_ref()
        .is_some_and(|p| !p.secrets.is_empty());
    let payload = Bundle {
        format: bundle::FORMAT,
        device_id: device_id.to_string(),
        serial,
        commit_id: commit_id.max(0) as u64,
        issued_at: now.max(0) as u64,
        salt: has_secrets.then(|| apiary_proto::hex::random(16)),
        policies: compiled.policies,
    };
    let envelope = signer.sign(&payload);
    Some(StoredBundle {
        device_id: device_id.to_string(),
        serial,
        commit_id,
        hash: envelope.payload_hash(),
        content_hash: compiled.content_hash,
        envelope: secrets_box.store_envelope(
            serde_json::to_string(&envelope).expect("envelope serialises infallibly"),
            has_secrets,
        ),
        created_at: now,
        files: compiled.files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use apiary_proto::digest::sha256_hex;
    use apiary_proto::policy::settings::Settings;
    use serde_json::json;

    /// A fixed key, so fingerprints compare across calls.
    fn sbox() -> SecretBox {
        SecretBox::from_key(&[7u8; 32]).unwrap()
    }

    fn files() -> BTreeMap<String, FileEntry> {
        BTreeMap::from([(
            "/a.tmpl".to_string(),
            FileEntry {
                path: "/a.tmpl".into(),
                sha256: sha256_hex(b"a"),
                size: 1,
                uploaded_at: 0,
                uploaded_by: "t".into(),
            },
        )])
    }

    fn effective(params: serde_json::Value) -> BTreeMap<String, Effective> {
        BTreeMap::from([
            (
                "file_distribution".to_string(),
                Effective {
                    from: "/".into(),
                    items_from: vec!["/".into()],
                    keys_from: BTreeMap::new(),
                    body: json!({"sets": [{"parameters": params,
                        "files": [{"source": "/a.tmpl", "destination": "/etc/a", "template": true}]}]}),
                },
            ),
            (
                "settings".to_string(),
                Effective {
                    from: "/".into(),
                    body: json!({}),
                    items_from: vec![],
                    keys_from: BTreeMap::new(),
                },
            ),
        ])
    }

    #[test]
    fn compilation_is_deterministic() {
        // Parameter insertion order must not matter.
        let a = compile(&effective(json!({"b": "2", "a": "1"})), &files(), &sbox()).unwrap();
        let b = compile(&effective(json!({"a": "1", "b": "2"})), &files(), &sbox()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.files, [sha256_hex(b"a")]);
        assert_eq!(a.policies.settings, Some(Settings::default()));
    }

    #[test]
    fn unchanged_content_keeps_the_current_bundle() {
        let signer = BundleSigner::from_pkcs8(&BundleSigner::generate_pkcs8().unwrap()).unwrap();
        let c = compile(&effective(json!({})), &files(), &sbox()).unwrap();
        let first = next_bundle("d", c.clone(), None, 1, 10, &signer, &sbox()).unwrap();
        assert_eq!(first.serial, 1);
        assert!(next_bundle("d", c, Some(&first), 2, 11, &signer, &sbox()).is_none());
        let changed = compile(&effective(json!({"k": "v"})), &files(), &sbox()).unwrap();
        let second = next_bundle("d", changed, Some(&first), 2, 11, &signer, &sbox()).unwrap();
        assert_eq!((second.serial, second.commit_id), (2, 2));
        let env: apiary_proto::signed::Envelope = serde_json::from_str(&second.envelope).unwrap();
        let verified = apiary_proto::bundle::verify(
            &env,
            &signer.public_key_hex(),
            "d",
            Some((1, &first.hash)),
        )
        .unwrap();
        assert_eq!(verified.serial, 2);
    }

    #[test]
    fn names_the_policies_that_changed() {
        let signer = BundleSigner::from_pkcs8(&BundleSigner::generate_pkcs8().unwrap()).unwrap();
        let first = compile(&effective(json!({})), &files(), &sbox()).unwrap();
        assert_eq!(
            changed_policies(None, &first.policies, &sbox()),
            ["file_distribution", "settings"]
        );
        let stored = next_bundle("d", first, None, 1, 10, &signer, &sbox()).unwrap();
        let second = compile(&effective(json!({"k": "v"})), &files(), &sbox()).unwrap();
        assert_eq!(
            changed_policies(Some(&stored), &second.policies, &sbox()),
            ["file_distribution"]
        );
        let mut only_settings = effective(json!({}));
        only_settings.remove("file_distribution");
        let third = compile(&only_settings, &files(), &sbox()).unwrap();
        assert_eq!(
            changed_policies(Some(&stored), &third.policies, &sbox()),
            ["file_distribution"]
        );
    }

    #[test]
    fn missing_file_names_node_and_path() {
        let err = compile(&effective(json!({})), &BTreeMap::new(), &sbox()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "file_distribution set on / uses /a.tmpl, which is not in the file manager"
        );
    }

    mod determinism {
        use super::*;
        use proptest::prelude::*;

        /// A random file distribution: sets with parameters and files from a small pool.
        fn config() -> impl Strategy<Value = serde_json::Value> {
            let params = prop::collection::btree_map("[a-z]{1,6}", "[ -~]{0,12}", 0..6);
            let file = (0usize..3, "[a-z]{1,8}", any::<bool>()).prop_map(|(src, dest, template)| {
                json!({"source": format!("/f{src}"), "destination": format!("/etc/{dest}"), "template": template})
            });
            let set = (params, prop::collection::vec(file, 1..4), "[a-z]{0,5}", proptest::option::of("[a-z ]{1,10}"))
                .prop_map(|(parameters, files, label, command)| {
                    json!({"label": label, "parameters": parameters, "files": files, "command": command})
                });
            prop::collection::vec(set, 0..4).prop_map(|sets| json!({"sets": sets}))
        }

        /// Writes a JSON value with object keys in an order chosen by `seed`.
        fn shuffled_text(v: &serde_json::Value, seed: u64) -> String {
            match v {
                serde_json::Value::Object(map) => {
                    let mut entries: Vec<_> = map.iter().collect();
                    let n = entries.len().max(1) as u64;
                    entries.rotate_left((seed % n) as usize);
                    if seed % 2 == 1 {
                        entries.reverse();
                    }
                    let fields: Vec<String> = entries
                        .into_iter()
                        .map(|(k, v)| {
                            format!(
                                "{}:{}",
                                serde_json::to_string(k).unwrap(),
                                shuffled_text(v, seed / 3 + 7)
                            )
                        })
                        .collect();
                    format!("{{{}}}", fields.join(","))
                }
                serde_json::Value::Array(items) => {
                    let items: Vec<String> = items
                        .iter()
                        .map(|i| shuffled_text(i, seed / 5 + 3))
                        .collect();
                    format!("[{}]", items.join(","))
                }
                other => other.to_string(),
            }
        }

        fn pool() -> BTreeMap<String, FileEntry> {
            (0..3)
                .map(|i| {
                    let path = format!("/f{i}");
                    let entry = FileEntry {
                        path: path.clone(),
                        sha256: sha256_hex(path.as_bytes()),
                        size: 1,
                        uploaded_at: 0,
                        uploaded_by: "t".into(),
                    };
                    (path, entry)
                })
                .collect()
        }

        proptest! {
            #[test]
            fn same_configuration_same_bytes(doc in config(), seed in any::<u64>()) {
                let reordered: serde_json::Value = serde_json::from_str(&shuffled_text(&doc, seed)).unwrap();
                let effective = |body: serde_json::Value| BTreeMap::from([(
                    "file_distribution".to_string(),
                    Effective { from: "/".into(), items_from: vec![], keys_from: BTreeMap::new(), body },
                )]);
                let a = compile(&effective(doc.clone()), &pool(), &sbox());
                let b = compile(&effective(reordered), &pool(), &sbox());
                match (a, b) {
                    (Ok(a), Ok(b)) => {
                        prop_assert_eq!(&a.content_hash, &b.content_hash);
                        prop_assert_eq!(serde_json::to_vec(&a.policies).unwrap(), serde_json::to_vec(&b.policies).unwrap());
                        prop_assert_eq!(a.files, b.files);
                    }
                    // Invalid documents (e.g. a destination twice) must be refused alike.
                    (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                    (a, b) => prop_assert!(false, "different outcomes: {:?} / {:?}", a.is_ok(), b.is_ok()),
                }
            }
        }
    }
}
