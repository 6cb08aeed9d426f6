//! Owner, group and mode of distributed files: what the bundle asks for, what a file has, and
//! putting one onto the other. Unset parts keep what the file has (root and 0644 for a new
//! file), so a bundle that says nothing never fights a local `chmod`; a template that renders
//! a secret is the exception, 0600 unless the bundle sets a mode.

use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use apiary_proto::policy::file_distribution::DistributedFile;

use crate::safe_fs::Dir;
use crate::system::accounts;

/// Mode of a new file when the bundle sets none.
pub const DEFAULT_MODE: u32 = 0o644;
/// Mode of a rendered template holding a secret when the bundle sets none (enforced, as if
/// the bundle had said so).
pub const SECRET_MODE: u32 = 0o600;

/// The attributes a file must have; `None` keeps the file's own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: Option<u32>,
}

/// A file's attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actual {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl Wanted {
    /// Resolves the bundle's owner and group names against this device's account files.
    pub fn of(file: &DistributedFile) -> Result<Self, String> {
        Ok(Self {
            uid: file
                .owner
                .as_deref()
                .map(accounts::resolve_uid)
                .transpose()?,
            gid: file
                .group
                .as_deref()
                .map(accounts::resolve_gid)
                .transpose()?,
            mode: file.mode,
        })
    }

    /// Fingerprint part, so a new owner or mode counts as a new desired state.
    pub fn describe(&self) -> String {
        format!("{:?}:{:?}:{:?}", self.uid, self.gid, self.mode)
    }

    /// What a replacement for a file with `existing` attributes gets.
    pub fn for_new_content(&self, existing: Option<Actual>) -> Actual {
        Actual {
            uid: self.uid.or(existing.map(|a| a.uid)).unwrap_or(0),
            gid: self.gid.or(existing.map(|a| a.gid)).unwrap_or(0),
            mode: self
                .mode
                .or(existing.map(|a| a.mode))
                .unwrap_or(DEFAULT_MODE),
        }
    }

    /// The differences between `actual` and this, as words for a report (empty: none).
    pub fn differences(&self, actual: Actual) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(uid) = self.uid.filter(|&u| u != actual.uid) {
            out.push(format!("owner {} -> {uid}", actual.uid));
        }
        if let Some(gid) = self.gid.filter(|&g| g != actual.gid) {
            out.push(format!("group {} -> {gid}", actual.gid));
        }
        if let Some(mode) = self.mode.filter(|&m| m != actual.mode) {
            out.push(format!("mode {:04o} -> {mode:04o}", actual.mode));
        }
        out
    }

    /// Gives `name` in `dir`, which has `actual`, the wanted attributes, through a descriptor
    /// of the file itself (never a link).
    pub fn apply(&self, dir: &Dir, name: &str, actual: Actual) -> Result<(), String> {
        let target = self.for_new_content(Some(actual));
        let owner = (target.uid, target.gid);
        let chown = (owner != (actual.uid, actual.gid)).then_some(owner);
        dir.set_attributes(name, chown, target.mode)
            .map_err(|e| format!("cannot set owner and mode: {e}"))
    }
}

impl Actual {
    /// The attributes `meta` describes.
    pub fn of(meta: &Metadata) -> Self {
        Self {
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.permissions().mode() & 0o7777,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_parts_keep_the_file_s_own() {
        let existing = Actual {
            uid: 5,
            gid: 6,
            mode: 0o600,
        };
        let keep = Wanted::default();
        assert_eq!(keep.for_new_content(Some(existing)), existing);
        assert!(keep.differences(existing).is_empty());
        assert_eq!(
            keep.for_new_content(None),
            Actual {
                uid: 0,
                gid: 0,
                mode: DEFAULT_MODE
            }
        );
        let want = Wanted {
            uid: Some(7),
            gid: None,
            mode: Some(0o640),
        };
        assert_eq!(
            want.differences(existing),
            vec!["owner 5 -> 7".to_string(), "mode 0600 -> 0640".to_string()]
        );
    }

    #[test]
    fn applies_a_mode() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), b"x").unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        let actual = || Actual::of(&dir.stat("f").unwrap().unwrap());
        let want = Wanted {
            mode: Some(0o600),
            ..Wanted::default()
        };
        want.apply(&dir, "f", actual()).unwrap();
        assert_eq!(actual().mode, 0o600);
        assert!(want.differences(actual()).is_empty());
    }
}
