//! `users`: local accounts to add or remove. The agent refuses system accounts (below the
//! device's `UID_MIN`) whatever the document says.

use serde::{Deserialize, Serialize};

use super::parts::{Listed, Presence};
use super::rules::{unique, validate_account_path, validate_user_name};
use super::{CompileError, Merge, Policy, Resolve};

/// The accounts a device must have, or must not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    pub items: Vec<User>,
}

/// One account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    #[serde(default)]
    pub state: Presence,
    /// Numeric id for a new account (default: the next free one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Home directory (default: the tool's, normally `/home/NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// Login shell (default: the tool's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
}

impl Policy for Users {
    const SUMMARY: &'static str =
        "Local accounts to add or remove; system accounts are never touched.";
    const MERGE: Merge = Merge::List {
        items: "items",
        key: "name",
    };
    type Document = Listed<User>;

    fn validate_document(doc: &Listed<User>) -> Result<(), String> {
        validate_items(&doc.items)
    }

    fn compile(doc: Listed<User>, _: &mut dyn Resolve) -> Result<Option<Self>, CompileError> {
        Ok(Some(Users { items: doc.items }))
    }

    fn validate(&self) -> Result<(), String> {
        validate_items(&self.items)
    }
}

fn validate_items(items: &[User]) -> Result<(), String> {
    for u in items {
        validate_user_name(&u.name)?;
        if let Some(home) = &u.home {
            validate_account_path(&format!("home of {}", u.name), home)?;
        }
        if let Some(shell) = &u.shell {
            validate_account_path(&format!("shell of {}", u.name), shell)?;
        }
    }
    unique("user", items.iter().map(|u| u.name.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> User {
        User {
            name: name.into(),
            state: Presence::Present,
            uid: None,
            home: None,
            shell: None,
        }
    }

    #[test]
    fn duplicates_are_refused() {
        let users = Users {
            items: vec![user("a"), user("a")],
        };
        assert_eq!(users.validate(), Err("user a appears twice".into()));
    }

    #[test]
    fn homes_and_shells_are_clean_paths() {
        let mut u = user("bob");
        u.home = Some("/home/../etc".into());
        let err = Users { items: vec![u] }.validate().unwrap_err();
        assert!(err.starts_with("home of bob"), "{err}");
        let mut u = user("bob");
        u.shell = Some("/bin/sh:x".into());
        assert!(Users { items: vec![u] }.validate().is_err());
    }
}
