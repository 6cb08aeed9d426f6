//! The policy documents operators set, and their validation.
//!
//! Documents are checked when set (so a draft is never malformed) and again when compiled.
//! Unknown fields are errors: a typo must not silently turn a setting off.

use std::collections::BTreeMap;

use apiary_proto::system::{
    AuthorizedKeys, ConnectivityWatchdog, Ntp, PasswordHash, Passwords, ProcessWatch, SshKeys,
    User, Users, WatchedProcess,
};
use serde::{Deserialize, Serialize};

/// Names of the policies this backend knows.
pub const POLICY_NAMES: &[&str] = &[
    "parameters",
    "settings",
    "file_distribution",
    "users",
    "ssh_keys",
    "passwords",
    "ntp",
    "process_watch",
    "connectivity_watchdog",
];

/// Longest parameter value accepted.
pub const MAX_PARAMETER_VALUE: usize = 4096;

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
    /// Owner (name or numeric id; default: kept, root for a new file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Group (name or numeric id; default: kept, root's group for a new file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Permission bits in octal, like `"0640"` (default: kept, 0644 for a new file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// The document of a list-like system policy (`users`, `ssh_keys`, `passwords`,
/// `process_watch`): its items, named by their first field, and how they combine with
/// what the node inherits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemsConfig<T> {
    #[serde(default)]
    pub merge: MergeMode,
    pub items: Vec<T>,
}

/// A validated policy document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyConfig {
    Parameters(ParametersConfig),
    Settings(SettingsConfig),
    FileDistribution(FileDistributionConfig),
    Users(ItemsConfig<User>),
    SshKeys(ItemsConfig<AuthorizedKeys>),
    Passwords(ItemsConfig<PasswordHash>),
    Ntp(Ntp),
    ProcessWatch(ItemsConfig<WatchedProcess>),
    ConnectivityWatchdog(ConnectivityWatchdog),
}

/// `parameters`: values for `$(key)` and `{{key}}`, merged per key down the tree.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParametersConfig {
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// Sealed secret values (see `crate::secrets`); plaintext never reaches the store.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

/// Parameter names: letters, digits, `_`, `.`, `-`; `sys.` is the agent's.
pub fn validate_parameter_key(key: &str) -> Result<(), String> {
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

impl PolicyConfig {
    /// Parses and validates the document for `policy`.
    pub fn parse(policy: &str, body: &serde_json::Value) -> Result<Self, PolicyError> {
        let invalid = |message: String| PolicyError::Invalid {
            policy: policy.to_string(),
            message,
        };
        let parsed = match policy {
            "parameters" => PolicyConfig::Parameters(from_value(body).map_err(invalid)?),
            "settings" => PolicyConfig::Settings(from_value(body).map_err(invalid)?),
            "file_distribution" => {
                PolicyConfig::FileDistribution(from_value(body).map_err(invalid)?)
            }
            "users" => PolicyConfig::Users(from_value(body).map_err(invalid)?),
            "ssh_keys" => PolicyConfig::SshKeys(from_value(body).map_err(invalid)?),
            "passwords" => PolicyConfig::Passwords(from_value(body).map_err(invalid)?),
            "ntp" => PolicyConfig::Ntp(from_value(body).map_err(invalid)?),
            "process_watch" => PolicyConfig::ProcessWatch(from_value(body).map_err(invalid)?),
            "connectivity_watchdog" => {
                PolicyConfig::ConnectivityWatchdog(from_value(body).map_err(invalid)?)
            }
            other => return Err(PolicyError::Unknown(other.to_string())),
        };
        parsed.validate().map_err(invalid)?;
        Ok(parsed)
    }

    fn validate(&self) -> Result<(), String> {
        match self {
            PolicyConfig::Parameters(p) => {
                for (key, value) in &p.values {
                    validate_parameter_key(key)?;
                    if value.len() > MAX_PARAMETER_VALUE || value.contains('\0') {
                        return Err(format!(
                            "value of {key} is longer than {MAX_PARAMETER_VALUE} bytes or has a NUL"
                        ));
                    }
                }
                for (key, sealed) in &p.secrets {
                    validate_parameter_key(key)?;
                    if p.values.contains_key(key) {
                        return Err(format!("{key} is both a value and a secret"));
                    }
                    if !crate::secrets::looks_sealed(sealed) {
                        return Err(format!(
                            "secret {key} is not sealed; set secrets with `apiary params set NODE KEY --secret`"
                        ));
                    }
                }
                Ok(())
            }
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
                        validate_ownership(f).map_err(&where_)?;
                    }
                }
                Ok(())
            }
            PolicyConfig::Users(c) => Users::validate_items(&c.items),
            PolicyConfig::SshKeys(c) => SshKeys::validate_items(&c.items),
            PolicyConfig::Passwords(c) => Passwords::validate_items(&c.items),
            PolicyConfig::Ntp(n) => n.validate(),
            PolicyConfig::ProcessWatch(c) => ProcessWatch::validate_items(&c.items),
            PolicyConfig::ConnectivityWatchdog(w) => w.validate(),
        }
    }
}

fn from_value<T: serde::de::DeserializeOwned>(body: &serde_json::Value) -> Result<T, String> {
    T::deserialize(body).map_err(|e| e.to_string())
}

/// An absolute file path (not a directory) without empty, `.` or `..` segments or control
/// characters: no way to climb out of where it points.
fn is_clean_absolute_file_path(path: &str) -> bool {
    path.len() <= 1024 && apiary_proto::bundle::is_clean_absolute_path(path)
}

