//! `users`: local accounts added or removed with the device's own tools (shadow-utils or
//! busybox).
//!
//! Accounts below the device's `UID_MIN` (from `/etc/login.defs`, else 1000) and root are
//! system accounts: never added, changed or removed here. Removing an account deletes its
//! home directory, and the report says so. An existing account keeps its uid: renumbering
//! would orphan its files, so a different configured uid is an error, not a change.

use apiary_proto::policy::InBundle;
use apiary_proto::policy::parts::Presence;
use apiary_proto::policy::users::{User, Users};

use super::converged::Converged;
use super::{Context, ItemPolicy, Outcome, Tools};
use crate::system::account_tools::{AccountTools, NewAccount};
use crate::system::accounts::{self, Account};

const NAME: &str = Users::NAME;

impl ItemPolicy for Users {
    type Item = User;
    type Tools = UserTools;

    fn items(&self) -> &[User] {
        &self.items
    }

    fn item_name(user: &User) -> String {
        user.name.clone()
    }

    fn converge_item(
        &self,
        found: &UserTools,
        user: &User,
        _: &Context<'_>,
        record: &mut Converged,
        out: &mut Vec<Outcome>,
    ) -> Result<(), String> {
        out.push(converge_user(&found.tools, user, found.uid_min, record)?);
        Ok(())
    }
}

/// The device's account tools, and the lowest uid of a regular account.
pub struct UserTools {
    tools: AccountTools,
    uid_min: u32,
}

impl Tools for UserTools {
    fn find() -> Result<Self, String> {
        Ok(Self {
            tools: AccountTools::detect()?,
            uid_min: accounts::uid_min(),
        })
    }
}

fn converge_user(
    tools: &AccountTools,
    user: &User,
    uid_min: u32,
    converged: &mut Converged,
) -> Result<Outcome, String> {
    let name = user.name.as_str();
    let existing = accounts::account(name).map_err(|e| format!("cannot read: {e}"))?;
    let fingerprint = Converged::fingerprint(&[
        user.state.as_str(),
        user.home.as_deref().unwrap_or(""),
        user.shell.as_deref().unwrap_or(""),
    ]);
    let drift = converged.was(name, &fingerprint);
    let system_account = |uid: u32| {
        format!(
            "{name} is a system account (uid {uid}, below {uid_min}); the users policy manages regular accounts only"
        )
    };
    let outcome = match (user.state, existing) {
        (Presence::Absent, None) => {
            Outcome::unchanged(NAME, name.into(), format!("user {name} is absent"))
        }
        (Presence::Absent, Some(account)) => {
            if account.uid == 0 || account.uid < uid_min {
                return Err(system_account(account.uid));
            }
            tools.remove(name)?;
            let what = format!(
                "removed user {name} (uid {}) and deleted its home directory {}",
                account.uid, account.home
            );
            let message = if drift {
                format!("user {name} had been added again on the device; {what}")
            } else {
                what
            };
            Outcome::changed(NAME, name.into(), drift, message)
        }
        (Presence::Present, None) => {
            if let Some(uid) = user.uid.filter(|&u| u < uid_min) {
                return Err(system_account(uid));
            }
            tools.add(&NewAccount {
                name,
                uid: user.uid,
                home: user.home.as_deref(),
                shell: user.shell.as_deref(),
            })?;
            let added = accounts::account(name).ok().flatten().ok_or_else(|| {
                format!(
                    "{} reported success but {name} is not in /etc/passwd",
                    tools.family()
                )
            })?;
            let what = format!(
                "added user {name} (uid {}, home {}, shell {}) with {}",
                added.uid,
                added.home,
                added.shell,
                tools.family()
            );
            let message = if drift {
                format!("user {name} had been removed on the device; {what}")
            } else {
                what
            };
            Outcome::changed(NAME, name.into(), drift, message)
        }
        (Presence::Present, Some(account)) => {
            if account.uid < uid_min {
                return Err(system_account(account.uid));
            }
            if let Some(uid) = user.uid.filter(|&u| u != account.uid) {
                return Err(format!(
                    "user {name} exists with uid {}, configured {uid}; an existing account's uid is never changed",
                    account.uid
                ));
            }
            match differences(user, &account) {
                None => Outcome::unchanged(NAME, name.into(), format!("user {name} is present")),
                Some((home, shell, what)) => {
                    tools.modify(name, home, shell)?;
                    let message = if drift {
                        format!("user {name} was changed on the device; restored {what}")
                    } else {
                        format!("user {name}: {what}")
                    };
                    Outcome::changed(NAME, name.into(), drift, message)
                }
            }
        }
    };
    converged.record(name, &fingerprint);
    Ok(outcome)
}

/// The home and shell to set when they differ from the configured ones, with a description.
fn differences<'a>(user: &'a User, account: &'a Account) -> Option<(&'a str, &'a str, String)> {
    let home = user.home.as_deref().unwrap_or(&account.home);
    let shell = user.shell.as_deref().unwrap_or(&account.shell);
    let mut what = Vec::new();
    if home != account.home {
        what.push(format!("home {} -> {home}", account.home));
    }
    if shell != account.shell {
        what.push(format!("shell {} -> {shell}", account.shell));
    }
    (!what.is_empty()).then(|| (home, shell, what.join(", ")))
}
