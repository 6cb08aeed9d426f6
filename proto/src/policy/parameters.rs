//! `parameters`: values for `$(key)` in policy fields and `{{key}}` in templates, inherited
//! key by key down the tree. Secrets among them are sealed at rest by the backend, opened
//! only into a device's bundle, and never let into reports or logs by the agent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CompileError, Merge, Policy, Resolve, Secret};

/// Longest parameter value accepted.
pub const MAX_VALUE_BYTES: usize = 4096;

/// The parameters in force on a device, after inheritance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameters {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    /// Like `values`, but the agent never lets them into reports or logs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
}

/// What an operator sets on a node: plain values, and secrets as the backend sealed them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParametersDocument {
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// Sealed secret values; plaintext never reaches the store.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

/// Parameter names: letters, digits, `_`, `.`, `-`; `sys.` is the agent's.
pub fn validate_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if !ok {
        return Err(format!(
            "parameter name {key:?} must be 1 to 64 letters, digits, '_', '.' or '-'"
        ));
    }
    if key.starts_with("sys.") {
        return Err(format!(
            "parameter name {key:?}: names starting with sys. are the agent's system values"
        ));
    }
    Ok(())
}

impl Policy for Parameters {
    const SUMMARY: &'static str =
        "Values for $(key) in policy fields and {{key}} in templates, inherited key by key.";
    const MERGE: Merge = Merge::PerKey {
        maps: &["values", "secrets"],
    };
    const SECRETS: &'static [Secret] = &[Secret::Sealed { field: "secrets" }];
    type Document = ParametersDocument;

    fn validate_document(doc: &ParametersDocument) -> Result<(), String> {
        for (key, value) in &doc.values {
            validate_key(key)?;
            if value.len() > MAX_VALUE_BYTES || value.contains('\0') {
                return Err(format!(
                    "value of {key} is longer than {MAX_VALUE_BYTES} bytes or has a NUL"
                ));
            }
        }
        for key in doc.secrets.keys() {
            validate_key(key)?;
            if doc.values.contains_key(key) {
                return Err(format!("{key} is both a value and a secret"));
            }
        }
        Ok(())
    }

    /// Opens every secret; a document with no value and no secret manages nothing.
    fn compile(
        doc: ParametersDocument,
        resolve: &mut dyn Resolve,
    ) -> Result<Option<Self>, CompileError> {
        let mut secrets = BTreeMap::new();
        for (key, sealed) in &doc.secrets {
            let plain =
                resolve
                    .open_secret(key, sealed)
                    .map_err(|message| CompileError::Secret {
                        key: key.clone(),
                        message,
                    })?;
            secrets.insert(key.clone(), plain);
        }
        Ok(
            (!doc.values.is_empty() || !secrets.is_empty()).then_some(Parameters {
                values: doc.values,
                secrets,
            }),
        )
    }

    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["broker", "a.b-c_9"] {
            assert_eq!(validate_key(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a b", "{x}", "sys.host", &"k".repeat(65)] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_key_is_a_value_or_a_secret() {
        let doc = ParametersDocument {
            values: BTreeMap::from([("k".into(), "v".into())]),
            secrets: BTreeMap::from([("k".into(), "sealed".into())]),
        };
        assert_eq!(
            Parameters::validate_document(&doc),
            Err("k is both a value and a secret".into())
        );
    }
}
