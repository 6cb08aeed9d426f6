//! Policies that manage the device's own system: accounts, SSH keys, passwords, time servers,
//! watched processes and the connectivity watchdog.
//!
//! The same types are the operator's documents (plus `merge` on the backend) and the bundle's
//! payload, so both sides validate them with the functions here. Names and paths end up as
//! arguments of `useradd`, `chpasswd` and friends, so the rules are strict: nothing an agent
//! could mistake for an option or a field separator gets through.

use serde::{Deserialize, Serialize};

/// Whether an item must exist or must not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    #[default]
    Present,
    Absent,
}

/// `users`: local accounts to add or remove.
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

/// `ssh_keys`: the complete `authorized_keys` of each listed user.
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

/// `passwords`: password hashes of local accounts.
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

/// `ntp`: the time servers of whichever time daemon the device runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ntp {
    pub servers: Vec<String>,
}

/// `process_watch`: processes that must run, or must not, and what to do about it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessWatch {
    pub items: Vec<WatchedProcess>,
}

/// One watched process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchedProcess {
    /// Executable name, matched exactly (see the agent's `process_watch` policy).
    pub name: String,
    #[serde(default)]
    pub state: Presence,
    /// Shell command run when the process is not in its state.
    pub command: String,
}

/// Default action of the connectivity watchdog.
pub const DEFAULT_WATCHDOG_ACTION: &str = "reboot";
/// Default shortest time between two watchdog actions.
pub const DEFAULT_WATCHDOG_PERIOD_SECONDS: u64 = 3600;
/// Shortest period the backend accepts: a device must get the chance to come back.
pub const MIN_WATCHDOG_PERIOD_SECONDS: u64 = 60;

/// `connectivity_watchdog`: act when the backend has been unreachable for too long.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectivityWatchdog {
    /// Consecutive failed check-ins before acting.
    pub failed_checkins: u32,
    /// Shell command run then.
    #[serde(default = "default_action")]
    pub action: String,
    /// The action runs at most once per this many seconds.
    #[serde(default = "default_period")]
    pub min_interval_seconds: u64,
}

fn default_action() -> String {
    DEFAULT_WATCHDOG_ACTION.to_string()
}

fn default_period() -> u64 {
    DEFAULT_WATCHDOG_PERIOD_SECONDS
}

/// Account names as `useradd` accepts them portably: lowercase letter or `_` first, then
/// lowercase letters, digits, `_` or `-`, at most 32 bytes.
pub fn validate_user_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == b'_');
    let rest_ok =
        bytes.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-'));
    if first_ok && rest_ok && name.len() <= 32 {
        Ok(())
    } else {
        Err(format!(
            "user name {name:?} must start with a lowercase letter or '_' and hold only lowercase letters, digits, '_' or '-' (at most 32)"
        ))
    }
}

/// Home directories and shells: clean absolute paths without `:` (the passwd separator).
fn validate_account_path(what: &str, path: &str) -> Result<(), String> {
    if crate::bundle::is_clean_absolute_path(path) && !path.contains(':') && path.len() <= 255 {
        Ok(())
    } else {
        Err(format!(
            "{what} {path:?} must be an absolute path without ':', '.' or '..' segments"
        ))
    }
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

/// NTP server names: host names or IP addresses.
pub fn validate_ntp_server(server: &str) -> Result<(), String> {
    let ok = !server.is_empty()
        && server.len() <= 253
        && !server.starts_with('-')
        && server
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "NTP server {server:?} must be a host name or an IP address"
        ))
    }
}

/// Names `process_watch` matches: one executable file name.
pub fn validate_process_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 255
        || name.contains('/')
        || name.chars().any(char::is_control)
        || name == "."
        || name == ".."
    {
        Err(format!(
            "process name {name:?} must be an executable's file name, without '/'"
        ))
    } else {
        Ok(())
    }
}

/// Rejects a name listed twice.
fn unique<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(format!("{what} {n} appears twice"));
        }
    }
    Ok(())
}

impl Users {
    /// Checks every item; the message names the offending one.
    pub fn validate(&self) -> Result<(), String> {
        Self::validate_items(&self.items)
    }

