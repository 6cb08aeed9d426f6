//! The local account database as files: `/etc/passwd`, `/etc/group`, `/etc/shadow` and
//! `/etc/login.defs`, read directly (a static agent has no NSS, and busybox systems have
//! nothing else).

use std::io;
use std::path::Path;

use crate::safe_fs;

/// Lowest uid of a regular account when `/etc/login.defs` does not say (Debian, Buildroot,
/// OpenWrt and busybox `adduser` all use 1000).
pub const DEFAULT_UID_MIN: u32 = 1000;

/// Largest account file read (`/etc/passwd` of 100,000 accounts is about 6 MiB).
pub const MAX_ACCOUNT_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// Reads one of the account files (link-safe, bounded); a missing file is an error.
pub fn read_file(path: &str) -> io::Result<String> {
    let bytes = safe_fs::read_existing(Path::new(path), MAX_ACCOUNT_FILE_BYTES)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// One line of `/etc/passwd`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The comment field (full name, room, phone).
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

/// Parses `/etc/passwd` text; malformed lines are skipped, as libc does.
pub fn parse_passwd(text: &str) -> Vec<Account> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(Account {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                gecos: f[4].to_string(),
                home: f[5].to_string(),
                shell: f[6].to_string(),
            })
        })
        .collect()
}

/// The accounts of `/etc/passwd`.
pub fn accounts() -> io::Result<Vec<Account>> {
    Ok(parse_passwd(&read_file("/etc/passwd")?))
}

/// The account called `name`, if any.
pub fn account(name: &str) -> io::Result<Option<Account>> {
    Ok(accounts()?.into_iter().find(|a| a.name == name))
}

/// The password field of `user` in `/etc/shadow` text.
pub fn shadow_hash<'a>(shadow: &'a str, user: &str) -> Option<&'a str> {
    shadow.lines().find_map(|line| {
        let mut f = line.splitn(3, ':');
        (f.next()? == user).then(|| f.next()).flatten()
    })
}

/// The gid of group `name` in `/etc/group` text.
pub fn group_gid(group: &str, name: &str) -> Option<u32> {
    group.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 3 && f[0] == name)
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

/// `UID_MIN` of `login.defs` text, if set.
pub fn login_defs_uid_min(text: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next()? == "UID_MIN")
            .then(|| words.next()?.parse().ok())
            .flatten()
    })
}

/// The lowest uid of a regular (non-system) account on this device.
pub fn uid_min() -> u32 {
    read_file("/etc/login.defs")
        .ok()
        .and_then(|t| login_defs_uid_min(&t))
        .unwrap_or(DEFAULT_UID_MIN)
}

/// Resolves an owner given as a name or a numeric id.
pub fn resolve_uid(owner: &str) -> Result<u32, String> {
    if let Ok(uid) = owner.parse() {
        return Ok(uid);
    }
    match account(owner) {
        Ok(Some(a)) => Ok(a.uid),
        Ok(None) => Err(format!("user {owner} does not exist")),
        Err(e) => Err(format!("cannot read: {e}")),
    }
}

/// Resolves a group given as a name or a numeric id.
pub fn resolve_gid(group: &str) -> Result<u32, String> {
    if let Ok(gid) = group.parse() {
        return Ok(gid);
    }
    let text = read_file("/etc/group").map_err(|e| format!("cannot read: {e}"))?;
    group_gid(&text, group).ok_or_else(|| format!("group {group} does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_account_files() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nbroken line\nalice:x:1001:1001:Alice,,,:/home/alice:/bin/sh\n";
        let accounts = parse_passwd(passwd);
        assert_eq!(accounts.len(), 2);
        assert_eq!(
            accounts[1],
            Account {
                name: "alice".into(),
                uid: 1001,
                gid: 1001,
                gecos: "Alice,,,".into(),
                home: "/home/alice".into(),
                shell: "/bin/sh".into()
            }
        );
        let shadow = "root:*:19000:0:99999:7:::\nalice:$6$s$h:19000::::::\n";
        assert_eq!(shadow_hash(shadow, "alice"), Some("$6$s$h"));
        assert_eq!(shadow_hash(shadow, "ali"), None);
        assert_eq!(
            group_gid("users:x:100:\nwheel:x:10:alice\n", "wheel"),
            Some(10)
        );
        assert_eq!(
            login_defs_uid_min("# c\nUID_MIN\t\t\t 2000\nUID_MAX 60000\n"),
            Some(2000)
        );
        assert_eq!(login_defs_uid_min("#UID_MIN 5\n"), None);
    }
}
