//! `ssh_keys`: each listed user's `~/.ssh/authorized_keys` holds exactly the configured keys,
//! one per line, owned by the user, the file 0600 and `~/.ssh` 0700. Keys added by hand are
//! removed. The home directory comes from `/etc/passwd`; a missing user is an error.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use apiary_proto::policy::InBundle;
use apiary_proto::policy::ssh_keys::{AuthorizedKeys, SshKeys};

use super::converged::Converged;
use super::file_attributes::{Actual, Wanted};
use super::{Context, ItemPolicy, Outcome};
use crate::safe_fs::{self, Dir, SafeFsError};
use crate::system::accounts::{self, Account};

const NAME: &str = SshKeys::NAME;
const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;
const SSH_DIR: &str = ".ssh";
const KEYS_FILE: &str = "authorized_keys";
/// Largest `authorized_keys` read back; a longer one is replaced unread.
const MAX_KEYS_BYTES: u64 = 1024 * 1024;

impl ItemPolicy for SshKeys {
    type Item = AuthorizedKeys;
    type Tools = ();

    fn items(&self) -> &[AuthorizedKeys] {
        &self.items
    }

    fn item_name(item: &AuthorizedKeys) -> String {
        item.user.clone()
    }

    fn converge_item(
        &self,
        _: &(),
        item: &AuthorizedKeys,
        _: &Context<'_>,
        record: &mut Converged,
        out: &mut Vec<Outcome>,
    ) -> Result<(), String> {
        out.push(converge_keys(item, record)?);
        Ok(())
    }
}

/// The file content for a key list.
fn content(keys: &[String]) -> String {
    keys.iter().map(|k| format!("{}\n", k.trim())).collect()
}

fn converge_keys(item: &AuthorizedKeys, converged: &mut Converged) -> Result<Outcome, String> {
    let user = item.user.as_str();
    let account = account_of(user)?;
    let want = content(&item.keys);
    let fingerprint = Converged::fingerprint(&[&want, &account.home]);
    let drift = converged.was(user, &fingerprint);
    // Another user's keys need root; the agent's own user's never do.
    let fixes = if crate::privilege::current().is_root() || account.uid == crate::privilege::euid()
    {
        apply_to(&account, &want)?
    } else {
        crate::elevated::ssh_keys(user, &want)?
    };
    converged.record(user, &fingerprint);
    if fixes.is_empty() {
        return Ok(Outcome::unchanged(
            NAME,
            user.into(),
            format!(
                "{}/{SSH_DIR}/{KEYS_FILE} holds the {} configured key(s)",
                account.home,
                item.keys.len()
            ),
        ));
    }
    let what = fixes.join("; ");
    let message = if drift {
        format!("SSH keys of {user} were changed on the device; restored: {what}")
    } else {
        format!("SSH keys of {user}: {what}")
    };
    Ok(Outcome::changed(NAME, user.into(), drift, message))
}

/// The account, which must exist and have a home directory keys can go under.
fn account_of(user: &str) -> Result<Account, String> {
    let account = accounts::account(user)
        .map_err(|e| format!("cannot read: {e}"))?
        .ok_or_else(|| format!("user {user} does not exist; its SSH keys cannot be set"))?;
    if !account.home.starts_with('/') || account.home == "/" {
        return Err(format!(
            "user {user} has home directory {:?}; refusing to put .ssh there",
            account.home
        ));
    }
    Ok(account)
}

/// Makes `user`'s `authorized_keys` hold exactly `want`; returns what it fixed (nothing when
/// all was right). The root side of `apiary-agent elevated ssh-keys` runs this too.
pub fn apply(user: &str, want: &str) -> Result<Vec<String>, String> {
    apply_to(&account_of(user)?, want)
}