    /// [`Users::validate`] for a list of items, as an operator's document holds them.
    pub fn validate_items(items: &[User]) -> Result<(), String> {
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
}

impl SshKeys {
    /// Checks every item; the message names the offending one.
    pub fn validate(&self) -> Result<(), String> {
        Self::validate_items(&self.items)
    }

    /// [`SshKeys::validate`] for a list of items, as an operator's document holds them.
    pub fn validate_items(items: &[AuthorizedKeys]) -> Result<(), String> {
        for item in items {
            validate_user_name(&item.user)?;
            for key in &item.keys {
                validate_ssh_key(key).map_err(|e| format!("keys of {}: {e}", item.user))?;
            }
        }
        unique("user", items.iter().map(|i| i.user.as_str()))
    }
}

impl Passwords {
    /// Checks every item; the message names the offending one.
    pub fn validate(&self) -> Result<(), String> {
        Self::validate_items(&self.items)
    }

    /// [`Passwords::validate`] for a list of items, as an operator's document holds them.
    pub fn validate_items(items: &[PasswordHash]) -> Result<(), String> {
        for item in items {
            validate_user_name(&item.user)?;
            validate_password_hash(&item.user, &item.hash)?;
        }
        unique("user", items.iter().map(|i| i.user.as_str()))
    }
}

impl Ntp {
    /// At least one valid server, none twice.
    pub fn validate(&self) -> Result<(), String> {
        if self.servers.is_empty() {
            return Err("servers must list at least one NTP server".into());
        }
        for s in &self.servers {
            validate_ntp_server(s)?;
        }
        unique("NTP server", self.servers.iter().map(String::as_str))
    }
}

impl ProcessWatch {
    /// Checks every item; the message names the offending one.
    pub fn validate(&self) -> Result<(), String> {
        Self::validate_items(&self.items)
    }

    /// [`ProcessWatch::validate`] for a list of items, as an operator's document holds them.
    pub fn validate_items(items: &[WatchedProcess]) -> Result<(), String> {
        for p in items {
            validate_process_name(&p.name)?;
            if p.command.trim().is_empty() {
                return Err(format!("process {}: command must not be empty", p.name));
            }
        }
        unique("process", items.iter().map(|p| p.name.as_str()))
    }
}

impl ConnectivityWatchdog {
    /// A positive threshold, a command, and a period long enough to come back online.
    pub fn validate(&self) -> Result<(), String> {
        if self.failed_checkins == 0 {
            return Err("failed_checkins must be at least 1".into());
        }
        if self.action.trim().is_empty() {
            return Err("action must not be empty".into());
        }
        if self.min_interval_seconds < MIN_WATCHDOG_PERIOD_SECONDS {
            return Err(format!(
                "min_interval_seconds must be at least {MIN_WATCHDOG_PERIOD_SECONDS}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        for ok in ["alice", "_svc", "a-b_c9"] {
            assert_eq!(validate_user_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "-r",
            "Alice",
            "a:b",
            "a b",
            "9a",
            &"a".repeat(33),
            "a/b",
        ] {
            assert!(validate_user_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ssh_keys() {
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

    #[test]
    fn ntp_and_processes() {
        assert!(
            Ntp {
                servers: vec!["0.pool.ntp.org".into(), "192.0.2.1".into(), "::1".into()]
            }
            .validate()
            .is_ok()
        );
        assert!(Ntp { servers: vec![] }.validate().is_err());
        assert!(validate_ntp_server("-c/etc/x").is_err());
        assert!(validate_ntp_server("a b").is_err());
        assert!(validate_process_name("crond").is_ok());
        assert!(validate_process_name("/usr/sbin/crond").is_err());
    }

    #[test]
    fn duplicates_are_refused() {
        let u = |n: &str| User {
            name: n.into(),
            state: Presence::Present,
            uid: None,
            home: None,
            shell: None,
        };
        let users = Users {
            items: vec![u("a"), u("a")],
        };
        assert_eq!(users.validate(), Err("user a appears twice".into()));
    }

    #[test]
    fn watchdog_defaults() {
        let w: ConnectivityWatchdog = serde_json::from_str(r#"{"failed_checkins": 3}"#).unwrap();
        assert_eq!(w.action, "reboot");
        assert_eq!(w.min_interval_seconds, 3600);
        assert!(w.validate().is_ok());
    }
}
