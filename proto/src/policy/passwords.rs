//! `passwords`: password hashes of local accounts. Operators may send a plaintext
//! `password`, which the backend hashes before storing; plaintext never reaches a bundle.

use serde::{Deserialize, Serialize};

use super::parts::Listed;
use super::rules::{unique, validate_user_name};
use super::{CompileError, Merge, Policy, Resolve, Secret};

/// The hashes each listed account must have.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Passwords {
    pub items: Vec<PasswordHash>,
}

/// One account's password, as a crypt(3) hash (`$6$...`) or a lock (`!`, `*`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordHash {
    pub user: String,
    pub hash: String,
}

/// A crypt(3) hash (`$id$...`) or a lock (`!`, `*`, `!` before a hash): what `/etc/shadow`
/// holds. Plaintext never gets here; the backend hashes it when the operator sets it.
pub fn validate_password_hash(user: &str, hash: &str) -> Result<(), String> {
    let body = hash.trim_start_matches('!');
    let crypt_like = body.starts_with('$')
        && body.len() > 3
        && body
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'$' | b'.' | b'/' | b'=' | b','));
    if crypt_like || hash == "!" || hash == "*" || hash == "!*" {
        Ok(())
    } else {
        Err(format!(
            "password of {user}: expected a crypt hash like $6$salt$hash, or ! or * to lock the account"
        ))
    }
}

impl Policy for Passwords {
    const SUMMARY: &'static str = "Password hashes of local accounts.";
    const MERGE: Merge = Merge::List {
        items: "items",
        key: "user",
    };
    const SECRETS: &'static [Secret] = &[Secret::ItemHash {
        field: "hash",
        plaintext: "password",
    }];
    type Document = Listed<PasswordHash>;

    fn validate_document(doc: &Listed<PasswordHash>) -> Result<(), String> {
        validate_items(&doc.items)
    }

    fn compile(
        doc: Listed<PasswordHash>,
        _: &mut dyn Resolve,
    ) -> Result<Option<Self>, CompileError> {
        Ok(Some(Passwords { items: doc.items }))
    }

    fn validate(&self) -> Result<(), String> {
        validate_items(&self.items)
    }
}

fn validate_items(items: &[PasswordHash]) -> Result<(), String> {
    for item in items {
        validate_user_name(&item.user)?;
        validate_password_hash(&item.user, &item.hash)?;
    }
    unique("user", items.iter().map(|i| i.user.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hashes() {
        for ok in [
            "$6$saltsalt$abcdefghijklmnopqrstuvwxyz./ABCDEFG",
            "$y$j9T$abc$def",
            "!",
            "*",
            "!$6$s$h",
        ] {
            assert_eq!(validate_password_hash("u", ok), Ok(()), "{ok}");
        }
        for bad in ["", "secret", "$6$a:b$c", "$6$a\n", "$$"] {
            assert!(validate_password_hash("u", bad).is_err(), "{bad:?}");
        }
    }
}
