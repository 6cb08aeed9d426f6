//! The `users` kind: every account of `/etc/passwd`, with what `/etc/shadow` says of its
//! password (whether there is one, its hash scheme, when it last changed), never the hash.
//!
//! The shadow file is readable by root only; an agent running as another user reports
//! the passwords as unknown rather than elevating every cycle.

use apiary_proto::inventory::{self, Account, PasswordState};

use crate::system::accounts;

/// Reads the users kind; `None` when `/etc/passwd` cannot be read.
pub fn collect() -> Option<Vec<Account>> {
    let passwd = accounts::read_file("/etc/passwd")
        .map_err(|e| eprintln!("warning: users inventory: /etc/passwd: {e}"))
        .ok()?;
    let shadow = accounts::read_file("/etc/shadow").ok();
    Some(from_files(&passwd, shadow.as_deref()))
}

/// The accounts of passwd text, joined with shadow text where it was readable.
pub fn from_files(passwd: &str, shadow: Option<&str>) -> Vec<Account> {
    accounts::parse_passwd(passwd)
        .into_iter()
        .map(|a| {
            let entry = shadow.map(|s| shadow_entry(s, &a.name));
            let (password, algorithm, last_change_day, max_days) = match entry {
                None => (PasswordState::Unknown, None, None, None),
                Some(None) => (PasswordState::Unknown, None, None, None),
                Some(Some(e)) => e,
            };
            Account {
                name: a.name,
                uid: a.uid,
                gid: a.gid,
                gecos: a.gecos,
                home: a.home,
                shell: a.shell,
                password,
                algorithm,
                last_change_day,
                max_days,
            }
        })
        .collect()
}

type ShadowFacts = (PasswordState, Option<String>, Option<u64>, Option<u64>);

/// What the shadow line of `user` says: `name:hash:lastchg:min:max:...`. A last change of
/// 0 means "must change at next login", which is no date.
fn shadow_entry(shadow: &str, user: &str) -> Option<ShadowFacts> {
    let line = shadow.lines().find(|l| l.split(':').next() == Some(user))?;
    let f: Vec<&str> = line.split(':').collect();
    let hash = f.get(1).copied().unwrap_or("");
    let state = if hash.is_empty() {
        PasswordState::Empty
    } else if hash.starts_with(['!', '*']) {
        PasswordState::Locked
    } else {
        PasswordState::Set
    };
    let day = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some((
        state,
        inventory::hash_algorithm(hash).map(str::to_string),
        day(2).filter(|&d| d > 0),
        day(4).filter(|&d| d < 99_999),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_with_their_password_facts_and_no_hash() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000:Vendor,,,:/home/admin:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nguest:x:1001:1001::/home/guest:/bin/sh\nghost:x:1002:1002::/:/bin/false\n";
        let shadow = "root:$y$j9T$salt$hash:19700:0:99999:7:::\nadmin:$1$abc$def:17000:0:90:7:::\nnobody:*:19000:0:99999:7:::\nguest::0:::::\n";
        let a = from_files(passwd, Some(shadow));
        assert_eq!(a[0].password, PasswordState::Set);
        assert_eq!(a[0].algorithm.as_deref(), Some("yescrypt"));
        assert_eq!((a[0].last_change_day, a[0].max_days), (Some(19700), None));
        assert_eq!(a[1].algorithm.as_deref(), Some("md5"));
        assert_eq!(a[1].max_days, Some(90));
        assert_eq!(a[1].gecos, "Vendor,,,");
        assert_eq!(
            (a[2].password, a[2].algorithm.as_deref()),
            (PasswordState::Locked, None)
        );
        assert_eq!(
            (a[3].password, a[3].last_change_day),
            (PasswordState::Empty, None)
        );
        assert_eq!(a[4].password, PasswordState::Unknown, "no shadow line");
        let json = serde_json::to_string(&a).expect("serialises");
        assert!(!json.contains("$1$abc") && !json.contains("hash"), "{json}");
        let unreadable = from_files(passwd, None);
        assert!(
            unreadable
                .iter()
                .all(|a| a.password == PasswordState::Unknown)
        );
    }
}