/// Owners and groups are account names or numeric ids; modes are octal permission bits.
fn validate_ownership(f: &FileConfig) -> Result<(), String> {
    for (what, name) in [("owner", &f.owner), ("group", &f.group)] {
        if let Some(name) = name
            && !name.bytes().all(|c| c.is_ascii_digit())
        {
            apiary_proto::system::validate_user_name(name)
                .map_err(|e| format!("{what} of {}: {e}", f.destination))?;
        }
    }
    if let Some(mode) = &f.mode {
        parse_mode(mode).map_err(|e| format!("mode of {}: {e}", f.destination))?;
    }
    Ok(())
}

/// Parses an octal mode like `"0640"` or `"755"`.
pub fn parse_mode(mode: &str) -> Result<u32, String> {
    match u32::from_str_radix(mode, 8) {
        Ok(m) if (3..=4).contains(&mode.len()) && m <= 0o7777 => Ok(m),
        _ => Err(format!(
            "{mode:?} is not an octal mode like \"0644\" (3 or 4 octal digits)"
        )),
    }
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

/// Destinations are absolute, or start with a `$(key)` that the agent expands (and then
/// checks the result is a clean absolute path).
fn validate_destination(path: &str) -> Result<(), String> {
    let anchored = match path.strip_prefix("$(") {
        Some(rest) if rest.contains(')') => {
            format!("/x{}", &rest[rest.find(')').unwrap_or(0) + 1..])
        }
        _ => path.to_string(),
    };
    if is_clean_absolute_file_path(&anchored) || (path.starts_with("$(") && anchored == "/x") {
        Ok(())
    } else {
        Err(format!(
            "destination {path:?} must be an absolute file path (or start with $(key)) without . or .. segments"
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
    fn accepts_every_system_policy() {
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG0q3w9kq9E8c8vYg4b0p2n1sJ6x5f4r3e2w1q0z9y8x ops";
        let docs = [
            (
                "users",
                json!({"merge": "extend", "items": [{"name": "alice", "uid": 1500, "shell": "/bin/sh", "home": "/srv/alice"}, {"name": "bob", "state": "absent"}]}),
            ),
            (
                "ssh_keys",
                json!({"items": [{"user": "root", "keys": [key]}]}),
            ),
            (
                "passwords",
                json!({"items": [{"user": "root", "hash": "$6$salt$abc"}, {"user": "bob", "hash": "!"}]}),
            ),
            ("ntp", json!({"servers": ["0.pool.ntp.org", "192.0.2.1"]})),
            (
                "process_watch",
                json!({"items": [{"name": "crond", "command": "/etc/init.d/crond start"}, {"name": "telnetd", "state": "absent", "command": "killall telnetd"}]}),
            ),
            ("connectivity_watchdog", json!({"failed_checkins": 5})),
            (
                "file_distribution",
                json!({"sets": [{"files": [{"source": "/a", "destination": "/etc/a", "owner": "daemon", "group": "0", "mode": "0640"}]}]}),
            ),
        ];
        for (policy, body) in docs {
            assert!(
                PolicyConfig::parse(policy, &body).is_ok(),
                "{policy}: {:?}",
                PolicyConfig::parse(policy, &body)
            );
        }
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("755"), Ok(0o755));
    }

    #[test]
    fn destinations_may_start_with_a_parameter() {
        for ok in ["/etc/a", "$(dir)/a", "$(dir)", "$(dir)/$(name).conf"] {
            assert_eq!(validate_destination(ok), Ok(()), "{ok}");
        }
        for bad in ["etc/a", "$(dir", "$(dir)/../a", "$(dir)//a", "/a/"] {
            assert!(validate_destination(bad).is_err(), "{bad}");
        }
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
            (
                "file_distribution",
                json!({"sets": [{"files": [{"source": "/a", "destination": "$(dir)/../a"}]}]}),
                "without . or ..",
            ),
            (
                "file_distribution",
                json!({"sets": [{"files": [{"source": "/a", "destination": "/a", "mode": "999"}]}]}),
                "mode of /a: \"999\" is not an octal mode",
            ),
            (
                "file_distribution",
                json!({"sets": [{"files": [{"source": "/a", "destination": "/a", "owner": "-rf"}]}]}),
                "owner of /a: user name \"-rf\"",
            ),
            (
                "users",
                json!({"items": [{"name": "Bob"}]}),
                "user name \"Bob\" must start",
            ),
            (
                "users",
                json!({"items": [{"name": "bob", "home": "/home/../etc"}]}),
                "home of bob",
            ),
            (
                "users",
                json!({"items": [{"name": "bob", "uid": -1}]}),
                "expected u32",
            ),
            (
                "ssh_keys",
                json!({"items": [{"user": "bob", "keys": ["hello"]}]}),
                "keys of bob: SSH key \"hello\" is not an authorized_keys line",
            ),
            (
                "passwords",
                json!({"items": [{"user": "bob", "hash": "plaintext"}]}),
                "password of bob: expected a crypt hash",
            ),
            (
                "passwords",
                json!({"items": [{"user": "bob", "password": "x"}]}),
                "unknown field `password`",
            ),
            ("ntp", json!({"servers": []}), "at least one NTP server"),
            (
                "process_watch",
                json!({"items": [{"name": "/usr/sbin/crond", "command": "crond"}]}),
                "must be an executable's file name",
            ),
            (
                "connectivity_watchdog",
                json!({"failed_checkins": 0}),
                "failed_checkins must be at least 1",
            ),
            (
                "connectivity_watchdog",
                json!({"failed_checkins": 3, "min_interval_seconds": 5}),
                "min_interval_seconds must be at least 60",
            ),
        ];
        for (policy, body, want) in cases {
            let err = PolicyConfig::parse(policy, &body).unwrap_err().to_string();
            assert!(err.contains(want), "{policy} {body}: {err}");
        }
    }
}
