//! The policy documents operators set, and their validation.
//!
//! Documents are checked when set (so a draft is never malformed) and again when compiled.
//! Unknown fields are errors: a typo must not silently turn a setting off.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Names of the policies this backend knows.
pub const POLICY_NAMES: &[&str] = &["settings", "file_distribution"];

/// Shortest allowed check-in interval: a fleet on a shorter one would flood the backend.
pub const MIN_INTERVAL_SECONDS: u64 = 10;

/// Why a policy document was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("unknown policy {0:?}; known policies: {names}", names = POLICY_NAMES.join(", "))]
    Unknown(String),
    #[error("{policy}: {message}")]
    Invalid { policy: String, message: String },
}

/// `settings`: agent behaviour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsConfig {
    /// Seconds between check-ins (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
    /// Send policy reports (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reports: Option<bool>,
}

/// `file_distribution`: sets of files from the file manager.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDistributionConfig {
    /// `replace` (default: break inheritance) or `extend` the inherited sets.
    #[serde(default)]
    pub merge: MergeMode,
    pub sets: Vec<FileSetConfig>,
}

/// How a list-like policy's document combines with what its node inherits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMode {
    /// The document is the whole policy for the node and its descendants.
    #[default]
    Replace,
    /// The document's items are added to the inherited ones; a set with an inherited set's
    /// label replaces it.
    Extend,
}

/// One file set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSetConfig {
    #[serde(default)]
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    pub files: Vec<FileConfig>,
}

/// One file of a set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Path in the file manager.
    pub source: String,
    /// Absolute path on the device.
    pub destination: String,
    #[serde(default)]
    pub template: bool,
}

/// A validated policy document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyConfig {
    Settings(SettingsConfig),
    FileDistribution(FileDistributionConfig),
}

impl PolicyConfig {
    /// Parses and validates the document for `policy`.
    pub fn parse(policy: &str, body: &serde_json::Value) -> Result<Self, PolicyError> {
        let invalid = |message: String| PolicyError::Invalid {
            policy: policy.to_string(),
            message,
        };
        let parsed = match policy {
            "settings" => PolicyConfig::Settings(from_value(body).map_err(invalid)?),
            "file_distribution" => {
                PolicyConfig::FileDistribution(from_value(body).map_err(invalid)?)
            }
            other => return Err(PolicyError::Unknown(other.to_string())),
        };
        parsed.validate().map_err(invalid)?;
        Ok(parsed)
    }

    fn validate(&self) -> Result<(), String> {
        match self {
            PolicyConfig::Settings(s) => {
                if let Some(i) = s.interval_seconds
                    && i < MIN_INTERVAL_SECONDS
                {
                    return Err(format!(
                        "interval_seconds must be at least {MIN_INTERVAL_SECONDS}, got {i}"
                    ));
                }
                Ok(())
            }
            PolicyConfig::FileDistribution(fd) => {
                let mut destinations = std::collections::BTreeSet::new();
                for (i, set) in fd.sets.iter().enumerate() {
                    let where_ = |what: String| format!("sets[{i}]: {what}");
                    if set.files.is_empty() {
                        return Err(where_("a set needs at least one file".into()));
                    }
                    for key in set.parameters.keys() {
                        if key.is_empty() || key.contains(['{', '}']) || key.trim() != key {
                            return Err(where_(format!(
                                "parameter name {key:?} is not usable in {{{{key}}}}"
                            )));
                        }
                    }
                    for f in &set.files {
                        validate_file_manager_path(&f.source).map_err(&where_)?;
                        validate_destination(&f.destination).map_err(&where_)?;
                        if !destinations.insert(f.destination.as_str()) {
                            return Err(where_(format!(
                                "destination {} appears twice",
                                f.destination
                            )));
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

fn from_value<T: serde::de::DeserializeOwned>(body: &serde_json::Value) -> Result<T, String> {
    T::deserialize(body).map_err(|e| e.to_string())
}

/// An absolute file path (not a directory) without empty, `.` or `..` segments or control
/// characters: no way to climb out of where it points.
fn is_clean_absolute_file_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() > 1
        && path.len() <= 1024
        && path[1..]
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
        && !path.chars().any(char::is_control)
}

/// File-manager paths, like `/configs/app.conf`.
pub fn validate_file_manager_path(path: &str) -> Result<(), String> {
    if is_clean_absolute_file_path(path) {
        Ok(())
    } else {
        Err(format!(
            "file manager path {path:?} must be absolute, like /configs/app.conf, without . or .. segments"
        ))
    }
}

fn validate_destination(path: &str) -> Result<(), String> {
    if is_clean_absolute_file_path(path) {
        Ok(())
    } else {
        Err(format!(
            "destination {path:?} must be an absolute file path without . or .. segments"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_a_full_file_distribution() {
        let body = json!({"sets": [{"label": "app", "command": "true", "parameters": {"k": "v"},
            "files": [{"source": "/a.tmpl", "destination": "/etc/a", "template": true}]}]});
        assert!(matches!(
            PolicyConfig::parse("file_distribution", &body),
            Ok(PolicyConfig::FileDistribution(_))
        ));
    }

    #[test]
    fn names_the_problem() {
        let cases = [
            ("nope", json!({}), "unknown policy \"nope\""),
            (
                "settings",
                json!({"interval": 5}),
                "unknown field `interval`",
            ),
            ("settings", json!({"interval_seconds": 1}), "at least 10"),
            (
                "file_distribution",
                json!({"sets": [{"files": []}]}),
                "sets[0]: a set needs at least one file",
            ),
            (
                "file_distribution",
                json!({"sets": [{"files": [{"source": "/a", "destination": "etc/a"}]}]}),
                "must be an absolute",
            ),
            (
                "file_distribution",
                json!({"sets": [{"files": [{"source": "../a", "destination": "/a"}]}]}),
                "file manager path",
            ),
            (
                "file_distribution",
                json!({"sets": [{"files": [{"source": "/a", "destination": "/x/../a"}]}]}),
                "without . or ..",
            ),
        ];
        for (policy, body, want) in cases {
            let err = PolicyConfig::parse(policy, &body).unwrap_err().to_string();
            assert!(err.contains(want), "{policy} {body}: {err}");
        }
    }
}
