//! `ssh_keys`: the complete `authorized_keys` of each listed user.

use serde::{Deserialize, Serialize};

use super::parts::Listed;
use super::rules::{unique, validate_user_name};
use super::{CompileError, Merge, Policy, Resolve};

/// The keys each listed user accepts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshKeys {
    pub items: Vec<AuthorizedKeys>,
}

/// The keys one user accepts; an empty list leaves an empty file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizedKeys {
    pub user: String,
    pub keys: Vec<String>,
}

/// Key types `authorized_keys` lines may carry.
pub const SSH_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// One `authorized_keys` line: optional options, a known key type, base64 key, comment.
pub fn validate_ssh_key(line: &str) -> Result<(), String> {
    let shown: String = line.chars().take(40).collect();
    if line.chars().any(char::is_control) || line.len() > 16 * 1024 {
        return Err(format!(
            "SSH key {shown:?}... has a line break or control character, or is too long"
        ));
    }
    let mut words = line.split_whitespace();
    let typed = words.by_ref().position(|w| SSH_KEY_TYPES.contains(&w));
    let key = words.next();
    match (typed, key) {
        (Some(_), Some(k))
            if k.len() >= 16
                && k.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=')) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "SSH key {shown:?} is not an authorized_keys line: expected a key type ({}) followed by the base64 key",
            SSH_KEY_TYPES.join(", ")
        )),
    }
}

impl Policy for SshKeys {
    const SUMMARY: &'static str = "The complete authorized_keys of each listed account.";
    const MERGE: Merge = Merge::List {
        items: "items",
        key: "user",
    };
    type Document = Listed<AuthorizedKeys>;

    fn validate_document(doc: &Listed<AuthorizedKeys>) -> Result<(), String> {
        validate_items(&doc.items)
    }

    fn compile(
        doc: Listed<AuthorizedKeys>,
        _: &mut dyn Resolve,
    ) -> Result<Option<Self>, CompileError> {
        Ok(Some(SshKeys { items: doc.items }))
    }

    fn validate(&self) -> Result<(), String> {
        validate_items(&self.items)
    }
}

fn validate_items(items: &[AuthorizedKeys]) -> Result<(), String> {
    for item in items {
        validate_user_name(&item.user)?;
        for key in &item.keys {
            validate_ssh_key(key).map_err(|e| format!("keys of {}: {e}", item.user))?;
        }
    }
    unique("user", items.iter().map(|i| i.user.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorized_keys_lines() {
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG0q3w9kq9E8c8vYg4b0p2n1sJ6x5f4r3e2w1q0z9y8x alice@laptop";
        assert_eq!(validate_ssh_key(key), Ok(()));
        let with_options = format!("from=\"10.0.0.0/8\",no-pty {key}");
        assert_eq!(validate_ssh_key(&with_options), Ok(()));
        for bad in [
            "",
            "not a key",
            "ssh-ed25519",
            "ssh-ed25519 AAAA$$$$$$$$$$$$$$$$$",
            &format!("{key}\nssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ"),
        ] {
            assert!(validate_ssh_key(bad).is_err(), "{bad:?}");
        }
    }
}
