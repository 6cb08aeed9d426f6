//! What each policy last converged, per item, to tell drift from a new desired state.
//!
//! An item that differs from its desired state is *drift* (a manual change, reported as a
//! warning) only if this agent already converged that very desired state; otherwise the
//! desired state is new and the change is routine. Kept in the volatile state dir: after a
//! reboot the first correction counts as routine, which errs on the quiet side.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use apiary_proto::digest;

use crate::safe_fs;

/// Per-item fingerprints of the desired states a policy converged.
pub struct Converged {
    path: PathBuf,
    items: BTreeMap<String, String>,
    dirty: bool,
}

impl Converged {
    /// Loads the record of `policy` (empty when missing or unreadable).
    pub fn load(state_dir: &Path, policy: &str) -> Self {
        let path = state_dir.join(format!("converged-{policy}.json"));
        let items = safe_fs::read(&path, safe_fs::STATE_FILE_LIMIT)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            path,
            items,
            dirty: false,
        }
    }

    /// Fingerprint of a desired state given as its describing parts.
    pub fn fingerprint(parts: &[&str]) -> String {
        digest::sha256_hex(parts.join("\0").as_bytes())
    }

    /// True when `item` was last converged to exactly `desired`.
    pub fn was(&self, item: &str, desired: &str) -> bool {
        self.items.get(item).map(String::as_str) == Some(desired)
    }

    /// What `item` was last recorded as.
    pub fn get(&self, item: &str) -> Option<&str> {
        self.items.get(item).map(String::as_str)
    }

    /// Records that `item` is now in the state `desired`.
    pub fn record(&mut self, item: &str, desired: &str) {
        if !self.was(item, desired) {
            self.items.insert(item.to_string(), desired.to_string());
            self.dirty = true;
        }
    }

    /// Writes the record if it changed (steady state writes nothing, even to tmpfs).
    pub fn save(&self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&self.items).expect("map serialises infallibly");
        Ok(safe_fs::write_atomic(&self.path, &bytes, 0o600)?)
    }

    /// Saves, logging a failure: losing the record only softens the next drift report.
    pub fn save_or_warn(&self) {
        if let Err(e) = self.save() {
            eprintln!("warning: cannot save {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let fp = Converged::fingerprint(&["a", "b"]);
        let mut c = Converged::load(dir.path(), "users");
        assert!(!c.was("alice", &fp));
        c.record("alice", &fp);
        c.save().unwrap();
        let c = Converged::load(dir.path(), "users");
        assert!(c.was("alice", &fp));
        assert!(!c.was("alice", &Converged::fingerprint(&["a", "c"])));
        assert_ne!(
            Converged::fingerprint(&["ab", ""]),
            Converged::fingerprint(&["a", "b"])
        );
    }
}
