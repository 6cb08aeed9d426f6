//! `ssh_keys`: each listed user's `~/.ssh/authorized_keys` holds exactly the configured keys,
//! one per line, owned by the user, the file 0600 and `~/.ssh` 0700. Keys added by hand are
//! removed. The home directory comes from `/etc/passwd`; a missing user is an error.

use std::fs;
use std::path::Path;

use apiary_proto::policy::InBundle;
use apiary_proto::policy::ssh_keys::{AuthorizedKeys, SshKeys};

use super::converged::Converged;
use super::file_attributes::{self, Wanted};
use super::{Context, ItemPolicy, Outcome};
use crate::fsutil;
use crate::system::accounts::{self, Account};

const NAME: &str = SshKeys::NAME;
const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

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
    let account = accounts::account(user)
        .map_err(|e| format!("cannot read /etc/passwd: {e}"))?
        .ok_or_else(|| format!("user {user} does not exist; its SSH keys cannot be set"))?;
    if !account.home.starts_with('/') || account.home == "/" {
        return Err(format!(
            "user {user} has home directory {:?}; refusing to put .ssh there",
            account.home
        ));
    }
    let want = content(&item.keys);
    let fingerprint = Converged::fingerprint(&[&want, &account.home]);
    let drift = converged.was(user, &fingerprint);
    let dir = Path::new(&account.home).join(".ssh");
    let file = dir.join("authorized_keys");

    let mut fixes = Vec::new();
    fix_dir(&dir, &account, &mut fixes)?;
    match fs::read(&file) {
        Ok(bytes) if bytes == want.as_bytes() => {
            fix_attributes(&file, &account, FILE_MODE, &mut fixes)?;
        }
        Ok(bytes) => {
            // Say what else was wrong before the rewrite makes it right.
            fix_attributes(&file, &account, FILE_MODE, &mut fixes)?;
            let before = String::from_utf8_lossy(&bytes).lines().count();
            write(&file, &want, &account)?;
            fixes.push(format!(
                "authorized_keys rewritten ({before} line(s) -> {} key(s))",
                item.keys.len()
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write(&file, &want, &account)?;
            fixes.push(format!(
                "authorized_keys created with {} key(s)",
                item.keys.len()
            ));
        }
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    }
    converged.record(user, &fingerprint);
    if fixes.is_empty() {
        return Ok(Outcome::unchanged(
            NAME,
            user.into(),
            format!(
                "{} holds the {} configured key(s)",
                file.display(),
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

/// Creates `~/.ssh` if needed and gives it the user and 0700. A symlink is refused: it could
/// point the agent's writes anywhere.
fn fix_dir(dir: &Path, account: &Account, fixes: &mut Vec<String>) -> Result<(), String> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() || !m.is_dir() => Err(format!(
            "{} is not a directory (a symlink or a file); refusing to write keys through it",
            dir.display()
        )),
        Ok(_) => fix_attributes(dir, account, DIR_MODE, fixes),
        Err(_) => {
            if !Path::new(&account.home).is_dir() {
                return Err(format!(
                    "home directory {} of {} does not exist",
                    account.home, account.name
                ));
            }
            fs::create_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            fix_attributes(dir, account, DIR_MODE, &mut Vec::new())?;
            fixes.push(format!("{} created", dir.display()));
            Ok(())
        }
    }
}

/// Gives `path` the account's owner and group and `mode`, noting what it corrected.
fn fix_attributes(
    path: &Path,
    account: &Account,
    mode: u32,
    fixes: &mut Vec<String>,
) -> Result<(), String> {
    let m =
        fs::symlink_metadata(path).map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if m.file_type().is_symlink() {
        return Err(format!(
            "{} is a symlink; refusing to follow it",
            path.display()
        ));
    }
    let wanted = Wanted {
        uid: Some(account.uid),
        gid: Some(account.gid),
        mode: Some(mode),
    };
    let actual =
        file_attributes::actual(path).ok_or_else(|| format!("{} disappeared", path.display()))?;
    let differences = wanted.differences(actual);
    if !differences.is_empty() {
        wanted.apply(path, actual)?;
        fixes.push(format!("{} {}", name(path), differences.join(", ")));
    }
    Ok(())
}

fn write(file: &Path, content: &str, account: &Account) -> Result<(), String> {
    fsutil::write_atomic_owned(
        file,
        content.as_bytes(),
        FILE_MODE,
        (account.uid, account.gid),
    )
    .map_err(|e| format!("cannot write {}: {e}", file.display()))
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
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