fn apply_to(account: &Account, want: &str) -> Result<Vec<String>, String> {
    let user = account.name.as_str();
    let home = Dir::open(Path::new(&account.home))
        .map_err(|e| format!("home directory of {user}: {e}"))?;
    let mut fixes = Vec::new();
    let ssh = open_ssh_dir(&home, account, &mut fixes)?;
    let count = want.lines().count();
    match present(&ssh)? {
        Present::Absent => {
            write(&ssh, want, account)?;
            fixes.push(format!("authorized_keys created with {count} key(s)"));
        }
        Present::NotOurs(what) => {
            write(&ssh, want, account)?;
            fixes.push(format!(
                "authorized_keys was {what}; replaced with {count} key(s)"
            ));
        }
        Present::File(meta) => {
            let bytes = ssh
                .read(KEYS_FILE, MAX_KEYS_BYTES)
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            // Say what else was wrong before a rewrite makes it right.
            fix(
                Actual::of(&meta),
                account,
                FILE_MODE,
                KEYS_FILE,
                &mut fixes,
                |o, m| ssh.set_attributes(KEYS_FILE, o, m),
            )?;
            if bytes != want.as_bytes() {
                let before = String::from_utf8_lossy(&bytes).lines().count();
                write(&ssh, want, account)?;
                fixes.push(format!(
                    "authorized_keys rewritten ({before} line(s) -> {count} key(s))"
                ));
            }
        }
    }
    Ok(fixes)
}

/// What `authorized_keys` is now.
enum Present {
    Absent,
    /// A regular file with no other hard link: read, and corrected in place.
    File(Metadata),
    /// Anything else (a symlink, a FIFO, a hard link, an oversized file) is replaced by a
    /// rename, never read or changed through.
    NotOurs(String),
}

fn present(ssh: &Dir) -> Result<Present, String> {
    let Some(meta) = ssh.stat(KEYS_FILE).map_err(|e| e.to_string())? else {
        return Ok(Present::Absent);
    };
    Ok(if meta.is_dir() {
        return Err(format!("{} is a directory", ssh.join(KEYS_FILE).display()));
    } else if !meta.is_file() {
        Present::NotOurs(format!("a {}", safe_fs::kind_of(&meta)))
    } else if meta.nlink() != 1 {
        Present::NotOurs(format!("a file with {} hard links", meta.nlink()))
    } else if meta.len() > MAX_KEYS_BYTES {
        Present::NotOurs(format!("{} bytes long", meta.len()))
    } else {
        Present::File(meta)
    })
}

/// Opens `~/.ssh`, creating it if needed, and gives it the user and 0700. A symlink is
/// refused: it could point the agent's writes anywhere.
fn open_ssh_dir(home: &Dir, account: &Account, fixes: &mut Vec<String>) -> Result<Dir, String> {
    let refused = |e: SafeFsError| format!("{e}; refusing to write keys through it");
    match home.open_dir(SSH_DIR).map_err(refused)? {
        Some(ssh) => {
            let actual = Actual::of(&ssh.metadata().map_err(|e| e.to_string())?);
            fix(actual, account, DIR_MODE, SSH_DIR, fixes, |o, m| {
                ssh.set_own_attributes(o, m)
            })?;
            Ok(ssh)
        }
        None => {
            let ssh = home
                .mkdir(SSH_DIR, DIR_MODE)
                .map_err(|e| format!("cannot create: {e}"))?;
            ssh.set_own_attributes(Some((account.uid, account.gid)), DIR_MODE)
                .map_err(|e| e.to_string())?;
            fixes.push(format!("{} created", ssh.path().display()));
            Ok(ssh)
        }
    }
}

/// Gives a file with `actual` attributes the account's owner and group and `mode` through
/// `apply`, noting what it corrected.
fn fix(
    actual: Actual,
    account: &Account,
    mode: u32,
    what: &str,
    fixes: &mut Vec<String>,
    apply: impl FnOnce(Option<(u32, u32)>, u32) -> Result<(), SafeFsError>,
) -> Result<(), String> {
    let wanted = Wanted {
        uid: Some(account.uid),
        gid: Some(account.gid),
        mode: Some(mode),
    };
    let differences = wanted.differences(actual);
    if !differences.is_empty() {
        apply(Some((account.uid, account.gid)), mode).map_err(|e| e.to_string())?;
        fixes.push(format!("{what} {}", differences.join(", ")));
    }
    Ok(())
}

fn write(ssh: &Dir, content: &str, account: &Account) -> Result<(), String> {
    let owner = Some((account.uid, account.gid));
    safe_fs::write_in(ssh, KEYS_FILE, content.as_bytes(), FILE_MODE, owner)
        .map_err(|e| format!("cannot write: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_per_line() {
        assert_eq!(content(&[]), "");
        assert_eq!(
            content(&["ssh-ed25519 AAAA a ".into(), "ssh-rsa BBBB".into()]),
            "ssh-ed25519 AAAA a\nssh-rsa BBBB\n"
        );
    }
}
