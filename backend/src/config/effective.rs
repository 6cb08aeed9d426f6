//! Effective configuration: which node's document applies to a device, per policy.
//!
//! The nearest node wins, whole: a device's own document, else its group's, else the closest
//! ancestor group's, up to `/`. Devices in "unassigned" (no group) inherit nothing.

use std::collections::BTreeMap;

use serde::Serialize;

use super::node::lineage;
use crate::store::ConfigEntry;

/// Configuration indexed by node, then policy.
#[derive(Clone, Debug, Default)]
pub struct ConfigTree {
    nodes: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

/// A policy document in force for a device, and the node it came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Effective {
    pub from: String,
    pub body: serde_json::Value,
}

impl ConfigTree {
    /// Builds the tree from stored entries.
    pub fn new(entries: impl IntoIterator<Item = ConfigEntry>) -> Self {
        let mut tree = Self::default();
        for e in entries {
            tree.set(&e.node, &e.policy, Some(e.body));
        }
        tree
    }

    /// Sets (or with `None`, unsets) one node's policy.
    pub fn set(&mut self, node: &str, policy: &str, body: Option<serde_json::Value>) {
        match body {
            Some(b) => {
                self.nodes
                    .entry(node.to_string())
                    .or_default()
                    .insert(policy.to_string(), b);
            }
            None => {
                if let Some(n) = self.nodes.get_mut(node) {
                    n.remove(policy);
                }
            }
        }
    }

    /// The document `node` sets for `policy` itself.
    pub fn get(&self, node: &str, policy: &str) -> Option<&serde_json::Value> {
        self.nodes.get(node).and_then(|n| n.get(policy))
    }

    /// Every policy in force for a device in `group` (`None` = unassigned).
    pub fn effective_for_device(
        &self,
        device_id: &str,
        group: Option<&str>,
    ) -> BTreeMap<String, Effective> {
        let mut chain: Vec<String> = group.map(lineage).unwrap_or_default();
        chain.push(device_id.to_string());
        let mut out = BTreeMap::new();
        for node in chain {
            if let Some(policies) = self.nodes.get(&node) {
                for (policy, body) in policies {
                    out.insert(
                        policy.clone(),
                        Effective {
                            from: node.clone(),
                            body: body.clone(),
                        },
                    );
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tree() -> ConfigTree {
        let mut t = ConfigTree::default();
        t.set("/", "settings", Some(json!({"interval_seconds": 600})));
        t.set("/", "file_distribution", Some(json!("root")));
        t.set("/prod", "file_distribution", Some(json!("prod")));
        t.set("dev1", "settings", Some(json!({"interval_seconds": 60})));
        t
    }

    #[test]
    fn nearest_node_wins_per_policy() {
        let e = tree().effective_for_device("dev1", Some("/prod/oslo"));
        assert_eq!(e["file_distribution"].from, "/prod");
        assert_eq!(e["settings"].from, "dev1");
        let e = tree().effective_for_device("dev2", Some("/lab"));
        assert_eq!(e["file_distribution"].body, json!("root"));
        assert_eq!(e["settings"].from, "/");
    }

    #[test]
    fn unassigned_devices_inherit_nothing() {
        let e = tree().effective_for_device("dev2", None);
        assert!(e.is_empty());
        let e = tree().effective_for_device("dev1", None);
        assert_eq!(e.keys().collect::<Vec<_>>(), ["settings"]);
    }

    #[test]
    fn unset_restores_inheritance() {
        let mut t = tree();
        t.set("/prod", "file_distribution", None);
        let e = t.effective_for_device("d", Some("/prod"));
        assert_eq!(e["file_distribution"].from, "/");
    }
}
