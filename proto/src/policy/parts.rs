//! Building blocks several policies' documents share: the list document and its merge mode,
//! and whether an item must exist.

use serde::{Deserialize, Serialize};

/// How a list-like document combines with what its node inherits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMode {
    /// The document is the whole policy for the node and its descendants.
    #[default]
    Replace,
    /// The document's items are added to the inherited ones; an item with an inherited
    /// item's name replaces it in place.
    Extend,
}

/// The document of a list-like policy: its items, and how they combine with what the node
/// inherits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listed<T> {
    #[serde(default)]
    pub merge: MergeMode,
    pub items: Vec<T>,
}

/// Whether an item must exist or must not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    #[default]
    Present,
    Absent,
}

impl Presence {
    /// The word used in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Present => "present",
            Presence::Absent => "absent",
        }
    }
}
