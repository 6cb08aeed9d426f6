//! Nodes of the configuration tree: group paths (`/`, `/prod/oslo`) and device ids.

use std::fmt;

/// A place configuration can be set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Group(String),
    Device(String),
}

/// Why a node name was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NodeError {
    #[error("group path {0:?} is invalid: use /name/name with letters, digits, '.', '_' or '-'")]
    BadGroup(String),
    #[error("{0:?} is neither a group path (starting with /) nor a device id (64 hex characters)")]
    BadNode(String),
}

impl Node {
    /// Parses `/a/b` as a group and a 64-hex string as a device id.
    pub fn parse(text: &str) -> Result<Self, NodeError> {
        if text.starts_with('/') {
            Ok(Node::Group(normalize_group(text)?))
        } else if apiary_proto::digest::is_sha256_hex(text) {
            Ok(Node::Device(text.to_string()))
        } else {
            Err(NodeError::BadNode(text.to_string()))
        }
    }

    /// The key under which the node's configuration is stored.
    pub fn key(&self) -> &str {
        match self {
            Node::Group(p) | Node::Device(p) => p,
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Validates a group path and removes a trailing slash (`/a/` is `/a`).
pub fn normalize_group(path: &str) -> Result<String, NodeError> {
    let bad = || NodeError::BadGroup(path.to_string());
    let trimmed = path
        .strip_prefix('/')
        .ok_or_else(bad)?
        .trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok("/".to_string());
    }
    for part in trimmed.split('/') {
        let ok = !part.is_empty()
            && part != "."
            && part != ".."
            && part.len() <= 64
            && part
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
        if !ok {
            return Err(bad());
        }
    }
    Ok(format!("/{trimmed}"))
}

/// The parent of a group path (`/` for top-level groups and for `/` itself).
pub fn parent(path: &str) -> String {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/".to_string(),
        Some((head, _)) => head.to_string(),
    }
}

/// The groups from the root down to `path`, inclusive.
pub fn lineage(path: &str) -> Vec<String> {
    let mut out = vec!["/".to_string()];
    let mut current = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        current.push('/');
        current.push_str(part);
        out.push(current.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_groups_and_devices() {
        assert_eq!(Node::parse("/").unwrap(), Node::Group("/".into()));
        assert_eq!(
            Node::parse("/prod/oslo/").unwrap(),
            Node::Group("/prod/oslo".into())
        );
        let id = "a".repeat(64);
        assert_eq!(Node::parse(&id).unwrap(), Node::Device(id));
        for bad in ["/a//b", "/a/../b", "/a b", "prod", "/ä"] {
            assert!(Node::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parents() {
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/"), "/");
    }

    #[test]
    fn lineage_goes_root_first() {
        assert_eq!(lineage("/"), ["/"]);
        assert_eq!(lineage("/a/b"), ["/", "/a", "/a/b"]);
    }
}
