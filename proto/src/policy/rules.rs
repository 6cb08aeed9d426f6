//! Validation rules several policies share. Names and paths end up as arguments of
//! `useradd`, `chpasswd` and friends, or as paths the agent writes, so the rules are strict:
//! nothing an agent could mistake for an option, a field separator or a way out of a
//! directory gets through.

use std::collections::BTreeSet;

/// True for an absolute file path without empty, `.` or `..` segments or control characters:
/// a destination that cannot climb out of where it points. Both sides hold paths to it.
pub fn is_clean_absolute_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() > 1
        && path[1..]
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
        && !path.chars().any(char::is_control)
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
pub fn validate_account_path(what: &str, path: &str) -> Result<(), String> {
    if is_clean_absolute_path(path) && !path.contains(':') && path.len() <= 255 {
        Ok(())
    } else {
        Err(format!(
            "{what} {path:?} must be an absolute path without ':', '.' or '..' segments"
        ))
    }
}

/// Rejects a name listed twice.
pub fn unique<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(format!("{what} {n} appears twice"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_absolute_paths() {
        for ok in ["/etc/a", "/a/b.c", "/x"] {
            assert!(is_clean_absolute_path(ok), "{ok}");
        }
        for bad in [
            "", "/", "etc/a", "/a/../b", "/a/./b", "/a//b", "/a/", "/a\nb", "/a\0b",
        ] {
            assert!(!is_clean_absolute_path(bad), "{bad:?}");
        }
    }

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
    fn names_listed_twice_are_refused() {
        assert_eq!(
            unique("user", ["a", "b", "a"].into_iter()),
            Err("user a appears twice".into())
        );
        assert_eq!(unique("user", ["a", "b"].into_iter()), Ok(()));
    }
}
