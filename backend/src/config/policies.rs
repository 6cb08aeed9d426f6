//! Checking the policy documents operators set, by policy name.
//!
//! Each policy's own rules are in its definition (`apiary_proto::policy`); this adds what
//! only the backend can check: that sealed fields hold values this backend sealed.
//! Documents are checked when set (so a draft is never malformed) and again when compiled.

use apiary_proto::policy::{self, PolicyDef, Secret};
use serde_json::Value;

/// Why a policy document was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("unknown policy {0:?}; known policies: {names}", names = policy::names().collect::<Vec<_>>().join(", "))]
    Unknown(String),
    #[error("{policy}: {message}")]
    Invalid { policy: String, message: String },
}

/// The definition of `name`, or the error listing the known ones.
pub fn definition(name: &str) -> Result<&'static dyn PolicyDef, PolicyError> {
    policy::find(name).ok_or_else(|| PolicyError::Unknown(name.to_string()))
}

/// Parses and validates the document an operator sets for `policy`.
pub fn check_document(policy: &str, body: &Value) -> Result<(), PolicyError> {
    let def = definition(policy)?;
    def.check_document(body)
        .and_then(|()| check_sealed(def, body))
        .map_err(|message| PolicyError::Invalid {
            policy: policy.to_string(),
            message,
        })
}

/// Sealed fields hold sealed values: plaintext must never be stored.
fn check_sealed(def: &dyn PolicyDef, body: &Value) -> Result<(), String> {
    for secret in def.secrets() {
        let Secret::Sealed { field } = secret else {
            continue;
        };
        let values = body
            .get(*field)
            .and_then(Value::as_object)
            .into_iter()
            .flatten();
        for (key, sealed) in values {
            if !sealed.as_str().is_some_and(crate::secrets::looks_sealed) {
                return Err(format!(
                    "secret {key} is not sealed; set secrets with `apiary params set NODE KEY --secret`"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_a_full_file_distribution() {
        let body = json!({"sets": [{"label": "app", "command": "true", "parameters": {"k": "v"},
            "files": [{"source": "/a.tmpl", "destination": "/etc/a", "template": true}]}]});
        assert_eq!(check_document("file_distribution", &body), Ok(()));
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
            assert_eq!(check_document(policy, &body), Ok(()), "{policy}");
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
            let err = check_document(policy, &body).unwrap_err().to_string();
            assert!(err.contains(want), "{policy} {body}: {err}");
        }
    }
}
